//go:build linux

package bpf

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Read-back of table entries and counter writes, for an agent that
// reconciles after a restart (P4Runtime Read) or restores counters
// (P4Runtime CounterEntry MODIFY).

// Tenants returns every vni_tenant entry.
func (d *Dataplane) Tenants() (map[uint32]uint16, error) {
	out := map[uint32]uint16{}
	var k, v uint32
	it := d.objs.VniTenant.Iterate()
	for it.Next(&k, &v) {
		out[k] = uint16(v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: tenants: %w", err)
	}
	return out, nil
}

// PoolHashes returns every pool_hash entry.
func (d *Dataplane) PoolHashes() (map[uint16]pipeline.FlowKey, error) {
	out := map[uint16]pipeline.FlowKey{}
	var k uint32
	var m graygwHashMask
	it := d.objs.PoolHash.Iterate()
	for it.Next(&k, &m) {
		out[uint16(k)] = pipeline.FlowKey{VNI: m.Vni, Tenant: m.Tenant, Src: m.Src, Dst: m.Dst, Proto: m.Proto,
			SPort: m.Sport, DPort: m.Dport}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: pool_hash: %w", err)
	}
	return out, nil
}

// Backends returns every backend entry.
func (d *Dataplane) Backends() (map[uint16]Backend, error) {
	out := map[uint16]Backend{}
	var k uint32
	var b graygwBackend
	it := d.objs.Backend.Iterate()
	for it.Next(&k, &b) {
		out[uint16(k)] = backendOf(b)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: backends: %w", err)
	}
	return out, nil
}

// Ports returns the bound ports and their interface indexes.
func (d *Dataplane) Ports() (map[uint16]int, error) {
	return readPorts(d.objs.PortIfindex, "ports", func(ifx uint32) (int, bool) { return int(ifx), ifx != 0 })
}

// readPorts reads the word of every port in m (named name) and returns, by
// port, what of returns of the words it accepts.
func readPorts[V any](m *ebpf.Map, name string, of func(w uint32) (V, bool)) (map[uint16]V, error) {
	out := map[uint16]V{}
	for p := range uint32(MaxPorts) {
		var w uint32
		if err := m.Lookup(p, &w); err != nil {
			return nil, fmt.Errorf("bpf: %s: %w", name, err)
		}
		if v, ok := of(w); ok {
			out[uint16(p)] = v
		}
	}
	return out, nil
}

// SetDropCounter sets the drop_reasons cell of reason.
func (d *Dataplane) SetDropCounter(reason pipeline.Reason, c Counter) error {
	if reason >= pipeline.NumReasons {
		return fmt.Errorf("bpf: drop counter %d: %w", reason, ErrInvalid)
	}
	return d.set(d.objs.DropReasons, uint32(reason), c)
}

// SetVIPCounter sets the direct counter of addr's vip entry.
func (d *Dataplane) SetVIPCounter(addr netip.Addr, c Counter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, slot, err := d.vipSlot(addr)
	if err != nil {
		return err
	}
	return d.set(m, slot, c)
}

// SetRuleCounter sets the direct counter of the gray rule of r's match and
// priority.
func (d *Dataplane) SetRuleCounter(r model.GrayRule, c Counter) error {
	match := model.RuleID(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.tss.rules[match]
	if !ok {
		return fmt.Errorf("bpf: gray rule %+v: %w", match, ErrNotFound)
	}
	return d.set(d.objs.RuleCounters, e.id, c)
}

// SetBackendCounter sets the direct counter of backend id.
func (d *Dataplane) SetBackendCounter(id uint16, c Counter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, ok := d.backends[uint32(id)]
	if !ok {
		return fmt.Errorf("bpf: backend %d: %w", id, ErrNotFound)
	}
	return d.set(d.objs.BackendCounters, slot, c)
}

// set writes c into the first CPU's cell and zeroes the others, so the sum
// over CPUs is c. Packets counted during the write may be lost.
func (d *Dataplane) set(m *ebpf.Map, idx uint32, c Counter) error {
	cells := make([]graygwCounter, d.ncpu)
	cells[0] = graygwCounter{Packets: c.Packets, Bytes: c.Bytes}
	if err := m.Update(idx, cells, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: set counter %s[%d]: %w", m.String(), idx, err)
	}
	return nil
}

// backendOf is the entry a backend value holds (to_backend or to_backend_v6).
func backendOf(b graygwBackend) Backend {
	if b.Family == familyIPv6 {
		return Backend{Port: b.Port, SMAC: b.Smac, DMAC: b.Dmac, IPv6: true, UnderlayIPv6: b.UnderlayIp6}
	}
	return Backend{Port: b.Port, SMAC: b.Smac, DMAC: b.Dmac, UnderlayIP: b.UnderlayIp}
}
