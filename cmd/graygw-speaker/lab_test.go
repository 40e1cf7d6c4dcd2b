package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/topo"
)

// The speaker lab: topo's hypervisor, gateway (gw1) and base server, plus a
// second gateway (gw2) wired the same way. BIRD on the hypervisor peers with
// the speaker beside each gateway (eBGP, AS 65000 <-> 65001) and installs the
// VIP into the hypervisor's kernel with both gateways as ECMP next hops; the
// hypervisor has no other route to the VIP. The controller runs on the
// hypervisor (it reaches the agents over the gateways' HV-facing addresses).
//
//	hv h0 10.1.0.10 --- p1 10.1.0.1 [gw1 XDP] p2 --- b0 base 10.2.0.11
//	hv h1 10.4.0.10 --- p1 10.4.0.1 [gw2 XDP] p2 --- b1 base (same MAC as b0)
const (
	gw1Hop = "10.1.0.1"
	gw2Hop = "10.4.0.1"
	// The gateways' IPv6 next hops (buildSpeakerLab6).
	gw1Hop6 = "fd00:f1::1"
	gw2Hop6 = "fd00:f4::1"
	// restartTime is the speakers' graceful-restart time, short so the test
	// can outlive it many times over (the demo's was 120 s).
	restartTime = 3 * time.Second
)

// hvPeers are the hypervisor's BGP peers: each gateway's speaker, at the
// gateway's HV-facing address (its next hop; hop6 its IPv6 one), and the
// hypervisor's address on that link.
var hvPeers = []struct{ gw, hop, hop6, hv string }{{"gw1", gw1Hop, gw1Hop6, "10.1.0.10"}, {"gw2", gw2Hop, gw2Hop6, "10.4.0.10"}}

