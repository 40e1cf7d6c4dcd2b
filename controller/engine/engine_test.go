package engine_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// waitStatus polls the status of the only gateway until ok accepts it.
func waitStatus(t *testing.T, e *engine.Engine, what string, ok func(engine.GatewayStatus) bool) engine.GatewayStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e.Status()
		if len(st) == 1 && ok(st[0]) {
			return st[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never %s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pass forces one more reconcile pass and returns the status after it.
func pass(t *testing.T, e *engine.Engine) engine.GatewayStatus {
	t.Helper()
	before := e.Status()[0].Reconciles
	e.Kick()
	return waitStatus(t, e, "reconciled again", func(s engine.GatewayStatus) bool { return s.Reconciles > before })
}

func TestApplyHoldsExactlyTheDesiredEntries(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, store.NewMemory(), 10)
	p := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	st := stack.WaitVersion(t, e, 1)[0]

	want := desired(t, p.Result(), "gw1")
	sameEntries(t, a.entries(t), want)
	if !st.Connected || !st.Primary || !st.InSync || st.LastResult != engine.ResultOK || st.Version != 1 {
		t.Fatalf("status %+v", st)
	}
	if st.PipelinePushes != 1 || st.EntriesWritten != uint64(len(want)) || st.Entries != len(want) {
		t.Fatalf("pushes %d, written %d, entries %d; want 1, %d, %d", st.PipelinePushes, st.EntriesWritten, st.Entries, len(want), len(want))
	}
	// Another pass (periodic, reconnect...) finds nothing to do and writes nothing.
	st = pass(t, e)
	if st.LastWritten != 0 || st.EntriesWritten != uint64(len(want)) || st.PipelinePushes != 1 || !st.InSync {
		t.Fatalf("second pass wrote %d (total %d, pushes %d): %+v", st.LastWritten, st.EntriesWritten, st.PipelinePushes, st)
	}
}

func TestTwoGatewaysHoldTheSameTables(t *testing.T) {
	a1, a2 := startAgent(t, nil), startAgent(t, nil)
	e := newEngine(t, nil, 10)
	p := stack.Commit(t, e, load(t, intentYAML([]string{a1.addr, a2.addr}, threeBackends())), 1)
	st := stack.WaitVersion(t, e, 1)
	if len(st) != 2 {
		t.Fatalf("%d gateways", len(st))
	}
	sameEntries(t, a1.entries(t), desired(t, p.Result(), "gw1"))
	sameEntries(t, a2.entries(t), desired(t, p.Result(), "gw2"))
}

// installed returns the backend_select table of pool_id in entries: bucket ->
// backend id.
func installed(t *testing.T, entries []*p4v1.TableEntry, poolID uint16) map[uint16]uint16 {
	t.Helper()
	codec := engine.NewCodec(stack.P4Info(t))
	out := map[uint16]uint16{}
	for _, te := range entries {
		en, err := codec.FromP4(te)
		if err != nil {
			t.Fatal(err)
		}
		if en.Table != pipeline.TableBackendSelect {
			continue
		}
		p, _ := en.Field("pool_id")
		b, _ := en.Field("bucket")
		id, _ := en.Param("backend_id")
		if uint16(compile.Uint(p.Value)) == poolID {
			out[uint16(compile.Uint(b.Value))] = uint16(compile.Uint(id.Value))
		}
	}
	return out
}

// rebuiltBase has an engine on mem apply three backends (version 1), then a
// fourth (version 2), and close: the gateway a holds base's table as
// Rebuild(Build(3 backends), 4 backends), which is not what Build(4 backends)
// from scratch gives. It returns a and the four backends.
func rebuiltBase(t *testing.T, mem store.Store) (*agent, []backendSpec) {
	t.Helper()
	a := startAgent(t, nil)
	e := newEngine(t, mem, 10)
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, e, 1)
	four := append(threeBackends(), backendSpec{"base-4", 14, 1, ""})
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, four)), 2)
	stack.WaitVersion(t, e, 2)
	if err := e.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return a, four
}

