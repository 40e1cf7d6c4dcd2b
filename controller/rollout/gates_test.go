package rollout

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/graygw/graygw/controller/probe"
)

// breakGrayAt makes the sim's gray cluster stop answering from the n-th probe
// call on: a gray side that fails only after a while.
func breakGrayAt(c *sim, n int) {
	probes := 0 // the sim's counter counts cutovers too
	c.block = func(kind string, _ int) {
		if kind != "probe" {
			return
		}
		if probes++; probes == n {
			c.mu.Lock()
			c.grayBroken[5001], c.grayBroken[5002] = true, true
			c.mu.Unlock()
		}
	}
}

// Bake: the gray side breaks after a step's probes passed (the third probe
// call: precheck, step 1, then the bake's first): the step fails during its
// bake and is rolled back; nothing after it runs.
func TestBakeCatchesADelayedFailure(t *testing.T) {
	ctx := ctxT(t)
	c := newSim()
	breakGrayAt(c, 3)
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+"bake: 500ms\nbake_every: 100ms\n")); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Wait(ctx)
	if p.State != StateFailed || p.Step != 1 || p.Steps[0].State != StepRolledBack || !strings.Contains(p.Error, "lost") {
		t.Fatalf("state %s step %d (%s): %s", p.State, p.Step, p.Steps[0].State, p.Error)
	}
	// It failed in the bake: the step's own probes had passed.
	if c.calls < 4 {
		t.Errorf("%d calls: the step failed before its bake", c.calls)
	}
	if got := c.ruleNames(); got != "" {
		t.Errorf("rules left: %q", got)
	}
}

// Without a bake the same delayed failure passes every step (this is what the
// bake is for).
func TestWithoutBakeADelayedFailurePasses(t *testing.T) {
	ctx := ctxT(t)
	c := newSim()
	breakGrayAt(c, 6) // after the last step's probes
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs)); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Wait(ctx); p.State != StateCompleted {
		t.Fatalf("state %s: %s", p.State, p.Error)
	}
}

// Watch: the gray side breaks after the last step (precheck + 4 steps = 5
// probe calls; the watch's second probe is the 7th). With watch_rollback
// every step is rolled back; without, the rollout fails and the rules stay.
func TestWatchAfterTheLastStep(t *testing.T) {
	for _, rollback := range []bool{true, false} {
		ctx := ctxT(t)
		c := newSim()
		breakGrayAt(c, 7)
		r := NewRunner(c, &MemoryStore{}, Options{})
		spec := twoVPCs + "watch: 3s\nbake_every: 100ms\n"
		if rollback {
			spec += "watch_rollback: true\n"
		}
		if _, err := r.Start(ctx, mustSpec(t, spec)); err != nil {
			t.Fatal(err)
		}
		p, _ := r.Wait(ctx)
		if !strings.Contains(p.Error, "watch: probes failed") {
			t.Errorf("rollback %v: error %q", rollback, p.Error)
		}
		if rollback {
			if p.State != StateAborted || c.ruleNames() != "" {
				t.Errorf("watch_rollback: state %s, rules left %q", p.State, c.ruleNames())
			}
		} else if p.State != StateFailed || c.ruleNames() != "r2.5001.192.168.1.5,r2.5001,r2.5002.192.168.2.5,r2.5002" {
			t.Errorf("no watch_rollback: state %s, rules %q", p.State, c.ruleNames())
		}
	}
	// A watch that sees nothing wrong completes the rollout.
	ctx := ctxT(t)
	c := newSim()
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+"watch: 300ms\nbake_every: 100ms\n")); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Wait(ctx); p.State != StateCompleted || !strings.Contains(p.Message, "watched 300ms") {
		t.Fatalf("state %s: %s", p.State, p.Message)
	}
}

func TestBakeAndWatchValidation(t *testing.T) {
	for _, c := range []struct{ add, want string }{
		{"bake: 2h\n", "bake: 2h0m0s: at most 1h"},
		{"watch: 25h\n", "watch: 25h0m0s: at most 24h"},
		{"bake_every: 10ms\n", "bake_every: 10ms: at least 100ms"},
		{"watch_rollback: true\n", "watch_rollback: without watch"},
		{"bake: soon\n", `bake: "soon"`},
	} {
		_, err := mustSpec(t, twoVPCs+c.add).Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.add, err, c.want)
		}
	}
}

// countingSim adds counters to the sim: each probe of a target on gray counts
// on the rule that moved it (unless the rule is dead: the gateways do not use
// it), and a VNI in dropOn makes its gray probes count a drop of that reason
// (the probes themselves still pass: the gateway drops other traffic).
type countingSim struct {
	*sim
	mu     sync.Mutex
	drops  map[string]uint64
	rules  map[string]uint64
	dropOn map[uint32]string
	dead   map[string]bool
}

func newCountingSim() *countingSim {
	return &countingSim{sim: newSim(), drops: map[string]uint64{}, rules: map[string]uint64{},
		dropOn: map[uint32]string{}, dead: map[string]bool{}}
}

