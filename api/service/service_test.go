package service_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/internal/testpki"
	"github.com/graygw/graygw/pipeline"
)

func mustApply(t *testing.T, c *controller, doc, actor string) *graygwv1.ChangeResult {
	t.Helper()
	resp, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: doc, Options: opts(actor)})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetResult()
	if len(r.GetProblems()) > 0 || !r.GetApplied() || r.GetWaitError() != "" {
		t.Fatalf("apply: %v", r)
	}
	return r
}

func TestApplyRefusesAnInvalidIntentAndStoresNothing(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	bad := strings.Replace(intentYAML(addr), "pool: gray\n", "pool: nowhere\n", 1)
	bad = strings.Replace(bad, "address: 10.255.0.1", "address: 10.255.0.300", 1)
	resp, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: bad, Options: opts("alice")})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetResult()
	if r.GetApplied() || len(r.GetProblems()) != 2 {
		t.Fatalf("result %v", r)
	}
	got := map[string]string{}
	for _, p := range r.GetProblems() {
		got[p.GetPath()] = p.GetClass()
	}
	if got["vips[0].address"] != "address" || got["gray_rules[0].pool"] != "unknown_ref" {
		t.Fatalf("problems %v", r.GetProblems())
	}
	if _, err := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); status.Code(err) != codes.NotFound {
		t.Fatalf("Get after a refused apply: %v", err)
	}
	h, _ := c.Client.History(ctx(t), &graygwv1.HistoryRequest{})
	if len(h.GetEvents()) != 0 {
		t.Fatalf("history after a refused apply: %v", h)
	}
	if st := c.Engine.Status(); len(st) != 0 {
		t.Fatalf("a refused intent is managed: %+v", st)
	}
	// An empty document is refused too.
	resp, _ = c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{})
	if p := resp.GetResult().GetProblems(); len(p) != 1 || p[0].GetPath() != "intent_yaml" {
		t.Fatalf("empty apply: %v", resp)
	}
}

func TestApplyStoresHistoryAndBringsTheGatewayInSync(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	doc := intentYAML(addr)
	r := mustApply(t, c, doc, "alice")
	if r.GetVersion() != 1 || r.GetHistorySeq() != 1 || len(r.GetGateways()) != 1 || !r.GetGateways()[0].GetInSync() {
		t.Fatalf("result %v", r)
	}
	if p := r.GetPlans(); len(p) != 1 || p[0].GetInserts() == 0 || p[0].GetDeletes() != 0 {
		t.Fatalf("plans %v", p)
	}
	g := r.GetGateways()[0]
	if g.GetEntriesWritten() != uint64(r.GetPlans()[0].GetInserts()) || g.GetEntries() != g.GetEntriesWritten() {
		t.Fatalf("gateway wrote %d of a plan of %d inserts: %v", g.GetEntriesWritten(), r.GetPlans()[0].GetInserts(), g)
	}
	got, err := c.Client.Get(ctx(t), &graygwv1.GetRequest{})
	if err != nil || got.GetIntentYaml() != doc || got.GetVersion() != 1 {
		t.Fatalf("Get = %v, %v", got, err)
	}
	h, err := c.Client.History(ctx(t), &graygwv1.HistoryRequest{})
	if err != nil || len(h.GetEvents()) != 1 {
		t.Fatalf("History = %v, %v", h, err)
	}
	ev := h.GetEvents()[0]
	wantActor := fmt.Sprintf("alice (uid=%d)", os.Getuid())
	if ev.GetActor() != wantActor || ev.GetOperation() != change.OpApply || ev.GetBefore() != 0 || ev.GetAfter() != 1 ||
		!strings.HasPrefix(ev.GetSummary(), "first intent") {
		t.Fatalf("event %v, want actor %q", ev, wantActor)
	}

	// The same document again: nothing stored.
	resp, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: doc, Options: opts("alice")})
	if err != nil || !resp.GetResult().GetUnchanged() || resp.GetResult().GetApplied() || resp.GetResult().GetVersion() != 1 {
		t.Fatalf("re-apply: %v, %v", resp, err)
	}
	// A stale expected_version is refused.
	_, err = c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: doc + "\n", Options: &graygwv1.ChangeOptions{ExpectedVersion: 7}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("stale expected_version: %v", err)
	}
}

