package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/topo"
)

const intentTmpl = `# graygw demo intent: one VIP, a base and a gray cluster of one server each.
version: 1
gateways:
  - name: gw1
    p4runtime: 127.0.0.1:9559
    device_id: 1
    bgp_next_hop: %[1]s
    ports:
      1: {interface: p1, mac: "%[2]s"}
      2: {interface: p2, mac: "%[3]s"}
      3: {interface: p3, mac: "%[4]s"}
vips:
  - name: vpc-router
    id: 1
    address: %[5]s
    default_pool: base-router
pools:
  - name: base-router
    id: 1
    cluster: base
    backends:
      - {name: base-1, id: 11, underlay_ip: %[6]s, mac: "%[7]s", port: 2}
  - name: gray-router
    id: 2
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {name: gray-1, id: 21, underlay_ip: %[8]s, mac: "%[9]s", port: 3}
tenants:
  - {name: acme, id: 7, vnis: [5001, 5002]}
`

const planTmpl = `# graygw demo rollout: VPC 5001, two VMs one at a time, then the whole VPC.
version: 1
name: demo
vip: vpc-router
pool: gray-router
base_pool: base-router
individual_vms: 2
probe: {count: 3, interval: 100ms, timeout: 1s, max_loss: 0, scope: plan}
vpcs:
%s`

func (d *demo) write(name, text string) (string, error) {
	p := filepath.Join(d.dir, name)
	return p, os.WriteFile(p, []byte(text), 0o644)
}

