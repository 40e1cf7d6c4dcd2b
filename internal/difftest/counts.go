package difftest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// CounterKey names a cell of a direct counter: the Key of its table entry.
type CounterKey = string

// Counts are the counter cells a set of frames moves: drop_reasons by reason,
// the direct counters of vip, gray_rules and backend by entry key, and the
// mirror's mirror_counter by mirror id and mirror_backend_counter by backend
// id (docs/pipeline.md §10). Only cells that moved are present.
type Counts struct {
	Drops         map[pipeline.Reason]Cell
	Direct        map[CounterKey]Cell
	Mirror        map[uint16]Cell
	MirrorBackend map[uint16]Cell
}

// Cell is one counter cell.
type Cell struct{ Packets, Bytes uint64 }

// NewCounts returns empty Counts.
func NewCounts() Counts {
	return Counts{Drops: map[pipeline.Reason]Cell{}, Direct: map[CounterKey]Cell{},
		Mirror: map[uint16]Cell{}, MirrorBackend: map[uint16]Cell{}}
}

func add[K comparable](m map[K]Cell, k K, n int) {
	x := m[k]
	x.Packets++
	x.Bytes += uint64(n)
	m[k] = x
}

// Keys names the direct counter cells of a state's entries, and the mirror
// ids its rules use.
type Keys struct {
	VIP       map[uint32]CounterKey
	VIP6      map[[16]byte]CounterKey // vip_v6
	Rule      []CounterKey            // by index in State.GrayRules
	RuleV6    []CounterKey            // by index in State.GrayRulesV6
	Backend   map[uint16]CounterKey
	MirrorIDs []uint16
}

// KeysOf returns the counter keys of s's entries.
func KeysOf(s *model.State) Keys {
	k := Keys{VIP: map[uint32]CounterKey{}, VIP6: map[[16]byte]CounterKey{}, Backend: map[uint16]CounterKey{}}
	one := func(st *model.State) string { return compile.FromModel(st)[0].Key() }
	for a, v := range s.VIPs {
		st := model.NewState()
		st.VIPs[a] = v
		k.VIP[a] = one(st)
	}
	for a, v := range s.VIPsV6 {
		st := model.NewState()
		st.VIPsV6[a] = v
		k.VIP6[a] = one(st)
	}
	for _, r := range s.GrayRulesV6 {
		st := model.NewState()
		st.GrayRulesV6 = []model.GrayRuleV6{r}
		k.RuleV6 = append(k.RuleV6, one(st))
	}
	for _, r := range s.GrayRules {
		st := model.NewState()
		st.GrayRules = []model.GrayRule{r}
		k.Rule = append(k.Rule, one(st))
		if r.Action == model.SetPoolMirror && !slices.Contains(k.MirrorIDs, r.MirrorID) {
			k.MirrorIDs = append(k.MirrorIDs, r.MirrorID)
		}
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
// entry hit (vip or vip_v6), the winning gray rule (gray_rules or
// gray_rules_v6), the backend entry of a forwarded frame or of a
// BACKEND_FAMILY drop (the entry was hit, docs/pipeline.md §9);
// for a mirror copy, its mirror id, and when sent its backend in
// mirror_backend_counter and in the backend's direct counter (also when it
// hit a backend entry of the other family and was not sent). Bytes are the
// frame's length as received.
func (c Counts) Expect(k Keys, frame []byte, r model.Result) {
	if r.Reason != pipeline.None {
		x := c.Drops[r.Reason]
		x.Packets++
		x.Bytes += uint64(len(frame))
		c.Drops[r.Reason] = x
	}
	if p := model.Parse(frame); r.VIPHit && p.Outer6 {
		add(c.Direct, k.VIP6[p.OuterDst6], len(frame))
	} else if r.VIPHit {
		add(c.Direct, k.VIP[p.OuterDst], len(frame))
	}
	if r.Rule >= 0 {
		add(c.Direct, k.Rule[r.Rule], len(frame))
	}
	if r.RuleV6 >= 0 {
		add(c.Direct, k.RuleV6[r.RuleV6], len(frame))
	}
	if r.Verdict == model.Forward || r.Reason == pipeline.BackendFamily {
		add(c.Direct, k.Backend[r.BackendID], len(frame))
	}
	if cp := r.Copy; cp != nil {
		add(c.Mirror, cp.MirrorID, len(frame))
		if cp.Sent {
			add(c.MirrorBackend, cp.BackendID, len(frame))
		}
		if cp.Sent || cp.BackendFamily { // the copy hit the backend entry
			add(c.Direct, k.Backend[cp.BackendID], len(frame))
		}
	}
}

// Diff describes how got differs from want, "" when they are equal.
func (c Counts) Diff(want Counts) string {
	return diffCells(c.Drops, want.Drops, func(r pipeline.Reason) string { return fmt.Sprintf("drop_reasons[%s]", r) }) +
		diffCells(c.Direct, want.Direct, func(k CounterKey) string { return k }) +
		diffCells(c.Mirror, want.Mirror, func(id uint16) string { return fmt.Sprintf("mirror_counter[%d]", id) }) +
		diffCells(c.MirrorBackend, want.MirrorBackend, func(id uint16) string { return fmt.Sprintf("mirror_backend_counter[%d]", id) })
}

// diffCells describes the cells of one counter that differ between got and
// want, a line each in the order of their keys, name spelling a key.
func diffCells[K cmp.Ordered](got, want map[K]Cell, name func(K) string) string {
	keys := slices.Collect(maps.Keys(got))
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out string
	for _, k := range keys {
		if g, w := got[k], want[k]; g != w {
			out += fmt.Sprintf("\n  %s: got %d packets %d bytes, want %d packets %d bytes", name(k), g.Packets, g.Bytes, w.Packets, w.Bytes)
		}
	}
	return out
}
