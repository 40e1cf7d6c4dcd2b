//go:build linux

// Package xdpbench measures the graygw XDP program per packet with
// BPF_PROG_TEST_RUN and a large repeat count, through bench_wrapper (which
// restores the frame before each tail call into the program under test), as
// ratios to a minimal XDP program measured in the same run. It backs
// bpf/cmd/xdpbench, which writes bench/xdp.md.
package xdpbench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// Config sets how long to measure.
type Config struct {
	Repeat int // repetitions per kernel call
	Rounds int // interleaved rounds; the mean of the middle half is reported
	Seed   uint64
}

// Result is one measured path.
type Result struct {
	Name  string
	NS    float64 // ns per packet of the program under test (wrapper cost removed)
	Ratio float64 // NS / the minimal program's ns per packet
	Runs  uint64  // repetitions the counters saw take the intended path
}

// Report is a whole run.
type Report struct {
	MinimalNS, WrapperNS float64 // the reference, and wrapper+tail call+reference
	Paths                []Result
	// VLAN are the 802.1Q paths over the vectors' vlan state, the untagged
	// one first (Ratio stays to the minimal program; VLANBase is the first's NS).
	VLAN []Result
	// IPv6 are the IPv6 paths over ipv6.json's state, after the IPv4
	// overlay gray hit of the basic state measured in the same rounds (the
	// reference of their last column).
	IPv6    []Result
	Scaling []Result
	Masks   int
}

// bench owns the harness programs and the frame/target maps.
type bench struct {
	objs benchObjects
	cfg  Config
}

// Run measures everything; it needs root.
func Run(cfg Config) (*Report, error) {
	b := &bench{cfg: cfg}
	if err := loadBenchObjects(&b.objs, nil); err != nil {
		return nil, fmt.Errorf("xdpbench: load harness: %w", err)
	}
	defer b.objs.Close()
	rep := &Report{}

	// The four paths over the test vectors' basic state.
	vf, err := testvectors.Committed()
	if err != nil {
		return nil, err
	}
	d, st, err := loadState(vf, "basic")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	frames := framesOf(vf)
	paths := []vector{
		{"overlay, gray rule hit (VM moved)", "overlay_vm_cutover"},
		{"overlay, default pool (no rule)", "overlay_default_pool"},
		{"plain TCP to a VIP", "plain_tcp"},
		{"not a VIP (XDP_PASS)", "pass_not_vip"},
	}
	var mins, wraps []float64
	got := make([][]float64, len(paths))
	runs := make([]uint64, len(paths))
	for range cfg.Rounds {
		m, w, err := b.reference(frames["overlay_default_pool"])
		if err != nil {
			return nil, err
		}
		mins, wraps = append(mins, m), append(wraps, w)
		for i, p := range paths {
			ns, n, err := b.timeGraygw(d, st, frames[p.vector])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			got[i] = append(got[i], ns)
			runs[i] += n
		}
	}
	rep.MinimalNS, rep.WrapperNS = median(mins), median(wraps)
	for i, p := range paths {
		rep.Paths = append(rep.Paths, b.result(p.name, median(got[i]), rep, runs[i]))
	}
	if err := b.mirrorPaths(vf, frames, rep); err != nil {
		return nil, err
	}
	if err := b.vlanPaths(vf, frames, rep); err != nil {
		return nil, err
	}
	if err := b.ipv6Paths(d, st, frames["overlay_vm_cutover"], rep); err != nil {
		return nil, err
	}

	// Cost against the number of gray rules, over a fixed set of masks.
	for _, n := range []int{10, 1000, 10000} {
		st, hit, miss := scaled(n, cfg.Seed)
		if h, m := model.Process(st, hit), model.Process(st, miss); h.Pool != 2 || m.Pool != 1 {
			return nil, fmt.Errorf("xdpbench: %d rules: the hit packet goes to pool %d and the miss to %d, want 2 and 1", n, h.Pool, m.Pool)
		}
		d, err := load(st)
		if err != nil {
			return nil, err
		}
		rep.Masks = d.MaskCount()
		for _, c := range []struct {
			name  string
			frame []byte
		}{{fmt.Sprintf("%d rules, VM rule hit", n), hit}, {fmt.Sprintf("%d rules, no rule matches", n), miss}} {
			var ts []float64
			var total uint64
			for range cfg.Rounds {
				ns, k, err := b.timeGraygw(d, st, c.frame)
				if err != nil {
					d.Close()
					return nil, fmt.Errorf("%s: %w", c.name, err)
				}
				ts, total = append(ts, ns), total+k
			}
			rep.Scaling = append(rep.Scaling, b.result(c.name, median(ts), rep, total))
		}
		d.Close()
	}
	return rep, nil
}

