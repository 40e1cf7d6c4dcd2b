package probe_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/topo"
)

// newLab builds the namespace lab with an XDP gateway, or skips without root.
func newLab(t *testing.T) *probetest.Lab {
	t.Helper()
	return labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggprobe", nil) })
}

// labProbes are the lab tests' probes: three a target, 20 ms apart.
var labProbes = probe.Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: time.Second}

// movedToGray says whether tg is the VM labWithVMOnGray's rule moves.
func movedToGray(tg probe.Target) bool { return tg.VNI == 5001 && tg.VM.String() == "192.168.1.5" }

// labWithVMOnGray builds the lab and an intent whose one rule moves VM
// 192.168.1.5 of VNI 5001 to the gray pool, compiled (not applied).
func labWithVMOnGray(t *testing.T) (*probetest.Lab, *intent.Intent, *compile.Result) {
	t.Helper()
	l := newLab(t)
	in, res := compiletest.Doc(t, l.IntentYAML(
		"  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n"))
	return l, in, res
}

// applyAndProbe applies res to the lab's gateway and returns every lab VM as a
// probe target (all), the same with what in and res expect of them (targets),
// and a prober on the hypervisor, which the caller closes.
func applyAndProbe(t *testing.T, l *probetest.Lab, in *intent.Intent, res *compile.Result) (all, targets []probe.Target, p *probe.Prober) {
	t.Helper()
	if err := l.Apply(res); err != nil {
		t.Fatalf("apply: %v", err)
	}
	all, err := probe.Targets(l.VPCs(), 0, netipNone)
	if err != nil {
		t.Fatal(err)
	}
	targets, err = probe.Expect(in, res, topo.VIP, all)
	if err != nil {
		t.Fatal(err)
	}
	p = newProber(t, l.ProberConfig(in))
	return all, targets, p
}

