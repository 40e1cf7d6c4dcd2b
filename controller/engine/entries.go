package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
)

// ErrEntry: an entry that does not fit the P4Info (unknown table, field, action
// or parameter, or a value wider than its field).
var ErrEntry = errors.New("engine: entry does not fit the P4Info")

// Codec converts between compile's target-neutral entries (names, padded values)
// and P4Runtime table entries (ids, canonical byte strings, spec §8.4), through
// the P4Info. Both directions produce canonical entries: match fields sorted by
// field id, parameters by parameter id, values with no leading zero bytes, so
// that reconcile.Diff compares what the target returns with what is wanted byte
// for byte.
type Codec struct {
	info *p4info.Info
}

// NewCodec returns a codec for the pipeline described by info.
func NewCodec(info *p4info.Info) *Codec { return &Codec{info: info} }

// Info is the P4Info the codec resolves names with.
func (c *Codec) Info() *p4info.Info { return c.info }

// ToP4 converts a compiled entry into a canonical P4Runtime table entry.
func (c *Codec) ToP4(e *compile.Entry) (*p4v1.TableEntry, error) {
	t, err := c.info.Table(e.Table)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrEntry, e.Key(), err)
	}
	te := &p4v1.TableEntry{TableId: t.ID, Priority: e.Priority}
	for _, m := range e.Match {
		f, err := t.Field(m.Field)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEntry, e.Key(), err)
		}
		v, err := p4info.Normalize(m.Value, f.Bitwidth)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: field %s: %w", ErrEntry, e.Key(), m.Field, err)
		}
		fm := &p4v1.FieldMatch{FieldId: f.ID}
		switch m.Kind {
		case compile.Exact:
			fm.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}
		case compile.Ternary:
			mask, err := p4info.Normalize(m.Mask, f.Bitwidth)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: mask of %s: %w", ErrEntry, e.Key(), m.Field, err)
			}
			fm.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: and(v, mask), Mask: mask}}
		default:
			return nil, fmt.Errorf("%w: %s: field %s: match kind %s", ErrEntry, e.Key(), m.Field, m.Kind)
		}
		te.Match = append(te.Match, fm)
	}
	a, err := c.info.Action(e.Action)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrEntry, e.Key(), err)
	}
	act := &p4v1.Action{ActionId: a.ID}
	for _, p := range e.Params {
		ap, err := a.Param(p.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEntry, e.Key(), err)
		}
		v, err := p4info.Normalize(p.Value, ap.Bitwidth)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: parameter %s: %w", ErrEntry, e.Key(), p.Name, err)
		}
		act.Params = append(act.Params, &p4v1.Action_Param{ParamId: ap.ID, Value: v})
	}
	te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: act}}
	return Canonicalize(te), nil
}

// FromP4 converts a P4Runtime table entry (as read back from a target) into
// compile's form: names from the P4Info, match fields in key order, parameters in
// declaration order, values padded to ceil(bitwidth/8) bytes. Origin is left
// empty.
func (c *Codec) FromP4(te *p4v1.TableEntry) (compile.Entry, error) {
	t, ok := c.info.TableByID(te.GetTableId())
	if !ok {
		return compile.Entry{}, fmt.Errorf("%w: unknown table id %#x", ErrEntry, te.GetTableId())
	}
	e := compile.Entry{Table: t.Name, Priority: te.GetPriority()}
	for _, f := range t.Fields { // key order
		var fm *p4v1.FieldMatch
		for _, m := range te.GetMatch() {
			if m.GetFieldId() == f.ID {
				fm = m
			}
		}
		if fm == nil {
			continue // a wildcard ternary field
		}
		switch {
		case fm.GetExact() != nil:
			v, err := pad(fm.GetExact().GetValue(), f.Bitwidth)
			if err != nil {
				return compile.Entry{}, fmt.Errorf("%w: table %s field %s: %w", ErrEntry, t.Name, f.Name, err)
			}
			e.Match = append(e.Match, compile.Match{Field: f.Name, Kind: compile.Exact, Bits: int(f.Bitwidth), Value: v})
		case fm.GetTernary() != nil:
			v, err := pad(fm.GetTernary().GetValue(), f.Bitwidth)
			if err != nil {
				return compile.Entry{}, fmt.Errorf("%w: table %s field %s: %w", ErrEntry, t.Name, f.Name, err)
			}
			m, err := pad(fm.GetTernary().GetMask(), f.Bitwidth)
			if err != nil {
				return compile.Entry{}, fmt.Errorf("%w: table %s mask of %s: %w", ErrEntry, t.Name, f.Name, err)
			}
			e.Match = append(e.Match, compile.Match{Field: f.Name, Kind: compile.Ternary, Bits: int(f.Bitwidth), Value: and(v, m), Mask: m})
		default:
			return compile.Entry{}, fmt.Errorf("%w: table %s field %s: match type not used by graygw", ErrEntry, t.Name, f.Name)
		}
	}
	act := te.GetAction().GetAction()
	if act == nil {
		return compile.Entry{}, fmt.Errorf("%w: table %s: entry without a direct action", ErrEntry, t.Name)
	}
	a, ok := c.info.ActionByID(act.GetActionId())
	if !ok {
		return compile.Entry{}, fmt.Errorf("%w: table %s: unknown action id %#x", ErrEntry, t.Name, act.GetActionId())
	}
	e.Action = a.Name
	for _, p := range a.Params { // declaration order
		var ap *p4v1.Action_Param
		for _, q := range act.GetParams() {
			if q.GetParamId() == p.ID {
				ap = q
			}
		}
		if ap == nil {
			return compile.Entry{}, fmt.Errorf("%w: table %s action %s: parameter %s missing", ErrEntry, t.Name, a.Name, p.Name)
		}
		v, err := pad(ap.GetValue(), p.Bitwidth)
		if err != nil {
			return compile.Entry{}, fmt.Errorf("%w: table %s action %s parameter %s: %w", ErrEntry, t.Name, a.Name, p.Name, err)
		}
		e.Params = append(e.Params, compile.Param{Name: p.Name, Bits: int(p.Bitwidth), Value: v})
	}
	return e, nil
}

