package service

// Rollouts: the controller runs controller/rollout's Runner over its own
// cutovers, rollbacks and probes, and keeps the progress in the store, so a
// restarted controller reports (and resumes) the rollout exactly where it
// stopped.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/store"
)

// RolloutNamespace and RolloutKey locate the rollout's progress in the store
// (JSON of rollout.Progress).
const (
	RolloutNamespace = "rollout"
	RolloutKey       = "current"
)

// rolloutStore keeps the rollout's progress in the controller's store: every
// Save is a durable Put before the rollout acts on it.
type rolloutStore struct{ st store.Store }

func (r rolloutStore) Save(ctx context.Context, p *rollout.Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.st.Put(ctx, RolloutNamespace, RolloutKey, b)
}

func (r rolloutStore) Load(ctx context.Context) (*rollout.Progress, error) {
	b, err := r.st.Get(ctx, RolloutNamespace, RolloutKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, rollout.ErrNoProgress
	}
	if err != nil {
		return nil, err
	}
	var p rollout.Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("stored rollout progress: %w", err)
	}
	return &p, nil
}

// rolloutCtl is the rollout.Controller (and rollout.VIPProber) the Runner
// drives: cutovers and rollbacks are the API's own, applied and waited for
// (the probes after a step must see the gateways hold it); probes go through
// the probe host.
type rolloutCtl struct{ s *Service }

var (
	_ rollout.Controller = rolloutCtl{}
	_ rollout.VIPProber  = rolloutCtl{}
)

// actor records the rollout's changes: "rollout NAME (started by WHO)", or
// "rollout NAME" for a rollout a restarted controller resumed.
func (c rolloutCtl) actor() string {
	p, err := c.s.runner.Status()
	if err != nil {
		return "rollout"
	}
	c.s.actorMu.Lock()
	defer c.s.actorMu.Unlock()
	if a := c.s.rolloutActors[p.Plan.Name]; a != "" {
		return a
	}
	return "rollout " + p.Plan.Name
}

// Cutover implements rollout.Controller.
func (c rolloutCtl) Cutover(ctx context.Context, sc rollout.Scope, pool string, dry bool) (string, error) {
	req, err := scopeRequest(sc, pool)
	if err != nil {
		return "", fmt.Errorf("%w: %w", rollout.ErrRefused, err)
	}
	req.Options = &graygwv1.ChangeOptions{Actor: c.actor(), DryRun: dry, Wait: !dry}
	resp, err := c.s.Cutover(ctx, req)
	if err != nil {
		return "", err
	}
	res := resp.GetResult()
	if len(res.GetProblems()) > 0 {
		return "", fmt.Errorf("%w: %w", rollout.ErrRefused, problemsError(res.GetProblems()))
	}
	if res.GetWaitError() != "" {
		// Applied, but not every gateway confirmed it: probes would test a
		// state nobody can vouch for. Take the rule out again.
		rb, rerr := c.s.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: resp.GetRule(),
			Options: &graygwv1.ChangeOptions{Actor: c.actor(), Summary: "rollout: remove rule " + resp.GetRule() + ": the gateways did not confirm it"}})
		undo := "removed again"
		if rerr != nil || len(rb.GetResult().GetProblems()) > 0 {
			undo = fmt.Sprintf("REMOVING IT FAILED (%v %v): roll back rule %s by hand", rerr, rb.GetResult().GetProblems(), resp.GetRule())
		}
		return "", fmt.Errorf("rule %s applied as intent version %d but the gateways did not confirm it: %s; the rule was %s",
			resp.GetRule(), res.GetVersion(), res.GetWaitError(), undo)
	}
	return resp.GetRule(), nil
}

// scopeRequest turns a rollout scope into a cutover request (VNI, VM or a
// percentage of a VNI: what plans produce).
func scopeRequest(sc rollout.Scope, pool string) (*graygwv1.CutoverRequest, error) {
	m := sc.Match
	req := &graygwv1.CutoverRequest{Vip: m.VIP, Pool: pool, Rule: sc.Name}
	if m.VNI == nil || m.Dst != "" || m.Tenant != "" || m.Proto != "" || m.SPort != nil || m.DPort != nil {
		return nil, fmt.Errorf("scope %+v: a rollout step moves a VNI or a VM of a VNI", m)
	}
	vni := uint32(*m.VNI)
	switch {
	case m.Src != "":
		a, err := netip.ParseAddr(strings.TrimSuffix(m.Src, "/32"))
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("scope: src %q is not one VM's IPv4 address", m.Src)
		}
		req.Scope = &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: vni, Src: a.String()}}
	case sc.Percent > 0 && sc.Percent < 100:
		req.Scope = &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: vni, Percent: sc.Percent}}
	default:
		req.Scope = &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: vni}}
	}
	return req, nil
}

// Rollback implements rollout.Controller: the rule is removed and the gateways
// are waited for; a rule that is not there is already rolled back.
func (c rolloutCtl) Rollback(ctx context.Context, rule string) error {
	resp, err := c.s.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: rule,
		Options: &graygwv1.ChangeOptions{Actor: c.actor(), Wait: true}})
	if err != nil {
		return err
	}
	res := resp.GetResult()
	for _, p := range res.GetProblems() {
		if p.GetClass() == "unknown_ref" && p.GetPath() == "rollback.rule" {
			return nil
		}
	}
	if len(res.GetProblems()) > 0 {
		return problemsError(res.GetProblems())
	}
	if res.GetWaitError() != "" {
		// The rule is out of the intent; the engine brings the gateways there.
		// The probes after the rollback show where the traffic really goes.
		c.s.log.Warn("rollout: rule removed, but not every gateway confirmed it in time", "rule", rule, "wait_error", res.GetWaitError())
	}
	return nil
}

// Intent implements rollout.IntentSource: the intent in force, whose
// inventory fills in what a plan's VPCs leave out.
func (c rolloutCtl) Intent() *intent.Intent {
	in, _ := c.s.cfg.Engine.Intent()
	return in
}

// Probe implements rollout.Controller (the intent's only VIP).
func (c rolloutCtl) Probe(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	return c.ProbeVIP(ctx, "", ts, o)
}

// ProbeVIP implements rollout.VIPProber.
func (c rolloutCtl) ProbeVIP(ctx context.Context, vip string, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	rs, _, err := c.s.runProbes(ctx, vip, ts, o)
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
		p, err = rollout.Check(ctx, rolloutCtl{s}, spec)
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
