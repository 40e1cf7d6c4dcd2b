//go:build linux

// Package xdp adapts the XDP dataplane of package bpf to the agent's
// dataplane.Dataplane interface: addresses as numbers become netip.Addr, model
// gray rules become bpf rules, and bpf's sentinel errors become the dataplane
// package's. It implements dataplane.Lister and dataplane.CounterWriter too.
package xdp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Dataplane is a dataplane.Dataplane over a loaded *bpf.Dataplane.
type Dataplane struct {
	d *bpf.Dataplane
}

var (
	_ dataplane.Dataplane     = (*Dataplane)(nil)
	_ dataplane.Lister        = (*Dataplane)(nil)
	_ dataplane.CounterWriter = (*Dataplane)(nil)
)

// New wraps d. The caller keeps ownership of d (Attach, SetPort, Close).
func New(d *bpf.Dataplane) *Dataplane { return &Dataplane{d: d} }

// BPF returns the wrapped dataplane.
func (x *Dataplane) BPF() *bpf.Dataplane { return x.d }

// wrap maps bpf's sentinels onto dataplane's, keeping the original message.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bpf.ErrNotFound):
		return fmt.Errorf("%w: %w", dataplane.ErrNotFound, err)
	case errors.Is(err, bpf.ErrExists):
		return fmt.Errorf("%w: %w", dataplane.ErrExists, err)
	case errors.Is(err, bpf.ErrFull):
		return fmt.Errorf("%w: %w", dataplane.ErrFull, err)
	case errors.Is(err, bpf.ErrInvalid):
		return fmt.Errorf("%w: %w", dataplane.ErrOutOfRange, err)
	}
	return err
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func num(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// validRule refuses what the agent must answer OUT_OF_RANGE (the bpf
// package's own check says invalid).
func validRule(r model.GrayRule) error {
	if r.Action == model.SetPoolMirror && r.MirrorID >= pipeline.MirrorIDs {
		return fmt.Errorf("%w: set_pool_mirror: mirror_id %d, must be < %d", dataplane.ErrOutOfRange, r.MirrorID, pipeline.MirrorIDs)
	}
	if r.Action != model.SetPool && r.Action != model.SplitPool && r.Action != model.SetPoolMirror {
		return fmt.Errorf("%w: gray rule action %d", dataplane.ErrOutOfRange, r.Action)
	}
	return nil
}

// MirrorCounter implements dataplane.MirrorCounters.
func (x *Dataplane) MirrorCounter(id uint16) (dataplane.Counter, error) {
	if id >= pipeline.MirrorIDs {
		return dataplane.Counter{}, fmt.Errorf("mirror id %d: %w", id, dataplane.ErrOutOfRange)
	}
	c, err := x.d.MirrorCounter(id)
	return c, wrap(err)
}

// MirrorBackendCounter implements dataplane.MirrorCounters.
func (x *Dataplane) MirrorBackendCounter(id uint16) (dataplane.Counter, error) {
	c, err := x.d.MirrorBackendCounter(id)
	return c, wrap(err)
}

// SetVIP implements dataplane.Dataplane.
func (x *Dataplane) SetVIP(a uint32, v model.VIP) error {
	return wrap(x.d.SetVIP(addr(a), v))
}

// DeleteVIP implements dataplane.Dataplane.
func (x *Dataplane) DeleteVIP(a uint32) error { return wrap(x.d.DeleteVIP(addr(a))) }

// SetVIPV6 implements dataplane.Dataplane.
func (x *Dataplane) SetVIPV6(a [16]byte, v model.VIP) error {
	return wrap(x.d.SetVIP(netip.AddrFrom16(a), v))
}

// DeleteVIPV6 implements dataplane.Dataplane.
func (x *Dataplane) DeleteVIPV6(a [16]byte) error { return wrap(x.d.DeleteVIP(netip.AddrFrom16(a))) }

// SetTenant implements dataplane.Dataplane.
func (x *Dataplane) SetTenant(vni uint32, tenant uint16) error {
	return wrap(x.d.SetTenant(vni, tenant))
}

// DeleteTenant implements dataplane.Dataplane.
func (x *Dataplane) DeleteTenant(vni uint32) error { return wrap(x.d.DeleteTenant(vni)) }

// InsertRule implements dataplane.Dataplane.
func (x *Dataplane) InsertRule(r model.GrayRule) error {
	if err := validRule(r); err != nil {
		return err
	}
	return wrap(x.d.InsertRule(r))
}

// ModifyRule implements dataplane.Dataplane.
func (x *Dataplane) ModifyRule(r model.GrayRule) error {
	if err := validRule(r); err != nil {
		return err
	}
	return wrap(x.d.ModifyRule(r))
}

// DeleteRule implements dataplane.Dataplane.
func (x *Dataplane) DeleteRule(r model.GrayRule) error { return wrap(x.d.DeleteRule(r)) }

// InsertRuleV6 implements dataplane.Dataplane.
func (x *Dataplane) InsertRuleV6(r model.GrayRuleV6) error { return wrap(x.d.InsertRuleV6(r)) }

// ModifyRuleV6 implements dataplane.Dataplane.
func (x *Dataplane) ModifyRuleV6(r model.GrayRuleV6) error { return wrap(x.d.ModifyRuleV6(r)) }

// DeleteRuleV6 implements dataplane.Dataplane.
func (x *Dataplane) DeleteRuleV6(r model.GrayRuleV6) error { return wrap(x.d.DeleteRuleV6(r)) }

// SetPoolHash implements dataplane.Dataplane.
func (x *Dataplane) SetPoolHash(pool uint16, mask pipeline.FlowKey) error {
	return wrap(x.d.SetPoolHash(pool, mask))
}

// DeletePoolHash implements dataplane.Dataplane.
func (x *Dataplane) DeletePoolHash(pool uint16) error { return wrap(x.d.DeletePoolHash(pool)) }

// SetBucket implements dataplane.Dataplane.
func (x *Dataplane) SetBucket(pool, bucket, backend uint16) error {
	return wrap(x.d.SetBucket(pool, bucket, backend))
}

// SetBuckets implements dataplane.Dataplane.
func (x *Dataplane) SetBuckets(pool, first uint16, backends []uint16) error {
	return wrap(x.d.SetBuckets(pool, first, backends))
}

// DeleteBucket implements dataplane.Dataplane.
func (x *Dataplane) DeleteBucket(pool, bucket uint16) error {
	return wrap(x.d.DeleteBucket(pool, bucket))
}

// SetBackendEntry implements dataplane.Dataplane.
func (x *Dataplane) SetBackendEntry(id uint16, b model.Backend) error {
	return wrap(x.d.SetBackendEntry(id, b))
}

// DeleteBackendEntry implements dataplane.Dataplane.
func (x *Dataplane) DeleteBackendEntry(id uint16) error { return wrap(x.d.DeleteBackendEntry(id)) }

// SetVLANAccept implements dataplane.Dataplane.
func (x *Dataplane) SetVLANAccept(port, vid uint16) error { return wrap(x.d.SetVLANAccept(port, vid)) }

// DeleteVLANAccept implements dataplane.Dataplane.
func (x *Dataplane) DeleteVLANAccept(port, vid uint16) error {
	return wrap(x.d.DeleteVLANAccept(port, vid))
}

// SetPortVLAN implements dataplane.Dataplane.
func (x *Dataplane) SetPortVLAN(port, vid uint16) error { return wrap(x.d.SetPortVLAN(port, vid)) }

// DeletePortVLAN implements dataplane.Dataplane.
func (x *Dataplane) DeletePortVLAN(port uint16) error { return wrap(x.d.DeletePortVLAN(port)) }

// DropCounters implements dataplane.Dataplane.
func (x *Dataplane) DropCounters() ([pipeline.NumReasons]dataplane.Counter, error) {
	cs, err := x.d.DropCounters()
	return cs, wrap(err)
}

// VIPCounter implements dataplane.Dataplane.
func (x *Dataplane) VIPCounter(a uint32) (dataplane.Counter, error) {
	c, err := x.d.VIPCounter(addr(a))
	return c, wrap(err)
}

// RuleCounter implements dataplane.Dataplane.
func (x *Dataplane) RuleCounter(r model.GrayRule) (dataplane.Counter, error) {
	c, err := x.d.RuleCounter(r)
	return c, wrap(err)
}

// BackendCounter implements dataplane.Dataplane.
func (x *Dataplane) BackendCounter(id uint16) (dataplane.Counter, error) {
	c, err := x.d.BackendCounter(id)
	return c, wrap(err)
}

// VIPCounterV6 implements dataplane.Dataplane.
func (x *Dataplane) VIPCounterV6(a [16]byte) (dataplane.Counter, error) {
	c, err := x.d.VIPCounter(netip.AddrFrom16(a))
	return c, wrap(err)
}

// RuleCounterV6 implements dataplane.Dataplane.
func (x *Dataplane) RuleCounterV6(r model.GrayRuleV6) (dataplane.Counter, error) {
	c, err := x.d.RuleCounterV6(r)
	return c, wrap(err)
}

// SetVIPCounterV6 implements dataplane.CounterWriter.
func (x *Dataplane) SetVIPCounterV6(a [16]byte, c dataplane.Counter) error {
	return wrap(x.d.SetVIPCounter(netip.AddrFrom16(a), c))
}

// SetRuleCounterV6 implements dataplane.CounterWriter.
func (x *Dataplane) SetRuleCounterV6(r model.GrayRuleV6, c dataplane.Counter) error {
	return wrap(x.d.SetRuleCounterV6(r, c))
}

// SetDropCounter implements dataplane.CounterWriter.
func (x *Dataplane) SetDropCounter(r pipeline.Reason, c dataplane.Counter) error {
	return wrap(x.d.SetDropCounter(r, c))
}

// SetVIPCounter implements dataplane.CounterWriter.
func (x *Dataplane) SetVIPCounter(a uint32, c dataplane.Counter) error {
	return wrap(x.d.SetVIPCounter(addr(a), c))
}

// SetRuleCounter implements dataplane.CounterWriter.
func (x *Dataplane) SetRuleCounter(r model.GrayRule, c dataplane.Counter) error {
	return wrap(x.d.SetRuleCounter(r, c))
}

// SetBackendCounter implements dataplane.CounterWriter.
func (x *Dataplane) SetBackendCounter(id uint16, c dataplane.Counter) error {
	return wrap(x.d.SetBackendCounter(id, c))
}

// List implements dataplane.Lister: every table; backend_select for every
// pool that owns buckets (any pool id, at most bpf.MaxPools of them).
func (x *Dataplane) List() (dataplane.Listing, error) {
	st := model.NewState()
	vips, err := x.d.VIPs()
	if err != nil {
		return dataplane.Listing{}, err
	}
	for a, v := range vips {
		if a.Is4() {
			st.VIPs[num(a)] = v
		} else {
			st.VIPsV6[a.As16()] = v
		}
	}
	if st.Tenants, err = x.d.Tenants(); err != nil {
		return dataplane.Listing{}, err
	}
	st.GrayRules = append(st.GrayRules, x.d.Rules()...)
	st.GrayRulesV6 = append(st.GrayRulesV6, x.d.RulesV6()...)
	if st.PoolHash, err = x.d.PoolHashes(); err != nil {
		return dataplane.Listing{}, err
	}
	for _, pool := range x.d.Pools() {
		ids, ok, err := x.d.Buckets(pool)
		if err != nil {
			return dataplane.Listing{}, err
		}
		for b, id := range ids {
			if ok[b] {
				st.BackendSelect[model.SelectKey{Pool: pool, Bucket: uint16(b)}] = id
			}
		}
	}
	bes, err := x.d.Backends()
	if err != nil {
		return dataplane.Listing{}, err
	}
	maps.Copy(st.Backends, bes)
	accepts, err := x.d.VLANAccepts()
	if err != nil {
		return dataplane.Listing{}, err
	}
	for port, vids := range accepts {
		for _, vid := range vids {
			st.VLANAccept[model.PortVID{Port: port, VID: vid}] = true
		}
	}
	if st.PortVLAN, err = x.d.PortVLANs(); err != nil {
		return dataplane.Listing{}, err
	}
	return dataplane.Listing{State: st, Complete: dataplane.AllTables}, nil
}
