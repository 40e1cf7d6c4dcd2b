//go:build linux

package e2e

import (
	"context"
	"math"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// decision is what the installed tables decide for a frame.
type decision struct {
	backend netip.Addr
	pool    uint16
	bucket  uint16
}

func predict(t *testing.T, st *model.State, frame []byte) decision {
	t.Helper()
	r := model.Process(st, frame)
	if r.Verdict != model.Forward {
		t.Fatalf("the installed tables do not forward the test frame: %v %v", r.Verdict, r.Reason)
	}
	be := st.Backends[r.BackendID]
	ip := be.UnderlayIP
	return decision{backend: netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), pool: r.Pool, bucket: r.Bucket}
}

// predictFlows reads the agent's tables and returns them, n flows and the
// backend each reaches under them, and clears the receive queues.
func (tl *testLab) predictFlows(t *testing.T, n int) (*model.State, []flow, []netip.Addr) {
	t.Helper()
	before := tl.agent.installed(t)
	fs := flows(n)
	want := make([]netip.Addr, len(fs))
	for i, f := range fs {
		want[i] = predict(t, before, tl.frame(f, i, 0)).backend
	}
	tl.rx.take()
	return before, fs, want
}

// observe sends one round of fs and returns, per flow, the backend its frame
// reached. It fails unless every flow arrived exactly once, intact, at the
// backend the installed tables st predict.
func (tl *testLab) observe(t *testing.T, st *model.State, fs []flow, round uint64) []netip.Addr {
	t.Helper()
	got := tl.sendRound(t, fs, round)
	seen := make([]netip.Addr, len(fs))
	wrong := 0
	for _, a := range got {
		if a.seq != round || a.index >= len(fs) {
			t.Fatalf("round %d: a frame of round %d flow %d arrived", round, a.seq, a.index)
		}
		if seen[a.index].IsValid() {
			t.Fatalf("round %d: flow %d arrived twice", round, a.index)
		}
		if a.flow != fs[a.index] {
			t.Fatalf("round %d: flow %d arrived as %+v, sent %+v", round, a.index, a.flow, fs[a.index])
		}
		if a.dmac != tl.b0MAC {
			t.Fatalf("round %d: flow %d arrived with destination MAC %s, want the backend's %s", round, a.index, a.dmac, tl.b0MAC)
		}
		seen[a.index] = a.backend
		if want := predict(t, st, tl.frame(fs[a.index], a.index, round)).backend; a.backend != want {
			wrong++
			if wrong <= 5 {
				t.Errorf("round %d: flow %d reached %v, the installed tables pick %v", round, a.index, a.backend, want)
			}
		}
	}
	if len(got) != len(fs) {
		t.Fatalf("round %d: %d of %d flows arrived", round, len(got), len(fs))
	}
	if wrong > 0 {
		t.Fatalf("round %d: %d of %d flows reached another backend than the installed tables pick", round, wrong, len(fs))
	}
	return seen
}

// bucketsOf returns the backend ids of the buckets of the VIP's default pool.
func bucketsOf(t *testing.T, st *model.State) []uint16 {
	t.Helper()
	v, ok := st.VIPs[uint32(10)<<24|255<<16|1]
	if !ok {
		t.Fatal("the VIP is not installed")
	}
	out := make([]uint16, pipeline.Buckets)
	for b := range out {
		id, ok := st.BackendSelect[model.SelectKey{Pool: v.DefaultPool, Bucket: uint16(b)}]
		if !ok {
			t.Fatalf("pool %d bucket %d not installed", v.DefaultPool, b)
		}
		out[b] = id
	}
	return out
}

// tolerance is a sampling allowance for a share of flows measured against a
// bound on buckets: four standard deviations of a binomial at p over n flows.
func tolerance(p float64, n int) float64 { return 4 * math.Sqrt(p*(1-p)/float64(n)) }

// TestFlowsMovedOnBackendChange is issue "Controller" item 7's flow movement,
// with packets: 4000 flows through the gateway (XDP, and BMv2 when present)
// programmed by the engine over P4Runtime; a fifth backend added moves only the flows whose bucket Maglev gave
// it (at most 1.1/5 of the buckets), all to it; an original backend removed
// moves exactly its own flows (at most 1.1/5 of the buckets), and no other.
func TestFlowsMovedOnBackendChange(t *testing.T) { forEachTarget(t, testFlowsMovedOnBackendChange) }

