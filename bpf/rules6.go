//go:build linux

package bpf

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// tss6 is the Go side of gray_rules_v6, a tuple-space search like
// gray_rules' (rules.go) without its index and memory-mapped masks: every
// rule is here and in rule6_store, the best rule of each (mask, masked key)
// group is the gray_rules_v6 entry of that key, and the masks in use, with
// their best priority, and the Bloom filter over the groups' keys are
// gray_masks6's one value, rewritten whole on every change (a packet sees
// the old list or the new one).
type tss6 struct {
	// rules, masks (by mask, mask_id 0), ids, rule6_store, rule6_counters
	tupleSpace[model.GrayRuleV6, graygwTss6Key, *tssMask6]
	nextMask uint32                        // never reused: a stale entry cannot alias
	filter   [1 << (filter6Log - 6)]uint64 // the groups' bits, as gray_masks6 will hold them
	refs     map[uint32]uint32             // filter bit -> groups hashing to it
}

type tssRule6 = tssEntry[model.GrayRuleV6]

type tssMask6 struct {
	id     uint32
	mask   graygwTss6Key
	groups map[graygwTss6Key][]*tssRule6 // masked value -> rules, best first
	top    int32                         // the highest priority of its rules
}

func (m *tssMask6) head(value graygwTss6Key) *tssRule6 { return m.groups[value][0] }

func newTSS6(store, counters *ebpf.Map) tss6 {
	return tss6{tupleSpace: newTupleSpace[model.GrayRuleV6, graygwTss6Key, *tssMask6](grayRulesV6{}, "gray rule v6",
		MaxMasks6, GrayRulesV6Size, store, counters), nextMask: 1, refs: map[uint32]uint32{}}
}

// grayRulesV6 is the ruleKind of gray_rules_v6.
type grayRulesV6 struct{}

func (grayRulesV6) identity(r model.GrayRuleV6) model.GrayRuleV6  { return model.RuleIDV6(r) }
func (grayRulesV6) normalize(r model.GrayRuleV6) model.GrayRuleV6 { return normalize6(r) }
func (grayRulesV6) valid(r model.GrayRuleV6) error                { return validRule6(r) }
func (grayRulesV6) keys(r model.GrayRuleV6) (graygwTss6Key, graygwTss6Key) {
	return valueOf6(r), maskOf6(r)
}
func (grayRulesV6) priority(r model.GrayRuleV6) int32 { return r.Priority }
func (grayRulesV6) definition(r model.GrayRuleV6, id uint32) any {
	return &graygwRule6Def{Value: valueOf6(r), Mask: maskOf6(r), Action: ruleValue6(r, id)}
}

// newMask starts mask, with a fresh id.
func (t *tss6) newMask(mask graygwTss6Key) *tssMask6 {
	m := &tssMask6{id: t.nextMask, mask: mask, groups: map[graygwTss6Key][]*tssRule6{}}
	t.nextMask++
	t.masks[mask] = m
	return m
}

// join adds e to m's group of value (after its equals in priority: the first
// written stays the head), keeping m.top and, for a new group, the filter.
func (t *tss6) join(m *tssMask6, value graygwTss6Key, e *tssRule6) {
	g := m.groups[value]
	if len(g) == 0 {
		b := filter6Bit(entry6(m, value))
		if t.refs[b]++; t.refs[b] == 1 {
			t.filter[b/64] |= 1 << (b % 64)
		}
	}
	i, _ := slices.BinarySearchFunc(g, e.rule.Priority, func(x *tssRule6, p int32) int { return cmp.Compare(p, x.rule.Priority) })
	for i < len(g) && g[i].rule.Priority == e.rule.Priority {
		i++
	}
	m.groups[value] = slices.Insert(g, i, e)
	m.top = max(m.top, e.rule.Priority)
}

