package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/store"
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
	sock := filepath.Join(t.TempDir(), "standby.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := sb.NewServer(service.UnixCredentials())
	go gs.Serve(l)
	defer gs.Stop()
	standby := "unix://" + sock

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
// leader with its term.
func TestStatusShowsReplicas(t *testing.T) {
	f := &fake{replicas: []*graygwv1.Replica{{Id: "ctl-b", Address: "10.0.0.2:9443", Leader: true, Term: 17}, {Id: "ctl-a", Address: "10.0.0.1:9443"}}}
	addr, _ := f.serve(t)
	code, out, stderr := api(t, addr, "status")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"CONTROLLER", "ctl-b       10.0.0.2:9443  leader   17", "ctl-a       10.0.0.1:9443  standby  -"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = api(t, addr, "status", "-o", "json")
	if !strings.Contains(out, `"replicas"`) || !strings.Contains(out, `"term": 17`) {
		t.Errorf("status -o json lacks the replicas:\n%s", out)
	}
}
