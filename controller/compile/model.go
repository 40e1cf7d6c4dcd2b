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
// GrayRules keep the order of the gray_rules entries in entries, GrayRulesV6
// that of the gray_rules_v6 entries.
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

// FromModel is the inverse of ToModel: the entries that hold exactly s, in
// TableOrder, each table's entries sorted by key but the gray rules (of
// either table), which keep their order in s (so ToModel(FromModel(s)) is s).
// A gray rule's values are masked (P4Runtime wants value&mask == value) and
// its wildcard fields left out.
func FromModel(s *model.State) []Entry {
	var ports, backends, hashes, selects, tenants, vips, vips6, rules, rules6 []Entry
	for port, vid := range s.PortVLAN {
		ports = append(ports, Entry{Table: pipeline.TablePortVLAN, Match: []Match{exact(pipeline.MatchEgressPort, uint64(port))},
			Action: pipeline.ActionSetPortVLAN, Params: []Param{param(pipeline.ParamVID, uint64(vid))}})
	}
	for k, on := range s.VLANAccept {
		if on {
			ports = append(ports, Entry{Table: pipeline.TableVLANAccept, Action: pipeline.ActionAcceptVLAN,
				Match: []Match{exact(pipeline.MatchIngressPort, uint64(k.Port)), exact(pipeline.MatchVID, uint64(k.VID))}})
		}
	}
	for id, b := range s.Backends {
		e := Entry{Table: pipeline.TableBackend, Match: []Match{exact(pipeline.MatchBackendID, uint64(id))}}
		e.Action, e.Params = backendAction(b)
		backends = append(backends, e)
	}
	for id, m := range s.PoolHash {
		hashes = append(hashes, Entry{Table: pipeline.TablePoolHash, Match: []Match{exact(pipeline.MatchPoolID, uint64(id))},
			Action: pipeline.ActionSetHashMask, Params: hashMaskParams(m)})
	}
	for k, id := range s.BackendSelect {
		selects = append(selects, Entry{Table: pipeline.TableBackendSelect,
			Match:  []Match{exact(pipeline.MatchPoolID, uint64(k.Pool)), exact(pipeline.MatchBucket, uint64(k.Bucket))},
			Action: pipeline.ActionSetBackend, Params: []Param{param(pipeline.ParamBackendID, uint64(id))}})
	}
	for vni, id := range s.Tenants {
		tenants = append(tenants, Entry{Table: pipeline.TableVNITenant, Match: []Match{exact(pipeline.MatchVNI, uint64(vni))},
			Action: pipeline.ActionSetTenant, Params: []Param{param(pipeline.ParamTenantID, uint64(id))}})
	}
	for addr, v := range s.VIPs {
		vips = append(vips, Entry{Table: pipeline.TableVIP, Match: []Match{exact(pipeline.MatchDstAddr, uint64(addr))},
			Action: pipeline.ActionSetVIP, Params: []Param{param(pipeline.ParamVIPID, uint64(v.ID)), param(pipeline.ParamDefaultPool, uint64(v.DefaultPool))}})
	}
	for addr, v := range s.VIPsV6 {
		vips6 = append(vips6, Entry{Table: pipeline.TableVIPv6, Match: []Match{exact128(pipeline.MatchDstAddr6, addr)},
			Action: pipeline.ActionSetVIPv6, Params: []Param{param(pipeline.ParamVIPID, uint64(v.ID)), param(pipeline.ParamDefaultPool, uint64(v.DefaultPool))}})
	}
	for _, r := range s.GrayRulesV6 {
		e := Entry{Table: pipeline.TableGrayRulesV6, Priority: r.Priority, Match: ruleMatchV6(r)}
		e.Action, e.Params = ruleAction(true, r.Action == model.SplitPool, r.Pool, r.Threshold)
		rules6 = append(rules6, e)
	}
	for _, r := range s.GrayRules {
		e := Entry{Table: pipeline.TableGrayRules, Priority: r.Priority, Match: ruleMatch(r.VIPID, r.VIPMask, r.Match, r.Mask)}
		e.Action, e.Params = ruleAction(false, r.Action == model.SplitPool, r.Pool, r.Threshold)
		if r.Action == model.SetPoolMirror {
			e.Action, e.Params = mirrorAction(r.Pool, r.MirrorPool, r.Sample, r.MirrorID)
		}
		rules = append(rules, e)
	}
	out := make([]Entry, 0, len(ports)+len(backends)+len(hashes)+len(selects)+len(tenants)+len(vips)+len(vips6)+len(rules)+len(rules6))
	for _, t := range [][]Entry{ports, backends, hashes, selects, tenants, vips, vips6} {
		sortEntries(t)
		out = append(out, t...)
	}
	out = append(out, rules...)
	return append(out, rules6...)
}

