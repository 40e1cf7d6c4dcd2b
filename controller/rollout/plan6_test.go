package rollout

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/probe"
)

// TestIPv6PlanVMs: a plan's VMs, router and destinations may be IPv6 (issue
// 19); in a dual-stack VPC each VM is probed towards the destinations of its
// family only, and a VM with none of its family is refused by name.
func TestIPv6PlanVMs(t *testing.T) {
	p, err := LoadPlan([]byte(`version: 1
name: v6
pool: gray
vpcs:
  - {vni: 1, router: "2001:db8:1::1", vms: ["2001:db8:1::5"]}
  - {vni: 2, router: 10.0.1.1, destinations: ["2001:db8:2::1"], vms: [10.0.1.5, "2001:db8:2::5"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := probe.Targets(p.VPCs, 0, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range ts {
		got = append(got, tg.VM.String()+">"+tg.Router.String())
	}
	if want := "2001:db8:1::5>2001:db8:1::1,10.0.1.5>10.0.1.1,2001:db8:2::5>2001:db8:2::1"; strings.Join(got, ",") != want {
		t.Errorf("targets %v, want %s", got, want)
	}
	_, err = LoadPlan([]byte("version: 1\nname: a\npool: g\nvpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5, \"2001:db8::5\", \"fe80::5%eth0\"]}]\n"))
	for _, want := range []string{
		"vpcs[0].vms[1]: 2001:db8::5: no router or destination of its family to probe it towards",
		`vpcs[0].vms[2]: "fe80::5%eth0": want an IPv4 or IPv6 address`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

// TestIPv6VMStepRuleNames: a step moving an IPv6 VM names its rule with the
// address's colons as '-' (intent names are [A-Za-z0-9._-]); one past 63
// characters keeps its start and a hash, so two VMs never share a name.
func TestIPv6VMStepRuleNames(t *testing.T) {
	long := "abcdefghijklmnopqrstuvwx" // the longest plan name
	p, err := LoadPlan([]byte("version: 1\nname: " + long + "\npool: g\nindividual_vms: 3\nvpcs: [{vni: 16777215, router: \"2001:db8::1\", vms: [\"2001:db8::5\", " +
		"\"2001:db8:1234:5678:9abc:def0:1234:5678\", \"2001:db8:1234:5678:9abc:def0:1234:5679\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range p.Steps[:3] {
		if len(s.Rule) > 63 || strings.ContainsAny(s.Rule, ":/ ") || names[s.Rule] {
			t.Errorf("step %d rule %q", s.Index, s.Rule)
		}
		names[s.Rule] = true
	}
	if p.Steps[0].Rule != long+".16777215.2001-db8--5" {
		t.Errorf("rule %q", p.Steps[0].Rule)
	}
}
