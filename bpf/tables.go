//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// SetVIP inserts or modifies the vip entry of addr: vip for an IPv4
// address, vip_v6 for an IPv6 one (an IPv4-mapped one too: it is 128 bits
// to vip_v6 as to P4). A new entry's counter starts at zero; a modified one
// keeps counting.
func (d *Dataplane) SetVIP(addr netip.Addr, v VIP) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := ip4(addr); ok {
		return d.setVIP4(k, addr, v)
	}
	if addr.Is6() {
		return d.vip6.set(d, addr6Key(addr), addr, v)
	}
	return fmt.Errorf("bpf: vip %v: %w: neither IPv4 nor IPv6", addr, ErrInvalid)
}

// DeleteVIP deletes the vip or vip_v6 entry of addr.
func (d *Dataplane) DeleteVIP(addr netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := ip4(addr); ok {
		return d.deleteVIP4(k, addr)
	}
	return d.vip6.del(d, addr6Key(addr), addr)
}

// setVIP4 writes vip (the record), then vip_index (what packets read). A
// failed publish puts the record back as it was.
func (d *Dataplane) setVIP4(k uint32, addr netip.Addr, v VIP) error {
	var old graygwVipValue
	had := d.vip4.entries.Lookup(k, &old) == nil
	if err := d.vip4.set(d, k, addr, v); err != nil {
		return err
	}
	err := d.vipPublish(k, graygwVipValue{VipId: v.ID, DefaultPool: v.DefaultPool, Slot: d.vip4.slot[k]})
	if err == nil {
		return nil
	}
	if had {
		err = errors.Join(err, d.vip4.entries.Update(k, &old, ebpf.UpdateExist))
	} else {
		err = errors.Join(err, d.vip4.del(d, k, addr))
	}
	return fmt.Errorf("bpf: vip %v: %w", addr, err)
}

// deleteVIP4 hides addr from packets (vip_index), then deletes the record.
func (d *Dataplane) deleteVIP4(k uint32, addr netip.Addr) error {
	if _, ok := d.vip4.slot[k]; !ok {
		return fmt.Errorf("bpf: vip %v: %w", addr, ErrNotFound)
	}
	if err := d.vipUnpublish(k); err != nil {
		return fmt.Errorf("bpf: vip %v: %w", addr, err)
	}
	if err := d.vip4.del(d, k, addr); err != nil {
		var v graygwVipValue
		if d.vip4.entries.Lookup(k, &v) == nil {
			err = errors.Join(err, d.vipPublish(k, v)) // still in the record: shown again
		}
		return err
	}
	return nil
}

// VIPs returns every vip and vip_v6 entry.
func (d *Dataplane) VIPs() (map[netip.Addr]VIP, error) {
	out := map[netip.Addr]VIP{}
	var k uint32
	var v graygwVipValue
	it := d.objs.Vip.Iterate()
	for it.Next(&k, &v) {
		out[addr4(k)] = VIP{ID: v.VipId, DefaultPool: v.DefaultPool}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: vips: %w", err)
	}
	var k6 graygwAddr6
	it = d.objs.VipV6.Iterate()
	for it.Next(&k6, &v) {
		out[addrOf6(k6)] = VIP{ID: v.VipId, DefaultPool: v.DefaultPool}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: vip_v6: %w", err)
	}
	return out, nil
}

// VIPCounter reads the direct counter of addr's vip or vip_v6 entry.
func (d *Dataplane) VIPCounter(addr netip.Addr) (Counter, error) {
	d.mu.Lock()
	m, slot, err := d.vipSlot(addr)
	d.mu.Unlock()
	if err != nil {
		return Counter{}, err
	}
	return d.sum(m, slot)
}

// vipSlot is the counter map and cell of addr's vip or vip_v6 entry.
func (d *Dataplane) vipSlot(addr netip.Addr) (*ebpf.Map, uint32, error) {
	var slot uint32
	var ok bool
	m := d.vip4.counters
	if k, is4 := ip4(addr); is4 {
		slot, ok = d.vip4.slot[k]
	} else {
		m = d.vip6.counters
		slot, ok = d.vip6.slot[addr6Key(addr)]
	}
	if !ok {
		return nil, 0, fmt.Errorf("bpf: vip %v: %w", addr, ErrNotFound)
	}
	return m, slot, nil
}

// vipTable is the Go side of vip (K uint32) or vip_v6 (K graygwAddr6): the
// counter cell of each entry.
type vipTable[K comparable] struct {
	entries, counters *ebpf.Map
	slot              map[K]uint32
	slots             slots
}

func newVIPTable[K comparable](entries, counters *ebpf.Map, size int) vipTable[K] {
	return vipTable[K]{entries: entries, counters: counters, slot: map[K]uint32{}, slots: newSlots(size)}
}

