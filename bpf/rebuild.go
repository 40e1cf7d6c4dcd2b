//go:build linux

package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// rebuild recovers the Go bookkeeping from the (possibly reused) maps: counter
// slots from vip_map and backends, backend cells from backend_ver against
// backends (rebuildBackends, which repairs them), pool_hash, backend_select
// slots from pool_slot (rebuildPools, which repairs them), gray rules from
// rule_store. It then rewrites
// gray_rules and gray_masks from rule_store, which changes nothing when the
// previous process finished its last write, and repairs them when it died
// half-way through one.
func (d *Dataplane) rebuild() error {
	d.vip4 = newVIPTable[uint32](d.objs.Vip, d.objs.VipCounters, pipeline.VIPTableSize)
	d.vip6 = newVIPTable[graygwAddr6](d.objs.VipV6, d.objs.Vip6Counters, VIPV6Size)
	d.backends, d.beSlots = map[uint32]uint32{}, newSlots(pipeline.BackendTableSize)
	d.tss = newTSS(d.objs.RuleStore, d.objs.RuleCounters)
	d.index = ruleIndex{} // rebuildIndex, once the heads are known

	if err := d.vip4.rebuild(); err != nil {
		return err
	}
	if err := d.vip6.rebuild(); err != nil {
		return err
	}
	var k, slotKey uint32
	var be graygwBackend
	bes := map[uint16]graygwBackend{}
	it := d.objs.Backend.Iterate()
	for it.Next(&k, &be) {
		if !d.beSlots.take(be.Slot) {
			return fmt.Errorf("bpf: rebuild backends: %w: counter slot %d out of range (graygw-agent --repin)", ErrIncompatiblePin, be.Slot)
		}
		d.backends[k] = be.Slot
		bes[uint16(k)] = be
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: rebuild backends: %w", err)
	}
	// A backend's cell carries its port's VID: port_vlan is the truth, a
	// stale copy is republished below (and the hash corrected).
	for id, b := range bes {
		vid, err := d.portVID(b.Port)
		if err != nil {
			return fmt.Errorf("bpf: rebuild backends: %w", err)
		}
		if b.Vlan != vid {
			b.Vlan = vid
			if err := d.objs.Backend.Update(uint32(id), &b, ebpf.UpdateExist); err != nil {
				return fmt.Errorf("bpf: rebuild backend %d: %w", id, err)
			}
			bes[id] = b
		}
	}
	if err := d.rebuildBackends(bes); err != nil {
		return err
	}

	tenants, err := d.Tenants()
	if err != nil {
		return fmt.Errorf("bpf: rebuild: %w", err)
	}
	if err := d.rebuildTenants(tenants); err != nil {
		return err
	}

	d.poolHash = map[uint16]pipeline.FlowKey{}
	var hm graygwHashMask
	it = d.objs.PoolHash.Iterate()
	for it.Next(&k, &hm) {
		d.poolHash[uint16(k)] = pipeline.FlowKey{VNI: hm.Vni, Tenant: hm.Tenant, Src: hm.Src, Dst: hm.Dst,
			Proto: hm.Proto, SPort: hm.Sport, DPort: hm.Dport}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: rebuild pool_hash: %w", err)
	}
	if err := d.rebuildPools(); err != nil {
		return err
	}

	if err := d.rebuildMaskPositions(); err != nil {
		return err
	}
	var def graygwRuleDef
	var stale []uint32
	it = d.objs.RuleStore.Iterate()
	for it.Next(&slotKey, &def) {
		r := ruleFrom(def)
		match, value, mask := model.RuleID(r), valueOf(r), maskOf(r)
		if _, dup := d.tss.rules[match]; dup || validRule(r) != nil || !d.tss.ids.take(slotKey) {
			stale = append(stale, slotKey)
			continue
		}
		m := d.tss.masks[mask]
		if m == nil {
			if len(d.tss.masks) >= MaxMasks {
				stale = append(stale, slotKey)
				d.tss.ids.free(slotKey)
				continue
			}
			var err error
			if m, err = d.addMask(mask); err != nil {
				return fmt.Errorf("bpf: rebuild: %w", err)
			}
			d.tss.masks[mask] = m
		}
		e := &tssRule{id: slotKey, rule: r}
		m.groups[value] = append(m.groups[value], e)
		m.count(r.Priority, +1)
		d.tss.rules[match] = e
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: rebuild rule_store: %w", err)
	}
	for _, s := range stale {
		_ = d.objs.RuleStore.Delete(s)
	}
	for mask, m := range d.tss.masks {
		if len(m.groups) == 0 {
			delete(d.tss.masks, mask)
			if err := d.dropMask(m); err != nil {
				return fmt.Errorf("bpf: rebuild: %w", err)
			}
		}
	}
	// Filter bits before entries, exact filter once stray entries are gone.
	if err := d.rebuildFilter(true); err != nil {
		return err
	}
	for _, m := range d.tss.masks {
		for v, g := range m.groups {
			d.tss.sortGroup(g)
			if err := d.writeHead(m, v); err != nil {
				return err
			}
		}
	}
	want := map[graygwTssKey]graygwRuleValue{}
	for _, m := range d.tss.masks {
		for v, g := range m.groups {
			want[tssKey(m.id, v)] = ruleValue(g[0].rule, g[0].id)
		}
	}
	if err := d.rebuildIndex(want); err != nil {
		return err
	}
	if err := d.dropStrayRules(); err != nil {
		return err
	}
	for _, m := range d.tss.masks {
		if err := d.setMaskMax(m); err != nil {
			return fmt.Errorf("bpf: rebuild: %w", err)
		}
	}
	if err := d.rebuildFilter(false); err != nil {
		return err
	}
	return d.rebuild6()
}

// dropStrayRules deletes gray_rules entries no rule in rule_store accounts for.
func (d *Dataplane) dropStrayRules() error {
	want := map[graygwTssKey]bool{}
	for _, m := range d.tss.masks {
		for v := range m.groups {
			want[tssKey(m.id, v)] = true
		}
	}
	if err := dropStrays[graygwTssKey, graygwRuleValue](d.objs.GrayRules, want); err != nil {
		return fmt.Errorf("bpf: rebuild gray_rules: %w", err)
	}
	return nil
}

// rebuildMaskPositions keeps the masks at the positions packets walk now,
// with their ids. A position whose word is 0 but whose entry was written is
// quarantined (a packet may have read its word just before it was zeroed);
// a second position holding a mask already seen is hidden and quarantined.
func (d *Dataplane) rebuildMaskPositions() error {
	p := &d.tss.pos
	mem, err := d.objs.GrayMasks.Memory()
	if err != nil {
		return fmt.Errorf("bpf: gray_masks: %w", err)
	}
	p.mem = mem
	t, err := p.readTable()
	if err != nil {
		return err
	}
	p.len = min(t.Len, MaxMasks)
	for pos := range uint32(MaxMasks) {
		e, bound := t.Masks[pos], t.Max[pos]
		d.tss.nextMask = max(d.tss.nextMask, e.MaskId+1)
		mask := ruleKeyFrom(e.Mask)
		switch {
		case e == (graygwMaskEntry{}) && bound == 0:
			// never written
		case bound == 0 || pos >= p.len || d.tss.masks[mask] != nil:
			if bound != 0 {
				if err := p.writeWord(maskMaxOff+4*int64(pos), 0); err != nil {
					return err
				}
			}
			p.state[pos] = slotQuarantine
		default:
			m := newTSSMask(e.MaskId)
			m.pos = pos
			d.tss.masks[mask] = m
			p.of[pos], p.state[pos] = m, slotUsed
		}
	}
	return nil
}
