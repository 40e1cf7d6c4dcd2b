package compile

import (
	"errors"
	"fmt"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// ErrEntry: an entry that does not fit the pipeline contract (unknown table,
// action or field, wrong width). Compile never produces one; ToModel checks
// entries from any source.
var ErrEntry = errors.New("compile: malformed entry")

// ToModel loads entries into a reference-model State (package model), so that
// packets can be run through model.Process over exactly what a gateway would hold.
// GrayRules keep the order of the gray_rules entries in entries.
func ToModel(entries []Entry) (*model.State, error) {
	s := model.NewState()
	seen := map[string]bool{}
	for i := range entries {
		k := entries[i].Key()
		if seen[k] {
			return nil, fmt.Errorf("%w: entry %d (%s): duplicate key", ErrEntry, i, k)
		}
		seen[k] = true
		if err := addToModel(s, &entries[i]); err != nil {
			return nil, fmt.Errorf("%w: entry %d (%s): %w", ErrEntry, i, entries[i].Key(), err)
		}
	}
	return s, nil
}

// fields reads an entry's match fields and params by name, checking widths.
type fields struct {
	e   *Entry
	err error
}

func (f *fields) exact(name string, bits int) uint64 {
	m, ok := f.e.Field(name)
	switch {
	case !ok:
		f.fail("missing match field %s", name)
	case m.Kind != Exact || len(m.Value) != (bits+7)/8:
		f.fail("match field %s: want exact %d bits", name, bits)
	}
	return Uint(m.Value)
}

func (f *fields) ternary(name string, bits int) (v, mask uint64) {
	m, ok := f.e.Field(name)
	if !ok {
		return 0, 0 // wildcard
	}
	if m.Kind != Ternary || len(m.Value) != (bits+7)/8 || len(m.Mask) != len(m.Value) {
		f.fail("match field %s: want ternary %d bits", name, bits)
	}
	return Uint(m.Value), Uint(m.Mask)
}

func (f *fields) param(name string, bits int) uint64 {
	p, ok := f.e.Param(name)
	switch {
	case !ok:
		f.fail("missing parameter %s", name)
	case len(p.Value) != (bits+7)/8 || Uint(p.Value)>>bits != 0:
		f.fail("parameter %s: want %d bits", name, bits)
	}
	return Uint(p.Value)
}

func (f *fields) fail(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf(format, args...)
	}
}

func (f *fields) action(want ...string) {
	for _, w := range want {
		if f.e.Action == w {
			return
		}
	}
	f.fail("action %s not allowed in %s", f.e.Action, f.e.Table)
}

func addToModel(s *model.State, e *Entry) error {
	f := &fields{e: e}
	switch e.Table {
	case pipeline.TableVIP:
		f.action(pipeline.ActionSetVIP)
		s.VIPs[uint32(f.exact("dst_addr", 32))] = model.VIP{
			ID: uint16(f.param("vip_id", 16)), DefaultPool: uint16(f.param("default_pool", 16)),
		}
	case pipeline.TableVNITenant:
		f.action(pipeline.ActionSetTenant)
		s.Tenants[uint32(f.exact("vni", pipeline.VNIBits))] = uint16(f.param("tenant_id", 16))
	case pipeline.TableGrayRules:
		f.action(pipeline.ActionSetPool, pipeline.ActionSplitPool)
		r := model.GrayRule{Priority: e.Priority}
		vip, vipMask := f.ternary("vip_id", 16)
		r.VIPID, r.VIPMask = uint16(vip), uint16(vipMask)
		get := func(name string, bits int, val, mask *uint64) { *val, *mask = f.ternary(name, bits) }
		var vals, masks [7]uint64
		get("vni", pipeline.VNIBits, &vals[0], &masks[0])
		get("tenant_id", 16, &vals[1], &masks[1])
		get("inner_src", 32, &vals[2], &masks[2])
		get("inner_dst", 32, &vals[3], &masks[3])
		get("inner_proto", 8, &vals[4], &masks[4])
		get("inner_sport", 16, &vals[5], &masks[5])
		get("inner_dport", 16, &vals[6], &masks[6])
		key := func(v [7]uint64) pipeline.FlowKey {
			return pipeline.FlowKey{VNI: uint32(v[0]), Tenant: uint16(v[1]), Src: uint32(v[2]), Dst: uint32(v[3]),
				Proto: uint8(v[4]), SPort: uint16(v[5]), DPort: uint16(v[6])}
		}
		r.Match, r.Mask = key(vals), key(masks)
		if e.Priority <= 0 {
			f.fail("gray_rules needs a positive priority")
		}
		if e.Action == pipeline.ActionSplitPool {
			r.Action, r.Pool, r.Threshold = model.SplitPool, uint16(f.param("pool_gray", 16)), uint16(f.param("threshold", 16))
		} else {
			r.Action, r.Pool = model.SetPool, uint16(f.param("pool_id", 16))
		}
		s.GrayRules = append(s.GrayRules, r)
	case pipeline.TablePoolHash:
		f.action(pipeline.ActionSetHashMask)
		s.PoolHash[uint16(f.exact("pool_id", 16))] = pipeline.FlowKey{
			VNI: uint32(f.param("vni_mask", 24)), Tenant: uint16(f.param("tenant_mask", 16)),
			Src: uint32(f.param("src_mask", 32)), Dst: uint32(f.param("dst_mask", 32)),
			Proto: uint8(f.param("proto_mask", 8)), SPort: uint16(f.param("sport_mask", 16)),
			DPort: uint16(f.param("dport_mask", 16)),
		}
	case pipeline.TableBackendSelect:
		f.action(pipeline.ActionSetBackend)
		k := model.SelectKey{Pool: uint16(f.exact("pool_id", 16)), Bucket: uint16(f.exact("bucket", 16))}
		s.BackendSelect[k] = uint16(f.param("backend_id", 16))
	case pipeline.TableBackend:
		f.action(pipeline.ActionToBackend)
		b := model.Backend{Port: uint16(f.param("port", pipeline.PortIDBits)), UnderlayIP: uint32(f.param("underlay_ip", 32))}
		putMAC(&b.SMAC, f.param("smac", 48))
		putMAC(&b.DMAC, f.param("dmac", 48))
		s.Backends[uint16(f.exact("backend_id", 16))] = b
	default:
		f.fail("unknown table")
	}
	return f.err
}

func putMAC(m *[6]byte, v uint64) {
	for i := 5; i >= 0; i-- {
		m[i] = byte(v)
		v >>= 8
	}
}
