//go:build linux

package bpf

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// checkIndex fails unless rule_index and rule_cells agree with gray_rules:
// a slot no key hashes to holds 0, a slot one key hashes to names a cell
// holding that key and its gray_rules value, a slot of several keys holds
// ruleIndexMany. It returns how many slots hold several keys.
func checkIndex(t *testing.T, d *Dataplane, when string) (many int) {
	t.Helper()
	want := map[uint32][]graygwTssKey{}
	vals := map[graygwTssKey]graygwRuleValue{}
	var k graygwTssKey
	var v graygwRuleValue
	it := d.objs.GrayRules.Iterate()
	for it.Next(&k, &v) {
		want[ruleSlot(k)] = append(want[ruleSlot(k)], k)
		vals[k] = v
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	words, err := readArray(d.objs.RuleIndex, ruleIndexSize)
	if err != nil {
		t.Fatal(err)
	}
	for slot, w := range words {
		ks := want[uint32(slot)]
		switch len(ks) {
		case 0:
			if w != 0 {
				t.Fatalf("%s: slot %d of no key holds %#x", when, slot, w)
			}
		case 1:
			var c graygwRuleCell
			if w == 0 || w == ruleIndexMany {
				t.Fatalf("%s: slot %d of one key holds %#x", when, slot, w)
			}
			if err := d.objs.RuleCells.Lookup(w-1, &c); err != nil {
				t.Fatal(err)
			}
			if c.Key != ks[0] || c.Value != vals[ks[0]] {
				t.Fatalf("%s: slot %d names cell %d = %+v, want %+v %+v", when, slot, w-1, c, ks[0], vals[ks[0]])
			}
		default:
			many++
			if w != ruleIndexMany {
				t.Fatalf("%s: slot %d of %d keys holds %#x", when, slot, len(ks), w)
			}
		}
	}
	return many
}

// sameSlot returns n VNIs whose rules under mask (VNI, src) share the
// rule_index slot of mask id maskID and source src.
func sameSlot(maskID, src uint32, n int) []uint32 {
	mask := ruleKey{Flow: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}}
	key := func(vni uint32) graygwTssKey {
		return tssKey(maskID, ruleKey{Flow: pipeline.FlowKey{VNI: vni, Src: src}}.And(mask))
	}
	var out []uint32
	for vni := uint32(100); len(out) < n; vni++ {
		if len(out) == 0 || ruleSlot(key(vni)) == ruleSlot(key(out[0])) {
			out = append(out, vni)
		}
	}
	return out
}

// Keys sharing a slot are found through gray_rules, a key alone through its
// cell: a rule is counted while installed, in either case, and no longer
// once deleted; the index follows gray_rules through churn and a reopen.
func TestRuleIndexTracksRules(t *testing.T) {
	dir, d, _ := basicPinned(t)
	mask := ruleKey{Flow: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}}
	src := uint32(0x0a0a0a0a)
	first := grayRule(1_000_000, ruleKey{Flow: pipeline.FlowKey{VNI: 1, Src: src}}, mask)
	if err := d.InsertRule(setPool(first, testvectors.PoolGray)); err != nil {
		t.Fatal(err)
	}
	vnis := sameSlot(d.tss.masks[mask].id, src, 3)
	var rules []model.GrayRule
	for i, vni := range vnis {
		rm := grayRule(int32(1_000_001+i), ruleKey{Flow: pipeline.FlowKey{VNI: vni, Src: src}}, mask)
		if err := d.InsertRule(setPool(rm, testvectors.PoolGray)); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rm)
	}
	if checkIndex(t, d, "three keys in one slot") == 0 {
		t.Fatal("no slot holds several keys")
	}
	l4 := testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 40000, DPort: 80}
	counted := func(rm model.GrayRule) bool {
		t.Helper()
		before, err := d.RuleCounter(rm)
		if err != nil {
			t.Fatal(err)
		}
		frame := testvectors.Overlay(testvectors.VIP1, rm.Match.VNI, netip.AddrFrom4([4]byte{10, 10, 10, 10}).String(), "192.168.1.1", l4)
		run(t, d.Program(), frame)
		after, err := d.RuleCounter(rm)
		if err != nil {
			t.Fatal(err)
		}
		return after.Packets == before.Packets+1
	}
	for _, rm := range rules {
		if !counted(rm) {
			t.Fatalf("rule of VNI %d (slot of several keys) not applied", rm.Match.VNI)
		}
	}
	// Down to one key: its cell; then none.
	for i, rm := range rules {
		if err := d.DeleteRule(rm); err != nil {
			t.Fatal(err)
		}
		checkIndex(t, d, "after a delete")
		for _, left := range rules[i+1:] {
			if !counted(left) {
				t.Fatalf("rule of VNI %d not applied after %d deletes", left.Match.VNI, i+1)
			}
		}
	}

	// Churn, then a reopen over the pins: rebuilt, the same agreement.
	rng := rand.New(rand.NewPCG(3, 3))
	churn(t, d, rng, 3000, func(int) (model.GrayRule, bool) {
		rm := grayRule(int32(1+rng.IntN(50)), ruleKey{Flow: pipeline.FlowKey{VNI: uint32(rng.IntN(4000)), Src: rng.Uint32() & 3}}, mask)
		_, dup := d.tss.rules[rm]
		return setPool(rm, testvectors.PoolGray), !dup
	})
	checkIndex(t, d, "after churn")
	d = restart(t, d, dir)
	checkIndex(t, d, "after reopen")
}