func TestControllerRestartWritesNothing(t *testing.T) {
	mem := store.NewMemory()
	a, four := rebuiltBase(t, mem)
	in2 := load(t, intentYAML([]string{a.addr}, four))
	held := a.entries(t)
	scratch, err := compile.Compile(in2, nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := scratch.Pool("base")
	if b := installed(t, held, base.ID); len(b) == pipeline.Buckets {
		t.Fatal("test premise: the pool slot a fresh compilation picks is installed")
	}

	for _, tc := range []struct {
		name  string
		store store.Store
	}{
		{"no store: tables recovered from the gateway", nil},
		{"with the store", mem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e2 := newEngine(t, tc.store, 10)
			stack.Commit(t, e2, in2, 2)
			st := stack.WaitVersion(t, e2, 2)[0]
			if st.EntriesWritten != 0 || st.PipelinePushes != 0 || st.ForeignRemoved != 0 {
				t.Fatalf("restarted controller wrote %d entries, pushed the pipeline %d times, removed %d", st.EntriesWritten, st.PipelinePushes, st.ForeignRemoved)
			}
			sameEntries(t, a.entries(t), held)
			e2.Close(ctx(t))
		})
	}
}

func TestEmptyGatewayGetsTheSavedTables(t *testing.T) {
	mem := store.NewMemory()
	a, four := rebuiltBase(t, mem)
	held := a.entries(t)

	// The gateway is replaced by an empty one (same name and ports): after a
	// controller restart it gets the tables its peers hold, from the store, not a
	// fresh Build that would hash flows elsewhere.
	b := startAgent(t, nil)
	e2 := newEngine(t, mem, 10)
	stack.Commit(t, e2, load(t, intentYAML([]string{b.addr}, four)), 3)
	stack.WaitVersion(t, e2, 3)
	sameEntries(t, b.entries(t), held)
}

func TestBackendChangeMovesOnlyMaglevBuckets(t *testing.T) {
	a, e, p1, st1 := threeBackendsApplied(t)
	old, _ := p1.Result().Pool("base")
	before := installed(t, a.entries(t), old.ID)

	// Add a backend: a new version of the pool is flipped to; it differs from the
	// old one exactly in the buckets Maglev moved, all of them to the newcomer.
	four := append(threeBackends(), backendSpec{"base-4", 14, 1, ""})
	p2 := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, four)), 2)
	st2 := stack.WaitVersion(t, e, 2)[0]
	nu, _ := p2.Result().Pool("base")
	if nu.ID == old.ID {
		t.Fatalf("the changed pool stayed at pool_id %d", nu.ID)
	}
	held := a.entries(t)
	sameEntries(t, held, desired(t, p2.Result(), "gw1"))
	after := installed(t, held, nu.ID)
	if len(installed(t, held, old.ID)) != 0 {
		t.Fatal("the old pool version is still installed")
	}
	moved := old.Table.Diff(nu.Table)
	var rewritten []int
	for b := range pipeline.Buckets {
		if before[uint16(b)] != after[uint16(b)] {
			rewritten = append(rewritten, b)
			if after[uint16(b)] != 14 {
				t.Fatalf("bucket %d moved from backend %d to %d, not to the new backend", b, before[uint16(b)], after[uint16(b)])
			}
		}
	}
	if len(rewritten) != len(moved) || len(moved) != pipeline.Buckets/4 {
		t.Fatalf("%d buckets changed backend, Maglev moved %d, want %d", len(rewritten), len(moved), pipeline.Buckets/4)
	}
	t.Logf("backend added: %d of %d buckets changed backend; the flip wrote %d updates (new version's %d buckets + pool_hash, repoint, old version deleted)",
		len(rewritten), pipeline.Buckets, st2.EntriesWritten-st1.EntriesWritten, pipeline.Buckets)

	// A backend's own attribute (its next-hop MAC) is modified in place: one update.
	four[1].mac = "02:00:00:00:99:12"
	p3 := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, four)), 3)
	st3 := stack.WaitVersion(t, e, 3)[0]
	if n := st3.EntriesWritten - st2.EntriesWritten; n != 1 {
		t.Fatalf("a backend MAC change wrote %d updates, want 1", n)
	}
	sameEntries(t, a.entries(t), desired(t, p3.Result(), "gw1"))
}

