package difftest

import (
	"fmt"
	"maps"
	"slices"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Entries returns the table entries that hold s, in the target-neutral form
// of package compile (the inverse of compile.ToModel), gray rules in s's
// order and every other table sorted by key, so the same state gives the same
// list.
func Entries(s *model.State) []compile.Entry {
	var out []compile.Entry
	for _, a := range slices.Sorted(maps.Keys(s.VIPs)) {
		v := s.VIPs[a]
		out = append(out, compile.Entry{Table: pipeline.TableVIP, Match: []compile.Match{exact("dst_addr", 32, uint64(a))},
			Action: pipeline.ActionSetVIP, Params: []compile.Param{param("vip_id", 16, uint64(v.ID)), param("default_pool", 16, uint64(v.DefaultPool))}})
	}
	for _, vni := range slices.Sorted(maps.Keys(s.Tenants)) {
		out = append(out, compile.Entry{Table: pipeline.TableVNITenant, Match: []compile.Match{exact("vni", pipeline.VNIBits, uint64(vni))},
			Action: pipeline.ActionSetTenant, Params: []compile.Param{param("tenant_id", 16, uint64(s.Tenants[vni]))}})
	}
	for _, r := range s.GrayRules {
		e := compile.Entry{Table: pipeline.TableGrayRules, Priority: r.Priority}
		tern := func(name string, bits int, v, m uint64) {
			if m != 0 { // a wildcard field is left out (P4Runtime §9.1.1)
				e.Match = append(e.Match, compile.Match{Field: name, Kind: compile.Ternary, Bits: bits,
					Value: be(v&m, bits), Mask: be(m, bits)})
			}
		}
		tern("vip_id", 16, uint64(r.VIPID), uint64(r.VIPMask))
		tern("vni", pipeline.VNIBits, uint64(r.Match.VNI), uint64(r.Mask.VNI))
		tern("tenant_id", 16, uint64(r.Match.Tenant), uint64(r.Mask.Tenant))
		tern("inner_src", 32, uint64(r.Match.Src), uint64(r.Mask.Src))
		tern("inner_dst", 32, uint64(r.Match.Dst), uint64(r.Mask.Dst))
		tern("inner_proto", 8, uint64(r.Match.Proto), uint64(r.Mask.Proto))
		tern("inner_sport", 16, uint64(r.Match.SPort), uint64(r.Mask.SPort))
		tern("inner_dport", 16, uint64(r.Match.DPort), uint64(r.Mask.DPort))
		switch r.Action {
		case model.SplitPool:
			e.Action = pipeline.ActionSplitPool
			e.Params = []compile.Param{param("pool_gray", 16, uint64(r.Pool)), param("threshold", 16, uint64(r.Threshold))}
		default:
			e.Action = pipeline.ActionSetPool
			e.Params = []compile.Param{param("pool_id", 16, uint64(r.Pool))}
		}
		out = append(out, e)
	}
	for _, p := range slices.Sorted(maps.Keys(s.PoolHash)) {
		m := s.PoolHash[p]
		out = append(out, compile.Entry{Table: pipeline.TablePoolHash, Match: []compile.Match{exact("pool_id", 16, uint64(p))},
			Action: pipeline.ActionSetHashMask, Params: []compile.Param{
				param("vni_mask", 24, uint64(m.VNI)), param("tenant_mask", 16, uint64(m.Tenant)),
				param("src_mask", 32, uint64(m.Src)), param("dst_mask", 32, uint64(m.Dst)),
				param("proto_mask", 8, uint64(m.Proto)), param("sport_mask", 16, uint64(m.SPort)),
				param("dport_mask", 16, uint64(m.DPort))}})
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.BackendSelect), func(a, b model.SelectKey) int {
		return int(a.Pool)<<16 + int(a.Bucket) - (int(b.Pool)<<16 + int(b.Bucket))
	}) {
		out = append(out, compile.Entry{Table: pipeline.TableBackendSelect,
			Match:  []compile.Match{exact("pool_id", 16, uint64(k.Pool)), exact("bucket", 16, uint64(k.Bucket))},
			Action: pipeline.ActionSetBackend, Params: []compile.Param{param("backend_id", 16, uint64(s.BackendSelect[k]))}})
	}
	for _, id := range slices.Sorted(maps.Keys(s.Backends)) {
		b := s.Backends[id]
		out = append(out, compile.Entry{Table: pipeline.TableBackend, Match: []compile.Match{exact("backend_id", 16, uint64(id))},
			Action: pipeline.ActionToBackend, Params: []compile.Param{
				param("port", pipeline.PortIDBits, uint64(b.Port)), param("smac", 48, mac48(b.SMAC)),
				param("dmac", 48, mac48(b.DMAC)), param("underlay_ip", 32, uint64(b.UnderlayIP))}})
	}
	return out
}

