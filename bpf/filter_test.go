//go:build linux

package bpf

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// wantFilter is the filter the installed groups call for.
func wantFilter(d *Dataplane) []uint64 {
	w := make([]uint64, filterWords)
	for _, m := range d.tss.masks {
		for v := range m.groups {
			b := filterBit(m.id, v)
			w[b/64] |= 1 << (b % 64)
		}
	}
	return w
}

// checkFilter fails unless tss_filter holds exactly the bits of the
// installed groups, and every gray_rules entry has its bit.
func checkFilter(t *testing.T, d *Dataplane, when string) {
	t.Helper()
	have, err := d.tss.filter.read()
	if err != nil {
		t.Fatal(err)
	}
	if want := wantFilter(d); !slices.Equal(have, want) {
		t.Fatalf("%s: tss_filter differs from the installed groups", when)
	}
	var k graygwTssKey
	var v graygwRuleValue
	it := d.objs.GrayRules.Iterate()
	for it.Next(&k, &v) {
		b := filterBitOf(k)
		if have[b/64]&(1<<(b%64)) == 0 {
			t.Fatalf("%s: gray_rules entry %+v without its filter bit", when, k)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
}

// The program reads the bit filterBit names: with that bit cleared the VM
// rule is skipped, with it set the rule decides again. Any other hash on
// either side would lose the rule in TestVectors already; this pins it to
// the one bit.
func TestFilterBitMatchesProgram(t *testing.T) {
	d := openTest(t)
	ms := basicModel(t)
	applyState(t, d, ms)
	frame, _ := vectorCase(t, "overlay_vm_cutover")
	gray := decide(t, d, frame)
	r := ms.GrayRules[0] // priority 100, vni+src: the vector's rule
	m := d.tss.masks[maskOf(r)]
	b := filterBit(m.id, valueOf(r).And(maskOf(r)))
	w := d.tss.filter.words[b/64]
	if err := d.tss.filter.write(b/64, w&^(1<<(b%64))); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d, frame); got == gray || !strings.HasPrefix(got, "to 10.2.") {
		t.Fatalf("with the rule's bit cleared: %s, want the base pool (not %s)", got, gray)
	}
	if err := d.tss.filter.write(b/64, w); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d, frame); got != gray {
		t.Fatalf("with the bit back: %s, want %s", got, gray)
	}
}

// Inserts, shadowing inserts and deletes keep the filter exact; a reopen
// over pins rebuilds it (a lost bit is set again, a stray one cleared).
func TestFilterTracksRules(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	rng := rand.New(rand.NewPCG(7, 7))
	masks := []ruleKey{
		{Flow: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}},
		{Flow: pipeline.FlowKey{VNI: pipeline.MaxVNI}},
		{VIPID: 0xffff, Flow: pipeline.FlowKey{Dst: 0xffff0000}},
		{Flow: pipeline.FlowKey{Tenant: 0xffff, DPort: 0xffff}},
	}
	live := churn(t, d, rng, 3000, func(i int) (model.GrayRule, bool) {
		mk := masks[rng.IntN(len(masks))]
		v := ruleKey{VIPID: uint16(rng.IntN(4)), Flow: pipeline.FlowKey{VNI: uint32(rng.IntN(8)),
			Src: rng.Uint32() & 0xf, Dst: uint32(rng.IntN(4)) << 16, Tenant: uint16(rng.IntN(8)), DPort: uint16(rng.IntN(4))}}
		// few distinct values: groups get shadowed rules, deletes promote them
		return setPool(grayRule(int32(1+i), v.And(mk), mk), 2), true
	})
	checkFilter(t, d, "after churn")

	// Lose a needed bit and leave a stray one, as a loader killed between
	// two writes would; the next Open repairs both.
	var need uint32
	for _, m := range d.tss.masks {
		for v := range m.groups {
			need = filterBit(m.id, v)
			break
		}
		break
	}
	stray := uint32(0)
	for d.tss.filter.refs[stray] > 0 {
		stray++
	}
	w := d.tss.filter.words
	if err := d.tss.filter.write(need/64, w[need/64]&^(1<<(need%64))); err != nil {
		t.Fatal(err)
	}
	if err := d.tss.filter.write(stray/64, w[stray/64]|1<<(stray%64)); err != nil {
		t.Fatal(err)
	}
	d = restart(t, d, dir)
	checkFilter(t, d, "after reopen")
	for _, rm := range live {
		if err := d.DeleteRule(rm); err != nil {
			t.Fatal(err)
		}
	}
	checkFilter(t, d, "after deleting every rule")
	if have, _ := d.tss.filter.read(); slices.ContainsFunc(have, func(w uint64) bool { return w != 0 }) {
		t.Fatal("bits left with no rules")
	}
}

// churn inserts and deletes gray rules n times: a third of the steps (with
// rules installed) delete one at random, the others install next(i), unless
// next says to skip. It returns the rules left installed.
func churn(t *testing.T, d *Dataplane, rng *rand.Rand, n int, next func(i int) (model.GrayRule, bool)) []model.GrayRule {
	t.Helper()
	var live []model.GrayRule
	for i := range n {
		if len(live) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(live))
			if err := d.DeleteRule(live[j]); err != nil {
				t.Fatal(err)
			}
			live = slices.Delete(live, j, j+1)
			continue
		}
		r, ok := next(i)
		if !ok {
			continue
		}
		if err := d.InsertRule(r); err != nil {
			t.Fatal(err)
		}
		live = append(live, r)
	}
	return live
}
