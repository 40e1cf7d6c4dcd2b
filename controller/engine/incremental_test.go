package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// twoRules is the test intent with a second VM rule, and the first rule's pool
// changed from gray to base.
func twoRules(addr string) string {
	doc := intentYAML([]string{addr}, threeBackends())
	doc = strings.Replace(doc, "    pool: gray\n", "    pool: base\n", 1)
	return doc + `  - name: vm-10.0.0.6
    match: {vip: vpc, vni: 5001, src: 10.0.0.6}
    pool: gray
`
}

// An intent change on an in-sync session is written as the difference between
// the old and the new desired entries: exactly the changed entries, in
// make-before-break order, and nothing is read back.
func TestIntentChangeIsIncremental(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, store.NewMemory(), 10)
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	st := stack.WaitVersion(t, e, 1)[0]
	reads, written := a.reads.Load(), st.EntriesWritten

	p2, err := e.Prepare(load(t, twoRules(a.addr)))
	if err != nil {
		t.Fatal(err)
	}
	plan := e.ChangePlan(p2)
	if len(plan) != 1 || plan[0].Inserts != 1 || plan[0].Modifies != 1 || plan[0].Deletes != 0 || plan[0].Reachable {
		t.Fatalf("change plan %+v", plan)
	}
	if got := a.reads.Load(); got != reads {
		t.Fatalf("ChangePlan read the gateway back (%d reads)", got-reads)
	}
	var got []string
	for _, c := range plan[0].Changes {
		got = append(got, c.Op+" "+c.Origin)
	}
	if strings.Join(got, ", ") != "MODIFY rule vm-10.0.0.5, INSERT rule vm-10.0.0.6" {
		t.Fatalf("changes %v", got)
	}
	if err := e.Commit(p2, 2); err != nil {
		t.Fatal(err)
	}
	st = stack.WaitVersion(t, e, 2)[0]
	if st.LastWritten != 2 || st.EntriesWritten != written+2 {
		t.Fatalf("incremental pass wrote %d (total %d, before %d), want 2", st.LastWritten, st.EntriesWritten, written)
	}
	if got := a.reads.Load(); got != reads {
		t.Fatalf("the incremental pass read the gateway back (%d reads)", got-reads)
	}
	sameEntries(t, a.entries(t), desired(t, p2.Result(), "gw1"))

	// A pool change: the new version written complete, then the repoint, then
	// the old version deleted; still without a read-back.
	reads = a.reads.Load()
	p3 := stack.Commit(t, e, load(t, strings.Replace(twoRules(a.addr), "weight: 1}\n", "weight: 3}\n", 1)), 3)
	st = stack.WaitVersion(t, e, 3)[0]
	if got := a.reads.Load(); got != reads {
		t.Fatalf("the incremental pass read the gateway back (%d reads)", got-reads)
	}
	// 4096 buckets + pool_hash of the new version, the VIP and one rule
	// repointed, 4096 + 1 deleted.
	if want := 2*4097 + 2; st.LastWritten != want {
		t.Fatalf("pool flip wrote %d updates, want %d", st.LastWritten, want)
	}
	sameEntries(t, a.entries(t), desired(t, p3.Result(), "gw1"))
}

// Drift (entries changed behind the controller's back on the same session) is
// invisible to incremental passes; the periodic pass reads back and repairs it.
func TestDriftRepairedByThePeriodicPass(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngineEvery(t, 400*time.Millisecond)
	p1 := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, e, 1)

	dropRule(t, a, p1)
	before := e.Status()[0].Reconciles
	// The periodic pass puts it back.
	st := waitStatus(t, e, "repaired by a periodic pass", func(s engine.GatewayStatus) bool {
		return s.Reconciles > before && s.LastWritten == 1 && s.InSync
	})
	if st.ForeignRemoved != 0 {
		t.Fatalf("status %+v", st)
	}
	sameEntries(t, a.entries(t), desired(t, p1.Result(), "gw1"))
}

// Without the periodic pass, a drift survives incremental passes and a full
// pass (Kick) repairs it along with the change.
func TestDriftRepairedByAFullPass(t *testing.T) {
	a, e, p1, _ := threeBackendsApplied(t)
	dropRule(t, a, p1)
	// An incremental change (a second rule) does not see the drift...
	doc2 := intentYAML([]string{a.addr}, threeBackends()) + `  - name: vm-10.0.0.6
    match: {vip: vpc, vni: 5001, src: 10.0.0.6}
    pool: gray
`
	p2 := stack.Commit(t, e, load(t, doc2), 2)
	if st := stack.WaitVersion(t, e, 2)[0]; st.LastWritten != 1 {
		t.Fatalf("incremental pass wrote %d, want 1", st.LastWritten)
	}
	if n, want := len(a.entries(t)), len(desired(t, p2.Result(), "gw1")); n != want-1 {
		t.Fatalf("target holds %d entries, want %d (the drifted rule still missing)", n, want-1)
	}
	// ...a full pass repairs it.
	if st := pass(t, e); st.LastWritten != 1 || !st.InSync {
		t.Fatalf("full pass: %+v", st)
	}
	sameEntries(t, a.entries(t), desired(t, p2.Result(), "gw1"))
}

// Intent changes more frequent than the interval do not postpone the periodic
// full pass: incremental passes leave its timer alone.
func TestPeriodicPassRunsUnderAStreamOfChanges(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngineEvery(t, 500*time.Millisecond)
	base := intentYAML([]string{a.addr}, threeBackends())
	p := stack.Commit(t, e, load(t, base), 1)
	stack.WaitVersion(t, e, 1)
	dropRule(t, a, p)
	// A change every 100 ms (a second rule toggled between the pools) until
	// the drift is repaired, for at most 5 s.
	deadline := time.Now().Add(5 * time.Second)
	for v := uint64(2); ; v++ {
		pool := []string{"gray", "base"}[v%2]
		p = stack.Commit(t, e, load(t, base+"  - name: vm-10.0.0.6\n    match: {vip: vpc, vni: 5001, src: 10.0.0.6}\n    pool: "+pool+"\n"), v)
		stack.WaitVersion(t, e, v)
		if got, want := a.entries(t), desired(t, p.Result(), "gw1"); len(got) == len(want) {
			sameEntries(t, got, want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the drift was not repaired while changes kept coming")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dropRule makes drift: p's gray rule deleted on the agent's gateway gw1 with
// the engine's own election id, so the engine's session sees no change.
func dropRule(t *testing.T, a *agent, p *engine.Prepared) {
	t.Helper()
	var rule *p4v1.TableEntry
	for _, te := range desired(t, p.Result(), "gw1") {
		if te.GetPriority() != 0 {
			rule = te
		}
	}
	a.mu.Lock()
	srv := a.srv
	a.mu.Unlock()
	_, err := srv.Write(ctx(t), &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 10},
		Updates: []*p4v1.Update{{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{
			TableEntry: &p4v1.TableEntry{TableId: rule.TableId, Match: rule.Match, Priority: rule.Priority}}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// newEngineEvery is an engine (election id 10) whose periodic full pass runs
// every interval.
func newEngineEvery(t *testing.T, interval time.Duration) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: interval,
		Retry: 50 * time.Millisecond, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}