// mirrorPaths times a mirrored frame (docs/pipeline.md §10) against a frame
// of the same set_pool_mirror rule whose VM is not sampled, over the vectors'
// mirror state: the XDP program's part of a copy (the second backend lookup
// and the prefix for graygw_tc). The tc program's clone and redirect run on
// an skb, outside BPF_PROG_TEST_RUN's XDP path, and are not in these figures.
func (b *bench) mirrorPaths(vf *testvectors.File, frames map[string][]byte, rep *Report) error {
	d, st, err := loadState(vf, testvectors.StateMirror)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := b.rounds(rep, b.vectorPaths(d, st, 0, frames, []vector{
		{"overlay, mirror rule, VM not sampled (served only)", "mirror_sampled_out"},
		{"overlay, mirror rule, VM sampled (served + copy, XDP part)", "mirror_sampled_in"},
	}))
	rep.Paths = append(rep.Paths, res...)
	return err
}

// vlanPaths times 802.1Q frames (docs/pipeline.md §1, §8) against the same
// frame untagged, over the vectors' vlan state, each received on port
// testvectors.VLANInPort (BPF_PROG_TEST_RUN's ingress, the loopback, is bound
// to it): the tag parsed and checked (ifindex_port, vlan_accept), then kept
// with a new VID, removed or pushed (bpf_xdp_adjust_head), and a refused VID.
// Rounds interleave the paths, so the ratios to the untagged path compare
// the same moments of a shared machine.
func (b *bench) vlanPaths(vf *testvectors.File, frames map[string][]byte, rep *Report) error {
	d, st, err := loadState(vf, testvectors.StateVLAN)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.SetPort(testvectors.VLANInPort, 1); err != nil { // the loopback is the VLAN port
		return err
	}
	rep.VLAN, err = b.rounds(rep, b.vectorPaths(d, st, testvectors.VLANInPort, frames, []vector{
		{"overlay to an untagged port, untagged (the reference)", "vlan_untagged_unchanged"},
		{"overlay to an untagged port, tagged: tag removed", "vlan_tagged_stripped"},
		{"overlay to a tagged port, tagged: VID rewritten", "vlan_tagged_rewritten"},
		{"overlay to a tagged port, untagged: tag pushed", "vlan_untagged_pushed"},
		{"tagged, VID not accepted (VLAN_NOT_ACCEPTED)", "drop_vlan_not_accepted"},
	}))
	return err
}

// ipv6Paths times IPv6 frames over ipv6.json's state (docs/pipeline.md, the
// IPv6 rows of §1-8): graygw_xdp's tail call into graygw_xdp6, and for an
// IPv4 flow behind an IPv6 outer the second one into graygw_xdp64. Each
// round first times v4Frame over v4 (the basic state), the IPv4 reference.
func (b *bench) ipv6Paths(v4 *bpf.Dataplane, v4st *model.State, v4Frame []byte, rep *Report) error {
	f6, err := testvectors.IPv6()
	if err != nil {
		return err
	}
	d, st, err := loadState(f6, "ipv6")
	if err != nil {
		return err
	}
	defer d.Close()
	ref := b.path("IPv4 reference: overlay IPv4 in IPv4, gray rule hit (basic state)", v4, v4st, 0, v4Frame)
	paths := append([]benchPath{ref}, b.vectorPaths(d, st, 0, framesOf(f6), []vector{
		{"overlay IPv6 in IPv6, gray rule hit (VM moved)", "v6_overlay_vm_cutover"},
		{"overlay IPv6 in IPv6, default pool (no rule)", "v6_overlay_default_pool"},
		{"plain IPv6 TCP to a VIP", "v6_plain_tcp"},
		{"overlay IPv6 in IPv4, gray rule hit", "v4_outer_v6_inner"},
		{"overlay IPv4 in IPv6, gray rule hit (graygw_xdp64)", "v6_outer_v4_inner"},
		{"IPv6, not a VIP (XDP_PASS)", "pass_v6_not_vip"},
	})...)
	rep.IPv6, err = b.rounds(rep, paths)
	return err
}

