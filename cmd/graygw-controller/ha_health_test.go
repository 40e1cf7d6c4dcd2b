package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// TestHAStatusShowsEachReplicasHealth: two controller processes on a 3-member
// etcd; the leader's status shows each replica's own health: its API
// answering, the store's latency, the intent version it holds (the warm
// follower's from its store watch, following a change) and its gateway
// streams (the leader's primary, the follower's standby). A follower whose
// API socket is gone is reported so while its lease keeps it listed.
func TestHAStatusShowsEachReplicasHealth(t *testing.T) {
	_, _, ra, rb := startHAPairOnEtcd(t, "/health/")

	// waitHealth polls a's status until ok holds for both replicas' health.
	waitHealth := func(what string, ok func(a, b *graygwv1.ReplicaHealth) bool) (a, b *graygwv1.ReplicaHealth) {
		t.Helper()
		var last []*graygwv1.Replica
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			st, err := ra.api.Status(context.Background(), &graygwv1.StatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			last = st.GetReplicas()
			if len(last) == 2 && last[0].GetId() == "a" && last[1].GetId() == "b" && last[0].GetHealth() != nil && last[1].GetHealth() != nil &&
				ok(last[0].GetHealth(), last[1].GetHealth()) {
				return last[0].GetHealth(), last[1].GetHealth()
			}
		}
		t.Fatalf("%s: replicas in a's status: %v", what, last)
		return nil, nil
	}
	healthy := func(h *graygwv1.ReplicaHealth, version uint64) bool {
		return h.GetApiServing() && h.GetStoreError() == "" && h.GetStoreLatency().AsDuration() > 0 &&
			h.GetVersion() == version && h.GetStoreVersion() == version && h.GetGateways() == 1 && h.GetStreamsUp() == 1 &&
			time.Since(h.GetReported().AsTime()) < 3*time.Second
	}
	ha, hb := waitHealth("both healthy", func(a, b *graygwv1.ReplicaHealth) bool {
		return healthy(a, 1) && a.GetStreamsPrimary() == 1 && healthy(b, 1) && b.GetStreamsStandby() == 1 && b.GetStandby() == "warm"
	})
	t.Logf("leader a: store %s, version %d, streams %d primary; follower b: store %s, version %d, streams %d standby",
		ha.GetStoreLatency().AsDuration(), ha.GetVersion(), ha.GetStreamsPrimary(), hb.GetStoreLatency().AsDuration(), hb.GetVersion(), hb.GetStreamsStandby())

	// A change: the follower holds it from its watch.
	cur, err := ra.api.Get(context.Background(), &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ra.api.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: cur.GetIntentYaml() + "\n# v2\n",
		Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}}); err != nil {
		t.Fatal(err)
	}
	waitHealth("version 2 on both", func(a, b *graygwv1.ReplicaHealth) bool { return healthy(a, 2) && healthy(b, 2) })

	// b's API socket removed: b reports its API down, the rest unchanged.
	if err := os.Remove(rb.sock); err != nil {
		t.Fatal(err)
	}
	_, hb = waitHealth("b's API down", func(a, b *graygwv1.ReplicaHealth) bool {
		return healthy(a, 2) && !b.GetApiServing() && strings.Contains(b.GetApiError(), rb.sock) && b.GetStreamsStandby() == 1
	})
	t.Logf("b with its socket removed: api_error %q", hb.GetApiError())
}
