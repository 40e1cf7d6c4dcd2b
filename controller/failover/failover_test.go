package failover

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/maglev"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func pool(down ...string) []Pool {
	p := Pool{Name: "p"}
	for _, b := range []string{"b1", "b2", "b3"} {
		p.Members = append(p.Members, Member{Backend: b, Weight: 1, Down: slices.Contains(down, b)})
	}
	return []Pool{p}
}

func kinds(evs []Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("%s:%s ", e.Kind, e.Backend)
	}
	return s
}

func TestHoldDownBothWays(t *testing.T) {
	d := New(Config{HoldDown: 3 * time.Second})
	steps := []struct {
		at       time.Duration
		down     []string
		excluded []string
		events   string
	}{
		{0, nil, nil, ""},
		{1 * time.Second, []string{"b2"}, nil, ""},                        // down: the hold-down starts
		{3 * time.Second, []string{"b2"}, nil, ""},                        // 2 s down: not yet
		{4 * time.Second, []string{"b2"}, []string{"b2"}, "excluded:b2 "}, // 3 s down
		{5 * time.Second, nil, []string{"b2"}, ""},                        // up again: not yet
		{7 * time.Second, []string{"b2"}, []string{"b2"}, ""},             // a blip down: the up hold-down restarts
		{8 * time.Second, nil, []string{"b2"}, ""},
		{10 * time.Second, nil, []string{"b2"}, ""},
		{11 * time.Second, nil, nil, "restored:b2 "}, // 3 s up
	}
	for _, s := range steps {
		ex, evs := d.Update(t0.Add(s.at), pool(s.down...))
		if !slices.Equal(ex["p"], s.excluded) || kinds(evs) != s.events {
			t.Errorf("at %v (down %v): excluded %v events %q, want %v %q", s.at, s.down, ex["p"], kinds(evs), s.excluded, s.events)
		}
	}
}

// A pool never loses its last serving backends to health: with b1 excluded,
// b2 and b3 both going down keeps them (once reported), and when b1 recovers
// first it is restored, after which the down ones may go.
func TestNeverZero(t *testing.T) {
	d := New(Config{HoldDown: time.Second})
	d.Update(t0, pool())
	d.Update(t0.Add(1*time.Second), pool("b1"))
	if ex, _ := d.Update(t0.Add(2*time.Second), pool("b1")); !slices.Equal(ex["p"], []string{"b1"}) {
		t.Fatalf("b1 not excluded: %v", ex)
	}
	d.Update(t0.Add(3*time.Second), pool("b1", "b2", "b3"))
	ex, evs := d.Update(t0.Add(5*time.Second), pool("b1", "b2", "b3"))
	if !slices.Equal(ex["p"], []string{"b1"}) || kinds(evs) != "kept:b2 kept:b3 " {
		t.Fatalf("all down: excluded %v events %q, want [b1] and b2, b3 kept", ex["p"], kinds(evs))
	}
	if _, evs := d.Update(t0.Add(6*time.Second), pool("b1", "b2", "b3")); len(evs) != 0 {
		t.Errorf("kept reported again: %v", evs)
	}
	// b1 recovers: restored; then b2 and b3 are still down and b1 serves: out.
	d.Update(t0.Add(7*time.Second), pool("b2", "b3"))
	ex, evs = d.Update(t0.Add(8*time.Second), pool("b2", "b3"))
	if !slices.Equal(ex["p"], []string{"b2", "b3"}) || kinds(evs) != "restored:b1 excluded:b2 excluded:b3 " {
		t.Errorf("b1 back: excluded %v events %q", ex["p"], kinds(evs))
	}
}

// At most K changes a minute per pool: a flapping backend stops moving
// buckets until the window has room, and each change that waits is reported
// once.
func TestRateLimit(t *testing.T) {
	d := New(Config{HoldDown: time.Second, MaxChangesPerMinute: 2})
	now := t0
	d.Update(now, pool())
	var all []Event
	for i := range 6 { // down 2 s, up 2 s, three times: 6 changes wanted
		down := []string(nil)
		if i%2 == 0 {
			down = []string{"b3"}
		}
		for range 2 {
			now = now.Add(time.Second)
			_, evs := d.Update(now, pool(down...))
			all = append(all, evs...)
		}
	}
	// Two changes; the third and fifth (exclusions) wait, each reported once.
	if got := kinds(all); got != "excluded:b3 restored:b3 deferred:b3 deferred:b3 " {
		t.Errorf("flapping within a minute: %q, want 2 changes and two deferrals", got)
	}
	// A minute after the first change there is room again: b3 (down now) goes.
	d.Update(t0.Add(61*time.Second), pool("b3"))
	ex, evs := d.Update(t0.Add(62*time.Second), pool("b3"))
	if !slices.Equal(ex["p"], []string{"b3"}) || kinds(evs) != "excluded:b3 " {
		t.Errorf("after the window: excluded %v events %q", ex["p"], kinds(evs))
	}
}

