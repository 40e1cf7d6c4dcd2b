package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/internal/kinderr"
)

// Errors of a Station and of InventoryTargets a caller can test with
// errors.Is (besides ErrTarget, ErrConfig and ErrNoRoute); the error's message
// says the details.
var (
	// ErrRequest: the request cannot be served as asked (no target, bad
	// options, a VIP to choose).
	ErrRequest = errors.New("probe: bad request")
	// ErrNoIntent: no intent is in force.
	ErrNoIntent = errors.New("probe: no intent in force")
	// ErrUnknownVIP: the intent in force has no VIP of that name.
	ErrUnknownVIP = errors.New("probe: unknown VIP")
	// ErrNoInventory: the intent in force has no inventory for the scope.
	ErrNoInventory = errors.New("probe: no inventory")
)

// Runner runs probes (*Prober).
type Runner interface {
	Run(ctx context.Context, targets []Target, opts Options) ([]Result, error)
	Close() error
}

// Host is where the controller sends probes from: in the lab, the
// hypervisor's namespace. Probes leave through an AF_PACKET socket bound to the
// interface, from the hypervisor's VTEP address, to a VIP of the intent only.
type Host struct {
	// NetNS is the probe host's network namespace: a name under /var/run/netns
	// or a path; empty: the controller's own.
	NetNS string
	// Interface is the interface towards the gateway; empty: the interface of
	// the route to the VIP.
	Interface string
	// Source is the outer source address, the VTEP address the backends
	// answer; invalid: the interface's first address of the VIP's family.
	Source netip.Addr
	// GatewayMAC is the outer destination MAC (the next hop towards the VIPs);
	// empty: looked up in the probe host's neighbour table.
	GatewayMAC string
	// RouterMAC is the inner destination MAC of targets that give none (the
	// VPC router's MAC the backends' VXLAN devices accept).
	RouterMAC string
	// Open opens a runner for one run (New when nil; tests replace it).
	Open func(Config) (Runner, error)
}

// Config returns the prober configuration the host gives for vip and in. An
// intent with IPv4 and IPv6 VIPs has backends of both families: only those of
// vip's family can answer its probes. A Source of the other family is left
// out (the interface's address of vip's family is used).
func (h *Host) Config(in *intent.Intent, vip netip.Addr) Config {
	src := h.Source
	if src.IsValid() && src.Is6() != vip.Is6() {
		src = netip.Addr{}
	}
	bes := slices.DeleteFunc(BackendsFromIntent(in), func(b Backend) bool { return b.Underlay.Is6() != vip.Is6() })
	return Config{VIP: vip, NetNS: h.NetNS, Interface: h.Interface, Source: src, GatewayMAC: h.GatewayMAC,
		RouterMAC: h.RouterMAC, Backends: bes}
}

func (h *Host) open(cfg Config) (Runner, error) {
	if h.Open != nil {
		return h.Open(cfg)
	}
	return New(cfg)
}

// Station runs probes from a Host through a VIP of the intent in force, one
// run at a time (one AF_PACKET socket).
type Station struct {
	// Host sends the probes. Required.
	Host *Host
	// InForce returns the intent in force (nil: none yet). Required.
	InForce func() *intent.Intent
	// Compile returns the tables in (the intent in force) compiles to, for the
	// expectations. Required.
	Compile func(in *intent.Intent) (*compile.Result, error)
	// Log receives a line per run (slog.Default() when nil).
	Log *slog.Logger

	mu sync.Mutex
}

