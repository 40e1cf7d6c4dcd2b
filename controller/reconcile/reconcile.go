// Package reconcile computes the P4Runtime updates that turn what a target holds
// into what the controller wants, ordered make-before-break: everything a packet
// could be steered to exists before anything steers to it, and nothing is removed
// while something still points at it.
//
// Entries are identified by their canonical key bytes (Key: table, priority and
// match fields), computed once per entry (Set) without protobuf marshalling;
// actions are compared by a fingerprint computed the same way. A diff is linear
// in the number of entries (map lookups) plus the sort of the updates it emits.
package reconcile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// Order lists table ids from the most depended-upon (written first, deleted last)
// to the least (written last, deleted first). For graygw: backend, pool_hash,
// backend_select, vni_tenant, vip, gray_rules. Tables not listed go last.
type Order []uint32

// Plan is the result of a diff.
type Plan struct {
	// Phases are the updates grouped so that each phase may be sent as one
	// WriteRequest: a target may apply the updates of one request in any order
	// (P4Runtime spec §12.2), so make-before-break holds only between requests.
	// A phase holds one table's inserts and modifies, or one table's deletes.
	Phases [][]*p4v1.Update
	// Updates is Phases flattened, in order.
	Updates []*p4v1.Update
	// Keys and Tags are parallel to Updates: each update's entry key (Key) and
	// the Tag of the entry it came from (the wanted entry for an insert or a
	// modify, the held one for a delete; "" for sets without tags).
	Keys, Tags []string
	// Counts per type, for logs and dry runs.
	Inserts, Modifies, Deletes int
	// Foreign are the entries the target holds that the controller does not want
	// (deleted by the plan): written by someone else or left by an older intent.
	Foreign []*p4v1.TableEntry
}

// Empty reports whether the target already holds exactly the desired entries.
func (p *Plan) Empty() bool { return len(p.Updates) == 0 }

// Set is a list of entries with their keys and action fingerprints computed
// once. A Set must not be changed once built: DiffSets treats two occurrences of
// the same *Set on both sides as identical content and skips them.
type Set struct {
	Entries []*p4v1.TableEntry
	Keys    []string // Key of each entry
	Acts    []string // action fingerprint of each entry
	// Tags are optional labels, one per entry (nil for none), carried into
	// Plan.Tags (the engine puts the entry's origin there).
	Tags []string
}

// NewSet computes the keys and action fingerprints of entries. tags is nil or
// parallel to entries.
func NewSet(entries []*p4v1.TableEntry, tags []string) *Set {
	s := &Set{Entries: entries, Keys: make([]string, len(entries)), Acts: make([]string, len(entries)), Tags: tags}
	var buf []byte
	for i, te := range entries {
		buf = appendKey(buf[:0], te)
		s.Keys[i] = string(buf)
		buf = appendAction(buf[:0], te.GetAction())
		s.Acts[i] = string(buf)
	}
	return s
}

// Len is the number of entries of s (0 for nil).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Entries)
}

func (s *Set) tag(i int) string {
	if s.Tags == nil {
		return ""
	}
	return s.Tags[i]
}

// Diff returns the updates that make have equal want. Entries are identified by
// table, match and priority; an entry present on both sides with a different
// action is modified in place (one atomic update per entry). Inserts and modifies
// come first, table by table in order; then deletes, in reverse order.
func Diff(want, have []*p4v1.TableEntry, order Order) (*Plan, error) {
	return DiffSets([]*Set{NewSet(want, nil)}, []*Set{NewSet(have, nil)}, order)
}

// ref locates one entry: set and index.
type ref struct {
	s *Set
	i int32
}

// DiffSets is Diff over sets: want and have are each the union of their sets.
// A *Set present on both sides is identical on both and is skipped without
// looking at its entries, so a diff between two desired states that share most
// of their sets costs only the entries of the sets that differ.
func DiffSets(want, have []*Set, order Order) (*Plan, error) {
	both := map[*Set]bool{}
	for _, w := range want {
		if slices.Contains(have, w) {
			both[w] = true
		}
	}
	haveIdx, err := indexSets(have, both)
	if err != nil {
		return nil, fmt.Errorf("reconcile: target entries: %w", err)
	}
	wantIdx, err := indexSets(want, both)
	if err != nil {
		return nil, fmt.Errorf("reconcile: desired entries: %w", err)
	}
	rank := func(table uint32) int {
		for i, t := range order {
			if t == table {
				return i
			}
		}
		return len(order)
	}
	p := &Plan{}
	var writes, deletes []keyed
	for k, w := range wantIdx {
		h, ok := haveIdx[k]
		switch {
		case !ok:
			writes = append(writes, keyed{k, w, p4v1.Update_INSERT})
			p.Inserts++
		case w.s.Acts[w.i] != h.s.Acts[h.i]:
			writes = append(writes, keyed{k, w, p4v1.Update_MODIFY})
			p.Modifies++
		}
	}
	for k, h := range haveIdx {
		if _, ok := wantIdx[k]; !ok {
			deletes = append(deletes, keyed{k, h, p4v1.Update_DELETE})
			p.Deletes++
			p.Foreign = append(p.Foreign, h.s.Entries[h.i])
		}
	}
	sortKeyed(writes, rank, 1)
	sortKeyed(deletes, rank, -1)
	for _, list := range [][]keyed{writes, deletes} {
		for i, e := range list {
			te := e.entry()
			if e.typ == p4v1.Update_DELETE {
				te = &p4v1.TableEntry{TableId: te.TableId, Match: te.Match, Priority: te.Priority}
			}
			u := &p4v1.Update{Type: e.typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
			if i == 0 || list[i-1].entry().TableId != te.TableId {
				p.Phases = append(p.Phases, nil)
			}
			p.Phases[len(p.Phases)-1] = append(p.Phases[len(p.Phases)-1], u)
			p.Updates = append(p.Updates, u)
			p.Keys = append(p.Keys, e.key)
			p.Tags = append(p.Tags, e.r.s.tag(int(e.r.i)))
		}
	}
	return p, nil
}

func indexSets(sets []*Set, skip map[*Set]bool) (map[string]ref, error) {
	n := 0
	for _, s := range sets {
		if !skip[s] {
			n += s.Len()
		}
	}
	m := make(map[string]ref, n)
	for _, s := range sets {
		if s == nil || skip[s] {
			continue
		}
		for i, k := range s.Keys {
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("two entries with the same key in table %d", s.Entries[i].GetTableId())
			}
			m[k] = ref{s, int32(i)}
		}
	}
	return m, nil
}

