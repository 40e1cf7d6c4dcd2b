// Package health checks the intent's backends (their underlay addresses) and
// says which are up, for the BGP announce decision: a VIP none of whose pools
// has a backend up is withdrawn (bgp.ReasonNoHealthyBackend, docs/health.md).
//
// A Checker runs one goroutine per underlay address: a check (ICMP echo by
// default, or a TCP connect) every Config.Interval, bounded by Config.Timeout,
// and a rise/fall state machine over the results, as haproxy and keepalived
// do: Config.Fall failures in a row take an up backend down, Config.Rise
// successes in a row bring a down one back. A backend not checked yet (just
// added) is unknown, and unknown counts as up: the checker withdraws a VIP
// only on evidence, so a restarted controller does not withdraw what the peers
// hold while its first checks run. Its first success makes it up at once; Fall
// failures in a row make it down.
//
// Health never changes where packets go: it does not touch Maglev or the
// gateways' tables (no flow moves unless the operator moved it); it only
// decides whether a VIP is announced, and shows in status and metrics.
package health

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graygw/graygw/controller/intent"
)

// State is a backend's health.
type State uint8

// States.
const (
	// StateUnknown: not checked yet, or checks failed fewer than Fall times
	// since. Counts as up.
	StateUnknown State = iota
	// StateUp: the backend answers.
	StateUp
	// StateDown: Fall checks in a row failed, and fewer than Rise have
	// succeeded in a row since.
	StateDown
)

func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	default:
		return "unknown"
	}
}

// machine is the rise/fall state machine of one backend.
type machine struct {
	state State
	ok    int // successes in a row
	fail  int // failures in a row
}

// observe records one check's result and returns the state before it and
// whether the state changed.
func (m *machine) observe(success bool, rise, fall int) (from State, changed bool) {
	from = m.state
	if success {
		m.ok, m.fail = m.ok+1, 0
		if m.state == StateUnknown || (m.state == StateDown && m.ok >= rise) {
			m.state = StateUp
		}
	} else {
		m.ok, m.fail = 0, m.fail+1
		if m.state != StateDown && m.fail >= fall {
			m.state = StateDown
		}
	}
	return from, m.state != from
}

// Ref is one membership of a checked address: a backend of a pool.
type Ref struct {
	Pool    string `json:"pool"`
	Backend string `json:"backend"`
}

// Target is one address to check and the pool members it stands for (one
// backend may be in several pools, and backends may share an address).
type Target struct {
	Addr netip.Addr `json:"addr"`
	Refs []Ref      `json:"refs"`
}

// TargetsOf returns the addresses to check for in: the underlay address of
// every member of every pool (weight 0 included: a drained backend's health
// is worth knowing before it is undrained), sorted by address.
func TargetsOf(in *intent.Intent) []Target {
	if in == nil {
		return nil
	}
	by := map[netip.Addr]*Target{}
	for _, p := range in.Pools {
		for _, m := range p.Members {
			b, ok := in.Backend(m.Backend)
			if !ok || !b.UnderlayIP.IsValid() {
				continue
			}
			t := by[b.UnderlayIP]
			if t == nil {
				t = &Target{Addr: b.UnderlayIP}
				by[b.UnderlayIP] = t
			}
			t.Refs = append(t.Refs, Ref{Pool: p.Name, Backend: b.Name})
		}
	}
	out := make([]Target, 0, len(by))
	for _, t := range by {
		slices.SortFunc(t.Refs, compareRef)
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Target) int { return a.Addr.Compare(b.Addr) })
	return out
}

func compareRef(a, b Ref) int {
	return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.Backend, b.Backend))
}

// Status is one checked address's health.
type Status struct {
	Target
	// State is the current state; Since when it was entered (the first check
	// for StateUnknown: when checking started).
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// Reason is why the state was entered ("3 echo requests failed in a row
	// (last: ...)"); empty while unknown.
	Reason string `json:"reason,omitempty"`
	// LastCheck is when the last check ended (zero before the first), and
	// LastError what it failed with (empty: it succeeded).
	LastCheck time.Time `json:"lastCheck"`
	LastError string    `json:"lastError,omitempty"`
}

// Up says whether the status counts as up (up, or unknown).
func (s Status) Up() bool { return s.State != StateDown }

