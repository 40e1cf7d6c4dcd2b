//go:build linux

package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// Packets find a gray rule without a hash lookup when its key is alone in its
// rule_index slot (a group of tss_filter bits): the slot's word names a
// rule_cells cell holding the key and the value, and the packet compares the
// key. A slot with several keys holds ruleIndexMany and the packet looks the
// key up in gray_rules, which always holds every entry (read-back, rebuild).
// A write never touches a cell a word names:
//
//	set k:     gray_rules first; then, k alone: a fresh cell, repoint the word;
//	           k joins others: the word becomes many
//	delete k:  the word first (none, the cell of the one key left, or many);
//	           then gray_rules
//
// Cells no word names are quarantined and freed after a grace period, waited
// for once for all of them when no free cell is left; there are twice as many
// cells as keys.

// Sizes of rule_index and rule_cells (RULE_INDEX_LOG, RULE_CELLS in consts.h).
const (
	ruleIndexLog  = 18
	ruleIndexSize = 1 << ruleIndexLog
	ruleIndexMany = 0xffffffff
	ruleCells     = 2 * pipeline.GrayRulesTableSize
)

// ruleSlot is the rule_index slot of a gray_rules key.
func ruleSlot(k graygwTssKey) uint32 { return filterBitOf(k) >> (filterLog - ruleIndexLog) }

// ruleIndex is the Go side of rule_index and rule_cells.
type ruleIndex struct {
	cellPool
	keys map[uint32][]graygwTssKey        // slot -> the gray_rules keys hashing to it
	val  map[graygwTssKey]graygwRuleValue // every indexed key -> its value
	cell map[graygwTssKey]uint32          // a key alone in its slot -> its published cell
}

func newRuleIndex() ruleIndex {
	return ruleIndex{cellPool: newCellPool("rule", ruleCells), keys: map[uint32][]graygwTssKey{},
		val: map[graygwTssKey]graygwRuleValue{}, cell: map[graygwTssKey]uint32{}}
}

// publishCell writes k and v to a fresh cell and points the slot's word at
// it; the key's previous cell, if any, is quarantined.
func (d *Dataplane) publishCell(slot uint32, k graygwTssKey, v graygwRuleValue) error {
	x := &d.index
	cell, err := d.publish(&x.cellPool, d.objs.RuleCells, d.objs.RuleIndex, slot, &graygwRuleCell{Key: k, Value: v})
	if err != nil {
		return fmt.Errorf("bpf: rule_index: %w", err)
	}
	if old, ok := x.cell[k]; ok {
		x.quarantine(old)
	}
	x.cell[k] = cell
	return nil
}

// setWord points the slot's word at no cell (0 or many) and quarantines the
// cells of the slot's keys.
func (d *Dataplane) setWord(slot, w uint32) error {
	x := &d.index
	if err := d.objs.RuleIndex.Update(slot, w, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: rule_index: %w", err)
	}
	for _, k := range x.keys[slot] {
		if cell, ok := x.cell[k]; ok {
			x.quarantine(cell)
			delete(x.cell, k)
		}
	}
	return nil
}

// indexSet records that gray_rules holds k with value v (written already).
// Before rebuildIndex (during Open) it does nothing.
func (d *Dataplane) indexSet(k graygwTssKey, v graygwRuleValue) error {
	x := &d.index
	if x.keys == nil {
		return nil
	}
	slot := ruleSlot(k)
	ks := x.keys[slot]
	found := false
	for _, o := range ks {
		found = found || o == k
	}
	if !found {
		ks = append(ks, k)
	}
	if len(ks) == 1 {
		if err := d.publishCell(slot, k, v); err != nil {
			return err
		}
	} else if len(ks) == 2 && !found {
		if err := d.setWord(slot, ruleIndexMany); err != nil {
			return err
		}
	}
	x.keys[slot] = ks
	x.val[k] = v
	return nil
}

// indexDelete takes k out of its slot before gray_rules loses it.
func (d *Dataplane) indexDelete(k graygwTssKey) error {
	x := &d.index
	if x.keys == nil {
		return nil
	}
	slot := ruleSlot(k)
	var rest []graygwTssKey
	for _, o := range x.keys[slot] {
		if o != k {
			rest = append(rest, o)
		}
	}
	if len(rest) == len(x.keys[slot]) {
		return nil // not indexed
	}
	switch len(rest) {
	case 0:
		if err := d.setWord(slot, 0); err != nil {
			return err
		}
	case 1:
		if err := d.publishCell(slot, rest[0], x.val[rest[0]]); err != nil {
			return err
		}
	}
	x.keys[slot] = rest
	if len(rest) == 0 {
		delete(x.keys, slot)
	}
	delete(x.val, k)
	return nil
}

// rebuildIndex rewrites rule_index and rule_cells for want (every gray_rules
// key the rules call for, with its value) under running packets: the new
// cells are taken among those no current word names, then the words are
// rewritten, then the cells the old words named are quarantined.
func (d *Dataplane) rebuildIndex(want map[graygwTssKey]graygwRuleValue) error {
	d.index = newRuleIndex()
	x := &d.index
	words, err := d.readWords(d.objs.RuleIndex, ruleIndexSize)
	if err != nil {
		return fmt.Errorf("bpf: rebuild rule_index: %w", err)
	}
	var old []uint32
	for _, w := range words {
		if w != 0 && w != ruleIndexMany && w <= ruleCells && x.state[w-1] != slotUsed {
			x.state[w-1] = slotUsed
			old = append(old, w-1)
		}
	}
	x.refill()
	for k, v := range want {
		x.val[k] = v
		slot := ruleSlot(k)
		x.keys[slot] = append(x.keys[slot], k)
	}
	for slot, w := range words {
		ks := x.keys[uint32(slot)]
		var err error
		switch {
		case len(ks) == 1:
			err = d.publishCell(uint32(slot), ks[0], want[ks[0]])
		case len(ks) > 1 && w != ruleIndexMany:
			err = d.objs.RuleIndex.Update(uint32(slot), uint32(ruleIndexMany), ebpf.UpdateAny)
		case len(ks) == 0 && w != 0:
			err = d.objs.RuleIndex.Update(uint32(slot), uint32(0), ebpf.UpdateAny)
		}
		if err != nil {
			return fmt.Errorf("bpf: rebuild rule_index: %w", err)
		}
	}
	for _, c := range old {
		x.quarantine(c)
	}
	return nil
}