// leave removes e from m's group of value, keeping m.top and, for a group
// left empty, the filter.
func (t *tss6) leave(m *tssMask6, value graygwTss6Key, e *tssRule6) {
	m.groups[value] = slices.DeleteFunc(m.groups[value], func(x *tssRule6) bool { return x == e })
	if len(m.groups[value]) == 0 {
		delete(m.groups, value)
		b := filter6Bit(entry6(m, value))
		if t.refs[b]--; t.refs[b] == 0 {
			delete(t.refs, b)
			t.filter[b/64] &^= 1 << (b % 64)
		}
	}
	if e.rule.Priority == m.top {
		m.top = 0
		for _, g := range m.groups {
			m.top = max(m.top, g[0].rule.Priority)
		}
	}
}

// addr6Key is an IPv6 address as the maps hold it (struct addr6).
func addr6Key(a netip.Addr) graygwAddr6 { return addr6Of(a.As16()) }

func addr6Of(b [16]byte) graygwAddr6 {
	return graygwAddr6{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

func bytesOf6(a graygwAddr6) [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.Hi)
	binary.BigEndian.PutUint64(b[8:], a.Lo)
	return b
}

func addrOf6(a graygwAddr6) netip.Addr { return netip.AddrFrom16(bytesOf6(a)) }

// key6 packs a gray_rules_v6 key side (a value or a mask) as struct
// tss6_key does, mask id 0.
func key6(vipID uint16, f pipeline.FlowKey6) graygwTss6Key {
	return graygwTss6Key{Src: addr6Of(f.Src), Dst: addr6Of(f.Dst),
		Ids:   uint64(f.VNI&pipeline.MaxVNI|uint32(f.Proto)<<24)<<32 | uint64(vipID)<<16 | uint64(f.Tenant),
		Ports: uint64(uint32(f.SPort)<<16|uint32(f.DPort)) << 32}
}

// unkey6 is key6's inverse.
func unkey6(k graygwTss6Key) (uint16, pipeline.FlowKey6) {
	ids, ports := k.Ids>>32, k.Ports>>32
	return uint16(k.Ids >> 16), pipeline.FlowKey6{VNI: uint32(ids) & pipeline.MaxVNI, Tenant: uint16(k.Ids),
		Src: bytesOf6(k.Src), Dst: bytesOf6(k.Dst), Proto: uint8(ids >> 24), SPort: uint16(ports >> 16), DPort: uint16(ports)}
}

func normalize6(r model.GrayRuleV6) model.GrayRuleV6 {
	id := model.RuleIDV6(r)
	r.Match, r.Mask, r.VIPID = id.Match, id.Mask, id.VIPID
	return r
}

func valueOf6(r model.GrayRuleV6) graygwTss6Key { return key6(r.VIPID, r.Match) }
func maskOf6(r model.GrayRuleV6) graygwTss6Key  { return key6(r.VIPMask, r.Mask) }

func validRule6(r model.GrayRuleV6) error {
	if r.Priority <= 0 {
		return fmt.Errorf("%w: priority %d, must be > 0", ErrInvalid, r.Priority)
	}
	if r.Action != SetPool && r.Action != SplitPool {
		return fmt.Errorf("%w: action %d (gray_rules_v6: set_pool_v6 or split_pool_v6)", ErrInvalid, r.Action)
	}
	return nil
}

// ruleValue6 is what gray_rules_v6 and rule6_store hold of rule r with id.
func ruleValue6(r model.GrayRuleV6, id uint32) graygwRuleValue {
	return graygwRuleValue{Priority: uint32(r.Priority), Action: uint16(r.Action), Pool: r.Pool, Threshold: r.Threshold, Slot: id}
}

func ruleFrom6(def graygwRule6Def) model.GrayRuleV6 {
	vip, match := unkey6(def.Value)
	vipMask, mask := unkey6(def.Mask)
	v := def.Action
	return model.GrayRuleV6{Priority: int32(v.Priority), VIPID: vip, VIPMask: vipMask, Match: match, Mask: mask,
		Action: model.RuleAction(v.Action), Pool: v.Pool, Threshold: v.Threshold}
}

// InsertRuleV6 adds a gray_rules_v6 rule. A rule with the same match and
// priority is ErrExists; more than MaxMasks6 distinct masks, or
// GrayRulesV6Size rules, is ErrFull.
func (d *Dataplane) InsertRuleV6(r model.GrayRuleV6) error { return d.tss6.insert(d, r, d.placeRuleV6) }

// placeRuleV6 writes new rule e (its id's counter and definition written)
// to gray_rules_v6: the entry before the mask list names it, so a packet
// never walks to a mask whose entry is not there yet. On error it undoes
// what it wrote.
func (d *Dataplane) placeRuleV6(e *tssRule6, m *tssMask6, value, mask graygwTss6Key) error {
	t := &d.tss6
	if m == nil {
		m = t.newMask(mask)
	}
	t.join(m, value, e)
	t.rules[model.RuleIDV6(e.rule)] = e
	err := d.writeHead6(m, value)
	if err == nil {
		err = d.writeMasks6()
	}
	if err != nil {
		d.forget6(m, e)
		_ = d.writeHead6(m, value)
		return err
	}
	return nil
}

// ModifyRuleV6 changes the action of an installed gray_rules_v6 rule; its
// counter keeps counting.
func (d *Dataplane) ModifyRuleV6(r model.GrayRuleV6) error { return d.tss6.modify(d, r, d.writeHead6) }

// DeleteRuleV6 removes the gray_rules_v6 rule of r's match and priority (its
// action is not read); a rule it shadowed takes its place.
func (d *Dataplane) DeleteRuleV6(r model.GrayRuleV6) error {
	return d.tss6.delete(d, r, d.unplaceRuleV6)
}

// unplaceRuleV6 takes installed rule e out of gray_rules_v6: the head first
// (a shadowed rule, or no entry), then the list: a stale bound or mask only
// costs a lookup.
func (d *Dataplane) unplaceRuleV6(e *tssRule6, m *tssMask6, value, _ graygwTss6Key) error {
	d.forget6(m, e)
	if err := d.writeHead6(m, value); err != nil {
		return err
	}
	if err := d.writeMasks6(); err != nil {
		return fmt.Errorf("bpf: gray rule v6 deleted, but rewriting the mask list failed: %w", err)
	}
	return nil
}

// forget6 drops e from the Go bookkeeping (not from the maps).
func (d *Dataplane) forget6(m *tssMask6, e *tssRule6) {
	d.tss6.leave(m, valueOf6(e.rule), e)
	if len(m.groups) == 0 {
		delete(d.tss6.masks, m.mask)
	}
	delete(d.tss6.rules, model.RuleIDV6(e.rule))
}

// entry6 is the gray_rules_v6 key of the group of value under m.
func entry6(m *tssMask6, value graygwTss6Key) graygwTss6Key {
	value.Ports |= uint64(m.id)
	return value
}

// writeHead6 makes the gray_rules_v6 entry of (m, value) the group's best
// rule, or deletes it when the group is empty.
func (d *Dataplane) writeHead6(m *tssMask6, value graygwTss6Key) error {
	k := entry6(m, value)
	var v *graygwRuleValue
	if g := m.groups[value]; len(g) > 0 {
		head := ruleValue6(g[0].rule, g[0].id)
		v = &head
	}
	return writeEntry(d.objs.GrayRulesV6, "gray_rules_v6", &k, v)
}

// filter6Log is TSS6_FILTER_LOG: gray_masks6's filter has 2^filter6Log bits.
const filter6Log = 14

// filter6Bit is tss6_bit of hash.h: the gray_masks6 filter bit of a
// gray_rules_v6 key. Both sides must agree bit for bit (TestIPv6GrayRules
// fails otherwise: a rule whose bit is wrong is never looked up).
func filter6Bit(k graygwTss6Key) uint32 {
	h := k.Src.Hi * 0x9e3779b97f4a7c15
	h ^= k.Src.Lo * 0xc2b2ae3d27d4eb4f
	h ^= k.Dst.Hi * 0x165667b19e3779f9
	h ^= k.Dst.Lo * 0xd6e8feb86659fd93
	h ^= k.Ids * 0xff51afd7ed558ccd
	h ^= k.Ports * 0xc4ceb9fe1a85ec53
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return uint32(h >> (64 - filter6Log))
}

// writeMasks6 replaces gray_masks6's value with the masks in use, best
// priority first (a packet skips a mask that cannot beat its best match,
// so the walk ends early), and the filter bits of every group's entry. A
// group's entry is written before the value whose bit names it, and deleted
// after the value without it, so a set bit may have no entry behind it (one
// lookup for nothing) but a clear one never hides a rule.
func (d *Dataplane) writeMasks6() error {
	ms := make([]*tssMask6, 0, len(d.tss6.masks))
	for _, m := range d.tss6.masks {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *tssMask6) int { return cmp.Or(cmp.Compare(b.top, a.top), cmp.Compare(a.id, b.id)) })
	t := graygwMask6Table{Len: uint32(len(ms)), Filter: d.tss6.filter}
	for i, m := range ms {
		t.Masks[i] = graygwMask6Entry{Mask: m.mask, MaskId: m.id, Max: uint32(m.top)}
	}
	if err := d.objs.GrayMasks6.Update(uint32(0), &t, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: gray_masks6: %w", err)
	}
	return nil
}

