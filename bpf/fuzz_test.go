//go:build linux

package bpf

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

var (
	fuzzSeed    = flag.Uint64("bpf.seed", 20261122, "seed of TestDifferential")
	fuzzStates  = flag.Int("bpf.states", 10, "random table states in TestDifferential")
	fuzzPackets = flag.Int("bpf.packets", 200, "random packets per state in TestDifferential")
)

// TestDifferential runs random packets, valid and broken, over random table
// states through the program and the reference model and requires the same
// decision: verdict, drop reason, port and output bytes. Reproduce a failure
// with -bpf.seed=N (printed on failure).
func TestDifferential(t *testing.T) {
	skipUnlessBPF(t)
	seen := map[string]int{} // what the packets exercised, by the model's account
	for s := range *fuzzStates {
		seed := *fuzzSeed + uint64(s)
		rng := rand.New(rand.NewPCG(seed, 0x67726179))
		g := newGen(rng)
		st := g.state()
		d := openTest(t)
		if s%2 == 1 {
			churnSlots(t, d, st)
		}
		applyState(t, d, st)
		ports := portsOf(st)
		compared := 0
		for i := range *fuzzPackets {
			frame := g.packet()
			if len(frame) < minFrame {
				continue
			}
			want := model.Process(st, frame)
			aimPorts(t, d, ports, int(want.Port))
			before, err := d.DropCounters()
			if err != nil {
				t.Fatal(err)
			}
			ret, out := run(t, d.Program(), frame)
			after, err := d.DropCounters()
			if err != nil {
				t.Fatal(err)
			}
			got := pipeline.None
			for r := range pipeline.NumReasons {
				if after[r].Packets != before[r].Packets {
					got = pipeline.Reason(r)
				}
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("seed %d (state %d) packet %d: %s\nframe %x\nmodel %s %s port %d rule %d pool %d bucket %d",
					seed, s, i, fmt.Sprintf(format, args...), frame, want.Verdict, want.Reason, want.Port,
					want.Rule, want.Pool, want.Bucket)
			}
			if ret != wantVerdict(want.Verdict) {
				fail("verdict %s (reason %s), want %s", verdictName(ret), got, verdictName(wantVerdict(want.Verdict)))
			}
			if got != want.Reason {
				fail("reason %s, want %s", got, want.Reason)
			}
			if want.Verdict == model.Forward && !bytes.Equal(out, want.Frame) {
				fail("output\n got %x\nwant %x", out, want.Frame)
			}
			compared++
			seen[want.Verdict.String()+" "+want.Reason.String()]++
			if want.Verdict == model.Forward && want.Pool >= MaxPools {
				seen["forward pool >= 64"]++
			}
			if want.Reason == pipeline.NoBackend {
				if g.owns[want.Pool] {
					seen["NO_BACKEND pool with buckets"]++
				} else {
					seen["NO_BACKEND pool without buckets"]++
				}
			}
			if want.Rule >= 0 {
				seen["gray rule "+[...]string{"", "set_pool", "split_pool"}[st.GrayRules[want.Rule].Action]]++
			}
			if want.Verdict == model.Forward {
				m, ok := st.PoolHash[want.Pool]
				switch b := hashBits(m, ok); {
				case b == poolHashLookup:
					seen["forward, hash mask from pool_hash"]++
				case b != 0:
					seen["forward, hash mask from pool_slot bits"]++
				default:
					seen["forward, every field hashed"]++
				}
			}
		}
		if compared < *fuzzPackets/2 {
			t.Fatalf("seed %d: only %d of %d packets were long enough to compare", seed, compared, *fuzzPackets)
		}
	}
	t.Logf("exercised: %v", seen)
	for _, k := range []string{"forward NONE", "pass NOT_VIP", "drop NO_BACKEND", "drop TTL_EXPIRED",
		"drop L4_TRUNCATED", "drop VXLAN_BAD_FLAGS", "gray rule set_pool", "gray rule split_pool",
		"forward pool >= 64", "NO_BACKEND pool with buckets", "NO_BACKEND pool without buckets",
		"forward, hash mask from pool_hash", "forward, hash mask from pool_slot bits", "forward, every field hashed"} {
		if seen[k] == 0 && *fuzzStates >= 8 {
			t.Errorf("no packet exercised %q: the generator lost coverage", k)
		}
	}
}