// ruleMatchV6 is a gray_rules_v6 entry's key, wildcard fields left out.
func ruleMatchV6(r model.GrayRuleV6) []Match {
	var out []Match
	add := func(f pipeline.Field, v, m uint64) {
		if m != 0 {
			out = append(out, ternary(f, v, m))
		}
	}
	add128 := func(f pipeline.Field, v, m [16]byte) {
		if m != ([16]byte{}) {
			out = append(out, ternary128(f, v, m))
		}
	}
	add(pipeline.MatchVIPID, uint64(r.VIPID), uint64(r.VIPMask))
	add(pipeline.MatchVNI, uint64(r.Match.VNI), uint64(r.Mask.VNI))
	add(pipeline.MatchTenantID, uint64(r.Match.Tenant), uint64(r.Mask.Tenant))
	add128(pipeline.MatchInnerSrc6, r.Match.Src, r.Mask.Src)
	add128(pipeline.MatchInnerDst6, r.Match.Dst, r.Mask.Dst)
	add(pipeline.MatchInnerProto, uint64(r.Match.Proto), uint64(r.Mask.Proto))
	add(pipeline.MatchInnerSPort, uint64(r.Match.SPort), uint64(r.Mask.SPort))
	add(pipeline.MatchInnerDPort, uint64(r.Match.DPort), uint64(r.Mask.DPort))
	return out
}

// fields reads an entry's match fields and params by name, checking widths.
type fields struct {
	e   *Entry
	err error
}

func (f *fields) exact(fd pipeline.Field) uint64 {
	m, ok := f.e.Field(fd.Name)
	switch {
	case !ok:
		f.fail("missing match field %s", fd.Name)
	case m.Kind != Exact || len(m.Value) != fd.Bytes():
		f.fail("match field %s: want exact %d bits", fd.Name, fd.Bits)
	}
	return Uint(m.Value)
}

func (f *fields) ternary(fd pipeline.Field) (v, mask uint64) {
	m, ok := f.e.Field(fd.Name)
	if !ok {
		return 0, 0 // wildcard
	}
	if m.Kind != Ternary || len(m.Value) != fd.Bytes() || len(m.Mask) != len(m.Value) {
		f.fail("match field %s: want ternary %d bits", fd.Name, fd.Bits)
	}
	return Uint(m.Value), Uint(m.Mask)
}

func (f *fields) param(fd pipeline.Field) uint64 {
	p, ok := f.e.Param(fd.Name)
	switch {
	case !ok:
		f.fail("missing parameter %s", fd.Name)
	case len(p.Value) != fd.Bytes() || Uint(p.Value)>>fd.Bits != 0:
		f.fail("parameter %s: want %d bits", fd.Name, fd.Bits)
	}
	return Uint(p.Value)
}

// exact128, ternary128 and param128 read a 128-bit field (an IPv6 address).
func (f *fields) exact128(fd pipeline.Field) (v [16]byte) {
	m, ok := f.e.Field(fd.Name)
	switch {
	case !ok:
		f.fail("missing match field %s", fd.Name)
	case m.Kind != Exact || len(m.Value) != 16 || fd.Bits != 128:
		f.fail("match field %s: want exact 128 bits", fd.Name)
	default:
		copy(v[:], m.Value)
	}
	return v
}

