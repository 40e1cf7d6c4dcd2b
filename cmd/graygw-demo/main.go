// Command graygw-demo is the README's quick start: a working gray-release gateway
// on one Linux machine. It builds a lab in network namespaces (a hypervisor with
// VMs in two VPCs, the gateway, base and gray backend servers, topo package),
// starts BIRD as the hypervisor's BGP router, the XDP agent on the gateway and the
// controller, shows the VIP learned by BIRD, sends VM traffic, runs a rollout of
// one VPC VM by VM with probes, and prints the counters that show traffic moving
// from base to gray. Everything it made is removed on exit or Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/topo"
)

const usage = `graygw-demo: a gray-release gateway in network namespaces, end to end.

Usage:
  graygw-demo [--bin DIR] [--keep] [--ha]

It needs root (namespaces, XDP), bird2 and the graygw binaries in --bin (the
quick start's scripts/demo.sh installs and builds all of it). Nothing leaves the
namespaces it creates; all of them are deleted on exit, Ctrl-C included.

Flags:
`

func main() {
	bin := flag.String("bin", "bin", "directory holding graygw-agent, graygw-controller and graygw")
	keep := flag.Bool("keep", false, "after the demo, keep the lab running until Ctrl-C (to look around with ip netns exec)")
	ha := flag.Bool("ha", false, "run three controller replicas on a 3-member etcd cluster (needs etcd-server), send the CLI's calls "+
		"through a follower, and end with a failover of the leader (docs/ha.md)")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage); flag.PrintDefaults() }
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *keep, *ha); err != nil {
		fmt.Fprintln(os.Stderr, "graygw-demo:", err)
		os.Exit(1)
	}
}

// demo holds the running lab.
type demo struct {
	l    *lab.Lab
	t    *topo.Topology
	bin  string
	dir  string // config, logs, sockets
	logs []string

	ha       bool        // --ha: controller replicas on etcd (ha.go)
	replicas []*exec.Cmd // the controller replicas, with --ha
	cliSock  string      // the socket the CLI calls, when not sock()
}

func step(n int, format string, a ...any) {
	fmt.Printf("\n== %d. %s\n", n, fmt.Sprintf(format, a...))
}

func run(ctx context.Context, bin string, keep, ha bool) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	for _, b := range []string{"graygw-agent", "graygw-controller", "graygw"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s not found in %s: build with `make build` (or run scripts/demo.sh)", b, bin)
		}
	}
	l, err := lab.New("ggdemo")
	if errors.Is(err, lab.ErrNotRoot) {
		return errors.New("run as root: the demo creates network namespaces and attaches XDP")
	}
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "graygw-demo-")
	if err != nil {
		return err
	}
	d := &demo{l: l, bin: bin, dir: dir, ha: ha}
	defer d.close()

	step(1, "lab: hypervisor with VMs in VPCs 5001 and 5002, gateway, base and gray servers")
	if d.t, err = topo.Build(l, topo.DefaultVPCs); err != nil {
		return err
	}
	// The hypervisor reaches the VIP only through the route BIRD learns by BGP.
	if _, err := l.Exec(d.t.HV, "ip", "route", "del", "default"); err != nil {
		return err
	}
	for _, v := range d.t.VPCs {
		fmt.Printf("   VPC %d: VMs %s, VPC router %s (answered by base and gray servers)\n", v.VNI, vmList(v), v.RouterAddr())
	}
	return d.scenario(ctx, keep)
}

func vmList(v topo.VPC) string {
	var s []string
	for _, h := range v.VMs {
		s = append(s, v.VMAddr(h).String())
	}
	return strings.Join(s, " ")
}

func (d *demo) close() {
	if err := d.l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
	fmt.Printf("\nlab removed; logs kept in %s\n", d.dir)
}

// logFile opens a log under the demo directory for a started process.
func (d *demo) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(d.dir, name+".log"))
	if err == nil {
		d.logs = append(d.logs, f.Name())
	}
	return f, err
}

// waitFor polls cond every 100ms until it returns nil or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