func TestDryRunAndDiffChangeNothing(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	doc := intentYAML(addr)
	resp, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: doc, Options: &graygwv1.ChangeOptions{DryRun: true}})
	if err != nil || resp.GetResult().GetApplied() || len(resp.GetResult().GetPlans()) != 1 {
		t.Fatalf("dry run: %v, %v", resp, err)
	}
	if p := resp.GetResult().GetPlans()[0]; p.GetReachable() || !strings.Contains(p.GetNote(), "not managed yet") {
		t.Fatalf("dry-run plan of a gateway not managed yet: %v", p)
	}
	if _, err := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); status.Code(err) != codes.NotFound {
		t.Fatalf("a dry run stored the intent: %v", err)
	}
	mustApply(t, c, doc, "alice")

	// Diff of the current intent: no drift.
	d, err := c.Client.Diff(ctx(t), &graygwv1.DiffRequest{})
	if err != nil || len(d.GetPlans()) != 1 || d.GetBaseVersion() != 1 {
		t.Fatalf("Diff = %v, %v", d, err)
	}
	if p := d.GetPlans()[0]; !p.GetReachable() || p.GetInserts()+p.GetModifies()+p.GetDeletes() != 0 {
		t.Fatalf("drift right after apply: %v", p)
	}
	// Diff of a changed document: the rule removed, never applied.
	noRule := doc[:strings.Index(doc, "gray_rules:")]
	d, err = c.Client.Diff(ctx(t), &graygwv1.DiffRequest{IntentYaml: noRule})
	if err != nil {
		t.Fatal(err)
	}
	p := d.GetPlans()[0]
	if p.GetDeletes() != 1 || p.GetInserts() != 0 || d.GetSummary() != "rules -vm-10.0.0.5" {
		t.Fatalf("Diff plan %v summary %q", p, d.GetSummary())
	}
	if g := p.GetGroups(); len(g) != 1 || g[0].GetOrigin() != "rule vm-10.0.0.5" || g[0].GetOp() != "DELETE" {
		t.Fatalf("groups %v", g)
	}
	if got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); got.GetVersion() != 1 {
		t.Fatalf("Diff changed the version to %d", got.GetVersion())
	}
	// A broken document gets problems.
	d, err = c.Client.Diff(ctx(t), &graygwv1.DiffRequest{IntentYaml: "version: 1\ncolour: blue\n"})
	if err != nil || len(d.GetProblems()) == 0 || len(d.GetPlans()) != 0 {
		t.Fatalf("Diff of a broken document: %v, %v", d, err)
	}
}

func vni(st *graygwv1.StatusResponse, n uint32) *graygwv1.VNIStatus {
	for _, v := range st.GetVnis() {
		if v.GetVni() == n {
			return v
		}
	}
	return nil
}

