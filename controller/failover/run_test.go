package failover

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
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
	hist := store.NewMemory()
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
		}, Target: tg, Metrics: m, History: hist, OnEvent: func(e Event) { evMu.Lock(); events = append(events, e); evMu.Unlock() }})
	}()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	defer stop()
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
	// Both decisions are in the history, in order, by the failover, with why.
	stop()
	h, err := hist.History(context.Background(), store.Query{})
	if err != nil || len(h) != 2 {
		t.Fatalf("history: %+v, %v; want the 2 decisions", h, err)
	}
	for i, want := range []struct{ op, summary, reason string }{
		{"failover-restored", "pool base backend b2 restored", "up for "},
		{"failover-excluded", "pool base backend b2 excluded", "down for "},
	} {
		e := h[i]
		if !e.Record || e.Actor != HistoryActor || e.Operation != want.op || e.Summary != want.summary || !strings.HasPrefix(e.Reason, want.reason) {
			t.Errorf("history[%d] = %+v, want %s %q (reason %q...)", i, e, want.op, want.summary, want.reason)
		}
	}
}
