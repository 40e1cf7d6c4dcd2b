package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

func TestUsageErrorsExit2AndSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cutover", "--vm", "5001/192.168.1.5"}, "--pool is required"},
		{[]string{"cutover", "--pool", "g"}, "nothing selected: give --vni N, --vm VNI/IP"},
		{[]string{"cutover", "--pool", "g", "--vm", "5001/192.168.1.5", "--prefix", "10.0.0.0/8"}, "give one of --vm, --prefix, --flow"},
		{[]string{"cutover", "--pool", "g", "--vm", "192.168.1.5"}, `--vm "192.168.1.5": want VNI/IP, e.g. 5001/192.168.1.5 or 5001/2001:db8::5`},
		{[]string{"cutover", "--pool", "g", "--vm", "5001/192.168.1.5", "--vni", "5001"}, "--vm VNI/IP carries its VNI: drop --vni"},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--prefix", "192.168.1.1/24"}, "without host bits"},
		{[]string{"cutover", "--pool", "g", "--vni", "16777216"}, "--vni 16777216: want 0 to 16777215"},
		{[]string{"cutover", "--pool", "g", "--vni", "0"}, "--vni 0 (plain traffic) only with --flow"},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--flow", "icmp/1.2.3.4/5.6.7.8"}, `protocol "icmp": want tcp or udp`},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--flow", "tcp/1.2.3.4:99999/*"}, `source port "99999"`},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--flow", "tcp/*/*"}, "selects every tcp packet"},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--percent", "0"}, "--percent 0: want more than 0"},
		{[]string{"cutover", "--pool", "g", "--vm", "5001/192.168.1.5", "--percent", "50"}, "a VM, prefix or flow moves whole"},
		{[]string{"cutover", "--pool", "g", "--vni", "5001", "--prefix", "192.168.1.0/24", "--percent", "50"}, "a VM, prefix or flow moves whole"},
		{[]string{"rollback"}, "give exactly one of --step (undo the last change), --rule NAME or --all"},
		{[]string{"rollback", "--step", "--all"}, "give exactly one of"},
		{[]string{"rollback", "--step", "x"}, "takes no arguments"},
		{[]string{"history", "--limit", "0"}, "--limit 0"},
		{[]string{"diff", "--from", "x.yaml"}, "--from needs -f"},
		{[]string{"apply"}, "-f is required"},
		{[]string{"apply", "-f", "../../docs/examples/intent.yaml", "--offline"}, "--offline needs --dry-run"},
		{[]string{"status", "-o", "xml"}, `-o "xml": want table, json or yaml`},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"status", "extra"}, "takes no arguments"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"rollout", "go"}, `unknown command "go" for "graygw rollout"`},
		{[]string{"counters", "--kind", "x"}, `--kind "x"`},
		{[]string{"probe"}, "nothing to probe"},
		{[]string{"probe", "--vm", "5001/192.168.1.500"}, "want VNI/IP or IP"},
		{[]string{"probe", "--vni", "0"}, "--vni 0"},
		{[]string{"probe", "--vni", "4294972297", "--vm", "192.168.1.5"}, "--vni 4294972297: want 1 to 16777215"},
		{[]string{"probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1", "--count", "1000"}, "count 1000"},
		{[]string{"probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1", "--expect", "blue"}, `--expect "blue"`},
		{[]string{"probe", "--local", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1"}, "--local needs -f INTENT"},
		{[]string{"probe", "--local", "-f", "../../docs/examples/intent.yaml", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1"}, "has 2 VIPs: say which with --vip"},
		{[]string{"status", "--controller", "10.0.0.1:50051"}, "give --tls-cert, --tls-key and --tls-ca"},
		{[]string{"status", "--controller", "unix://relative"}, "want unix:///absolute/path"},
	} {
		f := &fake{}
		code, _, stderr := cli(t, f, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, stderr, tc.want)
		}
		for _, c := range f.calls {
			t.Errorf("%v: a usage error still called the controller (%s)", tc.args, c)
		}
	}
}

func TestCutoverScopes(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		args    []string
		want    *graygwv1.CutoverRequest // Pool gray-router, no options
		refused string                   // a usage error instead
	}{
		{[]string{"--vm", "5001/192.168.1.5"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "192.168.1.5"}}}, ""},
		{[]string{"--vni", "5001", "--vip", "vpc-router"}, &graygwv1.CutoverRequest{Vip: "vpc-router", Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5001}}}, ""},
		{[]string{"--vni", "5001", "--prefix", "192.168.1.0/28"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Prefix{Prefix: &graygwv1.PrefixScope{Vni: u(5001), Src: "192.168.1.0/28"}}}, ""},
		{[]string{"--prefix", "192.168.1.0/28"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Prefix{Prefix: &graygwv1.PrefixScope{Src: "192.168.1.0/28"}}}, ""},
		{[]string{"--vni", "5002", "--percent", "12.5"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: 5002, Percent: 12.5}}}, ""},
		{[]string{"--vni", "5001", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Flow{Flow: &graygwv1.FlowScope{
			Vni: u(5001), Proto: "tcp", Src: "192.168.1.5", Sport: 33001, Dst: "192.168.1.1", Dport: 22}}}, ""},
		// The API takes a flow with both addresses.
		{[]string{"--vni", "0", "--flow", "udp/*/10.255.0.1:53"}, nil, "the controller takes a flow with both addresses"},
		// IPv6: a port after an IPv6 address takes brackets.
		{[]string{"--vm", "5001/2001:db8::5"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "2001:db8::5"}}}, ""},
		{[]string{"--vni", "5001", "--prefix", "2001:db8::/64"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Prefix{Prefix: &graygwv1.PrefixScope{Vni: u(5001), Src: "2001:db8::/64"}}}, ""},
		{[]string{"--vni", "5001", "--flow", "tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Flow{Flow: &graygwv1.FlowScope{
			Vni: u(5001), Proto: "tcp", Src: "2001:db8::5", Sport: 33001, Dst: "2001:db8:1::1", Dport: 22}}}, ""},
		{[]string{"--vni", "5001", "--flow", "udp/2001:db8::5/2001:db8:1::1:53"}, &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Flow{Flow: &graygwv1.FlowScope{
			Vni: u(5001), Proto: "udp", Src: "2001:db8::5", Dst: "2001:db8:1::1:53"}}}, ""},
		{[]string{"--vni", "5001", "--flow", "tcp/[2001:db8::5]:1/192.168.1.1:22"}, nil, "different families"},
		{[]string{"--vni", "5001", "--flow", "tcp/[2001:db8::5:1/*"}, nil, "no ] after the IPv6 address"},
		{[]string{"--vni", "5001", "--flow", "tcp/[192.168.1.5]:1/*"}, nil, "want an IPv6 address inside [ ]"},
		{[]string{"--vni", "5001", "--prefix", "2001:db8::5/64"}, nil, "want a prefix without host bits, e.g. 192.168.1.0/28 or 2001:db8::/64"},
		{[]string{"--vm", "5001/::ffff:192.168.1.5"}, nil, "want VNI/IP"},
	} {
		f := &fake{}
		code, out, stderr := cli(t, f, append([]string{"cutover", "--pool", "gray-router", "--dry-run"}, tc.args...)...)
		if tc.want == nil {
			if code != ExitUsage || !strings.Contains(stderr, tc.refused) || len(f.calls) != 0 {
				t.Errorf("%v: exit %d %s %v, want a usage error saying %q", tc.args, code, stderr, f.calls, tc.refused)
			}
			continue
		}
		if code != 0 {
			t.Errorf("%v: exit %d: %s", tc.args, code, stderr)
			continue
		}
		got := proto.Clone(f.lastReq()).(*graygwv1.CutoverRequest)
		dry := got.GetOptions().GetDryRun()
		got.Options = nil
		tc.want.Pool = "gray-router"
		if !proto.Equal(got, tc.want) || !dry {
			t.Errorf("%v: request %v dry %v, want %v", tc.args, got, dry, tc.want)
		}
		if !strings.Contains(out, "rule vm-5001-192.168.1.5: ") || !strings.Contains(out, "dry run: nothing applied") {
			t.Errorf("%v: output %q", tc.args, out)
		}
	}
}

