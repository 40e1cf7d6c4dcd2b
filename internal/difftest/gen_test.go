package difftest

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// The entries written to the targets must hold exactly the state the model
// decides over: the generator's states, through compile.FromModel, the
// P4Runtime codec and back, then loaded by compile.ToModel, come back equal.
func TestEntriesHoldTheState(t *testing.T) {
	codec := engine.NewCodec(p4infotest.Committed(t))
	g, g6 := NewGen(1), NewGen(2)
	g6.IPv6 = true // the IPv6 tables too
	for i := range 40 {
		g := g
		if i%2 == 1 {
			g = g6
		}
		st, owners := g.State()
		frames := make([][]byte, 100)
		for i := range frames {
			frames[i] = g.Frame(st)
		}
		g.Fill(st, owners, frames)
		var tes []*p4v1.TableEntry
		for _, e := range compile.FromModel(st) {
			te, err := codec.ToP4(&e)
			if err != nil {
				t.Fatal(err)
			}
			tes = append(tes, te)
		}
		got, err := compile.ToModel(stack.Entries(t, tes))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("state changed through its entries:\n got %+v\nwant %+v", got, st)
		}
	}
}

// Every frame is one a veth carries unchanged, and the same seed draws the
// same frames, with the generator's IPv6 off and on.
func TestFramesAreDeliverableAndReproducible(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		a, b := NewGen(7), NewGen(7)
		a.IPv6, b.IPv6 = v6, v6
		sa, _ := a.State()
		sb, _ := b.State()
		if !reflect.DeepEqual(sa, sb) {
			t.Fatal("the same seed drew two states")
		}
		for range 5000 {
			fa, fb := a.Frame(sa), b.Frame(sb)
			if string(fa) != string(fb) {
				t.Fatalf("ipv6 %v: the same seed drew %x and %x", v6, fa, fb)
			}
			if len(fa) < MinLen(fa) || len(fa) > MaxFrame {
				t.Fatalf("frame %x is not %d to %d bytes long, as a veth carries", fa, MinLen(fa), MaxFrame)
			}
		}
	}
}

// With IPv6 off (the default until every target implements it) no state has
// an IPv6 table and no frame an IPv6 header, outer or inner; on, the frames
// and states reach every IPv6 reason and forward IPv6 flows over both outer
// families.
func TestIPv6IsAnOption(t *testing.T) {
	seen := map[string]int{}
	for _, v6 := range []bool{false, true} {
		for seed := range uint64(20) {
			g := NewGen(seed)
			g.IPv6 = v6
			st, owners := g.State()
			if !v6 && (len(st.VIPsV6) > 0 || len(st.GrayRulesV6) > 0) {
				t.Fatalf("seed %d: IPv6 tables drawn with IPv6 off", seed)
			}
			frames := make([][]byte, 300)
			for i := range frames {
				frames[i] = g.Frame(st)
			}
			g.Fill(st, owners, frames)
			g.Sharpen(st, frames)
			for _, f := range frames {
				p, r := model.Parse(f), model.Process(st, f)
				if !v6 {
					if p.Outer6 || p.IPv6 || r.Reason >= pipeline.IPv6Truncated {
						t.Fatalf("seed %d: an IPv6 frame with IPv6 off: %x (%v)", seed, f, r.Reason)
					}
					continue
				}
				seen[r.Reason.String()]++
				if r.Verdict == model.Forward && r.IPv6 {
					seen[fmt.Sprintf("forward flow6 outer6=%v", p.Outer6)]++
				}
				if r.Verdict == model.Forward && !r.IPv6 && p.Outer6 {
					seen["forward flow4 outer6"]++
				}
				if r.RuleV6 >= 0 {
					seen["gray_rules_v6 hit"]++
				}
			}
		}
	}
	for _, k := range []string{"IPV6_TRUNCATED", "IPV6_MALFORMED", "IPV6_EXTENSION", "INNER_IPV6_MALFORMED",
		"INNER_IPV6_EXTENSION", "BACKEND_FAMILY", "forward flow6 outer6=true", "forward flow6 outer6=false",
		"forward flow4 outer6", "gray_rules_v6 hit"} {
		if seen[k] == 0 {
			t.Errorf("no frame exercised %s: %v", k, seen)
		}
	}
}