func (f *fields) ternary128(fd pipeline.Field) (v, mask [16]byte) {
	m, ok := f.e.Field(fd.Name)
	if !ok {
		return v, mask // wildcard
	}
	if m.Kind != Ternary || len(m.Value) != 16 || len(m.Mask) != 16 || fd.Bits != 128 {
		f.fail("match field %s: want ternary 128 bits", fd.Name)
		return v, mask
	}
	copy(v[:], m.Value)
	copy(mask[:], m.Mask)
	return v, mask
}

func (f *fields) param128(fd pipeline.Field) (v [16]byte) {
	p, ok := f.e.Param(fd.Name)
	switch {
	case !ok:
		f.fail("missing parameter %s", fd.Name)
	case len(p.Value) != 16 || fd.Bits != 128:
		f.fail("parameter %s: want 128 bits", fd.Name)
	default:
		copy(v[:], p.Value)
	}
	return v
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
		s.VIPs[uint32(f.exact(pipeline.MatchDstAddr))] = model.VIP{
			ID: uint16(f.param(pipeline.ParamVIPID)), DefaultPool: uint16(f.param(pipeline.ParamDefaultPool)),
		}
	case pipeline.TableVIPv6:
		f.action(pipeline.ActionSetVIPv6)
		s.VIPsV6[f.exact128(pipeline.MatchDstAddr6)] = model.VIP{
			ID: uint16(f.param(pipeline.ParamVIPID)), DefaultPool: uint16(f.param(pipeline.ParamDefaultPool)),
		}
	case pipeline.TableGrayRulesV6:
		f.action(pipeline.ActionSetPoolV6, pipeline.ActionSplitPoolV6)
		r := model.GrayRuleV6{Priority: e.Priority}
		v, m := f.ternary(pipeline.MatchVIPID)
		r.VIPID, r.VIPMask = uint16(v), uint16(m)
		v, m = f.ternary(pipeline.MatchVNI)
		r.Match.VNI, r.Mask.VNI = uint32(v), uint32(m)
		v, m = f.ternary(pipeline.MatchTenantID)
		r.Match.Tenant, r.Mask.Tenant = uint16(v), uint16(m)
		r.Match.Src, r.Mask.Src = f.ternary128(pipeline.MatchInnerSrc6)
		r.Match.Dst, r.Mask.Dst = f.ternary128(pipeline.MatchInnerDst6)
		v, m = f.ternary(pipeline.MatchInnerProto)
		r.Match.Proto, r.Mask.Proto = uint8(v), uint8(m)
		v, m = f.ternary(pipeline.MatchInnerSPort)
		r.Match.SPort, r.Mask.SPort = uint16(v), uint16(m)
		v, m = f.ternary(pipeline.MatchInnerDPort)
		r.Match.DPort, r.Mask.DPort = uint16(v), uint16(m)
		if e.Priority <= 0 {
			f.fail("gray_rules_v6 needs a positive priority")
		}
		if e.Action == pipeline.ActionSplitPoolV6 {
			r.Action, r.Pool, r.Threshold = model.SplitPool, uint16(f.param(pipeline.ParamPoolGray)), uint16(f.param(pipeline.ParamThreshold))
		} else {
			r.Action, r.Pool = model.SetPool, uint16(f.param(pipeline.ParamPoolID))
		}
		s.GrayRulesV6 = append(s.GrayRulesV6, r)
	case pipeline.TableVNITenant:
		f.action(pipeline.ActionSetTenant)
		s.Tenants[uint32(f.exact(pipeline.MatchVNI))] = uint16(f.param(pipeline.ParamTenantID))
	case pipeline.TableGrayRules:
		f.action(pipeline.ActionSetPool, pipeline.ActionSplitPool, pipeline.ActionSetPoolMirror)
		r := model.GrayRule{Priority: e.Priority}
		vip, vipMask := f.ternary(pipeline.MatchVIPID)
		r.VIPID, r.VIPMask = uint16(vip), uint16(vipMask)
		var vals, masks [7]uint64
		for i, fd := range pipeline.GrayRulesMatch[1:] {
			vals[i], masks[i] = f.ternary(fd)
		}
		key := func(v [7]uint64) pipeline.FlowKey {
			return pipeline.FlowKey{VNI: uint32(v[0]), Tenant: uint16(v[1]), Src: uint32(v[2]), Dst: uint32(v[3]),
				Proto: uint8(v[4]), SPort: uint16(v[5]), DPort: uint16(v[6])}
		}
		r.Match, r.Mask = key(vals), key(masks)
		if e.Priority <= 0 {
			f.fail("gray_rules needs a positive priority")
		}
		switch e.Action {
		case pipeline.ActionSplitPool:
			r.Action, r.Pool, r.Threshold = model.SplitPool, uint16(f.param(pipeline.ParamPoolGray)), uint16(f.param(pipeline.ParamThreshold))
		case pipeline.ActionSetPoolMirror:
			r.Action, r.Pool = model.SetPoolMirror, uint16(f.param(pipeline.ParamPoolID))
			r.MirrorPool, r.Sample, r.MirrorID = uint16(f.param(pipeline.ParamMirrorPool)), uint16(f.param(pipeline.ParamSample)),
				uint16(f.param(pipeline.ParamMirrorID))
		default:
			r.Action, r.Pool = model.SetPool, uint16(f.param(pipeline.ParamPoolID))
		}
		s.GrayRules = append(s.GrayRules, r)
	case pipeline.TablePoolHash:
		f.action(pipeline.ActionSetHashMask)
		s.PoolHash[uint16(f.exact(pipeline.MatchPoolID))] = pipeline.FlowKey{
			VNI: uint32(f.param(pipeline.ParamVNIMask)), Tenant: uint16(f.param(pipeline.ParamTenantMask)),
			Src: uint32(f.param(pipeline.ParamSrcMask)), Dst: uint32(f.param(pipeline.ParamDstMask)),
			Proto: uint8(f.param(pipeline.ParamProtoMask)), SPort: uint16(f.param(pipeline.ParamSPortMask)),
			DPort: uint16(f.param(pipeline.ParamDPortMask)),
		}
	case pipeline.TableBackendSelect:
		f.action(pipeline.ActionSetBackend)
		k := model.SelectKey{Pool: uint16(f.exact(pipeline.MatchPoolID)), Bucket: uint16(f.exact(pipeline.MatchBucket))}
		s.BackendSelect[k] = uint16(f.param(pipeline.ParamBackendID))
	case pipeline.TableBackend:
		f.action(pipeline.ActionToBackend, pipeline.ActionToBackendV6)
		b := model.Backend{Port: uint16(f.param(pipeline.ParamPort))}
		if e.Action == pipeline.ActionToBackendV6 {
			b.IPv6, b.UnderlayIPv6 = true, f.param128(pipeline.ParamUnderlayIP6)
		} else {
			b.UnderlayIP = uint32(f.param(pipeline.ParamUnderlayIP))
		}
		putMAC(&b.SMAC, f.param(pipeline.ParamSMAC))
		putMAC(&b.DMAC, f.param(pipeline.ParamDMAC))
		s.Backends[uint16(f.exact(pipeline.MatchBackendID))] = b
	case pipeline.TableVLANAccept:
		f.action(pipeline.ActionAcceptVLAN)
		s.VLANAccept[model.PortVID{Port: uint16(f.exact(pipeline.MatchIngressPort)), VID: uint16(f.exact(pipeline.MatchVID))}] = true
	case pipeline.TablePortVLAN:
		f.action(pipeline.ActionSetPortVLAN)
		s.PortVLAN[uint16(f.exact(pipeline.MatchEgressPort))] = uint16(f.param(pipeline.ParamVID))
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
