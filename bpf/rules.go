//go:build linux

package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// tss is the Go side of the tuple-space search over gray rules. The XDP
// program sees, per mask in use, one hash entry per masked key holding the
// best-priority rule of that key; rules shadowed by a better one with the same
// mask and masked key are kept here (and in rule_store) and promoted when the
// better one is deleted.
type tss struct {
	// rules, masks, ids, rule_store, rule_counters
	tupleSpace[model.GrayRule, ruleKey, *tssMask]
	filter   tssFilter     // tss_filter: which groups may exist (filter.go)
	pos      maskPositions // gray_masks and mask_max (masks.go)
	nextMask uint32        // mask ids are never reused, so a stale entry cannot alias
}

type tssRule = tssEntry[model.GrayRule]

type tssMask struct {
	id     uint32
	pos    uint32                 // in gray_masks and mask_max
	groups map[ruleKey][]*tssRule // masked value -> rules, best first
	// prios counts the mask's rules per priority, and top is the highest, so
	// the mask list's order is known without walking every group: a walk per
	// insert made filling one mask with n rules cost O(n²).
	prios map[int32]int
	top   int32
}

func newTSSMask(id uint32) *tssMask {
	return &tssMask{id: id, groups: map[ruleKey][]*tssRule{}, prios: map[int32]int{}}
}

// count records that a rule of priority p joined (+1) or left (-1) the mask.
func (m *tssMask) count(p int32, delta int) {
	m.prios[p] += delta
	switch {
	case delta > 0:
		m.top = max(m.top, p)
	case m.prios[p] <= 0:
		delete(m.prios, p)
		if p == m.top {
			m.top = 0
			for q := range m.prios {
				m.top = max(m.top, q)
			}
		}
	}
}

func (m *tssMask) maxPriority() int32 { return m.top }

func (m *tssMask) head(value ruleKey) *tssRule { return m.groups[value][0] }

func newTSS(store, counters *ebpf.Map) tss {
	return tss{tupleSpace: newTupleSpace[model.GrayRule, ruleKey, *tssMask](grayRules{}, "gray rule", MaxMasks,
		pipeline.GrayRulesTableSize, store, counters), filter: newTSSFilter(), nextMask: 1}
}

// grayRules is the ruleKind of gray_rules.
type grayRules struct{}

func (grayRules) identity(r model.GrayRule) model.GrayRule  { return model.RuleID(r) }
func (grayRules) normalize(r model.GrayRule) model.GrayRule { return normalize(r) }
func (grayRules) valid(r model.GrayRule) error              { return validRule(r) }
func (grayRules) keys(r model.GrayRule) (ruleKey, ruleKey)  { return valueOf(r), maskOf(r) }
func (grayRules) priority(r model.GrayRule) int32           { return r.Priority }
func (grayRules) definition(r model.GrayRule, id uint32) any {
	return &graygwRuleDef{Value: valueOf(r).raw(), Mask: maskOf(r).raw(), Action: ruleValue(r, id)}
}

func validRule(r model.GrayRule) error {
	if r.Priority <= 0 {
		return fmt.Errorf("%w: priority %d, must be > 0", ErrInvalid, r.Priority)
	}
	if r.Action != SetPool && r.Action != SplitPool && r.Action != SetPoolMirror {
		return fmt.Errorf("%w: action %d", ErrInvalid, r.Action)
	}
	if r.Action == SetPoolMirror && r.MirrorID >= pipeline.MirrorIDs {
		return fmt.Errorf("%w: mirror_id %d, must be < %d", ErrInvalid, r.MirrorID, pipeline.MirrorIDs)
	}
	return nil
}

// ruleValue is what gray_rules and rule_store hold of rule r with id.
func ruleValue(r model.GrayRule, id uint32) graygwRuleValue {
	v := graygwRuleValue{Priority: uint32(r.Priority), Action: uint16(r.Action), Pool: r.Pool,
		Threshold: r.Threshold, Slot: id}
	if r.Action == SetPoolMirror {
		v.MirrorPool, v.Sample, v.MirrorId = r.MirrorPool, r.Sample, r.MirrorID
	}
	return v
}

// ruleFrom is the rule a stored definition describes.
func ruleFrom(def graygwRuleDef) model.GrayRule {
	v, value, mask := def.Action, ruleKeyFrom(def.Value), ruleKeyFrom(def.Mask)
	r := model.GrayRule{Priority: int32(v.Priority), VIPID: value.VIPID, VIPMask: mask.VIPID, Match: value.Flow, Mask: mask.Flow,
		Action: model.RuleAction(v.Action), Pool: v.Pool, Threshold: v.Threshold}
	if r.Action == SetPoolMirror {
		r.MirrorPool, r.Sample, r.MirrorID = v.MirrorPool, v.Sample, v.MirrorId
	}
	return r
}

// InsertRule adds a gray rule. A rule with the same match and priority is
// ErrExists; more than MaxMasks distinct masks is ErrFull.
func (d *Dataplane) InsertRule(r model.GrayRule) error { return d.tss.insert(d, r, d.placeRule) }

