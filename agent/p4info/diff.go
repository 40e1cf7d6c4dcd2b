package p4info

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Diff compares two P4Infos semantically and returns one line per difference (nil
// when they describe the same pipeline). Semantically means: the order of repeated
// entities, documentation, annotations, source locations and pkg_info are ignored;
// ids, names, bitwidths, match kinds, action refs and scopes, const default actions,
// sizes, counters and every other entity kind are compared. Text and binary
// encodings of the same P4Info are therefore equal.
func Diff(want, got *p4configv1.P4Info) []string {
	w, g := normalize(want), normalize(got)
	var d []string
	diffTables(&d, w.GetTables(), g.GetTables())
	diffEntities(&d, "action", w.GetActions(), g.GetActions(), (*p4configv1.Action).GetPreamble)
	diffEntities(&d, "counter", w.GetCounters(), g.GetCounters(), (*p4configv1.Counter).GetPreamble)
	diffEntities(&d, "direct counter", w.GetDirectCounters(), g.GetDirectCounters(), (*p4configv1.DirectCounter).GetPreamble)
	diffEntities(&d, "action profile", w.GetActionProfiles(), g.GetActionProfiles(), (*p4configv1.ActionProfile).GetPreamble)
	diffEntities(&d, "meter", w.GetMeters(), g.GetMeters(), (*p4configv1.Meter).GetPreamble)
	diffEntities(&d, "direct meter", w.GetDirectMeters(), g.GetDirectMeters(), (*p4configv1.DirectMeter).GetPreamble)
	diffEntities(&d, "controller packet metadata", w.GetControllerPacketMetadata(), g.GetControllerPacketMetadata(), (*p4configv1.ControllerPacketMetadata).GetPreamble)
	diffEntities(&d, "value set", w.GetValueSets(), g.GetValueSets(), (*p4configv1.ValueSet).GetPreamble)
	diffEntities(&d, "register", w.GetRegisters(), g.GetRegisters(), (*p4configv1.Register).GetPreamble)
	diffEntities(&d, "digest", w.GetDigests(), g.GetDigests(), (*p4configv1.Digest).GetPreamble)
	if len(d) == 0 {
		// Anything not covered above (externs, type info).
		w.Tables, w.Actions, w.Counters, w.DirectCounters, w.ActionProfiles = nil, nil, nil, nil, nil
		w.Meters, w.DirectMeters, w.ControllerPacketMetadata, w.ValueSets, w.Registers, w.Digests = nil, nil, nil, nil, nil, nil
		g.Tables, g.Actions, g.Counters, g.DirectCounters, g.ActionProfiles = nil, nil, nil, nil, nil
		g.Meters, g.DirectMeters, g.ControllerPacketMetadata, g.ValueSets, g.Registers, g.Digests = nil, nil, nil, nil, nil, nil
		if !proto.Equal(w, g) {
			d = append(d, "externs or type_info differ")
		}
	}
	return d
}

// Equal reports whether two P4Infos describe the same pipeline (Diff is empty).
func Equal(a, b *p4configv1.P4Info) bool { return len(Diff(a, b)) == 0 }

func diffTables(d *[]string, want, got []*p4configv1.Table) {
	wm, gm := byPreambleID(want, (*p4configv1.Table).GetPreamble), byPreambleID(got, (*p4configv1.Table).GetPreamble)
	for _, w := range want {
		id := w.GetPreamble().GetId()
		name := w.GetPreamble().GetName()
		g, ok := gm[id]
		if !ok {
			*d = append(*d, fmt.Sprintf("table %s (id %#x) is missing", name, id))
			continue
		}
		if g.GetPreamble().GetName() != name {
			*d = append(*d, fmt.Sprintf("table id %#x is named %q, want %q", id, g.GetPreamble().GetName(), name))
		}
		if w.GetSize() != g.GetSize() {
			*d = append(*d, fmt.Sprintf("table %s: size %d, want %d", name, g.GetSize(), w.GetSize()))
		}
		if !proto.Equal(&p4configv1.Table{MatchFields: w.MatchFields}, &p4configv1.Table{MatchFields: g.MatchFields}) {
			*d = append(*d, fmt.Sprintf("table %s: match fields %s, want %s", name, fieldsString(g), fieldsString(w)))
		}
		if !proto.Equal(&p4configv1.Table{ActionRefs: w.ActionRefs}, &p4configv1.Table{ActionRefs: g.ActionRefs}) {
			*d = append(*d, fmt.Sprintf("table %s: action refs differ", name))
		}
		if w.GetConstDefaultActionId() != g.GetConstDefaultActionId() {
			*d = append(*d, fmt.Sprintf("table %s: const default action %#x, want %#x", name, g.GetConstDefaultActionId(), w.GetConstDefaultActionId()))
		}
		rest := func(t *p4configv1.Table) *p4configv1.Table {
			c := proto.Clone(t).(*p4configv1.Table)
			c.Preamble, c.MatchFields, c.ActionRefs, c.Size, c.ConstDefaultActionId = nil, nil, nil, 0, 0
			return c
		}
		if !proto.Equal(rest(w), rest(g)) {
			*d = append(*d, fmt.Sprintf("table %s: other properties differ (direct resources, implementation, idle timeout, const entries or initial default action)", name))
		}
	}
	for _, g := range got {
		if _, ok := wm[g.GetPreamble().GetId()]; !ok {
			*d = append(*d, fmt.Sprintf("unexpected table %s (id %#x)", g.GetPreamble().GetName(), g.GetPreamble().GetId()))
		}
	}
}

func fieldsString(t *p4configv1.Table) string {
	var parts []string
	for _, f := range t.GetMatchFields() {
		parts = append(parts, fmt.Sprintf("%d:%s/%d/%s", f.GetId(), f.GetName(), f.GetBitwidth(), f.GetMatchType()))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func diffEntities[T proto.Message](d *[]string, kind string, want, got []T, pre func(T) *p4configv1.Preamble) {
	wm, gm := byPreambleID(want, pre), byPreambleID(got, pre)
	for _, w := range want {
		p := pre(w)
		g, ok := gm[p.GetId()]
		switch {
		case !ok:
			*d = append(*d, fmt.Sprintf("%s %s (id %#x) is missing", kind, p.GetName(), p.GetId()))
		case pre(g).GetName() != p.GetName():
			*d = append(*d, fmt.Sprintf("%s id %#x is named %q, want %q", kind, p.GetId(), pre(g).GetName(), p.GetName()))
		case !proto.Equal(w, g):
			*d = append(*d, fmt.Sprintf("%s %s differs", kind, p.GetName()))
		}
	}
	for _, g := range got {
		if _, ok := wm[pre(g).GetId()]; !ok {
			*d = append(*d, fmt.Sprintf("unexpected %s %s (id %#x)", kind, pre(g).GetName(), pre(g).GetId()))
		}
	}
}

func byPreambleID[T any](xs []T, pre func(T) *p4configv1.Preamble) map[uint32]T {
	m := make(map[uint32]T, len(xs))
	for _, x := range xs {
		m[pre(x).GetId()] = x
	}
	return m
}

// normalize returns a copy of p without what carries no semantics (docs,
// annotations, source locations, pkg_info), with nested repeated fields sorted by id.
func normalize(p *p4configv1.P4Info) *p4configv1.P4Info {
	if p == nil {
		return &p4configv1.P4Info{}
	}
	c := proto.Clone(p).(*p4configv1.P4Info)
	c.PkgInfo = nil
	strip(c.ProtoReflect())
	for _, t := range c.Tables {
		slices.SortFunc(t.MatchFields, func(a, b *p4configv1.MatchField) int { return cmp.Compare(a.GetId(), b.GetId()) })
		slices.SortFunc(t.ActionRefs, func(a, b *p4configv1.ActionRef) int { return cmp.Compare(a.GetId(), b.GetId()) })
		slices.Sort(t.DirectResourceIds)
	}
	for _, a := range c.Actions {
		slices.SortFunc(a.Params, func(x, y *p4configv1.Action_Param) int { return cmp.Compare(x.GetId(), y.GetId()) })
	}
	return c
}

// nonSemantic lists the P4Info fields that only document the program.
var nonSemantic = map[string]bool{
	"doc": true, "annotations": true, "annotation_locations": true,
	"structured_annotations": true, "source_location": true,
}

// strip clears the non-semantic fields of m and of every message nested in it.
func strip(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if nonSemantic[string(fd.Name())] {
			m.Clear(fd)
			return true
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				strip(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				strip(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			strip(v.Message())
		}
		return true
	})
}

// Duplicates lists the ids and names a P4Info declares more than once (a table
// given twice, two actions with one id...), nil when there are none. Diff
// compares entities by id and would not see a second copy of one.
func Duplicates(p *p4configv1.P4Info) []string {
	var out []string
	ids := map[uint32]string{}
	names := map[string]bool{}
	add := func(kind string, pre *p4configv1.Preamble) {
		if pre == nil {
			out = append(out, kind+" without a preamble")
			return
		}
		if other, ok := ids[pre.GetId()]; ok {
			out = append(out, fmt.Sprintf("id %#x is both %s and %s %s", pre.GetId(), other, kind, pre.GetName()))
		} else {
			ids[pre.GetId()] = kind + " " + pre.GetName()
		}
		key := kind + " " + pre.GetName()
		if names[key] {
			out = append(out, fmt.Sprintf("%s %s declared twice", kind, pre.GetName()))
		}
		names[key] = true
	}
	for _, x := range p.GetTables() {
		add("table", x.GetPreamble())
	}
	for _, x := range p.GetActions() {
		add("action", x.GetPreamble())
	}
	for _, x := range p.GetActionProfiles() {
		add("action profile", x.GetPreamble())
	}
	for _, x := range p.GetCounters() {
		add("counter", x.GetPreamble())
	}
	for _, x := range p.GetDirectCounters() {
		add("direct counter", x.GetPreamble())
	}
	for _, x := range p.GetMeters() {
		add("meter", x.GetPreamble())
	}
	for _, x := range p.GetDirectMeters() {
		add("direct meter", x.GetPreamble())
	}
	for _, x := range p.GetControllerPacketMetadata() {
		add("controller packet metadata", x.GetPreamble())
	}
	for _, x := range p.GetValueSets() {
		add("value set", x.GetPreamble())
	}
	for _, x := range p.GetRegisters() {
		add("register", x.GetPreamble())
	}
	for _, x := range p.GetDigests() {
		add("digest", x.GetPreamble())
	}
	for _, t := range p.GetTables() {
		seen := map[uint32]bool{}
		for _, f := range t.GetMatchFields() {
			if seen[f.GetId()] {
				out = append(out, fmt.Sprintf("table %s: match field id %d declared twice", t.GetPreamble().GetName(), f.GetId()))
			}
			seen[f.GetId()] = true
		}
	}
	return out
}
