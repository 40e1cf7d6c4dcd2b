// Package rollout moves traffic to the gray cluster automatically, in small
// reversible steps, following a plan (docs/rollout.md): for each VPC in turn,
// its first VMs one at a time (a rule on VNI + VM address), then the rest of
// the VPC (a rule on the VNI). After every step it probes the plan's VMs with
// real packets (package probe); a failed probe rolls that step back and stops.
//
// A rollout can be paused, resumed and aborted (abort rolls back every step it
// applied). Every change of its progress is saved in a Store before the rollout
// goes on, so a restarted controller knows exactly where it stopped (Recover)
// and can resume from there. Progress is reported live to subscribers.
//
// The rollout talks to the controller through the small Controller interface,
// so it runs in-process in tests and over the controller's API elsewhere.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
)

var (
	// ErrRefused: the controller refused a cutover (validation: unknown VNI,
	// VIP or pool, overlapping rules...). Nothing was changed.
	ErrRefused = errors.New("rollout: change refused")
	// ErrProbeFailed: probes did not pass (a step was rolled back, or the
	// precheck before the first step failed).
	ErrProbeFailed = errors.New("rollout: probes failed")
	// ErrBusy: a rollout is already running or paused; resume or abort it first.
	ErrBusy = errors.New("rollout: another rollout is in progress")
	// ErrNoRollout: there is no rollout to pause, resume, abort or report.
	ErrNoRollout = errors.New("rollout: no rollout")
	// ErrState: the operation does not fit the rollout's state (resume a
	// completed rollout...).
	ErrState = errors.New("rollout: wrong state")
	// ErrStore: progress could not be saved or loaded. The rollout stops rather
	// than go on with a step it could not record.
	ErrStore = errors.New("rollout: progress store")
)

// Scope selects the traffic one cutover moves. The controller turns it into a
// gray rule {Name, Match, Percent, Pool} of the intent (docs/intent.md).
type Scope struct {
	// Name is the rule name to use; empty = the controller picks one.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Match is the rule's selector, as in the intent.
	Match intent.MatchSpec `json:"match" yaml:"match"`
	// Percent moves a sticky share of the selected VMs; 0 = all (100).
	Percent float64 `json:"percent,omitempty" yaml:"percent,omitempty"`
}

