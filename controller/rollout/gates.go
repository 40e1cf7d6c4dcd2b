package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/graygw/graygw/pipeline"
)

// CounterSource is implemented by a Controller that reads the gateways'
// counters, summed over the gateways. A plan's counter gates need it.
type CounterSource interface {
	// Drops returns the packets dropped so far, by drop reason name.
	Drops(ctx context.Context) (map[string]uint64, error)
	// RulePackets returns the packets the gray rule named rule has matched.
	RulePackets(ctx context.Context, rule string) (uint64, error)
}

// HealthSource is implemented by a Controller that knows the backends'
// health checks. The pool_healthy gate needs it.
type HealthSource interface {
	// Unhealthy returns the backends of pool (weight above 0) that health
	// checks declare down, with why; none when the pool is healthy.
	Unhealthy(ctx context.Context, pool string) ([]string, error)
}

// ErrGate: a gate of the plan did not pass (the step is rolled back).
var ErrGate = errors.New("rollout: gate failed")

// GatesSpec are the checks a step must pass besides its probes
// (docs/rollout.md).
type GatesSpec struct {
	// NoNewDrops names drop reasons (docs/pipeline.md §9) that must not
	// count a packet more at the end of a step (after its probes and bake)
	// than before its cutover.
	NoNewDrops []string `yaml:"no_new_drops,omitempty" json:"no_new_drops,omitempty"`
	// RuleTraffic: the step's gray rule must have matched packets by the end
	// of the step (its probes pass through it): the gateways really use it.
	RuleTraffic bool `yaml:"rule_traffic,omitempty" json:"rule_traffic,omitempty"`
	// PoolHealthy: at the end of each step no backend of the plan's pool may
	// be down by the controller's health checks.
	PoolHealthy bool `yaml:"pool_healthy,omitempty" json:"pool_healthy,omitempty"`
}

// GateResult is one gate's verdict on one step.
type GateResult struct {
	Gate   string    `json:"gate" yaml:"gate"`
	OK     bool      `json:"ok" yaml:"ok"`
	Detail string    `json:"detail" yaml:"detail"`
	Time   time.Time `json:"time" yaml:"time"`
}

// validateGates checks the gates' spec.
func (g GatesSpec) validate(e *PlanErrors) {
	for i, r := range g.NoNewDrops {
		if x, err := pipeline.ParseReason(r); err != nil || x == pipeline.None {
			e.add(fmt.Sprintf("gates.no_new_drops[%d]", i), "%q: not a drop reason (docs/pipeline.md §9)", r)
		}
	}
}

func (g GatesSpec) any() bool { return g.counters() || g.PoolHealthy }

func (g GatesSpec) counters() bool { return len(g.NoNewDrops) > 0 || g.RuleTraffic }

// gateBefore reads what the gates compare against, before a step's cutover.
func (r *Runner) gateBefore(ctx context.Context, plan *Plan) (map[string]uint64, error) {
	if len(plan.Gates.NoNewDrops) == 0 {
		return nil, nil
	}
	cs, ok := r.ctrl.(CounterSource)
	if !ok {
		return nil, fmt.Errorf("%w: the controller reads no counters", ErrGate)
	}
	return cs.Drops(ctx)
}

// gateAfter checks the gates at the end of a step. It returns every gate's
// result and whether they all passed.
func (r *Runner) gateAfter(ctx context.Context, plan *Plan, rule string, before map[string]uint64) ([]GateResult, bool) {
	g := plan.Gates
	if !g.any() {
		return nil, true
	}
	now := r.opts.Now()
	var out []GateResult
	pass := true
	if g.PoolHealthy {
		res := GateResult{Gate: "pool_healthy", Time: now, OK: true, Detail: "every backend of " + plan.Pool + " up"}
		if hs, ok := r.ctrl.(HealthSource); !ok {
			res.OK, res.Detail = false, "the controller checks no backend health"
		} else if down, err := hs.Unhealthy(ctx, plan.Pool); err != nil {
			res.OK, res.Detail = false, "reading the backends' health: "+err.Error()
		} else if len(down) > 0 {
			res.OK, res.Detail = false, "backends of "+plan.Pool+" down: "+strings.Join(down, "; ")
		}
		pass = pass && res.OK
		out = append(out, res)
	}
	if !g.counters() {
		return out, pass
	}
	cs, ok := r.ctrl.(CounterSource)
	if !ok {
		return append(out, GateResult{Gate: "counters", Detail: "the controller reads no counters", Time: now}), false
	}
	if len(g.NoNewDrops) > 0 {
		res := GateResult{Gate: "no_new_drops", Time: now, OK: true}
		after, err := cs.Drops(ctx)
		if err != nil {
			res.OK, res.Detail = false, "reading the drop counters: "+err.Error()
		} else {
			var grew []string
			for _, reason := range g.NoNewDrops {
				if d := after[reason] - before[reason]; after[reason] > before[reason] {
					grew = append(grew, fmt.Sprintf("%s +%d", reason, d))
				}
			}
			if len(grew) > 0 {
				res.OK, res.Detail = false, "new drops during the step: "+strings.Join(grew, ", ")
			} else {
				res.Detail = "no new " + strings.Join(g.NoNewDrops, ", ")
			}
		}
		pass = pass && res.OK
		out = append(out, res)
	}
	if g.RuleTraffic {
		res := GateResult{Gate: "rule_traffic", Time: now, OK: true}
		n, err := cs.RulePackets(ctx, rule)
		switch {
		case err != nil:
			res.OK, res.Detail = false, "reading rule "+rule+"'s counter: "+err.Error()
		case n == 0:
			res.OK, res.Detail = false, "rule "+rule+" matched no packet: the gateways do not send the step's traffic through it"
		default:
			res.Detail = fmt.Sprintf("rule %s matched %d packets", rule, n)
		}
		pass = pass && res.OK
		out = append(out, res)
	}
	return out, pass
}

// gateSummary says in a line which gates failed.
func gateSummary(rs []GateResult) string {
	var bad []string
	for _, g := range rs {
		if !g.OK {
			bad = append(bad, "gate "+g.Gate+": "+g.Detail)
		}
	}
	return strings.Join(slices.Clip(bad), "; ")
}
