package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExamplePlan(t *testing.T) {
	p, err := LoadPlanFile("../../docs/examples/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vm 5001/192.168.1.5", "vni 5001", "vm 5002/192.168.2.5", "vm 5002/192.168.2.6", "vni 5002"}
	if len(p.Steps) != len(want) {
		t.Fatalf("%d steps, want %d: %v", len(p.Steps), len(want), p.Steps)
	}
	for i, w := range want {
		if s := p.Steps[i]; s.String() != w || s.Index != i+1 {
			t.Errorf("step %d: %v, want %s", i+1, s, w)
		}
	}
	if p.Steps[0].Rule != "router-v2.5001.192.168.1.5" || p.Steps[1].Rule != "router-v2.5001" {
		t.Errorf("rule names %q %q", p.Steps[0].Rule, p.Steps[1].Rule)
	}
	if p.Probe.Count != 3 || p.Probe.Interval != 100*time.Millisecond || p.Probe.Timeout != time.Second || p.Scope != ScopePlan {
		t.Errorf("probe options %+v scope %s", p.Probe, p.Scope)
	}
	sc := p.Steps[0].Scope(p.VIP)
	if sc.Match.VIP != "vpc-router" || *sc.Match.VNI != 5001 || sc.Match.Src != "192.168.1.5" || sc.Name != p.Steps[0].Rule {
		t.Errorf("scope %+v", sc)
	}
	// The YAML round trip keeps the plan.
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := LoadPlan(data)
	if err != nil || len(p2.Steps) != len(p.Steps) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestBadPlansListEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"empty", "", []string{"empty document"}},
		{"unknown field", "version: 1\nname: a\npool: g\nvpc: []\n", []string{"field vpc not found"}},
		{"wrong type", "version: one\n", []string{"cannot unmarshal"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"more than one YAML document"}},
		{"many problems", `version: 2
name: Bad_Name
pool: ""
individual_vms: -1
probe: {count: 1000, interval: soon, scope: all}
vpcs:
  - {vni: 0, router: 192.168.1.1, vms: [192.168.1.5]}
  - {vni: 5002, router: nowhere, router_mac: xx, vms: []}
  - {vni: 5002, router: 192.168.3.1, vms: [192.168.3.1, 192.168.3.5, 192.168.3.5, 10.0.0.300]}
`, []string{
			"version: 2: this graygw reads plan version 1",
			`name: "Bad_Name"`,
			`pool: "": name the target (gray) pool`,
			"individual_vms: -1",
			"probe.interval: \"soon\"",
			"probe: count 1000",
			`probe.scope: "all"`,
			"vpcs[0].vni: 0: want 1 to 16777215",
			`vpcs[1].router: "nowhere"`,
			`vpcs[1].router_mac: "xx"`,
			"vpcs[1].vms: required",
			"vpcs[2].vni: 5002 is already vpcs[1]",
			"vpcs[2].vms[0]: 192.168.3.1 is the VPC router",
			"vpcs[2].vms[2]: 192.168.3.5 is already vms[1]",
			`vpcs[2].vms[3]: "10.0.0.300"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadPlan([]byte(tc.doc))
			var pe *PlanErrors
			if !errors.Is(err, ErrPlan) || !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *PlanErrors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestIndividualVMs(t *testing.T) {
	p, err := LoadPlan([]byte(`version: 1
name: x
pool: gray
individual_vms: 0
vpcs:
  - {vni: 1, router: 10.0.0.1, vms: [10.0.0.5, 10.0.0.6]}
  - {vni: 2, router: 10.0.1.1, individual_vms: 9, vms: [10.0.1.5, 10.0.1.6]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.String())
	}
	want := "vni 1,vm 2/10.0.1.5,vm 2/10.0.1.6,vni 2"
	if strings.Join(got, ",") != want {
		t.Errorf("steps %v, want %s", got, want)
	}
}