// CounterKey names a cell of a direct counter: the Key of its table entry.
type CounterKey = string

// Counts are the counter cells a set of frames moves: drop_reasons by reason,
// and the direct counters of vip, gray_rules and backend by entry key. Only
// cells that moved are present.
type Counts struct {
	Drops  map[pipeline.Reason]Cell
	Direct map[CounterKey]Cell
}

// Cell is one counter cell.
type Cell struct{ Packets, Bytes uint64 }

// NewCounts returns empty Counts.
func NewCounts() Counts {
	return Counts{Drops: map[pipeline.Reason]Cell{}, Direct: map[CounterKey]Cell{}}
}

func (c Counts) add(m map[CounterKey]Cell, k CounterKey, n int) {
	x := m[k]
	x.Packets++
	x.Bytes += uint64(n)
	m[k] = x
}

// Keys names the direct counter cells of a state's entries.
type Keys struct {
	VIP     map[uint32]CounterKey
	Rule    []CounterKey // by index in State.GrayRules
	Backend map[uint16]CounterKey
}

// KeysOf returns the counter keys of s's entries.
func KeysOf(s *model.State) Keys {
	k := Keys{VIP: map[uint32]CounterKey{}, Backend: map[uint16]CounterKey{}}
	one := func(st *model.State) string { return Entries(st)[0].Key() }
	for a, v := range s.VIPs {
		st := model.NewState()
		st.VIPs[a] = v
		k.VIP[a] = one(st)
	}
	for _, r := range s.GrayRules {
		st := model.NewState()
		st.GrayRules = []model.GrayRule{r}
		k.Rule = append(k.Rule, one(st))
	}
	for id, b := range s.Backends {
		st := model.NewState()
		st.Backends[id] = b
		k.Backend[id] = one(st)
	}
	return k
}

// Expect adds to c the counters the model's result r for frame moves: its
// reason in drop_reasons unless None (the not-for-us reasons too), the VIP
// entry hit, the winning gray rule, the backend entry of a forwarded frame.
// Bytes are the frame's length as received.
func (c Counts) Expect(k Keys, frame []byte, r model.Result) {
	if r.Reason != pipeline.None {
		x := c.Drops[r.Reason]
		x.Packets++
		x.Bytes += uint64(len(frame))
		c.Drops[r.Reason] = x
	}
	if r.VIPHit {
		c.add(c.Direct, k.VIP[model.Parse(frame).OuterDst], len(frame))
	}
	if r.Rule >= 0 {
		c.add(c.Direct, k.Rule[r.Rule], len(frame))
	}
	if r.Verdict == model.Forward {
		c.add(c.Direct, k.Backend[r.BackendID], len(frame))
	}
}

// Diff describes how got differs from want, "" when they are equal.
func (c Counts) Diff(want Counts) string {
	var out string
	for r := range pipeline.NumReasons {
		if g, w := c.Drops[pipeline.Reason(r)], want.Drops[pipeline.Reason(r)]; g != w {
			out += fmt.Sprintf("\n  drop_reasons[%s]: got %d packets %d bytes, want %d packets %d bytes", pipeline.Reason(r), g.Packets, g.Bytes, w.Packets, w.Bytes)
		}
	}
	keys := slices.Sorted(maps.Keys(c.Direct))
	for k := range want.Direct {
		if _, ok := c.Direct[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if g, w := c.Direct[k], want.Direct[k]; g != w {
			out += fmt.Sprintf("\n  %s: got %d packets %d bytes, want %d packets %d bytes", k, g.Packets, g.Bytes, w.Packets, w.Bytes)
		}
	}
	return out
}

func exact(field string, bits int, v uint64) compile.Match {
	return compile.Match{Field: field, Kind: compile.Exact, Bits: bits, Value: be(v, bits)}
}

func param(name string, bits int, v uint64) compile.Param {
	return compile.Param{Name: name, Bits: bits, Value: be(v, bits)}
}

// be encodes v big-endian in ceil(bits/8) bytes.
func be(v uint64, bits int) []byte {
	b := make([]byte, (bits+7)/8)
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func mac48(m [6]byte) uint64 {
	var v uint64
	for _, c := range m {
		v = v<<8 | uint64(c)
	}
	return v
}
