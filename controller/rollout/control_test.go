package rollout

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/store"
)

// Control names the rollout's changes after who started it, watches it to its
// end, and once stopped refuses every call that acts and ends its watches.
func TestControl(t *testing.T) {
	ctx := ctxT(t)
	c := NewControl(newSim(), &MemoryStore{}, nil)
	if a := c.Actor(); a != "rollout" {
		t.Fatalf("actor with no rollout: %q", a)
	}
	if p, err := c.Start(ctx, mustSpec(t, twoVPCs), true, "alice"); err != nil || p.State != StateDryRun {
		t.Fatalf("dry run: %+v, %v", p, err)
	}
	if _, err := c.Status(); !errors.Is(err, ErrNoRollout) {
		t.Fatalf("a dry run started a rollout: %v", err)
	}
	if _, err := c.Start(ctx, mustSpec(t, twoVPCs), false, "alice (uid=1000)"); err != nil {
		t.Fatal(err)
	}
	if a := c.Actor(); a != "rollout r2 (started by alice (uid=1000))" {
		t.Fatalf("actor %q", a)
	}
	var last *Progress
	if err := c.Watch(ctx, func(p *Progress) error { last = p; return nil }); err != nil || last.State != StateCompleted {
		t.Fatalf("watch ended with %v at %+v", err, last)
	}
	c.Stop()
	c.Stop() // idempotent
	if _, err := c.Pause(ctx, "bob"); !errors.Is(err, ErrStopped) {
		t.Fatalf("pause after Stop: %v", err)
	}
	if _, err := c.Start(ctx, mustSpec(t, twoVPCs), false, "bob"); !errors.Is(err, ErrStopped) {
		t.Fatalf("start after Stop: %v", err)
	}
	if p, err := c.Status(); err != nil || p.State != StateCompleted {
		t.Fatalf("status after Stop: %+v, %v", p, err)
	}
}