// placeRule writes new rule e (its id's counter and definition written) to
// gray_rules: the filter bit before the entry, the entry before the mask's
// bound. On error it undoes what it wrote.
func (d *Dataplane) placeRule(e *tssRule, m *tssMask, value, mask ruleKey) error {
	t := &d.tss
	if m == nil {
		var err error
		if m, err = d.addMask(mask); err != nil {
			return err
		}
		t.masks[mask] = m
	}
	oldMax := m.maxPriority()
	g := m.groups[value]
	newGroup := len(g) == 0
	if newGroup {
		// the filter bit before the entry: a packet must never skip it
		if err := d.filterAdd(m.id, value); err != nil {
			if len(m.groups) == 0 {
				delete(t.masks, mask)
				_ = d.dropMask(m)
			}
			return err
		}
	}
	r := e.rule
	i, _ := slices.BinarySearchFunc(g, r.Priority, func(x *tssRule, p int32) int { return cmp.Compare(p, x.rule.Priority) })
	m.groups[value] = slices.Insert(g, i, e)
	m.count(r.Priority, +1)
	t.rules[model.RuleID(r)] = e
	undo := func(err error) error {
		d.forget(m, mask, e)
		if _, still := t.masks[mask]; !still {
			_ = d.dropMask(m)
		}
		if i == 0 {
			_ = d.writeHead(m, value) // the previous best, or no entry
		}
		if newGroup {
			d.filterRemove(m.id, value)
		}
		return err
	}
	if i == 0 {
		if err := d.writeHead(m, value); err != nil {
			return undo(err)
		}
	}
	if m.maxPriority() != oldMax {
		// after the entry: the mask is only visited once it holds something
		if err := d.setMaskMax(m); err != nil {
			return undo(err)
		}
	}
	return nil
}

// ModifyRule changes the action of an installed rule; its counter keeps counting.
func (d *Dataplane) ModifyRule(r model.GrayRule) error { return d.tss.modify(d, r, d.writeHead) }

// DeleteRule removes the gray rule of r's match and priority (its action is
// not read); a rule it shadowed takes its place.
func (d *Dataplane) DeleteRule(r model.GrayRule) error { return d.tss.delete(d, r, d.unplaceRule) }

// unplaceRule takes installed rule e out of gray_rules: its entry first (the
// rule it shadowed, or none), then its filter bit, then its mask's bound.
func (d *Dataplane) unplaceRule(e *tssRule, m *tssMask, value, mask ruleKey) error {
	t := &d.tss
	oldMax := m.maxPriority()
	g := slices.Clone(m.groups[value]) // forget edits it in place
	wasHead := g[0] == e
	d.forget(m, mask, e)
	if wasHead {
		if err := d.writeHead(m, value); err != nil {
			// nothing changed for packets: put the rule back
			m.groups[value] = g
			m.count(e.rule.Priority, +1)
			t.masks[mask] = m
			t.rules[model.RuleID(e.rule)] = e
			return err
		}
	}
	if len(m.groups[value]) == 0 {
		d.filterRemove(m.id, value) // the entry is gone: the bit may go
	}
	// A stale bound only costs lookups: the rule is gone for packets already.
	if _, still := t.masks[mask]; !still {
		if err := d.dropMask(m); err != nil {
			return fmt.Errorf("bpf: gray rule deleted, but hiding its empty mask failed: %w", err)
		}
	} else if m.maxPriority() != oldMax {
		if err := d.setMaskMax(m); err != nil {
			return fmt.Errorf("bpf: gray rule deleted, but lowering its mask's bound failed: %w", err)
		}
	}
	return nil
}

// forget drops e from the Go bookkeeping (not from the maps).
func (d *Dataplane) forget(m *tssMask, mask ruleKey, e *tssRule) {
	v := valueOf(e.rule)
	m.groups[v] = slices.DeleteFunc(m.groups[v], func(x *tssRule) bool { return x == e })
	m.count(e.rule.Priority, -1)
	if len(m.groups[v]) == 0 {
		delete(m.groups, v)
	}
	if len(m.groups) == 0 {
		delete(d.tss.masks, mask)
	}
	delete(d.tss.rules, model.RuleID(e.rule))
}

// writeHead makes the gray_rules entry of (mask, value) the group's best rule,
// or deletes it when the group is empty: one map operation, one decision,
// and the same through rule_index (ruleindex.go).
func (d *Dataplane) writeHead(m *tssMask, value ruleKey) error {
	k := tssKey(m.id, value)
	g := m.groups[value]
	if len(g) == 0 {
		if err := d.indexDelete(k); err != nil {
			return err
		}
		return writeEntry(d.objs.GrayRules, "gray_rules", &k, nil)
	}
	v := ruleValue(g[0].rule, g[0].id)
	if err := writeEntry(d.objs.GrayRules, "gray_rules", &k, &v); err != nil {
		return err
	}
	return d.indexSet(k, v)
}

// writeEntry makes entry k of m (named name) hold v, or deletes it for a nil
// v (none there is no error).
func writeEntry(m *ebpf.Map, name string, k any, v *graygwRuleValue) error {
	var err error
	if v == nil {
		if err = m.Delete(k); errors.Is(err, ebpf.ErrKeyNotExist) {
			err = nil
		}
	} else {
		err = m.Update(k, v, ebpf.UpdateAny)
	}
	if err != nil {
		return fmt.Errorf("bpf: %s: %w", name, err)
	}
	return nil
}

// Rules returns every installed gray rule, shadowed ones included.
func (d *Dataplane) Rules() []model.GrayRule {
	return d.tss.list(d)
}

// RuleCounter reads the direct counter of the gray rule of r's match and
// priority (packets it decided).
func (d *Dataplane) RuleCounter(r model.GrayRule) (Counter, error) {
	return d.tss.counter(d, r)
}

// MaskCount returns the number of distinct masks in use (at most MaxMasks):
// the number of hash lookups a packet may cost.
func (d *Dataplane) MaskCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tss.masks)
}
