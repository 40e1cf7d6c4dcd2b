// Package server is graygw's P4Runtime server (the "XDP agent" of the design): it
// serves the P4Runtime gRPC service (P4Runtime 1.5.0) for the committed P4Info and
// turns writes into calls on a dataplane.Dataplane, answering reads from its own
// view of the entries plus the dataplane's counters.
//
// One file per P4Runtime concern: arbitration.go (StreamChannel, primary
// election), fwd_pipe.go (Set/GetForwardingPipelineConfig), write.go (Write
// batches), tables.go and counters.go (the entities), read.go (Read), entry.go
// (validation and canonical form), translate.go (the table bindings to the
// dataplane), store.go (the view, its journal and restart convergence).
//
// docs/agent.md describes the behaviour and the spec sections each choice follows.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/p4info"
)

// APIVersion is the P4Runtime version the server implements (Capabilities).
const APIVersion = "1.5.0"

// DefaultDeviceID is the device id served when Config.DeviceID is 0.
const DefaultDeviceID = 1

// DefaultCompactBytes is the journal log size that triggers a compaction.
const DefaultCompactBytes = 64 << 20

// Config configures New.
type Config struct {
	// DeviceID is the P4Runtime device id served (DefaultDeviceID when 0).
	DeviceID uint64
	// P4Info is the pipeline served: SetForwardingPipelineConfig accepts only a
	// P4Info semantically equal to it. Required.
	P4Info *p4info.Info
	// Dataplane receives the writes. Required.
	Dataplane dataplane.Dataplane
	// StateDir is where the journal lives; empty disables persistence (the
	// server then starts empty, as after a full restart).
	StateDir string
	// Generation is the journal generation (journal.BootID() for pinned maps).
	Generation string
	// CompactBytes is the journal log size that triggers a compaction
	// (DefaultCompactBytes when 0).
	CompactBytes int64
	// Logger receives the server's logs (slog.Default() when nil).
	Logger *slog.Logger
	// ResetElectionIDs forgets the highest election id of every role after the
	// journal is replayed (entries and pipeline kept): the recovery from a
	// rogue client that arbitrated with 2^128-1, above which no controller can
	// ever become primary (docs/security.md).
	ResetElectionIDs bool
}

// pipelineState is the forwarding pipeline config as set by the client.
type pipelineState struct {
	committed *p4v1.ForwardingPipelineConfig // nil until a commit
	saved     *p4v1.ForwardingPipelineConfig // VERIFY_AND_SAVE, not yet committed
}

// Server implements p4v1.P4RuntimeServer. Register it with
// p4v1.RegisterP4RuntimeServer.
type Server struct {
	p4v1.UnimplementedP4RuntimeServer

	cfg    Config
	log    *slog.Logger
	schema *schema
	dp     dataplane.Dataplane
	cw     dataplane.CounterWriter // nil when the dataplane cannot set counters

	// writeMu serializes Write and SetForwardingPipelineConfig (strict
	// serializability, spec §12.1) and lets arbitration wait for in-flight writes.
	writeMu sync.Mutex
	// viewMu guards view and pipe: writers hold it for a whole batch, readers
	// for a whole Read, so a Read sees a Write completely or not at all.
	viewMu sync.RWMutex
	view   view
	pipe   pipelineState

	journal *journal.Journal

	arbMu   sync.Mutex
	roles   map[string]*roleState
	streams map[*stream]struct{}

	draining atomic.Bool
}