// speakerBirdConf is the hypervisor's BIRD: one eBGP session with each
// gateway's speaker (ipv4, and with ipv6 an ipv6 channel beside it: MP-BGP),
// the VIP's routes exported into the kernel as ECMP.
func speakerBirdConf(ipv6 bool) string {
	var b strings.Builder
	b.WriteString("router id 10.1.0.10;\nprotocol device { scan time 1; }\nprotocol kernel {\n\tmerge paths on;\n\tipv4 { import none; export all; };\n}\n")
	for _, p := range hvPeers {
		fmt.Fprintf(&b, "protocol bgp %s {\n\tlocal %s as 65000;\n\tneighbor %s as 65001;\n", p.gw, p.hv, p.hop)
		b.WriteString("\thold time 3; connect retry time 1;\n\tgraceful restart on;\n\tipv4 { import all; export none; };\n")
		if ipv6 {
			b.WriteString("\tipv6 { import all; export none; };\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

const speakerConfig = `gateway: %[1]s
policyFile: %[2]s
interval: 100ms
controllers:
  addresses: [%[3]s]
  retry: 500ms
dataplane:
  p4runtime: %[4]s:9559
  deviceID: 1
  interfaces: [p1, p2]
  xdp: true
  timeout: 300ms
bgp:
  asn: 65001
  routerID: %[4]s
  listenAddress: %[4]s
  gracefulRestart: {enabled: true, restartTime: 3s, deferralTime: 1s}
  neighbors:
    - {address: %[5]s, asn: 65000, localAddress: %[4]s, holdTime: 3s, connectRetry: 1s}
`

type speakerLab struct {
	// ipv6: the lab carries an IPv6 VIP too (buildSpeakerLab6).
	ipv6  bool
	t     *testing.T
	l     *lab.Lab
	topo  *topo.Topology
	gw2   string
	bin   string
	dir   string
	bird  *birdlab.BIRD
	pins  string
	procs map[string]*exec.Cmd
}

func (s *speakerLab) log(name string) *os.File {
	f, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { f.Close() })
	return f
}

func (s *speakerLab) start(name, ns string, args ...string) {
	s.t.Helper()
	cmd, err := s.l.Start(ns, s.log(name), append([]string{filepath.Join(s.bin, args[0])}, args[1:]...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.procs[name] = cmd
}

// kill sends SIGKILL to a process of the lab and waits for it.
func (s *speakerLab) kill(name string) {
	s.t.Helper()
	if err := lab.Stop(s.procs[name], syscall.SIGKILL, 5*time.Second); err != nil && !strings.Contains(err.Error(), "killed") {
		s.t.Logf("%s: %v", name, err)
	}
}

// hops lists the next hops BIRD has for the VIP, over both sessions.
func (s *speakerLab) hops() ([]string, error) { return s.hopsFor(topo.VIP.String() + "/32") }

// hopsFor lists the next hops BIRD has for prefix, over both sessions.
func (s *speakerLab) hopsFor(prefix string) ([]string, error) {
	var all []string
	for _, p := range hvPeers {
		h, err := s.bird.Sock.NextHops(prefix, p.gw)
		if err != nil {
			return nil, err
		}
		all = append(all, h...)
	}
	slices.Sort(all)
	return all, nil
}

// hopsAre is a WaitFor condition: BIRD's next hops for the VIP, over both
// sessions, are want.
func (s *speakerLab) hopsAre(want ...string) func() (bool, string) {
	return s.hopsForAre(topo.VIP.String()+"/32", want...)
}

// hopsForAre is a WaitFor condition: BIRD's next hops for prefix, over both
// sessions, are want.
func (s *speakerLab) hopsForAre(prefix string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		got, err := s.hopsFor(prefix)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprint(got)
	}
}

// kernelHops is the hypervisor kernel's route to the VIP.
func (s *speakerLab) kernelRoute() string {
	out, _ := s.l.Exec(s.topo.HV, "ip", "route", "show", topo.VIP.String())
	return strings.TrimSpace(out)
}

// pinger pings through the gateways in the background until stopped, and
// counts what was lost.
type pinger struct {
	done       chan struct{}
	sent, recv int
	err        error
}

func (s *speakerLab) ping(d time.Duration) *pinger {
	p := &pinger{done: make(chan struct{})}
	v := s.topo.VPCs[0]
	go func() {
		defer close(p.done)
		// One echo every 20ms; -w bounds the run (lab.Exec would stop it at 30s).
		n := int(d / (20 * time.Millisecond))
		out, _ := exec.Command("ip", "netns", "exec", s.topo.HV, "ping", "-q", "-n", "-c", fmt.Sprint(n), "-i", "0.02", "-W", "1",
			"-w", fmt.Sprint(int(2*d/time.Second)+5), "-I", v.VMAddr(v.VMs[0]).String(), v.RouterAddr().String()).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if k, _ := fmt.Sscanf(line, "%d packets transmitted, %d received", &p.sent, &p.recv); k == 2 {
				return
			}
		}
		p.err = fmt.Errorf("no ping summary in %q", out)
	}()
	return p
}

// wait waits for the pings to end and fails t when more than maxLost were
// lost (or none was answered).
func (p *pinger) wait(t *testing.T, what string, maxLost int) {
	t.Helper()
	<-p.done
	if p.err != nil {
		t.Fatalf("%s: %v", what, p.err)
	}
	t.Logf("%s: %d/%d echo replies", what, p.recv, p.sent)
	if p.recv == 0 || p.sent-p.recv > maxLost {
		t.Errorf("%s: %d of %d pings lost through the gateways, want at most %d", what, p.sent-p.recv, p.sent, maxLost)
	}
}

func buildSpeakerLab(t *testing.T) *speakerLab {
	t.Helper()
	return buildSpeakerLabWith(t, false)
}

// buildSpeakerLab6 is buildSpeakerLab with IPv6 on the hypervisor's links
// (gw1 p1 fd00:f1::1 - hv h0 fd00:f1::10, gw2 p1 fd00:f4::1 - hv h1
// fd00:f4::10: the gateways' IPv6 next hops), an ipv6 channel beside ipv4 on
// BIRD's sessions, an IPv6 VIP in the intent and both families on the
// speakers' neighbors (MP-BGP).
func buildSpeakerLab6(t *testing.T) *speakerLab {
	t.Helper()
	return buildSpeakerLabWith(t, true)
}

func buildSpeakerLabWith(t *testing.T, ipv6 bool) *speakerLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP and BGP on port 179")
	}
	birdlab.Require(t, "ip", "ping", "ethtool")
	if testing.Short() {
		t.Skip("-short: the speaker lab builds binaries and runs for about a minute")
	}
	s := &speakerLab{ipv6: ipv6, t: t, bin: t.TempDir(), dir: t.TempDir(), procs: map[string]*exec.Cmd{}}
	s.logsOnFailure()
	build := exec.Command("go", "build", "-o", s.bin+"/", "github.com/graygw/graygw/cmd/graygw-agent",
		"github.com/graygw/graygw/cmd/graygw-controller", "github.com/graygw/graygw/cmd/graygw-speaker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := lab.New("ggspk")
	if err != nil {
		t.Fatal(err)
	}
	s.l = l
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Logf("lab close: %v", err)
		}
	})
	v := topo.DefaultVPCs[0]
	v.VMs = v.VMs[:1]
	if s.topo, err = topo.Build(l, []topo.VPC{v}); err != nil {
		t.Fatal(err)
	}
	tp := s.topo
	if s.gw2, err = l.NS("gw2"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][4]string{{s.gw2, "p1", tp.HV, "h1"}, {s.gw2, "p2", tp.Base, "b1"}} {
		if err := l.Veth(c[0], c[1], c[2], c[3]); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct{ ns, script string }{
		{s.gw2, `sysctl -qw net.ipv4.ip_forward=1
			sysctl -qw net.ipv4.conf.all.rp_filter=0
			ip addr add 10.4.0.1/24 dev p1
			ip addr add 10.2.1.1/24 dev p2
			ip route add 10.1.0.10/32 dev p1`},
		{tp.HV, `ip addr add 10.4.0.10/24 dev h1
			ethtool -K h1 gro on
			sysctl -qw net.ipv4.conf.all.rp_filter=0
			sysctl -qw net.ipv4.conf.h1.rp_filter=0
			ip route del default`},
		// gw2 reaches the base server on b1, which has b0's MAC (the intent's
		// backend MAC) and accepts the underlay address on either link. Its
		// replies go back through either gateway (ECMP), skipping a dead link.
		{tp.Base, fmt.Sprintf(`ip link set b1 address %s
			sysctl -qw net.ipv4.conf.all.rp_filter=0
			sysctl -qw net.ipv4.conf.b1.rp_filter=0
			sysctl -qw net.ipv4.conf.all.ignore_routes_with_linkdown=1
			ethtool -K b1 gro on
			ip addr add 10.2.1.11/24 dev b1
			ip route replace default nexthop via 10.2.0.1 dev b0 nexthop via 10.2.1.1 dev b1`, tp.BaseMAC)},
	}
	if ipv6 {
		steps = append(steps,
			struct{ ns, script string }{tp.GW, "ip addr add " + gw1Hop6 + "/64 dev p1 nodad"},
			struct{ ns, script string }{s.gw2, "ip addr add " + gw2Hop6 + "/64 dev p1 nodad"},
			struct{ ns, script string }{tp.HV, "ip addr add fd00:f1::10/64 dev h0 nodad\nip addr add fd00:f4::10/64 dev h1 nodad"})
	}
	for _, st := range steps {
		if err := l.Script(st.ns, st.script); err != nil {
			t.Fatal(err)
		}
	}
	s.bird = birdlab.Start(t, l, tp.HV, speakerBirdConf(ipv6))

	// The agents listen on their HV-facing address (the controller runs on the
	// hypervisor; the lab is the only network: --insecure-listener). They pin in a bpffs of the test's own (`ip netns exec` hides
	// /sys/fs/bpf), and are detached and unpinned at the end.
	bpffs := filepath.Join(s.dir, "bpffs")
	if err := os.MkdirAll(bpffs, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "bpf", "bpf", bpffs).CombinedOutput(); err != nil {
		t.Fatalf("mount bpffs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", bpffs).Run() })
	agents := []struct {
		name, ns, addr string
		ports          []string
	}{{"gw1", tp.GW, gw1Hop, []string{"1=p1", "2=p2"}}, {"gw2", s.gw2, gw2Hop, []string{"1=p1", "2=p2"}}}
	for _, a := range agents {
		pins := filepath.Join(bpffs, a.name)
		args := []string{"graygw-agent", "--addr", a.addr + ":9559", "--insecure-listener", "--pin-dir", pins, "--state-dir", filepath.Join(s.dir, a.name+"-state")}
		for _, p := range a.ports {
			args = append(args, "--port", p)
		}
		s.start("agent-"+a.name, a.ns, args...)
		t.Cleanup(func() {
			if c := s.procs["agent-"+a.name]; c.ProcessState == nil {
				_ = lab.Stop(c, syscall.SIGTERM, 10*time.Second)
			}
			detach := []string{"netns", "exec", a.ns, filepath.Join(s.bin, "graygw-agent"), "--pin-dir", pins, "--detach"}
			for _, p := range a.ports {
				detach = append(detach, "--port", p)
			}
			_, _ = exec.Command("ip", detach...).CombinedOutput()
			_ = os.RemoveAll(pins)
		})
	}
	return s
}

