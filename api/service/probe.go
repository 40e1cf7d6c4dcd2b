package service

// Probes: VXLAN echo requests sent as the VMs from the controller's probe host
// through the gateway (package controller/probe, docs/rollout.md).

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// Prober runs probes from the probe host (*probe.Prober).
type Prober interface {
	Run(ctx context.Context, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
	Close() error
}

// ProbeHost is where the controller sends probes from: in the lab, the
// hypervisor's namespace. Probes leave through an AF_PACKET socket bound to the
// interface, from the hypervisor's VTEP address, to a VIP of the intent only.
type ProbeHost struct {
	// NetNS is the probe host's network namespace: a name under /var/run/netns
	// or a path; empty: the controller's own.
	NetNS string
	// Interface is the interface towards the gateway; empty: the interface of
	// the route to the VIP.
	Interface string
	// Source is the outer source address, the VTEP address the backends
	// answer; invalid: the interface's first IPv4 address.
	Source netip.Addr
	// GatewayMAC is the outer destination MAC (the next hop towards the VIPs);
	// empty: looked up in the probe host's neighbour table.
	GatewayMAC string
	// RouterMAC is the inner destination MAC of targets that give none (the
	// VPC router's MAC the backends' VXLAN devices accept).
	RouterMAC string
	// Open opens a prober for one run (probe.New when nil; tests replace it).
	Open func(probe.Config) (Prober, error)
}

// probeState serializes probe runs (one AF_PACKET socket at a time).
type probeState struct {
	mu sync.Mutex
}

var errNoProbeHost = status.Error(codes.Unimplemented,
	"this controller has no probe host (give its config file a probe: section: the namespace and interface to send probes from)")

// Config returns the prober configuration the probe host gives for vip and in.
func (h *ProbeHost) Config(in *intent.Intent, vip netip.Addr) probe.Config {
	return probe.Config{VIP: vip, NetNS: h.NetNS, Interface: h.Interface, Source: h.Source, GatewayMAC: h.GatewayMAC,
		RouterMAC: h.RouterMAC, Backends: probe.BackendsFromIntent(in)}
}

func (h *ProbeHost) open(cfg probe.Config) (Prober, error) {
	if h.Open != nil {
		return h.Open(cfg)
	}
	return probe.New(cfg)
}

// runProbes probes targets through the VIP named vipName (the intent's only VIP
// when empty). Targets without an expectation get the one the tables in force
// give. Errors are gRPC statuses.
func (s *Service) runProbes(ctx context.Context, vipName string, targets []probe.Target, opts probe.Options) ([]probe.Result, netip.Addr, error) {
	h := s.cfg.Probe
	if h == nil {
		return nil, netip.Addr{}, errNoProbeHost
	}
	if len(targets) == 0 {
		return nil, netip.Addr{}, status.Error(codes.InvalidArgument, "nothing to probe: no target")
	}
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, netip.Addr{}, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	in, _ := s.cfg.Engine.Intent()
	if in == nil {
		return nil, netip.Addr{}, status.Error(codes.FailedPrecondition, "no intent in force: nothing says which VIP to probe or who may answer")
	}
	var vip netip.Addr
	switch {
	case vipName != "":
		v, ok := in.VIP(vipName)
		if !ok {
			return nil, netip.Addr{}, status.Errorf(codes.NotFound, "no VIP %q in the intent in force", vipName)
		}
		vip = v.Address
	case len(in.VIPs) == 1:
		vip = in.VIPs[0].Address
	default:
		return nil, netip.Addr{}, status.Errorf(codes.InvalidArgument, "the intent has %d VIPs: name the one to probe through", len(in.VIPs))
	}
	ts := append([]probe.Target(nil), targets...)
	var need []int
	for i, t := range ts {
		if t.ExpectCluster == "" && t.ExpectPool == "" {
			need = append(need, i)
		}
	}
	if len(need) > 0 {
		p, err := s.cfg.Engine.Prepare(in)
		if err != nil {
			return nil, vip, status.Errorf(codes.Internal, "expectations: compile the intent in force: %v", err)
		}
		sub := make([]probe.Target, len(need))
		for j, i := range need {
			sub[j] = ts[i]
		}
		exp, err := probe.Expect(in, p.Result(), vip, sub)
		if err != nil {
			return nil, vip, probeStatus(err)
		}
		for j, i := range need {
			ts[i] = exp[j]
		}
	}
	s.probe.mu.Lock()
	defer s.probe.mu.Unlock()
	pr, err := h.open(h.Config(in, vip))
	if err != nil {
		return nil, vip, probeStatus(fmt.Errorf("probe host: %w", err))
	}
	defer pr.Close()
	start := time.Now()
	rs, err := pr.Run(ctx, ts, opts)
	if err != nil {
		return nil, vip, probeStatus(err)
	}
	bad := 0
	for _, r := range rs {
		if r.Status != probe.StatusOK {
			bad++
		}
	}
	s.log.Info("probes", "vip", vip, "targets", len(rs), "not_ok", bad, "took", time.Since(start).Round(time.Millisecond).String())
	return rs, vip, nil
}

func probeStatus(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, probe.ErrTarget), errors.Is(err, probe.ErrConfig):
		return status.Errorf(codes.InvalidArgument, "%v", err)
	case errors.Is(err, probe.ErrNoRoute):
		return status.Errorf(codes.FailedPrecondition, "%v", err)
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
	case len(inv) > 0:
		in, _ := s.cfg.Engine.Intent()
		if in == nil {
			return nil, status.Error(codes.FailedPrecondition, "no intent in force: no inventory to take the VMs from")
		}
		var err error
		if targets, err = inventoryTargets(in, inv); err != nil {
			return nil, err
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

// inventoryTargets expands scopes from the inventory of in (probe.IntentTargets:
// each VM in scope towards every route destination of its VPC), in scope order.
// The expectations are left to runProbes (probe.Expect against the tables in
// force, as probe.FromIntent does). A VNI without inventory is
// FailedPrecondition naming the vpcs entry to add; a VNI no tenant lists, a bad
// or unknown VM, InvalidArgument.
func inventoryTargets(in *intent.Intent, scopes []*graygwv1.InventoryScope) ([]probe.Target, error) {
	var out []probe.Target
	for i, sc := range scopes {
		var vm netip.Addr
		if sc.GetVm() != "" {
			a, err := netip.ParseAddr(sc.GetVm())
			if err != nil || !a.Is4() {
				return nil, status.Errorf(codes.InvalidArgument, "inventory[%d].vm %q: want an IPv4 address", i, sc.GetVm())
			}
			vm = a
		}
		vni := sc.GetVni()
		switch {
		case vni == 0 && !vm.IsValid():
			return nil, status.Errorf(codes.InvalidArgument, "inventory[%d]: give a VNI, a VM or both", i)
		case vni != 0 && !tenantVNI(in, vni):
			return nil, status.Errorf(codes.InvalidArgument, "inventory[%d]: VNI %d is no tenant's VNI in the intent in force (known VNIs: %s)", i, vni, knownVNIs(in))
		case vni != 0 && !inventoried(in, vni):
			return nil, status.Errorf(codes.FailedPrecondition,
				"VNI %d has no inventory in the intent in force: add a vpcs entry for it (vni: %d, routes with the VPC router as next_hop, vms; docs/intent.md), or give explicit targets", vni, vni)
		case len(in.VPCs) == 0:
			return nil, status.Error(codes.FailedPrecondition,
				"the intent in force has no inventory: add a vpcs section (per VNI its routes and vms; docs/intent.md), or give explicit targets")
		}
		ts, err := probe.IntentTargets(in, vni, vm)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "inventory[%d]: %v", i, err)
		}
		out = append(out, ts...)
	}
	return out, nil
}

func tenantVNI(in *intent.Intent, vni uint32) bool {
	for _, t := range in.Tenants {
		for _, v := range t.VNIs {
			if v == vni {
				return true
			}
		}
	}
	return false
}

func inventoried(in *intent.Intent, vni uint32) bool {
	for _, v := range in.VPCs {
		if v.VNI == vni {
			return true
		}
	}
	return false
}

func knownVNIs(in *intent.Intent) string {
	var vs []uint32
	for _, t := range in.Tenants {
		vs = append(vs, t.VNIs...)
	}
	slices.Sort(vs)
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(out, ", ")
}