// RulesV6 returns every installed gray_rules_v6 rule, shadowed ones included.
func (d *Dataplane) RulesV6() []model.GrayRuleV6 {
	return d.tss6.list(d)
}

// RuleCounterV6 reads the direct counter of the gray_rules_v6 rule of r's
// match and priority.
func (d *Dataplane) RuleCounterV6(r model.GrayRuleV6) (Counter, error) {
	return d.tss6.counter(d, r)
}

// SetRuleCounterV6 sets the direct counter of the gray_rules_v6 rule of r's
// match and priority.
func (d *Dataplane) SetRuleCounterV6(r model.GrayRuleV6, c Counter) error {
	return d.tss6.setCounter(d, r, c)
}

// rebuild6 recovers tss6 from rule6_store and rewrites gray_rules_v6 and
// gray_masks6 from it (fresh mask ids), then deletes the entries of the old
// ids: what the previous process left half-written is repaired.
func (d *Dataplane) rebuild6() error {
	d.tss6 = newTSS6(d.objs.Rule6Store, d.objs.Rule6Counters)
	t := &d.tss6
	var id uint32
	var def graygwRule6Def
	var stale []uint32
	it := d.objs.Rule6Store.Iterate()
	for it.Next(&id, &def) {
		r := ruleFrom6(def)
		rid, value, mask := model.RuleIDV6(r), valueOf6(r), maskOf6(r)
		m := t.masks[mask]
		if _, dup := t.rules[rid]; dup || validRule6(r) != nil || (m == nil && len(t.masks) >= MaxMasks6) || !t.ids.take(id) {
			stale = append(stale, id)
			continue
		}
		if m == nil {
			m = t.newMask(mask)
		}
		e := &tssRule6{id: id, rule: r}
		t.join(m, value, e)
		t.rules[rid] = e
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: rebuild rule6_store: %w", err)
	}
	for _, s := range stale {
		_ = d.objs.Rule6Store.Delete(s)
	}
	want := map[graygwTss6Key]bool{}
	for _, m := range t.masks {
		for v, g := range m.groups {
			// join kept each group by priority in rule6_store's order;
			// equals go by rule id, the order they were written in.
			t.sortGroup(g)
			if err := d.writeHead6(m, v); err != nil {
				return err
			}
			want[entry6(m, v)] = true
		}
	}
	if err := d.writeMasks6(); err != nil {
		return err
	}
	if err := dropStrays[graygwTss6Key, graygwRuleValue](d.objs.GrayRulesV6, want); err != nil {
		return fmt.Errorf("bpf: rebuild gray_rules_v6: %w", err)
	}
	return nil
}
