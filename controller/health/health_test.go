package health

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/internal/syncbuf"
)

// TestMachineRiseFall: fall failures in a row take an up backend down, rise
// successes in a row bring it back; an interrupted streak starts over; an
// unknown backend is up at its first success and down after fall failures.
func TestMachineRiseFall(t *testing.T) {
	const rise, fall = 2, 3
	cases := []struct {
		name  string
		steps string // o: success, x: failure
		want  string // state after each step: U up, D down, ? unknown
	}{
		{"first success is up", "o", "U"},
		{"unknown falls after fall failures", "xxx", "??D"},
		{"up falls after fall failures", "oxxx", "UUUD"},
		{"a success resets the fall streak", "oxxoxx", "UUUUUU"},
		{"down rises after rise successes", "xxxoo", "??DDU"},
		{"a failure resets the rise streak", "xxxoxoo", "??DDDDU"},
		{"flap down and up again", "oxxxooxxx", "UUUDDUUUD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m machine
			var got strings.Builder
			for _, s := range tc.steps {
				m.observe(s == 'o', rise, fall)
				got.WriteByte(map[State]byte{StateUp: 'U', StateDown: 'D', StateUnknown: '?'}[m.state])
			}
			if got.String() != tc.want {
				t.Fatalf("%s: states %s, want %s", tc.steps, got.String(), tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	d := Config{}.WithDefaults()
	if d.Interval != time.Second || d.Timeout != 500*time.Millisecond || d.Rise != 2 || d.Fall != 3 || d.Mode != ModeICMP {
		t.Fatalf("defaults: %+v", d)
	}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Interval: time.Millisecond}, []string{"interval: 1ms is below 10ms"}},
		{Config{Interval: time.Second, Timeout: 2 * time.Second}, []string{"timeout: 2s is longer than interval 1s"}},
		{Config{Rise: -1, Fall: 101}, []string{"rise: -1", "fall: 101"}},
		{Config{Mode: "http"}, []string{`mode: "http": want icmp or tcp`}},
		{Config{Mode: ModeTCP}, []string{"port: 0: mode tcp needs a port"}},
		{Config{Port: 80}, []string{"port: 80: applies to mode tcp only"}},
	} {
		err := tc.cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%+v: %v, want ErrInvalidConfig", tc.cfg, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v, want %q", tc.cfg, err, w)
			}
		}
	}
}

// fakeProber answers per address as set.
type fakeProber struct {
	mu    sync.Mutex
	down  map[netip.Addr]bool
	count map[netip.Addr]int
}

func newFake() *fakeProber {
	return &fakeProber{down: map[netip.Addr]bool{}, count: map[netip.Addr]int{}}
}

func (f *fakeProber) set(a netip.Addr, down bool) {
	f.mu.Lock()
	f.down[a] = down
	f.mu.Unlock()
}

func (f *fakeProber) Probe(_ context.Context, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count[a]++
	if f.down[a] {
		return errors.New("fake: no answer")
	}
	return nil
}

// waitState waits until addr is in state want and returns how long it took.
func waitState(t *testing.T, c *Checker, addr netip.Addr, want State, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ch := c.Changed()
		st, ok := c.Status(addr)
		if ok && st.State == want {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-time.After(time.Until(start.Add(timeout))):
			t.Fatalf("%s: state %v (checked %v), want %v after %s", addr, st.State, ok, want, timeout)
		}
	}
}

var (
	addrA = netip.MustParseAddr("10.2.0.11")
	addrB = netip.MustParseAddr("10.2.0.12")
)

