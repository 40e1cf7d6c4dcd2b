package failover

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graygw/graygw/controller/intent"
)

type fakeTarget struct {
	in   *intent.Intent
	mu   sync.Mutex
	sets []map[string][]string
}

func (f *fakeTarget) Intent() (*intent.Intent, uint64) { return f.in, 1 }
func (f *fakeTarget) SetExcluded(ex map[string][]string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, ex)
	return true, nil
}

// Run: a member of a health_failover pool whose address is down is excluded
// after the hold-down, and restored when it is up again; a pool without
// health_failover is left alone.
func TestRunFollowsHealth(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.2.0.11"), netip.MustParseAddr("10.2.0.12"), netip.MustParseAddr("10.3.0.21")
	in := &intent.Intent{
		Backends: []intent.Backend{{Name: "b1", UnderlayIP: a}, {Name: "b2", UnderlayIP: b}, {Name: "g1", UnderlayIP: c}},
		Pools: []intent.Pool{
			{Name: "base", HealthFailover: true, Members: []intent.Member{{Backend: "b1", Weight: 1}, {Backend: "b2", Weight: 1}}},
			{Name: "gray", Members: []intent.Member{{Backend: "g1", Weight: 1}, {Backend: "b2", Weight: 1}}},
		},
	}
	tg := &fakeTarget{in: in}
	var mu sync.Mutex
	down := map[netip.Addr]bool{}
	setDown := func(addr netip.Addr, v bool) {
		mu.Lock()
		defer mu.Unlock()
		down[addr] = v
	}
	var events []Event
	var evMu sync.Mutex
	m := NewMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Config: Config{HoldDown: 300 * time.Millisecond}, Down: func() map[netip.Addr]bool {
			mu.Lock()
			defer mu.Unlock()
			out := map[netip.Addr]bool{}
			for k, v := range down {
				out[k] = v
			}
			return out
		}, Target: tg, Metrics: m, OnEvent: func(e Event) { evMu.Lock(); events = append(events, e); evMu.Unlock() }})
	}()
	defer func() { cancel(); <-done }()
	last := func() map[string][]string {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		if len(tg.sets) == 0 {
			return nil
		}
		return tg.sets[len(tg.sets)-1]
	}
	wait := func(what string, ok func(map[string][]string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(last()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: last exclusions %v", what, last())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	setDown(b, true)
	start := time.Now()
	wait("b2 excluded", func(ex map[string][]string) bool { return slices.Equal(ex["base"], []string{"b2"}) && len(ex) == 1 })
	if v := testutil.ToFloat64(m.excluded.WithLabelValues("base", "b2")); v != 1 {
		t.Errorf("%s{base,b2} = %v while excluded", MetricExcluded, v)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("excluded after %v, before the hold-down", d)
	}
	setDown(b, false)
	wait("b2 restored", func(ex map[string][]string) bool { return ex != nil && len(ex) == 0 })
	if n := testutil.CollectAndCount(m.excluded); n != 0 {
		t.Errorf("%d %s series after the restoration", n, MetricExcluded)
	}
	if e, r := testutil.ToFloat64(m.events.WithLabelValues("excluded")), testutil.ToFloat64(m.events.WithLabelValues("restored")); e != 1 || r != 1 {
		t.Errorf("events: excluded %v restored %v", e, r)
	}
	evMu.Lock()
	defer evMu.Unlock()
	if len(events) != 2 || events[0].Kind != Excluded || events[1].Kind != Restored || events[0].Pool != "base" {
		t.Errorf("events %v", events)
	}
}