// Run probes targets through the VIP named vipName (the intent's only VIP
// when empty) and returns the results and the VIP's address. Targets without
// an expectation get the one the tables in force give (Expect).
func (s *Station) Run(ctx context.Context, vipName string, targets []Target, opts Options) ([]Result, netip.Addr, error) {
	if len(targets) == 0 {
		return nil, netip.Addr{}, kinderr.Errorf(ErrRequest, "nothing to probe: no target")
	}
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, netip.Addr{}, kinderr.Errorf(ErrRequest, "%v", err)
	}
	in := s.InForce()
	if in == nil {
		return nil, netip.Addr{}, kinderr.Errorf(ErrNoIntent, "no intent in force: nothing says which VIP to probe or who may answer")
	}
	var vip netip.Addr
	switch {
	case vipName != "":
		v, ok := in.VIP(vipName)
		if !ok {
			return nil, netip.Addr{}, kinderr.Errorf(ErrUnknownVIP, "no VIP %q in the intent in force", vipName)
		}
		vip = v.Address
	case len(in.VIPs) == 1:
		vip = in.VIPs[0].Address
	default:
		return nil, netip.Addr{}, kinderr.Errorf(ErrRequest, "the intent has %d VIPs: name the one to probe through", len(in.VIPs))
	}
	ts := append([]Target(nil), targets...)
	var need []int
	for i, t := range ts {
		if t.ExpectCluster == "" && t.ExpectPool == "" {
			need = append(need, i)
		}
	}
	if len(need) > 0 {
		res, err := s.Compile(in)
		if err != nil {
			return nil, vip, fmt.Errorf("expectations: compile the intent in force: %v", err)
		}
		sub := make([]Target, len(need))
		for j, i := range need {
			sub[j] = ts[i]
		}
		exp, err := Expect(in, res, vip, sub)
		if err != nil {
			return nil, vip, err
		}
		for j, i := range need {
			ts[i] = exp[j]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pr, err := s.Host.open(s.Host.Config(in, vip))
	if err != nil {
		return nil, vip, fmt.Errorf("probe host: %w", err)
	}
	defer pr.Close()
	start := time.Now()
	rs, err := pr.Run(ctx, ts, opts)
	if err != nil {
		return nil, vip, err
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.Info("probes", "vip", vip, "targets", len(rs), "not_ok", len(Failed(rs)), "took", time.Since(start).Round(time.Millisecond).String())
	return rs, vip, nil
}

// Scope is every VM of VNI (VM empty) or one VM (of VNI, or of whichever VPC
// has it when VNI is 0) of the intent's inventory.
type Scope struct {
	VNI uint32
	VM  string
}

// InventoryTargets expands scopes from the inventory of in (IntentTargets:
// each VM in scope towards every route destination of its VPC), in scope
// order, without expectations (Station.Run fills them in). A VNI without
// inventory is ErrNoInventory naming the vpcs entry to add; a VNI no tenant
// lists, a bad or unknown VM, ErrRequest.
func InventoryTargets(in *intent.Intent, scopes []Scope) ([]Target, error) {
	var out []Target
	for i, sc := range scopes {
		var vm netip.Addr
		if sc.VM != "" {
			a, err := netip.ParseAddr(sc.VM)
			if err != nil || !plainAddr(a) {
				return nil, kinderr.Errorf(ErrRequest, "inventory[%d].vm %q: want an IPv4 or IPv6 address", i, sc.VM)
			}
			vm = a
		}
		vni := sc.VNI
		switch {
		case vni == 0 && !vm.IsValid():
			return nil, kinderr.Errorf(ErrRequest, "inventory[%d]: give a VNI, a VM or both", i)
		case vni != 0 && !tenantVNI(in, vni):
			return nil, kinderr.Errorf(ErrRequest, "inventory[%d]: VNI %d is no tenant's VNI in the intent in force (known VNIs: %s)", i, vni, knownVNIs(in))
		case vni != 0 && !inventoried(in, vni):
			return nil, kinderr.Errorf(ErrNoInventory,
				"VNI %d has no inventory in the intent in force: add a vpcs entry for it (vni: %d, routes with the VPC router as next_hop, vms; docs/intent.md), or give explicit targets", vni, vni)
		case len(in.VPCs) == 0:
			return nil, kinderr.Errorf(ErrNoInventory,
				"the intent in force has no inventory: add a vpcs section (per VNI its routes and vms; docs/intent.md), or give explicit targets")
		}
		ts, err := IntentTargets(in, vni, vm)
		if err != nil {
			return nil, kinderr.Errorf(ErrRequest, "inventory[%d]: %v", i, err)
		}
		out = append(out, ts...)
	}
	return out, nil
}

func tenantVNI(in *intent.Intent, vni uint32) bool {
	for _, t := range in.Tenants {
		if slices.Contains(t.VNIs, vni) {
			return true
		}
	}
	return false
}

func inventoried(in *intent.Intent, vni uint32) bool {
	return slices.ContainsFunc(in.VPCs, func(v intent.VPC) bool { return v.VNI == vni })
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
