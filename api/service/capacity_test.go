package service_test

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// startSmallAgent serves an agent whose P4Info says gray_rules holds rules
// entries, already running it under the engine's cookie (a target provisioned
// with a smaller build): the engine learns the size from it.
func startSmallAgent(t *testing.T, rules int64) string {
	t.Helper()
	info := stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: rules})
	a := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{P4Info: info}})
	stack.Provision(t, a.Addr, info)
	return a.Addr
}

// A cutover the gateway's gray_rules cannot hold is refused before it is
// stored (ResourceExhausted, naming the table, the sizes and what to do), as a
// dry run or not; the gateway keeps its entries.
func TestCutoverOverflowingAGatewayIsRefused(t *testing.T) {
	addr := startSmallAgent(t, 1)
	c := startController(t)
	mustApply(t, c, intentYAML(addr), "alice") // one rule: fits
	want := "gray_rules: intent needs 2 entries, gateway gw1 holds 1 (its P4Info size); remove rules or use a larger build"
	for _, dry := range []bool{true, false} {
		o := opts("bob")
		o.DryRun = dry
		_, err := c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "10.0.0.6"}},
			Pool: "gray", Options: o})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), want) {
			t.Fatalf("dry run %v: err %v, want ResourceExhausted %q", dry, err, want)
		}
	}
	if got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); got.GetVersion() != 1 {
		t.Fatalf("a refused cutover stored version %d", got.GetVersion())
	}
	// Diff reports it in the plan's note.
	resp, err := c.Client.Diff(ctx(t), &graygwv1.DiffRequest{IntentYaml: intentYAML(addr) +
		"  - name: vm-10.0.0.6\n    match: {vip: vpc, vni: 5001, src: 10.0.0.6}\n    pool: gray\n"})
	if err != nil || len(resp.GetPlans()) != 1 || !strings.Contains(resp.GetPlans()[0].GetNote(), want) {
		t.Fatalf("diff: %v %v", resp, err)
	}
}

// A gateway whose agent is not running has taught the controller no sizes: a
// change is checked against the P4Info configured for it (p4runtime.p4info_files)
// and refused before it is stored, the message saying where the size is from.
func TestChangeOverflowingAnUnreachedGatewayIsRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there
	small := stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: 1})
	c := startControllerWith(t, ctlOpts{p4infoFor: func(gw string) *p4info.Info {
		if gw == "gw1" {
			return small
		}
		return nil
	}})
	o := opts("alice")
	o.Wait = false
	if _, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(addr), Options: o}); err != nil {
		t.Fatalf("one rule fits: %v", err)
	}
	want := "gray_rules: intent needs 2 entries, gateway gw1 holds 1 (the size in its configured P4Info; gateway not reached yet); remove rules or use a larger build"
	for _, dry := range []bool{true, false} {
		o := opts("bob")
		o.DryRun, o.Wait = dry, false
		_, err := c.Client.Cutover(ctx(t), &graygwv1.CutoverRequest{Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: "10.0.0.6"}},
			Pool: "gray", Options: o})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), want) {
			t.Fatalf("cutover, dry run %v: err %v, want ResourceExhausted %q", dry, err, want)
		}
		_, err = c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(addr) +
			"  - name: vm-10.0.0.6\n    match: {vip: vpc, vni: 5001, src: 10.0.0.6}\n    pool: gray\n", Options: o})
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), want) {
			t.Fatalf("apply, dry run %v: err %v, want ResourceExhausted %q", dry, err, want)
		}
	}
	if got, _ := c.Client.Get(ctx(t), &graygwv1.GetRequest{}); got.GetVersion() != 1 {
		t.Fatalf("a refused change stored version %d", got.GetVersion())
	}
	for _, st := range c.Engine.Status() {
		if st.InSync {
			t.Fatalf("gateway %s reached: %+v", st.Name, st)
		}
	}
}