func TestForeignEntryRemoved(t *testing.T) {
	a, e, p, _ := threeBackendsApplied(t)

	// Another controller (higher election id) becomes primary and writes an entry
	// the intent does not have, then goes away.
	other, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionID: 20, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	codec := engine.NewCodec(stack.P4Info(t))
	stray, err := codec.ToP4(&compile.Entry{Table: pipeline.TableVNITenant,
		Match:  []compile.Match{{Field: "vni", Kind: compile.Exact, Bits: 24, Value: []byte{0, 0x27, 0x0f}}},
		Action: pipeline.ActionSetTenant, Params: []compile.Param{{Name: "tenant_id", Bits: 16, Value: []byte{0, 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Write(ctx(t), []*p4v1.Update{{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: stray}}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.entries(t)); n != len(desired(t, p.Result(), "gw1"))+1 {
		t.Fatalf("the stray entry was not written (%d entries)", n)
	}
	waitStatus(t, e, "standby", func(s engine.GatewayStatus) bool { return s.Connected && !s.Primary })
	other.Close()

	// The engine regains mastership, reconciles and removes the entry.
	st := waitStatus(t, e, "back in sync without the foreign entry", func(s engine.GatewayStatus) bool {
		return s.Primary && s.InSync && s.ForeignRemoved == 1
	})
	sameEntries(t, a.entries(t), desired(t, p.Result(), "gw1"))
	if st.LastWritten != 1 {
		t.Fatalf("takeover pass wrote %d updates, want 1 (the delete)", st.LastWritten)
	}
}

func TestStandbyWhileAnotherControllerIsPrimary(t *testing.T) {
	a := startAgent(t, nil)
	other, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionID: 100, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, nil, 10)
	p := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	waitStatus(t, e, "standby", func(s engine.GatewayStatus) bool { return s.Connected && !s.Primary })
	time.Sleep(300 * time.Millisecond)
	if st := e.Status()[0]; st.Reconciles != 0 || st.EntriesWritten != 0 {
		t.Fatalf("a standby controller reconciled: %+v", st)
	}
	if _, ok, err := other.Cookie(ctx(t)); err != nil || ok {
		t.Fatalf("a standby controller pushed a pipeline (ok %v, err %v)", ok, err)
	}

	// The primary leaves: the engine takes over and brings the gateway to the intent.
	other.Close()
	st := stack.WaitVersion(t, e, 1)[0]
	if !st.Primary {
		t.Fatalf("status after takeover %+v", st)
	}
	sameEntries(t, a.entries(t), desired(t, p.Result(), "gw1"))
}

// gate is a Memory dataplane that stops the agent in the middle of a write: at
// the after-th bucket it signals reached and blocks until release.
type gate struct {
	*dataplane.Memory
	mu       sync.Mutex
	n, after int
	reached  chan struct{}
	release  chan struct{}
}

func (g *gate) count(k int) {
	g.mu.Lock()
	g.n += k
	hit := g.n >= g.after && g.reached != nil
	var rel chan struct{}
	if hit {
		close(g.reached)
		g.reached, rel = nil, g.release
	}
	g.mu.Unlock()
	if rel != nil {
		<-rel
	}
}

func (g *gate) SetBucket(pool, bucket, backend uint16) error {
	g.count(1)
	return g.Memory.SetBucket(pool, bucket, backend)
}

func (g *gate) SetBuckets(pool, first uint16, backends []uint16) error {
	g.count(len(backends))
	return g.Memory.SetBuckets(pool, first, backends)
}

func TestAgentKilledMidApplyConverges(t *testing.T) {
	for _, tc := range []struct {
		name string
		// back restarts the agent.
		back func(a *agent)
	}{
		{"agent restarts with its journal", func(a *agent) { a.start() }},
		{"agent comes back empty", func(a *agent) {
			a.dp, a.dir = dataplane.NewMemory(dataplane.Limits{}), a.t.TempDir()
			a.start()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached, release := make(chan struct{}), make(chan struct{})
			g := &gate{Memory: dataplane.NewMemory(dataplane.Limits{}), after: 3000, reached: reached, release: release}
			a := startAgent(t, g)
			e := newEngine(t, nil, 10)
			p := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
			select {
			case <-reached:
			case <-time.After(30 * time.Second):
				t.Fatal("the apply never reached the gate")
			}
			// Kill the agent while the write is blocked in the dataplane.
			a.mu.Lock()
			gs := a.gs
			a.mu.Unlock()
			gs.Stop()
			close(release)
			a.kill()
			st := waitStatus(t, e, "failed", func(s engine.GatewayStatus) bool { return !s.Connected })
			if st.InSync {
				t.Fatalf("gateway in sync after a cut apply: %+v", st)
			}

			tc.back(a)
			st = stack.WaitVersion(t, e, 1)[0]
			want := desired(t, p.Result(), "gw1")
			sameEntries(t, a.entries(t), want)
			if st.LastResult != engine.ResultOK || st.Reconciles < 2 {
				t.Fatalf("status after convergence %+v", st)
			}
			t.Logf("%d entries; the pass after the agent returned wrote %d (pipeline pushes %d)", len(want), st.LastWritten, st.PipelinePushes)
		})
	}
}

func TestPlanIsADryRun(t *testing.T) {
	a, e, p1, _ := threeBackendsApplied(t)
	held := a.entries(t)

	four := append(threeBackends(), backendSpec{"base-4", 14, 1, ""})
	p2, err := e.Prepare(load(t, intentYAML([]string{a.addr}, four)))
	if err != nil {
		t.Fatal(err)
	}
	plans := e.Plan(ctx(t), p2)
	if len(plans) != 1 || !plans[0].Reachable {
		t.Fatalf("plans %+v", plans)
	}
	gp := plans[0]
	old, _ := p1.Result().Pool("base")
	nu, _ := p2.Result().Pool("base")
	if gp.Inserts != pipeline.Buckets+2 || gp.Modifies != 1 || gp.Deletes != pipeline.Buckets+1 || gp.Foreign != 0 {
		t.Fatalf("plan %d inserts, %d modifies, %d deletes, %d foreign", gp.Inserts, gp.Modifies, gp.Deletes, gp.Foreign)
	}
	groups := map[string]int{}
	for _, g := range gp.Groups {
		groups[g.Op+" "+g.Table+" "+g.Origin] = g.Count
	}
	for k, n := range map[string]int{
		"INSERT " + pipeline.TableBackend + " backend base-4":                     1,
		"INSERT " + pipeline.TableBackendSelect + " pool base v" + slot(nu.Slot):  pipeline.Buckets,
		"MODIFY " + pipeline.TableVIP + " vip vpc":                                1,
		"DELETE " + pipeline.TableBackendSelect + " pool base v" + slot(old.Slot): pipeline.Buckets,
	} {
		if groups[k] != n {
			t.Errorf("group %q: %d updates, want %d (groups %v)", k, groups[k], n, groups)
		}
	}
	if !gp.Truncated || len(gp.Changes) != engine.DefaultMaxChanges {
		t.Errorf("changes listed %d, truncated %v", len(gp.Changes), gp.Truncated)
	}
	sameEntries(t, a.entries(t), held) // nothing written
	if st := e.Status()[0]; st.Version != 1 {
		t.Fatalf("a dry run changed the version: %+v", st)
	}
}

func slot(s uint8) string { return string(rune('0' + s)) }

func TestCountersAreNamedByIntent(t *testing.T) {
	mem := dataplane.NewMemory(dataplane.Limits{})
	a := startAgent(t, mem)
	e := newEngine(t, nil, 10)
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, e, 1)

	vip := netip.MustParseAddr("10.255.0.1")
	tcp := testpkt.L4{Proto: 6, SPort: 40000, DPort: 80}
	for range 3 { // the VM the rule moves to the gray pool
		if r := mem.Process(testvectors.Overlay(vip, 5001, "10.0.0.5", "192.168.1.1", tcp)); r.Verdict != model.Forward {
			t.Fatalf("gray packet not forwarded: %+v", r)
		}
	}
	for i := range 5 { // other VMs: base pool
		tcp.SPort = uint16(41000 + i)
		if r := mem.Process(testvectors.Overlay(vip, 5001, "10.0.0.9", "192.168.1.1", tcp)); r.Verdict != model.Forward {
			t.Fatalf("base packet not forwarded: %+v", r)
		}
	}
	mem.Process(testvectors.Overlay(netip.MustParseAddr("10.9.9.9"), 5001, "10.0.0.9", "192.168.1.1", tcp)) // not a VIP

	c, err := e.Counters(ctx(t), "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Rules["vm-10.0.0.5"].Packets != 3 || c.VIPs["vpc"].Packets != 8 || c.Pools["gray"].Packets != 3 ||
		c.Pools["base"].Packets != 5 || c.Backends["gray-1"].Packets != 3 || c.Drops["NOT_VIP"].Packets != 1 {
		t.Fatalf("counters %+v", c)
	}
	if c.Rules["vm-10.0.0.5"].Bytes == 0 || c.Foreign.Packets != 0 {
		t.Fatalf("counters %+v", c)
	}
	if _, err := e.Counters(ctx(t), "nope"); !errors.Is(err, engine.ErrUnknownGateway) {
		t.Fatalf("Counters of an unknown gateway: %v", err)
	}
}

func TestPrepareRefusesWhatCannotCompile(t *testing.T) {
	e := newEngine(t, nil, 10)
	if _, err := e.Prepare(nil); !errors.Is(err, engine.ErrCompile) {
		t.Fatalf("Prepare(nil): %v", err)
	}
	if err := e.Commit(nil, 1); !errors.Is(err, engine.ErrCompile) {
		t.Fatalf("Commit(nil): %v", err)
	}
	if plans := e.Plan(context.Background(), nil); plans != nil {
		t.Fatalf("Plan(nil) = %v", plans)
	}
}

func TestCloseDrainsAndRefusesCommits(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, nil, 10)
	in := load(t, intentYAML([]string{a.addr}, threeBackends()))
	stack.Commit(t, e, in, 1)
	stack.WaitVersion(t, e, 1)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(c); err != nil {
		t.Fatal(err)
	}
	p, err := e.Prepare(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(p, 2); !errors.Is(err, engine.ErrDraining) {
		t.Fatalf("Commit after Close: %v, want ErrDraining", err)
	}
	if !e.Draining() {
		t.Fatal("not draining after Close")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	if _, err := engine.New(engine.Config{ElectionID: 1}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("no P4Info: %v", err)
	}
	if _, err := engine.New(engine.Config{P4Info: stack.P4Info(t)}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("no election id: %v", err)
	}
}

func TestPlanAgainstAGatewayWithoutPipeline(t *testing.T) {
	a := startAgent(t, nil)
	other, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionID: 100, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// The engine is standby (another controller is primary), so the gateway stays
	// without a pipeline; a dry run still plans against what it holds: nothing.
	e := newEngine(t, nil, 10)
	in := load(t, intentYAML([]string{a.addr}, threeBackends()))
	p := stack.Commit(t, e, in, 1)
	waitStatus(t, e, "standby", func(s engine.GatewayStatus) bool { return s.Connected && !s.Primary })
	plans := e.Plan(ctx(t), p)
	if len(plans) != 1 || !plans[0].Reachable || plans[0].Inserts != len(desired(t, p.Result(), "gw1")) {
		t.Fatalf("plan %+v", plans)
	}
}

// TestSyncedFollowsTheSession: Synced is set by the first successful pass on a
// session, cleared while the session is down, and set again only once the pass
// after the reconnect has succeeded; every change closes Changed.
func TestSyncedFollowsTheSession(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, store.NewMemory(), 10)
	changed := e.Changed()
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Commit did not close Changed")
	}
	st := waitStatus(t, e, "synced", func(s engine.GatewayStatus) bool { return s.Synced })
	if !st.InSync || st.Version != 1 {
		t.Fatalf("synced before in sync: %+v", st)
	}
	changed = e.Changed()
	a.kill()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("losing the session did not close Changed")
	}
	waitStatus(t, e, "disconnected and not synced", func(s engine.GatewayStatus) bool { return !s.Connected && !s.Synced })
	before := e.Status()[0].Reconciles
	a.start()
	st = waitStatus(t, e, "synced again", func(s engine.GatewayStatus) bool { return s.Synced })
	if st.Reconciles <= before || st.LastResult != engine.ResultOK {
		t.Fatalf("synced again without a pass on the new session: %+v (passes before %d)", st, before)
	}
}