// Control records every decision and operator action in the controller's
// history, by who: the start (alice), each step's verdict with its gates
// (by the rollout), the failed step's rollback, the resume (bob), a pause
// asked for (carol) and reached, the abort and its rollback.
func TestControlRecordsDecisions(t *testing.T) {
	ctx := ctxT(t)
	hist := store.NewMemory()
	c := newCountingSim()
	c.dropOn[5002] = "NO_BACKEND"
	release := make(chan struct{})
	c.block = func(kind string, _ int) {
		if kind == "cutover" && c.cutovers == 3 {
			<-release // hold step 3's second cutover (its retry)
		}
	}
	ctl := NewControl(c, ControllerStore{Store: hist}, nil)
	defer ctl.Stop()
	if _, err := ctl.Start(ctx, mustSpec(t, twoVPCs+gated), false, "alice"); err != nil {
		t.Fatal(err)
	}
	if p, _ := ctl.runner.Wait(ctx); p.State != StateFailed || p.Step != 3 {
		t.Fatalf("state %s step %d: %s", p.State, p.Step, p.Error)
	}
	c.mu.Lock()
	delete(c.dropOn, 5002)
	c.mu.Unlock()
	if _, err := ctl.Resume(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctl.runner, func(p *Progress) bool { return p.Step == 3 && p.Steps[2].State == StepApplying })
	if _, err := ctl.Pause(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := ctl.runner.WaitState(ctx, StatePaused); err != nil {
		t.Fatal(err)
	}
	// The pause is recorded just after it is saved: wait for it, so the
	// abort comes after it in the history.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h, _ := hist.History(ctx, store.Query{Limit: 1})
		if len(h) == 1 && h[0].Operation == "rollout-paused" || time.Now().After(deadline) {
			break
		}
	}
	if _, err := ctl.Abort(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	if p, _ := ctl.runner.Wait(ctx); p.State != StateAborted {
		t.Fatalf("after the abort: %s %s", p.State, p.Error)
	}

	evs, err := hist.History(ctx, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	const by = "rollout r2 (started by alice)"
	want := []struct{ actor, op, summary, reason string }{
		{"alice", "rollout-started", "rollout r2 started: 4 steps to pool gray-router", "precheck passed"},
		{by, "rollout-step-passed", "rollout r2 step 1 of 4 (vm 5001/192.168.1.5) passed (rule r2.5001.192.168.1.5)",
			"probes ok; gates: no_new_drops ok (no new NO_BACKEND, TTL_EXPIRED); rule_traffic ok (rule r2.5001.192.168.1.5 matched "},
		{by, "rollout-step-passed", "rollout r2 step 2 of 4 (vni 5001) passed", "rule_traffic ok"},
		{by, "rollout-step-failed", "rollout r2 step 3 of 4 (vm 5002/192.168.2.5) failed and was rolled back",
			"gate no_new_drops: new drops during the step: NO_BACKEND +"},
		{"bob", "rollout-resume", "rollout r2: resume at step 3 of 4 (running)", "retrying step 3"},
		{"carol", "rollout-pause", "rollout r2: pause at step 3 of 4 (running)", "pause requested"},
		{by, "rollout-step-passed", "rollout r2 step 3 of 4", "no_new_drops ok"},
		{by, "rollout-paused", "rollout r2 paused before step 4 of 4", "the operator asked for a pause"},
		{"dave", "rollout-abort", "rollout r2: abort at step 3 of 4 (paused)", "abort requested"},
		{by, "rollout-rolled-back", "rollout r2 aborted: 3 steps rolled back", ""},
	}
	if len(evs) != len(want) {
		for _, e := range evs {
			t.Logf("%d %s %s: %s (%s)", e.Seq, e.Actor, e.Operation, e.Summary, e.Reason)
		}
		t.Fatalf("%d history entries, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if !e.Record || e.Actor != w.actor || e.Operation != w.op || !strings.Contains(e.Summary, w.summary) || !strings.Contains(e.Reason, w.reason) {
			t.Errorf("history[%d] = %s by %q: %q (reason %q)\n want %s by %q: %q... (reason ...%q...)", i, e.Operation, e.Actor, e.Summary, e.Reason, w.op, w.actor, w.summary, w.reason)
		}
	}
	if t.Failed() {
		for _, e := range evs {
			t.Logf("%d %s %s: %s (%s)", e.Seq, e.Actor, e.Operation, e.Summary, e.Reason)
		}
	}
}

// slowRecords is a rollout store whose history write of one operation waits
// for a gate (a slow etcd, a busy disk).
type slowRecords struct {
	ControllerStore
	op   string
	gate chan struct{}
}

func (s slowRecords) Record(ctx context.Context, r store.Record) error {
	if r.Operation == s.op {
		<-s.gate
	}
	return s.ControllerStore.Record(ctx, r)
}

// TestWatchEndsAfterTheRecord: a watch (`rollout start --wait`) is told of the
// end only once the end's decision is in the history, so the history read
// next holds it.
func TestWatchEndsAfterTheRecord(t *testing.T) {
	ctx := ctxT(t)
	hist := store.NewMemory()
	st := slowRecords{ControllerStore{Store: hist}, "rollout-completed", make(chan struct{})}
	ctl := NewControl(newSim(), st, nil)
	defer ctl.Stop()
	if _, err := ctl.Start(ctx, mustSpec(t, twoVPCs), false, "alice"); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(100 * time.Millisecond); close(st.gate) }()
	var last *Progress
	if err := ctl.Watch(ctx, func(p *Progress) error { last = p; return nil }); err != nil {
		t.Fatal(err)
	}
	if last.State != StateCompleted {
		t.Fatalf("watch ended at %s", last.State)
	}
	h, err := hist.History(ctx, store.Query{Limit: 1})
	if err != nil || len(h) != 1 || h[0].Operation != "rollout-completed" {
		t.Fatalf("the history's newest event when the watch ended: %+v %v", h, err)
	}
}

// What StartThen's callback records comes before the rollout's first
// decision: its goroutine takes no step until the callback has returned
// (Control records "rollout started" there), however slow the record is.
func TestStartThenBeforeTheFirstStep(t *testing.T) {
	ctx := ctxT(t)
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	r := NewRunner(newSim(), &MemoryStore{}, Options{Decision: func(d Decision) { note(d.Operation) }})
	if _, err := r.StartThen(ctx, mustSpec(t, twoVPCs), func(*Progress) {
		time.Sleep(100 * time.Millisecond) // a slow history write
		note("started")
	}); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Wait(ctx); p.State != StateCompleted {
		t.Fatalf("state %s: %s", p.State, p.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 2 || order[0] != "started" {
		t.Fatalf("decisions in order %v, want the start first", order)
	}
}