func (s *speakerLab) write(name, text string) string {
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// startController starts the lab's one controller, on a bbolt store.
func (s *speakerLab) startController() {
	s.t.Helper()
	s.startControllerOn("controller", "store: "+filepath.Join(s.dir, "c.db"), s.sock())
}

// startControllerOn starts controller process name on the hypervisor with
// store (the YAML of its store, and of ha for a replica), serving its API on
// unix socket sock: the lab's intent, the VIP announced from the gateways
// with community 65000:100.
func (s *speakerLab) startControllerOn(name, store, sock string) {
	s.t.Helper()
	cfg := s.write(name+".yaml", fmt.Sprintf(`%s
intent: %s
election_id: 10
interval: 10s
listen: {unix: %s}
bgp:
  announceFrom: gateways
  vips:
    vpc-router: {communities: ["65000:100"]}
`, store, s.writeIntent(), sock))
	s.start(name, s.topo.HV, "graygw-controller", "--config", cfg)
}

// writeIntent writes the lab's intent and returns its path: intenttest's
// Router world on the lab's addresses without its gray pool (vpc-router on
// base-router: base-1 is the base server) and tenant acme (VNI 5001), on both
// gateways, each agent on its next hop with ports p1 and p2; with ipv6, each
// gateway's IPv6 next hop and an IPv6 VIP on its own pool.
func (s *speakerLab) writeIntent() string {
	s.t.Helper()
	var gws []intenttest.Gateway
	for _, p := range hvPeers {
		g := intenttest.Gateway{Name: p.gw, Agent: p.hop + ":9559", NextHop: p.hop, Ports: map[int]string{}}
		if s.ipv6 {
			g.NextHopV6 = p.hop6
		}
		for port, dev := range []string{"p1", "p2"} {
			mac, err := s.l.MAC(s.gwNS(p.gw), dev)
			if err != nil {
				s.t.Fatal(err)
			}
			g.Ports[port+1] = mac
		}
		gws = append(gws, g)
	}
	d := intenttest.Router()
	d.Gateway, d.Agent, d.NextHop, d.NextHopV6, d.Ports, d.More = gws[0].Name, gws[0].Agent, gws[0].NextHop, gws[0].NextHopV6, gws[0].Ports, gws[1:]
	d.VIP.Address = topo.VIP.String()
	d.Pools = d.Pools[:1]
	d.Pools[0].Backends[0].UnderlayIP, d.Pools[0].Backends[0].MAC = topo.BaseAddr.String(), s.topo.BaseMAC
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001]}"}
	doc := d.YAML()
	if s.ipv6 {
		doc = strings.Replace(doc, "pools:\n", fmt.Sprintf("  - {name: vpc-router6, id: 2, address: %q, default_pool: base-router6}\npools:\n", topo.VIP6), 1)
		doc = strings.Replace(doc, "tenants:\n", fmt.Sprintf(`  - name: base-router6
    id: 2
    cluster: base
    backends:
      - {name: base6-1, id: 12, underlay_ip: %q, mac: "%s", port: 2}
tenants:
`, topo.BaseAddr6, s.topo.BaseMAC), 1)
	}
	return s.write("intent.yaml", doc)
}

