package service

// Rollouts: controller/rollout's Runner drives the change pipeline in process
// (change.Rollouts) and keeps the progress in the controller's store
// (rollout.ControllerStore), so a restarted controller reports (and resumes)
// the rollout exactly where it stopped.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// rolloutActor is who the rollout's changes are recorded as: "rollout NAME
// (started by WHO)", or "rollout NAME" for a rollout a restarted controller
// resumed.
func (s *Service) rolloutActor() string {
	p, err := s.runner.Status()
	if err != nil {
		return "rollout"
	}
	s.actorMu.Lock()
	defer s.actorMu.Unlock()
	if a := s.rolloutActors[p.Plan.Name]; a != "" {
		return a
	}
	return "rollout " + p.Plan.Name
}

// probeVIP is the rollout's probe function: runProbes with its statuses made
// plain errors.
func (s *Service) probeVIP(ctx context.Context, vip string, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	rs, _, err := s.runProbes(ctx, vip, ts, o)
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return nil, errors.New(st.Message())
		}
		return nil, err
	}
	return rs, nil
}

// recoverRollout loads the rollout an earlier process left: a running one is
// reported paused at the step it was in (Runner.Recover).
func (s *Service) recoverRollout(ctx context.Context) {
	p, err := s.runner.Recover(ctx)
	switch {
	case errors.Is(err, rollout.ErrNoRollout):
	case err != nil:
		s.log.Error("rollout: the stored progress cannot be used", "err", err)
	default:
		s.log.Info("rollout recovered from the store", "rollout", p.Plan.Name, "state", p.State, "step", p.Step,
			"total", p.Total, "message", p.Message)
	}
}

// stopRollouts makes the rollout calls that act refuse (UNAVAILABLE), ends the
// watches, and stops the rollout goroutine where it is: the step in flight
// stays recorded as it is, for the next process to report and resume.
func (s *Service) stopRollouts() {
	s.rolloutMu.Lock()
	defer s.rolloutMu.Unlock()
	if s.rolloutsStopped {
		return
	}
	s.rolloutsStopped = true
	close(s.stopped)
	s.runner.Close()
}

var errRolloutsStopped = status.Error(codes.Unavailable, "controller draining: rollouts are stopped (the next controller process reports and resumes them)")

// rolloutStatus turns a runner error into a gRPC status.
func rolloutStatus(err error) error {
	switch {
	case errors.Is(err, rollout.ErrNoRollout):
		return status.Error(codes.NotFound, "no rollout has been started on this controller")
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
	s.rolloutMu.Lock()
	defer s.rolloutMu.Unlock()
	if s.rolloutsStopped {
		return nil, errRolloutsStopped
	}
	var p *rollout.Progress
	if req.GetDryRun() {
		p, err = rollout.Check(ctx, change.Rollouts{Changes: s.changes, Prober: s.probeVIP, Actor: s.rolloutActor}, spec)
	} else {
		s.actorMu.Lock()
		s.rolloutActors[spec.Name] = fmt.Sprintf("rollout %s (started by %s)", spec.Name, actorOf(ctx, req.GetActor()))
		s.actorMu.Unlock()
		p, err = s.runner.Start(ctx, spec)
	}
	var pe *rollout.PrecheckError
	switch {
	case err == nil:
		if !req.GetDryRun() {
			s.log.Info("rollout started", "rollout", spec.Name, "steps", p.Total, "actor", actorOf(ctx, req.GetActor()))
		}
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
	p, err := s.runner.Status()
	if err != nil {
		return nil, rolloutStatus(err)
	}
	return progressResponse(p)
}

// RolloutPause implements graygwv1.ControllerServer.
func (s *Service) RolloutPause(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return s.rolloutAct(ctx, "pause", req, s.runner.Pause)
}

// RolloutResume implements graygwv1.ControllerServer.
func (s *Service) RolloutResume(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	if s.cfg.Probe == nil {
		return nil, errNoProbeHost
	}
	return s.rolloutAct(ctx, "resume", req, s.runner.Resume)
}

// RolloutAbort implements graygwv1.ControllerServer.
func (s *Service) RolloutAbort(ctx context.Context, req *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return s.rolloutAct(ctx, "abort", req, s.runner.Abort)
}

func (s *Service) rolloutAct(ctx context.Context, what string, req *graygwv1.RolloutActionRequest,
	act func(context.Context) (*rollout.Progress, error)) (*graygwv1.RolloutResponse, error) {
	s.rolloutMu.Lock()
	defer s.rolloutMu.Unlock()
	if s.rolloutsStopped {
		return nil, errRolloutsStopped
	}
	p, err := act(ctx)
	if err != nil {
		return nil, rolloutStatus(err)
	}
	s.log.Info("rollout "+what, "rollout", p.Plan.Name, "state", p.State, "step", p.Step, "actor", actorOf(ctx, req.GetActor()))
	return progressResponse(p)
}

// RolloutWatch implements graygwv1.ControllerServer.
func (s *Service) RolloutWatch(_ *graygwv1.RolloutWatchRequest, stream grpc.ServerStreamingServer[graygwv1.RolloutProgress]) error {
	ch, cancel := s.runner.Subscribe()
	defer cancel()
	p, err := s.runner.Status()
	if err != nil {
		return rolloutStatus(err)
	}
	for {
		pp, err := convert.Progress(p)
		if err != nil {
			return status.Errorf(codes.Internal, "%v", err)
		}
		if err := stream.Send(pp); err != nil {
			return err
		}
		if p.State != rollout.StateRunning {
			return nil
		}
		select {
		case p = <-ch:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-s.stopped:
			return errRolloutsStopped
		}
	}
}