// Controller is what a rollout needs from the graygw controller.
type Controller interface {
	// Cutover adds a gray rule moving scope's traffic to pool, or with dry only
	// checks that it would be accepted, and returns the rule's name. A refused
	// change returns an error wrapping ErrRefused (and the controller's reason)
	// and changes nothing. Cutover of a scope with a Name that already exists
	// with the same match and pool is idempotent: it returns that name (so a
	// restarted rollout can safely redo the step it was in).
	Cutover(ctx context.Context, scope Scope, pool string, dry bool) (rule string, err error)
	// Rollback removes the rule named rule. Removing a rule that does not
	// exist is not an error (rollback is idempotent).
	Rollback(ctx context.Context, rule string) error
	// Probe checks targets through the gateway with real packets.
	Probe(ctx context.Context, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
}

// Mirrorer is implemented by a Controller that can mirror (docs/pipeline.md
// §10). A plan with a mirror phase runs each step as a mirror of its scope to
// the plan's pool first (a rule of the step's name that keeps serving from the
// VIP's default pool), waits, checks that copies were made, then cuts over:
// the cutover replaces the mirror rule, which has the same name.
type Mirrorer interface {
	// Mirror adds the mirror rule (applied and confirmed) and returns its name.
	Mirror(ctx context.Context, scope Scope, pool string, rate int) (rule string, err error)
	// MirrorCopies is how many copies the rule has made, over every gateway.
	MirrorCopies(ctx context.Context, rule string) (uint64, error)
}

// VIPProber is implemented by a Controller that serves several VIPs and probes
// through the one a plan names. The Runner (and Check) then call ProbeVIP with
// the plan's vip ("" when the plan names none) instead of Probe.
type VIPProber interface {
	ProbeVIP(ctx context.Context, vip string, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
}

// IntentSource is implemented by a Controller that knows the intent in force.
// Start and Check then fill in what a plan's VPCs leave out (their VMs and
// router) from its inventory (PlanSpec.Resolve); the progress keeps the plan so
// resolved, so a restarted controller goes on with the same VMs.
type IntentSource interface {
	Intent() *intent.Intent
}

// resolve fills spec's VPCs from ctrl's intent when ctrl is an IntentSource.
func resolve(ctrl Controller, spec *PlanSpec) *PlanSpec {
	if src, ok := ctrl.(IntentSource); ok {
		return spec.Resolve(src.Intent())
	}
	return spec.Resolve(nil)
}

// probeVia probes targets for plan through ctrl, naming the plan's VIP when
// ctrl can take it.
func probeVia(ctx context.Context, ctrl Controller, plan *Plan, targets []probe.Target) ([]probe.Result, error) {
	if vp, ok := ctrl.(VIPProber); ok {
		return vp.ProbeVIP(ctx, plan.VIP, targets, plan.Probe)
	}
	return ctrl.Probe(ctx, targets, plan.Probe)
}

// PrecheckError is the error of a precheck whose probes did not all pass; it
// wraps ErrProbeFailed and carries every VM's result.
type PrecheckError struct {
	Results []probe.Result
}

// Error describes the failed probes, the first few in full.
func (e *PrecheckError) Error() string {
	return fmt.Sprintf("%v: precheck before any change: %s", ErrProbeFailed, summary(probe.Failed(e.Results)))
}

// Unwrap returns ErrProbeFailed.
func (e *PrecheckError) Unwrap() error { return ErrProbeFailed }

// State is the state of a rollout.
type State string

// Rollout states.
const (
	StateRunning   State = "running"
	StatePaused    State = "paused"
	StateCompleted State = "completed"
	StateFailed    State = "failed"  // a step failed and was rolled back; earlier steps stay
	StateAborted   State = "aborted" // stopped by the operator; every applied step rolled back
	// StateDryRun is the state of the progress Check returns; a Runner never
	// holds it.
	StateDryRun State = "dry-run"
)

// Finished reports whether s is a final state.
func (s State) Finished() bool {
	return s == StateCompleted || s == StateFailed || s == StateAborted
}

// StepState is the state of one step.
type StepState string

// Step states.
const (
	StepPending    StepState = "pending"
	StepApplying   StepState = "applying" // cutover requested, not confirmed
	StepProbing    StepState = "probing"  // rule in place, probes running
	StepDone       StepState = "done"     // probes passed
	StepFailed     StepState = "failed"   // cutover refused or failed: nothing to roll back
	StepRolledBack StepState = "rolled-back"
)

// StepRecord is what happened to one step.
type StepRecord struct {
	Step  Step      `json:"step" yaml:"step"`
	State StepState `json:"state" yaml:"state"`
	// Rule is the name the controller gave the step's rule.
	Rule string `json:"rule,omitempty" yaml:"rule,omitempty"`
	// Probes are the results of the step's probes.
	Probes []probe.Result `json:"probes,omitempty" yaml:"probes,omitempty"`
	// Gates are the plan's gates' verdicts on the step.
	Gates []GateResult `json:"gates,omitempty" yaml:"gates,omitempty"`
	// AfterRollback are the probes run after the step was rolled back.
	AfterRollback []probe.Result `json:"after_rollback,omitempty" yaml:"after_rollback,omitempty"`
	Started       time.Time      `json:"started,omitzero" yaml:"started,omitempty"`
	Finished      time.Time      `json:"finished,omitzero" yaml:"finished,omitempty"`
	Error         string         `json:"error,omitempty" yaml:"error,omitempty"`
}

// Progress is a rollout's whole state: what a Store saves and subscribers see.
type Progress struct {
	// Plan is the plan as written, so a restarted controller has it.
	Plan  PlanSpec `json:"plan" yaml:"plan"`
	State State    `json:"state" yaml:"state"`
	// Step is the 1-based index of the current step (the last one started); 0
	// before the first.
	Step  int `json:"step" yaml:"step"`
	Total int `json:"total" yaml:"total"`
	// VNI is the VNI of the current step.
	VNI   uint32       `json:"vni,omitempty" yaml:"vni,omitempty"`
	Steps []StepRecord `json:"steps" yaml:"steps"`
	// Precheck are the probes run before the first step.
	Precheck []probe.Result `json:"precheck,omitempty" yaml:"precheck,omitempty"`
	// PauseRequested is set while a pause waits for the current step to end.
	PauseRequested bool `json:"pause_requested,omitempty" yaml:"pause_requested,omitempty"`
	// Message says in words what happened last ("step 3 of 8 (vni 5001) done").
	Message string    `json:"message,omitempty" yaml:"message,omitempty"`
	Error   string    `json:"error,omitempty" yaml:"error,omitempty"`
	Started time.Time `json:"started" yaml:"started"`
	Updated time.Time `json:"updated" yaml:"updated"`
}

// Clone returns a copy of p that shares nothing mutable with it.
func (p *Progress) Clone() *Progress {
	c := *p
	c.Steps = append([]StepRecord(nil), p.Steps...)
	c.Precheck = append([]probe.Result(nil), p.Precheck...)
	return &c
}

// Options configure a Runner.
type Options struct {
	// OnProgress, if set, is called with a copy of the progress after every
	// saved change, on the rollout's goroutine (keep it short).
	OnProgress func(*Progress)
	// Now returns the time (tests); time.Now when nil.
	Now func() time.Time
	// Decision, if set, is called with every decision the rollout takes
	// (a step passed or failed, rollbacks, a pause reached, the end), on the
	// rollout's goroutine, never with the Runner's lock held: Control
	// records them in the controller's history.
	Decision func(Decision)
}

// Runner runs at most one rollout at a time against a controller, recording
// every change in a store.
type Runner struct {
	ctrl  Controller
	store Store
	opts  Options

	mu       sync.Mutex
	prog     *Progress // nil: no rollout known
	plan     *Plan
	running  bool          // the rollout goroutine is active
	pause    bool          // pause requested
	abort    bool          // abort requested
	wake     chan struct{} // closed to wake a paused rollout
	done     chan struct{} // closed when the goroutine exits
	subs     map[int]chan *Progress
	nextSub  int
	runCtx   context.Context
	cancelFn context.CancelFunc

	probes *prometheus.CounterVec // results by status (Collector)
}

// NewRunner returns a Runner. Call Recover before anything else when the store
// may hold a rollout from an earlier process.
func NewRunner(ctrl Controller, store Store, opts Options) *Runner {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runner{ctrl: ctrl, store: store, opts: opts, subs: map[int]chan *Progress{}, probes: newProbeCounter()}
}

// Recover loads the progress an earlier process saved. A rollout that was
// running when that process stopped is marked paused, with a message saying
// exactly which step was in flight; Resume re-checks that step (its cutover is
// idempotent) and goes on. It returns nil, ErrNoRollout when the store is empty.
func (r *Runner) Recover(ctx context.Context) (*Progress, error) {
	p, err := r.store.Load(ctx)
	if errors.Is(err, ErrNoProgress) {
		return nil, ErrNoRollout
	}
	if err != nil {
		return nil, fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	plan, err := p.Plan.Validate()
	if err != nil {
		return nil, fmt.Errorf("rollout: stored plan: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return nil, fmt.Errorf("%w: a rollout is running in this process", ErrBusy)
	}
	r.prog, r.plan = p, plan
	if p.State == StateRunning {
		p.State = StatePaused
		p.PauseRequested = false
		p.Message = "controller restarted during " + r.where(p) + "; resume to re-check that step and go on, or abort"
		if err := r.saveLocked(ctx); err != nil {
			return nil, err
		}
	}
	return p.Clone(), nil
}

// where describes the step in flight.
func (r *Runner) where(p *Progress) string {
	if p.Step == 0 || p.Step > len(p.Steps) {
		return "the precheck"
	}
	rec := p.Steps[p.Step-1]
	return fmt.Sprintf("step %d of %d (%s, %s)", p.Step, p.Total, rec.Step, rec.State)
}

// Start validates the plan against the controller (a dry-run cutover of every
// step: nothing changes if any is refused), probes every VM of the plan where it
// is now (the precheck: all must answer from the base side), then runs the
// steps on its own goroutine. It returns once the rollout has started, or with
// an error wrapping ErrPlan, ErrRefused, ErrProbeFailed or ErrBusy and nothing
// changed.
func (r *Runner) Start(ctx context.Context, spec *PlanSpec) (*Progress, error) {
	return r.StartThen(ctx, spec, nil)
}

// StartThen is Start calling started, if not nil, with the saved progress
// after the rollout is saved and before its first step runs, so that
// whatever started records (Control: the history's "rollout started") comes
// before any decision the rollout's goroutine takes.
func (r *Runner) StartThen(ctx context.Context, spec *PlanSpec, started func(*Progress)) (*Progress, error) {
	spec = resolve(r.ctrl, spec)
	plan, err := spec.Validate()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if err := r.settleLocked(ctx); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if r.running || (r.prog != nil && !r.prog.State.Finished()) {
		p := r.prog
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is %s at step %d of %d: resume or abort it first", ErrBusy, p.Plan.Name, p.State, p.Step, p.Total)
	}
	r.running = true // reserve the runner while we check
	r.mu.Unlock()
	release := func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
	}
	pre, err := check(ctx, r.ctrl, plan)
	r.countProbes(pre)
	if err != nil {
		release()
		return nil, err
	}
	now := r.opts.Now()
	p := &Progress{Plan: *spec, State: StateRunning, Total: len(plan.Steps), Precheck: pre,
		Started: now, Message: "precheck passed"}
	for _, s := range plan.Steps {
		p.Steps = append(p.Steps, StepRecord{Step: s, State: StepPending})
	}
	r.mu.Lock()
	r.prog, r.plan, r.pause, r.abort = p, plan, false, false
	if err := r.saveLocked(ctx); err != nil {
		r.running = false
		r.prog = nil
		r.mu.Unlock()
		return nil, err
	}
	gate := make(chan struct{})
	r.launchLocked(gate)
	c := p.Clone()
	r.mu.Unlock()
	if started != nil {
		started(c.Clone())
	}
	close(gate)
	return c, nil
}

// check runs the checks before a rollout: a dry-run cutover of every step, then
// the precheck probes. It returns the precheck results.
func check(ctx context.Context, ctrl Controller, plan *Plan) ([]probe.Result, error) {
	if _, ok := ctrl.(CounterSource); plan.Gates.counters() && !ok {
		return nil, fmt.Errorf("%w: the plan has counter gates and this controller reads no counters", ErrRefused)
	}
	if hs, ok := ctrl.(HealthSource); plan.Gates.PoolHealthy {
		if !ok {
			return nil, fmt.Errorf("%w: the plan has the pool_healthy gate and this controller checks no backend health", ErrRefused)
		}
		// Checked up front too: a rollout onto a pool already down would only
		// fail its first step.
		down, err := hs.Unhealthy(ctx, plan.Pool)
		if err != nil {
			return nil, fmt.Errorf("%w: pool_healthy: %w", ErrRefused, err)
		}
		if len(down) > 0 {
			return nil, fmt.Errorf("%w: pool_healthy: backends of %s down: %s", ErrRefused, plan.Pool, strings.Join(down, "; "))
		}
	}
	for _, s := range plan.Steps {
		if _, err := ctrl.Cutover(ctx, s.Scope(plan.VIP), plan.Pool, true); err != nil {
			return nil, fmt.Errorf("%w: step %d (%s): %w", ErrRefused, s.Index, s, err)
		}
	}
	pre, err := probeVia(ctx, ctrl, plan, targets(plan, 0))
	if err != nil {
		return nil, fmt.Errorf("%w: precheck: %w", ErrProbeFailed, err)
	}
	if bad := probe.Failed(pre); len(bad) > 0 {
		return pre, &PrecheckError{Results: pre}
	}
	return pre, nil
}

// Check validates spec and checks it against ctrl exactly as Start does (a
// dry-run cutover of every step, then the precheck probes), and changes
// nothing: a dry run. It returns the progress the rollout would start with,
// in state StateDryRun, or an error wrapping ErrPlan, ErrRefused or
// ErrProbeFailed (a *PrecheckError when probes did not pass).
func Check(ctx context.Context, ctrl Controller, spec *PlanSpec) (*Progress, error) {
	spec = resolve(ctrl, spec)
	plan, err := spec.Validate()
	if err != nil {
		return nil, err
	}
	pre, err := check(ctx, ctrl, plan)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	p := &Progress{Plan: *spec, State: StateDryRun, Total: len(plan.Steps), Precheck: pre, Started: now, Updated: now,
		Message: fmt.Sprintf("dry run: the plan is valid, the controller accepts all %d steps, and the precheck passed (%d VMs answered by the base side); nothing changed", len(plan.Steps), len(pre))}
	for _, s := range plan.Steps {
		p.Steps = append(p.Steps, StepRecord{Step: s, State: StepPending})
	}
	return p, nil
}

// settleLocked waits, briefly, for a rollout goroutine that has published a
// finished state and is only recording its decision (r.mu is held, released
// while waiting). A caller that saw the end (a watcher) may start, abort or
// retry at once; without this, Start would refuse as busy and an abort set now
// would never be seen by the exiting goroutine. A goroutine still busy after
// settleWait (a long rollback) is left to the callers' own refusals.
func (r *Runner) settleLocked(ctx context.Context) error {
	timer := time.NewTimer(settleWait)
	defer timer.Stop()
	for r.running && r.prog != nil && r.prog.State.Finished() {
		done := r.done
		r.mu.Unlock()
		select {
		case <-done:
		case <-timer.C:
			r.mu.Lock()
			return nil
		case <-ctx.Done():
			r.mu.Lock()
			return ctx.Err()
		}
		r.mu.Lock()
	}
	return nil
}

// actOnLocked readies r for a caller acting on its rollout: it settles a
// goroutine that is only recording its end (settleLocked), and is
// ErrNoRollout when there is no rollout. r.mu is held.
func (r *Runner) actOnLocked(ctx context.Context) error {
	if err := r.settleLocked(ctx); err != nil {
		return err
	}
	if r.prog == nil {
		return ErrNoRollout
	}
	return nil
}

// Settle waits, briefly, until a rollout that has finished has also recorded
// its last decision, so that a watcher told of the end finds it in the
// history (see settleLocked).
func (r *Runner) Settle(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settleLocked(ctx)
}

// settleWait bounds settleLocked: recording a decision is one store write.
const settleWait = 2 * time.Second

// wakeLocked wakes a rollout goroutine waiting in a pause. r.mu is held.
func (r *Runner) wakeLocked() {
	select {
	case <-r.wake:
	default:
		close(r.wake)
	}
}

// launchLocked starts the rollout goroutine. r.mu is held.
// launchLocked starts the rollout's goroutine; it takes its first step once
// gate is closed (nil: at once).
func (r *Runner) launchLocked(gate chan struct{}) {
	r.running = true
	r.wake = make(chan struct{})
	r.done = make(chan struct{})
	r.runCtx, r.cancelFn = context.WithCancel(context.Background())
	go func(ctx context.Context, done chan struct{}) {
		if gate != nil {
			<-gate
		}
		r.run(ctx, done)
	}(r.runCtx, r.done)
}

// Pause asks the rollout to stop after the current step (its probes included);
// the progress says PauseRequested until then.
func (r *Runner) Pause(ctx context.Context) (*Progress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prog == nil {
		return nil, ErrNoRollout
	}
	switch {
	case r.prog.State == StatePaused:
		return r.prog.Clone(), nil
	case r.prog.State != StateRunning:
		return nil, fmt.Errorf("%w: %q is %s", ErrState, r.prog.Plan.Name, r.prog.State)
	}
	r.pause = true
	r.prog.PauseRequested = true
	r.prog.Message = "pause requested: stopping after " + r.where(r.prog)
	if err := r.saveLocked(ctx); err != nil {
		return nil, err
	}
	return r.prog.Clone(), nil
}

// Resume continues a paused rollout (also one Recover found interrupted).
func (r *Runner) Resume(ctx context.Context) (*Progress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.actOnLocked(ctx); err != nil {
		return nil, err
	}
	if r.abort {
		return nil, fmt.Errorf("%w: %q is being aborted", ErrState, r.prog.Plan.Name)
	}
	switch r.prog.State {
	case StatePaused:
		r.prog.Message = "resumed"
	case StateFailed:
		// Retry: the failed step (rolled back, or refused) runs again.
		if r.running {
			return nil, fmt.Errorf("%w: %q is still stopping", ErrState, r.prog.Plan.Name)
		}
		r.prog.Message = fmt.Sprintf("resumed after a failure: retrying step %d", r.prog.Step)
		r.prog.Error = ""
	default:
		return nil, fmt.Errorf("%w: %q is %s: only a paused or failed rollout resumes", ErrState, r.prog.Plan.Name, r.prog.State)
	}
	r.pause = false
	r.prog.State = StateRunning
	r.prog.PauseRequested = false
	return r.saveAndGoLocked(ctx)
}

// Abort stops the rollout and rolls back every step it applied, newest first,
// so the plan's traffic returns to where it was. A running rollout stops after
// its current step. Aborting a failed rollout rolls back the steps that had
// passed. It returns at once; Wait or Status tell when it is over.
func (r *Runner) Abort(ctx context.Context) (*Progress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.actOnLocked(ctx); err != nil {
		return nil, err
	}
	if r.prog.State == StateAborted || r.prog.State == StateCompleted {
		return nil, fmt.Errorf("%w: %q is %s (to undo a completed rollout, roll back its rules)", ErrState, r.prog.Plan.Name, r.prog.State)
	}
	r.abort = true
	r.prog.Message = "abort requested"
	return r.saveAndGoLocked(ctx)
}

// saveAndGoLocked stores the progress and sets the rollout goroutine going:
// it wakes the one waiting in its pause, or launches one. r.mu is held.
func (r *Runner) saveAndGoLocked(ctx context.Context) (*Progress, error) {
	if err := r.saveLocked(ctx); err != nil {
		return nil, err
	}
	if r.running {
		r.wakeLocked()
	} else {
		r.launchLocked(nil)
	}
	return r.prog.Clone(), nil
}

// Status returns the current progress.
func (r *Runner) Status() (*Progress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prog == nil {
		return nil, ErrNoRollout
	}
	return r.prog.Clone(), nil
}

// Wait blocks until the rollout goroutine stops (finished, paused, or the
// store failed) or ctx ends, and returns the progress.
func (r *Runner) Wait(ctx context.Context) (*Progress, error) {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.Status()
}

// WaitState blocks until the progress is in one of states, or ctx ends.
func (r *Runner) WaitState(ctx context.Context, states ...State) (*Progress, error) {
	ch, cancel := r.Subscribe()
	defer cancel()
	for {
		p, err := r.Status()
		if err == nil {
			for _, s := range states {
				if p.State == s {
					return p, nil
				}
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return p, ctx.Err()
		}
	}
}

// Subscribe returns a channel that receives the progress after every change.
// A slow reader misses intermediate updates but always gets the latest one.
// cancel stops the subscription.
func (r *Runner) Subscribe() (<-chan *Progress, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextSub
	r.nextSub++
	ch := make(chan *Progress, 1)
	r.subs[id] = ch
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// Close stops the rollout goroutine where it is (a step in flight is left as
// recorded, for Recover in the next process) and waits for it.
func (r *Runner) Close() {
	r.mu.Lock()
	cancel, done := r.cancelFn, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// saveLocked stamps, saves and publishes the progress. r.mu is held.
func (r *Runner) saveLocked(ctx context.Context) error {
	r.prog.Updated = r.opts.Now()
	if err := r.store.Save(ctx, r.prog); err != nil {
		return fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	c := r.prog.Clone()
	for _, ch := range r.subs {
		select {
		case ch <- c:
		default:
			select {
			case <-ch:
			default:
			}
			ch <- c
		}
	}
	if r.opts.OnProgress != nil {
		r.opts.OnProgress(c)
	}
	return nil
}

// update applies f to the progress under the lock and saves it.
func (r *Runner) update(ctx context.Context, f func(p *Progress)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.prog)
	return r.saveLocked(ctx)
}

// run executes the steps from the first that is not done. It ends when the
// rollout finishes, pauses, or cannot save its progress.
func (r *Runner) run(ctx context.Context, done chan struct{}) {
	defer func() {
		r.mu.Lock()
		r.running = false
		r.cancelFn = nil
		r.mu.Unlock()
		close(done)
	}()
	for {
		r.mu.Lock()
		abort, pause, plan := r.abort, r.pause, r.plan
		next := -1
		for i, s := range r.prog.Steps {
			if s.State != StepDone {
				next = i
				break
			}
		}
		failedBefore := r.prog.State == StateFailed
		r.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		switch {
		case abort:
			r.rollbackAll(ctx)
			return
		case failedBefore:
			return
		case next < 0:
			watched := ""
			if plan.Watch > 0 {
				aborted, why := r.watch(ctx, plan)
				switch {
				case ctx.Err() != nil:
					return // closing: Recover reports it paused; resuming watches again
				case aborted:
					continue // the loop sees the abort
				case why != "" && plan.WatchRollback:
					_ = r.update(ctx, func(p *Progress) { p.Error = why + "; rolling back every step" })
					r.decide("failed", fmt.Sprintf("rollout %s failed its watch: rolling back every step", plan.Name), why)
					r.rollbackAll(ctx)
					return
				case why != "":
					_ = r.update(ctx, func(p *Progress) {
						p.State = StateFailed
						p.Error = why + "; the rules stay (no watch_rollback): abort to roll back"
						p.Message = p.Error
					})
					r.decide("failed", fmt.Sprintf("rollout %s failed its watch: the rules stay (no watch_rollback)", plan.Name), why)
					return
				}
				watched = fmt.Sprintf(", watched %v", plan.Watch)
			}
			var msg string
			_ = r.update(ctx, func(p *Progress) {
				p.State = StateCompleted
				p.Message = fmt.Sprintf("completed: %d steps%s, pool %s serves the plan's VPCs", p.Total, watched, plan.Pool)
				msg = p.Message
			})
			r.decide("completed", fmt.Sprintf("rollout %s %s", plan.Name, msg), "")
			return
		case pause:
			r.mu.Lock()
			r.wake = make(chan struct{})
			wake := r.wake
			r.mu.Unlock()
			var msg string
			if err := r.update(ctx, func(p *Progress) {
				p.State, p.PauseRequested = StatePaused, false
				p.Message = fmt.Sprintf("paused before step %d of %d", next+1, p.Total)
				msg = p.Message
			}); err != nil {
				return
			}
			r.decide("paused", fmt.Sprintf("rollout %s %s", plan.Name, msg), "the operator asked for a pause")
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		if err := r.step(ctx, plan, next); err != nil {
			return
		}
	}
}

// failStep records step i of plan as failed by err: the progress says
// "step N (scope): what: err", the decision log "the step why" with detail.
// It returns err.
func (r *Runner) failStep(ctx context.Context, plan *Plan, i int, err error, what, why, detail string) error {
	s := plan.Steps[i]
	_ = r.update(ctx, func(p *Progress) {
		rec := &p.Steps[i]
		rec.State, rec.Finished, rec.Error = StepFailed, r.opts.Now(), err.Error()
		p.State = StateFailed
		p.Error = fmt.Sprintf("step %d (%s): %s: %v", s.Index, s, what, err)
		p.Message = p.Error
	})
	r.decide("step-failed", r.stepName(plan, s)+" "+why, detail)
	return err
}

// mirror runs step i's mirror phase: the mirror rule, plan.Mirror of shadow
// traffic, and the check that the pool received copies. Without copies (or
// when mirroring fails) the mirror rule is removed and the rollout fails: a
// gray pool that got no traffic has shown nothing. Recover redoes the whole
// step, the mirror phase included.
func (r *Runner) mirror(ctx context.Context, plan *Plan, i int) error {
	s := plan.Steps[i]
	fail := func(rule string, format string, args ...any) error {
		err := fmt.Errorf(format, args...)
		if rule != "" {
			if rbErr := r.ctrl.Rollback(ctx, rule); rbErr != nil {
				err = fmt.Errorf("%w; REMOVING MIRROR RULE %s FAILED: %v", err, rule, rbErr)
			}
		}
		return r.failStep(ctx, plan, i, err, "mirror", "failed its mirror phase", err.Error())
	}
	m, ok := r.ctrl.(Mirrorer)
	if !ok {
		return fail("", "this controller cannot mirror")
	}
	rule, err := m.Mirror(ctx, s.Scope(plan.VIP), plan.Pool, plan.MirrorRate)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fail("", "%v", err)
	}
	if err := r.update(ctx, func(p *Progress) {
		p.Message = fmt.Sprintf("step %d of %d: mirroring %s to %s for %v (rule %s)", s.Index, p.Total, s, plan.Pool, plan.Mirror, rule)
	}); err != nil {
		return err
	}
	select {
	case <-time.After(plan.Mirror):
	case <-ctx.Done():
		return ctx.Err()
	}
	n, err := m.MirrorCopies(ctx, rule)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case err != nil:
		return fail(rule, "reading the mirror counters: %v", err)
	case n == 0:
		return fail(rule, "no copy of %s reached pool %s in %v", s, plan.Pool, plan.Mirror)
	}
	return r.update(ctx, func(p *Progress) {
		p.Message = fmt.Sprintf("step %d of %d: %d copies of %s reached %s; cutting over", s.Index, p.Total, n, s, plan.Pool)
	})
}

// step runs step i: cutover, settle, probe; on failure rollback, probe again
// and fail the rollout. It returns an error when the rollout must stop.
func (r *Runner) step(ctx context.Context, plan *Plan, i int) error {
	s := plan.Steps[i]
	if err := r.update(ctx, func(p *Progress) {
		p.Step, p.VNI = s.Index, s.VNI
		rec := &p.Steps[i]
		rec.State, rec.Started, rec.Error = StepApplying, r.opts.Now(), ""
		rec.Probes, rec.AfterRollback, rec.Gates = nil, nil, nil
		p.Message = fmt.Sprintf("step %d of %d: moving %s to %s", s.Index, p.Total, s, plan.Pool)
	}); err != nil {
		return err
	}
	if plan.Mirror > 0 {
		if err := r.mirror(ctx, plan, i); err != nil {
			return err
		}
	}
	before, gerr := r.gateBefore(ctx, plan)
	if gerr != nil {
		return r.failStep(ctx, plan, i, gerr, "reading the counters before the cutover", "failed before its cutover", "reading the counters: "+gerr.Error())
	}
	rule, err := r.ctrl.Cutover(ctx, s.Scope(plan.VIP), plan.Pool, false)
	if ctx.Err() != nil {
		return ctx.Err() // closing: the step stays "applying" for Recover
	}
	if err != nil {
		return r.failStep(ctx, plan, i, err, "cutover failed", "failed: cutover refused or failed, nothing to roll back", err.Error())
	}
	if err := r.update(ctx, func(p *Progress) {
		rec := &p.Steps[i]
		rec.State, rec.Rule = StepProbing, rule
		p.Message = fmt.Sprintf("step %d of %d: %s moved (rule %s), probing", s.Index, p.Total, s, rule)
	}); err != nil {
		return err
	}
	if plan.Settle > 0 {
		select {
		case <-time.After(plan.Settle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ts := targets(plan, i+1, scopeFilter(plan, s)...)
	res, perr := probeVia(ctx, r.ctrl, plan, ts)
	r.countProbes(res)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	bad := probe.Failed(res)
	baked := ""
	if perr == nil && len(bad) == 0 && plan.Bake > 0 {
		var aborted bool
		res, aborted, perr = r.bake(ctx, plan, i, ts, res)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if aborted {
			return nil // the run loop sees the abort and rolls back, this step included
		}
		bad, baked = probe.Failed(res), fmt.Sprintf(", baked %v", plan.Bake)
	}
	var gates []GateResult
	gatesOK := true
	if perr == nil && len(bad) == 0 {
		gates, gatesOK = r.gateAfter(ctx, plan, rule, before)
	}
	if perr == nil && len(bad) == 0 && gatesOK {
		if err := r.update(ctx, func(p *Progress) {
			rec := &p.Steps[i]
			rec.State, rec.Probes, rec.Gates, rec.Finished = StepDone, res, gates, r.opts.Now()
			p.Message = fmt.Sprintf("step %d of %d (%s) done: %d probes ok%s", s.Index, p.Total, s, len(res), baked)
			if len(gates) > 0 {
				p.Message += fmt.Sprintf(", %d gates passed", len(gates))
			}
		}); err != nil {
			return err
		}
		r.decide("step-passed", fmt.Sprintf("%s passed (rule %s)", r.stepName(plan, s), rule),
			joinReason(fmt.Sprintf("%d probes ok%s", len(res), baked), gatesText(gates)))
		return nil
	}
	why := ""
	switch {
	case perr != nil:
		why = "probe error: " + perr.Error()
	case len(bad) > 0:
		why = "probes failed: " + summary(bad)
	default:
		why = gateSummary(gates)
	}
	// Roll the step back and check that traffic is where it was before it.
	rbErr := r.ctrl.Rollback(ctx, rule)
	var after []probe.Result
	if rbErr == nil {
		after, _ = probeVia(ctx, r.ctrl, plan, targets(plan, i, scopeFilter(plan, s)...))
		r.countProbes(after)
	}
	_ = r.update(ctx, func(p *Progress) {
		rec := &p.Steps[i]
		rec.Probes, rec.AfterRollback, rec.Gates, rec.Finished = res, after, gates, r.opts.Now()
		rec.Error = why
		p.State = StateFailed
		if rbErr != nil {
			rec.State = StepProbing // the rule is still there
			p.Error = fmt.Sprintf("step %d (%s): %s; ROLLBACK OF RULE %s FAILED: %v", s.Index, s, why, rule, rbErr)
		} else {
			rec.State = StepRolledBack
			p.Error = fmt.Sprintf("step %d (%s): %s; rolled back", s.Index, s, why)
			if bad := probe.Failed(after); len(bad) > 0 {
				p.Error += "; after the rollback still failing: " + summary(bad)
			}
		}
		p.Message = p.Error
	})
	verdict := "failed and was rolled back"
	if rbErr != nil {
		verdict = fmt.Sprintf("failed; ROLLBACK OF RULE %s FAILED: %v", rule, rbErr)
	}
	r.decide("step-failed", fmt.Sprintf("%s %s (rule %s)", r.stepName(plan, s), verdict, rule), joinReason(why, gatesText(gates)))
	return fmt.Errorf("%w: %s", ErrProbeFailed, why)
}

// bake keeps probing step i's targets every plan.BakeEvery until plan.Bake
// has passed since its probes passed. It returns the last results and probe
// error (the first failure ends it), or aborted when the operator aborted
// meanwhile.
func (r *Runner) bake(ctx context.Context, plan *Plan, i int, ts []probe.Target, res []probe.Result) (_ []probe.Result, aborted bool, _ error) {
	start := time.Now()
	s := plan.Steps[i]
	for {
		left := plan.Bake - time.Since(start)
		if left <= 0 {
			return res, false, nil
		}
		select {
		case <-time.After(min(plan.BakeEvery, left)):
		case <-ctx.Done():
			return res, false, ctx.Err()
		}
		r.mu.Lock()
		abort := r.abort
		r.mu.Unlock()
		if abort {
			return res, true, nil
		}
		var perr error
		res, perr = probeVia(ctx, r.ctrl, plan, ts)
		r.countProbes(res)
		if perr != nil || len(probe.Failed(res)) > 0 {
			return res, false, perr
		}
		_ = r.update(ctx, func(p *Progress) {
			p.Steps[i].Probes = res
			p.Message = fmt.Sprintf("step %d of %d (%s): baking, %v of %v, %d probes ok", s.Index, p.Total, s,
				time.Since(start).Round(time.Second), plan.Bake, len(res))
		})
	}
}

// watch probes every VM of the plan every plan.BakeEvery for plan.Watch after
// the last step. It returns why when a probe failed ("" when the watch
// passed), or aborted when the operator aborted meanwhile.
func (r *Runner) watch(ctx context.Context, plan *Plan) (aborted bool, why string) {
	start := time.Now()
	ts := targets(plan, len(plan.Steps))
	for {
		left := plan.Watch - time.Since(start)
		if left <= 0 {
			return false, ""
		}
		select {
		case <-time.After(min(plan.BakeEvery, left)):
		case <-ctx.Done():
			return false, ""
		}
		r.mu.Lock()
		abort := r.abort
		r.mu.Unlock()
		if abort {
			return true, ""
		}
		res, perr := probeVia(ctx, r.ctrl, plan, ts)
		r.countProbes(res)
		if ctx.Err() != nil {
			return false, ""
		}
		at := time.Since(start).Round(time.Second)
		if perr != nil {
			return false, fmt.Sprintf("watch: probe error %v after the last step: %v", at, perr)
		}
		if bad := probe.Failed(res); len(bad) > 0 {
			return false, fmt.Sprintf("watch: probes failed %v after the last step: %s", at, summary(bad))
		}
		_ = r.update(ctx, func(p *Progress) {
			p.Message = fmt.Sprintf("watching: %v of %v after the last step, %d probes ok", at, plan.Watch, len(res))
		})
	}
}

// rollbackAll undoes every applied step, newest first, and ends the rollout
// as aborted.
func (r *Runner) rollbackAll(ctx context.Context) {
	r.mu.Lock()
	var todo []int
	for i := len(r.prog.Steps) - 1; i >= 0; i-- {
		switch r.prog.Steps[i].State {
		case StepDone, StepProbing, StepApplying:
			todo = append(todo, i)
		}
	}
	r.mu.Unlock()
	var errs []string
	for _, i := range todo {
		r.mu.Lock()
		rec := r.prog.Steps[i]
		r.mu.Unlock()
		rule := rec.Rule
		if rule == "" {
			rule = rec.Step.Rule // applying: the cutover may have happened under the requested name
		}
		if err := r.ctrl.Rollback(ctx, rule); err != nil {
			errs = append(errs, fmt.Sprintf("step %d rule %s: %v", rec.Step.Index, rule, err))
			continue
		}
		_ = r.update(ctx, func(p *Progress) {
			p.Steps[i].State = StepRolledBack
			p.Steps[i].Finished = r.opts.Now()
			p.Message = fmt.Sprintf("abort: step %d (%s) rolled back", rec.Step.Index, rec.Step)
		})
	}
	r.mu.Lock()
	plan := r.plan
	r.mu.Unlock()
	after, _ := probeVia(ctx, r.ctrl, plan, targets(plan, 0))
	r.countProbes(after)
	var msg, perr string
	_ = r.update(ctx, func(p *Progress) {
		p.State = StateAborted
		p.Message = fmt.Sprintf("aborted: %d steps rolled back", len(todo)-len(errs))
		if len(errs) > 0 {
			p.Error = "abort: rollback failed for " + fmt.Sprint(errs)
		} else if bad := probe.Failed(after); len(bad) > 0 {
			p.Error = "after the abort, probes fail: " + summary(bad)
		}
		p.Precheck = after
		msg, perr = p.Message, p.Error
	})
	r.decide("rolled-back", fmt.Sprintf("rollout %s %s", plan.Name, msg), perr)
}

// stepName names step s of plan for the history: "rollout r1 step 2 of 4
// (vm 5001/192.168.1.5)".
func (r *Runner) stepName(plan *Plan, s Step) string {
	return fmt.Sprintf("rollout %s step %d of %d (%s)", plan.Name, s.Index, len(plan.Steps), s)
}

// targets returns the probe targets after the first done steps of plan have
// been applied, with their expectations: a VM some applied step moved must be
// answered by the target pool, any other by the base pool (or cluster). keep,
// when given, restricts the VMs probed.
func targets(plan *Plan, done int, keep ...func(vni uint32, vm netip.Addr) bool) []probe.Target {
	movedVNI := map[uint32]bool{}
	movedVM := map[probe.Target]bool{}
	for _, s := range plan.Steps[:done] {
		if s.Kind == StepVNI {
			movedVNI[s.VNI] = true
		} else {
			movedVM[probe.Target{VNI: s.VNI, VM: s.VM}] = true
		}
	}
	var out []probe.Target
	for _, v := range plan.VPCs {
	vms:
		for _, vm := range v.VMs {
			for _, k := range keep {
				if !k(v.VNI, vm) {
					continue vms
				}
			}
			for _, d := range v.DestinationsOf(vm) {
				t := probe.Target{VNI: v.VNI, VM: vm, Router: d, RouterMAC: v.RouterMAC}
				if movedVNI[v.VNI] || movedVM[probe.Target{VNI: v.VNI, VM: vm}] {
					t.ExpectPool = plan.Pool
				} else if plan.BasePool != "" {
					t.ExpectPool = plan.BasePool
				} else {
					t.ExpectCluster = intent.ClusterBase
				}
				out = append(out, plan.WithChecks([]probe.Target{t})...)
			}
		}
	}
	return out
}

// scopeFilter restricts a step's probes to the plan's probe scope.
func scopeFilter(plan *Plan, s Step) []func(uint32, netip.Addr) bool {
	switch plan.Scope {
	case ScopeVPC:
		return []func(uint32, netip.Addr) bool{func(vni uint32, _ netip.Addr) bool { return vni == s.VNI }}
	case ScopeStep:
		return []func(uint32, netip.Addr) bool{func(vni uint32, vm netip.Addr) bool {
			return vni == s.VNI && (s.Kind == StepVNI || vm == s.VM)
		}}
	}
	return nil
}

// summary describes failed results in one line, the first few in full.
func summary(bad []probe.Result) string {
	s := ""
	for i, r := range bad {
		if i == 3 {
			s += fmt.Sprintf("; and %d more", len(bad)-3)
			break
		}
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%v %s (%s)", r.Target, r.Status, r.Reason)
	}
	return s
}
