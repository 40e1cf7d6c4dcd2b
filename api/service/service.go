// Package service implements the controller's gRPC API (api/graygw/v1) over
// the controller's packages, as gobgp's grpc_server.go does over its server:
// it maps the messages onto the calls and their errors onto gRPC codes, and
// names the caller (the actor recorded in the history). The change pipeline is
// controller/change; the BGP announcements and drains controller/bgp/announce;
// rollouts controller/rollout's Runner driven in process by change.Rollouts;
// probes go from the probe host (probe.go). listen.go serves it on a unix socket
// and, optionally, on TCP with mutual TLS.
package service

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/store"
)

// DefaultHistoryLimit is how many events History returns when the request
// gives no limit.
const DefaultHistoryLimit = 100

// ErrConfig: the service's configuration is incomplete.
var ErrConfig = change.ErrConfig

// Config configures a Service.
type Config struct {
	// Store keeps the intent versions and the history. Required.
	Store store.Store
	// Engine applies the intent to the gateways. Required.
	Engine *engine.Engine
	// Logger receives the service's logs (slog.Default() when nil).
	Logger *slog.Logger
	// WaitTimeout bounds a change's wait when the request gives none
	// (change.DefaultWaitTimeout when 0).
	WaitTimeout time.Duration
	// BGP, when set, announces the VIPs (controller/bgp/announce; StartBGP
	// starts it). Nil: the controller runs without BGP and the BGP calls
	// answer UNIMPLEMENTED.
	BGP *announce.Config
	// Probe, when set, is the host probes are sent from (probe.go). Nil: Probe,
	// RolloutStart and RolloutResume answer UNIMPLEMENTED.
	Probe *probe.Host
	// Replicas, when set, lists the controller replicas for Status (ha:,
	// controller/leader.Replicas); nil without HA.
	Replicas func(ctx context.Context) ([]*graygwv1.Replica, error)
	// BackendDown, when set, says whether health checks declare an underlay
	// address down, and why: the rollout gate pool_healthy reads it.
	BackendDown func(netip.Addr) (down bool, why string)
}

// Service implements graygwv1.ControllerServer.
type Service struct {
	graygwv1.UnimplementedControllerServer

	cfg     Config
	log     *slog.Logger
	changes *change.Manager
	bgp     *announce.Announcer // nil without BGP

	probes *probe.Station // nil without a probe host

	rollouts *rollout.Control

	drainOnce sync.Once
	stopped   chan struct{} // closed by Drain: streams end
}

// New returns a service over cfg.Store and cfg.Engine. Call Start before serving.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	changes, err := change.New(change.Config{Store: cfg.Store, Engine: cfg.Engine, Logger: cfg.Logger, WaitTimeout: cfg.WaitTimeout})
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, changes: changes, stopped: make(chan struct{})}
	if cfg.Probe != nil {
		s.probes = &probe.Station{Host: cfg.Probe, InForce: func() *intent.Intent { in, _ := cfg.Engine.Intent(); return in },
			Compile: func(in *intent.Intent) (*compile.Result, error) {
				p, err := cfg.Engine.Prepare(in)
				if err != nil {
					return nil, err
				}
				return p.Result(), nil
			}, Log: cfg.Logger}
	}
	if cfg.BGP != nil {
		if s.bgp, err = announce.New(*cfg.BGP, cfg.Engine, cfg.Store, cfg.Logger); err != nil {
			return nil, err
		}
	}
	s.rollouts = rollout.NewControl(change.Rollouts{Changes: changes, Prober: s.probeVIP, Actor: func() string { return s.rollouts.Actor() },
		Down: cfg.BackendDown, Copies: s.mirrorCopies},
		rollout.ControllerStore{Store: cfg.Store}, cfg.Logger)
	return s, nil
}

// RolloutCollector returns the rollout runner's Prometheus metrics
// (rollout.Control.Collector).
func (s *Service) RolloutCollector() prometheus.Collector { return s.rollouts.Collector() }

// Start puts the stored intent in force, if there is one, reads the drained
// gateways (with BGP) and recovers the rollout an earlier process left (a
// running one is reported paused at the step it was in). A stored intent that no
// longer validates or compiles (e.g. after an upgrade that tightened validation)
// is an error: the engine then manages nothing and the gateways keep their
// entries until a valid intent is applied.
func (s *Service) Start(ctx context.Context) error {
	if s.bgp != nil {
		if err := s.bgp.Load(ctx); err != nil {
			return err
		}
	}
	err := s.changes.Start(ctx)
	s.rollouts.Recover(ctx)
	return err
}

// Seed stores and applies doc as the first intent when the store holds none
// (change.Manager.Seed).
func (s *Service) Seed(ctx context.Context, doc []byte, actor string) (bool, error) {
	return s.changes.Seed(ctx, doc, actor)
}

// Drain makes the service refuse every further change (UNAVAILABLE), after the
// change in flight, if any, is complete. Reads keep working. A running rollout
// is stopped first, where it is (its step in flight stays recorded, for the
// next controller process to report), and rollout watches and speaker policy
// streams end.
func (s *Service) Drain() {
	s.rollouts.Stop()
	s.drainOnce.Do(func() { close(s.stopped) })
	s.changes.Drain()
}

