// Package convert converts between the controller API's messages
// (api/graygw/v1) and the controller's own types for probes and rollouts
// (controller/probe, controller/rollout), both ways: the service answers with
// them and the CLI reads them back, so a round trip gives the value back.
package convert

import (
	"fmt"
	"net/netip"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// ProbeOptions converts probe options to the API.
func ProbeOptions(o probe.Options) *graygwv1.ProbeOptions {
	return &graygwv1.ProbeOptions{Count: uint32(o.Count), Interval: durationpb.New(o.Interval), Timeout: durationpb.New(o.Timeout),
		MaxLoss: uint32(o.MaxLoss)}
}

// ProbeOptionsFrom converts probe options from the API (absent fields: zero,
// that is the defaults).
func ProbeOptionsFrom(o *graygwv1.ProbeOptions) probe.Options {
	return probe.Options{Count: int(o.GetCount()), Interval: o.GetInterval().AsDuration(), Timeout: o.GetTimeout().AsDuration(),
		MaxLoss: int(o.GetMaxLoss())}
}

// ProbeTarget converts a target to the API.
func ProbeTarget(t probe.Target) *graygwv1.ProbeTarget {
	return &graygwv1.ProbeTarget{Vni: t.VNI, Vm: addr(t.VM), Router: addr(t.Router), RouterMac: t.RouterMAC,
		ExpectCluster: string(t.ExpectCluster), ExpectPool: t.ExpectPool, Proto: string(t.Proto), Port: uint32(t.Port)}
}

// ProbeTargetFrom converts and checks a target from the API.
func ProbeTargetFrom(t *graygwv1.ProbeTarget) (probe.Target, error) {
	vm, err := netip.ParseAddr(t.GetVm())
	if err != nil || vm.Zone() != "" || vm.Is4In6() {
		return probe.Target{}, fmt.Errorf("vm %q is not an IPv4 or IPv6 address", t.GetVm())
	}
	r, err := netip.ParseAddr(t.GetRouter())
	if err != nil || r.Zone() != "" || r.Is4In6() {
		return probe.Target{}, fmt.Errorf("router %q is not an IPv4 or IPv6 address", t.GetRouter())
	}
	if vm.Is6() != r.Is6() {
		return probe.Target{}, fmt.Errorf("vm %s and router %s: one inner packet, one family", vm, r)
	}
	if t.GetVni() == 0 || t.GetVni() > 0xffffff {
		return probe.Target{}, fmt.Errorf("vni %d is not 1-16777215", t.GetVni())
	}
	switch intent.Cluster(t.GetExpectCluster()) {
	case "", intent.ClusterBase, intent.ClusterGray:
	default:
		return probe.Target{}, fmt.Errorf("expect_cluster %q: want base or gray", t.GetExpectCluster())
	}
	switch probe.Proto(t.GetProto()) {
	case "", probe.ProtoICMP:
		if t.GetPort() != 0 {
			return probe.Target{}, fmt.Errorf("port %d with an ICMP probe: give proto tcp or udp", t.GetPort())
		}
	case probe.ProtoTCP, probe.ProtoUDP:
		if t.GetPort() < 1 || t.GetPort() > 65535 {
			return probe.Target{}, fmt.Errorf("port %d: a %s probe needs a port, 1 to 65535", t.GetPort(), t.GetProto())
		}
	default:
		return probe.Target{}, fmt.Errorf("proto %q: want icmp, tcp or udp", t.GetProto())
	}
	return probe.Target{VNI: t.GetVni(), VM: vm, Router: r, RouterMAC: t.GetRouterMac(),
		ExpectCluster: intent.Cluster(t.GetExpectCluster()), ExpectPool: t.GetExpectPool(),
		Proto: probe.Proto(t.GetProto()), Port: uint16(t.GetPort())}, nil
}

// ProbeResults converts results to the API.
func ProbeResults(rs []probe.Result) []*graygwv1.ProbeResult {
	out := make([]*graygwv1.ProbeResult, 0, len(rs))
	for _, r := range rs {
		pr := &graygwv1.ProbeResult{Target: ProbeTarget(r.Target), Status: string(r.Status), Sent: uint32(r.Sent),
			Received: uint32(r.Received), RttMin: durationpb.New(r.RTTMin), RttAvg: durationpb.New(r.RTTAvg),
			RttMax: durationpb.New(r.RTTMax), Reason: r.Reason}
		for _, a := range r.Answers {
			pr.Answers = append(pr.Answers, &graygwv1.ProbeAnswer{Underlay: addr(a.Underlay), Backend: a.Backend,
				Cluster: string(a.Cluster), Replies: uint32(a.Replies), Expected: a.Expected})
		}
		out = append(out, pr)
	}
	return out
}

// ProbeResultsFrom converts results from the API; nil for none.
func ProbeResultsFrom(rs []*graygwv1.ProbeResult) []probe.Result {
	if len(rs) == 0 {
		return nil
	}
	out := make([]probe.Result, 0, len(rs))
	for _, r := range rs {
		t := r.GetTarget()
		pr := probe.Result{Target: probe.Target{VNI: t.GetVni(), VM: parse(t.GetVm()), Router: parse(t.GetRouter()),
			RouterMAC: t.GetRouterMac(), ExpectCluster: intent.Cluster(t.GetExpectCluster()), ExpectPool: t.GetExpectPool(),
			Proto: probe.Proto(t.GetProto()), Port: uint16(t.GetPort())},
			Status: probe.Status(r.GetStatus()), Sent: int(r.GetSent()), Received: int(r.GetReceived()),
			RTTMin: r.GetRttMin().AsDuration(), RTTAvg: r.GetRttAvg().AsDuration(), RTTMax: r.GetRttMax().AsDuration(),
			Reason: r.GetReason()}
		for _, a := range r.GetAnswers() {
			pr.Answers = append(pr.Answers, probe.Answer{Underlay: parse(a.GetUnderlay()), Backend: a.GetBackend(),
				Cluster: intent.Cluster(a.GetCluster()), Replies: int(a.GetReplies()), Expected: a.GetExpected()})
		}
		out = append(out, pr)
	}
	return out
}

// Progress converts a rollout's progress to the API; the plan goes as YAML.
func Progress(p *rollout.Progress) (*graygwv1.RolloutProgress, error) {
	plan, err := yaml.Marshal(&p.Plan)
	if err != nil {
		return nil, fmt.Errorf("convert: plan: %w", err)
	}
	out := &graygwv1.RolloutProgress{PlanYaml: string(plan), Name: p.Plan.Name, Pool: p.Plan.Pool, State: string(p.State),
		Step: uint32(p.Step), Total: uint32(p.Total), Vni: p.VNI, Precheck: ProbeResults(p.Precheck),
		PauseRequested: p.PauseRequested, Message: p.Message, Error: p.Error, Started: ts(p.Started), Updated: ts(p.Updated)}
	for _, s := range p.Steps {
		out.Steps = append(out.Steps, &graygwv1.RolloutStep{Index: uint32(s.Step.Index), Kind: string(s.Step.Kind), Vni: s.Step.VNI,
			Vm: addr(s.Step.VM), RequestedRule: s.Step.Rule, Rule: s.Rule, State: string(s.State), Probes: ProbeResults(s.Probes),
			AfterRollback: ProbeResults(s.AfterRollback), Started: ts(s.Started), Finished: ts(s.Finished), Error: s.Error,
			Gates: gates(s.Gates)})
	}
	return out, nil
}

func gates(gs []rollout.GateResult) []*graygwv1.GateResult {
	var out []*graygwv1.GateResult
	for _, g := range gs {
		out = append(out, &graygwv1.GateResult{Gate: g.Gate, Ok: g.OK, Detail: g.Detail, Time: ts(g.Time)})
	}
	return out
}

func gatesFrom(gs []*graygwv1.GateResult) []rollout.GateResult {
	var out []rollout.GateResult
	for _, g := range gs {
		out = append(out, rollout.GateResult{Gate: g.GetGate(), OK: g.GetOk(), Detail: g.GetDetail(), Time: tm(g.GetTime())})
	}
	return out
}

// ProgressFrom converts a rollout's progress from the API.
func ProgressFrom(p *graygwv1.RolloutProgress) (*rollout.Progress, error) {
	out := &rollout.Progress{State: rollout.State(p.GetState()), Step: int(p.GetStep()), Total: int(p.GetTotal()), VNI: p.GetVni(),
		Precheck: ProbeResultsFrom(p.GetPrecheck()), PauseRequested: p.GetPauseRequested(), Message: p.GetMessage(),
		Error: p.GetError(), Started: tm(p.GetStarted()), Updated: tm(p.GetUpdated())}
	if p.GetPlanYaml() != "" {
		spec, err := rollout.ParsePlan([]byte(p.GetPlanYaml()))
		if err != nil {
			return nil, fmt.Errorf("convert: the controller's plan: %w", err)
		}
		out.Plan = *spec
	}
	if out.Plan.Name == "" {
		out.Plan.Name, out.Plan.Pool = p.GetName(), p.GetPool()
	}
	for _, s := range p.GetSteps() {
		out.Steps = append(out.Steps, rollout.StepRecord{
			Step: rollout.Step{Index: int(s.GetIndex()), Kind: rollout.StepKind(s.GetKind()), VNI: s.GetVni(), VM: parse(s.GetVm()),
				Rule: s.GetRequestedRule()},
			State: rollout.StepState(s.GetState()), Rule: s.GetRule(), Probes: ProbeResultsFrom(s.GetProbes()),
			AfterRollback: ProbeResultsFrom(s.GetAfterRollback()), Started: tm(s.GetStarted()), Finished: tm(s.GetFinished()),
			Error: s.GetError(), Gates: gatesFrom(s.GetGates())})
	}
	return out, nil
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func parse(s string) netip.Addr {
	a, _ := netip.ParseAddr(s) // invalid for "" (a vni step's VM)
	return a
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tm(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}
