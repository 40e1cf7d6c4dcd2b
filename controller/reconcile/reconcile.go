// Package reconcile computes the P4Runtime updates that turn what a target holds
// into what the controller wants, ordered make-before-break: everything a packet
// could be steered to exists before anything steers to it, and nothing is removed
// while something still points at it.
package reconcile

import (
	"bytes"
	"fmt"
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
	// Counts per type, for logs and dry runs.
	Inserts, Modifies, Deletes int
	// Foreign are the entries the target holds that the controller does not want
	// (deleted by the plan): written by someone else or left by an older intent.
	Foreign []*p4v1.TableEntry
}

// Empty reports whether the target already holds exactly the desired entries.
func (p *Plan) Empty() bool { return len(p.Updates) == 0 }

// Diff returns the updates that make have equal want. Entries are identified by
// table, match and priority; an entry present on both sides with a different
// action is modified in place (one atomic update per entry). Inserts and modifies
// come first, table by table in order; then deletes, in reverse order.
func Diff(want, have []*p4v1.TableEntry, order Order) (*Plan, error) {
	wantIdx, err := index(want)
	if err != nil {
		return nil, fmt.Errorf("reconcile: desired entries: %w", err)
	}
	haveIdx, err := index(have)
	if err != nil {
		return nil, fmt.Errorf("reconcile: target entries: %w", err)
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
		case !sameAction(w, h):
			writes = append(writes, keyed{k, w, p4v1.Update_MODIFY})
			p.Modifies++
		}
	}
	for k, h := range haveIdx {
		if _, ok := wantIdx[k]; !ok {
			deletes = append(deletes, keyed{k, h, p4v1.Update_DELETE})
			p.Deletes++
			p.Foreign = append(p.Foreign, h)
		}
	}
	sortKeyed(writes, func(t uint32) int { return rank(t) })
	sortKeyed(deletes, func(t uint32) int { return -rank(t) })
	for _, list := range [][]keyed{writes, deletes} {
		for i, e := range list {
			te := e.entry
			if e.typ == p4v1.Update_DELETE {
				te = &p4v1.TableEntry{TableId: te.TableId, Match: te.Match, Priority: te.Priority}
			}
			u := &p4v1.Update{Type: e.typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
			if i == 0 || list[i-1].entry.TableId != e.entry.TableId {
				p.Phases = append(p.Phases, nil)
			}
			p.Phases[len(p.Phases)-1] = append(p.Phases[len(p.Phases)-1], u)
			p.Updates = append(p.Updates, u)
		}
	}
	return p, nil
}

type keyed struct {
	key   string
	entry *p4v1.TableEntry
	typ   p4v1.Update_Type
}

func sortKeyed(l []keyed, rank func(uint32) int) {
	sort.Slice(l, func(i, j int) bool {
		ri, rj := rank(l[i].entry.TableId), rank(l[j].entry.TableId)
		if ri != rj {
			return ri < rj
		}
		return l[i].key < l[j].key
	})
}

// Key returns the identity of a table entry: table, priority and match fields
// (sorted by field id), serialized deterministically.
func Key(te *p4v1.TableEntry) (string, error) {
	ms := append([]*p4v1.FieldMatch(nil), te.GetMatch()...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].GetFieldId() < ms[j].GetFieldId() })
	k := &p4v1.TableEntry{TableId: te.GetTableId(), Priority: te.GetPriority(), Match: ms, IsDefaultAction: te.GetIsDefaultAction()}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(k)
	return string(b), err
}

func index(entries []*p4v1.TableEntry) (map[string]*p4v1.TableEntry, error) {
	m := make(map[string]*p4v1.TableEntry, len(entries))
	for _, e := range entries {
		k, err := Key(e)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("two entries with the same key in table %d", e.GetTableId())
		}
		m[k] = e
	}
	return m, nil
}

func sameAction(a, b *p4v1.TableEntry) bool {
	ab, err1 := proto.MarshalOptions{Deterministic: true}.Marshal(a.GetAction())
	bb, err2 := proto.MarshalOptions{Deterministic: true}.Marshal(b.GetAction())
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
