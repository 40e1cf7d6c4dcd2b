package rollout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A failed step shows in the metrics: state failed, the step it stopped at,
// its steps by state, and the lost probes that failed it.
func TestCollectorShowsFailedRollout(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	c.grayBroken[5002] = true
	r := NewRunner(c, st, Options{})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(r.Collector()); err != nil {
		t.Fatal(err)
	}
	// Before any rollout: every state 0, no step series.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(stateMetric("")), MetricState, MetricStep); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Wait(ctx)
	if p.State != StateFailed {
		t.Fatalf("state %s", p.State)
	}
	if got := testutil.ToFloat64(r.probes.WithLabelValues("lost")); got == 0 {
		t.Error("no lost probe counted")
	}
	ok := testutil.ToFloat64(r.probes.WithLabelValues("ok"))
	if ok == 0 {
		t.Error("no ok probe counted (precheck, steps 1-2, after the rollback)")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(stateMetric(StateFailed)+`# HELP graygw_rollout_step The 1-based index of the last known rollout's current step (0 before the first).
# TYPE graygw_rollout_step gauge
graygw_rollout_step{plan="r2"} 3
# HELP graygw_rollout_steps The number of steps of the last known rollout's plan.
# TYPE graygw_rollout_steps gauge
graygw_rollout_steps{plan="r2"} 4
# HELP graygw_rollout_steps_by_state Steps of the last known rollout, by step state (pending, applying, probing, done, failed, rolled-back).
# TYPE graygw_rollout_steps_by_state gauge
graygw_rollout_steps_by_state{plan="r2",state="applying"} 0
graygw_rollout_steps_by_state{plan="r2",state="done"} 2
graygw_rollout_steps_by_state{plan="r2",state="failed"} 0
graygw_rollout_steps_by_state{plan="r2",state="pending"} 1
graygw_rollout_steps_by_state{plan="r2",state="probing"} 0
graygw_rollout_steps_by_state{plan="r2",state="rolled-back"} 1
`), MetricState, MetricStep, MetricSteps, MetricStepsBy); err != nil {
		t.Fatal(err)
	}
}

// stateMetric is the exposition of graygw_rollout_state with state at 1, the
// others at 0 ("" for none).
func stateMetric(state State) string {
	out := `# HELP graygw_rollout_state 1 for the state the last known rollout is in (running, paused, completed, failed, aborted), 0 for the others; all 0 when there is none.
# TYPE graygw_rollout_state gauge
`
	for _, st := range []State{StateAborted, StateCompleted, StateFailed, StatePaused, StateRunning} {
		v := 0
		if st == state {
			v = 1
		}
		out += fmt.Sprintf("graygw_rollout_state{state=%q} %d\n", st, v)
	}
	return out
}