// cli runs the graygw CLI against the demo's controller and prints its output.
func (d *demo) cli(args ...string) error {
	fmt.Printf("   $ graygw %s\n", strings.Join(args, " "))
	cmd := exec.Command(filepath.Join(d.bin, "graygw"), append([]string{"--controller", "unix://" + d.apiSock()}, args...)...)
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Println("   " + line)
	}
	if err != nil {
		return fmt.Errorf("graygw %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (d *demo) sock() string { return filepath.Join(d.dir, "controller.sock") }

// apiSock is the socket the demo's CLI calls: the controller's, or with --ha
// a follower's.
func (d *demo) apiSock() string {
	if d.cliSock != "" {
		return d.cliSock
	}
	return d.sock()
}

// pingAll pings every VM's VPC router and says which ones were answered.
func (d *demo) pingAll() {
	for _, v := range d.t.VPCs {
		for _, h := range v.VMs {
			n, err := d.t.Ping(v, h, 3)
			state := fmt.Sprintf("%d/3 answered", n)
			if err != nil {
				state = err.Error()
			}
			fmt.Printf("   VM %-13s (VNI %d) -> %s: %s\n", v.VMAddr(h), v.VNI, v.RouterAddr(), state)
		}
	}
}

func (d *demo) scenario(ctx context.Context, keep bool) error {
	t := d.t
	step(2, "BGP peer: BIRD on the hypervisor (AS %d), the controller's GoBGP on the gateway (AS %d)", peerASN, gatewayASN)
	birdSock, err := d.startBIRD()
	if err != nil {
		return err
	}

	step(3, "gateway: graygw-agent attaches the XDP program to p1 p2 p3 and serves P4Runtime on 127.0.0.1:9559")
	agentLog, err := d.logFile("agent")
	if err != nil {
		return err
	}
	// `ip netns exec` mounts a fresh /sys, hiding /sys/fs/bpf: the agent pins its
	// maps and links in a bpffs of the demo's own, visible from every namespace.
	bpffs := filepath.Join(d.dir, "bpffs")
	if err := os.MkdirAll(bpffs, 0o700); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "bpf", "bpf", bpffs).CombinedOutput(); err != nil {
		return fmt.Errorf("mount bpffs on %s: %v: %s", bpffs, err, out)
	}
	defer exec.Command("umount", bpffs).Run()
	pins := filepath.Join(bpffs, "graygw")
	agent, err := d.l.Start(t.GW, agentLog, filepath.Join(d.bin, "graygw-agent"),
		"--port", "1=p1", "--port", "2=p2", "--port", "3=p3",
		"--pin-dir", pins, "--state-dir", filepath.Join(d.dir, "agent-state"), "--addr", "127.0.0.1:9559")
	if err != nil {
		return err
	}
	var controller *exec.Cmd
	defer func() {
		// The XDP program outlives its agent (pinned links): stop the daemons,
		// detach it, and remove the pins, before the namespaces go.
		if controller != nil {
			_ = lab.Stop(controller, syscall.SIGTERM, 10*time.Second)
		}
		d.stopReplicas()
		_ = lab.Stop(agent, syscall.SIGTERM, 10*time.Second)
		_, _ = exec.Command("ip", "netns", "exec", t.GW, filepath.Join(d.bin, "graygw-agent"),
			"--port", "1=p1", "--port", "2=p2", "--port", "3=p3", "--pin-dir", pins, "--detach").CombinedOutput()
		_ = os.RemoveAll(pins)
	}()

	intent, err := d.write("intent.yaml", fmt.Sprintf(intentTmpl, gatewayIP, t.PortMAC[topo.PortHV], t.PortMAC[topo.PortBase],
		t.PortMAC[topo.PortGray], topo.VIP, topo.BaseAddr, t.BaseMAC, topo.GrayAddr, t.GrayMAC))
	if err != nil {
		return err
	}
	if d.ha {
		step(4, "controllers: %d replicas on a %d-member etcd cluster, one leads (intent: VIP %s, base server %s, gray server %s)",
			haReplicas, haReplicas, topo.VIP, topo.BaseAddr, topo.GrayAddr)
		if _, err := d.startReplicas(ctx, intent); err != nil {
			return err
		}
	} else {
		step(4, "controller: intent (VIP %s, base server %s, gray server %s), BGP, API on a unix socket", topo.VIP, topo.BaseAddr, topo.GrayAddr)
		cfg, err := d.write("controller.yaml", d.controllerConfig(intent))
		if err != nil {
			return err
		}
		ctlLog, err := d.logFile("controller")
		if err != nil {
			return err
		}
		if controller, err = d.l.Start(t.GW, ctlLog, filepath.Join(d.bin, "graygw-controller"), "--config", cfg); err != nil {
			return err
		}
		err = waitFor(ctx, 30*time.Second, "controller API", func() error {
			_, err := os.Stat(d.sock())
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := waitFor(ctx, 30*time.Second, "gateway in sync", d.inSync); err != nil {
		return err
	}
	if err := d.cli("status"); err != nil {
		return err
	}
	fmt.Printf("   metrics: http://%s/metrics in namespace %s (deploy/grafana/graygw.json charts them)\n", MetricsAddr, t.GW)

	step(5, "BGP: the VIP as BIRD learned it, and the hypervisor's route to it")
	route, err := d.waitBGP(ctx, birdSock)
	if err != nil {
		return err
	}
	fmt.Println(indent(route))
	if err := d.cli("bgp"); err != nil {
		return err
	}

	step(6, "VM traffic through the gateway: every VM pings its VPC router (all on base)")
	d.pingAll()
	if err := d.cli("counters"); err != nil {
		return err
	}

	step(7, "rollout of VPC 5001 to the gray cluster: VM by VM, probes after every step")
	plan, err := d.write("plan.yaml", fmt.Sprintf(planTmpl, d.planVPCs(t.VPCs[:1])))
	if err != nil {
		return err
	}
	if err := d.cli("rollout", "start", "-f", plan, "--wait"); err != nil {
		return err
	}
	if err := d.cli("status"); err != nil {
		return err
	}

	step(8, "traffic after the rollout: VPC 5001 answered by gray, VPC 5002 still by base; one VM's path through the gateway's own tables")
	d.pingAll()
	if err := d.cli("probe", "--plan", plan); err != nil {
		return err
	}
	v := t.VPCs[0]
	if err := d.cli("trace", "--vni", fmt.Sprint(v.VNI), "--flow", fmt.Sprintf("icmp/%s/%s", v.VMAddr(v.VMs[0]), v.RouterAddr()), "--probe"); err != nil {
		return err
	}
	if err := d.cli("counters"); err != nil {
		return err
	}

	step(9, "rollback of everything: VPC 5001 back on base")
	if err := d.cli("rollback", "--all", "--wait"); err != nil {
		return err
	}
	if err := d.cli("probe", "--plan", plan); err != nil {
		return err
	}

	if d.ha {
		step(10, "failover: the leading controller replica SIGKILLed; another takes over, and a cutover through a follower lands")
		if err := d.failover(ctx); err != nil {
			return err
		}
		if err := d.cli("status"); err != nil {
			return err
		}
		if err := d.cli("cutover", "--pool", "gray-router", "--vni", fmt.Sprint(t.VPCs[0].VNI), "--wait"); err != nil {
			return err
		}
		if err := d.cli("probe", "--plan", plan); err != nil {
			return err
		}
	}

	fmt.Printf("\ndemo complete. Logs: %s\n", d.dir)
	if keep {
		fmt.Printf("the lab stays up: try `ip netns exec %s ping -I %s %s`; Ctrl-C to remove it\n",
			t.HV, t.VPCs[0].VMAddr(t.VPCs[0].VMs[0]), t.VPCs[0].RouterAddr())
		fmt.Printf("   the controller: graygw --controller unix://%s; its metrics: ip netns exec %s curl http://%s/metrics\n",
			d.apiSock(), t.GW, MetricsAddr)
		<-ctx.Done()
	}
	return nil
}

// inSync reports whether every gateway holds the intent, from `graygw status -o json`.
func (d *demo) inSync() error {
	st, err := d.status()
	if err != nil {
		return err
	}
	if len(st.Gateways) == 0 {
		return errors.New("no gateway in the status")
	}
	for _, g := range st.Gateways {
		if !g.InSync {
			return fmt.Errorf("gateway %s not in sync", g.Name)
		}
	}
	return nil
}

// demoStatus is what the demo reads of `graygw status -o json`.
type demoStatus struct {
	Gateways []struct {
		Name   string `json:"name"`
		InSync bool   `json:"in_sync"`
	} `json:"gateways"`
	Replicas []struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
	} `json:"replicas"`
}

func (d *demo) status() (*demoStatus, error) {
	out, err := exec.Command(filepath.Join(d.bin, "graygw"), "--controller", "unix://"+d.apiSock(), "status", "-o", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("graygw status: %v", err)
	}
	var st demoStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("graygw status -o json: %v", err)
	}
	return &st, nil
}

// leaderIsNot reports an error unless a replica other than id leads.
func (d *demo) leaderIsNot(id string) error {
	st, err := d.status()
	if err != nil {
		return err
	}
	for _, r := range st.Replicas {
		if r.Leader && r.ID != id {
			return nil
		}
	}
	return fmt.Errorf("%s still leads, or nobody does", id)
}

func (d *demo) planVPCs(vpcs []topo.VPC) string {
	var b strings.Builder
	for _, v := range vpcs {
		var vms []string
		for _, h := range v.VMs {
			vms = append(vms, v.VMAddr(h).String())
		}
		fmt.Fprintf(&b, "  - {vni: %d, router: %s, router_mac: %q, vms: [%s]}\n", v.VNI, v.RouterAddr(), topo.RouterMAC, strings.Join(vms, ", "))
	}
	return b.String()
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("   " + line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