// benchPath is a path to time: run times it once (ns per packet, and the
// repetitions the counters saw take it).
type benchPath struct {
	name string
	run  func() (float64, uint64, error)
}

// path is the path of frame received on inPort over d, filled with st.
func (b *bench) path(name string, d *bpf.Dataplane, st *model.State, inPort uint16, frame []byte) benchPath {
	return benchPath{name, func() (float64, uint64, error) { return b.timeGraygwOn(d, st, inPort, frame) }}
}

// vector is a test vector to time, and the report's name for its path.
type vector struct{ name, vector string }

// vectorPaths is a path per vector, its frame (from frames) received on
// inPort by d, which holds st.
func (b *bench) vectorPaths(d *bpf.Dataplane, st *model.State, inPort uint16, frames map[string][]byte, vs []vector) []benchPath {
	paths := make([]benchPath, len(vs))
	for i, v := range vs {
		paths[i] = b.path(v.name, d, st, inPort, frames[v.vector])
	}
	return paths
}

// framesOf is the frames of f's cases by name.
func framesOf(f *testvectors.File) map[string][]byte {
	frames := map[string][]byte{}
	for _, c := range f.Cases {
		frames[c.Name], _ = c.Frame()
	}
	return frames
}

// loadState loads a Dataplane holding f's state name.
func loadState(f *testvectors.File, name string) (*bpf.Dataplane, *model.State, error) {
	s := f.States[name]
	st, err := s.Model()
	if err != nil {
		return nil, nil, err
	}
	d, err := load(st)
	if err != nil {
		return nil, nil, err
	}
	return d, st, nil
}

// rounds times every path once per round, the paths interleaved so that they
// share the same moments of a shared machine, and returns their results.
func (b *bench) rounds(rep *Report, paths []benchPath) ([]Result, error) {
	got := make([][]float64, len(paths))
	runs := make([]uint64, len(paths))
	for range b.cfg.Rounds {
		for i, p := range paths {
			ns, n, err := p.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			got[i] = append(got[i], ns)
			runs[i] += n
		}
	}
	out := make([]Result, len(paths))
	for i, p := range paths {
		out[i] = b.result(p.name, median(got[i]), rep, runs[i])
	}
	return out, nil
}

func (b *bench) result(name string, wrapped float64, rep *Report, runs uint64) Result {
	ns := wrapped - rep.WrapperNS + rep.MinimalNS
	return Result{Name: name, NS: ns, Ratio: ns / rep.MinimalNS, Runs: runs}
}

// reference times the minimal program alone and behind the wrapper.
func (b *bench) reference(frame []byte) (minimal, wrapped float64, err error) {
	_, dur, err := b.objs.BenchMinimal.Benchmark(frame, b.cfg.Repeat, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("xdpbench: minimal: %w", err)
	}
	w, err := b.wrapped(b.objs.BenchMinimal, frame)
	return float64(dur.Nanoseconds()), w, err
}

