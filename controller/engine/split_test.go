package engine

import (
	"reflect"
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

func TestSplit(t *testing.T) {
	pools := []intent.Pool{{Name: "base-r", Cluster: intent.ClusterBase}, {Name: "gray-r", Cluster: intent.ClusterGray},
		{Name: "base-n", Cluster: intent.ClusterBase}}
	in := &intent.Intent{
		VIPs:  []intent.VIP{{Name: "router", DefaultPool: "base-r"}, {Name: "nat", DefaultPool: "base-n"}},
		Pools: pools,
		Rules: []intent.Rule{
			{Name: "vm", Match: intent.Match{VIP: "router"}, Pool: "gray-r"},
			{Name: "vpc", Match: intent.Match{VIP: "router"}, Pool: "gray-r"},
			{Name: "pin", Match: intent.Match{VIP: "router"}, Pool: "base-r"}, // back to base: moves nothing
		},
	}
	rules := map[string]Counter{"vm": {3, 300}, "vpc": {10, 1000}, "pin": {2, 200}}
	vips := map[string]Counter{"router": {20, 2000}, "nat": {5, 500}}
	want := map[string]map[intent.Cluster]Counter{
		"router": {intent.ClusterBase: {7, 700}, intent.ClusterGray: {13, 1300}},
		"nat":    {intent.ClusterBase: {5, 500}, intent.ClusterGray: {}},
	}
	if got := Split(in, rules, vips); !reflect.DeepEqual(got, want) {
		t.Errorf("Split = %v, want %v", got, want)
	}

	// A rule naming no VIP may match any VIP's packets: one split for all.
	in.Rules = append(in.Rules, intent.Rule{Name: "any", Pool: "gray-r"})
	in.VIPs[1].DefaultPool = "base-r"
	rules["any"] = Counter{4, 400}
	want = map[string]map[intent.Cluster]Counter{
		AllVIPs: {intent.ClusterBase: {8, 800}, intent.ClusterGray: {17, 1700}},
	}
	if got := Split(in, rules, vips); !reflect.DeepEqual(got, want) {
		t.Errorf("Split with a rule for any VIP = %v, want %v", got, want)
	}

	// With one VIP, a rule naming none can only have matched it.
	one := &intent.Intent{VIPs: in.VIPs[:1], Pools: pools, Rules: []intent.Rule{{Name: "any", Pool: "gray-r"}}}
	want = map[string]map[intent.Cluster]Counter{
		"router": {intent.ClusterBase: {16, 1600}, intent.ClusterGray: {4, 400}},
	}
	if got := Split(one, rules, vips); !reflect.DeepEqual(got, want) {
		t.Errorf("Split with one VIP = %v, want %v", got, want)
	}

	// Rules read before the VIPs can exceed them: the default share stops at 0.
	got := Split(in, map[string]Counter{"vm": {50, 5000}}, map[string]Counter{"router": {20, 2000}})
	if b := got[AllVIPs][intent.ClusterBase]; b != (Counter{}) {
		t.Errorf("base share = %v, want 0 (never below zero)", b)
	}
}