// New builds a server over cfg.Dataplane. With a StateDir it replays the journal
// found there and, when that yields a state, brings the dataplane to it
// (converge): the restart path of docs/agent.md.
func New(cfg Config) (*Server, error) {
	if cfg.P4Info == nil || cfg.Dataplane == nil {
		return nil, errors.New("server: Config needs P4Info and Dataplane")
	}
	if cfg.DeviceID == 0 {
		cfg.DeviceID = DefaultDeviceID
	}
	if cfg.CompactBytes == 0 {
		cfg.CompactBytes = DefaultCompactBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sch, err := newSchema(cfg.P4Info)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, schema: sch, dp: cfg.Dataplane, roles: map[string]*roleState{},
		streams: map[*stream]struct{}{}}
	s.cw, _ = cfg.Dataplane.(dataplane.CounterWriter)
	s.view = newView(sch)
	if cfg.StateDir == "" {
		return s, nil
	}
	rp := &replayer{s: s}
	j, rep, err := journal.Open(cfg.StateDir, journal.Options{Generation: cfg.Generation}, rp.record)
	if err != nil {
		return nil, fmt.Errorf("server: state dir %s: %w", cfg.StateDir, err)
	}
	rp.flush(nil)
	s.journal = j
	if rep.Discarded != "" {
		s.log.Warn("journal discarded: starting empty", "dir", cfg.StateDir, "reason", rep.Discarded)
	}
	if rep.TornBytes > 0 {
		s.log.Warn("journal had a torn last record; cut", "bytes", rep.TornBytes)
	}
	if cfg.ResetElectionIDs {
		for role, rs := range s.roles {
			if rs.highest != nil {
				s.log.Warn("election id forgotten (--reset-election-ids)", "role", role,
					"election_id_high", rs.highest.hi, "election_id_low", rs.highest.lo)
				rs.highest = nil
			}
		}
		if err := j.Compact(s.snapshot); err != nil {
			j.Close()
			return nil, fmt.Errorf("server: reset election ids: %w", err)
		}
	}
	n := s.entryCount()
	if rep.Records > 0 {
		s.log.Info("state restored from journal", "records", rep.Records, "entries", n,
			"pipeline", s.pipe.committed != nil)
		if err := s.converge(); err != nil {
			s.log.Error("dataplane convergence incomplete", "err", err)
		}
	}
	return s, nil
}

func (s *Server) entryCount() int {
	n := 0
	for _, t := range s.view {
		n += len(t)
	}
	return n
}

// Drain stops accepting writes (Write and SetForwardingPipelineConfig answer
// UNAVAILABLE), waits for the write in flight, compacts the journal and ends every
// StreamChannel with UNAVAILABLE. Reads keep working. It returns when done or when
// ctx ends.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	done := make(chan error, 1)
	go func() {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		var err error
		if s.journal != nil {
			s.viewMu.RLock()
			err = s.journal.Compact(s.snapshot)
			s.viewMu.RUnlock()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("server: drain: %w", ctx.Err())
	}
	s.arbMu.Lock()
	for st := range s.streams {
		st.end(errf(codes.Unavailable, "agent draining: reconnect to the restarted agent").grpc())
	}
	s.arbMu.Unlock()
	return err
}

// Close closes the journal. The dataplane is the caller's.
func (s *Server) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

// checkDevice answers NOT_FOUND for a device id the server does not serve.
func (s *Server) checkDevice(id uint64) *uerr {
	if id != s.cfg.DeviceID {
		return errf(codes.NotFound, "device_id %d unknown: this agent serves device %d", id, s.cfg.DeviceID)
	}
	return nil
}

// pipelineReady answers FAILED_PRECONDITION before a pipeline config is set.
func (s *Server) pipelineReady() *uerr {
	if s.pipe.committed == nil && s.pipe.saved == nil {
		return errf(codes.FailedPrecondition, "no forwarding pipeline config: call SetForwardingPipelineConfig first")
	}
	return nil
}

// Capabilities implements the Capabilities RPC (spec §17).
func (s *Server) Capabilities(_ context.Context, req *p4v1.CapabilitiesRequest) (*p4v1.CapabilitiesResponse, error) {
	if id := req.GetDeviceId(); id != 0 {
		if e := s.checkDevice(id); e != nil {
			return nil, e.grpc()
		}
	}
	return &p4v1.CapabilitiesResponse{P4RuntimeApiVersion: APIVersion}, nil
}