// wrapped times prog behind the frame-restoring wrapper.
func (b *bench) wrapped(prog *ebpf.Program, frame []byte) (float64, error) {
	var f benchFrame
	if len(frame) > len(f.Data) {
		return 0, errors.New("xdpbench: frame too long")
	}
	f.Len = uint32(len(frame))
	copy(f.Data[:], frame)
	if err := b.objs.BenchFrame.Update(uint32(0), &f, ebpf.UpdateAny); err != nil {
		return 0, fmt.Errorf("xdpbench: frame: %w", err)
	}
	if err := b.objs.BenchTarget.Update(uint32(0), prog, ebpf.UpdateAny); err != nil {
		return 0, fmt.Errorf("xdpbench: target: %w", err)
	}
	ret, dur, err := b.objs.BenchWrapper.Benchmark(frame, b.cfg.Repeat, nil)
	if err != nil {
		return 0, fmt.Errorf("xdpbench: run: %w", err)
	}
	if ret == 0 {
		return 0, errors.New("xdpbench: wrapper aborted (restore or tail call failed)")
	}
	return float64(dur.Nanoseconds()), nil
}

// timeGraygw times the program on frame and checks with its own counters that
// every repetition took the path the model predicts for the frame.
func (b *bench) timeGraygw(d *bpf.Dataplane, st *model.State, frame []byte) (float64, uint64, error) {
	return b.timeGraygwOn(d, st, 0, frame)
}

// timeGraygwOn is timeGraygw for a frame received on port inPort.
func (b *bench) timeGraygwOn(d *bpf.Dataplane, st *model.State, inPort uint16, frame []byte) (float64, uint64, error) {
	want := model.ProcessPort(st, inPort, frame)
	count := func() (uint64, error) {
		switch want.Verdict {
		case model.Forward:
			c, err := d.BackendCounter(want.BackendID)
			return c.Packets, err
		default:
			cs, err := d.DropCounters()
			return cs[want.Reason].Packets, err
		}
	}
	before, err := count()
	if err != nil {
		return 0, 0, err
	}
	ns, err := b.wrapped(d.Program(), frame)
	if err != nil {
		return 0, 0, err
	}
	after, err := count()
	if err != nil {
		return 0, 0, err
	}
	if n := after - before; n < uint64(b.cfg.Repeat) {
		return 0, 0, fmt.Errorf("xdpbench: only %d of %d repetitions took the %s %s path (backend %d)",
			n, b.cfg.Repeat, want.Verdict, want.Reason, want.BackendID)
	}
	return ns, after - before, nil
}

