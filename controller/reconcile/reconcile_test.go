package reconcile

import (
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

const (
	tBackend = 6
	tSelect  = 5
	tVIP     = 1
	tRules   = 3
)

var order = Order{tBackend, tSelect, tVIP, tRules}

func exact(table uint32, key byte, action uint32, param byte) *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: table,
		Match:  []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{key}}}}},
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: action, Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{param}}}}}}}
}

func TestNothingToDoWhenEqual(t *testing.T) {
	want := []*p4v1.TableEntry{exact(tBackend, 1, 7, 1), exact(tSelect, 0, 6, 1), exact(tVIP, 9, 1, 1)}
	// The target returns the same entries in another order, match fields possibly reordered.
	have := []*p4v1.TableEntry{exact(tVIP, 9, 1, 1), exact(tSelect, 0, 6, 1), exact(tBackend, 1, 7, 1)}
	p, err := Diff(want, have, order)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatalf("plan has %d updates for identical state", len(p.Updates))
	}
}

func TestMakeBeforeBreakOrder(t *testing.T) {
	// Move bucket 0 from backend 1 to a new backend 2, and drop backend 1.
	have := []*p4v1.TableEntry{exact(tBackend, 1, 7, 1), exact(tSelect, 0, 6, 1), exact(tVIP, 9, 1, 1)}
	want := []*p4v1.TableEntry{exact(tBackend, 2, 7, 2), exact(tSelect, 0, 6, 2), exact(tVIP, 9, 1, 1),
		exact(tRules, 4, 3, 1)}
	p, err := Diff(want, have, order)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range p.Updates {
		te := u.GetEntity().GetTableEntry()
		got = append(got, u.GetType().String()+":"+string(rune('0'+te.GetTableId())))
	}
	want2 := []string{"INSERT:6", "MODIFY:5", "INSERT:3", "DELETE:6"}
	if len(got) != len(want2) {
		t.Fatalf("updates %v, want %v", got, want2)
	}
	for i := range got {
		if got[i] != want2[i] {
			t.Fatalf("updates %v, want %v", got, want2)
		}
	}
	// One phase per table and kind: a target may reorder updates within a request.
	if len(p.Phases) != 4 {
		t.Fatalf("%d phases, want 4 (backend inserts, select modifies, rule inserts, backend deletes)", len(p.Phases))
	}
	if p.Inserts != 2 || p.Modifies != 1 || p.Deletes != 1 || len(p.Foreign) != 1 {
		t.Fatalf("counts %d/%d/%d foreign %d", p.Inserts, p.Modifies, p.Deletes, len(p.Foreign))
	}
	// A delete carries only the key.
	if d := p.Updates[3].GetEntity().GetTableEntry(); d.GetAction() != nil {
		t.Fatal("delete carries an action")
	}
}

func TestDeletesInReverseOrder(t *testing.T) {
	have := []*p4v1.TableEntry{exact(tBackend, 1, 7, 1), exact(tSelect, 0, 6, 1), exact(tVIP, 9, 1, 1), exact(tRules, 4, 3, 1)}
	p, err := Diff(nil, have, order)
	if err != nil {
		t.Fatal(err)
	}
	wantTables := []uint32{tRules, tVIP, tSelect, tBackend}
	for i, u := range p.Updates {
		if u.GetType() != p4v1.Update_DELETE || u.GetEntity().GetTableEntry().GetTableId() != wantTables[i] {
			t.Fatalf("update %d: %v table %d, want DELETE table %d", i, u.GetType(), u.GetEntity().GetTableEntry().GetTableId(), wantTables[i])
		}
	}
}

func TestPriorityIsPartOfTheKey(t *testing.T) {
	a := exact(tRules, 4, 3, 1)
	a.Priority = 10
	b := exact(tRules, 4, 3, 1)
	b.Priority = 20
	p, err := Diff([]*p4v1.TableEntry{b}, []*p4v1.TableEntry{a}, order)
	if err != nil {
		t.Fatal(err)
	}
	if p.Inserts != 1 || p.Deletes != 1 || p.Modifies != 0 {
		t.Fatalf("priority change: %d/%d/%d, want insert+delete", p.Inserts, p.Modifies, p.Deletes)
	}
}

func TestDuplicateDesiredEntriesRefused(t *testing.T) {
	if _, err := Diff([]*p4v1.TableEntry{exact(tVIP, 9, 1, 1), exact(tVIP, 9, 1, 2)}, nil, order); err == nil {
		t.Fatal("duplicate desired keys accepted")
	}
}

func TestDiffSetsSkipsSharedSetsAndCarriesTags(t *testing.T) {
	shared := NewSet([]*p4v1.TableEntry{exact(tSelect, 0, 6, 1), exact(tSelect, 1, 6, 2)}, []string{"pool a", "pool a"})
	old := NewSet([]*p4v1.TableEntry{exact(tVIP, 9, 1, 1), exact(tRules, 4, 3, 1)}, []string{"vip v", "rule r"})
	nu := NewSet([]*p4v1.TableEntry{exact(tVIP, 9, 1, 2), exact(tRules, 5, 3, 1)}, []string{"vip v", "rule s"})
	p, err := DiffSets([]*Set{nu, shared}, []*Set{shared, old}, order)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, u := range p.Updates {
		got = append(got, u.GetType().String()+":"+p.Tags[i])
	}
	if want := "MODIFY:vip v INSERT:rule s DELETE:rule r"; strings.Join(got, " ") != want {
		t.Fatalf("updates %v, want %s", got, want)
	}
	// The same diff over plain entries (no shared set) gives the same updates.
	q, err := Diff(append(append([]*p4v1.TableEntry{}, nu.Entries...), shared.Entries...),
		append(append([]*p4v1.TableEntry{}, shared.Entries...), old.Entries...), order)
	if err != nil || len(q.Updates) != 3 || q.Inserts != 1 || q.Modifies != 1 || q.Deletes != 1 {
		t.Fatalf("Diff: %v %+v", err, q)
	}
}

func TestKeyIgnoresMatchOrderAndActions(t *testing.T) {
	a := &p4v1.TableEntry{TableId: 1, Priority: 3, Match: []*p4v1.FieldMatch{
		{FieldId: 2, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: []byte{1}, Mask: []byte{0xff}}}},
		{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{1, 2}}}}}}
	b := &p4v1.TableEntry{TableId: 1, Priority: 3, Match: []*p4v1.FieldMatch{a.Match[1], a.Match[0]},
		Action: exact(1, 0, 9, 9).Action}
	ka := Key(a)
	kb := Key(b)
	if ka != kb {
		t.Fatal("match order changes the key")
	}
	c := &p4v1.TableEntry{TableId: 1, Priority: 4, Match: b.Match}
	if kc := Key(c); kc == ka {
		t.Fatal("priority is not part of the key")
	}
	// Value bytes that could run into the next field do not collide.
	d := &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{
		{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{1, 0, 0, 0, 2}}}}}}
	e := &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{
		{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{1}}}},
		{FieldId: 2, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{}}}}}}
	if Key(d) == Key(e) {
		t.Fatal("keys collide")
	}
}
