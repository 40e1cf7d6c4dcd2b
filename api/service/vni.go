package service

import (
	"cmp"
	"maps"
	"slices"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
)

// vniStatus says, for every VNI the intent knows (a tenant's, or one a rule
// names), where its traffic to each VIP goes.
//
// Per VIP, the rules that can match the VNI's traffic are its selectors. The
// "whole" rules (VIP-wide, tenant-wide or VNI-wide, not a percentage) decide the
// default: the one of highest priority wins. FULLY_GRAY when that winner is a
// gray pool and no more specific rule of higher priority pins some traffic back
// to a base pool; PARTLY_GRAY when some traffic is gray (a VM, a prefix, a flow,
// a percentage beating the default, or a fully gray VNI with exceptions); BASE
// otherwise.
func vniStatus(in *intent.Intent) []*graygwv1.VNIStatus {
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
	gray := map[string]bool{}
	for _, p := range in.Pools {
		gray[p.Name] = p.Cluster == intent.ClusterGray
	}
	var out []*graygwv1.VNIStatus
	for _, vni := range slices.Sorted(maps.Keys(vnis)) {
		vs := &graygwv1.VNIStatus{Vni: vni, Tenant: tenantOf[vni]}
		states := map[graygwv1.GrayState]int{}
		for _, vip := range in.VIPs {
			st := vipState(in, vip.Name, vni, tenantOf[vni], gray)
			states[st.State]++
			vs.Vips = append(vs.Vips, st)
		}
		switch {
		case states[graygwv1.GrayState_FULLY_GRAY] == len(in.VIPs):
			vs.State = graygwv1.GrayState_FULLY_GRAY
		case states[graygwv1.GrayState_BASE] == len(in.VIPs):
			vs.State = graygwv1.GrayState_BASE
		default:
			vs.State = graygwv1.GrayState_PARTLY_GRAY
		}
		out = append(out, vs)
	}
	return out
}

func vipState(in *intent.Intent, vip string, vni uint32, tenant string, gray map[string]bool) *graygwv1.VIPGrayState {
	out := &graygwv1.VIPGrayState{Vip: vip}
	var sel []*intent.Rule
	for i := range in.Rules {
		r := &in.Rules[i]
		m := r.Match
		if (m.VIP != "" && m.VIP != vip) || (m.HasVNI && m.VNI != vni) || (m.Tenant != "" && m.Tenant != tenant) {
			continue
		}
		sel = append(sel, r)
	}
	slices.SortStableFunc(sel, func(a, b *intent.Rule) int { return cmp.Compare(b.Priority, a.Priority) })
	whole := func(r *intent.Rule) bool { return r.Tier <= intent.TierVNI && !r.Split() }
	var winner *intent.Rule
	for _, r := range sel {
		if whole(r) {
			winner = r
			break
		}
	}
	defaultGray := winner != nil && gray[winner.Pool]
	exceptions, someGray := false, defaultGray
	for _, r := range sel {
		out.Selectors = append(out.Selectors, &graygwv1.Selector{Rule: r.Name, Kind: kindOf(r), Match: r.Match.String(),
			Pool: r.Pool, Gray: gray[r.Pool], Percent: r.Percent, Priority: r.Priority})
		if whole(r) || (winner != nil && r.Priority <= winner.Priority) {
			continue // the default decides, or the rule is shadowed by it
		}
		if gray[r.Pool] != defaultGray {
			exceptions = true
		}
		if gray[r.Pool] {
			someGray = true
			if r.Tier == intent.TierVM && !r.Split() && r.Match.Src.IsValid() {
				out.GrayVms = append(out.GrayVms, r.Match.Src.Addr().String())
			}
		}
	}
	switch {
	case defaultGray && !exceptions:
		out.State = graygwv1.GrayState_FULLY_GRAY
	case someGray:
		out.State = graygwv1.GrayState_PARTLY_GRAY
	default:
		out.State = graygwv1.GrayState_BASE
	}
	return out
}

func kindOf(r *intent.Rule) string {
	if r.Split() {
		return "percent"
	}
	return r.Tier.String()
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