func TestCutoverEveryScope(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	mustApply(t, c, intentYAML(addr), "alice")

	st, _ := c.Client.Status(ctx(t), &graygwv1.StatusRequest{})
	if v := vni(st, 5001); v.GetState() != graygwv1.GrayState_PARTLY_GRAY || fmt.Sprint(v.GetVips()[0].GetGrayVms()) != "[10.0.0.5]" {
		t.Fatalf("VNI 5001 before: %v", v)
	}
	if v := vni(st, 5002); v.GetState() != graygwv1.GrayState_BASE {
		t.Fatalf("VNI 5002 before: %v", v)
	}

	for _, tc := range []struct {
		req  *graygwv1.CutoverRequest
		rule string
	}{
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "10.0.0.9"}}, Pool: "gray"}, "vm-5001-10.0.0.9"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5002}}, Pool: "gray", Vip: "vpc"}, "vpc.vni-5002"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Prefix{Prefix: &graygwv1.PrefixScope{Vni: ptr(uint32(5001)), Src: "10.0.1.0/24"}}, Pool: "gray"}, "prefix-5001-10.0.1.0-24"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Flow{Flow: &graygwv1.FlowScope{Vni: ptr(uint32(5001)), Src: "10.0.0.5", Dst: "192.168.1.1", Proto: "tcp", Sport: 33001, Dport: 22}}, Pool: "base"}, "flow-5001-10.0.0.5-192.168.1.1-tcp-33001-22"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: 5003, Percent: 10}}, Pool: "gray", Vip: "vpc"}, "vpc.pct-5003"},
	} {
		tc.req.Options = opts("bob")
		resp, err := c.Client.Cutover(ctx(t), tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.GetResult(); !r.GetApplied() || len(r.GetProblems()) > 0 || r.GetWaitError() != "" || resp.GetRule() != tc.rule || resp.GetReplaced() {
			t.Fatalf("cutover %v: rule %q, result %v", tc.req.GetScope(), resp.GetRule(), r)
		}
	}
	st, _ = c.Client.Status(ctx(t), &graygwv1.StatusRequest{})
	v5001 := vni(st, 5001)
	if v5001.GetState() != graygwv1.GrayState_PARTLY_GRAY || fmt.Sprint(v5001.GetVips()[0].GetGrayVms()) != "[10.0.0.5 10.0.0.9]" {
		t.Fatalf("VNI 5001 after: %v", v5001)
	}
	if v := vni(st, 5002); v.GetState() != graygwv1.GrayState_FULLY_GRAY {
		t.Fatalf("VNI 5002 after: %v", v)
	}
	if v := vni(st, 5003); v.GetState() != graygwv1.GrayState_PARTLY_GRAY || v.GetVips()[0].GetSelectors()[0].GetKind() != "percent" {
		t.Fatalf("VNI 5003 after: %v", v)
	}
	if g := st.GetGateways()[0]; !g.GetInSync() || g.GetVersion() != 6 || !g.GetPrimary() {
		t.Fatalf("gateway %v", g)
	}

	// Raising the percentage updates the rule in place: its two entries (a
	// rule without an address is in gray_rules and gray_rules_v6).
	resp, err := c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: 5003, Percent: 50}},
		Pool: "gray", Vip: "vpc", Options: opts("bob")})
	if err != nil || !resp.GetReplaced() || !resp.GetResult().GetApplied() {
		t.Fatalf("raise percent: %v, %v", resp, err)
	}
	if p := resp.GetResult().GetPlans()[0]; p.GetModifies() != 2 || p.GetInserts()+p.GetDeletes() != 0 {
		t.Fatalf("raising a percentage should modify the rule's two entries: %v", p)
	}
	// The same cutover again changes nothing.
	resp, err = c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: 5003, Percent: 50}},
		Pool: "gray", Vip: "vpc", Options: opts("bob")})
	if err != nil || !resp.GetResult().GetUnchanged() || resp.GetResult().GetApplied() {
		t.Fatalf("repeat cutover: %v, %v", resp, err)
	}

	// The operator's comments survive the edits.
	got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{})
	for _, comment := range []string{"# graygw test intent", "# the agent under test", "# the first VM moved"} {
		if !strings.Contains(got.GetIntentYaml(), comment) {
			t.Fatalf("comment %q lost:\n%s", comment, got.GetIntentYaml())
		}
	}
	h, _ := c.Client.History(ctx(t), &graygwv1.HistoryRequest{Limit: 1})
	if ev := h.GetEvents()[0]; ev.GetOperation() != change.OpCutover || !strings.HasPrefix(ev.GetActor(), "bob") ||
		ev.GetSummary() != "cutover VNI 5003 to VIP vpc (50% of its VMs) to pool gray (rule vpc.pct-5003 updated)" {
		t.Fatalf("event %v", ev)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCutoverRefusals(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	resp, err := c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5002}}, Pool: "gray"})
	if err != nil || len(resp.GetResult().GetProblems()) != 1 {
		t.Fatalf("cutover without an intent: %v, %v", resp, err)
	}
	mustApply(t, c, intentYAML(addr), "alice")
	for _, tc := range []struct {
		req        *graygwv1.CutoverRequest
		path, clss string
	}{
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5002}}, Pool: "nowhere"}, "cutover.pool", "unknown_ref"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 1 << 24}}, Pool: "gray"}, "cutover.match.vni", "range"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "10.0.0"}}, Pool: "gray"}, "cutover.vm.src", "request"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: 5001, Percent: 150}}, Pool: "gray"}, "cutover.percent.percent", "request"},
		{&graygwv1.CutoverRequest{Pool: "gray"}, "cutover.scope", "request"},
		{&graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5002}}, Pool: "gray", Rule: "vm-10.0.0.5"}, "cutover.rule", "duplicate"},
	} {
		tc.req.Options = opts("bob")
		resp, err := c.Client.Cutover(ctx(t), tc.req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetResult()
		if r.GetApplied() || len(r.GetProblems()) == 0 || r.GetProblems()[0].GetPath() != tc.path || r.GetProblems()[0].GetClass() != tc.clss {
			t.Errorf("cutover %v: want problem %s (%s), got %v", tc.req, tc.path, tc.clss, r.GetProblems())
		}
	}
	if got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); got.GetVersion() != 1 {
		t.Fatalf("a refused cutover stored version %d", got.GetVersion())
	}
}

