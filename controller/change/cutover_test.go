package change

import (
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/rollout"
)

// A cutover's rule is named after its scope, fits the intent's name rules,
// and a bad request is refused naming the API's request fields.
func TestCutoverRule(t *testing.T) {
	for _, c := range []struct {
		req         Cutover
		name, scope string
		problems    []string
	}{
		{Cutover{Scope: ScopeVNI, VNI: 5001, Pool: "gray"}, "vni-5001", "VNI 5001", nil},
		{Cutover{Scope: ScopeVM, VNI: 5001, Src: "10.0.0.5", Pool: "gray", VIP: "vpc"}, "vpc.vm-5001-10.0.0.5", "VM 10.0.0.5 in VNI 5001 to VIP vpc", nil},
		{Cutover{Scope: ScopePrefix, Src: "10.0.0.0/24", Pool: "gray"}, "prefix-10.0.0.0-24", "prefix src 10.0.0.0/24", nil},
		{Cutover{Scope: ScopeFlow, HasVNI: true, VNI: 7, Src: "10.0.0.1", Dst: "10.0.1.1", Proto: "TCP", DPort: 80, Pool: "gray"},
			"flow-7-10.0.0.1-10.0.1.1-tcp-0-80", "flow in VNI 7 tcp 10.0.0.1:0 -> 10.0.1.1:80", nil},
		{Cutover{Scope: ScopePercent, VNI: 9, Percent: 25, Pool: "gray"}, "pct-9", "VNI 9", nil},
		{Cutover{Scope: ScopeVM, VNI: 5001, Src: "2001:db8::5", Pool: "gray"}, "vm-5001-2001-db8--5", "VM 2001:db8::5 in VNI 5001", nil},
		{Cutover{Scope: ScopePrefix, HasVNI: true, VNI: 5001, Src: "2001:db8::/64", Pool: "gray"}, "prefix-5001-2001-db8---64", "prefix in VNI 5001 src 2001:db8::/64", nil},
		{Cutover{Scope: ScopeFlow, HasVNI: true, VNI: 7, Src: "2001:db8::5", Dst: "2001:db8:1::1", Proto: "tcp", SPort: 33001, DPort: 22, Pool: "gray"},
			"flow-7-2001-db8--5-2001-db8-1--1-tcp-33001-22", "flow in VNI 7 tcp [2001:db8::5]:33001 -> [2001:db8:1::1]:22", nil},
		{Cutover{Scope: ScopeVM, VNI: 1, Src: "::ffff:10.0.0.5", Pool: "gray"}, "", "", []string{"cutover.vm.src"}},
		{Cutover{Scope: ScopeVM, VNI: 1, Src: "fe80::1%eth0", Pool: "gray"}, "", "", []string{"cutover.vm.src"}},
		{Cutover{Scope: ScopePercent, VNI: 1, Percent: 0}, "", "", []string{"cutover.percent.percent", "cutover.pool"}},
		{Cutover{Scope: ScopeFlow, Src: "10.0.0.1", Dst: "10.0.1.1", SPort: 70000, Pool: "gray"}, "", "", []string{"cutover.flow.proto", "cutover.flow"}},
		{Cutover{Pool: "gray"}, "", "", []string{"cutover.scope"}},
	} {
		spec, scope, ps := c.req.rule()
		var paths []string
		for _, p := range ps {
			paths = append(paths, p.Path)
			if p.Class != ClassRequest {
				t.Errorf("%+v: problem class %q", c.req, p.Class)
			}
		}
		if strings.Join(paths, ",") != strings.Join(c.problems, ",") {
			t.Errorf("%+v: problems at %v, want %v", c.req, paths, c.problems)
		}
		if c.problems == nil && (spec.Name != c.name || scope != c.scope || spec.Pool != c.req.Pool) {
			t.Errorf("%+v: rule %q, scope %q; want %q, %q", c.req, spec.Name, scope, c.name, c.scope)
		}
	}
	long := Cutover{Scope: ScopeFlow, Src: "10.0.0.1", Dst: "10.0.1.1", Proto: "udp", SPort: 65535, DPort: 65535, Pool: "g", VIP: "a-rather-long-vip-name"}
	if spec, _, _ := long.rule(); len(spec.Name) > maxRuleName {
		t.Errorf("derived name %q is longer than %d", spec.Name, maxRuleName)
	}
}

// A rollout step becomes the cutover of a VNI, a VM or a share of a VNI; any
// other scope is refused.
func TestScopeCutover(t *testing.T) {
	vni := int64(5001)
	for _, c := range []struct {
		sc   rollout.Scope
		want Scope
		ok   bool
	}{
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni}}, ScopeVNI, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Src: "10.0.0.5/32"}}, ScopeVM, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Src: "2001:db8::5"}}, ScopeVM, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Src: "2001:db8::5/128"}}, ScopeVM, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Src: "2001:db8::/64"}}, ScopeNone, false},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni}, Percent: 50}, ScopePercent, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni}, Percent: 100}, ScopeVNI, true},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Dst: "10.0.0.0/8"}}, ScopeNone, false},
		{rollout.Scope{Match: intent.MatchSpec{Src: "10.0.0.5"}}, ScopeNone, false},
		{rollout.Scope{Match: intent.MatchSpec{VNI: &vni, Src: "10.0.0.0/24"}}, ScopeNone, false},
	} {
		got, err := scopeCutover(c.sc, "gray")
		if (err == nil) != c.ok || (c.ok && (got.Scope != c.want || got.VNI != 5001 || got.Pool != "gray")) {
			t.Errorf("%+v: %+v, %v", c.sc, got, err)
		}
	}
}