func testFlowsMovedOnBackendChange(t *testing.T, tg target) {
	tl := newLab(t, "gge2m", tg)
	e := tl.newEngineOnTempStore(t)

	const nFlows = 4000
	fs := flows(nFlows)
	orig := []int{11, 12, 13, 14}
	_, s1 := apply(t, e, tl.load(t, orig), 1)
	inst1 := tl.agent.installed(t)
	obs1 := tl.observe(t, inst1, fs, 1)
	per := map[netip.Addr]int{}
	for _, b := range obs1 {
		per[b]++
	}
	t.Logf("4 backends (version 1, %d entries written): flows per backend %v", s1.EntriesWritten, per)
	if len(per) != len(orig) {
		t.Fatalf("the flows reached %d backends, want %d", len(per), len(orig))
	}

	// Add a fifth backend.
	added := 15
	_, s2 := apply(t, e, tl.load(t, append(append([]int(nil), orig...), added)), 2)
	inst2 := tl.agent.installed(t)
	obs2 := tl.observe(t, inst2, fs, 2)
	b1, b2 := bucketsOf(t, inst1), bucketsOf(t, inst2)
	movedBuckets := 0
	for b := range b1 {
		if b1[b] != b2[b] {
			movedBuckets++
			if b2[b] != uint16(added) {
				t.Fatalf("bucket %d moved from backend %d to %d, not to the new backend", b, b1[b], b2[b])
			}
		}
	}
	moved := 0
	for i := range fs {
		d1 := predict(t, inst1, tl.frame(fs[i], i, 0))
		d2 := predict(t, inst2, tl.frame(fs[i], i, 0))
		if d1.bucket != d2.bucket {
			t.Fatalf("flow %d changed bucket (%d to %d): the hash key changed", i, d1.bucket, d2.bucket)
		}
		bucketMoved := b1[d1.bucket] != b2[d2.bucket]
		if flowMoved := obs1[i] != obs2[i]; flowMoved != bucketMoved {
			t.Fatalf("flow %d: moved %v (%v to %v) but its bucket %d moved %v", i, flowMoved, obs1[i], obs2[i], d1.bucket, bucketMoved)
		}
		if obs1[i] != obs2[i] {
			moved++
			if obs2[i] != backendIP(added) {
				t.Fatalf("flow %d moved from %v to %v, not to the new backend %v", i, obs1[i], obs2[i], backendIP(added))
			}
		}
	}
	bound := 1.1 / float64(len(orig)+1)
	bShare, fShare := float64(movedBuckets)/pipeline.Buckets, float64(moved)/nFlows
	t.Logf("backend added (version 2, %d entries written): %d of %d buckets moved (%.4f), %d of %d flows moved (%.4f), all to %v; bound 1.1/%d = %.4f",
		s2.EntriesWritten-s1.EntriesWritten, movedBuckets, pipeline.Buckets, bShare, moved, nFlows, fShare, backendIP(added), len(orig)+1, bound)
	if bShare > bound {
		t.Fatalf("%.4f of the buckets moved, more than 1.1/%d", bShare, len(orig)+1)
	}
	if fShare > bound+tolerance(bShare, nFlows) {
		t.Fatalf("%.4f of the flows moved, more than 1.1/%d (+%.4f for sampling)", fShare, len(orig)+1, tolerance(bShare, nFlows))
	}
	if moved == 0 {
		t.Fatal("no flow moved to the new backend")
	}

	// Remove one of the original backends.
	removed := 12
	var left []int
	for _, id := range append(append([]int(nil), orig...), added) {
		if id != removed {
			left = append(left, id)
		}
	}
	_, s3 := apply(t, e, tl.load(t, left), 3)
	inst3 := tl.agent.installed(t)
	obs3 := tl.observe(t, inst3, fs, 3)
	b3 := bucketsOf(t, inst3)
	movedBuckets, removedBuckets := 0, 0
	for b := range b2 {
		if b2[b] == uint16(removed) {
			removedBuckets++
		}
		if b2[b] != b3[b] {
			movedBuckets++
			if b2[b] != uint16(removed) {
				t.Fatalf("bucket %d moved from backend %d to %d, but %d was removed", b, b2[b], b3[b], removed)
			}
		}
	}
	if movedBuckets != removedBuckets {
		t.Fatalf("%d buckets moved, the removed backend had %d", movedBuckets, removedBuckets)
	}
	moved, had := 0, 0
	for i := range fs {
		if obs2[i] == backendIP(removed) {
			had++
			if obs3[i] == obs2[i] {
				t.Fatalf("flow %d still reached the removed backend", i)
			}
		}
		if obs2[i] != obs3[i] {
			moved++
			if obs2[i] != backendIP(removed) {
				t.Fatalf("flow %d moved from %v to %v, but only %v was removed", i, obs2[i], obs3[i], backendIP(removed))
			}
		}
	}
	n := len(left) + 1
	bound = 1.1 / float64(n)
	bShare, fShare = float64(movedBuckets)/pipeline.Buckets, float64(moved)/nFlows
	t.Logf("backend removed (version 3, %d entries written): %d of %d buckets moved (%.4f, all of %v's), %d of %d flows moved (%.4f, all of the %d it had); bound 1.1/%d = %.4f",
		s3.EntriesWritten-s2.EntriesWritten, movedBuckets, pipeline.Buckets, bShare, backendIP(removed), moved, nFlows, fShare, had, n, bound)
	if bShare > bound {
		t.Fatalf("%.4f of the buckets moved, more than 1.1/%d", bShare, n)
	}
	if fShare > bound+tolerance(bShare, nFlows) {
		t.Fatalf("%.4f of the flows moved, more than 1.1/%d (+%.4f for sampling)", fShare, n, tolerance(bShare, nFlows))
	}
}

