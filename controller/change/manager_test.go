package change_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// doc is one gateway (the agent at addr), a VIP, a base and a gray pool, a
// tenant with two VNIs; the rules are left to the changes.
func doc(addr string) string {
	d := intenttest.Small()
	d.Agent = addr
	d.VIP.Name = "vpc"
	delete(d.Ports, 3)
	d.Pools[0].Backends = intenttest.Backends("base", "b", 1, 2)
	d.Pools[1].Backends = intenttest.Backends("gray", "g", 1, 2)
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}"}
	d.Rules = []string{"{name: keep, match: {vni: 5002, src: 10.0.2.9}, pool: gray}"}
	return strings.Replace(d.YAML(), "gray_rules:", "# the rules\ngray_rules:", 1)
}

// startManager starts an agent and a Manager over a memory store and an
// engine (closed at the test's end) that will manage it once a document names
// it.
func startManager(t *testing.T) (*stack.Agent, store.Store, *change.Manager) {
	t.Helper()
	a := stack.StartAgent(t, stack.AgentConfig{})
	st := store.NewMemory()
	eng, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour, Retry: 50 * time.Millisecond,
		Store: st, Logger: stack.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	m, err := change.New(change.Config{Store: st, Engine: eng, Logger: stack.Logger(t), WaitTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a, st, m
}

// The change pipeline without gRPC: every change is validated, stored with its
// history and applied to a real agent; a rule is added (the document's comments
// kept), rolled back by name and by step; a stale or refused change stores
// nothing; a draining Manager refuses changes.
func TestManagerChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, st, m := startManager(t)
	wait := change.Options{Actor: "t", Wait: true}

	res, err := m.Apply(ctx, []byte("version: 1\ngateways: []\nbogus: 1\n"), wait)
	if err != nil || len(res.Problems) == 0 || res.Applied {
		t.Fatalf("a bad document: %+v, %v", res, err)
	}
	if _, err := st.Current(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused document was stored: %v", err)
	}
	res, err = m.Apply(ctx, []byte(doc(a.Addr)), wait)
	if err != nil || !res.Applied || res.Version != 1 || res.WaitError != "" || len(res.Gateways) != 1 || !res.Gateways[0].InSync {
		t.Fatalf("apply: applied %v version %d wait %q problems %v, %v", res.Applied, res.Version, res.WaitError, res.Problems, err)
	}

	cut, err := m.Cutover(ctx, change.Cutover{Scope: change.ScopeVM, VNI: 5001, Src: "10.0.0.5", Pool: "gray"}, wait)
	if err != nil || !cut.Applied || cut.Rule != "vm-5001-10.0.0.5" || cut.Version != 2 ||
		cut.Summary != "cutover VM 10.0.0.5 in VNI 5001 to pool gray (rule vm-5001-10.0.0.5)" {
		t.Fatalf("cutover: %s applied %v version %d %q problems %v, %v", cut.Rule, cut.Applied, cut.Version, cut.Summary, cut.Problems, err)
	}
	cur, _ := st.Current(ctx)
	if !strings.Contains(string(cur.Intent), "# the rules") || !strings.Contains(string(cur.Intent), "vm-5001-10.0.0.5") {
		t.Fatalf("the stored document lost its comment or the rule:\n%s", cur.Intent)
	}
	again, err := m.Cutover(ctx, change.Cutover{Scope: change.ScopeVM, VNI: 5001, Src: "10.0.0.5", Pool: "gray"}, wait)
	if err != nil || !again.Unchanged || again.Applied {
		t.Fatalf("the same cutover again: %+v, %v", again, err)
	}
	bad, err := m.Cutover(ctx, change.Cutover{Scope: change.ScopeVNI, VNI: 5001, Pool: "nope"}, wait)
	if err != nil || len(bad.Problems) == 0 || bad.Applied {
		t.Fatalf("a cutover to no pool: %+v, %v", bad, err)
	}
	if _, err := m.Cutover(ctx, change.Cutover{Scope: change.ScopeVNI, VNI: 5001, Pool: "gray"},
		change.Options{ExpectedVersion: 1}); !errors.Is(err, change.ErrStale) {
		t.Fatalf("a cutover expecting version 1 at version 2: %v", err)
	}

	rb, err := m.Rollback(ctx, change.RollbackRule, "vm-5001-10.0.0.5", wait)
	if err != nil || !rb.Applied || len(rb.RemovedRules) != 1 || rb.Version != 3 {
		t.Fatalf("rollback rule: %+v, %v", rb, err)
	}
	// A record after the change (a drain) is no change to undo: the step
	// rollback passes over it and undoes the rule's removal (event 3).
	if _, err := st.Record(ctx, store.Record{Actor: "alice", Operation: "drain", Summary: "gateway gw1 drained"}); err != nil {
		t.Fatal(err)
	}
	step, err := m.Rollback(ctx, change.RollbackStep, "", wait)
	if err != nil || !step.Applied || step.Undone != 3 || step.Version != 4 {
		t.Fatalf("rollback step: %+v, %v", step, err)
	}
	if cur, _ := st.Current(ctx); !strings.Contains(string(cur.Intent), "vm-5001-10.0.0.5") {
		t.Fatalf("the step rollback did not restore the rule:\n%s", cur.Intent)
	}
	all, err := m.Rollback(ctx, change.RollbackAll, "", wait)
	if err != nil || !all.Applied || len(all.RemovedRules) != 2 {
		t.Fatalf("rollback all: %+v, %v", all, err)
	}
	evs, err := st.History(ctx, store.Query{Limit: 10})
	if err != nil || len(evs) != 6 || evs[0].Operation != change.OpRollbackAll || evs[5].Operation != change.OpApply || evs[0].Actor != "t" || !evs[2].Record {
		t.Fatalf("history: %+v, %v", evs, err)
	}

	m.Drain()
	if _, err := m.Apply(ctx, []byte(doc(a.Addr)), wait); !errors.Is(err, change.ErrDraining) {
		t.Fatalf("apply while draining: %v", err)
	}
}