// gwNS is the namespace of gateway gw (gw1 or gw2).
func (s *speakerLab) gwNS(gw string) string {
	if gw == "gw2" {
		return s.gw2
	}
	return s.topo.GW
}

func (s *speakerLab) sock() string { return filepath.Join(s.dir, "c.sock") }

// startSpeaker starts gw's speaker in ns, peering with BIRD at peer from
// hop; its controllers are the lab's one controller, or controllers (API
// addresses, comma-separated) when given.
func (s *speakerLab) startSpeaker(gw, ns, hop, peer string, controllers ...string) {
	addrs := "unix://" + s.sock()
	if len(controllers) > 0 {
		addrs = strings.Join(controllers, ", ")
	}
	conf := fmt.Sprintf(speakerConfig, gw, filepath.Join(s.dir, gw+"-policy.json"), addrs, hop, peer)
	if s.ipv6 {
		conf = strings.Replace(conf, "connectRetry: 1s}", "connectRetry: 1s, families: [ipv4-unicast, ipv6-unicast]}", 1)
	}
	cfg := s.write("speaker-"+gw+".yaml", conf)
	s.start("speaker-"+gw, ns, "graygw-speaker", "--config", cfg)
}

// startSpeakers starts both gateways' speakers (startSpeaker), each peering
// with BIRD on its hypervisor link.
func (s *speakerLab) startSpeakers(controllers ...string) {
	for _, p := range hvPeers {
		s.startSpeaker(p.gw, s.gwNS(p.gw), p.hop, p.hv, controllers...)
	}
}

