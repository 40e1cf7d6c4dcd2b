package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/p4info"
)

// A table entry is kept in canonical form (every byte string shortest, don't-care
// fields omitted, fields in P4Info order) and stored as two strings: the key
// (match + priority), which identifies the entry, and the value (action, params,
// metadata). Reads decode them back, so what a client reads is what it wrote,
// canonicalized (spec §8.3 Bytestrings: the server answers with the shortest byte strings).

// fieldVal is one match field of an entry in canonical form.
type fieldVal struct {
	kind p4configv1.MatchField_MatchType // UNSPECIFIED: don't care (omitted)
	a, b []byte                          // exact/optional: a; ternary: a value, b mask; lpm: a; range: a low, b high
	plen int32                           // lpm
}

// entry is a validated table entry.
type entry struct {
	t        *tableInfo
	fields   []fieldVal // indexed like t.Fields
	priority int32

	action   uint32 // 0 when a MODIFY leaves the action unset
	params   [][]byte
	ctrlMeta uint64
	meta     []byte
}

// parseMatch validates te's match fields and priority for table t (spec §9.1.1
// "Match Format"). Any violation is INVALID_ARGUMENT, including a byte string
// wider than the field: the match-format rules say INVALID_ARGUMENT, which is more
// specific than §8.3's general OUT_OF_RANGE for byte strings.
func parseMatch(t *tableInfo, te *p4v1.TableEntry) (*entry, *uerr) {
	e, err := parseMatchFields(t, te)
	if err != nil {
		return nil, err
	}
	if t.NeedsPriority() {
		// The spec asks for a non-zero priority; negative ones are refused too,
		// because the targets order priorities as positive numbers (larger wins).
		if e.priority <= 0 {
			return nil, errf(codes.InvalidArgument, "table %s has ternary/range/optional fields: priority must be > 0, got %d", t.Name, e.priority)
		}
	} else if e.priority != 0 {
		return nil, errf(codes.InvalidArgument, "table %s has only exact/lpm fields: priority must be 0, got %d", t.Name, e.priority)
	}
	return e, nil
}

// parseMatchFields is parseMatch without the priority rules (a read filter may
// leave the priority as a wildcard).
func parseMatchFields(t *tableInfo, te *p4v1.TableEntry) (*entry, *uerr) {
	e := &entry{t: t, fields: make([]fieldVal, len(t.Fields)), priority: te.GetPriority()}
	for _, fm := range te.GetMatch() {
		f, ok := t.FieldByID(fm.GetFieldId())
		if !ok {
			return nil, errf(codes.InvalidArgument, "table %s has no match field id %d", t.Name, fm.GetFieldId())
		}
		i := t.fieldIndex[f.ID]
		if e.fields[i].kind != p4configv1.MatchField_UNSPECIFIED {
			return nil, errf(codes.InvalidArgument, "table %s: match field %s given twice", t.Name, f.Name)
		}
		fv, err := parseField(f, fm)
		if err != nil {
			return nil, errf(codes.InvalidArgument, "table %s: match field %s: %s", t.Name, f.Name, err)
		}
		e.fields[i] = fv
	}
	for i, f := range t.Fields {
		if f.MatchType == p4configv1.MatchField_EXACT && e.fields[i].kind == p4configv1.MatchField_UNSPECIFIED {
			return nil, errf(codes.InvalidArgument, "table %s: exact match field %s missing (exact fields have no don't-care)", t.Name, f.Name)
		}
	}
	return e, nil
}

