package intent

import (
	"cmp"
	"maps"
	"slices"
)

// GrayState says where a VNI's traffic goes.
type GrayState int

// Gray states.
const (
	// Base: no rule moves any of its traffic to a gray pool.
	Base GrayState = iota + 1
	// PartlyGray: some VMs, prefixes, flows or a share are gray.
	PartlyGray
	// FullyGray: all of it is gray.
	FullyGray
)

// VNIState is a VNI's gray state, over every VIP and per VIP.
type VNIState struct {
	VNI    uint32
	Tenant string // "" when no tenant lists it
	State  GrayState
	VIPs   []VIPState // in the intent's VIP order
}

// VIPState is a VNI's gray state for one VIP: the rules that can match its
// traffic (Selectors, highest priority first) and the VMs moved one by one.
type VIPState struct {
	VIP       string
	State     GrayState
	GrayVMs   []string
	Selectors []*Rule
}

// GrayStates says, for every VNI the intent knows (a tenant's, or one a rule
// names), in VNI order, where its traffic to each VIP goes.
//
// Per VIP, the rules that can match the VNI's traffic are its selectors. The
// "whole" rules (VIP-wide, tenant-wide or VNI-wide, not a percentage) decide the
// default: the one of highest priority wins. FullyGray when that winner is a
// gray pool and no more specific rule of higher priority pins some traffic back
// to a base pool; PartlyGray when some traffic is gray (a VM, a prefix, a flow,
// a percentage beating the default, or a fully gray VNI with exceptions); Base
// otherwise.
func (in *Intent) GrayStates() []VNIState {
	tenantOf := map[uint32]string{}
	vnis := map[uint32]bool{}
	for _, t := range in.Tenants {
		for _, v := range t.VNIs {
			tenantOf[v] = t.Name
			vnis[v] = true
		}
	}
	for _, r := range in.Rules {
		if r.Match.HasVNI {
			vnis[r.Match.VNI] = true
		}
	}
	var out []VNIState
	for _, vni := range slices.Sorted(maps.Keys(vnis)) {
		vs := VNIState{VNI: vni, Tenant: tenantOf[vni]}
		states := map[GrayState]int{}
		for _, vip := range in.VIPs {
			st := in.vipState(vip.Name, vni, tenantOf[vni])
			states[st.State]++
			vs.VIPs = append(vs.VIPs, st)
		}
		switch {
		case states[FullyGray] == len(in.VIPs):
			vs.State = FullyGray
		case states[Base] == len(in.VIPs):
			vs.State = Base
		default:
			vs.State = PartlyGray
		}
		out = append(out, vs)
	}
	return out
}

// Gray reports whether the pool named pool is a gray pool.
func (in *Intent) Gray(pool string) bool {
	p, ok := in.Pool(pool)
	return ok && p.Cluster == ClusterGray
}

func (in *Intent) vipState(vip string, vni uint32, tenant string) VIPState {
	out := VIPState{VIP: vip}
	for i := range in.Rules {
		r := &in.Rules[i]
		m := r.Match
		if (m.VIP != "" && m.VIP != vip) || (m.HasVNI && m.VNI != vni) || (m.Tenant != "" && m.Tenant != tenant) {
			continue
		}
		out.Selectors = append(out.Selectors, r)
	}
	slices.SortStableFunc(out.Selectors, func(a, b *Rule) int { return cmp.Compare(b.Priority, a.Priority) })
	whole := func(r *Rule) bool { return r.Tier <= TierVNI && !r.Split() }
	var winner *Rule
	for _, r := range out.Selectors {
		if whole(r) {
			winner = r
			break
		}
	}
	defaultGray := winner != nil && in.Gray(winner.Pool)
	exceptions, someGray := false, defaultGray
	for _, r := range out.Selectors {
		if whole(r) || (winner != nil && r.Priority <= winner.Priority) {
			continue // the default decides, or the rule is shadowed by it
		}
		if in.Gray(r.Pool) != defaultGray {
			exceptions = true
		}
		if in.Gray(r.Pool) {
			someGray = true
			if r.Tier == TierVM && !r.Split() && r.Match.Src.IsValid() {
				out.GrayVMs = append(out.GrayVMs, r.Match.Src.Addr().String())
			}
		}
	}
	switch {
	case defaultGray && !exceptions:
		out.State = FullyGray
	case someGray:
		out.State = PartlyGray
	default:
		out.State = Base
	}
	return out
}