// Get implements graygwv1.ControllerServer.
func (s *Service) Get(ctx context.Context, req *graygwv1.GetRequest) (*graygwv1.GetResponse, error) {
	cur, err := s.cfg.Store.Current(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Error(codes.NotFound, "no intent stored yet")
	}
	if err != nil {
		return nil, storeError(err)
	}
	v := cur
	if req.GetVersion() != 0 && req.GetVersion() != cur.Number {
		v, err = s.cfg.Store.Version(ctx, req.GetVersion())
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "no intent version %d (current is %d)", req.GetVersion(), cur.Number)
		}
		if err != nil {
			return nil, storeError(err)
		}
	}
	return &graygwv1.GetResponse{Version: v.Number, IntentYaml: string(v.Intent), Time: timestamppb.New(v.Time),
		Actor: v.Actor, CurrentVersion: cur.Number}, nil
}

// History implements graygwv1.ControllerServer.
func (s *Service) History(ctx context.Context, req *graygwv1.HistoryRequest) (*graygwv1.HistoryResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	evs, err := s.cfg.Store.History(ctx, store.Query{Before: req.GetBefore(), Limit: limit})
	if err != nil {
		return nil, storeError(err)
	}
	out := &graygwv1.HistoryResponse{}
	for _, ev := range evs {
		out.Events = append(out.Events, &graygwv1.Event{Seq: ev.Seq, Time: timestamppb.New(ev.Time), Actor: ev.Actor,
			Operation: ev.Operation, Summary: ev.Summary, Before: ev.Before, After: ev.After, Undoes: ev.Undoes,
			Record: ev.Record, Reason: ev.Reason})
	}
	return out, nil
}

// Status implements graygwv1.ControllerServer.
func (s *Service) Status(ctx context.Context, _ *graygwv1.StatusRequest) (*graygwv1.StatusResponse, error) {
	in, version := s.cfg.Engine.Intent()
	out := &graygwv1.StatusResponse{Version: version, Draining: s.changes.Draining() || s.cfg.Engine.Draining()}
	if s.cfg.Replicas != nil {
		rs, err := s.cfg.Replicas(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "controller replicas: %v", err)
		}
		out.Replicas = rs
	}
	for _, st := range s.cfg.Engine.Status() {
		out.Gateways = append(out.Gateways, gatewayStatus(st))
	}
	if in != nil {
		out.Vnis = vniStatus(in)
	}
	return out, nil
}

// Counters implements graygwv1.ControllerServer.
func (s *Service) Counters(ctx context.Context, req *graygwv1.CountersRequest) (*graygwv1.CountersResponse, error) {
	names := s.cfg.Engine.Gateways()
	if req.GetGateway() != "" {
		found := false
		for _, n := range names {
			found = found || n == req.GetGateway()
		}
		if !found {
			return nil, status.Errorf(codes.NotFound, "no gateway %q in the current intent", req.GetGateway())
		}
		names = []string{req.GetGateway()}
	}
	out := &graygwv1.CountersResponse{}
	for _, n := range names {
		c, err := s.cfg.Engine.Counters(ctx, n)
		if err != nil {
			out.Gateways = append(out.Gateways, &graygwv1.GatewayCounters{Gateway: n, Error: err.Error()})
			continue
		}
		out.Gateways = append(out.Gateways, gatewayCounters(c))
	}
	return out, nil
}

func gatewayStatus(st engine.GatewayStatus) *graygwv1.GatewayStatus {
	out := &graygwv1.GatewayStatus{Name: st.Name, Address: st.Address, DeviceId: st.DeviceID, Connected: st.Connected,
		Primary: st.Primary, Version: st.Version, InSync: st.InSync, LastResult: st.LastResult, LastError: st.LastError,
		LastWritten: uint64(st.LastWritten), Reconciles: st.Reconciles, EntriesWritten: st.EntriesWritten,
		WriteErrors: st.WriteErrors, ForeignRemoved: st.ForeignRemoved, PipelinePushes: st.PipelinePushes,
		Entries: uint64(st.Entries)}
	if !st.LastReconcile.IsZero() {
		out.LastReconcile = timestamppb.New(st.LastReconcile)
		out.LastDuration = durationpb.New(st.LastDuration)
	}
	return out
}

// mirrorCopies sums the copies the mirror rule named rule made on every
// gateway (a rollout's mirror phase, docs/rollout.md).
func (s *Service) mirrorCopies(ctx context.Context, rule string) (uint64, error) {
	var n uint64
	for _, st := range s.cfg.Engine.Status() {
		c, err := s.cfg.Engine.Counters(ctx, st.Name)
		if err != nil {
			return n, err
		}
		n += c.Mirrors[rule].Packets
	}
	return n, nil
}

func gatewayCounters(c *engine.Counters) *graygwv1.GatewayCounters {
	named := func(m map[string]engine.Counter) []*graygwv1.NamedCounter {
		var out []*graygwv1.NamedCounter
		for _, k := range sortedKeys(m) {
			out = append(out, &graygwv1.NamedCounter{Name: k, Packets: m[k].Packets, Bytes: m[k].Bytes})
		}
		return out
	}
	return &graygwv1.GatewayCounters{Gateway: c.Gateway, Version: c.Version, Time: timestamppb.New(c.Time),
		Rules: named(c.Rules), Vips: named(c.VIPs), Pools: named(c.Pools), Backends: named(c.Backends),
		Drops: named(c.Drops), Mirrors: named(c.Mirrors), MirrorBackends: named(c.MirrorBackends), Foreign: &graygwv1.NamedCounter{Name: engine.OriginForeign, Packets: c.Foreign.Packets, Bytes: c.Foreign.Bytes}}
}

func storeError(err error) error {
	switch {
	// Before the context errors: a replicated store's own request timeout
	// carries context.DeadlineExceeded, but the client's deadline did not pass.
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrUnavailable):
		return status.Errorf(codes.Unavailable, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Errorf(codes.Internal, "%v", err)
}