// Describe renders a P4Runtime entry for logs and dry runs, by name when the
// P4Info knows it.
func (c *Codec) Describe(te *p4v1.TableEntry) string {
	e, err := c.FromP4(te)
	if err != nil {
		return fmt.Sprintf("table %#x priority %d (%v)", te.GetTableId(), te.GetPriority(), err)
	}
	return e.String()
}

// Canonicalize returns a copy of te reduced to what identifies it and its action,
// in canonical order and encoding: match fields sorted by id, parameters sorted
// by id, byte strings without leading zeros, ternary values masked. Counter
// data, metadata and timeouts are dropped.
func Canonicalize(te *p4v1.TableEntry) *p4v1.TableEntry {
	out := &p4v1.TableEntry{TableId: te.GetTableId(), Priority: te.GetPriority(), IsDefaultAction: te.GetIsDefaultAction()}
	for _, m := range te.GetMatch() {
		fm := &p4v1.FieldMatch{FieldId: m.GetFieldId()}
		switch {
		case m.GetExact() != nil:
			fm.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: canon(m.GetExact().GetValue())}}
		case m.GetTernary() != nil:
			mask := canon(m.GetTernary().GetMask())
			fm.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{
				Value: canon(and(m.GetTernary().GetValue(), mask)), Mask: mask}}
		default:
			fm.FieldMatchType = m.GetFieldMatchType() // not used by graygw: kept as is
		}
		out.Match = append(out.Match, fm)
	}
	slices.SortFunc(out.Match, func(a, b *p4v1.FieldMatch) int { return int(a.GetFieldId()) - int(b.GetFieldId()) })
	if act := te.GetAction().GetAction(); act != nil {
		a := &p4v1.Action{ActionId: act.GetActionId()}
		for _, p := range act.GetParams() {
			a.Params = append(a.Params, &p4v1.Action_Param{ParamId: p.GetParamId(), Value: canon(p.GetValue())})
		}
		slices.SortFunc(a.Params, func(x, y *p4v1.Action_Param) int { return int(x.GetParamId()) - int(y.GetParamId()) })
		out.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
	} else if te.GetAction() != nil {
		out.Action = te.GetAction() // action profiles: not used by graygw
	}
	return out
}

// Cookie is the forwarding pipeline cookie the controller uses: a fingerprint of
// what the P4Info means (ids, names, bitwidths, match kinds, sizes, action refs,
// counters), not of its bytes, followed by the device config. The same pipeline
// therefore gets the same cookie whatever the P4Info's formatting or the build of
// the controller, so a controller restart or upgrade never re-pushes (and clears)
// a pipeline that is already running.
func Cookie(info *p4info.Info, deviceConfig []byte) uint64 {
	h := fnv.New64a()
	w := func(vals ...any) {
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				binary.Write(h, binary.BigEndian, uint32(len(v)))
				h.Write([]byte(v))
			case uint32:
				binary.Write(h, binary.BigEndian, v)
			case int32:
				binary.Write(h, binary.BigEndian, v)
			case int64:
				binary.Write(h, binary.BigEndian, v)
			case bool:
				binary.Write(h, binary.BigEndian, v)
			}
		}
	}
	for _, t := range info.Tables() {
		w("table", t.ID, t.Name, t.Size, t.IsConst, t.ConstDefaultActionID, t.ImplementationID)
		for _, f := range t.Fields {
			w("field", f.ID, f.Name, f.Bitwidth, int32(f.MatchType))
		}
		for _, a := range t.Actions {
			w("ref", a.ID, int32(a.Scope))
		}
		if t.DirectCounter != nil {
			w("direct", t.DirectCounter.ID)
		}
	}
	for _, a := range info.Actions() {
		w("action", a.ID, a.Name)
		for _, p := range a.Params {
			w("param", p.ID, p.Name, p.Bitwidth)
		}
	}
	for _, c := range info.Counters() {
		w("counter", c.ID, c.Name, int32(c.Unit), c.Size)
	}
	for _, c := range info.DirectCounters() {
		w("dcounter", c.ID, c.Name, int32(c.Unit), c.TableID)
	}
	w("device", string(deviceConfig))
	return h.Sum64()
}

func canon(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	return append([]byte(nil), p4info.Canonical(b)...)
}

// pad returns b as exactly ceil(width/8) big-endian bytes, refusing values
// wider than width.
func pad(b []byte, width int32) ([]byte, error) {
	if err := p4info.CheckWidth(b, width); err != nil {
		return nil, err
	}
	b = p4info.Canonical(b)
	n := int(width+7) / 8
	out := make([]byte, n)
	copy(out[n-min(len(b), n):], b[max(len(b)-n, 0):])
	return out, nil
}

// and returns v & mask, aligned on the right.
func and(v, mask []byte) []byte {
	n := max(len(v), len(mask))
	out := make([]byte, n)
	for i := range n {
		var x, y byte
		if j := len(v) - n + i; j >= 0 {
			x = v[j]
		}
		if j := len(mask) - n + i; j >= 0 {
			y = mask[j]
		}
		out[i] = x & y
	}
	return out
}