// parseField validates one FieldMatch against its P4Info field.
func parseField(f *p4info.MatchField, fm *p4v1.FieldMatch) (fieldVal, error) {
	norm := func(what string, b []byte) ([]byte, error) {
		v, err := p4info.Normalize(b, f.Bitwidth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}
	var fv fieldVal
	// both normalizes a ternary's or a range's two values into fv.a and fv.b.
	both := func(aWhat string, a []byte, bWhat string, b []byte) (err error) {
		if fv.a, err = norm(aWhat, a); err != nil {
			return err
		}
		fv.b, err = norm(bWhat, b)
		return err
	}
	want := f.MatchType
	var got p4configv1.MatchField_MatchType
	var err error
	switch m := fm.GetFieldMatchType().(type) {
	case *p4v1.FieldMatch_Exact_:
		got = p4configv1.MatchField_EXACT
		if got == want {
			fv.a, err = norm("value", m.Exact.GetValue())
		}
	case *p4v1.FieldMatch_Ternary_:
		got = p4configv1.MatchField_TERNARY
		if got == want {
			if err = both("value", m.Ternary.GetValue(), "mask", m.Ternary.GetMask()); err != nil {
				break
			}
			if p4info.BitLen(fv.b) == 0 {
				return fv, errors.New("all-zero mask: a don't-care ternary field must be omitted")
			}
			if !masked(fv.a, fv.b) {
				return fv, fmt.Errorf("value %#x has bits outside mask %#x", fv.a, fv.b)
			}
		}
	case *p4v1.FieldMatch_Lpm:
		got = p4configv1.MatchField_LPM
		if got == want {
			if fv.a, err = norm("value", m.Lpm.GetValue()); err != nil {
				break
			}
			fv.plen = m.Lpm.GetPrefixLen()
			if fv.plen <= 0 || fv.plen > f.Bitwidth {
				return fv, fmt.Errorf("prefix_len %d not in [1, %d] (a /0 is a don't-care and must be omitted)", fv.plen, f.Bitwidth)
			}
			if !masked(fv.a, p4info.Mask(f.Bitwidth, fv.plen)) {
				return fv, fmt.Errorf("value %#x has bits past the /%d prefix", fv.a, fv.plen)
			}
		}
	case *p4v1.FieldMatch_Range_:
		got = p4configv1.MatchField_RANGE
		if got == want {
			if err = both("low", m.Range.GetLow(), "high", m.Range.GetHigh()); err != nil {
				break
			}
			if cmpUint(fv.a, fv.b) > 0 {
				return fv, fmt.Errorf("low %#x > high %#x", fv.a, fv.b)
			}
			if p4info.BitLen(fv.a) == 0 && p4info.BitLen(fv.b) == int(f.Bitwidth) && allOnes(fv.b, f.Bitwidth) {
				return fv, errors.New("full range: a don't-care range field must be omitted")
			}
		}
	case *p4v1.FieldMatch_Optional_:
		got = p4configv1.MatchField_OPTIONAL
		if got == want {
			fv.a, err = norm("value", m.Optional.GetValue())
		}
	default:
		return fv, errors.New("no match kind set (or an unsupported one)")
	}
	if got != want {
		return fv, fmt.Errorf("%s match given for a %s field", got, want)
	}
	if err != nil {
		return fv, err
	}
	fv.kind = want
	return fv, nil
}

// masked reports whether value has no bit outside mask (both big-endian).
func masked(value, mask []byte) bool {
	for i := range value {
		j := len(mask) - len(value) + i
		var m byte
		if j >= 0 {
			m = mask[j]
		}
		if value[i]&^m != 0 {
			return false
		}
	}
	return true
}

// cmpUint compares two canonical unsigned byte strings.
func cmpUint(a, b []byte) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}

func allOnes(b []byte, width int32) bool {
	return bytes.Equal(b, p4info.Mask(width, width))
}

