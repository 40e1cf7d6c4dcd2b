package server

import (
	"context"
	"strings"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/model"
)

// The agent serves one pipeline, the committed graygw P4Info: the XDP program is
// the pipeline, loaded by the daemon, and SetForwardingPipelineConfig only checks
// that the controller means the same one. The P4Info is compared semantically
// (p4info.Diff: ids, names, widths, kinds, sizes...; not bytes, order or docs);
// p4_device_config is opaque, kept and returned, never interpreted.
//
// Actions (spec §14 SetForwardingPipelineConfig):
//   VERIFY               check only.
//   VERIFY_AND_SAVE      check, keep as the saved config; writes are accepted
//                        (the program is already running).
//   VERIFY_AND_COMMIT    check, commit, and clear the forwarding state (every
//                        entry is deleted from the dataplane), as the spec says.
//   COMMIT               commit the saved config (NOT_FOUND without one,
//                        INVALID_ARGUMENT if a config is given); state is kept.
//   RECONCILE_AND_COMMIT check, commit, keep the forwarding state: the way for a
//                        controller to reconnect to a running agent without a
//                        traffic hit, like comparing cookies first.

// SetForwardingPipelineConfig implements the RPC.
func (s *Server) SetForwardingPipelineConfig(ctx context.Context, req *p4v1.SetForwardingPipelineConfigRequest) (*p4v1.SetForwardingPipelineConfigResponse, error) {
	if e := s.admitWriter(ctx, req.GetDeviceId(), req.GetRole(), req.GetElectionId(), "no configuration changes"); e != nil {
		return nil, e.grpc()
	}
	defer s.writeMu.Unlock()
	cfg := req.GetConfig()
	verify := func() *uerr {
		if cfg == nil || cfg.GetP4Info() == nil {
			return errf(codes.InvalidArgument, "%s needs a config with a P4Info", req.GetAction())
		}
		if n := len(cfg.GetP4DeviceConfig()); n > MaxDeviceConfig {
			return errf(codes.ResourceExhausted, "p4_device_config of %d bytes is over the agent's limit of %d (the XDP dataplane uses none)",
				n, MaxDeviceConfig)
		}
		if d := p4info.Duplicates(cfg.GetP4Info()); d != nil {
			return errf(codes.InvalidArgument, "the P4Info given has duplicates: %s", strings.Join(d, "; "))
		}
		if d := p4info.Diff(s.schema.info.P4Info(), cfg.GetP4Info()); d != nil {
			if len(d) > 10 {
				d = append(d[:10], "...")
			}
			return errf(codes.InvalidArgument, "this agent runs the graygw pipeline only; the P4Info given differs: %s", strings.Join(d, "; "))
		}
		return nil
	}
	var err *uerr
	switch req.GetAction() {
	case p4v1.SetForwardingPipelineConfigRequest_VERIFY:
		err = verify()
	case p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE:
		if err = verify(); err == nil {
			err = s.setPipeline(pipeSaved, cfg, false)
		}
	case p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT:
		if err = verify(); err == nil {
			err = s.setPipeline(pipeCommitted, cfg, true)
		}
	case p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT:
		if err = verify(); err == nil {
			err = s.setPipeline(pipeCommitted, cfg, false)
		}
	case p4v1.SetForwardingPipelineConfigRequest_COMMIT:
		switch {
		case cfg != nil:
			err = errf(codes.InvalidArgument, "COMMIT takes no config: it commits the one saved by VERIFY_AND_SAVE")
		case s.pipe.saved == nil:
			err = errf(codes.NotFound, "COMMIT: no config saved by VERIFY_AND_SAVE")
		default:
			err = s.setPipeline(pipeCommitted, s.pipe.saved, false)
		}
	default:
		err = errf(codes.InvalidArgument, "action %s: want VERIFY, VERIFY_AND_SAVE, VERIFY_AND_COMMIT, COMMIT or RECONCILE_AND_COMMIT", req.GetAction())
	}
	if err != nil {
		return nil, err.grpc()
	}
	s.log.Info("forwarding pipeline config", "action", req.GetAction().String(), "cookie", s.cookie())
	return &p4v1.SetForwardingPipelineConfigResponse{}, nil
}

func (s *Server) cookie() uint64 {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.pipe.committed.GetCookie().GetCookie()
}

// setPipeline records cfg as the saved or committed config (journal first) and,
// with clear, removes every entry. Callers hold writeMu.
func (s *Server) setPipeline(kind byte, cfg *p4v1.ForwardingPipelineConfig, clear bool) *uerr {
	cfg = proto.Clone(cfg).(*p4v1.ForwardingPipelineConfig)
	if s.journal != nil {
		rec, err := encodePipeline(kind, cfg)
		if err != nil {
			return errf(codes.Internal, "%v", err)
		}
		recs := [][]byte{rec}
		if clear {
			recs = append(recs, []byte{recClear})
		}
		if err := s.journal.Append(recs...); err != nil {
			return errf(codes.Internal, "state not recorded: %v", err)
		}
	}
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if kind == pipeSaved {
		s.pipe.saved = cfg
	} else {
		s.pipe.committed, s.pipe.saved = cfg, nil
	}
	if !clear {
		return nil
	}
	if err := s.clearAll(); err != nil {
		return errf(codes.Internal, "forwarding state not fully cleared: %v", err)
	}
	return nil
}

// clearAll deletes every entry of the view from the dataplane (VIPs first, so
// traffic stops being claimed before what it would use goes), then what a Lister
// still reports. Callers hold viewMu.
func (s *Server) clearAll() error {
	var firstErr error
	for i := len(s.schema.applyOrder) - 1; i >= 0; i-- {
		t := s.schema.applyOrder[i]
		es, err := s.entries(t)
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := t.bind.del(s.dp, e); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	s.view = newView(s.schema)
	if l, ok := s.dp.(dataplane.Lister); ok {
		have, err := l.List()
		if err != nil {
			return err
		}
		for _, err := range removeExtras(s.dp, have, model.NewState()) {
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if s.journal != nil && s.journal.LogSize() > 0 {
		if err := s.journal.Compact(s.snapshot); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// GetForwardingPipelineConfig implements the RPC (spec §15): the committed
// config as set, or an unset config before any commit.
func (s *Server) GetForwardingPipelineConfig(_ context.Context, req *p4v1.GetForwardingPipelineConfigRequest) (*p4v1.GetForwardingPipelineConfigResponse, error) {
	if e := s.checkDevice(req.GetDeviceId()); e != nil {
		return nil, e.grpc()
	}
	s.viewMu.RLock()
	c := s.pipe.committed
	s.viewMu.RUnlock()
	if c == nil {
		return &p4v1.GetForwardingPipelineConfigResponse{}, nil
	}
	out := &p4v1.ForwardingPipelineConfig{Cookie: c.GetCookie()}
	switch req.GetResponseType() {
	case p4v1.GetForwardingPipelineConfigRequest_ALL:
		out.P4Info, out.P4DeviceConfig = c.GetP4Info(), c.GetP4DeviceConfig()
	case p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY:
	case p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE:
		out.P4Info = c.GetP4Info()
	case p4v1.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE:
		out.P4DeviceConfig = c.GetP4DeviceConfig()
	default:
		return nil, errf(codes.InvalidArgument, "response_type %d unknown", req.GetResponseType()).grpc()
	}
	return &p4v1.GetForwardingPipelineConfigResponse{Config: out}, nil
}