func TestRollbackStepAndAll(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	doc := intentYAML(addr)
	mustApply(t, c, doc, "alice") // v1
	cut := func(n uint32) {
		t.Helper()
		resp, err := c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: fmt.Sprintf("10.0.0.%d", n)}},
			Pool: "gray", Options: opts("bob")})
		if err != nil || !resp.GetResult().GetApplied() {
			t.Fatalf("cutover: %v, %v", resp, err)
		}
	}
	cut(20) // v2, event 2
	cut(21) // v3, event 3
	rules := func() string {
		got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{})
		var names []string
		for _, l := range strings.Split(got.GetIntentYaml(), "\n") {
			if n, ok := strings.CutPrefix(strings.TrimSpace(l), "- name: vm-"); ok {
				names = append(names, n)
			}
		}
		return strings.Join(names, ",")
	}
	step := func() *graygwv1.RollbackResponse {
		t.Helper()
		resp, err := c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_STEP, Options: opts("carol")})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := step(); r.GetUndone() != 3 || !r.GetResult().GetApplied() || rules() != "10.0.0.5,5001-10.0.0.20" {
		t.Fatalf("first step undid %d, rules %s: %v", r.GetUndone(), rules(), r)
	}
	if r := step(); r.GetUndone() != 2 || rules() != "10.0.0.5" {
		t.Fatalf("second step undid %d, rules %s", r.GetUndone(), rules())
	}
	if got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); got.GetIntentYaml() != doc || got.GetVersion() != 5 {
		t.Fatalf("after two steps: version %d, document differs from v1: %v", got.GetVersion(), got.GetIntentYaml() != doc)
	}
	// The first intent cannot be undone.
	if r := step(); r.GetResult().GetApplied() || len(r.GetResult().GetProblems()) != 1 || r.GetResult().GetProblems()[0].GetClass() != change.ClassNothing {
		t.Fatalf("third step: %v", r)
	}

	// ALL removes every rule, and a STEP brings them back.
	resp, err := c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_ALL, Options: opts("carol")})
	if err != nil || !resp.GetResult().GetApplied() || fmt.Sprint(resp.GetRemovedRules()) != "[vm-10.0.0.5]" || rules() != "" {
		t.Fatalf("rollback all: %v, %v (rules %s)", resp, err, rules())
	}
	if g := resp.GetResult().GetGateways()[0]; !g.GetInSync() {
		t.Fatalf("gateway after rollback all: %v", g)
	}
	st, _ := c.Client.Status(ctx(t), &graygwv1.StatusRequest{})
	for _, v := range st.GetVnis() {
		if v.GetState() != graygwv1.GrayState_BASE {
			t.Fatalf("VNI %d is %v after rollback all", v.GetVni(), v.GetState())
		}
	}
	resp, _ = c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_ALL, Options: opts("carol")})
	if !resp.GetResult().GetUnchanged() {
		t.Fatalf("second rollback all: %v", resp)
	}
	if r := step(); r.GetUndone() != 6 || rules() != "10.0.0.5" {
		t.Fatalf("step after all undid %d, rules %s", r.GetUndone(), rules())
	}
	h, _ := c.Client.History(ctx(t), &graygwv1.HistoryRequest{})
	var ops []string
	for _, ev := range h.GetEvents() {
		ops = append(ops, fmt.Sprintf("%d:%s:%d", ev.GetSeq(), ev.GetOperation(), ev.GetUndoes()))
	}
	if got := strings.Join(ops, " "); got != "7:rollback:6 6:rollback-all:0 5:rollback:2 4:rollback:3 3:cutover:0 2:cutover:0 1:apply:0" {
		t.Fatalf("history %s", got)
	}
	if r, err := c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{}); err != nil || len(r.GetResult().GetProblems()) != 1 {
		t.Fatalf("rollback without a mode: %v, %v", r, err)
	}

	// RULE removes one rule, whenever it was added.
	cut(30)
	cut(31)
	resp, err = c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: "vm-5001-10.0.0.30", Options: opts("carol")})
	if err != nil || !resp.GetResult().GetApplied() || fmt.Sprint(resp.GetRemovedRules()) != "[vm-5001-10.0.0.30]" || rules() != "10.0.0.5,5001-10.0.0.31" {
		t.Fatalf("rollback rule: %v, %v (rules %s)", resp, err, rules())
	}
	if p := resp.GetResult().GetPlans()[0]; p.GetDeletes() != 1 || p.GetInserts()+p.GetModifies() != 0 {
		t.Fatalf("removing one rule should delete one entry: %v", p)
	}
	resp, err = c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: "nope", Options: opts("carol")})
	if err != nil || resp.GetResult().GetApplied() || resp.GetResult().GetProblems()[0].GetPath() != "rollback.rule" {
		t.Fatalf("rollback of an unknown rule: %v, %v", resp, err)
	}
}

