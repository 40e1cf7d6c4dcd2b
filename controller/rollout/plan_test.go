package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent/intenttest"
)

func TestExamplePlan(t *testing.T) {
	in := compiletest.Load(t, string(intenttest.Example(t)))
	spec, err := ParsePlan(mustRead(t, "../../docs/examples/plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// VNI 5002 names only its VNI: alone the plan is incomplete.
	if _, err := spec.Validate(); err == nil || !strings.Contains(err.Error(), "vpcs[1].vms: required") {
		t.Fatalf("the example plan without its intent: %v", err)
	}
	p, err := spec.ValidateWith(in)
	if err != nil {
		t.Fatal(err)
	}
	if v := p.VPCs[1]; len(v.VMs) != 3 || len(v.Destinations()) != 2 || v.Destinations()[1].String() != "10.96.0.1" {
		t.Errorf("VNI 5002 from the inventory: %+v", v)
	}
	p.Spec = *spec.Resolve(in)
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
		{"bad probe ports", `version: 1
name: a
pool: g
probe: {tcp: [443, 0, 443, 70000], udp: [53, 53]}
vpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5]}]
`, []string{
			"probe.tcp[1]: 0: want a port, 1 to 65535",
			"probe.tcp[2]: 443: already probe.tcp[0]",
			"probe.tcp[3]: 70000: want a port",
			"probe.udp[1]: 53: already probe.udp[0]",
		}},
		{"nothing to probe", "version: 1\nname: a\npool: g\nprobe: {icmp: false}\nvpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5]}]\n",
			[]string{"probe.icmp: false, and no probe.tcp or probe.udp: nothing would be probed"}},
		{"too many ports", "version: 1\nname: a\npool: g\nprobe: {udp: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}\nvpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5]}]\n",
			[]string{"probe.udp: 17 ports: at most 16"}},
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

// invIntent has an inventory for VNI 5001 (3 VMs, two route destinations) and
// none for 5002.
const invIntent = `version: 1
gateways:
  - {name: gw, p4runtime: "127.0.0.1:9559", bgp_next_hop: 10.1.0.1, ports: {2: {interface: p2, mac: "02:00:00:00:00:02"}}}
vips:
  - {name: v, address: 10.255.0.1, default_pool: base}
pools:
  - {name: base, cluster: base, backends: [{name: b1, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}]}
  - {name: gray, cluster: gray, backends: [{name: g1, underlay_ip: 10.3.0.21, mac: "02:00:00:00:30:21", port: 2}]}
tenants:
  - {name: acme, vnis: [5001, 5002]}
vpcs:
  - vni: 5001
    router_mac: "02:00:00:00:10:fe"
    routes:
      - {prefix: 0.0.0.0/0, next_hop: 192.168.1.1}
      - {prefix: 10.96.0.0/16}
    vms: [{address: 192.168.1.5}, {address: 192.168.1.6}, {address: 192.168.1.7}]
`

func TestPlanFromTheIntentInventory(t *testing.T) {
	in := compiletest.Load(t, invIntent)
	spec, err := ParsePlan([]byte(`version: 1
name: p
pool: gray
vpcs:
  - {vni: 5001}
  - {vni: 5002, router: 192.168.2.1, vms: [192.168.2.5]}
`))
	if err != nil {
		t.Fatal(err)
	}
	// Alone, the plan lacks VNI 5001's VMs and router, and says where to get them.
	_, err = spec.Validate()
	if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "vpcs[0].vms: required") ||
		!strings.Contains(err.Error(), "vpcs[0].router: required") || !strings.Contains(err.Error(), "give VNI 5001 an inventory in the intent") {
		t.Fatalf("unresolved: %v", err)
	}
	if p, err := spec.ValidatePartial(); err != nil || len(p.Steps) != 3 {
		t.Fatalf("partial: %v %v", p, err)
	}
	p, err := spec.ValidateWith(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "vm 5001/192.168.1.5 vni 5001 vm 5002/192.168.2.5 vni 5002"
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.String())
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("steps %v, want %s", got, want)
	}
	v := p.VPCs[0]
	if len(v.VMs) != 3 || v.Router.String() != "192.168.1.1" || len(v.Dests) != 2 || v.Dests[1].String() != "10.96.0.1" ||
		v.RouterMAC != "02:00:00:00:10:fe" {
		t.Fatalf("resolved VPC: %+v", v)
	}
	// Probes: 3 VMs x 2 destinations, plus the explicit VPC's one VM.
	if ts := targets(p, 0); len(ts) != 7 || ts[1].Router.String() != "10.96.0.1" || ts[1].VM.String() != "192.168.1.5" {
		t.Fatalf("targets: %v", ts)
	}
	// The spec is not modified; the resolved one lists the VMs.
	if len(spec.VPCs[0].VMs) != 0 || len(spec.Resolve(in).VPCs[0].VMs) != 3 {
		t.Fatal("Resolve modified its receiver or filled nothing")
	}
	// What the plan gives wins, field by field.
	spec.VPCs[0].VMs = []string{"192.168.1.6"}
	spec.VPCs[0].RouterMAC = "02:00:00:00:00:aa"
	r := spec.Resolve(in).VPCs[0]
	if len(r.VMs) != 1 || r.VMs[0] != "192.168.1.6" || r.Router != "192.168.1.1" || r.RouterMAC != "02:00:00:00:00:aa" {
		t.Fatalf("plan values: %+v", r)
	}
	spec.VPCs[0].Router = "192.168.1.254"
	if r := spec.Resolve(in).VPCs[0]; r.Router != "192.168.1.254" || len(r.Destinations) != 0 {
		t.Fatalf("plan router: %+v", r)
	}
	// A VNI without inventory and without VMs is still an error.
	spec.VPCs[1].VMs = nil
	if _, err := spec.ValidateWith(in); err == nil || !strings.Contains(err.Error(), "vpcs[1].vms: required") {
		t.Fatalf("VNI without inventory: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// probe.tcp and probe.udp add a TCP connect and a UDP echo per port to every
// VM and destination, after its ICMP echo (or instead, with icmp: false),
// with the same expectations; they count against the probe limits.
func TestProbeChecks(t *testing.T) {
	p, err := LoadPlan([]byte(`version: 1
name: r2
pool: gray-router
probe: {count: 2, tcp: [443, 80], udp: [53]}
vpcs:
  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5, 192.168.1.6]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ts := targets(p, 1)
	var got []string
	for _, tg := range ts {
		got = append(got, tg.String()+" "+tg.ExpectPool+string(tg.ExpectCluster))
	}
	want := "5001/192.168.1.5 gray-router,5001/192.168.1.5 tcp/443 gray-router,5001/192.168.1.5 tcp/80 gray-router,5001/192.168.1.5 udp/53 gray-router," +
		"5001/192.168.1.6 base,5001/192.168.1.6 tcp/443 base,5001/192.168.1.6 tcp/80 base,5001/192.168.1.6 udp/53 base"
	if strings.Join(got, ",") != want {
		t.Errorf("targets after step 1:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	p, err = LoadPlan([]byte("version: 1\nname: a\npool: g\nprobe: {icmp: false, tcp: [22]}\nvpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ts := targets(p, 0); len(ts) != 1 || ts[0].Proto != "tcp" || ts[0].Port != 22 {
		t.Errorf("icmp: false: %v", ts)
	}
	// A VPC's own probe replaces the plan's for its VMs: VNI 5002 is probed
	// over UDP 53 only, 5001 as the plan says.
	p, err = LoadPlan([]byte(`version: 1
name: r2
pool: gray-router
probe: {tcp: [443]}
vpcs:
  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5]}
  - {vni: 5002, router: 192.168.2.1, vms: [192.168.2.5], probe: {icmp: false, udp: [53]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, tg := range targets(p, 0) {
		got = append(got, tg.String())
	}
	if want := "5001/192.168.1.5,5001/192.168.1.5 tcp/443,5002/192.168.2.5 udp/53"; strings.Join(got, ",") != want {
		t.Errorf("targets with a VPC's own probe: %s, want %s", strings.Join(got, ","), want)
	}
	// The checks survive the YAML (API, CLI) and JSON (the stored progress)
	// round trips.
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := LoadPlan(data)
	if err != nil || fmt.Sprint(p2.Checks, p2.VPCChecks) != fmt.Sprint(p.Checks, p.VPCChecks) {
		t.Errorf("YAML round trip: %v %v, %v\n%s", p2.Checks, p2.VPCChecks, err, data)
	}
	js, err := json.Marshal(p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var spec PlanSpec
	if err := json.Unmarshal(js, &spec); err != nil {
		t.Fatal(err)
	}
	if p3, err := spec.Validate(); err != nil || fmt.Sprint(p3.Checks, p3.VPCChecks) != fmt.Sprint(p.Checks, p.VPCChecks) {
		t.Errorf("JSON round trip: %v, %v\n%s", p3, err, js)
	}
	_, err = LoadPlan([]byte("version: 1\nname: a\npool: g\nvpcs: [{vni: 1, router: 10.0.0.1, vms: [10.0.0.5], probe: {icmp: false, tcp: [0]}}]\n"))
	if err == nil || !strings.Contains(err.Error(), "vpcs[0].probe.tcp[0]: 0: want a port") {
		t.Errorf("a VPC's bad probe: %v", err)
	}
	// 100 VMs x 16 ports: over the 1024 targets of a run.
	doc := "version: 1\nname: a\npool: g\nprobe: {count: 1, tcp: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}\nvpcs: [{vni: 1, router: 10.0.0.1, vms: ["
	for i := 2; i < 102; i++ {
		if i > 2 {
			doc += ", "
		}
		doc += "10.0.1." + strconv.Itoa(i)
	}
	if _, err := LoadPlan([]byte(doc + "]}]\n")); err == nil || !strings.Contains(err.Error(), "1700 probe targets (VMs x destinations x checks)") {
		t.Errorf("too many targets: %v", err)
	}
}
