package service

// Probes: VXLAN echo requests sent as the VMs from the controller's probe host
// through the gateway (package controller/probe, docs/rollout.md).

import (
	"context"
	"errors"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

var errNoProbeHost = status.Error(codes.Unimplemented,
	"this controller has no probe host (give its config file a probe: section: the namespace and interface to send probes from)")

// runProbes runs probes from the probe host (probe.Station.Run); errors are
// gRPC statuses.
func (s *Service) runProbes(ctx context.Context, vipName string, targets []probe.Target, opts probe.Options) ([]probe.Result, netip.Addr, error) {
	if s.probes == nil {
		return nil, netip.Addr{}, errNoProbeHost
	}
	rs, vip, err := s.probes.Run(ctx, vipName, targets, opts)
	if err != nil {
		return nil, vip, probeStatus(err)
	}
	return rs, vip, nil
}

func probeStatus(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, probe.ErrTarget), errors.Is(err, probe.ErrConfig), errors.Is(err, probe.ErrRequest):
		return status.Errorf(codes.InvalidArgument, "%v", err)
	case errors.Is(err, probe.ErrNoRoute), errors.Is(err, probe.ErrNoIntent), errors.Is(err, probe.ErrNoInventory):
		return status.Errorf(codes.FailedPrecondition, "%v", err)
	case errors.Is(err, probe.ErrUnknownVIP):
		return status.Errorf(codes.NotFound, "%v", err)
	}
	return status.Errorf(codes.Internal, "%v", err)
}

// Probe implements graygwv1.ControllerServer.
func (s *Service) Probe(ctx context.Context, req *graygwv1.ProbeRequest) (*graygwv1.ProbeResponse, error) {
	if s.cfg.Probe == nil {
		return nil, errNoProbeHost
	}
	vip := req.GetVip()
	var targets []probe.Target
	inv := req.GetInventory()
	if len(inv) == 0 && req.GetVni() != 0 && req.GetPlanYaml() == "" && len(req.GetTargets()) == 0 {
		inv = []*graygwv1.InventoryScope{{Vni: req.GetVni()}}
	}
	forms := 0
	for _, given := range []bool{len(req.GetTargets()) > 0, req.GetPlanYaml() != "", len(inv) > 0} {
		if given {
			forms++
		}
	}
	expect := intent.Cluster(req.GetExpectCluster())
	switch expect {
	case "", intent.ClusterBase, intent.ClusterGray:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "expect_cluster %q: want base, gray or empty", expect)
	}
	switch {
	case forms > 1:
		return nil, status.Error(codes.InvalidArgument, "give one of targets, a plan or inventory scopes, not several")
	case req.GetChecks() != nil && len(inv) == 0:
		return nil, status.Error(codes.InvalidArgument, "checks are for inventory scopes: a plan says them in its probe section, explicit targets carry their own proto and port")
	case len(inv) > 0:
		in, _ := s.cfg.Engine.Intent()
		if in == nil {
			return nil, status.Error(codes.FailedPrecondition, "no intent in force: no inventory to take the VMs from")
		}
		scopes := make([]probe.Scope, len(inv))
		for i, sc := range inv {
			scopes[i] = probe.Scope{VNI: sc.GetVni(), VM: sc.GetVm()}
		}
		var err error
		if targets, err = probe.InventoryTargets(in, scopes); err != nil {
			return nil, probeStatus(err)
		}
		if c := req.GetChecks(); c != nil {
			checks, err := checksFrom(c)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "%v", err)
			}
			targets = (&rollout.Plan{Checks: checks}).WithChecks(targets)
		}
	case req.GetPlanYaml() != "":
		spec, err := rollout.ParsePlan([]byte(req.GetPlanYaml()))
		var plan *rollout.Plan
		if err == nil {
			in, _ := s.cfg.Engine.Intent()
			plan, err = spec.ValidateWith(in)
		}
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "plan: %v", err)
		}
		if targets, err = probe.Targets(plan.VPCs, req.GetVni(), netip.Addr{}); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%v", err)
		}
		targets = plan.WithChecks(targets) // the plan's TCP and UDP probes too
		if vip == "" {
			vip = plan.VIP
		}
	default:
		if expect != "" {
			return nil, status.Error(codes.InvalidArgument, "expect_cluster is for targets from a plan or the inventory: explicit targets carry their own")
		}
		for i, t := range req.GetTargets() {
			pt, err := convert.ProbeTargetFrom(t)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "targets[%d]: %v", i, err)
			}
			targets = append(targets, pt)
		}
	}
	if expect != "" {
		for i := range targets {
			targets[i].ExpectCluster, targets[i].ExpectPool = expect, ""
		}
	}
	rs, addr, err := s.runProbes(ctx, vip, targets, convert.ProbeOptionsFrom(req.GetOptions()))
	if err != nil {
		return nil, err
	}
	return &graygwv1.ProbeResponse{Vip: addr.String(), Results: convert.ProbeResults(rs)}, nil
}

// checksFrom validates the API's checks as a plan's probe section.
func checksFrom(c *graygwv1.ProbeChecks) ([]rollout.ProbeCheck, error) {
	icmp := !c.GetNoIcmp()
	spec := rollout.ChecksSpec{ICMP: &icmp}
	for _, p := range c.GetTcp() {
		spec.TCP = append(spec.TCP, int(min(p, 1<<20)))
	}
	for _, p := range c.GetUdp() {
		spec.UDP = append(spec.UDP, int(min(p, 1<<20)))
	}
	return spec.Checks("checks")
}