// load opens private maps filled with st; every port is the loopback.
func load(st *model.State) (*bpf.Dataplane, error) {
	d, err := bpf.Open(bpf.Options{NoPin: true})
	if err != nil {
		return nil, err
	}
	if err := apply(d, st); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func apply(d *bpf.Dataplane, st *model.State) error {
	for a, v := range st.VIPs {
		if err := d.SetVIP(addr(a), bpf.VIP{ID: v.ID, DefaultPool: v.DefaultPool}); err != nil {
			return err
		}
	}
	for a, v := range st.VIPsV6 {
		if err := d.SetVIP(netip.AddrFrom16(a), v); err != nil {
			return err
		}
	}
	for vni, t := range st.Tenants {
		if err := d.SetTenant(vni, t); err != nil {
			return err
		}
	}
	for _, r := range st.GrayRules {
		if err := d.InsertRule(r); err != nil {
			return err
		}
	}
	for _, r := range st.GrayRulesV6 {
		if err := d.InsertRuleV6(r); err != nil {
			return err
		}
	}
	for p, m := range st.PoolHash {
		if err := d.SetPoolHash(p, m); err != nil {
			return err
		}
	}
	pools := map[uint16][]uint16{}
	for k := range st.BackendSelect {
		if pools[k.Pool] == nil {
			pools[k.Pool] = make([]uint16, pipeline.Buckets)
		}
		pools[k.Pool][k.Bucket] = st.BackendSelect[k]
	}
	for p, ids := range pools {
		if err := d.SetBuckets(p, 0, ids); err != nil { // the bench states fill whole pools
			return err
		}
	}
	for id, be := range st.Backends {
		if err := d.SetBackendEntry(id, be); err != nil {
			return err
		}
		if err := d.SetPort(be.Port, 1); err != nil { // loopback: XDP_TX
			return err
		}
	}
	for k := range st.VLANAccept {
		if err := d.SetVLANAccept(k.Port, k.VID); err != nil {
			return err
		}
	}
	for port, vid := range st.PortVLAN {
		if err := d.SetPortVLAN(port, vid); err != nil {
			return err
		}
	}
	return nil
}

// scaled builds a state with n gray rules spread over six masks, like a
// rollout in progress: whole VPCs, VMs, a VM's service, single flows, tenants
// and VIP-scoped destination prefixes. Priorities rise with specificity. It
// returns a frame hitting a VM rule and one matching no rule.
func scaled(n int, seed uint64) (st *model.State, hit, miss []byte) {
	rng := rand.New(rand.NewPCG(seed, 1))
	st = model.NewState()
	st.VIPs[ip("10.255.0.1")] = model.VIP{ID: 1, DefaultPool: 1}
	exact32 := uint32(0xffffffff)
	for p, id := range map[uint16]uint16{1: 11, 2: 21} {
		for bkt := range pipeline.Buckets {
			st.BackendSelect[model.SelectKey{Pool: p, Bucket: uint16(bkt)}] = id
		}
		st.Backends[id] = model.Backend{Port: 1, UnderlayIP: ip("10.2.0.1") + uint32(id)}
	}
	masks := []struct {
		prio int32
		mask model.GrayRule
	}{
		{4_000_000, model.GrayRule{Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: exact32, Dst: exact32, Proto: 0xff, SPort: 0xffff, DPort: 0xffff}}},
		{3_000_000, model.GrayRule{Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: exact32, DPort: 0xffff}}},
		{2_000_000, model.GrayRule{Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: exact32}}},
		{1_000_000, model.GrayRule{Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI}}},
		{500_000, model.GrayRule{VIPMask: 0xffff, Mask: pipeline.FlowKey{Dst: 0xffff0000}}},
		{100_000, model.GrayRule{Mask: pipeline.FlowKey{Tenant: 0xffff}}},
	}
	var vmVNI, vmSrc uint32
	for i := range n {
		m := masks[i%len(masks)]
		r := m.mask
		r.Priority = m.prio + int32(i)
		r.VIPID = 1
		r.Match = pipeline.FlowKey{VNI: 10000 + uint32(rng.IntN(1<<20)), Tenant: uint16(1000 + i), Src: 0x0a000000 | rng.Uint32()&0xffffff,
			Dst: 0xc0a80000 | rng.Uint32()&0xffff, Proto: 6, SPort: uint16(rng.Uint32()), DPort: uint16(rng.Uint32())}
		if i%len(masks) == 4 {
			r.Match.Dst = uint32(0xac100000) + uint32(i)<<16 // distinct /16s
		}
		r.Action, r.Pool = model.SetPool, 2
		r.Match = r.Match.And(r.Mask)
		if i%len(masks) == 2 && vmVNI == 0 {
			vmVNI, vmSrc = r.Match.VNI, r.Match.Src
		}
		st.GrayRules = append(st.GrayRules, r)
	}
	l4 := testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 33000, DPort: 80, Payload: []byte("graygw")}
	hit = testvectors.Overlay(netip.MustParseAddr("10.255.0.1"), vmVNI, addr(vmSrc).String(), "192.168.1.1", l4)
	// The miss goes to 10.200.1.1: the VIP + /16 rules take 172.16/16 upwards,
	// and from 5273 rules on one of them covers 192.168/16.
	miss = testvectors.Overlay(netip.MustParseAddr("10.255.0.1"), 7, "10.99.0.1", "10.200.1.1", l4)
	return st, hit, miss
}

// median is the mean of the middle half of xs: the kernel reports whole
// nanoseconds per repetition, and averaging rounds recovers some resolution
// while ignoring rounds disturbed by other work on the machine.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	q := len(s) / 4
	s = s[q : len(s)-q]
	var sum float64
	for _, x := range s {
		sum += x
	}
	return sum / float64(len(s))
}

func ip(s string) uint32 {
	b := netip.MustParseAddr(s).As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