// newProber is probe.New(cfg), failing t on an error; the caller closes it.
func newProber(t *testing.T, cfg probe.Config) *probe.Prober {
	t.Helper()
	p, err := probe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runProbes runs the probes of targets through p with opts, failing t on
// an error.
func runProbes(t *testing.T, p *probe.Prober, targets []probe.Target, opts probe.Options) []probe.Result {
	t.Helper()
	rs, err := p.Run(context.Background(), targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestProbesThroughTheGateway sends real VXLAN pings through the XDP gateway:
// one VM moved to the gray cluster is answered by the gray backend, every other
// VM by the base backend; a wrong expectation is reported with who answered;
// a broken gray backend makes that VM's probes lost and nobody else's.
func TestProbesThroughTheGateway(t *testing.T) {
	l, in, res := labWithVMOnGray(t)
	all, targets, p := applyAndProbe(t, l, in, res)
	defer p.Close()
	opts := labProbes

	rs := runProbes(t, p, targets, opts)
	for _, r := range rs {
		want := "base-1"
		if movedToGray(r.Target) {
			want = "gray-1"
		}
		if r.Status != probe.StatusOK || r.Received != 3 || r.AnsweredBy() != want || r.RTTMax <= 0 {
			t.Errorf("%v: %s %d/%d answered by %q (want ok, 3/3, %s): %s", r.Target, r.Status, r.Received, r.Sent, r.AnsweredBy(), want, r.Reason)
		}
	}

	// Everyone expected on base: the moved VM is answered by the wrong backend.
	for i := range targets {
		targets[i].ExpectCluster, targets[i].ExpectPool = intent.ClusterBase, ""
	}
	rs = runProbes(t, p, targets, opts)
	for _, r := range rs {
		if movedToGray(r.Target) {
			if r.Status != probe.StatusWrongBackend || r.Answers[0].Backend != "gray-1" || r.Answers[0].Expected {
				t.Errorf("moved VM expected on base: %+v", r)
			}
		} else if r.Status != probe.StatusOK {
			t.Errorf("%v: %+v", r.Target, r)
		}
	}

	// The gray backend stops answering VNI 5001.
	targets, _ = probe.Expect(in, res, topo.VIP, all)
	if err := l.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	opts.Timeout = 300 * time.Millisecond
	rs = runProbes(t, p, targets, opts)
	for _, r := range rs {
		if movedToGray(r.Target) {
			if r.Status != probe.StatusLost || r.Received != 0 || len(r.Answers) != 0 {
				t.Errorf("VM on a broken gray backend: %+v", r)
			}
		} else if r.Status != probe.StatusOK {
			t.Errorf("%v: %+v", r.Target, r)
		}
	}
}

// TestProberRefusesBadInput: nothing is sent for a bad target or bad options.
func TestProberRefusesBadInput(t *testing.T) {
	l := newLab(t)
	in := compiletest.Load(t, l.IntentYAML(""))
	p := newProber(t, l.ProberConfig(in))
	defer p.Close()
	vpcs := l.VPCs()
	good := probe.Target{VNI: 5001, VM: vpcs[0].VMs[0], Router: vpcs[0].Router}
	for _, tc := range []struct {
		tg   probe.Target
		o    probe.Options
		want error
	}{
		{probe.Target{VNI: 1 << 24, VM: good.VM, Router: good.Router}, probe.Options{}, probe.ErrTarget},
		{probe.Target{VNI: 5001, Router: good.Router}, probe.Options{}, probe.ErrTarget},
		{probe.Target{VNI: 5001, VM: good.VM, Router: good.Router, RouterMAC: "zz"}, probe.Options{}, probe.ErrTarget},
		{good, probe.Options{Count: 1000}, probe.ErrConfig},
	} {
		if _, err := p.Run(context.Background(), []probe.Target{tc.tg}, tc.o); !errors.Is(err, tc.want) {
			t.Errorf("%+v %+v: %v, want %v", tc.tg, tc.o, err, tc.want)
		}
	}
	if _, err := probe.New(probe.Config{VIP: topo.VIP, NetNS: l.Topo.HV, Interface: "nonexistent0"}); !errors.Is(err, probe.ErrSocket) {
		t.Errorf("unknown interface: %v", err)
	}
	// Resolution of the gateway's MAC from the probe host's neighbour table.
	cfg := l.ProberConfig(in)
	cfg.GatewayMAC, cfg.Interface, cfg.Source = "", "", netipNone
	p2, err := probe.New(cfg)
	if err != nil {
		t.Fatalf("resolving interface, source and gateway MAC: %v", err)
	}
	if p2.Source() != topo.HVAddr {
		t.Errorf("source %v, want %v", p2.Source(), topo.HVAddr)
	}
	p2.Close()
	if _, err := p2.Run(context.Background(), []probe.Target{good}, probe.Options{}); !errors.Is(err, probe.ErrClosed) {
		t.Errorf("run after close: %v", err)
	}
}

var netipNone netip.Addr

// TestProbesThroughHighPoolIDs: the XDP program takes any 16-bit pool id
// (pool_slot), so the lab gateway is programmed with pool ids far above 63, and
// with the version slot the compiler gives a changed pool (base id + 32768):
// probes are answered where the tables send them after each change.
func TestProbesThroughHighPoolIDs(t *testing.T) {
	l := newLab(t)
	doc := l.IntentYAML("  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n")
	doc = strings.Replace(doc, "    id: 1\n    cluster: base", "    id: 100\n    cluster: base", 1)
	doc = strings.Replace(doc, "    id: 2\n    cluster: gray", "    id: 30000\n    cluster: gray", 1)
	in, res := compiletest.Doc(t, doc)
	check := func(res *compile.Result, wantIDs map[string]uint16) {
		t.Helper()
		for _, p := range res.Pools {
			if want, ok := wantIDs[p.Name]; ok && p.ID != want {
				t.Fatalf("pool %s compiled to id %d, want %d", p.Name, p.ID, want)
			}
		}
		_, targets, p := applyAndProbe(t, l, in, res)
		defer p.Close()
		rs := runProbes(t, p, targets, labProbes)
		for _, r := range rs {
			want := "base-1"
			if r.Target.VNI == 5001 && r.Target.VM.String() == "192.168.1.5" {
				want = "gray-1"
			}
			if r.Status != probe.StatusOK || r.AnsweredBy() != want {
				t.Errorf("%v: %s answered by %q (want ok by %s): %s", r.Target, r.Status, r.AnsweredBy(), want, r.Reason)
			}
		}
	}
	check(res, map[string]uint16{probetest.BasePool: 100, probetest.GrayPool: 30000})

	// Changing the gray pool's hash fields makes a new pool version in the
	// other slot: id 30000 + 32768, installed before 30000 is removed.
	doc2 := strings.Replace(doc, "hash_fields: [vni, src]", "hash_fields: [vni, src, dst]", 1)
	if doc2 == doc {
		t.Fatal("lab intent has no gray hash_fields to change")
	}
	_, res2 := compiletest.Next(t, doc2, res)
	check(res2, map[string]uint16{probetest.BasePool: 100, probetest.GrayPool: 30000 + compile.SlotOffset})
	if got := l.DP.Pools(); !slices.Equal(sorted(got), []uint16{100, 30000 + compile.SlotOffset}) {
		t.Errorf("pools owning buckets after the change: %v, want [100 %d]", got, 30000+compile.SlotOffset)
	}
}

func sorted(s []uint16) []uint16 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestTCPAndUDPProbesThroughTheGateway: TCP connect and UDP echo probes go
// through the XDP gateway like the VM's own flows and are answered by the
// backend it chose: base serves TCP 8080 and UDP echo 7777, gray only the
// UDP echo. A VM moved to gray answers ICMP and UDP but refuses TCP (a reset
// from gray-1); every other VM is ok on all three; base's UDP echo stopped,
// the base VMs' UDP probes are refused (base-1's kernel answers with ICMP
// port unreachable) and nothing else changes.
func TestTCPAndUDPProbesThroughTheGateway(t *testing.T) {
	l, in, res := labWithVMOnGray(t)
	var stops []func()
	serve := func(s *probetest.Service, err error) *probetest.Service {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, s.Stop)
		return s
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	serve(l.ServeTCP(false, 8080))
	baseUDP := serve(l.ServeUDPEcho(false, 7777))
	serve(l.ServeUDPEcho(true, 7777))

	icmp, _, p := applyAndProbe(t, l, in, res)
	defer p.Close()
	var all []probe.Target
	for _, tg := range icmp {
		tcp, udp := tg, tg
		tcp.Proto, tcp.Port = probe.ProtoTCP, 8080
		udp.Proto, udp.Port = probe.ProtoUDP, 7777
		all = append(all, tg, tcp, udp)
	}
	targets, err := probe.Expect(in, res, topo.VIP, all)
	if err != nil {
		t.Fatal(err)
	}
	opts := labProbes
	rs := runProbes(t, p, targets, opts)
	for _, r := range rs {
		wantStatus, wantBy := probe.StatusOK, "base-1"
		if movedToGray(r.Target) {
			wantBy = "gray-1"
			if r.Target.Proto == probe.ProtoTCP {
				wantStatus = probe.StatusRefused
			}
		}
		if r.Status != wantStatus || r.Received != 3 || r.AnsweredBy() != wantBy {
			t.Errorf("%v: %s %d/%d answered by %q (want %s, 3/3, %s): %s", r.Target, r.Status, r.Received, r.Sent, r.AnsweredBy(), wantStatus, wantBy, r.Reason)
		}
		if r.Status == probe.StatusRefused && !strings.Contains(r.Reason, "3 of 3 connections to port 8080 refused (TCP reset) by gray-1") {
			t.Errorf("%v: reason %q", r.Target, r.Reason)
		}
	}

	baseUDP.Stop()
	opts.Timeout = 300 * time.Millisecond
	rs = runProbes(t, p, targets, opts)
	for _, r := range rs {
		want := probe.StatusOK
		switch {
		case movedToGray(r.Target) && r.Target.Proto == probe.ProtoTCP:
			want = probe.StatusRefused
		case !movedToGray(r.Target) && r.Target.Proto == probe.ProtoUDP:
			want = probe.StatusRefused
			if !strings.Contains(r.Reason, "datagrams to port 7777 refused (ICMP port unreachable) by base-1") {
				t.Errorf("%v: reason %q", r.Target, r.Reason)
			}
		}
		if r.Status != want {
			t.Errorf("base's UDP echo stopped: %v: %s (want %s): %s", r.Target, r.Status, want, r.Reason)
		}
	}
}