// parseAction validates a direct action for table t (spec §9.1.2 "Action
// Specification"): the action must be one of the table's (INVALID_ARGUMENT),
// usable for a match entry (a DEFAULT_ONLY action: PERMISSION_DENIED), with every
// parameter given once and fitting its bitwidth (INVALID_ARGUMENT).
func parseAction(t *tableInfo, ta *p4v1.TableAction) (uint32, [][]byte, *uerr) {
	a, ok := ta.GetType().(*p4v1.TableAction_Action)
	if !ok || a.Action == nil {
		return 0, nil, errf(codes.InvalidArgument, "table %s is a direct table: the action must be an Action (not a member, group or action set)", t.Name)
	}
	id := a.Action.GetActionId()
	ref, ok := t.ActionRef(id)
	if !ok {
		return 0, nil, errf(codes.InvalidArgument, "action id %#x is not an action of table %s", id, t.Name)
	}
	act := t.actions[id]
	if ref.Scope == p4configv1.ActionRef_DEFAULT_ONLY {
		return 0, nil, errf(codes.PermissionDenied, "action %s is default-only in table %s (P4Info scope DEFAULT_ONLY)", act.Name, t.Name)
	}
	params := make([][]byte, len(act.Params))
	for _, p := range a.Action.GetParams() {
		pi, ok := act.ParamByID(p.GetParamId())
		if !ok {
			return 0, nil, errf(codes.InvalidArgument, "action %s has no parameter id %d", act.Name, p.GetParamId())
		}
		i := t.paramIndex[id][pi.ID]
		if params[i] != nil {
			return 0, nil, errf(codes.InvalidArgument, "action %s: parameter %s given twice", act.Name, pi.Name)
		}
		v, err := p4info.Normalize(p.GetValue(), pi.Bitwidth)
		if err != nil {
			return 0, nil, errf(codes.InvalidArgument, "action %s: parameter %s (bit<%d>): %v", act.Name, pi.Name, pi.Bitwidth, err)
		}
		params[i] = v
	}
	for i, v := range params {
		if v == nil {
			return 0, nil, errf(codes.InvalidArgument, "action %s: parameter %s missing", act.Name, act.Params[i].Name)
		}
	}
	return id, params, nil
}

// --- encoding -------------------------------------------------------------

func putBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// matchKey encodes the match part of the key (without the priority).
func (e *entry) matchKey(b []byte) []byte {
	for _, f := range e.fields {
		b = append(b, byte(f.kind))
		switch f.kind {
		case p4configv1.MatchField_EXACT, p4configv1.MatchField_OPTIONAL:
			b = putBytes(b, f.a)
		case p4configv1.MatchField_TERNARY, p4configv1.MatchField_RANGE:
			b = putBytes(putBytes(b, f.a), f.b)
		case p4configv1.MatchField_LPM:
			b = binary.AppendUvarint(putBytes(b, f.a), uint64(f.plen))
		}
	}
	return b
}

// key is the entry's identity within its table: match fields and priority.
func (e *entry) key() string {
	b := e.matchKey(make([]byte, 0, 32))
	b = binary.BigEndian.AppendUint32(b, uint32(e.priority))
	return string(b)
}

// value encodes the non-key part.
func (e *entry) value() string {
	b := binary.AppendUvarint(make([]byte, 0, 32), uint64(e.action))
	for _, p := range e.params {
		b = putBytes(b, p)
	}
	b = binary.AppendUvarint(b, e.ctrlMeta)
	b = putBytes(b, e.meta)
	return string(b)
}