// FuzzProgram compares the program with the model on arbitrary frames over
// the test vectors' basic state: go test -fuzz=FuzzProgram ./bpf/
func FuzzProgram(f *testing.F) {
	vf, err := testvectors.Committed()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range vf.Cases {
		if b, err := c.Frame(); err == nil {
			f.Add(b)
		}
	}
	basic := vf.States["basic"]
	st, err := basic.Model()
	if err != nil {
		f.Fatal(err)
	}
	d := openTest(f)
	applyState(f, d, st)
	aimPorts(f, d, portsOf(st), -1)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < minFrame || len(frame) > 1500 {
			return
		}
		want := model.Process(st, frame)
		ret, out := run(t, d.Program(), frame)
		wantRet := wantVerdict(want.Verdict)
		if wantRet == xdpTX {
			wantRet = xdpRedirect // every port aimed elsewhere
		}
		if ret != wantRet {
			t.Fatalf("verdict %s, model %s %s", verdictName(ret), want.Verdict, want.Reason)
		}
		if want.Verdict == model.Forward && !bytes.Equal(out, want.Frame) {
			t.Fatalf("output\n got %x\nwant %x", out, want.Frame)
		}
	})
}

// gen draws table states and packets from small pools of values, so rules,
// VIPs and buckets actually match the packets.
type gen struct {
	rng   *rand.Rand
	vips  []netip.Addr
	vnis  []uint32
	srcs  []string
	dsts  []string
	ports []uint16
	st    *model.State    // the last state drawn: packets aim at its VIPs and rules
	owns  map[uint16]bool // pools of st that own buckets
}

// poolIDs are the pool ids states draw from: small ones, ones past the 64
// slots of backend_select, and the controller's slot-1 versions (B+32768).
var poolIDs = []uint16{0, 1, 2, 5, 63, 64, 65, 1000, 4095, 32767, 32768, 32769, 40000, 65534, 65535}

// noBucketsPool is named by rules but never given buckets.
const noBucketsPool = 70