func TestControllerRefusalExits3(t *testing.T) {
	f := &fake{err: status.Error(codes.InvalidArgument, "unknown VNI 7777: no tenant lists it")}
	code, _, stderr := cli(t, f, "cutover", "--vni", "7777", "--pool", "gray-router")
	if code != ExitRefused || !strings.Contains(stderr, "unknown VNI 7777") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// FailedPrecondition (a rollout in the way) maps the same way.
	f = &fake{err: status.Error(codes.FailedPrecondition, "overlapping")}
	if code, _, _ := cli(t, f, "rollback", "--all"); code != ExitRefused {
		t.Errorf("rollout.ErrRefused: exit %d", code)
	}
	f = &fake{err: status.Error(codes.Internal, "connection refused")}
	if code, _, _ := cli(t, f, "status"); code != ExitError {
		t.Errorf("plain error: exit %d", code)
	}
}

func TestApplyValidatesLocallyFirst(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nvips:\n  - {name: v, address: 10.0.0.300, default_pool: nope}\n"), 0o644)
	f := &fake{}
	code, _, stderr := cli(t, f, "apply", "-f", bad)
	if code != ExitRefused || !strings.Contains(stderr, "vips[0].address") || !strings.Contains(stderr, "vips[0].default_pool") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if len(f.calls) != 0 {
		t.Errorf("an invalid intent was sent: %v", f.calls)
	}
	code, out, stderr := cli(t, f, "apply", "-f", "../../docs/examples/intent.yaml", "--dry-run")
	if code != 0 || !f.lastReq().(*graygwv1.ApplyRequest).GetOptions().GetDryRun() || !strings.Contains(out, "dry run: nothing applied") ||
		!strings.Contains(out, "gw1: 4097 inserts, 0 modifies, 0 deletes") || !strings.Contains(out, "gray_rules      rule x") {
		t.Errorf("apply --dry-run: %d %q %q", code, out, stderr)
	}
	f = &fake{}
	code, out, _ = cli(t, f, "apply", "-f", "../../docs/examples/intent.yaml", "--wait", "--actor", "bob")
	o := f.lastReq().(*graygwv1.ApplyRequest).GetOptions()
	if code != 0 || !o.GetWait() || o.GetActor() != "bob" || o.GetWaitTimeout().AsDuration() != time.Minute || !strings.Contains(out, "applied as intent version 7") {
		t.Errorf("apply --wait: %d %v\n%s", code, o, out)
	}
	// 16406: the example's 3 rules without an address are in gray_rules_v6 too.
	code, out, _ = cli(t, &fake{}, "apply", "-f", "../../docs/examples/intent.yaml", "--dry-run", "--offline")
	if code != 0 || !strings.Contains(out, "gw1: 16406 inserts") || !strings.Contains(out, "pool base-router v0    4096") {
		t.Errorf("offline apply: %d\n%s", code, out)
	}
}