var errBadEncoding = errors.New("server: bad stored entry encoding")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadEncoding
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errBadEncoding
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeEntry rebuilds an entry of t from its key and value strings.
func decodeEntry(t *tableInfo, key, value string) (*entry, error) {
	e := &entry{t: t, fields: make([]fieldVal, len(t.Fields))}
	if len(key) < 4 {
		return nil, errBadEncoding
	}
	e.priority = int32(binary.BigEndian.Uint32([]byte(key[len(key)-4:])))
	r := &reader{b: []byte(key[:len(key)-4])}
	for i := range e.fields {
		if len(r.b) == 0 {
			return nil, errBadEncoding
		}
		k := p4configv1.MatchField_MatchType(r.b[0])
		r.b = r.b[1:]
		f := &e.fields[i]
		f.kind = k
		switch k {
		case p4configv1.MatchField_UNSPECIFIED:
		case p4configv1.MatchField_EXACT, p4configv1.MatchField_OPTIONAL:
			f.a = r.bytes()
		case p4configv1.MatchField_TERNARY, p4configv1.MatchField_RANGE:
			f.a, f.b = r.bytes(), r.bytes()
		case p4configv1.MatchField_LPM:
			f.a = r.bytes()
			f.plen = int32(r.uvarint())
		default:
			return nil, errBadEncoding
		}
		if k != p4configv1.MatchField_UNSPECIFIED && k != t.Fields[i].MatchType {
			return nil, errBadEncoding
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errBadEncoding
	}
	r = &reader{b: []byte(value)}
	e.action = uint32(r.uvarint())
	act, ok := t.actions[e.action]
	if !ok || r.err != nil {
		return nil, errBadEncoding
	}
	e.params = make([][]byte, len(act.Params))
	for i := range e.params {
		e.params[i] = r.bytes()
	}
	e.ctrlMeta = r.uvarint()
	e.meta = r.bytes()
	if r.err != nil || len(r.b) != 0 {
		return nil, errBadEncoding
	}
	if len(e.meta) == 0 {
		e.meta = nil
	}
	return e, nil
}

// matchProto returns the entry's match fields as P4Runtime messages.
func (e *entry) matchProto() []*p4v1.FieldMatch {
	out := make([]*p4v1.FieldMatch, 0, len(e.fields))
	for i, f := range e.fields {
		fm := &p4v1.FieldMatch{FieldId: e.t.Fields[i].ID}
		switch f.kind {
		case p4configv1.MatchField_UNSPECIFIED:
			continue
		case p4configv1.MatchField_EXACT:
			fm.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: f.a}}
		case p4configv1.MatchField_TERNARY:
			fm.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: f.a, Mask: f.b}}
		case p4configv1.MatchField_LPM:
			fm.FieldMatchType = &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: f.a, PrefixLen: f.plen}}
		case p4configv1.MatchField_RANGE:
			fm.FieldMatchType = &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: f.a, High: f.b}}
		case p4configv1.MatchField_OPTIONAL:
			fm.FieldMatchType = &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: f.a}}
		}
		out = append(out, fm)
	}
	return out
}

// proto returns the entry as a TableEntry (without counter data).
func (e *entry) proto() *p4v1.TableEntry {
	act := e.t.actions[e.action]
	params := make([]*p4v1.Action_Param, len(e.params))
	for i, v := range e.params {
		params[i] = &p4v1.Action_Param{ParamId: act.Params[i].ID, Value: v}
	}
	return &p4v1.TableEntry{
		TableId: e.t.ID, Match: e.matchProto(), Priority: e.priority,
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{
			ActionId: e.action, Params: params}}},
		ControllerMetadata: e.ctrlMeta, Metadata: e.meta,
	}
}

// actionName is the P4Info name of the entry's action ("" when it has none:
// the entry of a DELETE).
func (e *entry) actionName() string {
	if a, ok := e.t.actions[e.action]; ok {
		return a.Name
	}
	return ""
}

// u returns exact field i as a number (newSchema checked its width against
// pipeline.Tables).
func (e *entry) u(i int) uint64 {
	v, _ := p4info.DecodeUint(e.fields[i].a)
	return v
}

// ternary returns ternary field i as value and mask; a don't-care is 0/0.
func (e *entry) ternary(i int) (uint64, uint64) {
	f := e.fields[i]
	if f.kind == p4configv1.MatchField_UNSPECIFIED {
		return 0, 0
	}
	v, _ := p4info.DecodeUint(f.a)
	m, _ := p4info.DecodeUint(f.b)
	return v, m
}

// param returns action parameter i as a number.
func (e *entry) param(i int) uint64 {
	v, _ := p4info.DecodeUint(e.params[i])
	return v
}