func (c *countingSim) Probe(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	res, err := c.sim.Probe(ctx, ts, o)
	c.sim.mu.Lock()
	defer c.sim.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range ts {
		for name, sc := range c.sim.rules {
			if sc.Match.VNI != nil && uint32(*sc.Match.VNI) == t.VNI && (sc.Match.Src == "" || sc.Match.Src == t.VM.String()) {
				if !c.dead[name] {
					c.rules[name] += 3
				}
				if r := c.dropOn[t.VNI]; r != "" {
					c.drops[r]++
				}
				break
			}
		}
	}
	return res, err
}

func (c *countingSim) Drops(context.Context) (map[string]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.drops), nil
}

func (c *countingSim) RulePackets(_ context.Context, rule string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rules[rule], nil
}

const gated = "gates: {no_new_drops: [NO_BACKEND, TTL_EXPIRED], rule_traffic: true}\n"

// Counter gates: steps pass with their verdicts recorded; a step during which
// the gateways count NO_BACKEND drops fails its gate and is rolled back (the
// probes alone passed); a rule the gateways do not count fails rule_traffic.
func TestCounterGates(t *testing.T) {
	ctx := ctxT(t)
	c := newCountingSim()
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+gated)); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Wait(ctx)
	if p.State != StateCompleted || len(p.Steps[0].Gates) != 2 || !p.Steps[0].Gates[0].OK || !p.Steps[0].Gates[1].OK {
		t.Fatalf("state %s, step 1 gates %+v: %s", p.State, p.Steps[0].Gates, p.Error)
	}

	c = newCountingSim()
	c.dropOn[5002] = "NO_BACKEND"
	r = NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+gated)); err != nil {
		t.Fatal(err)
	}
	p, _ = r.Wait(ctx)
	if p.State != StateFailed || p.Step != 3 || p.Steps[2].State != StepRolledBack ||
		!strings.Contains(p.Error, "gate no_new_drops: new drops during the step: NO_BACKEND +") {
		t.Fatalf("drops: state %s step %d (%s): %s", p.State, p.Step, p.Steps[2].State, p.Error)
	}
	if got := c.ruleNames(); got != "r2.5001.192.168.1.5,r2.5001" {
		t.Errorf("rules after the gate failed: %s", got)
	}

	c = newCountingSim()
	c.dead["r2.5001"] = true
	r = NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+gated)); err != nil {
		t.Fatal(err)
	}
	p, _ = r.Wait(ctx)
	if p.State != StateFailed || p.Step != 2 || !strings.Contains(p.Error, "gate rule_traffic: rule r2.5001 matched no packet") {
		t.Fatalf("dead rule: state %s step %d: %s", p.State, p.Step, p.Error)
	}

	// A controller that reads no counters cannot run a gated plan.
	r = NewRunner(newSim(), &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, twoVPCs+gated)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "reads no counters") {
		t.Fatalf("no counters: %v", err)
	}
	if _, err := mustSpec(t, twoVPCs+"gates: {no_new_drops: [BOGUS]}\n").Validate(); err == nil || !strings.Contains(err.Error(), `"BOGUS": not a drop reason`) {
		t.Errorf("bad reason: %v", err)
	}
}

// healthSim is a sim whose gray pool's backends can be down.
type healthSim struct {
	*sim
	mu   sync.Mutex
	down []string
}

func (h *healthSim) Unhealthy(context.Context, string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.down), nil
}

// pool_healthy: a pool already down refuses the start; a backend that goes
// down during a step fails that step's gate and rolls it back.
func TestPoolHealthyGate(t *testing.T) {
	ctx := ctxT(t)
	spec := twoVPCs + "gates: {pool_healthy: true}\n"
	h := &healthSim{sim: newSim(), down: []string{"gray-2 (10.3.0.22): 3 echo requests failed"}}
	if _, err := NewRunner(h, &MemoryStore{}, Options{}).Start(ctx, mustSpec(t, spec)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "gray-2") {
		t.Fatalf("start onto a pool with a backend down: %v", err)
	}
	h = &healthSim{sim: newSim()}
	probes := 0
	h.block = func(kind string, _ int) {
		if kind == "probe" {
			if probes++; probes == 3 { // step 2's probes
				h.mu.Lock()
				h.down = []string{"gray-1 (10.3.0.21): 3 echo requests failed"}
				h.mu.Unlock()
			}
		}
	}
	r := NewRunner(h, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, spec)); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Wait(ctx)
	if p.State != StateFailed || p.Step != 2 || p.Steps[1].State != StepRolledBack ||
		!strings.Contains(p.Error, "gate pool_healthy: backends of gray-router down: gray-1") {
		t.Fatalf("state %s step %d: %s", p.State, p.Step, p.Error)
	}
	if g := p.Steps[0].Gates; len(g) != 1 || !g[0].OK || g[0].Gate != "pool_healthy" {
		t.Errorf("step 1 gates %+v", g)
	}
	if _, err := NewRunner(newSim(), &MemoryStore{}, Options{}).Start(ctx, mustSpec(t, spec)); !errors.Is(err, ErrRefused) {
		t.Errorf("a controller without health checks accepted pool_healthy: %v", err)
	}
}
