package service_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/health"
)

// switchProber answers every address except those set down.
type switchProber struct {
	mu   sync.Mutex
	down map[netip.Addr]bool
}

func (p *switchProber) set(down bool, addrs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range addrs {
		p.down[netip.MustParseAddr(a)] = down
	}
}

func (p *switchProber) Probe(_ context.Context, a netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[a] {
		return errors.New("test: no reply")
	}
	return nil
}

// TestBGPWithdrawsWithoutHealthyBackend: with backend health checking (a real
// checker over a switchable prober, following the engine's intent), a VIP
// stays announced while one of its pools has a backend up; once every backend
// of every pool is down it is withdrawn with no-healthy-backend, explained per
// backend; the first recovered backend announces it again.
func TestBGPWithdrawsWithoutHealthyBackend(t *testing.T) {
	a := startStoppableAgent(t)
	sp := newSpeaker(t)
	pr := &switchProber{down: map[netip.Addr]bool{}}
	hc, err := health.New(health.Config{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Rise: 2, Fall: 3},
		health.WithProber(pr), health.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	cfg := bgpConfig(sp)
	cfg.Backends = hc
	c := startControllerWith(t, ctlOpts{bgp: cfg})
	fctx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	go hc.Follow(fctx, c.Engine)

	if _, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(a.Addr), Options: opts("t")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Service.StartBGP(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitPaths(t, sp, "announced at start", path1)
	for deadline := time.Now().Add(5 * time.Second); len(hc.Statuses()) != 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the checker does not follow the intent: %+v", hc.Statuses())
		}
	}

	// The base pool's backends down: the gray pool still has one.
	pr.set(true, "10.2.0.11", "10.2.0.12")
	waitBackend(t, hc, "10.2.0.11", health.StateDown)
	waitBackend(t, hc, "10.2.0.12", health.StateDown)
	st, _ := c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{})
	if p := st.GetAnnounced(); len(p) != 1 || !strings.Contains(p[0].GetDetail(), "healthy backends (weight > 0 and not down) per pool: base 0 (not counted: base-1 (10.2.0.11) down since") ||
		!strings.Contains(p[0].GetDetail(), "gray 1") {
		t.Fatalf("announced with the gray pool's backend up: %v", st)
	}

	// Every backend down: withdrawn, with the reason.
	t0 := time.Now()
	pr.set(true, "10.3.0.21")
	waitPaths(t, sp, "every backend down")
	t.Logf("last backend's checks failing -> withdrawn after %s (fall 3 x 20ms)", time.Since(t0).Round(time.Millisecond))
	st, _ = c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{})
	w := st.GetWithdrawn()
	if len(w) != 1 || !slices.Equal(w[0].GetReasons(), []string{string(bgp.ReasonNoHealthyBackend)}) ||
		!strings.Contains(w[0].GetDetail(), "gray-1 (10.3.0.21) down since") ||
		!strings.Contains(w[0].GetDetail(), "3 checks failed in a row (last: test: no reply)") {
		t.Fatalf("withdrawn: %v", st)
	}

	// One backend back: announced again after rise checks.
	t0 = time.Now()
	pr.set(false, "10.2.0.12")
	waitPaths(t, sp, "a backend recovered", path1)
	t.Logf("a backend answering again -> announced after %s (rise 2 x 20ms)", time.Since(t0).Round(time.Millisecond))
	if st, _ := hc.Status(netip.MustParseAddr("10.2.0.12")); st.State != health.StateUp {
		t.Fatalf("announced before the backend was up: %+v", st)
	}
}

func waitBackend(t *testing.T, hc *health.Checker, addr string, want health.State) {
	t.Helper()
	a := netip.MustParseAddr(addr)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, _ := hc.Status(a); st.State == want {
			return
		}
		if time.Now().After(deadline) {
			st, _ := hc.Status(a)
			t.Fatalf("%s: %+v, want %v", addr, st, want)
		}
	}
}
