package e2e

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/engine"
)

// TestWarmStandbyTakeoverUnderTraffic: an HA follower's warm standby on the
// real targets (the XDP program, and BMv2 when present), with a stream of
// datagrams through the gateway. The leader's engine (election id high 3)
// brings the gateway to a version whose pool table only the store's saved
// tables explain; a standby engine over the same store holds a standby
// session and the intent compiled. The leader's sessions end (a dead leader):
// the standby writes nothing even with no primary left (BMv2 may make the
// highest backup primary on its own). Lead raises its id on the open session:
// it is in sync having written nothing and pushed no pipeline, the gateway's
// tables are unchanged, and no datagram is lost or duplicated.
func TestWarmStandbyTakeoverUnderTraffic(t *testing.T) {
	forEachTarget(t, testWarmStandbyTakeoverUnderTraffic)
}

func testWarmStandbyTakeoverUnderTraffic(t *testing.T, tg target) {
	tl := newLab(t, "gge2w", tg)
	st := openStore(t, filepath.Join(t.TempDir(), "controller.db"))
	defer st.Close()
	lead := tl.newEngineWith(t, st, func(c *engine.Config) { c.ElectionIDHigh = 3 })
	apply(t, lead, tl.load(t, []int{11, 12, 13}), 1)
	in2 := tl.load(t, []int{11, 12, 13, 14})
	apply(t, lead, in2, 2)
	before, fs, want := tl.predictFlows(t, 8)

	sb := tl.newEngineWith(t, st, func(c *engine.Config) { c.Standby, c.ElectionID = true, 99 })
	if err := sb.ReloadSaved(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := sb.Prepare(in2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Commit(p, 2); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := sb.Status(); len(s) == 1 && s[0].Connected && s[0].Standby {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no standby session: %+v", sb.Status())
		}
	}

	next, stopStream := tl.startStream(t, fs)
	defer stopStream()
	time.Sleep(300 * time.Millisecond)
	u0, p0 := tl.agent.updates.Load(), tl.agent.pipelines.Load()
	seqDead := next.Load()
	if err := lead.Close(context.Background()); err != nil { // the leader dies: its sessions end
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if s := sb.Status()[0]; s.Reconciles != 0 || s.EntriesWritten != 0 {
		t.Fatalf("the standby acted with no leader: %+v", s)
	}
	if u, p := tl.agent.updates.Load()-u0, tl.agent.pipelines.Load()-p0; u != 0 || p != 0 {
		t.Fatalf("the gateway served %d updates and %d pipeline pushes with no leader", u, p)
	}

	elected := time.Now()
	sb.Lead(4, 10)
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sts, err := sb.WaitVersion(c, 2)
	if err != nil {
		t.Fatalf("%v; status %+v", err, sts)
	}
	took := time.Since(elected)
	s := sts[0]
	seqSynced := next.Load()
	if !s.Primary || s.Standby || s.EntriesWritten != 0 || s.PipelinePushes != 0 || s.ForeignRemoved != 0 {
		t.Fatalf("after Lead: %+v, want primary, nothing written, pushed or removed", s)
	}
	if u, p := tl.agent.updates.Load()-u0, tl.agent.pipelines.Load()-p0; u != 0 || p != 0 {
		t.Fatalf("the gateway served %d updates and %d pipeline pushes over the takeover", u, p)
	}
	time.Sleep(300 * time.Millisecond)
	stopStream()
	sent, got, lost, dup := tl.endStream(t, next, fs, want)
	t.Logf("%s: Lead -> in sync %s on the open session; stream: %d datagrams sent, %d received, %d lost, %d duplicated; %d sent from the leader's death to in sync",
		tg, took.Round(time.Millisecond), sent, len(got), lost, dup, seqSynced-seqDead)
	if lost != 0 || dup != 0 {
		t.Fatalf("%d datagrams lost, %d duplicated over the takeover", lost, dup)
	}
	if after := tl.agent.installed(t); !reflect.DeepEqual(after, before) {
		t.Fatal("the gateway's tables changed over the takeover")
	}
}
