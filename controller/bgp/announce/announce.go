// Package announce decides which (VIP, gateway) paths the controller's BGP
// speaker (controller/bgp) announces, from the engine's view of the gateways
// (sessions, reconcile passes), the operator's drains (kept in the store), the
// backend health checker (controller/health) and the intent, and re-decides at
// every change of any of them (docs/bgp.md, docs/health.md).
package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/health"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/kinderr"
)

// Health checks of Config.HealthCheck.
const (
	// HealthReconciled: a gateway is healthy once a reconcile pass has
	// succeeded on its current P4Runtime session (engine.GatewayStatus.Synced):
	// a gateway that comes back empty is announced only after it has been
	// brought to the intent. Later failed passes do not make it unhealthy (it
	// keeps forwarding with the entries it holds).
	HealthReconciled = "reconciled"
	// HealthNone: every gateway is healthy; only the P4Runtime session, drains
	// and the pools decide.
	HealthNone = "none"
)

// DefaultStartWait bounds how long Start waits for the gateways before the
// first decision.
const DefaultStartWait = 15 * time.Second

// DrainNamespace is the store namespace of the drained gateways (key: gateway
// name, value: JSON {actor, time, reason}).
const DrainNamespace = "bgp-drain"

// Errors a caller can test with errors.Is; the error's message says the
// details.
var (
	// ErrConfig: the configuration is incomplete or wrong.
	ErrConfig = errors.New("service: bad configuration")
	// ErrUnknownGateway: no gateway of that name in the intent in force.
	ErrUnknownGateway = errors.New("announce: no such gateway")
	// ErrStopped: Stop was called.
	ErrStopped = errors.New("controller draining: BGP is stopping")
	// ErrSpeaker: the speaker failed to act on a recorded change (it retries).
	ErrSpeaker = errors.New("announce: the BGP speaker failed")
)

// Speaker is what the announcer needs from the BGP speaker (*bgp.Speaker).
type Speaker interface {
	// Start starts the speaker announcing first (docs/bgp.md: it must come
	// from the observed state of the gateways).
	Start(ctx context.Context, first bgp.Decision) error
	bgp.Announcer
}

// Config configures the BGP announcements.
type Config struct {
	// Speaker announces the paths. Required.
	Speaker Speaker
	// VIPs are the path attributes (communities, MED, local preference) per
	// VIP name of the intent; a VIP not listed is announced without any.
	VIPs map[string]bgp.Attributes
	// HealthCheck is HealthReconciled (the default when empty) or HealthNone.
	HealthCheck string
	// StartWait bounds how long Start waits for every gateway to be
	// connected (and, with HealthReconciled, reconciled) before the first
	// decision (DefaultStartWait when 0). Keep it well below the
	// graceful-restart time: the peers hold the routes of a restarted
	// controller meanwhile.
	StartWait time.Duration
	// Retry is the pause before retrying a reconcile of the speaker that
	// failed (1s when 0).
	Retry time.Duration
	// Backends, when set, is the backend health checker: a pool member counts
	// as a healthy backend only while its weight is above 0 and its underlay
	// address is not down, so a VIP none of whose pools has one is withdrawn
	// (no-healthy-backend) and announced again when one recovers. Nil: every
	// member of weight > 0 counts. Health only drives the announcement (and
	// the status): it never moves a flow (docs/health.md).
	Backends BackendHealth
}

// BackendHealth is what the announce decision needs from the backend health
// checker (*health.Checker).
type BackendHealth interface {
	// Status returns the health of an underlay address; false when it is not
	// checked (it then counts as up).
	Status(addr netip.Addr) (health.Status, bool)
	// Changed returns a channel closed at the next change of any backend's
	// health.
	Changed() <-chan struct{}
}

