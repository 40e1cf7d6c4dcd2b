package probe

import (
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/model"
)

// VPC is one VPC as probes see it: its VNI, the VPC router address the backends
// answer for, and the VMs to check. It comes from a rollout plan, the operator,
// or the intent's inventory (IntentVPCs).
type VPC struct {
	VNI    uint32     `json:"vni" yaml:"vni"`
	Router netip.Addr `json:"router" yaml:"router"`
	// Dests, when not empty, are the inner destinations every VM is probed
	// towards (one target each, of the VM's family: a dual-stack VPC lists
	// both), Router included; empty = Router only.
	Dests []netip.Addr `json:"dests,omitempty" yaml:"dests,omitempty"`
	// RouterMAC is the router's MAC (inner destination); empty = the prober's.
	RouterMAC string       `json:"router_mac,omitempty" yaml:"router_mac,omitempty"`
	VMs       []netip.Addr `json:"vms" yaml:"vms"`
}

// Destinations returns Dests, or Router alone when Dests is empty.
func (v *VPC) Destinations() []netip.Addr {
	if len(v.Dests) > 0 {
		return v.Dests
	}
	return []netip.Addr{v.Router}
}

// DestinationsOf returns the destinations vm is probed towards: those of
// its family (a dual-stack VPC lists both routers' addresses).
func (v *VPC) DestinationsOf(vm netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, d := range v.Destinations() {
		if d.Is6() == vm.Is6() {
			out = append(out, d)
		}
	}
	return out
}

// Targets returns the probe targets of one VNI (vm invalid: all its VMs) or one
// VM, or of every VPC when vni is 0. An unknown VNI or VM is an error wrapping
// ErrTarget.
func Targets(vpcs []VPC, vni uint32, vm netip.Addr) ([]Target, error) {
	var out []Target
	found := false
	for _, v := range vpcs {
		if vni != 0 && v.VNI != vni {
			continue
		}
		found = true
		for _, a := range v.VMs {
			if vm.IsValid() && a != vm {
				continue
			}
			for _, d := range v.DestinationsOf(a) {
				out = append(out, Target{VNI: v.VNI, VM: a, Router: d, RouterMAC: v.RouterMAC})
			}
		}
	}
	switch {
	case vni != 0 && !found:
		return nil, fmt.Errorf("%w: unknown VNI %d (not in the inventory)", ErrTarget, vni)
	case vm.IsValid() && len(out) == 0:
		return nil, fmt.Errorf("%w: VM %v is not a VM of VNI %d", ErrTarget, vm, vni)
	}
	return out, nil
}

// Expect returns targets with ExpectPool and ExpectCluster set to what the
// compiled tables decide for each target's very probe packet: the frame the
// Prober sends is run through the reference model (package model) over the
// entries of the first gateway in res. So the expectation follows every rule
// in force (VM, VNI, prefix, percentage split), not a guess. A probe the tables
// would not forward is an error wrapping ErrNoRoute that names the reason.
func Expect(in *intent.Intent, res *compile.Result, vip netip.Addr, targets []Target) ([]Target, error) {
	if len(res.Gateways) == 0 {
		return nil, fmt.Errorf("%w: no gateway in the compiled result", ErrNoRoute)
	}
	st, err := compile.ToModel(res.Gateways[0].Entries)
	if err != nil {
		return nil, fmt.Errorf("probe: expectations: %w", err)
	}
	out := make([]Target, len(targets))
	for i, t := range targets {
		if !plainAddr(t.VM) || !plainAddr(t.Router) || t.VM.Is6() != t.Router.Is6() || t.VNI > 0xffffff {
			return nil, fmt.Errorf("%w: %v: want VM and router addresses of one family and a 24-bit VNI", ErrTarget, t)
		}
		if (t.proto() == ProtoICMP) != (t.Port == 0) {
			return nil, fmt.Errorf("%w: %v: proto %q with port %d: want icmp without a port, tcp or udp with one", ErrTarget, t, t.Proto, t.Port)
		}
		src := netip.AddrFrom4([4]byte{192, 0, 2, 1}) // TEST-NET-1: any hypervisor
		if vip.Is6() {
			src = netip.MustParseAddr("2001:db8::1")
		}
		frame := buildEcho(&echo{
			outerSrc: src, outerDst: vip,
			sport: entropyPort(t.VNI, t.VM), vni: t.VNI, innerSrc: t.VM, innerDst: t.Router,
			proto: t.proto(), port: t.Port, innerSport: innerPort(t.VNI, t.VM, t.proto(), t.Port),
		})
		r := model.Process(st, frame)
		if r.Verdict != model.Forward {
			return nil, fmt.Errorf("%w: %v via %v: %v %v", ErrNoRoute, t, vip, r.Verdict, r.Reason)
		}
		p, ok := res.PoolByID(r.Pool)
		if !ok {
			return nil, fmt.Errorf("%w: %v: pool id %d is not a compiled pool", ErrNoRoute, t, r.Pool)
		}
		ip, ok := in.Pool(p.Name)
		if !ok {
			return nil, fmt.Errorf("%w: %v: pool %s is not in the intent", ErrNoRoute, t, p.Name)
		}
		t.ExpectPool, t.ExpectCluster = ip.Name, ip.Cluster
		out[i] = t
	}
	return out, nil
}