// Checker checks backends. Its methods are safe for concurrent use and never
// wait for a check.
type Checker struct {
	cfg    Config
	prober Prober
	what   string // "echo requests": what a check sends, for the reasons
	log    *slog.Logger
	checks *prometheus.CounterVec

	mu      sync.Mutex
	targets map[netip.Addr]*target
	changed chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

type target struct {
	refs      []Ref
	m         machine
	since     time.Time
	reason    string
	lastCheck time.Time
	lastErr   string
	cancel    context.CancelFunc
}

// Option configures a Checker.
type Option func(*Checker)

// WithLogger sends the checker's logs (state transitions at Info and Warn,
// single failed checks at Debug) to l.
func WithLogger(l *slog.Logger) Option { return func(c *Checker) { c.log = l } }

// WithProber replaces the prober Config.Mode selects (for tests).
func WithProber(p Prober) Option {
	return func(c *Checker) { c.prober, c.what = p, "checks" }
}

// Metric names.
const (
	MetricBackendUp = "graygw_backend_up"
	MetricChecks    = "graygw_backend_health_checks_total"
)

// New returns a checker with no targets (see SetTargets, Follow). cfg is
// validated (errors wrap ErrInvalidConfig).
func New(cfg Config, opts ...Option) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	c := &Checker{cfg: cfg, log: slog.Default(), targets: map[netip.Addr]*target{}, changed: make(chan struct{}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricChecks,
			Help: "Backend health checks, by result (ok, failed)."}, []string{"result"})}
	switch cfg.Mode {
	case ModeTCP:
		c.prober, c.what = TCP{Port: uint16(cfg.Port)}, fmt.Sprintf("TCP connects to port %d", cfg.Port)
	default:
		c.prober, c.what = NewICMP(), "echo requests"
	}
	for _, o := range opts {
		o(c)
	}
	if _, ok := c.prober.(*ICMP); ok {
		// Without a raw socket every check would fail and every backend go
		// down: refuse to start instead of withdrawing every VIP.
		conn, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return nil, fmt.Errorf("health: mode %s needs a raw ICMP socket (root or CAP_NET_RAW): %w", ModeICMP, err)
		}
		conn.Close()
	}
	c.checks.WithLabelValues("ok")
	c.checks.WithLabelValues("failed")
	return c, nil
}

// Config returns the checker's config, defaults applied.
func (c *Checker) Config() Config { return c.cfg }