// rebuild takes the counter cells the pinned entries hold.
func (t *vipTable[K]) rebuild() error {
	var k K
	var v graygwVipValue
	it := t.entries.Iterate()
	for it.Next(&k, &v) {
		if !t.slots.take(v.Slot) {
			return fmt.Errorf("bpf: rebuild %s: %w: counter slot %d out of range (graygw-agent --repin)", t.entries, ErrIncompatiblePin, v.Slot)
		}
		t.slot[k] = v.Slot
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: rebuild %s: %w", t.entries, err)
	}
	return nil
}

func (t *vipTable[K]) set(d *Dataplane, key K, addr netip.Addr, v VIP) error {
	slot, exists := t.slot[key]
	if !exists {
		var ok bool
		if slot, ok = t.slots.alloc(); !ok {
			return fmt.Errorf("bpf: vip %v: %w", addr, ErrFull)
		}
		if err := d.zero(t.counters, slot); err != nil {
			t.slots.free(slot)
			return err
		}
	}
	val := graygwVipValue{VipId: v.ID, DefaultPool: v.DefaultPool, Slot: slot}
	if err := t.entries.Update(key, &val, ebpf.UpdateAny); err != nil {
		if !exists {
			t.slots.free(slot)
		}
		return fmt.Errorf("bpf: vip %v: %w", addr, err)
	}
	t.slot[key] = slot
	return nil
}

func (t *vipTable[K]) del(d *Dataplane, key K, addr netip.Addr) error {
	slot, ok := t.slot[key]
	if !ok {
		return fmt.Errorf("bpf: vip %v: %w", addr, ErrNotFound)
	}
	if err := t.entries.Delete(key); err != nil {
		return fmt.Errorf("bpf: vip %v: %w", addr, err)
	}
	delete(t.slot, key)
	t.slots.free(slot)
	return nil
}

