package service

// Rollouts: rollout.Control runs them, its Runner driving the change pipeline
// in process (change.Rollouts) and keeping the progress in the controller's
// store (rollout.ControllerStore), so a restarted controller reports (and
// resumes) the rollout exactly where it stopped. Here they are mapped onto the
// API.

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// probeVIP is the rollouts' probe function: the probe host's runs.
func (s *Service) probeVIP(ctx context.Context, vip string, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	if s.probes == nil {
		return nil, errors.New(status.Convert(errNoProbeHost).Message())
	}
	rs, _, err := s.probes.Run(ctx, vip, ts, o)
	return rs, err
}

var errRolloutsStopped = status.Error(codes.Unavailable, rollout.ErrStopped.Error())

// rolloutStatus turns a runner error into a gRPC status.
func rolloutStatus(err error) error {
	switch {
	case errors.Is(err, rollout.ErrNoRollout):
		return status.Error(codes.NotFound, "no rollout has been started on this controller")
	case errors.Is(err, rollout.ErrStopped):
		return errRolloutsStopped
	case errors.Is(err, rollout.ErrBusy), errors.Is(err, rollout.ErrState):
		return status.Errorf(codes.FailedPrecondition, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.Internal, "%v", err)
}

func progressResponse(p *rollout.Progress) (*graygwv1.RolloutResponse, error) {
	pp, err := convert.Progress(p)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &graygwv1.RolloutResponse{Progress: pp}, nil
}

// RolloutStart implements graygwv1.ControllerServer.
func (s *Service) RolloutStart(ctx context.Context, req *graygwv1.RolloutStartRequest) (*graygwv1.RolloutResponse, error) {
	spec, err := rollout.ParsePlan([]byte(req.GetPlanYaml()))
	if err == nil {
		// VPCs that leave out their VMs or router take them from the
		// inventory of the intent in force.
		in, _ := s.cfg.Engine.Intent()
		_, err = spec.ValidateWith(in)
	}
	if err != nil {
		return &graygwv1.RolloutResponse{Problems: planProblems(err)}, nil
	}
	if s.cfg.Probe == nil {
		return nil, errNoProbeHost
	}
	p, err := s.rollouts.Start(ctx, spec, req.GetDryRun(), actorOf(ctx, req.GetActor()))
	var pe *rollout.PrecheckError
	switch {
	case err == nil:
		return progressResponse(p)
	case errors.Is(err, rollout.ErrRefused):
		msg := strings.Replace(err.Error(), rollout.ErrRefused.Error()+": ", "", 1)
		return &graygwv1.RolloutResponse{Problems: []*graygwv1.Problem{problem("", msg, "refused")}}, nil
	case errors.As(err, &pe):
		return &graygwv1.RolloutResponse{PrecheckFailed: err.Error(), Precheck: convert.ProbeResults(pe.Results)}, nil
	case errors.Is(err, rollout.ErrProbeFailed):
		return &graygwv1.RolloutResponse{PrecheckFailed: err.Error()}, nil
	}
	return nil, rolloutStatus(err)
}

// planProblems lists a plan's problems by field path.
func planProblems(err error) []*graygwv1.Problem {
	var pe *rollout.PlanErrors
	if errors.As(err, &pe) {
		var out []*graygwv1.Problem
		for _, p := range pe.Problems {
			out = append(out, problem(p.Path, p.Msg, "plan"))
		}
		return out
	}
	return []*graygwv1.Problem{problem("", err.Error(), "plan")}
}

// RolloutStatus implements graygwv1.ControllerServer.
func (s *Service) RolloutStatus(ctx context.Context, _ *graygwv1.RolloutStatusRequest) (*graygwv1.RolloutResponse, error) {
	p, err := s.rollouts.Status()
	if err != nil {
		return nil, rolloutStatus(err)
	}
	return progressResponse(p)
}

// RolloutPause implements graygwv1.ControllerServer.
func (s *Service) RolloutPause(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return s.rolloutAct(s.rollouts.Pause(ctx, actorOf(ctx, req.GetActor())))
}

// RolloutResume implements graygwv1.ControllerServer.
func (s *Service) RolloutResume(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	if s.cfg.Probe == nil {
		return nil, errNoProbeHost
	}
	return s.rolloutAct(s.rollouts.Resume(ctx, actorOf(ctx, req.GetActor())))
}

// RolloutAbort implements graygwv1.ControllerServer.
func (s *Service) RolloutAbort(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return s.rolloutAct(s.rollouts.Abort(ctx, actorOf(ctx, req.GetActor())))
}

func (s *Service) rolloutAct(p *rollout.Progress, err error) (*graygwv1.RolloutResponse, error) {
	if err != nil {
		return nil, rolloutStatus(err)
	}
	return progressResponse(p)
}

// RolloutWatch implements graygwv1.ControllerServer.
func (s *Service) RolloutWatch(_ *graygwv1.RolloutWatchRequest, stream grpc.ServerStreamingServer[graygwv1.RolloutProgress]) error {
	var sendErr error
	err := s.rollouts.Watch(stream.Context(), func(p *rollout.Progress) error {
		pp, err := convert.Progress(p)
		if err != nil {
			sendErr = status.Errorf(codes.Internal, "%v", err)
			return sendErr
		}
		if err := stream.Send(pp); err != nil {
			sendErr = err
			return err
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case sendErr != nil:
		return sendErr
	case stream.Context().Err() != nil:
		return status.FromContextError(stream.Context().Err()).Err()
	}
	return rolloutStatus(err)
}