// TestCheckerFollowsTargets: with a fake prober, a backend goes down after
// fall failed intervals and up after rise good ones; each transition is logged
// with its reason and wakes Changed; targets added and removed are checked and
// forgotten; the metrics say so.
func TestCheckerFollowsTargets(t *testing.T) {
	const interval = 20 * time.Millisecond
	f := newFake()
	var logs syncbuf.Buffer
	c, err := New(Config{Interval: interval, Timeout: 10 * time.Millisecond, Rise: 2, Fall: 3},
		WithProber(f), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Up(addrA) {
		t.Fatal("an address not checked must count as up")
	}
	c.SetTargets([]Target{{Addr: addrA, Refs: []Ref{{Pool: "base", Backend: "base-1"}}}})
	if st, _ := c.Status(addrA); st.State != StateUnknown || !st.Up() {
		t.Fatalf("new target: %+v, want unknown and counted up", st)
	}
	waitState(t, c, addrA, StateUp, time.Second)

	f.set(addrA, true)
	d := waitState(t, c, addrA, StateDown, 2*time.Second)
	t.Logf("down after %s (fall 3 x interval %s)", d, interval)
	if d < 2*interval {
		t.Errorf("down after %s: sooner than fall (3) checks %s apart", d, interval)
	}
	st, _ := c.Status(addrA)
	if st.Up() || !strings.Contains(st.Reason, "3 checks failed in a row (last: fake: no answer)") {
		t.Fatalf("down status: %+v", st)
	}
	if c.Up(addrA) {
		t.Fatal("Up says a down backend is up")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP graygw_backend_up 1 while the backend counts as up for the BGP announcement (up, or not checked yet), 0 when down.
# TYPE graygw_backend_up gauge
graygw_backend_up{backend="base-1",pool="base"} 0
`), MetricBackendUp); err != nil {
		t.Error(err)
	}
	if n := testutil.ToFloat64(c.checks.WithLabelValues("failed")); n < 3 {
		t.Errorf("failed checks counted: %v, want >= 3", n)
	}

	f.set(addrA, false)
	d = waitState(t, c, addrA, StateUp, 2*time.Second)
	t.Logf("up again after %s (rise 2 x interval %s)", d, interval)
	if st, _ := c.Status(addrA); st.Reason != "2 checks succeeded in a row" {
		t.Fatalf("up status: %+v", st)
	}
	out := logs.String()
	for _, w := range []string{
		`msg="backend down" event=backendDown backend=base-1 addr=10.2.0.11 pools=base from=up to=down reason="3 checks failed in a row (last: fake: no answer)"`,
		`msg="backend up" event=backendUp backend=base-1 addr=10.2.0.11 pools=base from=down to=up reason="2 checks succeeded in a row"`,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %s\n%s", w, out)
		}
	}

	// An added backend is checked; a removed one is forgotten (and counts up).
	f.set(addrB, true)
	ch := c.Changed()
	c.SetTargets([]Target{{Addr: addrB, Refs: []Ref{{Pool: "base", Backend: "base-2"}, {Pool: "gray", Backend: "base-2"}}}})
	select {
	case <-ch:
	default:
		t.Fatal("SetTargets did not wake Changed")
	}
	if _, ok := c.Status(addrA); ok {
		t.Fatal("a removed target is still checked")
	}
	waitState(t, c, addrB, StateDown, 2*time.Second)
	if got := c.Statuses(); len(got) != 1 || got[0].Addr != addrB || len(got[0].Refs) != 2 {
		t.Fatalf("statuses: %+v", got)
	}
	f.mu.Lock()
	nA := f.count[addrA]
	f.mu.Unlock()
	time.Sleep(5 * interval)
	f.mu.Lock()
	if f.count[addrA] != nA {
		t.Errorf("a removed target is still probed (%d -> %d)", nA, f.count[addrA])
	}
	f.mu.Unlock()
}

// TestSetTargetsNeverWaits: SetTargets and Status return at once while every
// check hangs until its timeout.
func TestSetTargetsNeverWaits(t *testing.T) {
	// Probes hang until their 10 s timeout (or their target is dropped), so a
	// SetTargets or Statuses that waited for one would take seconds: no tight
	// time bound is needed to see it.
	var hanging atomic.Int32
	block := ProberFunc(func(ctx context.Context, _ netip.Addr) error {
		hanging.Add(1)
		defer hanging.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	})
	c, err := New(Config{Interval: 10 * time.Second, Timeout: 10 * time.Second}, WithProber(block),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ts []Target
	for i := range 200 {
		ts = append(ts, Target{Addr: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})})
	}
	c.SetTargets(ts)
	// First checks start within an interval, at random: wait for some to hang.
	for deadline := time.Now().Add(15 * time.Second); hanging.Load() < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 200 checks started in 15 s", hanging.Load())
		}
	}
	for i := range 20 {
		n := hanging.Load()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.SetTargets(ts[:150+i%2*50]) // drop and re-add 50, keep the rest
			c.Statuses()
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: SetTargets+Statuses still blocked after 5 s, with %d checks hanging", i, n)
		}
	}
}

// TestTargetsOf: one target per underlay address, with every pool membership.
func TestTargetsOf(t *testing.T) {
	in, err := intent.Load([]byte(`version: 1
gateways:
  - {name: gw1, p4runtime: "127.0.0.1:9559", device_id: 1, bgp_next_hop: 10.1.0.1, ports: {2: {interface: p2, mac: "02:00:00:00:01:02"}}}
vips:
  - {name: vpc, id: 1, address: 10.255.0.1, default_pool: base}
pools:
  - name: base
    id: 1
    cluster: base
    backends:
      - {name: base-1, id: 11, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}
      - {name: base-2, id: 12, underlay_ip: 10.2.0.12, mac: "02:00:00:00:20:12", port: 2, weight: 0}
  - name: gray
    id: 2
    cluster: gray
    backends:
      - {name: base-1, id: 11, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := TargetsOf(in)
	if len(got) != 2 || got[0].Addr != addrA || len(got[0].Refs) != 2 || got[0].Refs[1] != (Ref{"gray", "base-1"}) ||
		got[1].Addr != addrB || len(got[1].Refs) != 1 {
		t.Fatalf("TargetsOf: %+v", got)
	}
}

// TestTCPCheck: a TCP check is up while something listens on the port, down
// (connection refused) once it closes, and up again when it listens again.
func TestTCPCheck(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	go acceptAll(lis)
	var logs syncbuf.Buffer
	c, err := New(Config{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 2, Fall: 3, Mode: ModeTCP, Port: port},
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	c.SetTargets([]Target{{Addr: lo, Refs: []Ref{{"p", "b"}}}})
	waitState(t, c, lo, StateUp, time.Second)
	lis.Close()
	waitState(t, c, lo, StateDown, 2*time.Second)
	if st, _ := c.Status(lo); !strings.Contains(st.Reason, "TCP connects to port") || !strings.Contains(st.Reason, "connection refused") {
		t.Fatalf("reason: %q", st.Reason)
	}
	if lis, err = net.Listen("tcp", lis.Addr().String()); err != nil {
		t.Skipf("could not listen on the port again: %v", err)
	}
	defer lis.Close()
	go acceptAll(lis)
	waitState(t, c, lo, StateUp, 2*time.Second)
	t.Log(logs.String())
}

func acceptAll(lis net.Listener) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