func TestOfflineDiff(t *testing.T) {
	old, err := os.ReadFile("../../docs/examples/intent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml")
	os.WriteFile(oldPath, old, 0o644)
	os.WriteFile(newPath, []byte(strings.Replace(string(old), "  - name: vpc-5002\n", "  - name: vm-10.0.0.6\n    match: {vip: vpc-router, vni: 5001, src: 10.0.0.6}\n    pool: gray-router\n  - name: vpc-5002\n", 1)), 0o644)
	code, out, stderr := cli(t, &fake{}, "diff", "-f", newPath, "--from", oldPath, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var cs ChangeSet
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.Plans) != 2 { // one rule, on each of the two gateways
		t.Fatalf("plans %+v, want gw1 and gw2", cs.Plans)
	}
	for _, p := range cs.Plans {
		if p.Inserts != 1 || p.Modifies+p.Deletes != 0 || len(p.Changes) != 1 || len(p.Groups) != 1 {
			t.Errorf("plan %+v", p)
			continue
		}
		if c := p.Changes[0]; c.Op != "insert" || c.Table != "gray_rules" || c.Origin != "rule vm-10.0.0.6" {
			t.Errorf("change %+v", c)
		}
	}
}

func progress(state rollout.State, step int, msg string) *rollout.Progress {
	p := &rollout.Progress{Plan: rollout.PlanSpec{Name: "router-v2", Pool: "gray-router"}, State: state, Step: step, Total: 2, VNI: 5001,
		Message: msg, Updated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	vm := netip.MustParseAddr("192.168.1.5")
	p.Steps = []rollout.StepRecord{
		{Step: rollout.Step{Index: 1, Kind: rollout.StepVM, VNI: 5001, VM: vm, Rule: "router-v2.5001.192.168.1.5"}, State: rollout.StepPending},
		{Step: rollout.Step{Index: 2, Kind: rollout.StepVNI, VNI: 5001, Rule: "router-v2.5001"}, State: rollout.StepPending},
	}
	if state == rollout.StateFailed {
		p.Error = "step 1 (vm 5001/192.168.1.5): probes failed: 5001/192.168.1.5 lost; rolled back"
		p.Steps[0].State = rollout.StepRolledBack
		p.Steps[0].Probes = []probe.Result{{Target: probe.Target{VNI: 5001, VM: vm, Router: netip.MustParseAddr("192.168.1.1"), ExpectPool: "gray-router"},
			Status: probe.StatusLost, Sent: 3, Reason: "3 of 3 requests unanswered"}}
	}
	return p
}

func TestRolloutCommands(t *testing.T) {
	// Offline dry run: the plan's steps, nothing sent.
	if code, _, stderr := cli(t, &fake{}, "rollout", "start", "-f", "../../docs/examples/plan.yaml", "--dry-run", "--offline"); code != ExitRefused ||
		!strings.Contains(stderr, "give VNI 5002 an inventory in the intent") {
		t.Errorf("offline without the intent: %d %s", code, stderr)
	}
	code, out, _ := cli(t, &fake{}, "rollout", "start", "-f", "../../docs/examples/plan.yaml", "--dry-run", "--offline", "--intent", "../../docs/examples/intent.yaml")
	if code != 0 || !strings.Contains(out, "plan router-v2: 5 steps") || !strings.Contains(out, "router-v2.5002.192.168.2.6") {
		t.Errorf("offline: %d\n%s", code, out)
	}
	// A bad plan is refused before the controller is called.
	bad := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: x\npool: g\nvpcs: [{vni: 0, router: r, vms: []}]\n"), 0o644)
	f := &fake{}
	code, _, stderr := cli(t, f, "rollout", "start", "-f", bad)
	if code != ExitRefused || !strings.Contains(stderr, "vpcs[0].vni") || len(f.calls) != 0 {
		t.Errorf("bad plan: %d %s %v", code, stderr, f.calls)
	}
	// --wait follows the progress; a failed rollout exits 4 and shows the failed probes.
	f = &fake{progress: []*rollout.Progress{
		progress(rollout.StateRunning, 0, "precheck passed"),
		progress(rollout.StateRunning, 1, "step 1 of 2: moving vm 5001/192.168.1.5 to gray-router"),
		progress(rollout.StateFailed, 1, "step 1 failed"),
	}}
	code, out, stderr = cli(t, f, "rollout", "start", "-f", "../../docs/examples/plan.yaml", "--wait")
	if code != ExitFailed || !strings.Contains(stderr, "rollout router-v2 failed at step 1 of 2") {
		t.Errorf("wait: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"03:04:05  running  step 1/2  vni 5001  step 1 of 2: moving", "rolled-back", "step 1 probes that failed", "3 of 3 requests unanswered"} {
		if !strings.Contains(out, w) {
			t.Errorf("wait output lacks %q:\n%s", w, out)
		}
	}
	// status: 0 when running or completed, 4 when failed; yaml output.
	f = &fake{progress: []*rollout.Progress{progress(rollout.StateCompleted, 2, "completed")}}
	if code, out, _ := cli(t, f, "rollout", "status", "-o", "yaml"); code != 0 || !strings.Contains(out, "state: completed") {
		t.Errorf("status completed: %d %s", code, out)
	}
	f = &fake{progress: []*rollout.Progress{progress(rollout.StateFailed, 1, "x")}}
	if code, _, _ := cli(t, f, "rollout", "status"); code != ExitFailed {
		t.Errorf("status failed: exit %d", code)
	}
	for _, act := range []string{"pause", "resume", "abort"} {
		f = &fake{progress: []*rollout.Progress{progress(rollout.StatePaused, 1, act)}}
		if code, _, stderr := cli(t, f, "rollout", act); code != 0 || f.calls[0] != "rollout "+act {
			t.Errorf("%s: %d %s %v", act, code, stderr, f.calls)
		}
	}
}

func TestProbeCommand(t *testing.T) {
	vm := netip.MustParseAddr("192.168.1.5")
	f := &fake{results: []probe.Result{
		{Target: probe.Target{VNI: 5001, VM: vm, Router: netip.MustParseAddr("192.168.1.1"), ExpectCluster: intent.ClusterGray}, Status: probe.StatusWrongBackend,
			Sent: 3, Received: 3, Answers: []probe.Answer{{Underlay: netip.MustParseAddr("10.2.0.11"), Backend: "base-1", Cluster: intent.ClusterBase, Replies: 3}},
			RTTMin: time.Millisecond, RTTAvg: 2 * time.Millisecond, RTTMax: 3 * time.Millisecond, Reason: "answered by base-1 10.2.0.11 (base); expected gray cluster"},
	}}
	code, out, stderr := cli(t, f, "probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1", "--expect", "gray", "--count", "3", "--interval", "10ms")
	if code != ExitFailed || !strings.Contains(stderr, "1 of 1 targets not ok") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"wrong-backend", "base-1", "1.00ms/2.00ms/3.00ms", "gray"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	pr := f.lastReq().(*graygwv1.ProbeRequest)
	if ts, o := pr.GetTargets(), pr.GetOptions(); len(ts) != 1 || ts[0].GetExpectCluster() != "gray" || o.GetCount() != 3 || o.GetInterval().AsDuration() != 10*time.Millisecond {
		t.Errorf("request %v", pr)
	}
	// Targets from a plan that gives its VMs, one VNI; all ok -> exit 0.
	explicit := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(explicit, []byte("version: 1\nname: p\nvip: vpc-router\npool: gray-router\nbase_pool: base-router\nvpcs:\n"+
		"  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5, 192.168.1.6, 192.168.1.7]}\n"+
		"  - {vni: 5002, router: 192.168.2.1, vms: [192.168.2.5]}\n"), 0o644)
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--plan", explicit, "--vni", "5001"); code != 0 || len(probeReq(f).GetTargets()) != 3 ||
		probeReq(f).GetTargets()[0].GetVni() != 5001 || probeReq(f).GetPlanYaml() != "" {
		t.Errorf("plan targets: %d %s %v", code, stderr, probeReq(f))
	}
	// A plan with a VPC that names only its VNI, --vni alone and --vm without
	// --router: the controller expands them from the inventory of its intent
	// in force (the CLI sends the plan or the scopes, and fetches nothing).
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--plan", "../../docs/examples/plan.yaml", "--vni", "5002", "--expect", "gray"); code != 0 ||
		!strings.Contains(probeReq(f).GetPlanYaml(), "individual_vms: 2") || probeReq(f).GetVni() != 5002 || probeReq(f).GetExpectCluster() != "gray" ||
		len(probeReq(f).GetInventory())+len(probeReq(f).GetTargets()) != 0 || strings.Join(f.calls, " ") != "probe" {
		t.Errorf("plan from the inventory: %d %s %v %v", code, stderr, probeReq(f), f.calls)
	}
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--vni", "5002", "--vip", "vpc-router", "--count", "2"); code != 0 || inventory(f) != "5002/" ||
		probeReq(f).GetPlanYaml() != "" || probeReq(f).GetVip() != "vpc-router" || probeReq(f).GetOptions().GetCount() != 2 {
		t.Errorf("--vni: %d %s %v", code, stderr, probeReq(f))
	}
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--vm", "192.168.2.6", "--vm", "5001/192.168.1.5"); code != 0 ||
		inventory(f) != "0/192.168.2.6 5001/192.168.1.5" {
		t.Errorf("--vm from the inventory: %d %s %v", code, stderr, probeReq(f))
	}
	// --tcp, --udp, --no-icmp: explicit targets carry them; inventory
	// scopes send them for the controller to apply; a plan says its own.
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1", "--tcp", "443,80", "--udp", "53"); code != 0 {
		t.Errorf("--tcp with --router: %d %s", code, stderr)
	} else {
		var got []string
		for _, tg := range probeReq(f).GetTargets() {
			got = append(got, fmt.Sprintf("%s/%d", tg.GetProto(), tg.GetPort()))
		}
		if strings.Join(got, " ") != "/0 tcp/443 tcp/80 udp/53" {
			t.Errorf("targets with --tcp and --udp: %v", got)
		}
	}
	f = &fake{}
	if code, _, stderr := cli(t, f, "probe", "--vni", "5002", "--tcp", "443", "--no-icmp"); code != 0 || inventory(f) != "5002/" ||
		!probeReq(f).GetChecks().GetNoIcmp() || fmt.Sprint(probeReq(f).GetChecks().GetTcp()) != "[443]" {
		t.Errorf("--vni --tcp --no-icmp: %d %s %v", code, stderr, probeReq(f))
	}
	for _, bad := range [][]string{
		{"--vni", "5002", "--tcp", "0"}, {"--vni", "5002", "--no-icmp"}, {"--plan", explicit, "--udp", "53"},
	} {
		code, _, stderr := cli(t, &fake{}, append([]string{"probe"}, bad...)...)
		if code != ExitUsage || !strings.Contains(stderr, map[string]string{"--tcp": "--tcp[0]: 0: want a port", "--no-icmp": "--no-icmp, and no",
			"--udp": "a plan says them in its probe section"}[bad[2]]) {
			t.Errorf("probe %v: exit %d %s", bad, code, stderr)
		}
	}
	if code, _, stderr := cli(t, &fake{}, "probe", "--plan", "../../docs/examples/plan.yaml", "--vni", "7777"); code != ExitUsage || !strings.Contains(stderr, "unknown VNI 7777") {
		t.Errorf("unknown VNI in plan: %d %s", code, stderr)
	}
}

// probeReq is the last request of f, a probe.
func probeReq(f *fake) *graygwv1.ProbeRequest {
	r, _ := f.lastReq().(*graygwv1.ProbeRequest)
	return r
}

// inventory lists the inventory scopes of f's last probe as VNI/VM.
func inventory(f *fake) string {
	var out []string
	for _, sc := range probeReq(f).GetInventory() {
		out = append(out, fmt.Sprintf("%d/%s", sc.GetVni(), sc.GetVm()))
	}
	return strings.Join(out, " ")
}

func TestReadCommandsOutput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"intent version 3", "GATEWAY", "gw1", "primary", "yes", "5001", "partly-gray", "192.168.1.5"}},
		{[]string{"counters", "--kind", "drop"}, []string{"NO_BACKEND"}},
		{[]string{"bgp"}, []string{"AS 65001", "established", "10.255.0.1/32", "yes, by alice (uid=1000)", "why not announced:",
			"10.255.0.1/32 via 10.1.0.1 (gw1): drained by alice (uid=1000) at 2025-01-02T03:04:05Z (maintenance)"}},
		{[]string{"drain", "gw1", "--reason", "maintenance"}, []string{"gateway gw1 drained", "drained", "10.1.0.1"}},
		{[]string{"undrain", "gw1"}, []string{"gateway gw1 was not drained"}},
		{[]string{"get"}, []string{"# intent version 3 (current 3)", "by alice", "version: 1"}},
		{[]string{"get", "--rules"}, []string{"vm-10.0.0.5", "vm", "5072", "vip=vpc-router vni=5001 src=10.0.0.5", "globex-nat-25pct", "25"}},
		{[]string{"history"}, []string{"cutover", "2->3", "alice"}},
		{[]string{"rollback", "--rule", "vm5", "--dry-run"}, []string{"removed rules: vm5", "dry run"}},
		{[]string{"rollback", "--step"}, []string{"rolled back the last change"}},
	} {
		code, out, stderr := cli(t, &fake{}, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d %s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		// The same in JSON and YAML parses.
		_, js, _ := cli(t, &fake{}, append(tc.args, "-j")...)
		if !json.Valid([]byte(js)) {
			t.Errorf("%v -j: not JSON: %s", tc.args, js)
		}
		_, ys, _ := cli(t, &fake{}, append(tc.args, "-o", "yaml")...)
		var v any
		if err := yaml.Unmarshal([]byte(ys), &v); err != nil || v == nil {
			t.Errorf("%v -o yaml: %v: %s", tc.args, err, ys)
		}
	}
	if code, out, _ := cli(t, &fake{}, "counters", "--kind", "rule", "-j"); code != 0 || strings.Contains(out, "NO_BACKEND") {
		t.Errorf("--kind rule: %s", out)
	}
}