// Expect counts an IPv6 frame in vip_v6's and gray_rules_v6's cells, and a
// BACKEND_FAMILY drop in its backend's (docs/pipeline.md §9).
func TestExpectCountsIPv6(t *testing.T) {
	st := model.NewState()
	vip := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	st.VIPsV6[vip] = model.VIP{ID: 3, DefaultPool: 1}
	st.GrayRulesV6 = []model.GrayRuleV6{{Priority: 1, Action: model.SetPool, Pool: 1}}
	st.Backends[3] = model.Backend{Port: 2, IPv6: true}
	st.Backends[4] = model.Backend{Port: 2}
	for b := range uint16(pipeline.Buckets) {
		st.BackendSelect[model.SelectKey{Pool: 1, Bucket: b}] = 3
	}
	keys := KeysOf(st)
	frame := testpkt.Plain6(testpkt.Eth{}, testpkt.IP6{Src: netip.MustParseAddr("2001:db8::5"), Dst: netip.AddrFrom16(vip)},
		testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 1, DPort: 2})
	c := NewCounts()
	c.Expect(keys, frame, model.Process(st, frame))
	n := Cell{1, uint64(len(frame))}
	if c.Direct[keys.VIP6[vip]] != n || c.Direct[keys.RuleV6[0]] != n || c.Direct[keys.Backend[3]] != n || len(c.Drops) != 0 {
		t.Fatalf("a forwarded IPv6 frame counted %v, drops %v", c.Direct, c.Drops)
	}
	for b := range uint16(pipeline.Buckets) {
		st.BackendSelect[model.SelectKey{Pool: 1, Bucket: b}] = 4 // an IPv4 underlay
	}
	c = NewCounts()
	r := model.Process(st, frame)
	c.Expect(keys, frame, r)
	if r.Reason != pipeline.BackendFamily || c.Drops[pipeline.BackendFamily] != n || c.Direct[keys.Backend[4]] != n {
		t.Fatalf("BACKEND_FAMILY (%v) counted %v, drops %v", r.Reason, c.Direct, c.Drops)
	}
}

// Expect counts what the pipeline contract counts (docs/pipeline.md §9).
func TestExpectCountsReasonsAndHits(t *testing.T) {
	st := model.NewState()
	st.VIPs[0x0aff0001] = model.VIP{ID: 1, DefaultPool: 1}
	st.Backends[3] = model.Backend{Port: 2}
	st.BackendSelect[model.SelectKey{Pool: 1, Bucket: 0}] = 3
	keys := KeysOf(st)
	c := NewCounts()
	g := NewGen(1)
	frame := g.overlay(testpkt.Eth{Dst: gatewayMAC, Src: clientMAC}, addr(0x0aff0001), 5001, g.srcs[0], g.dsts[0], g.l4())
	r := model.Process(st, frame)
	c.Expect(keys, frame, r)
	if len(c.Direct) != 1 || c.Direct[keys.VIP[0x0aff0001]] != (Cell{1, uint64(len(frame))}) {
		t.Fatalf("a VIP hit counted %v", c.Direct)
	}
	if r.Reason == pipeline.None || c.Drops[r.Reason] != (Cell{1, uint64(len(frame))}) {
		t.Fatalf("reason %s counted %v", r.Reason, c.Drops)
	}
	if d := c.Diff(c); d != "" {
		t.Fatalf("counts differ from themselves: %s", d)
	}
	if d := NewCounts().Diff(c); d == "" {
		t.Fatal("no difference reported between empty and non-empty counts")
	}
}
