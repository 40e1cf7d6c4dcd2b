package service

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
)

// Apply implements graygwv1.ControllerServer.
func (s *Service) Apply(ctx context.Context, req *graygwv1.ApplyRequest) (*graygwv1.ApplyResponse, error) {
	res, err := s.changes.Apply(ctx, []byte(req.GetIntentYaml()), changeOptions(ctx, req.GetOptions()))
	if err != nil {
		return nil, changeStatus(err)
	}
	return &graygwv1.ApplyResponse{Result: changeResult(res)}, nil
}

// Diff implements graygwv1.ControllerServer.
func (s *Service) Diff(ctx context.Context, req *graygwv1.DiffRequest) (*graygwv1.DiffResponse, error) {
	d, err := s.changes.Diff(ctx, []byte(req.GetIntentYaml()))
	if err != nil {
		return nil, changeStatus(err)
	}
	return &graygwv1.DiffResponse{BaseVersion: d.BaseVersion, Problems: problems(d.Problems), Summary: d.Summary,
		Plans: plans(d.Plans)}, nil
}

// Cutover implements graygwv1.ControllerServer.
func (s *Service) Cutover(ctx context.Context, req *graygwv1.CutoverRequest) (*graygwv1.CutoverResponse, error) {
	c := change.Cutover{Pool: req.GetPool(), VIP: req.GetVip(), Rule: req.GetRule()}
	if m := req.GetMirror(); m != nil {
		c.MirrorPool, c.MirrorRate = m.GetPool(), m.GetRate()
		if c.MirrorPool == "" {
			return nil, status.Error(codes.InvalidArgument, "mirror.pool: required: the pool that receives the copies")
		}
	}
	switch sc := req.GetScope().(type) {
	case *graygwv1.CutoverRequest_Vni:
		c.Scope, c.VNI = change.ScopeVNI, sc.Vni.GetVni()
	case *graygwv1.CutoverRequest_Vm:
		c.Scope, c.VNI, c.Src = change.ScopeVM, sc.Vm.GetVni(), sc.Vm.GetSrc()
	case *graygwv1.CutoverRequest_Prefix:
		p := sc.Prefix
		c.Scope, c.VNI, c.HasVNI, c.Src, c.Dst = change.ScopePrefix, p.GetVni(), p.Vni != nil, p.GetSrc(), p.GetDst()
	case *graygwv1.CutoverRequest_Flow:
		f := sc.Flow
		c.Scope, c.VNI, c.HasVNI, c.Src, c.Dst = change.ScopeFlow, f.GetVni(), f.Vni != nil, f.GetSrc(), f.GetDst()
		c.Proto, c.SPort, c.DPort = f.GetProto(), f.GetSport(), f.GetDport()
	case *graygwv1.CutoverRequest_Percent:
		c.Scope, c.VNI, c.Percent = change.ScopePercent, sc.Percent.GetVni(), sc.Percent.GetPercent()
	}
	res, err := s.changes.Cutover(ctx, c, changeOptions(ctx, req.GetOptions()))
	if err != nil {
		return nil, changeStatus(err)
	}
	return &graygwv1.CutoverResponse{Result: changeResult(res.Result), Rule: res.Rule, Replaced: res.Replaced}, nil
}

// Rollback implements graygwv1.ControllerServer.
func (s *Service) Rollback(ctx context.Context, req *graygwv1.RollbackRequest) (*graygwv1.RollbackResponse, error) {
	mode := change.RollbackNone
	switch req.GetMode() {
	case graygwv1.RollbackRequest_STEP:
		mode = change.RollbackStep
	case graygwv1.RollbackRequest_ALL:
		mode = change.RollbackAll
	case graygwv1.RollbackRequest_RULE:
		mode = change.RollbackRule
	case graygwv1.RollbackRequest_MIRRORS:
		mode = change.RollbackMirrors
	}
	res, err := s.changes.Rollback(ctx, mode, req.GetRule(), changeOptions(ctx, req.GetOptions()))
	if err != nil {
		return nil, changeStatus(err)
	}
	return &graygwv1.RollbackResponse{Result: changeResult(res.Result), Undone: res.Undone, RemovedRules: res.RemovedRules}, nil
}

// changeOptions maps a request's options; the actor is the one the request
// names with the caller's identity (actorOf).
func changeOptions(ctx context.Context, o *graygwv1.ChangeOptions) change.Options {
	out := change.Options{Actor: actorOf(ctx, o.GetActor()), Summary: o.GetSummary(), DryRun: o.GetDryRun(),
		ExpectedVersion: o.GetExpectedVersion(), Wait: o.GetWait()}
	if d := o.GetWaitTimeout(); d != nil && d.AsDuration() > 0 {
		out.WaitTimeout = d.AsDuration()
	}
	return out
}

// changeStatus maps an error of the change pipeline onto a gRPC status.
func changeStatus(err error) error {
	switch {
	case errors.Is(err, change.ErrDraining), errors.Is(err, change.ErrNotApplied):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, change.ErrStale), errors.Is(err, store.ErrConflict):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, change.ErrCapacity):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, change.ErrNoIntent):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, change.ErrEdit):
		return status.Error(codes.Internal, err.Error())
	}
	return storeError(err)
}

func changeResult(r *change.Result) *graygwv1.ChangeResult {
	out := &graygwv1.ChangeResult{Problems: problems(r.Problems), Applied: r.Applied, Unchanged: r.Unchanged,
		Version: r.Version, HistorySeq: r.HistorySeq, Summary: r.Summary, Plans: plans(r.Plans), WaitError: r.WaitError}
	for _, g := range r.Gateways {
		out.Gateways = append(out.Gateways, gatewayStatus(g))
	}
	return out
}

func problems(ps []change.Problem) []*graygwv1.Problem {
	var out []*graygwv1.Problem
	for _, p := range ps {
		out = append(out, problem(p.Path, p.Message, p.Class))
	}
	return out
}

func problem(path, msg, class string) *graygwv1.Problem {
	return &graygwv1.Problem{Path: path, Message: msg, Class: class}
}

func plans(gps []engine.GatewayPlan) []*graygwv1.GatewayPlan {
	var out []*graygwv1.GatewayPlan
	for _, gp := range gps {
		note := gp.Note
		for _, o := range gp.Overflows {
			note = strings.TrimPrefix(note+"; ", "; ") + o.String()
		}
		p := &graygwv1.GatewayPlan{Gateway: gp.Gateway, Reachable: gp.Reachable, Note: note,
			Inserts: uint32(gp.Inserts), Modifies: uint32(gp.Modifies), Deletes: uint32(gp.Deletes),
			Foreign: uint32(gp.Foreign), Truncated: gp.Truncated}
		for _, g := range gp.Groups {
			p.Groups = append(p.Groups, &graygwv1.ChangeGroup{Op: g.Op, Table: g.Table, Origin: g.Origin, Count: uint32(g.Count)})
		}
		for _, c := range gp.Changes {
			p.Changes = append(p.Changes, &graygwv1.Change{Op: c.Op, Table: c.Table, Origin: c.Origin, Entry: c.Entry})
		}
		out = append(out, p)
	}
	return out
}
