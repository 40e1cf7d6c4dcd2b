package benchmarks

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/dataplane"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// TestProfileAPICutover calls the API service in process (no gRPC, no lab)
// over an agent on the Memory dataplane holding the full-size intent, and times
// Cutover and Rollback RULE with wait. It is for profiling
// (go test -cpuprofile), gated like the benchmarks.
func TestProfileAPICutover(t *testing.T) {
	benchEnabled(t)
	ctx := context.Background()
	tl := newTimeline()
	a := serveAgent(t, dataplane.NewMemory(dataplane.Limits{}), tl)
	doc := filledDoc(t, Gateway(a.addr), Full)
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "controller.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := stack.StartController(t, stack.Config{Dir: dir, Store: st, Engine: engine.Config{Interval: 10 * time.Minute},
		Service: service.Config{WaitTimeout: change.DefaultWaitTimeout}}).Service
	opts := func() *graygwv1.ChangeOptions { return waitOptions(5 * time.Minute) }
	ar, err := svc.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: string(doc), Options: opts()})
	if err != nil || !ar.GetResult().GetApplied() {
		t.Fatalf("apply: %v %v", err, ar.GetResult())
	}
	for i := range envInt(t, "GRAYGW_BENCH_CUTOVERS_FULL", 3) {
		t0 := time.Now()
		r, err := svc.Cutover(ctx, &graygwv1.CutoverRequest{
			Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: 5001, Src: fmt.Sprintf("192.168.1.%d", 5+i)}},
			Vip:   "bench-vip-00", Pool: "bench-pool-20", Options: opts()})
		if err != nil || !r.GetResult().GetApplied() || r.GetResult().GetWaitError() != "" {
			t.Fatalf("cutover: %v %v", err, r.GetResult())
		}
		cut := time.Since(t0)
		t0 = time.Now()
		rb, err := svc.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: r.GetRule(), Options: opts()})
		if err != nil || !rb.GetResult().GetApplied() || rb.GetResult().GetWaitError() != "" {
			t.Fatalf("rollback: %v %v", err, rb.GetResult())
		}
		t.Logf("trial %d: cutover %v, rollback %v; plan %v", i+1, cut, time.Since(t0), r.GetResult().GetPlans()[0].GetGroups())
	}
}