// SetTargets makes ts the addresses checked: new ones start unknown and are
// checked from now on (the first check within one interval), those no longer
// listed stop being checked and are forgotten, and the others keep their
// state. It does not wait for anything.
func (c *Checker) SetTargets(ts []Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	changed := false
	keep := make(map[netip.Addr]bool, len(ts))
	for _, t := range ts {
		keep[t.Addr] = true
		refs := slices.Clone(t.Refs)
		slices.SortFunc(refs, compareRef)
		if cur, ok := c.targets[t.Addr]; ok {
			if !slices.Equal(cur.refs, refs) {
				cur.refs, changed = refs, true
			}
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		tg := &target{refs: refs, since: time.Now(), cancel: cancel}
		c.targets[t.Addr] = tg
		changed = true
		c.wg.Add(1)
		go c.run(ctx, t.Addr, tg)
		c.log.Debug("backend health: checking", "event", "backendChecked", "addr", t.Addr, "backend", refNames(refs))
	}
	for addr, tg := range c.targets {
		if !keep[addr] {
			tg.cancel()
			delete(c.targets, addr)
			changed = true
			c.log.Info("backend health: no longer checked (not in the intent)", "event", "backendUnchecked",
				"addr", addr, "backend", refNames(tg.refs), "state", tg.m.state.String())
		}
	}
	if changed {
		c.notifyLocked()
	}
}

// IntentSource is what Follow reads: the engine.
type IntentSource interface {
	// Intent returns the intent in force and its version.
	Intent() (*intent.Intent, uint64)
	// Changed returns a channel closed at the next change.
	Changed() <-chan struct{}
}

// Follow keeps the targets those of the intent in force (TargetsOf) until ctx
// ends.
func (c *Checker) Follow(ctx context.Context, src IntentSource) {
	var last *intent.Intent
	first := true
	for {
		ch := src.Changed()
		if in, _ := src.Intent(); first || in != last {
			c.SetTargets(TargetsOf(in))
			last, first = in, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// run checks addr every interval until ctx ends. The first check comes after
// a random part of an interval, so that many backends are not checked in one
// burst.
func (c *Checker) run(ctx context.Context, addr netip.Addr, tg *target) {
	defer c.wg.Done()
	timer := time.NewTimer(rand.N(c.cfg.Interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err := c.prober.Probe(pctx, addr)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.record(addr, tg, err)
		timer.Reset(max(0, c.cfg.Interval-time.Since(start)))
	}
}

// record applies one check's result.
func (c *Checker) record(addr netip.Addr, tg *target, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	c.checks.WithLabelValues(result).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.targets[addr] != tg {
		return // removed meanwhile
	}
	tg.lastCheck = time.Now()
	tg.lastErr = ""
	if err != nil {
		tg.lastErr = err.Error()
	}
	from, changed := tg.m.observe(err == nil, c.cfg.Rise, c.cfg.Fall)
	if !changed {
		if err != nil {
			c.log.Debug("backend health: check failed", "addr", addr, "backend", refNames(tg.refs),
				"state", from.String(), "failures", tg.m.fail, "fall", c.cfg.Fall, "err", err)
		}
		return
	}
	to := tg.m.state
	switch {
	case to == StateDown:
		tg.reason = fmt.Sprintf("%d %s failed in a row (last: %s)", tg.m.fail, c.what, tg.lastErr)
	case from == StateUnknown:
		tg.reason = "first check succeeded"
	default:
		tg.reason = fmt.Sprintf("%d %s succeeded in a row", tg.m.ok, c.what)
	}
	tg.since = tg.lastCheck
	level, msg, event := slog.LevelInfo, "backend up", "backendUp"
	if to == StateDown {
		level, msg, event = slog.LevelWarn, "backend down", "backendDown"
	}
	c.log.Log(context.Background(), level, msg, "event", event, "backend", refNames(tg.refs), "addr", addr,
		"pools", refPools(tg.refs), "from", from.String(), "to", to.String(), "reason", tg.reason)
	c.notifyLocked()
}

func (c *Checker) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change: a state transition, or
// targets added or removed. Call it again after each close, before reading.
func (c *Checker) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Status returns the health of addr; false when it is not checked.
func (c *Checker) Status(addr netip.Addr) (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tg, ok := c.targets[addr]
	if !ok {
		return Status{}, false
	}
	return tg.status(addr), true
}

// Up says whether addr counts as up: up, unknown, or not checked at all.
func (c *Checker) Up(addr netip.Addr) bool {
	st, ok := c.Status(addr)
	return !ok || st.Up()
}

// Statuses returns every checked address's health, sorted by address.
func (c *Checker) Statuses() []Status {
	c.mu.Lock()
	out := make([]Status, 0, len(c.targets))
	for addr, tg := range c.targets {
		out = append(out, tg.status(addr))
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return a.Addr.Compare(b.Addr) })
	return out
}

func (tg *target) status(addr netip.Addr) Status {
	return Status{Target: Target{Addr: addr, Refs: slices.Clone(tg.refs)}, State: tg.m.state, Since: tg.since,
		Reason: tg.reason, LastCheck: tg.lastCheck, LastError: tg.lastErr}
}

// Close stops every check and waits for the checks in flight (at most one
// timeout). The checker then keeps no targets.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	for addr, tg := range c.targets {
		tg.cancel()
		delete(c.targets, addr)
	}
	c.notifyLocked()
	c.mu.Unlock()
	c.wg.Wait()
}

func refNames(refs []Ref) string {
	var names []string
	for _, r := range refs {
		if !slices.Contains(names, r.Backend) {
			names = append(names, r.Backend)
		}
	}
	return strings.Join(names, ",")
}

func refPools(refs []Ref) string {
	var names []string
	for _, r := range refs {
		if !slices.Contains(names, r.Pool) {
			names = append(names, r.Pool)
		}
	}
	return strings.Join(names, ",")
}

var descUp = prometheus.NewDesc(MetricBackendUp,
	"1 while the backend counts as up for the BGP announcement (up, or not checked yet), 0 when down.",
	[]string{"pool", "backend"}, nil)

// Collector returns the checker's Prometheus metrics: graygw_backend_up{pool,
// backend}, read at scrape time, and graygw_backend_health_checks_total{result}.
func (c *Checker) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Checker }

func (k collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	k.c.checks.Describe(ch)
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	seen := map[Ref]bool{}
	for _, st := range k.c.Statuses() {
		v := 0.0
		if st.Up() {
			v = 1
		}
		for _, r := range st.Refs {
			if !seen[r] { // two backends of one pool never share a name
				seen[r] = true
				ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, v, r.Pool, r.Backend)
			}
		}
	}
	k.c.checks.Collect(ch)
}
