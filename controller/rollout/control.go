package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graygw/graygw/controller/store"
)

// ErrStopped: the controller is draining; its rollouts are stopped (the next
// controller process reports and resumes them).
var ErrStopped = errors.New("controller draining: rollouts are stopped (the next controller process reports and resumes them)")

// Control runs the controller's rollouts: one Runner over the controller (the
// change pipeline in process) and its store, who started each rollout (its
// changes are recorded as "rollout NAME (started by WHO)"), and the stop of a
// draining process. The calls that act are serialized.
type Control struct {
	ctrl   Controller
	runner *Runner
	log    *slog.Logger
	rec    Recorder // nil: decisions are only logged

	mu      sync.Mutex // serializes the calls that act, and Stop
	stopped bool
	done    chan struct{} // closed by Stop: watches end

	actorMu sync.Mutex
	actors  map[string]string // plan name -> "rollout NAME (started by WHO)"
}

// NewControl returns the rollouts of ctrl, whose progress store keeps. When
// the store is also a Recorder (ControllerStore), every decision of a rollout
// and every operator action on it is recorded in the controller's history.
func NewControl(ctrl Controller, store Store, log *slog.Logger) *Control {
	if log == nil {
		log = slog.Default()
	}
	c := &Control{ctrl: ctrl, log: log, done: make(chan struct{}), actors: map[string]string{}}
	c.rec, _ = store.(Recorder)
	c.runner = NewRunner(ctrl, store, Options{Decision: func(d Decision) { c.record(c.Actor(), d) }})
	return c
}

// record writes d to the history by actor. A rollout goes on when it cannot
// be recorded (its progress is saved): the failure is logged.
func (c *Control) record(actor string, d Decision) {
	c.log.Info(d.Operation, "summary", d.Summary, "reason", d.Reason, "actor", actor)
	if c.rec == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.rec.Record(ctx, store.Record{Actor: actor, Operation: d.Operation, Summary: d.Summary, Reason: d.Reason}); err != nil {
		c.log.Warn("rollout: decision not recorded in the history", "operation", d.Operation, "summary", d.Summary, "err", err)
	}
}

// Actor is who the current rollout's changes are recorded as: "rollout NAME
// (started by WHO)", or "rollout NAME" for a rollout a restarted controller
// resumed ("rollout" when there is none).
func (c *Control) Actor() string {
	p, err := c.runner.Status()
	if err != nil {
		return "rollout"
	}
	c.actorMu.Lock()
	defer c.actorMu.Unlock()
	if a := c.actors[p.Plan.Name]; a != "" {
		return a
	}
	return "rollout " + p.Plan.Name
}

// Recover loads the rollout an earlier process left: a running one is
// reported paused at the step it was in (Runner.Recover). It logs what it
// found.
func (c *Control) Recover(ctx context.Context) {
	p, err := c.runner.Recover(ctx)
	switch {
	case errors.Is(err, ErrNoRollout):
	case err != nil:
		c.log.Error("rollout: the stored progress cannot be used", "err", err)
	default:
		c.log.Info("rollout recovered from the store", "rollout", p.Plan.Name, "state", p.State, "step", p.Step,
			"total", p.Total, "message", p.Message)
		if p.State == StatePaused && strings.HasPrefix(p.Message, "controller restarted") {
			c.record("rollout "+p.Plan.Name, Decision{Operation: "rollout-paused",
				Summary: fmt.Sprintf("rollout %s paused at step %d of %d", p.Plan.Name, p.Step, p.Total), Reason: p.Message})
		}
	}
}

// Stop makes the calls that act refuse (ErrStopped), ends the watches, and
// stops the rollout goroutine where it is: the step in flight stays recorded
// as it is, for the next process to report and resume.
func (c *Control) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	close(c.done)
	c.runner.Close()
}

// Start starts a rollout of spec, started by actor (Runner.Start), or with dry
// only checks it (Check).
func (c *Control) Start(ctx context.Context, spec *PlanSpec, dry bool, actor string) (*Progress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, ErrStopped
	}
	if dry {
		return Check(ctx, c.ctrl, spec)
	}
	c.actorMu.Lock()
	c.actors[spec.Name] = fmt.Sprintf("rollout %s (started by %s)", spec.Name, actor)
	c.actorMu.Unlock()
	// Recorded before the first step runs: the history never shows a step
	// of a rollout before its start.
	return c.runner.StartThen(ctx, spec, func(p *Progress) {
		c.record(actor, Decision{Operation: "rollout-started",
			Summary: fmt.Sprintf("rollout %s started: %d steps to pool %s", spec.Name, p.Total, spec.Pool),
			Reason:  fmt.Sprintf("precheck passed: %d probes answered by the base side", len(p.Precheck))})
	})
}

// Status returns the current rollout's progress (Runner.Status).
func (c *Control) Status() (*Progress, error) { return c.runner.Status() }

// Pause pauses the current rollout after its step (Runner.Pause).
func (c *Control) Pause(ctx context.Context, actor string) (*Progress, error) {
	return c.act(ctx, "pause", actor, c.runner.Pause)
}

// Resume resumes the current rollout (Runner.Resume).
func (c *Control) Resume(ctx context.Context, actor string) (*Progress, error) {
	return c.act(ctx, "resume", actor, c.runner.Resume)
}

// Abort aborts the current rollout (Runner.Abort).
func (c *Control) Abort(ctx context.Context, actor string) (*Progress, error) {
	return c.act(ctx, "abort", actor, c.runner.Abort)
}

func (c *Control) act(ctx context.Context, what, actor string, act func(context.Context) (*Progress, error)) (*Progress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, ErrStopped
	}
	p, err := act(ctx)
	if err != nil {
		return nil, err
	}
	c.record(actor, Decision{Operation: "rollout-" + what,
		Summary: fmt.Sprintf("rollout %s: %s at step %d of %d (%s)", p.Plan.Name, what, p.Step, p.Total, p.State), Reason: p.Message})
	return p, nil
}

// Watch calls send with the current progress and every update while the
// rollout runs; it returns nil once it no longer runs, send's error, ctx's, or
// ErrStopped when Stop ends it.
func (c *Control) Watch(ctx context.Context, send func(*Progress) error) error {
	ch, cancel := c.runner.Subscribe()
	defer cancel()
	p, err := c.runner.Status()
	if err != nil {
		return err
	}
	for {
		if p.State.Finished() {
			// The end is sent once its decision is in the history: a
			// caller of `rollout start --wait` reads it there next.
			if err := c.runner.Settle(ctx); err != nil {
				return err
			}
		}
		if err := send(p); err != nil {
			return err
		}
		if p.State != StateRunning {
			return nil
		}
		select {
		case p = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrStopped
		}
	}
}

// Collector returns the rollouts' Prometheus metrics (Runner.Collector).
func (c *Control) Collector() prometheus.Collector { return c.runner.Collector() }
