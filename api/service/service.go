// Package service implements the controller's gRPC API (api/graygw/v1): it
// validates every change, stores accepted intents with their history
// (controller/store), hands them to the reconcile loop (controller/engine), and
// answers status, counters and history. listen.go serves it on a unix socket and,
// optionally, on TCP with mutual TLS.
//
// With a BGPConfig it also decides which VIP paths the controller's BGP speaker
// announces (bgp.go: gateways' sessions and health from the engine, operator
// drains kept in the store, pools from the intent) and re-decides at every
// change. With a ProbeHost it probes VMs through the gateway (probe.go), and it
// runs automated rollouts (rollout.go: controller/rollout's Runner over its own
// cutovers, rollbacks and probes, progress kept in the store).
//
// Changes are serialized: one Apply, Cutover or Rollback at a time, each reading
// the current version, validating, storing (compare-and-swap on the version) and
// applying.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/store"
)

// Defaults of Config.
const (
	DefaultWaitTimeout  = 60 * time.Second
	DefaultHistoryLimit = 100
)

// Operations recorded in the history.
const (
	OpApply        = "apply"
	OpCutover      = "cutover"
	OpRollback     = "rollback"
	OpRollbackAll  = "rollback-all"
	OpRollbackRule = "rollback-rule"
	OpSeed         = "seed"
)

// ErrConfig: the service's configuration is incomplete.
var ErrConfig = errors.New("service: bad configuration")

// Config configures a Service.
type Config struct {
	// Store keeps the intent versions and the history. Required.
	Store store.Store
	// Engine applies the intent to the gateways. Required.
	Engine *engine.Engine
	// Logger receives the service's logs (slog.Default() when nil).
	Logger *slog.Logger
	// WaitTimeout bounds a change's wait when the request gives none
	// (DefaultWaitTimeout when 0).
	WaitTimeout time.Duration
	// BGP, when set, announces the VIPs (bgp.go; StartBGP starts it). Nil: the
	// controller runs without BGP and the BGP calls answer UNIMPLEMENTED.
	BGP *BGPConfig
	// Probe, when set, is the host probes are sent from (probe.go). Nil: Probe,
	// RolloutStart and RolloutResume answer UNIMPLEMENTED.
	Probe *ProbeHost
}

// Service implements graygwv1.ControllerServer.
type Service struct {
	graygwv1.UnimplementedControllerServer

	cfg Config
	log *slog.Logger

	// mu serializes changes (and Drain against the change in flight).
	mu       sync.Mutex
	draining bool
	doc      *docCache // the current version parsed (fastdoc.go); under mu

	bgpMu sync.Mutex
	bgp   bgpState

	probe probeState

	runner *rollout.Runner
	// rolloutMu serializes the rollout calls that act, and stopRollouts.
	rolloutMu       sync.Mutex
	rolloutsStopped bool
	stopped         chan struct{} // closed by stopRollouts: watches end
	actorMu         sync.Mutex
	rolloutActors   map[string]string // plan name -> "rollout NAME (started by WHO)"
}

// New returns a service over cfg.Store and cfg.Engine. Call Start before serving.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, fmt.Errorf("%w: Store and Engine are required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.BGP != nil {
		b := *cfg.BGP
		if err := b.check(); err != nil {
			return nil, err
		}
		cfg.BGP = &b
	}
	s := &Service{cfg: cfg, log: cfg.Logger, stopped: make(chan struct{}), rolloutActors: map[string]string{}}
	s.bgp.drains = map[string]drainRecord{}
	s.runner = rollout.NewRunner(rolloutCtl{s}, rolloutStore{cfg.Store}, rollout.Options{})
	return s, nil
}

// Start puts the stored intent in force, if there is one, reads the drained
// gateways (with BGP) and recovers the rollout an earlier process left (a
// running one is reported paused at the step it was in). A stored intent that no
// longer validates or compiles (e.g. after an upgrade that tightened validation)
// is an error: the engine then manages nothing and the gateways keep their
// entries until a valid intent is applied.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.BGP != nil {
		if err := s.loadDrains(ctx); err != nil {
			return err
		}
	}
	err := s.startIntent(ctx)
	s.recoverRollout(ctx)
	return err
}

func (s *Service) startIntent(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.cfg.Store.Current(ctx)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("no intent stored yet: waiting for one (Apply, or --intent)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: read the current intent: %w", err)
	}
	in, err := intent.Load(cur.Intent)
	if err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	p, err := s.cfg.Engine.Prepare(in)
	if err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	if err := s.cfg.Engine.Commit(p, cur.Number); err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	s.log.Info("stored intent in force", "version", cur.Number, "committed_by", cur.Actor, "at", cur.Time)
	return nil
}

// Seed stores and applies doc as the first intent when the store holds none
// (the controller's --intent flag). When an intent is already stored it does
// nothing and reports false: the store, not the file, is the source of truth
// once the controller has run.
func (s *Service) Seed(ctx context.Context, doc []byte, actor string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.cfg.Store.Current(ctx); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("service: read the current intent: %w", err)
	}
	res, err := s.changeLocked(ctx, change{doc: doc, op: OpSeed, opts: &graygwv1.ChangeOptions{Actor: actor}})
	if err != nil {
		return false, err
	}
	if len(res.Problems) > 0 {
		return false, fmt.Errorf("service: seed intent refused: %w", problemsError(res.Problems))
	}
	return res.Applied, nil
}

// Drain makes the service refuse every further change (UNAVAILABLE), after the
// change in flight, if any, is complete. Reads keep working. A running rollout
// is stopped first, where it is (its step in flight stays recorded, for the
// next controller process to report), and rollout watches end.
func (s *Service) Drain() {
	s.stopRollouts()
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

func (s *Service) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
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
			Operation: ev.Operation, Summary: ev.Summary, Before: ev.Before, After: ev.After, Undoes: ev.Undoes})
	}
	return out, nil
}

// Status implements graygwv1.ControllerServer.
func (s *Service) Status(ctx context.Context, _ *graygwv1.StatusRequest) (*graygwv1.StatusResponse, error) {
	in, version := s.cfg.Engine.Intent()
	out := &graygwv1.StatusResponse{Version: version, Draining: s.isDraining() || s.cfg.Engine.Draining()}
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
		Drops: named(c.Drops), Foreign: &graygwv1.NamedCounter{Name: engine.OriginForeign, Packets: c.Foreign.Packets, Bytes: c.Foreign.Bytes}}
}

func storeError(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, store.ErrClosed):
		return status.Errorf(codes.Unavailable, "%v", err)
	}
	return status.Errorf(codes.Internal, "%v", err)
}