func TestCountersThroughTheAPI(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	mustApply(t, c, intentYAML(addr), "alice")
	resp, err := c.Client.Counters(ctx(t), &graygwv1.CountersRequest{})
	if err != nil || len(resp.GetGateways()) != 1 {
		t.Fatalf("Counters = %v, %v", resp, err)
	}
	g := resp.GetGateways()[0]
	if g.GetError() != "" || len(g.GetRules()) != 1 || g.GetRules()[0].GetName() != "vm-10.0.0.5" || len(g.GetPools()) != 2 ||
		len(g.GetBackends()) != 3 || len(g.GetDrops()) != pipeline.NumReasons-1 {
		t.Fatalf("counters %v", g)
	}
	if _, err := c.Client.Counters(ctx(t), &graygwv1.CountersRequest{Gateway: "gw9"}); status.Code(err) != codes.NotFound {
		t.Fatalf("counters of an unknown gateway: %v", err)
	}
}

func TestDrainRefusesChangesKeepsReads(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	mustApply(t, c, intentYAML(addr), "alice")
	c.Service.Drain()
	_, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(addr) + "\n"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Apply while draining: %v", err)
	}
	_, err = c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: 5002}}, Pool: "gray"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Cutover while draining: %v", err)
	}
	st, err := c.Client.Status(ctx(t), &graygwv1.StatusRequest{})
	if err != nil || !st.GetDraining() || st.GetVersion() != 1 {
		t.Fatalf("Status while draining: %v, %v", st, err)
	}
}

func TestRestartedControllerResumesTheStoredIntent(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	// Seed applies only to an empty store.
	applied, err := c.Service.Seed(ctx(t), []byte(intentYAML(addr)), "graygw-controller --intent")
	if err != nil || !applied {
		t.Fatalf("Seed = %v, %v", applied, err)
	}
	applied, err = c.Service.Seed(ctx(t), []byte("version: 1\n"), "graygw-controller --intent")
	if err != nil || applied {
		t.Fatalf("second Seed = %v, %v", applied, err)
	}
	if _, err := c.Engine.WaitVersion(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Service.Seed(ctx(t), []byte("version: 1\n"), "x"); err != nil {
		t.Fatal(err)
	}
	h, _ := c.Client.History(ctx(t), &graygwv1.HistoryRequest{})
	if len(h.GetEvents()) != 1 || h.GetEvents()[0].GetOperation() != change.OpSeed || h.GetEvents()[0].GetActor() != "graygw-controller --intent" {
		t.Fatalf("history %v", h)
	}
}

func TestSocketInUseIsRefused(t *testing.T) {
	c := startController(t)
	if _, err := service.ListenUnix(c.Socket); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	stale := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = service.ListenUnix(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l.Close()
}

// --- mutual TLS ---------------------------------------------------------------

func TestTCPNeedsAClientCertificate(t *testing.T) {
	addr, _ := startAgent(t)
	c := startController(t)
	p := testpki.New(t, t.TempDir())
	cert, key := p.Issue(t, "controller", x509.ExtKeyUsageServerAuth)
	cfg, err := service.ServerTLS(cert, key, p.File)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.ServerTLS(cert, key, ""); err == nil {
		t.Fatal("TLS without a client CA accepted")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := c.Service.NewServer(credentials.NewTLS(cfg))
	go gs.Serve(lis)
	defer gs.Stop()

	dial := func(certs []tls.Certificate) graygwv1.ControllerClient {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: p.Pool, Certificates: certs, ServerName: "127.0.0.1"})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return graygwv1.NewControllerClient(conn)
	}
	// No client certificate: refused at the handshake.
	short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := dial(nil).Status(short, &graygwv1.StatusRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call without a client certificate: %v", err)
	}
	// A client certificate from the CA: accepted, and the change is recorded with
	// the certificate's name.
	cl := dial([]tls.Certificate{p.Cert(t, "ops-cli", x509.ExtKeyUsageClientAuth)})
	resp, err := cl.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(addr), Options: opts("dave")})
	if err != nil || !resp.GetResult().GetApplied() {
		t.Fatalf("Apply over mTLS: %v, %v", resp, err)
	}
	h, _ := cl.History(ctx(t), &graygwv1.HistoryRequest{})
	if a := h.GetEvents()[0].GetActor(); a != "dave (cn=ops-cli)" {
		t.Fatalf("actor %q", a)
	}
}
