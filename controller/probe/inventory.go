package probe

import (
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
)

// IntentTargets derives probe targets from the intent's inventory (its vpcs
// section, docs/intent.md): for each VM in scope, one target per route of its
// VPC, towards the route's destination (intent.Route.Dest: the next hop, else
// the prefix's first host address), in inventory order (VPCs by VNI, VMs as
// written, routes as written; a destination two routes share is probed once).
// The targets carry no expectation (see FromIntent).
//
// Scope: vni 0 and vm invalid = every VPC of the inventory; vni alone = that
// VPC; vm (with or without vni) = that VM only. An unknown VNI or VM, a VM
// address found in several VPCs without a vni, or an intent without inventory
// is an error wrapping ErrTarget.
func IntentTargets(in *intent.Intent, vni uint32, vm netip.Addr) ([]Target, error) {
	if len(in.VPCs) == 0 {
		return nil, fmt.Errorf("%w: the intent has no inventory (vpcs section): give the VMs and the router", ErrTarget)
	}
	var out []Target
	vpcs := 0
	for i := range in.VPCs {
		v := &in.VPCs[i]
		if vni != 0 && v.VNI != vni {
			continue
		}
		n := len(out)
		for _, m := range v.VMs {
			if vm.IsValid() && m.Address != vm {
				continue
			}
			seen := map[netip.Addr]bool{}
			for _, r := range v.Routes {
				d := r.Dest()
				if seen[d] || d.Is4() != m.Address.Is4() { // a VM is probed towards its family's routes
					continue
				}
				seen[d] = true
				out = append(out, Target{VNI: v.VNI, VM: m.Address, Router: d, RouterMAC: v.RouterMAC})
			}
		}
		if !vm.IsValid() || len(out) > n {
			vpcs++
		}
	}
	switch {
	case vni != 0 && vpcs == 0 && !vm.IsValid():
		return nil, fmt.Errorf("%w: VNI %d is not in the intent's inventory", ErrTarget, vni)
	case vm.IsValid() && len(out) == 0 && vni != 0:
		return nil, fmt.Errorf("%w: %v is not a VM of VNI %d in the intent's inventory", ErrTarget, vm, vni)
	case vm.IsValid() && len(out) == 0:
		return nil, fmt.Errorf("%w: %v is no VM of the intent's inventory", ErrTarget, vm)
	case vm.IsValid() && vpcs > 1:
		return nil, fmt.Errorf("%w: %v is a VM of %d VPCs of the inventory: give its VNI", ErrTarget, vm, vpcs)
	}
	return out, nil
}

// FromIntent is IntentTargets with each target's expectation set by Expect:
// what the tables compiled from in (res; nil = compile.Compile(in, nil)) decide
// for that very probe through vip. So a VM moved by a VM rule expects the gray
// pool and its neighbours the base one, a rule on a destination prefix changes
// only the targets towards it, and so on.
func FromIntent(in *intent.Intent, res *compile.Result, vip netip.Addr, vni uint32, vm netip.Addr) ([]Target, error) {
	ts, err := IntentTargets(in, vni, vm)
	if err != nil {
		return nil, err
	}
	if res == nil {
		if res, err = compile.Compile(in, nil); err != nil {
			return nil, fmt.Errorf("probe: expectations: %w", err)
		}
	}
	return Expect(in, res, vip, ts)
}

// IntentVPCs returns the inventory as probe VPCs, one destination list per VPC
// (the routes' destinations, deduplicated, in order), for rollout plans that
// take their VMs from the intent.
func IntentVPCs(in *intent.Intent) []VPC {
	var out []VPC
	for _, v := range in.VPCs {
		pv := VPC{VNI: v.VNI, RouterMAC: v.RouterMAC}
		seen := map[netip.Addr]bool{}
		for _, r := range v.Routes {
			if d := r.Dest(); !seen[d] {
				seen[d] = true
				pv.Dests = append(pv.Dests, d)
			}
		}
		if len(pv.Dests) > 0 {
			pv.Router = pv.Dests[0]
		}
		for _, m := range v.VMs {
			pv.VMs = append(pv.VMs, m.Address)
		}
		out = append(out, pv)
	}
	return out
}
