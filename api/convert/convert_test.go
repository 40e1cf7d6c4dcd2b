package convert

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/trace"
)

// TestRoundTrip: a progress (plan, steps, probe results) and probe options
// come back equal after a trip through the API messages.
func TestRoundTrip(t *testing.T) {
	spec, err := rollout.ParsePlan([]byte(`version: 1
name: r1
vip: vpc-router
pool: gray-router
individual_vms: 1
probe: {count: 3, interval: 10ms}
vpcs:
  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5, 192.168.1.6]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Validate()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	res := probe.Result{Target: probe.Target{VNI: 5001, VM: netip.MustParseAddr("192.168.1.5"), Router: netip.MustParseAddr("192.168.1.1"),
		RouterMAC: "02:00:00:00:10:fe", ExpectPool: "gray-router"}, Status: probe.StatusWrongBackend, Sent: 3, Received: 3,
		Answers: []probe.Answer{{Underlay: netip.MustParseAddr("10.2.0.11"), Backend: "base-1", Cluster: intent.ClusterBase, Replies: 3}},
		RTTMin:  time.Millisecond, RTTAvg: 2 * time.Millisecond, RTTMax: 3 * time.Millisecond, Reason: "answered by base-1"}
	tcp := res
	tcp.Target.Proto, tcp.Target.Port, tcp.Status = probe.ProtoTCP, 8080, probe.StatusRefused
	p := &rollout.Progress{Plan: *spec, State: rollout.StateFailed, Step: 1, Total: len(plan.Steps), VNI: 5001,
		Precheck: []probe.Result{res, tcp}, Message: "m", Error: "e", Started: at, Updated: at.Add(time.Second)}
	for _, s := range plan.Steps {
		p.Steps = append(p.Steps, rollout.StepRecord{Step: s, State: rollout.StepPending})
	}
	p.Steps[0] = rollout.StepRecord{Step: plan.Steps[0], State: rollout.StepRolledBack, Rule: plan.Steps[0].Rule,
		Probes: []probe.Result{res}, AfterRollback: []probe.Result{res}, Started: at, Finished: at.Add(time.Second), Error: "x",
		Gates: []rollout.GateResult{{Gate: "no_new_drops", OK: false, Detail: "NO_BACKEND +3", Time: at}, {Gate: "rule_traffic", OK: true, Detail: "9 packets", Time: at}}}
	pp, err := Progress(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ProgressFrom(pp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, p)
	}
	o := probe.Options{Count: 5, Interval: time.Millisecond, Timeout: time.Second, MaxLoss: 1}
	if got := ProbeOptionsFrom(ProbeOptions(o)); got != o {
		t.Fatalf("options %+v", got)
	}
	// An IPv6 VM probed towards its IPv6 router (ICMPv6 through the gateway).
	v6 := probe.Target{VNI: 5001, VM: netip.MustParseAddr("fd00:1::5"), Router: netip.MustParseAddr("fd00:1::1"), RouterMAC: "02:00:00:00:10:fe"}
	for _, tg0 := range []probe.Target{res.Target, tcp.Target, v6} {
		tg, err := ProbeTargetFrom(ProbeTarget(tg0))
		if err != nil || tg != tg0 {
			t.Fatalf("target %+v %v", tg, err)
		}
	}
	for _, bad := range []probe.Target{{VNI: 0, VM: res.Target.VM, Router: res.Target.Router}, {VNI: 1, Router: res.Target.Router},
		{VNI: 1, VM: v6.VM, Router: res.Target.Router}, {VNI: 1, VM: res.Target.VM, Router: v6.Router},
		{VNI: 1, VM: netip.MustParseAddr("::ffff:192.168.1.5"), Router: netip.MustParseAddr("::ffff:192.168.1.1")},
		{VNI: 1, VM: res.Target.VM, Router: res.Target.Router, ExpectCluster: "blue"},
		{VNI: 1, VM: res.Target.VM, Router: res.Target.Router, Proto: probe.ProtoTCP},
		{VNI: 1, VM: res.Target.VM, Router: res.Target.Router, Port: 80},
		{VNI: 1, VM: res.Target.VM, Router: res.Target.Router, Proto: "sctp", Port: 80}} {
		if _, err := ProbeTargetFrom(ProbeTarget(bad)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestTraceRoundTrip: a gateway's trace and a flow come back equal after a
// trip through the API messages.
func TestTraceRoundTrip(t *testing.T) {
	h := uint16(4242)
	g := trace.Gateway{Gateway: "gw1", IntentVersion: 3, EntriesRead: 9000, InSync: false,
		Drift: &trace.Drift{Missing: []string{"rule a: x"}, MissingCount: 1, Differ: []string{"rule b: y"}, DifferCount: 30, Extra: nil, ExtraCount: 0},
		VIPs: []trace.VIPPath{{Path: trace.Path{VIP: "vpc", Address: "10.255.0.1", VIPID: 1, Verdict: "forward", Tenant: "acme", TenantID: 7,
			Rules: []trace.RuleCheck{{Name: "a", Priority: 9, Action: "split_pool", Pool: "gray", Matched: true, Decided: true, Why: "decided"},
				{Name: "b", Priority: 3, Action: "set_pool", Pool: "gray", Why: "no match: vni", Mismatch: []string{"vni"}}},
			Rule: "a", Pool: "gray", PoolID: 2, SplitHash: &h, HashFields: []string{"vni", "src"}, HashKey: "00", CRC: 77, Bucket: 5,
			Backend: "g1", BackendID: 21, Rewrite: &trace.Rewrite{Port: 3, SrcMAC: "s", DstMAC: "d", OuterSrc: "o", OuterDst: "10.3.0.21",
				SPort: 1, DPort: 4789, TTL: 63}, Mirror: &trace.Mirror{Sampled: true, Pool: "m", Bucket: 9, Backend: "m1", BackendID: 31},
			Notes: []string{"n"}, OtherRules: 17}, Intent: trace.Outcome{Verdict: "forward", Rule: "a", Pool: "gray", Backend: "g2"}}}}
	if got := GatewayTraceFrom(GatewayTrace(&g)); !reflect.DeepEqual(got, g) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, g)
	}
	q := &trace.Query{VNI: 5001, Src: netip.MustParseAddr("10.0.0.5"), Proto: 17, DPort: 53, Open: []string{"dst", "sport"}, VIP: "vpc", AllRules: true}
	back, err := TraceQueryFrom(TraceQuery(q, "gw1"))
	if err != nil || !reflect.DeepEqual(back, q) {
		t.Fatalf("query round trip: %+v, %v", back, err)
	}
}
