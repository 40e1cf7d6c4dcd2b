package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// mirrorSim is sim that also mirrors: each step's mirror rule is recorded,
// and copies are counted for the rules that gray receives (none when the VNI
// is dark on gray).
type mirrorSim struct {
	*sim
	mu      sync.Mutex
	mirrors []string // rule names, in order
	rates   []int
	dark    map[uint32]bool
	scopes  map[string]Scope
}

func (m *mirrorSim) Mirror(ctx context.Context, sc Scope, pool string, rate int) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mirrors, m.rates = append(m.mirrors, sc.Name), append(m.rates, rate)
	m.scopes[sc.Name] = sc
	return sc.Name, nil
}

func (m *mirrorSim) MirrorCopies(ctx context.Context, rule string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sc := m.scopes[rule]; sc.Match.VNI != nil && m.dark[uint32(*sc.Match.VNI)] {
		return 0, nil
	}
	return 7, nil
}

const mirroredVPCs = twoVPCs + "mirror: 20ms\nmirror_rate: 4\n"

// With a mirror phase, each step mirrors (at the plan's rate) before it cuts
// over, under the same rule name; a step whose mirror made no copy fails and
// its mirror rule is removed, the cutover never made.
func TestMirrorPhaseBeforeEachCutover(t *testing.T) {
	ctx := ctxT(t)
	c := &mirrorSim{sim: newSim(), dark: map[uint32]bool{}, scopes: map[string]Scope{}}
	r := NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, mirroredVPCs)); err != nil {
		t.Fatal(err)
	}
	p, err := r.Wait(ctx)
	if err != nil || p.State != StateCompleted {
		t.Fatalf("wait: %v %+v", err, p)
	}
	if got := strings.Join(c.mirrors, ","); got != c.ruleNames() || len(c.mirrors) != 4 || c.rates[0] != 4 {
		t.Fatalf("mirrors %s (rates %v), cutovers %s", got, c.rates, c.ruleNames())
	}

	c = &mirrorSim{sim: newSim(), dark: map[uint32]bool{5002: true}, scopes: map[string]Scope{}}
	r = NewRunner(c, &MemoryStore{}, Options{})
	if _, err := r.Start(ctx, mustSpec(t, mirroredVPCs)); err != nil {
		t.Fatal(err)
	}
	p, _ = r.Wait(ctx)
	if p.State != StateFailed || p.Step != 3 || !strings.Contains(p.Error, "no copy") {
		t.Fatalf("state %s at step %d: %s", p.State, p.Step, p.Error)
	}
	if got := strings.Join(c.rollbacks, ","); got != "r2.5002.192.168.2.5" || c.cutovers != 2 {
		t.Fatalf("rollbacks %s, %d cutovers; want the dark step's mirror removed and 2 cutovers", got, c.cutovers)
	}
}

func TestMirrorPlanRefusals(t *testing.T) {
	for _, doc := range []string{twoVPCs + "mirror: 2h\n", twoVPCs + "mirror: 1m\nmirror_rate: 70000\n", twoVPCs + "mirror: 1m\nmirror_rate: -1\n", twoVPCs + "mirror_rate: 4\n"} {
		s, err := ParsePlan([]byte(doc))
		if err == nil {
			_, err = s.Validate()
		}
		if err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}
