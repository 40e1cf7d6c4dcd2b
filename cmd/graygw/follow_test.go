package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// TestFollowsTheLeader: a change sent to a standby controller replica is
// refused naming the leader, and the CLI sends it to the leader; a read is
// answered by the standby itself from the shared store.
func TestFollowsTheLeader(t *testing.T) {
	leaderAPI, leaderAddr := startAPI(t)
	st := store.NewMemory()
	if _, _, err := st.Commit(context.Background(), store.Change{Intent: []byte("version: 1\n# from the standby's store\n"), Actor: "dora-from-the-store", Operation: "apply"}); err != nil {
		t.Fatal(err)
	}
	nobody := false
	sb := service.NewStandby(st, func(context.Context) (string, uint64, string, bool) {
		if nobody {
			return "", 0, "", false
		}
		return "ctl-b", 7, leaderAddr, true
	}, nil)
	standby := "unix://" + stack.ServeStandby(t, sb)

	file := "../../docs/examples/intent.yaml"
	code, out, stderr := api(t, standby, "apply", "-f", file, "--actor", "carol")
	if code != 0 {
		t.Fatalf("apply through the standby: exit %d: %s %s", code, out, stderr)
	}
	if r, ok := leaderAPI.lastReq().(*graygwv1.ApplyRequest); !ok || r.GetOptions().GetActor() != "carol" {
		t.Fatalf("the leader got %v, want the apply", leaderAPI.lastReq())
	}

	code, out, _ = api(t, standby, "history")
	if code != 0 || !strings.Contains(out, "dora-from-the-store") {
		t.Fatalf("history from the standby: exit %d: %s", code, out)
	}

	nobody = true
	code, _, stderr = api(t, standby, "apply", "-f", file)
	if code == 0 || !strings.Contains(stderr, "no replica leads right now") {
		t.Fatalf("apply while nobody leads: exit %d: %s", code, stderr)
	}
}

// TestStatusShowsReplicas: graygw status lists the controller replicas, the
// leader with its term, and each replica's own health: its API, the store's
// latency, the version it holds against the store's, its gateway streams.
func TestStatusShowsReplicas(t *testing.T) {
	now := timestamppb.Now()
	f := &fake{replicas: []*graygwv1.Replica{
		{Id: "ctl-b", Address: "10.0.0.2:9443", Leader: true, Term: 17, Health: &graygwv1.ReplicaHealth{Reported: now, Standby: "warm",
			ApiServing: true, StoreLatency: durationpb.New(1200 * time.Microsecond), Version: 5, StoreVersion: 5, Gateways: 2, StreamsUp: 2, StreamsPrimary: 2}},
		{Id: "ctl-a", Address: "10.0.0.1:9443", Health: &graygwv1.ReplicaHealth{Reported: now, Standby: "warm",
			ApiError: "unix socket /run/graygw/a.sock: connection refused", StoreLatency: durationpb.New(3 * time.Millisecond),
			Version: 4, StoreVersion: 5, Gateways: 2, StreamsUp: 1, StreamsStandby: 1}},
		{Id: "ctl-c", Address: "10.0.0.3:9443"}}}
	addr, _ := f.serve(t)
	code, out, stderr := api(t, addr, "status")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"CONTROLLER", "API", "STORE", "STREAMS",
		"ctl-b       10.0.0.2:9443  leader          17    ok", "1.2ms", "2/2 primary",
		"ctl-a       10.0.0.1:9443  standby (warm)  -     down (connection refused)", "4 (store 5)", "1/2 standby",
		"ctl-c       10.0.0.3:9443  standby         -     -", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = api(t, addr, "status", "-o", "json")
	for _, want := range []string{`"replicas"`, `"term": 17`, `"api_serving": true`, `"store_latency": "1.2ms"`, `"streams_standby": 1`,
		`"store_version": 5`, `"api_error": "unix socket /run/graygw/a.sock: connection refused"`} {
		if !strings.Contains(out, want) {
			t.Errorf("status -o json lacks %s:\n%s", want, out)
		}
	}
}

// TestStreamsFollowTheLeader: a stream (rollout status --follow watches the
// rollout) sent to a standby replica is refused at its first message naming
// the leader, and the CLI opens it again at the leader, as it does unary calls.
func TestStreamsFollowTheLeader(t *testing.T) {
	leader := &fake{progress: []*rollout.Progress{progress(rollout.StateRunning, 1, "step 1 of 2"), progress(rollout.StateCompleted, 2, "completed")}}
	leaderAddr, _ := leader.serve(t)
	sb := service.NewStandby(store.NewMemory(), func(context.Context) (string, uint64, string, bool) {
		return "ctl-b", 7, leaderAddr, true
	}, nil)
	code, out, stderr := api(t, "unix://"+stack.ServeStandby(t, sb), "rollout", "status", "--follow")
	if code != 0 || !strings.Contains(out, "completed") {
		t.Fatalf("rollout status --follow through the standby: exit %d:\n%s\n%s", code, out, stderr)
	}
	if got := strings.Join(leader.calls, ","); got != "rollout status,rollout watch" {
		t.Fatalf("the leader got %s, want the status and the watch", got)
	}
}
