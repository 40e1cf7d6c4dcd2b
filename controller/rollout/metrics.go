package rollout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/graygw/graygw/controller/probe"
)

// Metric names.
const (
	MetricState   = "graygw_rollout_state"
	MetricStep    = "graygw_rollout_step"
	MetricSteps   = "graygw_rollout_steps"
	MetricStepsBy = "graygw_rollout_steps_by_state"
	MetricProbes  = "graygw_rollout_probes_total"
)

var (
	descState = prometheus.NewDesc(MetricState,
		"1 for the state the last known rollout is in (running, paused, completed, failed, aborted), 0 for the others; all 0 when there is none.",
		[]string{"state"}, nil)
	descStep = prometheus.NewDesc(MetricStep,
		"The 1-based index of the last known rollout's current step (0 before the first).", []string{"plan"}, nil)
	descSteps = prometheus.NewDesc(MetricSteps,
		"The number of steps of the last known rollout's plan.", []string{"plan"}, nil)
	descStepsBy = prometheus.NewDesc(MetricStepsBy,
		"Steps of the last known rollout, by step state (pending, applying, probing, done, failed, rolled-back).",
		[]string{"plan", "state"}, nil)
)

var (
	allStates     = []State{StateRunning, StatePaused, StateCompleted, StateFailed, StateAborted}
	allStepStates = []StepState{StepPending, StepApplying, StepProbing, StepDone, StepFailed, StepRolledBack}
	allStatuses   = []probe.Status{probe.StatusOK, probe.StatusLost, probe.StatusWrongBackend, probe.StatusRefused}
)

func newProbeCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricProbes,
		Help: "Probe results of rollouts (precheck, after each step, after a rollback), by status (ok, lost, wrong-backend, refused)."},
		[]string{"status"})
	for _, s := range allStatuses {
		c.WithLabelValues(string(s)) // exported from 0, so increase() sees the first failure
	}
	return c
}

// countProbes counts probe results in the runner's metrics.
func (r *Runner) countProbes(rs []probe.Result) {
	for _, x := range rs {
		r.probes.WithLabelValues(string(x.Status)).Inc()
	}
}

// Collector returns the runner's Prometheus metrics: the last known rollout's
// state, step and steps (read at scrape time) and the probe results of every
// rollout since the process started. Register it once.
func (r *Runner) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Runner }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descStep
	ch <- descSteps
	ch <- descStepsBy
	c.r.probes.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	var p *Progress
	if c.r.prog != nil {
		p = c.r.prog.Clone()
	}
	c.r.mu.Unlock()
	for _, s := range allStates {
		v := 0.0
		if p != nil && p.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, string(s))
	}
	if p != nil {
		name := p.Plan.Name
		ch <- prometheus.MustNewConstMetric(descStep, prometheus.GaugeValue, float64(p.Step), name)
		ch <- prometheus.MustNewConstMetric(descSteps, prometheus.GaugeValue, float64(p.Total), name)
		by := map[StepState]int{}
		for _, s := range p.Steps {
			by[s.State]++
		}
		for _, s := range allStepStates {
			ch <- prometheus.MustNewConstMetric(descStepsBy, prometheus.GaugeValue, float64(by[s]), name, string(s))
		}
	}
	c.r.probes.Collect(ch)
}
