// Package p4info indexes a P4Info message so P4Runtime code resolves tables, match
// fields, actions, parameters and counters by name (or id) together with their
// bitwidths, match kinds and sizes, instead of hard-coding ids. It also holds the
// P4Runtime byte-string codec (spec §8.3 Bytestrings) and a semantic comparison of two P4Infos.
//
// The graygw agent (P4Runtime server) and the controller (P4Runtime client) share
// it; it depends on nothing in graygw.
package p4info

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrNotFound: no entity with that name or id.
	ErrNotFound = errors.New("p4info: not found")
	// ErrInvalid: the P4Info itself is malformed (duplicate or zero id, dangling
	// reference, bad bitwidth...).
	ErrInvalid = errors.New("p4info: invalid P4Info")
)

// MatchField is one field of a table's key.
type MatchField struct {
	ID        uint32
	Name      string
	Bitwidth  int32
	MatchType p4configv1.MatchField_MatchType
}

// ActionRef is an action a table may use, with its scope (TABLE_AND_DEFAULT,
// TABLE_ONLY or DEFAULT_ONLY).
type ActionRef struct {
	ID    uint32
	Scope p4configv1.ActionRef_Scope
}

// Table is an indexed P4Info table.
type Table struct {
	ID    uint32
	Name  string
	Alias string
	// Size is the number of entries the table must hold (P4Info size).
	Size int64
	// Fields are the match fields in key order.
	Fields []*MatchField
	// Actions are the action refs in P4Info order.
	Actions []ActionRef
	// ConstDefaultActionID is non-zero when the default action is const.
	ConstDefaultActionID uint32
	// DirectCounter is the direct counter attached to the table, or nil.
	DirectCounter *DirectCounter
	// IdleTimeout reports whether the table supports idle timeout notifications.
	IdleTimeout bool
	// IsConst reports a table with const entries only.
	IsConst bool
	// ImplementationID is the action profile of an indirect table, 0 for direct.
	ImplementationID uint32

	fields index[*MatchField]
}

// Field returns the match field with the given name.
func (t *Table) Field(name string) (*MatchField, error) {
	return t.fields.named(name, "table "+t.Name, "match field")
}

// FieldByID returns the match field with the given id.
func (t *Table) FieldByID(id uint32) (*MatchField, bool) { return t.fields.withID(id) }

// ActionRef returns the table's reference to action id.
func (t *Table) ActionRef(id uint32) (ActionRef, bool) {
	for _, r := range t.Actions {
		if r.ID == id {
			return r, true
		}
	}
	return ActionRef{}, false
}

// NeedsPriority reports whether entries need a non-zero priority: the key has a
// TERNARY, RANGE or OPTIONAL field (P4Runtime spec §9.1).
func (t *Table) NeedsPriority() bool {
	for _, f := range t.Fields {
		switch f.MatchType {
		case p4configv1.MatchField_TERNARY, p4configv1.MatchField_RANGE, p4configv1.MatchField_OPTIONAL:
			return true
		}
	}
	return false
}

// Param is an action parameter.
type Param struct {
	ID       uint32
	Name     string
	Bitwidth int32
}

// Action is an indexed P4Info action.
type Action struct {
	ID     uint32
	Name   string
	Alias  string
	Params []*Param // in P4Info order

	params index[*Param]
}

// Param returns the parameter with the given name.
func (a *Action) Param(name string) (*Param, error) {
	return a.params.named(name, "action "+a.Name, "parameter")
}

// ParamByID returns the parameter with the given id.
func (a *Action) ParamByID(id uint32) (*Param, bool) { return a.params.withID(id) }

// index is a table's match fields or an action's parameters by id and by
// name, both unique within their table or action.
type index[T any] struct {
	byID   map[uint32]T
	byName map[string]T
}

func newIndex[T any]() index[T] {
	return index[T]{byID: map[uint32]T{}, byName: map[string]T{}}
}

// add indexes v under id and name; false, adding nothing, when either is taken.
func (x index[T]) add(id uint32, name string, v T) bool {
	_, dupID := x.byID[id]
	_, dupName := x.byName[name]
	if dupID || dupName {
		return false
	}
	x.byID[id], x.byName[name] = v, v
	return true
}