// TestControllerRestartUnderTraffic is issue "Controller" item 7's restart, with
// packets: a stream of one datagram a millisecond over 8 flows goes through the
// gateway (XDP, and BMv2 when present) while the engine is closed (as the daemon does on a restart: the
// gateway keeps its entries) and a new engine over the same store file puts the
// same intent version in force. The new engine writes nothing, pushes no
// pipeline and removes nothing (its status and the agent's own RPC counts), and
// every datagram sent arrives, once, at the backend the installed tables pick.
func TestControllerRestartUnderTraffic(t *testing.T) {
	forEachTarget(t, testControllerRestartUnderTraffic)
}

func testControllerRestartUnderTraffic(t *testing.T, tg target) {
	tl := newLab(t, "gge2r", tg)
	path := filepath.Join(t.TempDir(), "controller.db")
	st := openStore(t, path)
	e1 := tl.newEngine(t, st)
	apply(t, e1, tl.load(t, []int{11, 12, 13}), 1)
	// A fourth backend: the pool is now Maglev's Rebuild of the 3-backend table,
	// which a fresh compilation of version 2 would not give; the new engine must
	// take it from the store.
	in2 := tl.load(t, []int{11, 12, 13, 14})
	apply(t, e1, in2, 2)
	before, fs, want := tl.predictFlows(t, 8)

	// The stream.
	next, stopStream := tl.startStream(t, fs)
	defer stopStream()
	time.Sleep(500 * time.Millisecond)

	// The restart: the engine closes (the store with it, as the process exits),
	// a new one opens the same file and puts the same version in force.
	u0, p0, r0 := tl.agent.updates.Load(), tl.agent.pipelines.Load(), tl.agent.reads.Load()
	seqClose := next.Load()
	if err := e1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := openStore(t, path)
	defer st2.Close()
	e2 := tl.newEngine(t, st2)
	_, s := apply(t, e2, in2, 2)
	seqSynced := next.Load()
	if s.EntriesWritten != 0 || s.PipelinePushes != 0 || s.ForeignRemoved != 0 {
		t.Fatalf("restarted controller wrote %d entries, pushed the pipeline %d times, removed %d", s.EntriesWritten, s.PipelinePushes, s.ForeignRemoved)
	}
	if u, p := tl.agent.updates.Load()-u0, tl.agent.pipelines.Load()-p0; u != 0 || p != 0 {
		t.Fatalf("the agent served %d updates and %d pipeline pushes over the restart", u, p)
	}
	if !s.InSync || !s.Primary || s.Reconciles == 0 {
		t.Fatalf("restarted controller not in sync as primary after a pass: %+v", s)
	}
	reads := tl.agent.reads.Load() - r0
	time.Sleep(500 * time.Millisecond)
	stopStream()
	sent, got, lost, dup := tl.endStream(t, next, fs, want)
	t.Logf("stream: %d datagrams sent over %d flows (to %d backends), %d received, %d lost, %d duplicated; "+
		"%d sent from the engine's close to the new engine in sync, which wrote 0 updates and read the gateway back %d times",
		sent, len(fs), countDistinct(want), len(got), lost, dup, seqSynced-seqClose, reads)
	if lost != 0 || dup != 0 {
		t.Fatalf("%d datagrams lost, %d duplicated over the restart", lost, dup)
	}
	if seqSynced == seqClose {
		t.Fatal("no datagram was sent during the restart: the test did not test it")
	}
	if after := tl.agent.installed(t); !reflect.DeepEqual(after, before) {
		t.Fatal("the gateway's tables changed over the restart")
	}
}