// Pools are independent; a member at weight 0 is the operator's drain, not
// health's; a pool dropped from the list is forgotten.
func TestPoolsAndWeights(t *testing.T) {
	d := New(Config{HoldDown: time.Second})
	two := []Pool{{Name: "a", Members: []Member{{"x", 1, true}, {"y", 1, false}}},
		{Name: "b", Members: []Member{{"x", 0, true}, {"z", 1, false}}}}
	d.Update(t0, two)
	ex, _ := d.Update(t0.Add(time.Second), two)
	if !slices.Equal(ex["a"], []string{"x"}) || ex["b"] != nil {
		t.Errorf("excluded %v, want x in a only", ex)
	}
	ex, _ = d.Update(t0.Add(2*time.Second), two[1:])
	if len(ex) != 0 {
		t.Errorf("pool a dropped: excluded %v", ex)
	}
}

// The tables: excluding a backend moves exactly its buckets, to the others;
// excluding a second moves only the second's; restoring gives the operator's
// table back, so exactly the buckets each lost return and no other moves.
func TestTableMinimalDisruption(t *testing.T) {
	var members []maglev.Backend
	for i := range 7 {
		members = append(members, maglev.Backend{ID: fmt.Sprintf("be-%d", i), Weight: uint32(1 + i%3)})
	}
	op, err := maglev.Build(members, maglev.DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	table := func(excluded ...string) *maglev.Table {
		t.Helper()
		tb, err := Table(op, members, excluded)
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	owned := func(tb *maglev.Table, id string) []int {
		var out []int
		for b := range tb.Size() {
			if tb.Backend(b) == id {
				out = append(out, b)
			}
		}
		return out
	}
	one := table("be-3")
	if moved, lost := op.Diff(one), owned(op, "be-3"); !slices.Equal(moved, lost) || len(owned(one, "be-3")) != 0 {
		t.Fatalf("excluding be-3 moved %d buckets, want exactly its %d (and none left to it)", len(moved), len(lost))
	}
	two := table("be-3", "be-5")
	// Only buckets be-3 or be-5 had in the operator's table move (some of
	// be-3's, failed over already, may move again): no healthy backend's own.
	for _, b := range one.Diff(two) {
		if o := op.Backend(b); o != "be-3" && o != "be-5" {
			t.Fatalf("excluding be-5 too moved bucket %d of %s", b, o)
		}
	}
	for _, b := range owned(op, "be-5") {
		if two.Backend(b) == "be-5" || two.Backend(b) == "be-3" {
			t.Fatalf("bucket %d still on an excluded backend", b)
		}
	}
	back := table()
	if !back.Equal(op) {
		t.Fatal("with nothing excluded the table is not the operator's")
	}
	// From two excluded to none: the buckets that move are exactly those
	// be-3 and be-5 had in the operator's table.
	want := append(owned(op, "be-3"), owned(op, "be-5")...)
	slices.Sort(want)
	if got := two.Diff(back); !slices.Equal(got, want) {
		t.Errorf("restoring both moved %d buckets, want exactly their %d", len(got), len(want))
	}
	// One back: be-3's buckets return to it; the rest of be-5's failover
	// stays. Only buckets be-3 owned, or be-5 owned (some of which went to
	// be-3 while both were out), move.
	onlyFive := table("be-5")
	for _, b := range two.Diff(onlyFive) {
		if o := op.Backend(b); o != "be-3" && o != "be-5" {
			t.Errorf("restoring be-3 moved bucket %d of %s", b, o)
		}
	}
	for _, b := range owned(op, "be-3") {
		if onlyFive.Backend(b) != "be-3" {
			t.Errorf("bucket %d not back on be-3", b)
		}
	}
}
