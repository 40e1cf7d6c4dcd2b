package engine_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// SetExcluded puts the intent in force again, same version, with the excluded
// member's buckets on the others: the gateway holds exactly the compiled
// entries, the buckets that changed backend are exactly the excluded one's,
// and clearing the exclusion gives the operator's buckets back, all of them.
func TestSetExcludedMovesOnlyTheExcludedBuckets(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, nil, 10)
	doc := strings.Replace(intentYAML([]string{a.addr}, threeBackends()), "    cluster: base\n", "    cluster: base\n    health_failover: true\n", 1)
	p1 := stack.Commit(t, e, load(t, doc), 1)
	stack.WaitVersion(t, e, 1)
	op, _ := p1.Result().Pool("base")
	held := func() map[uint16]uint16 {
		// The pool's installed version, whichever slot it is in.
		entries := a.entries(t)
		for _, id := range []uint16{op.BaseID, op.BaseID + compile.SlotOffset} {
			if m := installed(t, entries, id); len(m) > 0 {
				return m
			}
		}
		t.Fatal("pool base not installed")
		return nil
	}
	before := held()

	synced := func(what string) {
		n := e.Status()[0].Reconciles
		waitStatus(t, e, what, func(s engine.GatewayStatus) bool { return s.Reconciles > n && s.InSync && s.Version == 1 })
	}
	changed, err := e.SetExcluded(map[string][]string{"base": {"base-2"}})
	if err != nil || !changed {
		t.Fatalf("SetExcluded: %v %v", changed, err)
	}
	synced("failed over")
	during := held()
	moved := 0
	for b, was := range before {
		now := during[b]
		switch {
		case now == 12:
			t.Fatalf("bucket %d still on the excluded base-2", b)
		case was != 12 && now != was:
			t.Fatalf("bucket %d moved from backend %d to %d", b, was, now)
		case was == 12:
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("base-2 had no bucket")
	}
	if again, _ := e.SetExcluded(map[string][]string{"base": {"base-2"}}); again {
		t.Error("the same exclusion again changed something")
	}
	if _, err := e.SetExcluded(nil); err != nil {
		t.Fatal(err)
	}
	synced("restored")
	if after := held(); !maps.Equal(after, before) {
		t.Fatal("after the restoration the buckets are not the operator's")
	}
	t.Logf("%d buckets of base-2 failed over and returned", moved)
}

// A controller restarted during a failover finds the operator's table in the
// store: the pool compiles back to exactly the operator's buckets (here at
// once, the new process having no exclusions yet).
func TestOperatorTableSurvivesRestart(t *testing.T) {
	a := startAgent(t, nil)
	st := store.NewMemory()
	e := newEngine(t, st, 10)
	doc := strings.Replace(intentYAML([]string{a.addr}, threeBackends()), "    cluster: base\n", "    cluster: base\n    health_failover: true\n", 1)
	in := load(t, doc)
	p1 := stack.Commit(t, e, in, 1)
	stack.WaitVersion(t, e, 1)
	op, _ := p1.Result().Pool("base")
	if _, err := e.SetExcluded(map[string][]string{"base": {"base-2"}}); err != nil {
		t.Fatal(err)
	}
	n := e.Status()[0].Reconciles
	waitStatus(t, e, "failed over", func(s engine.GatewayStatus) bool { return s.Reconciles > n && s.InSync })
	e.Close(context.Background())

	e2 := newEngine(t, st, 11)
	p2 := stack.Commit(t, e2, in, 1)
	pool, _ := p2.Result().Pool("base")
	if !pool.Table.Equal(op.Table) || pool.Excluded != nil {
		t.Fatalf("after the restart the pool is not the operator's table (%d buckets differ)", len(op.Table.Diff(pool.Table)))
	}
}
