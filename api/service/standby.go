package service

// Standby: the API of a controller replica that does not lead (docs/ha.md).

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
)

// LeaderTrailer is the response trailer in which a standby replica names the
// leader's API address; the CLI retries the call there.
const LeaderTrailer = "graygw-leader"

// leaderLookup bounds a standby's question to the store: who leads?
const leaderLookup = 2 * time.Second

// LeaderInfo says who leads now: its name, term and API address; ok false
// while nobody does.
type LeaderInfo func(ctx context.Context) (name string, term uint64, address string, ok bool)

// Standby serves the API of a replica that does not lead: Get and History
// from the shared store, Trace from a warm follower's standby engine
// (ServeTrace), every other call refused with UNAVAILABLE naming the leader
// (and its address in the LeaderTrailer trailer).
type Standby struct {
	graygwv1.UnimplementedControllerServer
	reads  *Service // Get and History read only the store
	leader LeaderInfo
	log    *slog.Logger
}

// NewStandby returns the standby API over the shared store.
func NewStandby(st store.Store, leader LeaderInfo, log *slog.Logger) *Standby {
	if log == nil {
		log = slog.Default()
	}
	return &Standby{reads: &Service{cfg: Config{Store: st}, log: log}, leader: leader, log: log}
}

// Get implements graygwv1.ControllerServer from the store.
func (s *Standby) Get(ctx context.Context, req *graygwv1.GetRequest) (*graygwv1.GetResponse, error) {
	return s.reads.Get(ctx, req)
}

// History implements graygwv1.ControllerServer from the store.
func (s *Standby) History(ctx context.Context, req *graygwv1.HistoryRequest) (*graygwv1.HistoryResponse, error) {
	return s.reads.History(ctx, req)
}

// ServeTrace makes the standby answer Trace itself, from eng: a warm
// follower's standby engine, which holds the stored intent and a standby
// P4Runtime session to every gateway (reads need no mastership). Call it
// before NewServer.
func (s *Standby) ServeTrace(eng *engine.Engine) { s.reads.cfg.Engine = eng }

// Trace implements graygwv1.ControllerServer from the standby engine; until
// that engine follows an intent (a replica just started) the caller is sent
// to the leader.
func (s *Standby) Trace(ctx context.Context, req *graygwv1.TraceRequest) (*graygwv1.TraceResponse, error) {
	if s.reads.cfg.Engine == nil || len(s.reads.cfg.Engine.Gateways()) == 0 {
		return nil, s.refusal(ctx)
	}
	return s.reads.Trace(ctx, req)
}

// refusal is the answer to anything but a read: the leader, or that nobody
// leads yet. The leader's address goes in the LeaderTrailer trailer, for
// unary calls and streams alike (the CLI follows both).
func (s *Standby) refusal(ctx context.Context) error {
	// Bounded: without a quorum etcd does not answer, and the refusal must
	// not wait for the client's deadline.
	lctx, cancel := context.WithTimeout(ctx, leaderLookup)
	name, term, addr, ok := s.leader(lctx)
	cancel()
	if !ok {
		return status.Error(codes.Unavailable, "this controller replica does not lead, and no replica leads right now (an election is under way, or etcd has no quorum): retry")
	}
	if addr != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(LeaderTrailer, addr))
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("this controller replica does not lead: the leader is %s (term %d) at %s", name, term, addr))
}

// NewServer returns a gRPC server with the standby API registered.
func (s *Standby) NewServer(creds credentials.TransportCredentials) *grpc.Server {
	reads := map[string]bool{graygwv1.Controller_Get_FullMethodName: true, graygwv1.Controller_History_FullMethodName: true,
		graygwv1.Controller_Trace_FullMethodName: s.reads.cfg.Engine != nil}
	gs := grpc.NewServer(grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if reads[info.FullMethod] {
				return h(ctx, req)
			}
			return nil, s.refusal(ctx)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return s.refusal(ss.Context())
		}))
	graygwv1.RegisterControllerServer(gs, s)
	return gs
}
