//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/bpf/internal/bpftest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// XDP verdicts.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// loIfindex is the ingress interface of BPF_PROG_TEST_RUN (the loopback).
const loIfindex = 1

// skipUnlessBPF skips a test that needs to load BPF programs when the process
// cannot (not root, or no BPF); a load failure for any other reason fails it.
func skipUnlessBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs (run go test as root)")
	}
}

// openTest loads the program with private maps, closed at the end of the test.
func openTest(t testing.TB) *Dataplane {
	t.Helper()
	skipUnlessBPF(t)
	d, err := Open(Options{NoPin: true})
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
		t.Skipf("BPF unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// pinDir returns a fresh pin directory under bpffs, removed after the test.
func pinDir(t testing.TB) string {
	t.Helper()
	bpftest.NeedPins(t, "load BPF programs")
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("graygw-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func basicModel(t testing.TB) *model.State {
	t.Helper()
	_, ms := committedState(t, "basic")
	return ms
}

// committedState returns the committed vectors and the model of their state
// name.
func committedState(t testing.TB, name string) (*testvectors.File, *model.State) {
	t.Helper()
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	st := f.States[name]
	ms, err := st.Model()
	if err != nil {
		t.Fatal(err)
	}
	return f, ms
}

// basicPinned opens a Dataplane pinned in a fresh dir holding basicModel
// (ms); the test closes it, typically to reopen.
func basicPinned(t testing.TB) (dir string, d *Dataplane, ms *model.State) {
	t.Helper()
	dir = pinDir(t)
	d = openPinned(t, dir)
	ms = basicModel(t)
	applyState(t, d, ms)
	return dir, d, ms
}

// openPinned loads the program with its maps pinned in dir (reusing pins that
// are there); the test closes it, typically to reopen.
func openPinned(t testing.TB, dir string) *Dataplane {
	t.Helper()
	d, err := Open(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// reopen loads the program over the maps pinned in dir, as a restarted loader
// does; they are unpinned and closed at the end of the test.
func reopen(t testing.TB, dir string) *Dataplane {
	t.Helper()
	d := openPinned(t, dir)
	t.Cleanup(func() { d.Unpin(); d.Close() })
	return d
}

// restart closes d and loads the program over the maps pinned in dir again,
// as a restarted or upgraded loader does.
func restart(t testing.TB, d *Dataplane, dir string) *Dataplane {
	t.Helper()
	d.Close()
	return reopen(t, dir)
}

// minFrame is the shortest frame XDP ever sees: BPF_PROG_TEST_RUN refuses
// shorter ones, and so do bpf_xdp_adjust_head/tail, so the program's
// ETH_TRUNCATED check is defensive and cannot be exercised from here.
const minFrame = 14

// run passes frame (at least minFrame bytes) through the program once.
func run(t testing.TB, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	opts := ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Repeat: 1}
	ret, err := prog.Run(&opts)
	if err != nil {
		t.Fatalf("prog.Run(%d bytes): %v", len(frame), err)
	}
	return ret, opts.DataOut
}

// applyState writes the reference model's tables through the Dataplane API,
// and binds every port a backend uses to the loopback (ingress: XDP_TX).
// setAll calls set on every entry of all, failing t on an error.
func setAll[K, V any](t testing.TB, all iter.Seq2[K, V], set func(K, V) error) {
	t.Helper()
	for k, v := range all {
		if err := set(k, v); err != nil {
			t.Fatal(err)
		}
	}
}

func applyState(t testing.TB, d *Dataplane, s *model.State) {
	t.Helper()
	setAll(t, maps.All(s.VIPs), func(a uint32, v model.VIP) error {
		return d.SetVIP(addr4(a), VIP{ID: v.ID, DefaultPool: v.DefaultPool})
	})
	setAll(t, maps.All(s.VIPsV6), func(a [16]byte, v VIP) error { return d.SetVIP(netip.AddrFrom16(a), v) })
	setAll(t, slices.All(s.GrayRulesV6), func(_ int, g model.GrayRuleV6) error { return d.InsertRuleV6(g) })
	setAll(t, maps.All(s.Tenants), d.SetTenant)
	setAll(t, slices.All(s.GrayRules), func(_ int, g model.GrayRule) error { return d.InsertRule(g) })
	setAll(t, maps.All(s.PoolHash), d.SetPoolHash)
	pools := map[uint16][]uint16{}
	for k := range s.BackendSelect {
		pools[k.Pool] = nil
	}
	for pool := range pools {
		// contiguous runs of filled buckets, one batch each
		for b := 0; b < pipeline.Buckets; {
			var ids []uint16
			start := b
			for ; b < pipeline.Buckets; b++ {
				id, ok := s.BackendSelect[model.SelectKey{Pool: pool, Bucket: uint16(b)}]
				if !ok {
					break
				}
				ids = append(ids, id)
			}
			if err := d.SetBuckets(pool, uint16(start), ids); err != nil {
				t.Fatal(err)
			}
			b++
		}
	}
	for id, be := range s.Backends {
		if err := d.SetBackendEntry(id, be); err != nil {
			t.Fatal(err)
		}
		if err := d.SetPort(be.Port, loIfindex); err != nil {
			t.Fatal(err)
		}
	}
	for k := range s.VLANAccept {
		if err := d.SetVLANAccept(k.Port, k.VID); err != nil {
			t.Fatal(err)
		}
	}
	for port, vid := range s.PortVLAN {
		if err := d.SetPortVLAN(port, vid); err != nil {
			t.Fatal(err)
		}
	}
}

// receiveOn makes BPF_PROG_TEST_RUN's ingress interface (the loopback) port
// port, for vlan_accept.
func receiveOn(t testing.TB, d *Dataplane, port uint16) {
	t.Helper()
	if err := d.objs.IfindexPort.Update(uint32(loIfindex), uint32(port), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// grayRule is a rule of priority prio matching value under mask (its action
// unset: setPool gives one).
func grayRule(prio int32, value, mask ruleKey) model.GrayRule {
	return model.GrayRule{Priority: prio, VIPID: value.VIPID, VIPMask: mask.VIPID, Match: value.Flow, Mask: mask.Flow}
}

// setPool is r sending its traffic to pool.
func setPool(r model.GrayRule, pool uint16) model.GrayRule {
	r.Action, r.Pool = SetPool, pool
	return r
}

// portsOf returns the ports the backends of s use, sorted.
func portsOf(s *model.State) []uint16 {
	var ps []uint16
	for _, be := range s.Backends {
		if !slices.Contains(ps, be.Port) {
			ps = append(ps, be.Port)
		}
	}
	slices.Sort(ps)
	return ps
}

// aimPorts makes port `ingress` the ingress interface (XDP_TX) and every other
// port of ps another one (redirect). ingress -1: every port redirects. The
// devmap keeps pointing at the loopback, which exists in every namespace.
func aimPorts(t testing.TB, d *Dataplane, ps []uint16, ingress int) {
	t.Helper()
	for _, p := range ps {
		ifx := uint32(1000 + int(p))
		if int(p) == ingress {
			ifx = loIfindex
		}
		if err := d.objs.PortIfindex.Update(uint32(p), ifx, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
}

// wantVerdict maps the model's verdict to XDP's (forwarding via XDP_TX).
func wantVerdict(v model.Verdict) uint32 {
	switch v {
	case model.Forward:
		return xdpTX
	case model.NotForUs:
		return xdpPass
	}
	return xdpDrop
}

func verdictName(v uint32) string {
	if v <= xdpRedirect {
		return [...]string{"ABORTED", "DROP", "PASS", "TX", "REDIRECT"}[v]
	}
	return "?"
}

// vectorsAgree runs every committed vector (those of at least minFrame bytes)
// through d's program, with the backends' ports aimed as the model's decision
// over ms needs, and calls mismatch for each whose verdict, or forwarded frame,
// is not the model's. It returns how many vectors the model forwards.
func vectorsAgree(t testing.TB, d *Dataplane, ms *model.State, mismatch func(name string, ret uint32, want model.Result)) (forwarded int) {
	t.Helper()
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	ports := portsOf(ms)
	for _, c := range f.Cases {
		frame, _ := c.Frame()
		if len(frame) < minFrame {
			continue
		}
		want := model.Process(ms, frame)
		aimPorts(t, d, ports, int(want.Port))
		if ret, out := run(t, d.Program(), frame); ret != wantVerdict(want.Verdict) ||
			(want.Verdict == model.Forward && string(out) != string(want.Frame)) {
			mismatch(c.Name, ret, want)
		}
		if want.Verdict == model.Forward {
			forwarded++
		}
	}
	return forwarded
}