// Drain is a drained gateway, as stored.
type Drain struct {
	Actor  string    `json:"actor"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
}

// Announcer keeps the speaker's paths in line with the decision.
type Announcer struct {
	cfg   Config
	eng   *engine.Engine
	store store.Store
	log   *slog.Logger

	mu      sync.Mutex // guards the fields below
	drains  map[string]Drain
	started bool // the speaker is started and the loop runs
	stopped bool // Stop was called
	last    *bgp.Input
	cancel  context.CancelFunc
	done    chan struct{}
	kickCh  chan struct{}
}

// New returns an announcer over cfg, the engine and the store (which keeps the
// drains). Start starts it.
func New(cfg Config, eng *engine.Engine, st store.Store, log *slog.Logger) (*Announcer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Announcer{cfg: cfg, eng: eng, store: st, log: log, drains: map[string]Drain{}}, nil
}

// Config returns the configuration in use (defaults filled in).
func (a *Announcer) Config() Config { return a.cfg }

func (c *Config) check() error {
	if c.Speaker == nil {
		return fmt.Errorf("%w: BGP needs a speaker", ErrConfig)
	}
	switch c.HealthCheck {
	case "":
		c.HealthCheck = HealthReconciled
	case HealthReconciled, HealthNone:
	default:
		return fmt.Errorf("%w: BGP health check %q: want %s or %s", ErrConfig, c.HealthCheck, HealthReconciled, HealthNone)
	}
	for name, a := range c.VIPs {
		for i, s := range a.Communities {
			if _, err := bgp.ParseCommunity(s); err != nil {
				return fmt.Errorf("%w: BGP attributes of VIP %s: communities[%d]: %w", ErrConfig, name, i, err)
			}
		}
	}
	if c.StartWait <= 0 {
		c.StartWait = DefaultStartWait
	}
	if c.Retry <= 0 {
		c.Retry = time.Second
	}
	return nil
}

// Load reads the drained gateways from the store.
func (a *Announcer) Load(ctx context.Context) error {
	kvs, err := a.store.List(ctx, DrainNamespace)
	if err != nil {
		return fmt.Errorf("service: read the drained gateways: %w", err)
	}
	drains := map[string]Drain{}
	for _, kv := range kvs {
		var r Drain
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return fmt.Errorf("service: drained gateway %s: %w", kv.Key, err)
		}
		drains[kv.Key] = r
	}
	a.mu.Lock()
	a.drains = drains
	a.mu.Unlock()
	for name, r := range drains {
		a.log.Info("gateway drained (from the store): its VIP paths stay withdrawn until undrained", "gateway", name,
			"drained_by", r.Actor, "at", r.Time, "reason", r.Reason)
	}
	return nil
}

// Start starts the speaker with a first decision made from the gateways'
// observed state, then re-decides at every change. It first waits (at most
// Config.StartWait, or until ctx ends) until every gateway of the intent is
// connected with this controller primary and, with HealthReconciled,
// reconciled on that session: a first decision made before the sessions are
// up would withdraw every VIP at the peers, which keep the routes of a
// restarted controller until it sends its table (docs/bgp.md). A gateway still
// not ready after the wait is decided as it is.
func (a *Announcer) Start(ctx context.Context) error {
	start := time.Now()
	var waiting []string
	if _, remote := a.GatewaySpeakers(); !remote { // the gateways' speakers observe for themselves
		wctx, cancel := context.WithTimeout(ctx, a.cfg.StartWait)
		waiting = a.waitGateways(wctx)
		cancel()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(waiting) > 0 {
		a.log.Warn("bgp: first decision with gateways not ready (their paths are withdrawn until they are)",
			"gateways", waiting, "waited", a.cfg.StartWait.String())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return errors.New("service: BGP stopped before it started")
	}
	in := a.inputLocked()
	d, err := bgp.Decide(in)
	if err != nil {
		return fmt.Errorf("service: first BGP decision: %w", err)
	}
	if cur, _ := a.eng.Intent(); cur != nil {
		for name := range a.cfg.VIPs {
			if _, ok := cur.VIP(name); !ok {
				a.log.Warn("bgp: attributes for a VIP the intent does not have (unused)", "vip", name)
			}
		}
	}
	if err := a.cfg.Speaker.Start(ctx, d); err != nil {
		return err
	}
	a.last = &in
	a.started = true
	a.log.Info("bgp speaker started", "announced", len(d.Announce), "withdrawn", len(d.Withdraw),
		"waited", time.Since(start).Round(time.Millisecond).String())
	lctx, lcancel := context.WithCancel(context.Background())
	a.cancel, a.done, a.kickCh = lcancel, make(chan struct{}), make(chan struct{}, 1)
	go a.loop(lctx, a.done, a.kickCh)
	return nil
}

// waitGateways waits until every gateway of the intent is ready for the first
// decision, or ctx ends; it returns the names of those that are not.
func (a *Announcer) waitGateways(ctx context.Context) []string {
	for {
		ch := a.eng.Changed()
		var waiting []string
		in, _ := a.eng.Intent()
		st := statusByName(a.eng.Status())
		if in != nil {
			for _, g := range in.Gateways {
				gs := st[g.Name]
				if !gs.Connected || !gs.Primary || (a.cfg.HealthCheck == HealthReconciled && !gs.Synced) {
					waiting = append(waiting, g.Name)
				}
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return waiting
		}
	}
}

// loop re-decides at every change of the engine (sessions, passes, intent)
// and whenever kicked, and retries a failed reconcile.
func (a *Announcer) loop(ctx context.Context, done chan struct{}, kick <-chan struct{}) {
	defer close(done)
	var retry <-chan time.Time
	for {
		ch := a.eng.Changed()
		var hch <-chan struct{} // nil: no health checking, never ready
		if a.cfg.Backends != nil {
			hch = a.cfg.Backends.Changed()
		}
		retry = nil
		if err := a.sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("bgp: reconcile of the announcements failed; retrying", "err", err, "in", a.cfg.Retry.String())
			retry = time.After(a.cfg.Retry)
		}
		select {
		case <-ch:
		case <-hch:
		case <-kick:
		case <-retry:
		case <-ctx.Done():
			return
		}
	}
}

// sync decides from the current state and reconciles the speaker to the
// decision, unless nothing changed since the last successful reconcile.
func (a *Announcer) sync(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.stopped {
		return nil
	}
	in := a.inputLocked()
	if a.last != nil && reflect.DeepEqual(*a.last, in) {
		return nil
	}
	d, err := bgp.Decide(in)
	if err != nil {
		return fmt.Errorf("decide: %w", err)
	}
	a.last = nil
	if err := a.cfg.Speaker.Reconcile(ctx, d); err != nil {
		return err
	}
	a.last = &in
	return nil
}

// inputLocked is the input of the announce decision now. a.mu is held.
func (a *Announcer) inputLocked() bgp.Input {
	in, _ := a.eng.Intent()
	out := bgp.Input{Gateways: []bgp.Gateway{}, VIPs: []bgp.VIP{}}
	if in == nil {
		return out
	}
	st := statusByName(a.eng.Status())
	_, remote := a.GatewaySpeakers()
	for _, g := range in.Gateways {
		gs := st[g.Name]
		_, drained := a.drains[g.Name]
		out.Gateways = append(out.Gateways, bgp.Gateway{Name: g.Name, NextHop: g.BGPNextHop, NextHopV6: g.BGPNextHopV6,
			// With speakers on the gateways, each observes its own dataplane: the
			// controller's view of the gateway is no part of the policy.
			P4RuntimeConnected: remote || (gs.Connected && gs.Primary),
			HealthCheckOK:      remote || healthy(a.cfg.HealthCheck, gs),
			Drained:            drained})
	}
	for _, v := range in.VIPs {
		vip := bgp.VIP{Name: v.Name, Address: v.Address, Pools: []bgp.Pool{}, Attributes: a.cfg.VIPs[v.Name]}
		for _, name := range vipPools(in, v) {
			healthy, _ := a.PoolHealthy(in, name)
			vip.Pools = append(vip.Pools, bgp.Pool{Name: name, HealthyBackends: healthy})
		}
		out.VIPs = append(out.VIPs, vip)
	}
	return out
}

// vipPools lists the pools a VIP's traffic can go to: its default pool, then
// the pools of the rules that apply to it (its own, and the VIP-less ones).
func vipPools(in *intent.Intent, v intent.VIP) []string {
	pools := []string{v.DefaultPool}
	for _, r := range in.Rules {
		if (r.Match.VIP == "" || r.Match.VIP == v.Name) && !slices.Contains(pools, r.Pool) {
			pools = append(pools, r.Pool)
		}
	}
	return pools
}

// healthy is the health check of a gateway. Only a gateway this controller
// holds as primary is judged: one that is not is already withdrawn as
// p4runtime-disconnected, and saying it also fails its health check would only
// repeat that.
func healthy(check string, gs engine.GatewayStatus) bool {
	return check == HealthNone || gs.Synced || !(gs.Connected && gs.Primary)
}

func statusByName(sts []engine.GatewayStatus) map[string]engine.GatewayStatus {
	m := make(map[string]engine.GatewayStatus, len(sts))
	for _, st := range sts {
		m[st.Name] = st
	}
	return m
}

// Stop stops re-deciding. With withdraw it then stops the speaker after
// withdrawing every path (Stop(ctx, true)): the peers stop sending VIP traffic
// to the gateways. Without, the speaker is left running with its paths, and
// the process must exit without stopping it: the kernel then closes the
// sessions without a NOTIFICATION and peers with graceful restart keep the
// routes (stale) for the restart time, while a new controller process takes
// over (docs/bgp.md, How the process must stop).
func (a *Announcer) Stop(ctx context.Context, withdraw bool) error {
	a.mu.Lock()
	a.stopped = true
	started, cancel, done := a.started, a.cancel, a.done
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if !started || !withdraw {
		return nil
	}
	return a.cfg.Speaker.Stop(ctx, true)
}

// kick asks the loop to re-decide now.
func (a *Announcer) kick() {
	a.mu.Lock()
	kick := a.kickCh
	a.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// GatewayDetail says in words what the decision knows about a gateway.
func GatewayDetail(name string, gs engine.GatewayStatus, health string) string {
	var b strings.Builder
	switch {
	case gs.Name == "":
		b.WriteString("not managed yet (no P4Runtime session)")
	case !gs.Connected:
		fmt.Fprintf(&b, "P4Runtime session to %s down", gs.Address)
	case !gs.Primary:
		fmt.Fprintf(&b, "standby: another controller is primary for %s device %d (that controller's speaker announces it)", gs.Address, gs.DeviceID)
	default:
		fmt.Fprintf(&b, "P4Runtime primary at %s", gs.Address)
	}
	if health == HealthReconciled && gs.Name != "" {
		switch {
		case gs.Synced:
			fmt.Fprintf(&b, ", reconciled on this session (intent version %d)", gs.Version)
		case gs.Connected && gs.Primary && gs.LastResult == engine.ResultError:
			fmt.Fprintf(&b, ", not reconciled on this session yet: last pass failed: %s", gs.LastError)
		case gs.Connected && gs.Primary:
			b.WriteString(", not reconciled on this session yet")
		}
	}
	return b.String()
}

// PoolHealthy counts the members of a pool that the decision counts as
// healthy backends: weight > 0 and, with backend health checking, an underlay
// address that is not down. It says why each other member is not counted.
func (a *Announcer) PoolHealthy(in *intent.Intent, pool string) (n int, notCounted []string) {
	p, ok := in.Pool(pool)
	if !ok {
		return 0, nil
	}
	hc := a.cfg.Backends
	for _, m := range p.Members {
		if m.Weight == 0 {
			notCounted = append(notCounted, m.Backend+" weight 0")
			continue
		}
		if hc != nil {
			if b, ok := in.Backend(m.Backend); ok {
				if st, ok := hc.Status(b.UnderlayIP); ok && !st.Up() {
					notCounted = append(notCounted, fmt.Sprintf("%s (%s) down since %s: %s", m.Backend, b.UnderlayIP,
						st.Since.UTC().Format(time.RFC3339), st.Reason))
					continue
				}
			}
		}
		n++
	}
	return n, notCounted
}

// PoolDetail describes a VIP's pools by their healthy backends.
func (a *Announcer) PoolDetail(in *intent.Intent, vipName string) string {
	if in == nil {
		return ""
	}
	v, ok := in.VIP(vipName)
	if !ok {
		return ""
	}
	var parts []string
	for _, name := range vipPools(in, *v) {
		n, not := a.PoolHealthy(in, name)
		part := fmt.Sprintf("%s %d", name, n)
		if a.cfg.Backends != nil && len(not) > 0 {
			part += " (not counted: " + strings.Join(not, "; ") + ")"
		}
		parts = append(parts, part)
	}
	if a.cfg.Backends != nil {
		return "healthy backends (weight > 0 and not down) per pool: " + strings.Join(parts, ", ")
	}
	return "backends of weight > 0 per pool: " + strings.Join(parts, ", ")
}

// SetDrain drains the gateway named name (its VIP paths are withdrawn) or
// undrains it, keeps it in the store (actor as given, with reason) and in the
// store's history (a record: drain or undrain), and acts
// on it at once. It reports whether anything changed. A gateway the intent in
// force does not have is ErrUnknownGateway, unless it is an undrain of a stale
// drain; after Stop, ErrStopped; store errors as the store gave them; a
// recorded drain the speaker failed to act on, ErrSpeaker (the loop retries).
func (a *Announcer) SetDrain(ctx context.Context, name string, drain bool, actor, reason string) (bool, error) {
	a.mu.Lock()
	stopped := a.stopped
	_, was := a.drains[name]
	a.mu.Unlock()
	if stopped {
		return false, ErrStopped
	}
	in, _ := a.eng.Intent()
	known := false
	if in != nil {
		_, known = in.Gateway(name)
	}
	if !known && !(was && !drain) { // a stale drain of a removed gateway can still be cleared
		return false, kinderr.Errorf(ErrUnknownGateway, "no gateway %q in the intent in force", name)
	}
	if was != drain {
		a.mu.Lock()
		var err error
		if drain {
			rec := Drain{Actor: actor, Time: time.Now().UTC(), Reason: reason}
			var val []byte
			if val, err = json.Marshal(rec); err == nil {
				if err = a.store.Put(ctx, DrainNamespace, name, val); err == nil {
					a.drains[name] = rec
				}
			}
		} else if err = a.store.Delete(ctx, DrainNamespace, name); err == nil {
			delete(a.drains, name)
		}
		a.mu.Unlock()
		if err != nil {
			return false, err
		}
		rec := store.Record{Actor: actor, Operation: "drain", Reason: reason,
			Summary: "gateway " + name + " drained: its VIP paths are withdrawn"}
		if drain {
			a.log.Info("gateway drained: its VIP paths are withdrawn", "gateway", name, "actor", actor, "reason", reason)
		} else {
			rec.Operation, rec.Summary = "undrain", "gateway "+name+" undrained: its VIP paths are announced again when nothing else holds them back"
			a.log.Info("gateway undrained: its VIP paths are announced again when nothing else holds them back", "gateway", name, "actor", actor, "reason", reason)
		}
		if rec.Actor == "" {
			rec.Actor = "unknown"
		}
		// In the history too; the drain itself is already in force.
		if _, err := a.store.Record(ctx, rec); err != nil {
			a.log.Warn("gateway drain: not recorded in the history", "gateway", name, "operation", rec.Operation, "err", err)
		}
	}
	if err := a.sync(ctx); err != nil {
		a.kick() // the loop retries
		return was != drain, kinderr.Errorf(ErrSpeaker, "the drain is recorded, but the BGP speaker failed to act on it (it retries): %v", err)
	}
	return was != drain, nil
}

// Drains returns the drained gateways by name.
func (a *Announcer) Drains() map[string]Drain {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.drains)
}

// State says whether the speaker was started and whether Stop was called.
func (a *Announcer) State() (started, stopped bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.started, a.stopped
}

// Healthy is the health check of a gateway of that status.
func (a *Announcer) Healthy(gs engine.GatewayStatus) bool { return healthy(a.cfg.HealthCheck, gs) }
