package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/etcdlab"
)

// TestHARolloutSurvivesLeaderKill: two controller processes with ha: on one
// etcd store, in the namespace lab (real XDP agent, probes through the
// gateway). The leader is SIGKILLed while step 2 of a rollout waits for its
// probes; the other replica is elected, reports the rollout paused at that
// step (the state is in the shared store), and resume completes it: every VM
// is then answered by gray. A stream of datagrams from every VM goes through
// the gateway all along: none is lost, the gateway holds the committed
// version whole after the takeover (read back), each flow is where that
// version sends it, and after the resumed rollout every flow is at gray.
func TestHARolloutSurvivesLeaderKill(t *testing.T) {
	rl := newRolloutLab(t)
	cl := etcdlab.Start(t, 3, false)
	probeCfg, err := os.ReadFile(rl.flag(t, "--config"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ra, rb := startHAPair(t, dir, cl.Endpoints(), cl.Endpoints(), "/ro/", string(probeCfg), rl.flag(t, "--intent"))
	a := ra.proc
	stream := startLabStream(t, rl)
	ctx := context.Background()
	if resp, err := ra.api.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: rl.plan("ha", "3s"), Actor: "test"}); err != nil || resp.GetProgress() == nil {
		t.Fatalf("start: %v %v", resp, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := ra.api.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
		if err == nil && st.GetProgress().GetStep() == 2 && st.GetProgress().GetSteps()[1].GetState() == "probing" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("step 2 never probing: %v %v", st, err)
		}
	}
	killed, atKill := time.Now(), stream.Mark()
	a.cmd.Process.Kill()

	took, _ := waitLeads(t, rb.sock, rb.api, killed, "after the kill")
	atSync := stream.Mark()
	cur, err := rb.api.Get(ctx, &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v := gatewayHolds(t, rl.agent, rb.api, cur.GetVersion()); v != cur.GetVersion() {
		t.Fatalf("the gateway holds version %d after the takeover, the store %d", v, cur.GetVersion())
	}
	// Step 2 (vni 5001) was committed: its flows are at gray, 5002's at base.
	vpcOf := func(i int) string {
		return map[bool]string{true: "gray", false: "base"}[i < 2*len(rl.l.Topo.VPCs[0].VMs)]
	}
	if !stream.WaitLast(atSync, 5*time.Second, vpcOf) {
		t.Fatalf("after the takeover the flows are at %v, want vni 5001 at gray and 5002 at base", stream.Last())
	}
	st, err := rb.api.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := st.GetProgress()
	t.Logf("leader SIGKILLed during step 2: the new leader in sync %s later; rollout %s: %s",
		took.Round(time.Millisecond), p.GetState(), p.GetMessage())
	if p.GetState() != "paused" || p.GetStep() != 2 || !strings.Contains(p.GetMessage(), "step 2 of 4 (vni 5001, probing)") {
		t.Fatalf("rollout on the new leader: %v", p)
	}
	if _, err := rb.api.RolloutResume(ctx, &graygwv1.RolloutActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if last := follow(t, rb.api); last.GetState() != "completed" || last.GetStep() != 4 {
		t.Fatalf("resumed on the new leader: %v", last)
	}
	done := stream.Mark()
	if !stream.WaitLast(done, 5*time.Second, func(int) string { return "gray" }) {
		t.Fatalf("after the resumed rollout the flows are at %v, want gray", stream.Last())
	}
	r := stopLabStream(t, stream, "rollout with its leader SIGKILLed in step 2")
	t.Logf("%d datagrams sent from the kill to the new leader in sync, %d of them lost", atSync-atKill, r.LostBetween(atKill, atSync))
	pr, err := rb.api.Probe(ctx, &graygwv1.ProbeRequest{PlanYaml: rl.plan("ha", "0s")})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range pr.GetResults() {
		if res.GetStatus() != "ok" || res.GetTarget().GetExpectPool() != probetest.GrayPool || res.GetAnswers()[0].GetBackend() != "gray-1" {
			t.Fatalf("after the resumed rollout: %v", res)
		}
	}
}
