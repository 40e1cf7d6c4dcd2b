package rollout

import (
	"errors"
	"testing"
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