func (x index[T]) withID(id uint32) (T, bool) {
	v, ok := x.byID[id]
	return v, ok
}

// named returns the member called name of owner ("table X"), an ErrNotFound
// naming what was looked for otherwise.
func (x index[T]) named(name, owner, kind string) (T, error) {
	if v, ok := x.byName[name]; ok {
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("%w: %s has no %s %q", ErrNotFound, owner, kind, name)
}

// Counter is an indexed (indirect) counter array.
type Counter struct {
	ID   uint32
	Name string
	Unit p4configv1.CounterSpec_Unit
	Size int64
}

// DirectCounter is a counter attached to every entry of one table.
type DirectCounter struct {
	ID      uint32
	Name    string
	Unit    p4configv1.CounterSpec_Unit
	TableID uint32
}

// Info is an indexed P4Info. It is immutable once built and safe for concurrent use.
type Info struct {
	proto *p4configv1.P4Info

	tables         []*Table
	actions        []*Action
	counters       []*Counter
	directCounters []*DirectCounter

	ids   map[uint32]any // every entity by id
	names map[string]any // by "kind/name" and "kind/alias"
}

// Parse decodes a text-format P4Info.
func Parse(text []byte) (*p4configv1.P4Info, error) {
	var p p4configv1.P4Info
	if err := prototext.Unmarshal(text, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &p, nil
}

// Load parses a text-format P4Info and indexes it.
func Load(text []byte) (*Info, error) {
	p, err := Parse(text)
	if err != nil {
		return nil, err
	}
	return New(p)
}

// New indexes p, checking that ids are non-zero and unique, names unique per kind,
// references resolve and bitwidths are positive. p is cloned, so later changes to it
// do not affect the Info.
func New(p *p4configv1.P4Info) (*Info, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil P4Info", ErrInvalid)
	}
	in := &Info{proto: proto.Clone(p).(*p4configv1.P4Info), ids: map[uint32]any{}, names: map[string]any{}}
	p = in.proto
	for _, a := range p.GetActions() {
		act := &Action{params: newIndex[*Param]()}
		if err := in.addPreamble("action", a.GetPreamble(), act, &act.ID, &act.Name, &act.Alias); err != nil {
			return nil, err
		}
		for _, pp := range a.GetParams() {
			prm := &Param{ID: pp.GetId(), Name: pp.GetName(), Bitwidth: pp.GetBitwidth()}
			if prm.ID == 0 || prm.Bitwidth <= 0 || !act.params.add(prm.ID, prm.Name, prm) {
				return nil, fmt.Errorf("%w: action %s: param %q (id %d, bitwidth %d): zero or duplicate id, duplicate name or bad bitwidth",
					ErrInvalid, act.Name, prm.Name, prm.ID, prm.Bitwidth)
			}
			act.Params = append(act.Params, prm)
		}
		in.actions = append(in.actions, act)
	}
	for _, c := range p.GetCounters() {
		ctr := &Counter{Unit: c.GetSpec().GetUnit(), Size: c.GetSize()}
		if err := in.addPreamble("counter", c.GetPreamble(), ctr, &ctr.ID, &ctr.Name, nil); err != nil {
			return nil, err
		}
		if ctr.Size <= 0 {
			return nil, fmt.Errorf("%w: counter %s: size %d", ErrInvalid, ctr.Name, ctr.Size)
		}
		in.counters = append(in.counters, ctr)
	}
	for _, t := range p.GetTables() {
		tbl := &Table{
			Size: t.GetSize(), ConstDefaultActionID: t.GetConstDefaultActionId(),
			IdleTimeout:      t.GetIdleTimeoutBehavior() == p4configv1.Table_NOTIFY_CONTROL,
			IsConst:          t.GetIsConstTable(),
			ImplementationID: t.GetImplementationId(),
			fields:           newIndex[*MatchField](),
		}
		if err := in.addPreamble("table", t.GetPreamble(), tbl, &tbl.ID, &tbl.Name, &tbl.Alias); err != nil {
			return nil, err
		}
		for _, mf := range t.GetMatchFields() {
			f := &MatchField{ID: mf.GetId(), Name: mf.GetName(), Bitwidth: mf.GetBitwidth(), MatchType: mf.GetMatchType()}
			if f.ID == 0 || f.Bitwidth <= 0 || !tbl.fields.add(f.ID, f.Name, f) {
				return nil, fmt.Errorf("%w: table %s: match field %q (id %d, bitwidth %d): zero or duplicate id, duplicate name or bad bitwidth",
					ErrInvalid, tbl.Name, f.Name, f.ID, f.Bitwidth)
			}
			if _, other := mf.GetMatch().(*p4configv1.MatchField_OtherMatchType); other || f.MatchType == p4configv1.MatchField_UNSPECIFIED {
				return nil, fmt.Errorf("%w: table %s: match field %s: unsupported match type", ErrInvalid, tbl.Name, f.Name)
			}
			tbl.Fields = append(tbl.Fields, f)
		}
		for _, ar := range t.GetActionRefs() {
			if _, ok := in.ids[ar.GetId()].(*Action); !ok {
				return nil, fmt.Errorf("%w: table %s refers to unknown action id %d", ErrInvalid, tbl.Name, ar.GetId())
			}
			tbl.Actions = append(tbl.Actions, ActionRef{ID: ar.GetId(), Scope: ar.GetScope()})
		}
		if id := tbl.ConstDefaultActionID; id != 0 {
			if _, ok := tbl.ActionRef(id); !ok {
				return nil, fmt.Errorf("%w: table %s: const default action %d is not one of its actions", ErrInvalid, tbl.Name, id)
			}
		}
		in.tables = append(in.tables, tbl)
	}
	for _, d := range p.GetDirectCounters() {
		dc := &DirectCounter{Unit: d.GetSpec().GetUnit(), TableID: d.GetDirectTableId()}
		if err := in.addPreamble("direct_counter", d.GetPreamble(), dc, &dc.ID, &dc.Name, nil); err != nil {
			return nil, err
		}
		t, ok := in.ids[dc.TableID].(*Table)
		if !ok {
			return nil, fmt.Errorf("%w: direct counter %s: unknown table id %d", ErrInvalid, dc.Name, dc.TableID)
		}
		if t.DirectCounter != nil {
			return nil, fmt.Errorf("%w: table %s has two direct counters", ErrInvalid, t.Name)
		}
		t.DirectCounter = dc
		in.directCounters = append(in.directCounters, dc)
	}
	for _, t := range p.GetTables() {
		for _, id := range t.GetDirectResourceIds() {
			if _, ok := in.ids[id]; !ok {
				return nil, fmt.Errorf("%w: table %s: unknown direct resource id %d", ErrInvalid, t.GetPreamble().GetName(), id)
			}
		}
	}
	slices.SortFunc(in.tables, func(a, b *Table) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(in.actions, func(a, b *Action) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(in.counters, func(a, b *Counter) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(in.directCounters, func(a, b *DirectCounter) int { return cmp.Compare(a.ID, b.ID) })
	return in, nil
}

func (in *Info) addPreamble(kind string, pre *p4configv1.Preamble, ent any, id *uint32, name, alias *string) error {
	*id, *name = pre.GetId(), pre.GetName()
	if alias != nil {
		*alias = pre.GetAlias()
	}
	if *id == 0 || *name == "" {
		return fmt.Errorf("%w: %s %q with id %d: zero id or empty name", ErrInvalid, kind, *name, *id)
	}
	if _, dup := in.ids[*id]; dup {
		return fmt.Errorf("%w: %s %s: id %#x used twice", ErrInvalid, kind, *name, *id)
	}
	if _, dup := in.names[kind+"/"+*name]; dup {
		return fmt.Errorf("%w: %s name %q used twice", ErrInvalid, kind, *name)
	}
	in.ids[*id] = ent
	in.names[kind+"/"+*name] = ent
	if a := pre.GetAlias(); a != "" && a != *name {
		if _, dup := in.names[kind+"/"+a]; !dup {
			in.names[kind+"/"+a] = ent
		}
	}
	return nil
}

// P4Info returns the indexed message. Callers must not modify it.
func (in *Info) P4Info() *p4configv1.P4Info { return in.proto }

// Tables returns every table, by increasing id.
func (in *Info) Tables() []*Table { return in.tables }

// Actions returns every action, by increasing id.
func (in *Info) Actions() []*Action { return in.actions }

// Counters returns every indexed counter, by increasing id.
func (in *Info) Counters() []*Counter { return in.counters }

// DirectCounters returns every direct counter, by increasing id.
func (in *Info) DirectCounters() []*DirectCounter { return in.directCounters }

func lookup[T any](in *Info, kind, name string) (T, error) {
	if v, ok := in.names[kind+"/"+name].(T); ok {
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("%w: no %s named %q", ErrNotFound, kind, name)
}

func byID[T any](in *Info, id uint32) (T, bool) {
	v, ok := in.ids[id].(T)
	return v, ok
}

// Table returns the table with the given fully qualified name or alias.
func (in *Info) Table(name string) (*Table, error) { return lookup[*Table](in, "table", name) }

// TableByID returns the table with the given id.
func (in *Info) TableByID(id uint32) (*Table, bool) { return byID[*Table](in, id) }

// Action returns the action with the given fully qualified name or alias.
func (in *Info) Action(name string) (*Action, error) { return lookup[*Action](in, "action", name) }

// ActionByID returns the action with the given id.
func (in *Info) ActionByID(id uint32) (*Action, bool) { return byID[*Action](in, id) }

// Counter returns the indexed counter with the given name or alias.
func (in *Info) Counter(name string) (*Counter, error) { return lookup[*Counter](in, "counter", name) }

// CounterByID returns the indexed counter with the given id.
func (in *Info) CounterByID(id uint32) (*Counter, bool) { return byID[*Counter](in, id) }

// DirectCounter returns the direct counter with the given name or alias.
func (in *Info) DirectCounter(name string) (*DirectCounter, error) {
	return lookup[*DirectCounter](in, "direct_counter", name)
}

// DirectCounterByID returns the direct counter with the given id.
func (in *Info) DirectCounterByID(id uint32) (*DirectCounter, bool) {
	return byID[*DirectCounter](in, id)
}

// TNAPrefix is the prefix bf-p4c puts before every name of a TNA program's
// P4Info: the Pipeline instance name (docs/p4-targets.md "P4Info names, ids, arch").
const TNAPrefix = "pipe."

// preambles returns the preambles of a P4Info's entities of one kind.
func preambles[E interface{ GetPreamble() *p4configv1.Preamble }](es []E) []*p4configv1.Preamble {
	out := make([]*p4configv1.Preamble, len(es))
	for i, e := range es {
		out[i] = e.GetPreamble()
	}
	return out
}

// TrimNamePrefix returns a copy of p in which every preamble name and alias that
// starts with prefix has it dropped ("pipe.GrayIngress.vip" -> "GrayIngress.vip"),
// so a P4Info compiled by bf-p4c resolves under the names of the v1model one.
// Ids, sizes and everything else are kept. p itself is not changed. The agent does
// not use it: it serves only the project's P4Info, names included.
func TrimNamePrefix(p *p4configv1.P4Info, prefix string) *p4configv1.P4Info {
	if p == nil {
		return nil
	}
	out := proto.Clone(p).(*p4configv1.P4Info)
	for _, pre := range slices.Concat(
		preambles(out.GetTables()), preambles(out.GetActions()), preambles(out.GetActionProfiles()),
		preambles(out.GetCounters()), preambles(out.GetDirectCounters()), preambles(out.GetMeters()),
		preambles(out.GetDirectMeters()), preambles(out.GetControllerPacketMetadata()),
		preambles(out.GetValueSets()), preambles(out.GetRegisters()), preambles(out.GetDigests()),
	) {
		if pre != nil {
			pre.Name = strings.TrimPrefix(pre.GetName(), prefix)
			pre.Alias = strings.TrimPrefix(pre.GetAlias(), prefix)
		}
	}
	return out
}
