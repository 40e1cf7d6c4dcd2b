package service

import (
	"maps"
	"slices"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
)

var grayStates = map[intent.GrayState]graygwv1.GrayState{intent.Base: graygwv1.GrayState_BASE,
	intent.PartlyGray: graygwv1.GrayState_PARTLY_GRAY, intent.FullyGray: graygwv1.GrayState_FULLY_GRAY}

// vniStatus maps the intent's gray states (intent.Intent.GrayStates).
func vniStatus(in *intent.Intent) []*graygwv1.VNIStatus {
	var out []*graygwv1.VNIStatus
	for _, v := range in.GrayStates() {
		vs := &graygwv1.VNIStatus{Vni: v.VNI, Tenant: v.Tenant, State: grayStates[v.State]}
		for _, p := range v.VIPs {
			st := &graygwv1.VIPGrayState{Vip: p.VIP, State: grayStates[p.State], GrayVms: p.GrayVMs}
			for _, r := range p.Selectors {
				st.Selectors = append(st.Selectors, &graygwv1.Selector{Rule: r.Name, Kind: kindOf(r), Match: r.Match.String(),
					Pool: r.Pool, Gray: in.Gray(r.Pool), Percent: r.Percent, Priority: r.Priority,
					MirrorPool: r.MirrorPool, MirrorRate: uint32(r.MirrorRate)})
			}
			vs.Vips = append(vs.Vips, st)
		}
		out = append(out, vs)
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