// TestSpeakersOutliveTheControllerAndFollowTheDataplane is issue 14's item 0
// in the lab: the speakers announce each gateway's VIP from the controller's
// policy; a drain reaches BIRD through the policy; with the controller killed
// (SIGKILL) the paths stay for many graceful-restart windows with no ping
// lost; then, still without a controller, a gateway whose link goes down, and
// one whose agent is killed, loses its path within a measured bound while the
// pings go on through the other gateway.
func TestSpeakersOutliveTheControllerAndFollowTheDataplane(t *testing.T) {
	s := buildSpeakerLab(t)
	s.startController()
	s.startSpeakers()
	took := birdlab.WaitFor(t, 60*time.Second, "both gateways announced", s.hopsAre(gw1Hop, gw2Hop))
	t.Logf("both paths at BIRD %s after the speakers started; kernel: %s", took.Round(time.Millisecond), s.kernelRoute())
	rs, err := s.bird.Sock.Routes(topo.VIP.String()+"/32", "gw1")
	if err != nil || len(rs) != 1 || !slices.Contains(rs[0].Community, "(65000,100)") {
		t.Fatalf("gw1's route at BIRD: %+v %v, want the controller's community 65000:100", rs, err)
	}
	s.ping(500*time.Millisecond).wait(t, "both gateways up", 0)

	// A drain is policy: it goes from the controller to gw1's speaker.
	api := stack.Dial(t, s.sock())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.DrainGateway(ctx, &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("drain gw1 -> its path gone at BIRD after %s", birdlab.WaitFor(t, 5*time.Second, "gw1 drained", s.hopsAre(gw2Hop)).Round(time.Millisecond))
	if _, err := api.UndrainGateway(ctx, &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	birdlab.WaitFor(t, 5*time.Second, "gw1 undrained", s.hopsAre(gw1Hop, gw2Hop))

	// Every controller dead: the paths stay, the packets flow.
	s.kill("controller")
	window := 6 * restartTime
	if v := os.Getenv("GRAYGW_SPEAKER_DEAD"); v != "" { // the by-hand run: GRAYGW_SPEAKER_DEAD=10m
		if window, err = time.ParseDuration(v); err != nil {
			t.Fatalf("GRAYGW_SPEAKER_DEAD: %v", err)
		}
	}
	p := s.ping(window)
	var mu sync.Mutex
	var bad []string
	reads := 0
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		got, err := s.hops()
		mu.Lock()
		reads++
		if err != nil || !slices.Equal(got, []string{gw1Hop, gw2Hop}) {
			bad = append(bad, fmt.Sprintf("%s: %v %v", time.Now().Format("15:04:05.000"), got, err))
		}
		mu.Unlock()
	}
	p.wait(t, fmt.Sprintf("controller dead for %s (%d x the speakers' graceful-restart time)", window, window/restartTime), 0)
	if len(bad) > 0 {
		t.Errorf("with the controller dead, BIRD lost a path %d times out of %d reads: %v", len(bad), reads, bad)
	} else {
		t.Logf("controller dead: both paths at BIRD at every one of %d reads over %s", reads, window)
	}

	// gw1's link to the base servers goes down: its speaker withdraws; the
	// pings go on through gw2.
	p = s.ping(3 * time.Second)
	time.Sleep(500 * time.Millisecond)
	if _, err := s.l.Exec(s.topo.GW, "ip", "link", "set", "p2", "down"); err != nil {
		t.Fatal(err)
	}
	took = birdlab.WaitFor(t, 5*time.Second, "gw1 link down", s.hopsAre(gw2Hop))
	t.Logf("gw1 p2 down -> gw1's path gone at BIRD after %s; kernel: %s", took.Round(time.Millisecond), s.kernelRoute())
	if took > time.Second {
		t.Errorf("withdrawal after a link loss took %s (interval 100ms)", took)
	}
	// The echoes hashed to gw1 between the link loss and the withdrawal are
	// lost with the link (one every 20ms), no more.
	p.wait(t, "gw1's link down, no controller", int(took/(20*time.Millisecond))+2)
	if _, err := s.l.Exec(s.topo.GW, "ip", "link", "set", "p2", "up"); err != nil {
		t.Fatal(err)
	}
	took = birdlab.WaitFor(t, 10*time.Second, "gw1 link up", s.hopsAre(gw1Hop, gw2Hop))
	t.Logf("gw1 p2 up -> gw1's path back at BIRD after %s", took.Round(time.Millisecond))

	// gw1's agent is killed: its speaker can no longer read the dataplane and
	// withdraws; the pings go on through gw2.
	p = s.ping(3 * time.Second)
	time.Sleep(500 * time.Millisecond)
	s.kill("agent-gw1")
	took = birdlab.WaitFor(t, 5*time.Second, "gw1 agent killed", s.hopsAre(gw2Hop))
	t.Logf("gw1 agent SIGKILL -> gw1's path gone at BIRD after %s; kernel: %s", took.Round(time.Millisecond), s.kernelRoute())
	if took > time.Second {
		t.Errorf("withdrawal after the agent loss took %s (interval 100ms)", took)
	}
	// The XDP program outlives its agent (pinned), so gw1 forwards until the
	// withdrawal reaches the hypervisor: nothing is lost.
	p.wait(t, "gw1's agent dead, no controller", 0)
	if r := s.kernelRoute(); strings.Contains(r, gw1Hop) || !strings.Contains(r, gw2Hop) {
		t.Errorf("hypervisor's route to the VIP %q: want only via %s", r, gw2Hop)
	}
}

// logsOnFailure has a failed test log the end of the log of every process
// the lab started.
func (s *speakerLab) logsOnFailure() {
	s.t.Cleanup(func() {
		if s.t.Failed() {
			for _, n := range slices.Sorted(maps.Keys(s.procs)) {
				b, _ := os.ReadFile(filepath.Join(s.dir, n+".log"))
				s.t.Logf("%s.log:\n%s", n, lastLines(string(b), 40))
			}
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