// SetTenant inserts or modifies the vni_tenant entry of vni (24 bits).
func (d *Dataplane) SetTenant(vni uint32, tenant uint16) error {
	if vni > pipeline.MaxVNI {
		return fmt.Errorf("bpf: tenant of vni %d: %w: wider than 24 bits", vni, ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.VniTenant.Update(vni, uint32(tenant), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: tenant of vni %d: %w", vni, err)
	}
	if err := d.setTenantCell(vni, tenant); err != nil {
		return fmt.Errorf("bpf: tenant of vni %d: %w", vni, err)
	}
	return nil
}

// DeleteTenant deletes the vni_tenant entry of vni.
func (d *Dataplane) DeleteTenant(vni uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var t uint32
	if vni > pipeline.MaxVNI || d.objs.VniTenant.Lookup(vni, &t) != nil {
		return fmt.Errorf("bpf: tenant of vni %d: %w", vni, ErrNotFound)
	}
	if err := d.clearTenantCell(vni); err != nil {
		return fmt.Errorf("bpf: tenant of vni %d: %w", vni, err)
	}
	return d.delete(d.objs.VniTenant, vni, fmt.Sprintf("tenant of vni %d", vni))
}

// SetPoolHash sets which fields feed the hash of pool (set_hash_mask). Fields
// of the mask beyond their width (VNI above 24 bits) are ignored.
//
// The entry goes to pool_hash; when the pool owns buckets its pool_slot word
// is then rewritten with the mask's bits (or POOL_HASH_LOOKUP), so a packet
// sees the old mask or the new one.
func (d *Dataplane) SetPoolHash(pool uint16, mask pipeline.FlowKey) error {
	mask.VNI &= pipeline.MaxVNI
	v := hashMaskValue(mask)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.poolHash[pool]
	if err := d.objs.PoolHash.Update(uint32(pool), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: pool_hash %d: %w", pool, err)
	}
	d.poolHash[pool] = mask
	if err := d.republish(pool); err != nil {
		// packets still hash with the old mask: put the old entry back
		if had {
			ov := hashMaskValue(old)
			_ = d.objs.PoolHash.Update(uint32(pool), &ov, ebpf.UpdateAny)
			d.poolHash[pool] = old
		} else {
			_ = d.objs.PoolHash.Delete(uint32(pool))
			delete(d.poolHash, pool)
		}
		return err
	}
	return nil
}

// DeletePoolHash deletes the pool_hash entry of pool: its hash uses every
// field. The pool_slot word forgets the mask first.
func (d *Dataplane) DeletePoolHash(pool uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.poolHash[pool]
	delete(d.poolHash, pool)
	if err := d.republish(pool); err != nil {
		if had {
			d.poolHash[pool] = old
		}
		return err
	}
	return d.delete(d.objs.PoolHash, uint32(pool), fmt.Sprintf("pool_hash %d", pool))
}

func hashMaskValue(m pipeline.FlowKey) graygwHashMask {
	return graygwHashMask{Vni: m.VNI, Tenant: m.Tenant, Src: m.Src, Dst: m.Dst, Proto: m.Proto, Sport: m.SPort,
		Dport: m.DPort}
}

// hashBits is the part of a pool_slot word that stands for the pool's hash
// mask (POOL_HASH_* in consts.h): none for no entry or all ones, a bit per
// field left out when every field is all ones or zero, else POOL_HASH_LOOKUP.
func hashBits(m pipeline.FlowKey, ok bool) uint32 {
	if !ok {
		return 0
	}
	var bits uint32
	for i, f := range []struct{ v, full uint32 }{
		{m.VNI, pipeline.MaxVNI}, {uint32(m.Tenant), 0xffff}, {m.Src, 0xffffffff}, {m.Dst, 0xffffffff},
		{uint32(m.Proto), 0xff}, {uint32(m.SPort), 0xffff}, {uint32(m.DPort), 0xffff},
	} {
		switch f.v {
		case f.full:
		case 0:
			bits |= 1 << (poolHashShift + i)
		default:
			return poolHashLookup
		}
	}
	return bits
}

// slotWord is the pool_slot word that publishes slot for pool.
func (d *Dataplane) slotWord(pool uint16, slot uint32) uint32 {
	m, ok := d.poolHash[pool]
	return slot + 1 | hashBits(m, ok)
}

// republish rewrites the pool_slot word of pool, if it owns buckets, for
// its current pool_hash entry.
func (d *Dataplane) republish(pool uint16) error {
	slot, ok := d.sel.of[pool]
	if !ok {
		return nil
	}
	if err := d.objs.PoolSlot.Update(uint32(pool), d.slotWord(pool, slot), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: pool_slot %d: %w", pool, err)
	}
	return nil
}

// SetBackendEntry inserts or modifies backend id. A new entry's counter starts at
// zero; packets see the old or the new value whole: it goes to a fresh cell
// of backend_cells that backend_ver then names (backends.go), and to the
// backends hash for read-back.
func (d *Dataplane) SetBackendEntry(id uint16, b Backend) error {
	if b.Port >= MaxPorts {
		return fmt.Errorf("bpf: backend %d: %w: needs a port < %d", id, ErrInvalid, MaxPorts)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, exists := d.backends[uint32(id)]
	if !exists {
		var ok bool
		if slot, ok = d.beSlots.alloc(); !ok {
			return fmt.Errorf("bpf: backend %d: %w", id, ErrFull)
		}
		if err := d.zero(d.objs.BackendCounters, slot); err != nil {
			d.beSlots.free(slot)
			return err
		}
		if err := d.zero(d.objs.MirrorBackendCounters, slot); err != nil {
			d.beSlots.free(slot)
			return err
		}
	}
	vid, err := d.portVID(b.Port)
	if err != nil {
		if !exists {
			d.beSlots.free(slot)
		}
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	v := graygwBackend{UnderlayIp: b.UnderlayIP, Port: b.Port, Smac: b.SMAC, Dmac: b.DMAC, Vlan: vid, Slot: slot}
	if b.IPv6 {
		v.UnderlayIp, v.UnderlayIp6, v.Family = 0, b.UnderlayIPv6, familyIPv6
	}
	var old graygwBackend
	if exists {
		if err := d.objs.Backend.Lookup(uint32(id), &old); err != nil {
			return fmt.Errorf("bpf: backend %d: %w", id, err)
		}
	}
	if err := d.objs.Backend.Update(uint32(id), &v, ebpf.UpdateAny); err != nil {
		if !exists {
			d.beSlots.free(slot)
		}
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	if err := d.publishBackend(id, &v); err != nil {
		// packets still see the old value (or none): so should read-back
		if exists {
			_ = d.objs.Backend.Update(uint32(id), &old, ebpf.UpdateAny)
		} else {
			_ = d.objs.Backend.Delete(uint32(id))
			d.beSlots.free(slot)
		}
		return err
	}
	d.backends[uint32(id)] = slot
	return nil
}

// DeleteBackendEntry deletes backend id. Repoint its buckets first (make before break).
func (d *Dataplane) DeleteBackendEntry(id uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, ok := d.backends[uint32(id)]
	if !ok {
		return fmt.Errorf("bpf: backend %d: %w", id, ErrNotFound)
	}
	if err := d.unpublishBackend(id); err != nil {
		return err
	}
	if err := d.objs.Backend.Delete(uint32(id)); err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	delete(d.backends, uint32(id))
	d.beSlots.free(slot)
	return nil
}

// MirrorBackendCounter reads the mirror copies sent to backend id
// (mirror_backend_counter, docs/pipeline.md §10).
func (d *Dataplane) MirrorBackendCounter(id uint16) (Counter, error) {
	return d.backendCounter(d.objs.MirrorBackendCounters, id)
}

// MirrorCounter reads the copies made by the rules naming mirror id
// (mirror_counter, docs/pipeline.md §10).
func (d *Dataplane) MirrorCounter(id uint16) (Counter, error) {
	if id >= pipeline.MirrorIDs {
		return Counter{}, fmt.Errorf("bpf: mirror id %d: %w: must be < %d", id, ErrInvalid, pipeline.MirrorIDs)
	}
	return d.sum(d.objs.MirrorCounters, uint32(id))
}

// BackendCounter reads the direct counter of backend id.
func (d *Dataplane) BackendCounter(id uint16) (Counter, error) {
	return d.backendCounter(d.objs.BackendCounters, id)
}

// backendCounter reads the cell of backend id's counter slot in m.
func (d *Dataplane) backendCounter(m *ebpf.Map, id uint16) (Counter, error) {
	d.mu.Lock()
	slot, ok := d.backends[uint32(id)]
	d.mu.Unlock()
	if !ok {
		return Counter{}, fmt.Errorf("bpf: backend %d: %w", id, ErrNotFound)
	}
	return d.sum(m, slot)
}

// SetPort binds port to the interface ifindex: packets for the port leave
// through it (XDP_TX when it is the ingress interface, else a devmap redirect).
func (d *Dataplane) SetPort(port uint16, ifindex int) error {
	if port >= MaxPorts || ifindex <= 0 {
		return fmt.Errorf("bpf: port %d: %w: port < %d, ifindex > 0", port, ErrInvalid, MaxPorts)
	}
	var old uint32
	if err := d.objs.PortIfindex.Lookup(uint32(port), &old); err != nil {
		return fmt.Errorf("bpf: port %d: %w", port, err)
	}
	// devmap first: once port_ifindex names the port, packets redirect to it.
	if err := d.objs.TxPorts.Update(uint32(port), uint32(ifindex), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: port %d: devmap: %w", port, err)
	}
	if err := d.objs.PortIfindex.Update(uint32(port), uint32(ifindex), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: port %d: %w", port, err)
	}
	// The ingress side: a tagged frame's interface names its port (vlan_accept).
	return d.bindIfindex(port, old, uint32(ifindex))
}

// DeletePort unbinds port: its packets drop PORT_DOWN.
func (d *Dataplane) DeletePort(port uint16) error {
	if port >= MaxPorts {
		return fmt.Errorf("bpf: port %d: %w", port, ErrInvalid)
	}
	var old uint32
	if err := d.objs.PortIfindex.Lookup(uint32(port), &old); err != nil {
		return fmt.Errorf("bpf: port %d: %w", port, err)
	}
	if err := d.objs.PortIfindex.Update(uint32(port), uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: port %d: %w", port, err)
	}
	if err := d.bindIfindex(port, old, 0); err != nil {
		return err
	}
	if err := d.objs.TxPorts.Delete(uint32(port)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: port %d: devmap: %w", port, err)
	}
	return nil
}

// DropCounters reads the drop_reasons counter, indexed by pipeline.Reason.
func (d *Dataplane) DropCounters() ([pipeline.NumReasons]Counter, error) {
	var out [pipeline.NumReasons]Counter
	for i := range out {
		c, err := d.sum(d.objs.DropReasons, uint32(i))
		if err != nil {
			return out, err
		}
		out[i] = c
	}
	return out, nil
}

// sum adds the per-CPU cells of a counter.
func (d *Dataplane) sum(m *ebpf.Map, idx uint32) (Counter, error) {
	var cells []graygwCounter
	if err := m.Lookup(idx, &cells); err != nil {
		return Counter{}, fmt.Errorf("bpf: counter %s[%d]: %w", m.String(), idx, err)
	}
	var c Counter
	for _, x := range cells {
		c.Packets += x.Packets
		c.Bytes += x.Bytes
	}
	return c, nil
}

// zero resets every CPU's cell of a counter.
func (d *Dataplane) zero(m *ebpf.Map, idx uint32) error {
	if err := m.Update(idx, make([]graygwCounter, d.ncpu), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: reset counter %d: %w", idx, err)
	}
	return nil
}

func (d *Dataplane) delete(m *ebpf.Map, key any, what string) error {
	if err := m.Delete(key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: %s: %w", what, ErrNotFound)
		}
		return fmt.Errorf("bpf: %s: %w", what, err)
	}
	return nil
}