// churnSlots gives 64 other pools buckets pointing at a backend of st, then
// takes them back: st's pools then reuse slots that held cells (each freed
// slot must come back empty, after a grace period).
func churnSlots(t testing.TB, d *Dataplane, st *model.State) {
	t.Helper()
	ids := make([]uint16, pipeline.Buckets)
	for id := range st.Backends {
		for i := range ids {
			ids[i] = id
		}
		break
	}
	// Even pools get every bucket and lose them with ClearPool; odd ones get
	// 16 and lose them one by one with DeleteBucket.
	for k := range uint16(MaxPools) {
		first, n := uint16(0), pipeline.Buckets
		if k%2 == 1 {
			first, n = 16*k, 16
		}
		if err := d.SetBuckets(20000+k, first, ids[:n]); err != nil {
			t.Fatal(err)
		}
	}
	for k := range uint16(MaxPools) {
		var err error
		if k%2 == 0 {
			err = d.ClearPool(20000 + k)
		} else {
			for b := 16 * k; b < 16*k+16 && err == nil; b++ {
				err = d.DeleteBucket(20000+k, b)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.Pools()); n != 0 {
		t.Fatalf("%d pools own buckets after the churn", n)
	}
}

func newGen(rng *rand.Rand) *gen {
	return &gen{
		rng:   rng,
		vips:  []netip.Addr{testvectors.VIP1, testvectors.VIP2, netip.MustParseAddr("10.255.0.3"), testvectors.NotAVIP},
		vnis:  []uint32{0, 1, 5001, 5002, 5009, 0xabcdef, pipeline.MaxVNI},
		srcs:  []string{"10.0.0.5", "10.0.0.6", "10.0.1.5", "192.168.1.1", "198.51.100.7"},
		dsts:  []string{"192.168.1.1", "192.168.1.2", "172.16.3.4", "8.8.8.8", "10.255.0.1"},
		ports: []uint16{0, 22, 53, 80, 443, 4789, 40000},
	}
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func ip32(s string) uint32 {
	b := netip.MustParseAddr(s).As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// mask32 is all-ones, zero or a random prefix.
func (g *gen) mask32() uint32 {
	switch g.pick(3) {
	case 0:
		return 0xffffffff
	case 1:
		return 0
	}
	return ^uint32(0) << (32 - (1 + g.pick(31)))
}

func (g *gen) mask16() uint16 {
	return [...]uint16{0xffff, 0, 0xff00, 0xfff0}[g.pick(4)]
}

func (g *gen) state() *model.State {
	s := model.NewState()
	const nPools = 6
	var pools [nPools]uint16 // distinct ids, 32769 (pool 1, version 2) always among them
	for i, j := range g.rng.Perm(len(poolIDs))[:nPools] {
		pools[i] = poolIDs[j]
	}
	if !slices.Contains(pools[:], 32769) {
		pools[g.pick(nPools)] = 32769
	}
	pool := func() uint16 { return pools[g.pick(nPools)] }
	for i, a := range g.vips[:1+g.pick(3)] {
		s.VIPs[ip32(a.String())] = model.VIP{ID: uint16(i + 1), DefaultPool: pool()}
	}
	for _, v := range g.vnis {
		if g.pick(3) > 0 {
			s.Tenants[v] = uint16(g.pick(4))
		}
	}
	// Rules over a few masks; priorities distinct so the winner is unique.
	prios := g.rng.Perm(200)
	var masks []model.GrayRule
	for range 1 + g.pick(4) {
		var m model.GrayRule
		some := func() bool { return g.pick(3) == 0 } // few fields per mask, as real rules
		if some() {
			m.VIPMask = 0xffff
		}
		if some() {
			m.Mask.VNI = [...]uint32{pipeline.MaxVNI, 0xff0000}[g.pick(2)]
		}
		if some() {
			m.Mask.Tenant = 0xffff
		}
		if some() {
			m.Mask.Src = g.mask32()
		}
		if some() {
			m.Mask.Dst = g.mask32()
		}
		if some() {
			m.Mask.Proto = 0xff
		}
		if some() {
			m.Mask.SPort = g.mask16()
		}
		if some() {
			m.Mask.DPort = g.mask16()
		}
		masks = append(masks, m)
	}
	for i := range g.pick(40) {
		r := masks[g.pick(len(masks))]
		r.Priority = int32(1 + prios[i])
		r.VIPID = uint16(1 + g.pick(3))
		r.Match = pipeline.FlowKey{VNI: g.vnis[g.pick(len(g.vnis))], Tenant: uint16(g.pick(4)),
			Src: ip32(g.srcs[g.pick(len(g.srcs))]), Dst: ip32(g.dsts[g.pick(len(g.dsts))]),
			Proto: [...]uint8{6, 17, 1}[g.pick(3)], SPort: g.ports[g.pick(len(g.ports))], DPort: g.ports[g.pick(len(g.ports))]}
		if i > 0 {
			prev := s.GrayRules[len(s.GrayRules)-1]
			switch g.pick(3) {
			case 0: // same mask and value as the previous rule, other priority
				r.VIPID, r.VIPMask, r.Match, r.Mask = prev.VIPID, prev.VIPMask, prev.Match, prev.Mask
			case 1: // same value, another mask: the two overlap
				r.VIPID, r.Match = prev.VIPID, prev.Match
			}
		}
		r.Action, r.Pool = model.SetPool, pool()
		if g.pick(3) == 0 {
			r.Action, r.Threshold = model.SplitPool, uint16(g.rng.Uint32())
		}
		if g.pick(10) == 0 {
			r.Pool = noBucketsPool
		}
		s.GrayRules = append(s.GrayRules, r)
	}
	for _, p := range pools {
		if g.pick(2) == 0 {
			s.PoolHash[p] = pipeline.FlowKey{VNI: [...]uint32{0, pipeline.MaxVNI}[g.pick(2)], Tenant: g.mask16(),
				Src: g.mask32(), Dst: g.mask32(), Proto: [...]uint8{0, 0xff}[g.pick(2)], SPort: g.mask16(), DPort: g.mask16()}
			if g.pick(2) == 0 { // every field all ones or zero: the mask rides in pool_slot's bits
				m := s.PoolHash[p]
				m.Tenant, m.SPort, m.DPort = m.Tenant>>15*0xffff, m.SPort>>15*0xffff, m.DPort>>15*0xffff
				m.Src, m.Dst = m.Src>>31*0xffffffff, m.Dst>>31*0xffffffff
				s.PoolHash[p] = m
			}
		}
	}
	g.owns = map[uint16]bool{}
	for i, p := range pools {
		if g.pick(5) == 0 && p != 32769 {
			continue // empty pool
		}
		g.owns[p] = true
		holes := g.pick(2) == 0
		for b := range pipeline.Buckets {
			if holes && g.pick(4) == 0 {
				continue
			}
			s.BackendSelect[model.SelectKey{Pool: p, Bucket: uint16(b)}] = uint16(10*i + g.pick(4))
		}
	}
	for i := range uint16(nPools) {
		for j := range uint16(3) { // backend 10i+3 stays missing
			s.Backends[10*i+j] = model.Backend{Port: uint16(g.pick(4)), SMAC: testpkt.MAC("02:00:00:00:01:01"),
				DMAC: [6]byte{2, 0, 0, 0, byte(i), byte(j)}, UnderlayIP: ip32("10.2.0.1") + uint32(10*i+j)}
		}
	}
	g.st = s
	return s
}

func (g *gen) l4() testpkt.L4 {
	payload := make([]byte, g.pick(40))
	for i := range payload {
		payload[i] = byte(g.rng.Uint32())
	}
	proto := [...]uint8{testpkt.ProtoTCP, testpkt.ProtoUDP, testpkt.ProtoICMP, 47}[g.pick(4)]
	return testpkt.L4{Proto: proto, SPort: g.ports[g.pick(len(g.ports))], DPort: g.ports[g.pick(len(g.ports))], Payload: payload}
}

// packet returns a frame: overlay or plain, then maybe broken.
func (g *gen) packet() []byte {
	vip := g.vips[g.pick(len(g.vips))]
	if g.pick(4) > 0 {
		vip = testvectors.VIP1 // always in the state
	}
	var b []byte
	if rules := g.st.GrayRules; len(rules) > 0 && g.pick(3) == 0 {
		// aim at a rule: its match values (the split then decides on vni+src)
		r := rules[g.pick(len(rules))]
		for a, v := range g.st.VIPs {
			if v.ID == r.VIPID {
				vip = addr4(a)
			}
		}
		l4 := g.l4()
		l4.Proto, l4.SPort, l4.DPort = r.Match.Proto, r.Match.SPort, r.Match.DPort
		b = testvectors.Overlay(vip, r.Match.VNI, addr4(r.Match.Src).String(), addr4(r.Match.Dst).String(), l4)
	} else if g.pick(3) > 0 {
		b = testvectors.Overlay(vip, g.vnis[g.pick(len(g.vnis))], g.srcs[g.pick(len(g.srcs))], g.dsts[g.pick(len(g.dsts))], g.l4())
	} else {
		l4 := g.l4()
		if l4.Proto == testpkt.ProtoUDP && g.pick(4) == 0 {
			l4.DPort = 9999
		}
		b = testpkt.Plain(testpkt.Eth{Dst: testvectors.GatewayMAC, Src: testvectors.ClientMAC},
			testpkt.IP{Src: netip.MustParseAddr(g.srcs[g.pick(len(g.srcs))]), Dst: vip, TTL: uint8(g.pick(4))}, l4)
		if l4.Proto == testpkt.ProtoUDP && g.pick(4) == 0 {
			b[14+20+6], b[14+20+7] = 0, 0 // UDP without checksum
		}
	}
	switch g.pick(8) {
	case 0: // truncate
		b = b[:g.pick(len(b)+1)]
	case 1, 2: // flip bits in the headers
		for range 1 + g.pick(3) {
			i := g.pick(min(len(b), 90))
			b[i] ^= 1 << g.pick(8)
		}
	case 3: // a field the parser cares about
		off := [...]int{12, 14, 14 + 6, 14 + 8, 14 + 9, 14 + 20 + 2, 14 + 20 + 8, 14 + 20 + 8 + 8 + 12, 14 + 20 + 8 + 8 + 14, 14 + 20 + 8 + 8 + 14 + 6}[g.pick(10)]
		if off < len(b) {
			b[off] = byte(g.rng.Uint32())
		}
	}
	return b
}
