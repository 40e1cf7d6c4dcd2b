package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/graygw/graygw/controller/store"
)

// Decision is one thing a rollout decided or was told, for the controller's
// history (a store record, docs/rollout.md "In the history"): a step passed or
// failed (with its gates' verdicts), steps rolled back, a pause reached, the
// rollout completed or failed.
type Decision struct {
	// Operation is "rollout-" and what: step-passed, step-failed,
	// rolled-back, paused, completed, failed (the Runner's); started, pause,
	// resume, abort (the operator's, recorded by Control).
	Operation string
	// Summary says what, in a line, naming the rollout and the step.
	Summary string
	// Reason says why: the probes' and gates' verdicts, the error.
	Reason string
}

// Recorder is implemented by a progress Store that also keeps the
// controller's history (ControllerStore): Control records the rollout's
// decisions there.
type Recorder interface {
	Record(ctx context.Context, r store.Record) error
}

// Record implements Recorder: r goes to the store's history.
func (s ControllerStore) Record(ctx context.Context, r store.Record) error {
	_, err := s.Store.Record(ctx, r)
	return err
}

// decide hands d to Options.Decision. Never call it with r.mu held (the
// callback may read the progress).
func (r *Runner) decide(op, summary, reason string) {
	if r.opts.Decision != nil {
		r.opts.Decision(Decision{Operation: "rollout-" + op, Summary: summary, Reason: reason})
	}
}

// gatesText describes every gate's verdict in a line: "gates: rule_traffic
// ok (rule r matched 9 packets); no_new_drops FAILED (...)".
func gatesText(gs []GateResult) string {
	if len(gs) == 0 {
		return ""
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		v := "ok"
		if !g.OK {
			v = "FAILED"
		}
		parts[i] = fmt.Sprintf("%s %s (%s)", g.Gate, v, g.Detail)
	}
	return "gates: " + strings.Join(parts, "; ")
}

// joinReason joins the non-empty parts of a reason with "; ".
func joinReason(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
