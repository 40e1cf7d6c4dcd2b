package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
)

// sim is a simulated controller and network: rules move (vni, vm) to the gray
// pool; probes are answered by gray-1 or base-1 accordingly, except that a
// VNI marked broken on gray loses its gray probes.
type sim struct {
	mu         sync.Mutex
	rules      map[string]Scope
	order      []string
	cutovers   int // applied (not dry)
	dryRuns    int
	rollbacks  []string
	grayBroken map[uint32]bool
	refuse     func(Scope) error
	// block, if set, is called at the start of every applied cutover and probe
	// (with the kind and a counter) and may wait.
	block func(kind string, n int)
	calls int
}

func newSim() *sim { return &sim{rules: map[string]Scope{}, grayBroken: map[uint32]bool{}} }

func (s *sim) Cutover(ctx context.Context, sc Scope, pool string, dry bool) (string, error) {
	if s.refuse != nil {
		if err := s.refuse(sc); err != nil {
			return "", fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	s.mu.Lock()
	if dry {
		s.dryRuns++
		s.mu.Unlock()
		return sc.Name, nil
	}
	if err := s.enter(ctx, "cutover"); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutovers++
	if _, ok := s.rules[sc.Name]; !ok {
		s.order = append(s.order, sc.Name)
	}
	s.rules[sc.Name] = sc
	return sc.Name, nil
}

// enter starts an applied cutover or probe (kind), called with s.mu held:
// it counts the call, releases s.mu, runs block and returns ctx's error.
func (s *sim) enter(ctx context.Context, kind string) error {
	s.calls++
	n, block := s.calls, s.block
	s.mu.Unlock()
	if block != nil {
		block(kind, n)
	}
	return ctx.Err()
}

func (s *sim) Rollback(ctx context.Context, rule string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbacks = append(s.rollbacks, rule)
	delete(s.rules, rule)
	for i, r := range s.order {
		if r == rule {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return nil
}

// onGray says whether the rules move t.
func (s *sim) onGray(t probe.Target) bool {
	for _, sc := range s.rules {
		if sc.Match.VNI != nil && uint32(*sc.Match.VNI) == t.VNI && (sc.Match.Src == "" || sc.Match.Src == t.VM.String()) {
			return true
		}
	}
	return false
}

func (s *sim) Probe(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	s.mu.Lock()
	if err := s.enter(ctx, "probe"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o = o.WithDefaults()
	var out []probe.Result
	for _, t := range ts {
		r := probe.Result{Target: t, Sent: o.Count}
		gray := s.onGray(t)
		a := probe.Answer{Backend: "base-1", Cluster: intent.ClusterBase, Replies: o.Count}
		if gray {
			a = probe.Answer{Backend: "gray-1", Cluster: intent.ClusterGray, Replies: o.Count}
		}
		expectGray := t.ExpectPool == "gray-router" || t.ExpectCluster == intent.ClusterGray
		switch {
		case gray && s.grayBroken[t.VNI]:
			r.Status, r.Reason = probe.StatusLost, fmt.Sprintf("%d of %d requests unanswered", o.Count, o.Count)
		case gray != expectGray:
			r.Received, r.Answers = o.Count, []probe.Answer{a}
			r.Status, r.Reason = probe.StatusWrongBackend, "answered by "+a.Backend
		default:
			a.Expected = true
			r.Received, r.Answers, r.Status = o.Count, []probe.Answer{a}, probe.StatusOK
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *sim) ruleNames() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.order, ",")
}

const twoVPCs = `version: 1
name: r2
vip: vpc-router
pool: gray-router
probe: {count: 2, interval: 1ms, timeout: 10ms}
vpcs:
  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5, 192.168.1.6, 192.168.1.7]}
  - {vni: 5002, router: 192.168.2.1, vms: [192.168.2.5, 192.168.2.6]}
`

func mustSpec(t *testing.T, doc string) *PlanSpec {
	t.Helper()
	s, err := ParsePlan([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRolloutCompletes(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	var mu sync.Mutex
	var msgs []string
	r := NewRunner(c, st, Options{OnProgress: func(p *Progress) {
		mu.Lock()
		msgs = append(msgs, fmt.Sprintf("%s %d/%d %d", p.State, p.Step, p.Total, p.VNI))
		mu.Unlock()
	}})
	p, err := r.Start(ctx, mustSpec(t, twoVPCs))
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 4 || len(p.Precheck) != 5 {
		t.Fatalf("start: %+v", p)
	}
	p, err = r.Wait(ctx)
	if err != nil || p.State != StateCompleted {
		t.Fatalf("wait: %v %+v", err, p)
	}
	if got := c.ruleNames(); got != "r2.5001.192.168.1.5,r2.5001,r2.5002.192.168.2.5,r2.5002" {
		t.Errorf("rules %s", got)
	}
	if c.dryRuns != 4 || c.cutovers != 4 {
		t.Errorf("%d dry runs, %d cutovers, want 4 and 4", c.dryRuns, c.cutovers)
	}
	// Step 1's probes: only 192.168.1.5 on gray, every other VM still on base.
	for _, res := range p.Steps[0].Probes {
		wantGray := res.Target.VNI == 5001 && res.Target.VM.String() == "192.168.1.5"
		if res.Status != probe.StatusOK || (res.Answers[0].Backend == "gray-1") != wantGray {
			t.Errorf("step 1 probe %v: %+v", res.Target, res)
		}
	}
	for _, s := range p.Steps {
		if s.State != StepDone || s.Rule == "" || len(s.Probes) != 5 {
			t.Errorf("step %v: %+v", s.Step, s)
		}
	}
	// Progress reported live, in order, every step's VNI.
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(msgs, "|")
	for _, w := range []string{"running 1/4 5001", "running 2/4 5001", "running 3/4 5002", "running 4/4 5002", "completed 4/4 5002"} {
		if !strings.Contains(joined, w) {
			t.Errorf("no progress %q in %s", w, joined)
		}
	}
	saved, err := st.Load(ctx)
	if err != nil || saved.State != StateCompleted || saved.Steps[3].State != StepDone {
		t.Errorf("saved %v %+v", err, saved)
	}
}

func TestFailedStepIsRolledBack(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	c.grayBroken[5002] = true
	r := NewRunner(c, st, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Wait(ctx)
	if p.State != StateFailed || p.Step != 3 {
		t.Fatalf("state %s at step %d, want failed at 3: %s", p.State, p.Step, p.Error)
	}
	s := p.Steps[2]
	if s.State != StepRolledBack || len(s.AfterRollback) == 0 || !strings.Contains(p.Error, "5002/192.168.2.5 lost") || !strings.Contains(p.Error, "rolled back") {
		t.Errorf("step 3: %+v\nerror: %s", s, p.Error)
	}
	for _, a := range s.AfterRollback {
		if a.Status != probe.StatusOK {
			t.Errorf("after rollback %v: %+v", a.Target, a)
		}
	}
	if got := c.ruleNames(); got != "r2.5001.192.168.1.5,r2.5001" {
		t.Errorf("rules after the failure: %s (steps 1-2 stay, 3 rolled back)", got)
	}
	if p.Steps[3].State != StepPending {
		t.Errorf("step 4 ran: %+v", p.Steps[3])
	}
	// Fixed gray backend: resume retries the failed step and completes.
	delete(c.grayBroken, 5002)
	if _, err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ = r.Wait(ctx); p.State != StateCompleted {
		t.Fatalf("after retry: %s %s", p.State, p.Error)
	}
}

func TestPauseResumeAbort(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	release, release3 := make(chan struct{}), make(chan struct{})
	c.block = func(kind string, n int) {
		switch {
		case kind == "cutover" && c.cutovers == 1:
			<-release // hold step 2's cutover
		case kind == "cutover" && c.cutovers == 2:
			<-release3 // and step 3's
		}
	}
	r := NewRunner(c, st, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, func(p *Progress) bool { return p.Step == 2 && p.Steps[1].State == StepApplying })
	p, err := r.Pause(ctx)
	if err != nil || !p.PauseRequested || p.State != StateRunning {
		t.Fatalf("pause: %v %+v", err, p)
	}
	close(release)
	p, err = r.WaitState(ctx, StatePaused)
	if err != nil || p.Step != 2 || p.Steps[1].State != StepDone || p.Steps[2].State != StepPending {
		t.Fatalf("paused: %v step %d %+v", err, p.Step, p.Steps)
	}
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); !errors.Is(err, ErrBusy) {
		t.Errorf("start while paused: %v", err)
	}
	if _, err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// Pause again during step 3, then abort from the pause.
	waitFor(t, r, func(p *Progress) bool { return p.Step == 3 && p.Steps[2].State == StepApplying })
	if _, err := r.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	close(release3)
	if p, err = r.WaitState(ctx, StatePaused); err != nil || p.Steps[2].State != StepDone {
		t.Fatalf("second pause: %v %+v", err, p)
	}
	if _, err := r.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Abort(ctx); err != nil { // twice is harmless
		t.Fatal(err)
	}
	p, err = r.WaitState(ctx, StateAborted)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ruleNames(); got != "" {
		t.Errorf("rules left after abort: %s", got)
	}
	for _, s := range p.Steps {
		if s.State != StepRolledBack && s.State != StepPending {
			t.Errorf("step %v: %s after abort", s.Step, s.State)
		}
	}
	if _, err := r.Resume(ctx); !errors.Is(err, ErrState) {
		t.Errorf("resume after abort: %v", err)
	}
}

// TestRecoverAfterRestart: the process stops while a step is probing; a new
// runner over the same store reports exactly that step, and resuming redoes it
// (idempotent cutover) and finishes.
func TestRecoverAfterRestart(t *testing.T) {
	ctx := ctxT(t)
	c := newSim()
	st := NewFileStore(filepath.Join(t.TempDir(), "rollout.json"))
	stuck := make(chan struct{})
	c.block = func(kind string, n int) {
		if kind == "probe" && c.cutovers == 2 {
			select {
			case stuck <- struct{}{}:
			default:
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	r1 := NewRunner(c, st, Options{})
	if _, err := r1.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	<-stuck
	r1.Close() // the controller dies in step 2's probe
	c.block = nil

	r2 := NewRunner(c, st, Options{})
	p, err := r2.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != StatePaused || p.Step != 2 || p.Steps[1].State != StepProbing ||
		!strings.Contains(p.Message, "controller restarted during step 2 of 4 (vni 5001, probing)") {
		t.Fatalf("recovered: %s step %d %s: %s", p.State, p.Step, p.Steps[1].State, p.Message)
	}
	if _, err := r2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ = r2.Wait(ctx); p.State != StateCompleted {
		t.Fatalf("%s: %s", p.State, p.Error)
	}
	if got := c.ruleNames(); got != "r2.5001.192.168.1.5,r2.5001,r2.5002.192.168.2.5,r2.5002" {
		t.Errorf("rules %s", got)
	}
	if _, err := NewRunner(c, &MemoryStore{}, Options{}).Recover(ctx); !errors.Is(err, ErrNoRollout) {
		t.Errorf("recover from an empty store: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(st.Path))
	if len(entries) != 1 {
		t.Errorf("store directory holds %d files, want only the progress file", len(entries))
	}
}

func TestStartRefusesAndChangesNothing(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	c.refuse = func(s Scope) error {
		if *s.Match.VNI == 5002 {
			return errors.New("unknown VNI 5002")
		}
		return nil
	}
	r := NewRunner(c, st, Options{})
	_, err := r.Start(ctx, mustSpec(t, twoVPCs))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "step 3 (vm 5002/192.168.2.5): rollout: change refused: unknown VNI 5002") {
		t.Fatalf("start: %v", err)
	}
	if c.cutovers != 0 || st.Saves != 0 {
		t.Errorf("%d cutovers and %d saves after a refused start", c.cutovers, st.Saves)
	}
	if _, err := r.Status(); !errors.Is(err, ErrNoRollout) {
		t.Errorf("status: %v", err)
	}
	// A VM already on gray: the precheck fails before any change.
	c.refuse = nil
	c.rules["other"] = Scope{Match: intent.MatchSpec{VNI: ptr(int64(5002)), Src: "192.168.2.6"}}
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); !errors.Is(err, ErrProbeFailed) || !strings.Contains(err.Error(), "precheck") {
		t.Fatalf("precheck: %v", err)
	}
	if c.cutovers != 0 {
		t.Errorf("cutovers after a failed precheck: %d", c.cutovers)
	}
	// A bad plan.
	if _, err := r.Start(ctx, &PlanSpec{Version: 1}); !errors.Is(err, ErrPlan) {
		t.Errorf("bad plan: %v", err)
	}
	// A store that cannot save: the rollout does not start.
	delete(c.rules, "other")
	st.Fail = errors.New("disk full")
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); !errors.Is(err, ErrStore) {
		t.Errorf("store failure: %v", err)
	}
	if c.cutovers != 0 {
		t.Errorf("cutovers with a failing store: %d", c.cutovers)
	}
}

func TestNoRolloutErrors(t *testing.T) {
	r := NewRunner(newSim(), &MemoryStore{}, Options{})
	ctx := ctxT(t)
	for name, f := range map[string]func(context.Context) (*Progress, error){"pause": r.Pause, "resume": r.Resume, "abort": r.Abort} {
		if _, err := f(ctx); !errors.Is(err, ErrNoRollout) {
			t.Errorf("%s without a rollout: %v", name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func waitFor(t *testing.T, r *Runner, ok func(*Progress) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p, err := r.Status(); err == nil && ok(p) {
			return
		}
	}
	p, _ := r.Status()
	t.Fatalf("condition not reached; progress %+v", p)
}

// vipSim is a sim that probes through a named VIP and records the VIPs asked for.
type vipSim struct {
	*sim
	vips []string
}

func (v *vipSim) ProbeVIP(ctx context.Context, vip string, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	v.mu.Lock()
	v.vips = append(v.vips, vip)
	v.mu.Unlock()
	return v.Probe(ctx, ts, o)
}

// TestCheckIsADryRunThroughThePlansVIP: Check dry-runs every step and
// prechecks, changes nothing and saves nothing; a controller implementing
// VIPProber is asked for the plan's VIP, by Check and by a running rollout; a
// failed precheck carries every result.
func TestCheckIsADryRunThroughThePlansVIP(t *testing.T) {
	c := &vipSim{sim: newSim()}
	ctx := ctxT(t)
	p, err := Check(ctx, c, mustSpec(t, twoVPCs))
	if err != nil {
		t.Fatal(err)
	}
	if p.State != StateDryRun || p.Total != len(p.Steps) || p.Total == 0 || len(p.Precheck) == 0 || !strings.Contains(p.Message, "nothing changed") {
		t.Fatalf("dry run: %+v", p)
	}
	if c.cutovers != 0 || c.dryRuns != p.Total || len(c.rules) != 0 {
		t.Fatalf("dry run changed something: %d cutovers, %d dry runs, rules %v", c.cutovers, c.dryRuns, c.rules)
	}
	if len(c.vips) != 1 || c.vips[0] != "vpc-router" {
		t.Fatalf("probed through %v, want the plan's vpc-router", c.vips)
	}
	// A VM already on gray: a *PrecheckError with every result.
	c.rules["other"] = Scope{Match: intent.MatchSpec{VNI: ptr(int64(5002)), Src: "192.168.2.6"}}
	_, err = Check(ctx, c, mustSpec(t, twoVPCs))
	var pe *PrecheckError
	if !errors.As(err, &pe) || !errors.Is(err, ErrProbeFailed) || len(pe.Results) != len(p.Precheck) ||
		!strings.Contains(err.Error(), "precheck before any change: 5002/192.168.2.6 wrong-backend") {
		t.Fatalf("precheck failure: %v", err)
	}
	delete(c.rules, "other")
	// A rollout probes through the plan's VIP too.
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Wait(ctx); p.State != StateCompleted {
		t.Fatalf("rollout: %+v", p)
	}
	for _, v := range c.vips {
		if v != "vpc-router" {
			t.Fatalf("probed through %q", v)
		}
	}
	if len(c.vips) < 2+p.Total {
		t.Fatalf("%d probe runs through ProbeVIP", len(c.vips))
	}
}

// TestActOnTheEndAtOnce: a caller that saw a rollout end (a watcher) may act
// at once, while the rollout's goroutine still records its last decision: a
// new Start is not refused as busy, and an Abort of a failed rollout is not
// lost with the exiting goroutine (both happened with a slow history store).
func TestActOnTheEndAtOnce(t *testing.T) {
	ctx := ctxT(t)
	c, st := newSim(), &MemoryStore{}
	// A history write that takes its time: each decision waits on its own gate.
	gates := map[string]chan struct{}{"rollout-completed": make(chan struct{}), "rollout-step-failed": make(chan struct{})}
	r := NewRunner(c, st, Options{Decision: func(d Decision) {
		if g, ok := gates[d.Operation]; ok {
			<-g
		}
	}})
	release := func(g chan struct{}) { time.Sleep(50 * time.Millisecond); close(g) }
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WaitState(ctx, StateCompleted); err != nil {
		t.Fatal(err)
	}
	go release(gates["rollout-completed"])
	c.mu.Lock()
	c.rules, c.order = map[string]Scope{}, nil // the operator rolled r2 back
	c.grayBroken[5001] = true
	c.mu.Unlock()
	if _, err := r.Start(ctx, mustSpec(t, strings.Replace(twoVPCs, "name: r2", "name: r3", 1))); err != nil {
		t.Fatalf("a start right after the end: %v", err)
	}
	if p, _ := r.WaitState(ctx, StateFailed); p.State != StateFailed {
		t.Fatalf("r3: %s", p.State)
	}
	go release(gates["rollout-step-failed"])
	if _, err := r.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Wait(ctx); err != nil || p.State != StateAborted {
		t.Fatalf("the abort right after the failure was lost: %v %s", err, p.State)
	}
}