type keyed struct {
	key string
	r   ref
	typ p4v1.Update_Type
}

func (k *keyed) entry() *p4v1.TableEntry { return k.r.s.Entries[k.r.i] }

// sortKeyed orders by table rank (ascending for dir 1, descending for -1), then
// by key.
func sortKeyed(l []keyed, rank func(uint32) int, dir int) {
	sort.Slice(l, func(i, j int) bool {
		ri, rj := dir*rank(l[i].entry().TableId), dir*rank(l[j].entry().TableId)
		if ri != rj {
			return ri < rj
		}
		return l[i].key < l[j].key
	})
}

// Key returns the identity of a table entry: table, priority and match fields
// (in field id order), as canonical bytes. Two entries have the same Key exactly
// when a P4Runtime target would take them for the same entry, provided their
// values are encoded alike (the engine canonicalizes both sides).
func Key(te *p4v1.TableEntry) string {
	return string(appendKey(nil, te))
}

func appendKey(b []byte, te *p4v1.TableEntry) []byte {
	b = binary.BigEndian.AppendUint32(b, te.GetTableId())
	b = binary.BigEndian.AppendUint32(b, uint32(te.GetPriority()))
	if te.GetIsDefaultAction() {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	ms := te.GetMatch()
	if !slices.IsSortedFunc(ms, byFieldID) {
		ms = slices.SortedFunc(slices.Values(ms), byFieldID)
	}
	for _, m := range ms {
		b = binary.BigEndian.AppendUint32(b, m.GetFieldId())
		switch t := m.GetFieldMatchType().(type) {
		case *p4v1.FieldMatch_Exact_:
			b = appendTagged(b, 'e', t.Exact.GetValue())
		case *p4v1.FieldMatch_Ternary_:
			b = appendTagged(b, 't', t.Ternary.GetValue(), t.Ternary.GetMask())
		case *p4v1.FieldMatch_Lpm:
			b = appendTagged(b, 'l', t.Lpm.GetValue())
			b = binary.BigEndian.AppendUint32(b, uint32(t.Lpm.GetPrefixLen()))
		case *p4v1.FieldMatch_Range_:
			b = appendTagged(b, 'r', t.Range.GetLow(), t.Range.GetHigh())
		case *p4v1.FieldMatch_Optional_:
			b = appendTagged(b, 'o', t.Optional.GetValue())
		default:
			raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			b = appendTagged(b, '?', raw)
		}
	}
	return b
}

func byFieldID(a, b *p4v1.FieldMatch) int {
	return int(a.GetFieldId()) - int(b.GetFieldId())
}

// appendAction appends the fingerprint of an action: direct actions by id and
// parameters (id, value) as given; anything else (action profiles) by its
// deterministic protobuf encoding.
func appendAction(b []byte, a *p4v1.TableAction) []byte {
	if a == nil {
		return b
	}
	if act := a.GetAction(); act != nil {
		b = append(b, 'A')
		b = binary.BigEndian.AppendUint32(b, act.GetActionId())
		for _, p := range act.GetParams() {
			b = binary.BigEndian.AppendUint32(b, p.GetParamId())
			b = appendBytes(b, p.GetValue())
		}
		return b
	}
	raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	b = append(b, 'P')
	return append(b, raw...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendTagged appends a match kind's tag and its values, each length-prefixed.
func appendTagged(b []byte, tag byte, vs ...[]byte) []byte {
	b = append(b, tag)
	for _, v := range vs {
		b = appendBytes(b, v)
	}
	return b
}

// ActionKey returns the fingerprint of te's action that Set.Acts holds: two
// entries with the same key need a modify exactly when their ActionKeys differ.
func ActionKey(te *p4v1.TableEntry) string { return string(appendAction(nil, te.GetAction())) }

// SameAction reports whether two entries have the same action (and parameters).
func SameAction(a, b *p4v1.TableEntry) bool {
	return bytes.Equal(appendAction(nil, a.GetAction()), appendAction(nil, b.GetAction()))
}