func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	a := &app{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && c.Example == "" && c.Parent() != nil && c.Parent().Name() != "completion" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(a.rootCmd())
	for _, args := range [][]string{{"--help"}, {"cutover", "--help"}, {"rollout", "start", "--help"}, {"probe", "-h"}} {
		code, out, _ := cli(t, &fake{}, args...)
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	code, out, _ := cli(t, &fake{}, "cutover", "--help")
	for _, w := range []string{"--dry-run", "--percent", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("cutover --help lacks %q", w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatusShowsTheRollout(t *testing.T) {
	f := &fake{progress: []*rollout.Progress{progress(rollout.StateRunning, 1, "step 1 of 2: moving vm 5001/192.168.1.5 to gray-router")}}
	code, out, _ := cli(t, f, "status")
	if code != 0 || !strings.Contains(out, "rollout router-v2: running, step 1 of 2: step 1 of 2: moving") {
		t.Errorf("status: %d\n%s", code, out)
	}
}

// TestDryRunOnEveryChange: drain, undrain and the rollout actions take --dry-run
// like every other change: they read the controller's state, say what would
// change, and call nothing that changes anything.
func TestDryRunOnEveryChange(t *testing.T) {
	changing := map[string]bool{"drain": true, "undrain": true, "rollout pause": true, "rollout resume": true, "rollout abort": true}
	noChange := func(f *fake) {
		t.Helper()
		for _, c := range f.calls {
			if changing[c] {
				t.Errorf("a dry run called %q: %v", c, f.calls)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		// gw2 is announced: draining it would withdraw its path.
		{[]string{"drain", "gw2", "--dry-run"}, 0, []string{"dry run: drain gw2 would withdraw 1 VIP path(s); nothing changed", "withdraw  vpc-router 10.255.0.1/32 via 10.1.0.2"}},
		// gw1 is drained already.
		{[]string{"drain", "gw1", "--dry-run"}, 0, []string{"gateway gw1 is already drained: nothing would change"}},
		{[]string{"undrain", "gw1", "--dry-run"}, 0, []string{"undrain gw1 would announce 1 VIP path(s) again", "announce  vpc-router 10.255.0.1/32 via 10.1.0.1"}},
		{[]string{"undrain", "gw2", "--dry-run"}, 0, []string{"gateway gw2 is not drained: nothing would change"}},
		{[]string{"drain", "gw9", "--dry-run"}, ExitError, []string{`the intent has no gateway "gw9" (gateways: gw1, gw2`}},
	} {
		f := &fake{}
		code, out, stderr := cli(t, f, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out+stderr, w) {
				t.Errorf("%v: output lacks %q:\n%s%s", tc.args, w, out, stderr)
			}
		}
		noChange(f)
	}
	// -o json carries the plan.
	f := &fake{}
	code, out, _ := cli(t, f, "drain", "gw2", "--dry-run", "-o", "json")
	var dp DrainPlan
	if err := json.Unmarshal([]byte(out), &dp); code != 0 || err != nil || !dp.DryRun || !dp.Changes || len(dp.Withdraw) != 1 || dp.Withdraw[0].Gateway != "gw2" {
		t.Errorf("drain --dry-run -o json: %d %v %+v\n%s", code, err, dp, out)
	}
	noChange(f)

	applied := func(state rollout.State, step int) *rollout.Progress {
		p := progress(state, step, "x")
		for i := 0; i < step && i < len(p.Steps); i++ {
			p.Steps[i].State = rollout.StepDone
			p.Steps[i].Rule = p.Steps[i].Step.Rule
		}
		return p
	}
	for _, tc := range []struct {
		act  string
		p    *rollout.Progress
		code int
		want []string
	}{
		{"pause", applied(rollout.StateRunning, 1), 0, []string{"dry run: rollout pause of router-v2 (running) would pause after step 1 of 2 (vm 5001/192.168.1.5)"}},
		{"pause", applied(rollout.StatePaused, 1), 0, []string{"already paused at step 1 of 2"}},
		{"pause", applied(rollout.StateCompleted, 2), ExitRefused, []string{`"router-v2" is completed: only a running rollout pauses`}},
		{"resume", applied(rollout.StatePaused, 1), 0, []string{"would continue after step 1 of 2"}},
		{"resume", progress(rollout.StateFailed, 1, "x"), 0, []string{"would retry the failed step 1 of 2 (vm 5001/192.168.1.5)"}},
		{"resume", applied(rollout.StateRunning, 1), ExitRefused, []string{"only a paused or failed rollout resumes"}},
		{"abort", applied(rollout.StatePaused, 2), 0, []string{"roll back 2 step(s), newest first", "roll back step 2  vni 5001  rule router-v2.5001", "roll back step 1  vm 5001/192.168.1.5"}},
		{"abort", applied(rollout.StateCompleted, 2), ExitRefused, []string{"graygw rollback --rule NAME"}},
	} {
		f := &fake{progress: []*rollout.Progress{tc.p}}
		code, out, stderr := cli(t, f, "rollout", tc.act, "--dry-run")
		if code != tc.code {
			t.Errorf("%s --dry-run (%s): exit %d, want %d: %s", tc.act, tc.p.State, code, tc.code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out+stderr, w) {
				t.Errorf("%s --dry-run (%s): output lacks %q:\n%s%s", tc.act, tc.p.State, w, out, stderr)
			}
		}
		if len(f.calls) != 1 || f.calls[0] != "rollout status" {
			t.Errorf("%s --dry-run: calls %v, want only rollout status", tc.act, f.calls)
		}
	}
	if code, _, stderr := cli(t, &fake{}, "rollout", "abort", "--dry-run", "--wait"); code != ExitUsage {
		t.Errorf("--dry-run --wait: exit %d %s", code, stderr)
	}
	// Every command that changes something has --dry-run.
	root := (&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, ctx: context.Background()}).rootCmd()
	for _, path := range [][]string{{"apply"}, {"cutover"}, {"rollback"}, {"drain"}, {"undrain"},
		{"rollout", "start"}, {"rollout", "pause"}, {"rollout", "resume"}, {"rollout", "abort"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().Lookup("dry-run") == nil {
			t.Errorf("graygw %s has no --dry-run (%v)", strings.Join(path, " "), err)
		}
	}
}

// TestGetKinds: 'graygw get KIND' lists one kind of the intent's objects.
func TestGetKinds(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"get", "vips"}, []string{"NAME", "DEFAULT POOL", "vpc-router", "10.255.0.1", "base-router", "nat", "10.255.0.2"}},
		{[]string{"get", "pools"}, []string{"CLUSTER", "gray-router", "gray", "base-nat", "base-1("}},
		{[]string{"get", "backends"}, []string{"UNDERLAY IP", "base-1", "base-nat,base-router"}},
		{[]string{"get", "tenants"}, []string{"acme", "5001,5002", "globex", "6001"}},
		{[]string{"get", "rules"}, []string{"vm-10.0.0.5", "globex-nat-25pct"}},
		{[]string{"get", "gateways"}, []string{"gw1", "gw2", "P4RUNTIME"}},
	} {
		f := &fake{}
		code, out, stderr := cli(t, f, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d %s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	code, out, _ := cli(t, &fake{}, "get", "tenants", "-o", "json")
	var ts []TenantRow
	if err := json.Unmarshal([]byte(out), &ts); code != 0 || err != nil || len(ts) != 2 || ts[0].Name != "acme" || len(ts[0].VNIs) != 2 {
		t.Errorf("get tenants -o json: %d %v %+v", code, err, ts)
	}
	if code, _, stderr := cli(t, &fake{}, "get", "nodes"); code != ExitUsage || !strings.Contains(stderr, "vips, pools, backends, tenants, rules, gateways") {
		t.Errorf("get nodes: %d %s", code, stderr)
	}
	if code, _, _ := cli(t, &fake{}, "get", "vips", "--rules"); code != ExitUsage {
		t.Errorf("get vips --rules: %d", code)
	}
}
