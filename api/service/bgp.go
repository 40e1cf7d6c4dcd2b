package service

// BGP: the service decides which (VIP, gateway) paths the controller's BGP
// speaker announces, from the engine's view of the gateways, the operator's
// drains (kept in the store) and the intent, and re-decides at every change.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/health"
	"github.com/graygw/graygw/controller/intent"
)

// Health checks of BGPConfig.HealthCheck.
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

// DefaultBGPStartWait bounds how long StartBGP waits for the gateways before
// the first decision.
const DefaultBGPStartWait = 15 * time.Second

// DrainNamespace is the store namespace of the drained gateways (key: gateway
// name, value: JSON {actor, time, reason}).
const DrainNamespace = "bgp-drain"

// BGPSpeaker is what the service needs from the BGP speaker (*bgp.Speaker).
type BGPSpeaker interface {
	// Start starts the speaker announcing first (docs/bgp.md: it must come
	// from the observed state of the gateways).
	Start(ctx context.Context, first bgp.Decision) error
	bgp.Announcer
}

// BGPConfig configures the BGP announcements.
type BGPConfig struct {
	// Speaker announces the paths. Required.
	Speaker BGPSpeaker
	// VIPs are the path attributes (communities, MED, local preference) per
	// VIP name of the intent; a VIP not listed is announced without any.
	VIPs map[string]bgp.Attributes
	// HealthCheck is HealthReconciled (the default when empty) or HealthNone.
	HealthCheck string
	// StartWait bounds how long StartBGP waits for every gateway to be
	// connected (and, with HealthReconciled, reconciled) before the first
	// decision (DefaultBGPStartWait when 0). Keep it well below the
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

// drainRecord is a drained gateway, as stored.
type drainRecord struct {
	Actor  string    `json:"actor"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
}

// bgpState is the service's side of BGP. Its fields are guarded by
// Service.bgpMu.
type bgpState struct {
	drains  map[string]drainRecord
	started bool // the speaker is started and the loop runs
	stopped bool // StopBGP was called
	last    *bgp.Input
	cancel  context.CancelFunc
	done    chan struct{}
	kick    chan struct{}
}

func (c *BGPConfig) check() error {
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
		c.StartWait = DefaultBGPStartWait
	}
	if c.Retry <= 0 {
		c.Retry = time.Second
	}
	return nil
}

// loadDrains reads the drained gateways from the store.
func (s *Service) loadDrains(ctx context.Context) error {
	kvs, err := s.cfg.Store.List(ctx, DrainNamespace)
	if err != nil {
		return fmt.Errorf("service: read the drained gateways: %w", err)
	}
	drains := map[string]drainRecord{}
	for _, kv := range kvs {
		var r drainRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return fmt.Errorf("service: drained gateway %s: %w", kv.Key, err)
		}
		drains[kv.Key] = r
	}
	s.bgpMu.Lock()
	s.bgp.drains = drains
	s.bgpMu.Unlock()
	for name, r := range drains {
		s.log.Info("gateway drained (from the store): its VIP paths stay withdrawn until undrained", "gateway", name,
			"drained_by", r.Actor, "at", r.Time, "reason", r.Reason)
	}
	return nil
}

// StartBGP starts the speaker with a first decision made from the gateways'
// observed state, then re-decides at every change. It first waits (at most
// BGPConfig.StartWait, or until ctx ends) until every gateway of the intent is
// connected with this controller primary and, with HealthReconciled,
// reconciled on that session: a first decision made before the sessions are
// up would withdraw every VIP at the peers, which keep the routes of a
// restarted controller until it sends its table (docs/bgp.md). A gateway still
// not ready after the wait is decided as it is.
func (s *Service) StartBGP(ctx context.Context) error {
	if s.cfg.BGP == nil {
		return fmt.Errorf("%w: no BGP configured", ErrConfig)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, s.cfg.BGP.StartWait)
	waiting := s.waitGateways(wctx)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(waiting) > 0 {
		s.log.Warn("bgp: first decision with gateways not ready (their paths are withdrawn until they are)",
			"gateways", waiting, "waited", s.cfg.BGP.StartWait.String())
	}
	s.bgpMu.Lock()
	defer s.bgpMu.Unlock()
	if s.bgp.stopped {
		return errors.New("service: BGP stopped before it started")
	}
	in := s.bgpInputLocked()
	d, err := bgp.Decide(in)
	if err != nil {
		return fmt.Errorf("service: first BGP decision: %w", err)
	}
	if cur, _ := s.cfg.Engine.Intent(); cur != nil {
		for name := range s.cfg.BGP.VIPs {
			if _, ok := cur.VIP(name); !ok {
				s.log.Warn("bgp: attributes for a VIP the intent does not have (unused)", "vip", name)
			}
		}
	}
	if err := s.cfg.BGP.Speaker.Start(ctx, d); err != nil {
		return err
	}
	s.bgp.last = &in
	s.bgp.started = true
	s.log.Info("bgp speaker started", "announced", len(d.Announce), "withdrawn", len(d.Withdraw),
		"waited", time.Since(start).Round(time.Millisecond).String())
	lctx, lcancel := context.WithCancel(context.Background())
	s.bgp.cancel, s.bgp.done, s.bgp.kick = lcancel, make(chan struct{}), make(chan struct{}, 1)
	go s.bgpLoop(lctx, s.bgp.done, s.bgp.kick)
	return nil
}

// waitGateways waits until every gateway of the intent is ready for the first
// decision, or ctx ends; it returns the names of those that are not.
func (s *Service) waitGateways(ctx context.Context) []string {
	for {
		ch := s.cfg.Engine.Changed()
		var waiting []string
		in, _ := s.cfg.Engine.Intent()
		st := statusByName(s.cfg.Engine.Status())
		if in != nil {
			for _, g := range in.Gateways {
				gs := st[g.Name]
				if !gs.Connected || !gs.Primary || (s.cfg.BGP.HealthCheck == HealthReconciled && !gs.Synced) {
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

// bgpLoop re-decides at every change of the engine (sessions, passes, intent)
// and whenever kicked, and retries a failed reconcile.
func (s *Service) bgpLoop(ctx context.Context, done chan struct{}, kick <-chan struct{}) {
	defer close(done)
	var retry <-chan time.Time
	for {
		ch := s.cfg.Engine.Changed()
		var hch <-chan struct{} // nil: no health checking, never ready
		if s.cfg.BGP.Backends != nil {
			hch = s.cfg.BGP.Backends.Changed()
		}
		retry = nil
		if err := s.bgpSync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("bgp: reconcile of the announcements failed; retrying", "err", err, "in", s.cfg.BGP.Retry.String())
			retry = time.After(s.cfg.BGP.Retry)
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

// bgpSync decides from the current state and reconciles the speaker to the
// decision, unless nothing changed since the last successful reconcile.
func (s *Service) bgpSync(ctx context.Context) error {
	s.bgpMu.Lock()
	defer s.bgpMu.Unlock()
	if !s.bgp.started || s.bgp.stopped {
		return nil
	}
	in := s.bgpInputLocked()
	if s.bgp.last != nil && reflect.DeepEqual(*s.bgp.last, in) {
		return nil
	}
	d, err := bgp.Decide(in)
	if err != nil {
		return fmt.Errorf("decide: %w", err)
	}
	s.bgp.last = nil
	if err := s.cfg.BGP.Speaker.Reconcile(ctx, d); err != nil {
		return err
	}
	s.bgp.last = &in
	return nil
}

// bgpInputLocked is the input of the announce decision now. s.bgpMu is held.
func (s *Service) bgpInputLocked() bgp.Input {
	in, _ := s.cfg.Engine.Intent()
	out := bgp.Input{Gateways: []bgp.Gateway{}, VIPs: []bgp.VIP{}}
	if in == nil {
		return out
	}
	st := statusByName(s.cfg.Engine.Status())
	for _, g := range in.Gateways {
		gs := st[g.Name]
		_, drained := s.bgp.drains[g.Name]
		out.Gateways = append(out.Gateways, bgp.Gateway{Name: g.Name, NextHop: g.BGPNextHop,
			P4RuntimeConnected: gs.Connected && gs.Primary,
			HealthCheckOK:      healthy(s.cfg.BGP.HealthCheck, gs),
			Drained:            drained})
	}
	for _, v := range in.VIPs {
		vip := bgp.VIP{Address: v.Address, Pools: []bgp.Pool{}, Attributes: s.cfg.BGP.VIPs[v.Name]}
		for _, name := range vipPools(in, v) {
			healthy, _ := s.poolHealthy(in, name)
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

// StopBGP stops re-deciding. With withdraw it then stops the speaker after
// withdrawing every path (Stop(ctx, true)): the peers stop sending VIP traffic
// to the gateways. Without, the speaker is left running with its paths, and
// the process must exit without stopping it: the kernel then closes the
// sessions without a NOTIFICATION and peers with graceful restart keep the
// routes (stale) for the restart time, while a new controller process takes
// over (docs/bgp.md, How the process must stop).
func (s *Service) StopBGP(ctx context.Context, withdraw bool) error {
	s.bgpMu.Lock()
	s.bgp.stopped = true
	started, cancel, done := s.bgp.started, s.bgp.cancel, s.bgp.done
	s.bgpMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if !started || !withdraw {
		return nil
	}
	return s.cfg.BGP.Speaker.Stop(ctx, true)
}

// kickBGP asks the loop to re-decide now.
func (s *Service) kickBGP() {
	s.bgpMu.Lock()
	kick := s.bgp.kick
	s.bgpMu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

var errNoBGP = status.Error(codes.Unimplemented,
	"this controller runs without BGP (give its config file a bgp: section to announce the VIPs)")

// BGPStatus implements graygwv1.ControllerServer.
func (s *Service) BGPStatus(ctx context.Context, _ *graygwv1.BGPStatusRequest) (*graygwv1.BGPStatusResponse, error) {
	if s.cfg.BGP == nil {
		return nil, errNoBGP
	}
	return s.bgpStatus(ctx), nil
}

// bgpStatus reads the speaker and explains its paths.
func (s *Service) bgpStatus(ctx context.Context) *graygwv1.BGPStatusResponse {
	sp, err := s.cfg.BGP.Speaker.Status(ctx)
	out := &graygwv1.BGPStatusResponse{Asn: sp.ASN, RouterId: sp.RouterID, HealthCheck: s.cfg.BGP.HealthCheck}
	if err != nil {
		out.Error = err.Error()
		s.bgpMu.Lock()
		started, stopped := s.bgp.started, s.bgp.stopped
		s.bgpMu.Unlock()
		switch {
		case errors.Is(err, bgp.ErrNotStarted) && !started && !stopped:
			out.Error = fmt.Sprintf("the BGP speaker is not started yet: it waits (at most %s) for the gateways' P4Runtime sessions before its first decision", s.cfg.BGP.StartWait)
		case errors.Is(err, bgp.ErrStopped) || stopped:
			out.Error = "the BGP speaker is stopped (the controller is shutting down)"
		}
	}
	slices.SortFunc(sp.Neighbors, func(a, b bgp.NeighborStatus) int { return strings.Compare(a.Address, b.Address) })
	for _, n := range sp.Neighbors {
		out.Neighbors = append(out.Neighbors, &graygwv1.BGPNeighbor{Address: n.Address, Asn: n.ASN, State: n.State, Up: n.Up,
			Uptime: durationpb.New(n.Uptime), Received: n.Received, Accepted: n.Accepted, Advertised: n.Advertised,
			GracefulRestart: n.GracefulRestart})
	}

	in, _ := s.cfg.Engine.Intent()
	st := statusByName(s.cfg.Engine.Status())
	s.bgpMu.Lock()
	drains := make(map[string]drainRecord, len(s.bgp.drains))
	for k, v := range s.bgp.drains {
		drains[k] = v
	}
	s.bgpMu.Unlock()
	vipName := map[netip.Addr]string{}
	gwDetail := map[string]string{}
	if in != nil {
		for _, v := range in.VIPs {
			vipName[v.Address] = v.Name
		}
		for _, g := range in.Gateways {
			gs := st[g.Name]
			d, drained := drains[g.Name]
			bg := &graygwv1.BGPGateway{Name: g.Name, NextHop: g.BGPNextHop.String(), P4RuntimeConnected: gs.Connected && gs.Primary,
				Healthy: healthy(s.cfg.BGP.HealthCheck, gs), Drained: drained, Detail: gatewayDetail(g.Name, gs, s.cfg.BGP.HealthCheck)}
			if drained {
				bg.DrainedBy, bg.DrainedAt, bg.DrainReason = d.Actor, timestamppb.New(d.Time), d.Reason
			}
			gwDetail[g.Name] = bg.Detail
			out.Gateways = append(out.Gateways, bg)
		}
	}
	for _, a := range sp.Announced {
		p := bgpPath(a.Path.PathKey, vipName[a.VIP], a.Gateway, a.Attributes, a.Since)
		p.Detail = fmt.Sprintf("announced: gateway %s %s, not drained; %s", a.Gateway, gwDetail[a.Gateway], s.poolDetail(in, vipName[a.VIP]))
		out.Announced = append(out.Announced, p)
	}
	for _, w := range sp.Withdrawn {
		p := bgpPath(w.PathKey, vipName[w.VIP], w.Gateway, s.cfg.BGP.VIPs[vipName[w.VIP]], w.Since)
		var why []string
		for _, r := range w.Reasons {
			p.Reasons = append(p.Reasons, string(r))
			switch r {
			case bgp.ReasonP4RuntimeDisconnected, bgp.ReasonHealthCheckFailed:
				why = append(why, string(r)+": "+gwDetail[w.Gateway])
			case bgp.ReasonDrained:
				d := drains[w.Gateway]
				why = append(why, fmt.Sprintf("drained by %s at %s%s", d.Actor, d.Time.Format(time.RFC3339), reasonSuffix(d.Reason)))
			case bgp.ReasonNoHealthyBackend:
				why = append(why, "no-healthy-backend: "+s.poolDetail(in, vipName[w.VIP]))
			default:
				why = append(why, string(r))
			}
		}
		p.Detail = strings.Join(why, "; ")
		out.Withdrawn = append(out.Withdrawn, p)
	}
	return out
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func bgpPath(k bgp.PathKey, name, gateway string, a bgp.Attributes, since time.Time) *graygwv1.BGPPath {
	p := &graygwv1.BGPPath{Vip: k.VIP.String(), VipName: name, NextHop: k.NextHop.String(), Gateway: gateway,
		Communities: a.Communities, Med: a.MED, LocalPref: a.LocalPref}
	if !since.IsZero() {
		p.Since = timestamppb.New(since)
	}
	return p
}

// gatewayDetail says in words what the decision knows about a gateway.
func gatewayDetail(name string, gs engine.GatewayStatus, health string) string {
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

// poolHealthy counts the members of a pool that the decision counts as
// healthy backends: weight > 0 and, with backend health checking, an underlay
// address that is not down. It says why each other member is not counted.
func (s *Service) poolHealthy(in *intent.Intent, pool string) (n int, notCounted []string) {
	p, ok := in.Pool(pool)
	if !ok {
		return 0, nil
	}
	hc := s.cfg.BGP.Backends
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

// poolDetail describes a VIP's pools by their healthy backends.
func (s *Service) poolDetail(in *intent.Intent, vipName string) string {
	if in == nil {
		return ""
	}
	v, ok := in.VIP(vipName)
	if !ok {
		return ""
	}
	var parts []string
	for _, name := range vipPools(in, *v) {
		n, not := s.poolHealthy(in, name)
		part := fmt.Sprintf("%s %d", name, n)
		if s.cfg.BGP.Backends != nil && len(not) > 0 {
			part += " (not counted: " + strings.Join(not, "; ") + ")"
		}
		parts = append(parts, part)
	}
	if s.cfg.BGP.Backends != nil {
		return "healthy backends (weight > 0 and not down) per pool: " + strings.Join(parts, ", ")
	}
	return "backends of weight > 0 per pool: " + strings.Join(parts, ", ")
}

// DrainGateway implements graygwv1.ControllerServer.
func (s *Service) DrainGateway(ctx context.Context, req *graygwv1.DrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return s.setDrain(ctx, req.GetGateway(), true, req.GetActor(), req.GetReason())
}

// UndrainGateway implements graygwv1.ControllerServer.
func (s *Service) UndrainGateway(ctx context.Context, req *graygwv1.UndrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return s.setDrain(ctx, req.GetGateway(), false, req.GetActor(), "")
}

func (s *Service) setDrain(ctx context.Context, name string, drain bool, actor, reason string) (*graygwv1.DrainGatewayResponse, error) {
	if s.cfg.BGP == nil {
		return nil, errNoBGP
	}
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "gateway: required (a gateway name of the intent)")
	}
	s.bgpMu.Lock()
	stopped := s.bgp.stopped
	_, was := s.bgp.drains[name]
	s.bgpMu.Unlock()
	if stopped {
		return nil, status.Error(codes.Unavailable, "controller draining: BGP is stopping")
	}
	in, _ := s.cfg.Engine.Intent()
	known := false
	if in != nil {
		_, known = in.Gateway(name)
	}
	if !known && !(was && !drain) { // a stale drain of a removed gateway can still be cleared
		return nil, status.Errorf(codes.NotFound, "no gateway %q in the intent in force", name)
	}
	out := &graygwv1.DrainGatewayResponse{}
	if was != drain {
		who := actorOf(ctx, actor)
		s.bgpMu.Lock()
		var err error
		if drain {
			rec := drainRecord{Actor: who, Time: time.Now().UTC(), Reason: reason}
			var val []byte
			if val, err = json.Marshal(rec); err == nil {
				if err = s.cfg.Store.Put(ctx, DrainNamespace, name, val); err == nil {
					s.bgp.drains[name] = rec
				}
			}
		} else if err = s.cfg.Store.Delete(ctx, DrainNamespace, name); err == nil {
			delete(s.bgp.drains, name)
		}
		s.bgpMu.Unlock()
		if err != nil {
			return nil, storeError(err)
		}
		out.Changed = true
		if drain {
			s.log.Info("gateway drained: its VIP paths are withdrawn", "gateway", name, "actor", who, "reason", reason)
		} else {
			s.log.Info("gateway undrained: its VIP paths are announced again when nothing else holds them back", "gateway", name, "actor", who)
		}
	}
	if err := s.bgpSync(ctx); err != nil {
		s.kickBGP() // the loop retries
		return nil, status.Errorf(codes.Internal, "the drain is recorded, but the BGP speaker failed to act on it (it retries): %v", err)
	}
	out.Bgp = s.bgpStatus(ctx)
	return out, nil
}
