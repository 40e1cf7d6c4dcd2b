//go:build linux

package bpf

import (
	"testing"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// checkMaskTable fails unless gray_masks holds every mask in use at its
// position, with its id and its best priority as bound, len covers them, and
// every other position is skipped (bound 0).
func checkMaskTable(t *testing.T, d *Dataplane, when string) {
	t.Helper()
	tab, err := d.tss.pos.readTable()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for mask, m := range d.tss.masks {
		e := tab.Masks[m.pos]
		if ruleKeyFrom(e.Mask) != mask || e.MaskId != m.id || tab.Max[m.pos] != uint32(m.maxPriority()) || m.pos >= tab.Len {
			t.Fatalf("%s: position %d holds %+v bound %d (len %d), want mask %+v id %d bound %d",
				when, m.pos, e, tab.Max[m.pos], tab.Len, mask, m.id, m.maxPriority())
		}
		seen[m.pos] = true
	}
	for pos := range uint32(MaxMasks) {
		if !seen[pos] && tab.Max[pos] != 0 {
			t.Fatalf("%s: position %d without a mask has bound %d", when, pos, tab.Max[pos])
		}
	}
}

// filler is a rule of its own mask (i < 64) that no vector frame matches.
func filler(i int) model.GrayRule {
	mask := ruleKey{Flow: pipeline.FlowKey{Src: ^uint32(0) << (31 - i%32), SPort: 0xffff, DPort: uint16(1 + i/32)}}
	v := ruleKey{Flow: pipeline.FlowKey{Src: 0xc6120000, SPort: 9, DPort: 1}} // 198.18/15, sport 9: no vector's
	return grayRule(int32(1+i), v.And(mask), mask)
}

// With all 64 positions taken, masks that lose their last rule free their
// positions only after a grace period: new masks take them then, packets keep
// deciding as the model says, and a reopen keeps positions, ids and bounds.
func TestMaskPositionsReuse(t *testing.T) {
	dir, d, ms := basicPinned(t)
	var fill []model.GrayRule
	for i := 0; d.MaskCount() < MaxMasks; i++ {
		rm := filler(i)
		if err := d.InsertRule(setPool(rm, 2)); err != nil {
			t.Fatalf("filler %d: %v", i, err)
		}
		fill = append(fill, rm)
	}
	checkMaskTable(t, d, "64 masks")
	for _, rm := range fill[:10] {
		if err := d.DeleteRule(rm); err != nil {
			t.Fatal(err)
		}
	}
	quarantined := 0
	for _, s := range d.tss.pos.state {
		if s == slotQuarantine {
			quarantined++
		}
	}
	if quarantined != 10 {
		t.Fatalf("%d positions quarantined after 10 masks emptied, want 10", quarantined)
	}
	checkMaskTable(t, d, "10 masks emptied")
	for i := range 10 {
		rm := filler(len(fill) + i) // masks not used before
		if err := d.InsertRule(setPool(rm, 2)); err != nil {
			t.Fatalf("new mask %d over quarantined positions: %v", i, err)
		}
	}
	checkMaskTable(t, d, "positions reused")
	mismatch := func(name string, ret uint32, r model.Result) {
		t.Errorf("%s: %s, want %s %s", name, verdictName(ret), r.Verdict, r.Reason)
	}
	vectorsAgree(t, d, ms, mismatch)
	ids := map[ruleKey][2]uint32{}
	for mask, m := range d.tss.masks {
		ids[mask] = [2]uint32{m.id, m.pos}
	}
	d = restart(t, d, dir)
	for mask, m := range d.tss.masks {
		if ids[mask] != [2]uint32{m.id, m.pos} {
			t.Fatalf("after reopen mask %+v has id, position %d, %d, want %v", mask, m.id, m.pos, ids[mask])
		}
	}
	if len(d.tss.masks) != len(ids) {
		t.Fatalf("after reopen %d masks, want %d", len(d.tss.masks), len(ids))
	}
	checkMaskTable(t, d, "after reopen")
	vectorsAgree(t, d, ms, mismatch)
}
