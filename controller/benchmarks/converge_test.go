package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// dpKind is a dataplane the agent can run over.
type dpKind struct {
	name string
	// open returns a fresh, empty dataplane and its closer.
	open func() (dataplane.Dataplane, func(), error)
	// derived uses the intent's derived pool ids (anywhere in 1-32767) instead
	// of explicit ids 1-63.
	derived bool
}

func memoryKind() dpKind {
	return dpKind{name: "Memory", open: func() (dataplane.Dataplane, func(), error) {
		return dataplane.NewMemory(dataplane.Limits{}), func() {}, nil
	}}
}

// convergeRun is one measurement: a fresh agent brought to the intent by a new
// engine, a second pass, a controller restart, and the raw write of the same
// updates for comparison.
type convergeRun struct {
	entries  int
	perTable map[string]int

	// Before the pass: intent.Load of the YAML text, compile.Compile alone,
	// Engine.Prepare (compile + conversion through the P4Info), the store
	// commit of the document (bbolt, fsync).
	load, compile, prepare, storeCommit time.Duration

	// The first pass, from Engine.Commit to WaitVersion returning.
	converge, commitCall, passDur time.Duration
	written                       int
	pushes                        uint64
	// Its phases, from the timeline: session (dial, arbitration), pipeline push,
	// read-back (agent Read RPC), canonicalize + diff, write; and in the write,
	// the agent's Write RPCs and the dataplane calls.
	session, pipeline, readBack, diff, write time.Duration
	writeRPCs                                int
	agentWrite, dpBusy                       time.Duration
	dpCalls                                  int

	// Offline, after the pass: a full Read by a plain client, Canonicalize of
	// what it returned, conversion of the compiled entries, reconcile.Diff.
	readAll, canon, convert, diffOnly time.Duration

	// The second pass (Kick): its duration, its writes, its read-back.
	pass2, pass2Read time.Duration
	pass2Written     int
	// passesBefore counts the passes before the second one (1 unless
	// something made the engine pass again on its own).
	passesBefore uint64

	// The restart: store reopened, new engine, stored intent loaded, prepared,
	// committed, until in sync: total, the pass, writes, pipeline pushes, and
	// whether the pool tables were recovered from the gateway.
	restart, restartPass, restartRead time.Duration
	// Before the pass: store opened + engine.New (which loads the saved pool
	// tables); the stored intent loaded and prepared. In the pass: from the end
	// of the read-back to the pools recovered from it (compile.Recover, and the
	// recompilation against them unless they equal the compiled ones).
	restartOpen, restartPrepare, restartRecover time.Duration
	// What the restart did to the gateway.
	restartWritten, restartPushes uint64
	recovered                     bool

	// The same updates written by the controller's P4Runtime client alone
	// (p4rt.Client.WritePhases, batches of p4rt.DefaultBatch) to another fresh
	// agent over the same kind of dataplane: the agent's raw write time.
	raw time.Duration
}

// waitVersion waits until the engine's gateway holds version v, or fails
// early when passes keep failing (e.g. a target refusing the pool ids).
func waitVersion(ctx context.Context, e *engine.Engine, v uint64, before uint64) (engine.GatewayStatus, error) {
	for {
		ch := e.Changed()
		sts := e.Status()
		if len(sts) == 1 {
			st := sts[0]
			if st.Version >= v && st.InSync && st.LastResult == engine.ResultOK {
				return st, nil
			}
			if st.LastResult == engine.ResultError && st.Reconciles >= before+2 {
				return st, errors.New(st.LastError)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return engine.GatewayStatus{}, fmt.Errorf("waiting for version %d: %w (status %+v)", v, ctx.Err(), sts)
		}
	}
}

// waitPass waits for the end of a reconcile pass that started at or after t.
func waitPass(ctx context.Context, t *testing.T, e *engine.Engine, after time.Time) engine.GatewayStatus {
	t.Helper()
	for {
		ch := e.Changed()
		if st := e.Status()[0]; st.Reconciles > 0 && !st.LastReconcile.Add(-st.LastDuration).Before(after) {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no reconcile pass: %v", ctx.Err())
		}
	}
}

func newEngine(t *testing.T, st store.Store, tl *timeline) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour, Store: st, Logger: tl.logger()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// converge runs one measurement over a fresh dataplane of kind k.
func converge(t *testing.T, k dpKind, sc Scale) (*convergeRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &convergeRun{perTable: map[string]int{}}
	tl := newTimeline()
	dp, closeDP, err := k.open()
	if err != nil {
		t.Fatal(err)
	}
	defer closeDP()
	a := serveAgent(t, dp, tl)
	defer a.stop()

	spec := Gateway(a.addr)
	sc.DerivedPoolIDs = k.derived
	doc := filledDoc(t, spec, sc)

	// Before the pass.
	runtime.GC() // each timed step starts without the previous one's garbage
	start := time.Now()
	in, err := intent.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	r.load = time.Since(start)
	runtime.GC()
	start = time.Now()
	res, err := compile.Compile(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.compile = time.Since(start)
	for _, e := range res.Gateways[0].Entries {
		r.perTable[e.Table]++
	}
	r.entries = len(res.Gateways[0].Entries)

	dbPath := filepath.Join(t.TempDir(), "controller.db")
	st, err := store.OpenBolt(dbPath, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()
	eng := newEngine(t, st, tl)
	defer func() { eng.Close(context.Background()) }()
	runtime.GC()
	start = time.Now()
	p, err := eng.Prepare(in)
	if err != nil {
		t.Fatal(err)
	}
	r.prepare = time.Since(start)
	runtime.GC()
	start = time.Now()
	v, _, err := st.Commit(ctx, store.Change{Intent: doc, Actor: "bench", Operation: "seed", Summary: "benchmark intent"})
	if err != nil {
		t.Fatal(err)
	}
	r.storeCommit = time.Since(start)

	// The first pass, from an empty target.
	a.dp.totals()
	runtime.GC()
	mark := time.Now()
	if err := eng.Commit(p, v.Number); err != nil {
		t.Fatal(err)
	}
	r.commitCall = time.Since(mark)
	gst, err := waitVersion(ctx, eng, v.Number, 0)
	r.converge = time.Since(mark)
	if err != nil {
		return nil, fmt.Errorf("first pass: %w", err)
	}
	r.dpCalls, r.dpBusy = a.dp.totals()
	r.passDur, r.written, r.pushes = gst.LastDuration, gst.LastWritten, gst.PipelinePushes
	passStart := gst.LastReconcile.Add(-gst.LastDuration)
	evs := tl.after(mark)
	pushed, ok1 := find(evs, "ctl", "pushed forwarding pipeline", passStart)
	read, ok2 := find(evs, "rpc", "Read", passStart)
	plan, ok3 := find(evs, "ctl", "writing plan", passStart)
	synced, ok4 := find(evs, "ctl", "gateway in sync", passStart)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatalf("first pass: missing events (pipeline %v, read %v, plan %v, sync %v)", ok1, ok2, ok3, ok4)
	}
	r.session = passStart.Sub(mark)
	r.pipeline = pushed.at.Sub(passStart)
	r.readBack = read.end.Sub(read.at)
	r.diff = plan.at.Sub(read.end)
	r.write = synced.at.Sub(plan.at)
	for _, e := range evs {
		if e.src == "rpc" && e.msg == "Write" && !e.at.Before(plan.at) && !e.end.After(synced.at) {
			r.writeRPCs++
			r.agentWrite += e.end.Sub(e.at)
		}
	}

	// Offline: read back, canonicalize, convert, diff.
	runtime.GC()
	start = time.Now()
	raw, err := p4rtest.ReadTables(ctx, a.addr)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	r.readAll = time.Since(start)
	if len(raw) != r.entries {
		t.Fatalf("the agent holds %d entries, want %d", len(raw), r.entries)
	}
	runtime.GC()
	start = time.Now()
	have := make([]*p4v1.TableEntry, len(raw))
	for i, te := range raw {
		have[i] = engine.Canonicalize(te)
	}
	r.canon = time.Since(start)
	runtime.GC()
	start = time.Now()
	want := make([]*p4v1.TableEntry, 0, r.entries)
	for i := range res.Gateways[0].Entries {
		te, err := eng.Codec().ToP4(&res.Gateways[0].Entries[i])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, te)
	}
	r.convert = time.Since(start)
	order := tableOrder(t)
	runtime.GC()
	start = time.Now()
	d, err := reconcile.Diff(want, have, order)
	r.diffOnly = time.Since(start)
	if err != nil || !d.Empty() {
		t.Fatalf("offline diff after the pass: %v, %d inserts %d modifies %d deletes", err, d.Inserts, d.Modifies, d.Deletes)
	}

	// The second pass: nothing to write.
	r.passesBefore = eng.Status()[0].Reconciles
	runtime.GC()
	mark = time.Now()
	eng.Kick()
	gst = waitPass(ctx, t, eng, mark)
	r.pass2, r.pass2Written = gst.LastDuration, gst.LastWritten
	if gst.LastResult != engine.ResultOK {
		t.Fatalf("second pass: %s", gst.LastError)
	}
	if read, ok := find(tl.after(mark), "rpc", "Read", gst.LastReconcile.Add(-gst.LastDuration)); ok {
		r.pass2Read = read.end.Sub(read.at)
	}

	// The restart: drain the engine, close the store, start again from it.
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	mark = time.Now()
	st, err = store.OpenBolt(dbPath, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eng = newEngine(t, st, tl)
	r.restartOpen = time.Since(mark)
	prepStart := time.Now()
	cur, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in2, err := intent.Load(cur.Intent)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := eng.Prepare(in2)
	if err != nil {
		t.Fatal(err)
	}
	r.restartPrepare = time.Since(prepStart)
	if err := eng.Commit(p2, cur.Number); err != nil {
		t.Fatal(err)
	}
	gst, err = waitVersion(ctx, eng, cur.Number, 0)
	r.restart = time.Since(mark)
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	r.restartPass, r.restartWritten, r.restartPushes = gst.LastDuration, gst.EntriesWritten, gst.PipelinePushes
	evs = tl.after(mark)
	read, ok := find(evs, "rpc", "Read", mark)
	if ok {
		r.restartRead = read.end.Sub(read.at)
	}
	var rec event
	rec, r.recovered = find(evs, "ctl", "pool tables recovered from a gateway", mark)
	if !r.recovered {
		// Recovered and found equal to the compiled ones: no recompilation.
		rec, r.recovered = find(evs, "ctl", "pool tables on the gateway are the compiled ones", mark)
	}
	if ok && r.recovered {
		r.restartRecover = rec.at.Sub(read.end)
	}

	// The raw write of the same updates to another fresh agent.
	r.raw = rawWrite(ctx, t, k, want, order)
	return r, nil
}

func tableOrder(t *testing.T) reconcile.Order {
	t.Helper()
	info := stack.P4Info(t)
	var order reconcile.Order
	for _, name := range compile.TableOrder {
		tb, err := info.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, tb.ID)
	}
	return order
}

// rawWrite writes want, as reconcile orders it for an empty target, with the
// controller's own P4Runtime client to a fresh agent over a fresh dataplane of
// kind k, and returns the time WritePhases took.
func rawWrite(ctx context.Context, t *testing.T, k dpKind, want []*p4v1.TableEntry, order reconcile.Order) time.Duration {
	t.Helper()
	dp, closeDP, err := k.open()
	if err != nil {
		t.Fatal(err)
	}
	defer closeDP()
	a := serveAgent(t, dp, newTimeline())
	defer a.stop()
	c, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionID: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	info := stack.P4Info(t)
	if _, err := c.EnsurePipeline(ctx, info.P4Info(), nil, engine.Cookie(info, nil)); err != nil {
		t.Fatal(err)
	}
	plan, err := reconcile.Diff(want, nil, order)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	start := time.Now()
	if err := c.WritePhases(ctx, plan.Phases, 0); err != nil {
		t.Fatalf("raw write: %v", err)
	}
	return time.Since(start)
}

// TestConvergeSmall runs the whole measurement at a small scale against the
// Memory dataplane and checks what the benchmark relies on: the first pass
// writes every entry with one pipeline push, the second writes nothing, a
// restarted controller writes nothing and pushes no pipeline, and the
// breakdown finds every phase.
func TestConvergeSmall(t *testing.T) {
	sc := Scale{Pools: 4, BackendsPerPool: 3, VIPs: 2, Tenants: 2, VNIsPerTenant: 3, Rules: 300}
	r, err := converge(t, memoryKind(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if r.entries != sc.Entries() || r.written != r.entries || r.pushes != 1 {
		t.Errorf("first pass: %d entries (scale says %d), %d written, %d pipeline pushes", r.entries, sc.Entries(), r.written, r.pushes)
	}
	if r.writeRPCs < 6 {
		t.Errorf("first pass: %d Write RPCs, want one per table at least", r.writeRPCs)
	}
	if r.dpCalls < r.entries-sc.Pools*4096+sc.Pools {
		t.Errorf("first pass: %d dataplane calls for %d entries", r.dpCalls, r.entries)
	}
	if r.pass2Written != 0 || r.restartWritten != 0 || r.restartPushes != 0 {
		t.Errorf("second pass wrote %d; restart wrote %d and pushed %d pipelines", r.pass2Written, r.restartWritten, r.restartPushes)
	}
	if !r.recovered {
		t.Error("restart: the pool tables were not recovered from the gateway")
	}
	for name, d := range map[string]time.Duration{"converge": r.converge, "read-back": r.readBack, "write": r.write,
		"pass2": r.pass2, "restart": r.restart, "raw": r.raw} {
		if d <= 0 {
			t.Errorf("%s: %v", name, d)
		}
	}
}

// TestBenchConverge is the measurement of the issue (item 8.1): 63 pools of 4096
// buckets and 10k gray rules onto a fresh agent, over each dataplane.
func TestBenchConverge(t *testing.T) {
	benchEnabled(t)
	runs := envInt(t, "GRAYGW_BENCH_RUNS", 3)
	xdp, why := xdpKinds()
	kinds := append([]dpKind{memoryKind()}, xdp...)
	var cols []convergeCol
	only := os.Getenv("GRAYGW_BENCH_DP") // a comma-separated subset of the columns
	for _, k := range kinds {
		if only != "" && !slices.ContainsFunc(strings.Split(only, ","), func(s string) bool { return strings.TrimSpace(s) == k.name }) {
			continue
		}
		col := convergeCol{kind: k}
		for i := range runs {
			r, err := converge(t, k, Full)
			if err != nil {
				col.err = err
				t.Logf("%s run %d: %v", k.name, i+1, err)
				break
			}
			t.Logf("%s run %d: converge %v (%d entries, %d written), pass2 %v, restart %v, raw %v",
				k.name, i+1, r.converge, r.entries, r.written, r.pass2, r.restart, r.raw)
			col.runs = append(col.runs, r)
		}
		cols = append(cols, col)
	}
	if why != "" {
		cols = append(cols, convergeCol{kind: dpKind{name: "XDP"}, skip: why})
	}
	writeFragment(t, "converge", renderConverge(cols, runs))
	for _, c := range cols {
		if c.err != nil && !c.kind.derived {
			t.Errorf("%s: %v", c.kind.name, c.err)
		}
	}
}

type convergeCol struct {
	kind dpKind
	runs []*convergeRun
	err  error
	skip string
}

func renderConverge(cols []convergeCol, runs int) string {
	var b strings.Builder
	get := func(c convergeCol, f func(*convergeRun) time.Duration) samples {
		var s samples
		for _, r := range c.runs {
			s = append(s, f(r))
		}
		return s
	}
	first := func(c convergeCol) *convergeRun {
		if len(c.runs) == 0 {
			return nil
		}
		return c.runs[0]
	}
	fmt.Fprintf(&b, "| | %s |\n|---|%s\n", strings.Join(colNames(cols), " | "), strings.Repeat("---:|", len(cols)))
	row := func(label string, cell func(c convergeCol) string) {
		cells := make([]string, len(cols))
		for i, c := range cols {
			switch {
			case len(c.runs) > 0:
				cells[i] = cell(c)
			case c.err != nil:
				cells[i] = "failed"
			default:
				cells[i] = "not run"
			}
		}
		fmt.Fprintf(&b, "| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	dRow := func(label string, f func(*convergeRun) time.Duration) {
		row(label, func(c convergeCol) string { return get(c, f).mmm() })
	}
	row("entries (backend / pool_hash / backend_select / vni_tenant / vip / gray_rules)", func(c convergeCol) string {
		r := first(c)
		return fmt.Sprintf("%s (%d / %d / %s / %d / %d / %s)", thousands(r.entries), r.perTable[pipeline.TableBackend],
			r.perTable[pipeline.TablePoolHash], thousands(r.perTable[pipeline.TableBackendSelect]), r.perTable[pipeline.TableVNITenant],
			r.perTable[pipeline.TableVIP], thousands(r.perTable[pipeline.TableGrayRules]))
	})
	dRow("intent.Load of the YAML text", func(r *convergeRun) time.Duration { return r.load })
	dRow("compile.Compile (63 Maglev tables)", func(r *convergeRun) time.Duration { return r.compile })
	dRow("Engine.Prepare (compile + P4Info conversion)", func(r *convergeRun) time.Duration { return r.prepare })
	dRow("store commit of the document (bbolt, fsync)", func(r *convergeRun) time.Duration { return r.storeCommit })
	dRow("**first pass: Commit to in sync (wall)**", func(r *convergeRun) time.Duration { return r.converge })
	row("entries written / pipeline pushes", func(c convergeCol) string {
		r := first(c)
		return fmt.Sprintf("%s / %d", thousands(r.written), r.pushes)
	})
	row("**entries/s (written / wall)**", func(c convergeCol) string {
		var rates []int
		for _, r := range c.runs {
			rates = append(rates, int(float64(r.written)/r.converge.Seconds()))
		}
		slices.Sort(rates)
		med := rates[len(rates)/2]
		if len(rates)%2 == 0 {
			med = (rates[len(rates)/2-1] + med) / 2
		}
		if len(rates) == 1 {
			return thousands(med) + "/s"
		}
		return fmt.Sprintf("%s/s (%s-%s)", thousands(med), thousands(rates[0]), thousands(rates[len(rates)-1]))
	})
	dRow("&nbsp;&nbsp;Engine.Commit call (kick, pool tables saved to the store)", func(r *convergeRun) time.Duration { return r.commitCall })
	dRow("&nbsp;&nbsp;session: dial + arbitration before the pass", func(r *convergeRun) time.Duration { return r.session })
	dRow("&nbsp;&nbsp;pass (engine status LastDuration)", func(r *convergeRun) time.Duration { return r.passDur })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;pipeline check + push", func(r *convergeRun) time.Duration { return r.pipeline })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;read-back (empty target)", func(r *convergeRun) time.Duration { return r.readBack })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;canonicalize + diff", func(r *convergeRun) time.Duration { return r.diff })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;write (all phases)", func(r *convergeRun) time.Duration { return r.write })
	row("&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;Write RPCs; agent time in them; dataplane time", func(c convergeCol) string {
		r := first(c)
		return fmt.Sprintf("%d; %s; %s", r.writeRPCs, get(c, func(r *convergeRun) time.Duration { return r.agentWrite }).mmm(),
			get(c, func(r *convergeRun) time.Duration { return r.dpBusy }).mmm())
	})
	dRow("raw write of the same updates (p4rt.WritePhases alone, fresh agent)", func(r *convergeRun) time.Duration { return r.raw })
	row("**raw entries/s; first pass / raw write**", func(c convergeCol) string {
		raw, conv := get(c, func(r *convergeRun) time.Duration { return r.raw }).median(), get(c, func(r *convergeRun) time.Duration { return r.converge }).median()
		return fmt.Sprintf("%s; %.2fx", rate(first(c).written, raw), float64(conv)/float64(raw))
	})
	dRow("full Read by a plain client (%d entries)", func(r *convergeRun) time.Duration { return r.readAll })
	dRow("Canonicalize of the read entries", func(r *convergeRun) time.Duration { return r.canon })
	dRow("conversion of the compiled entries (Codec.ToP4)", func(r *convergeRun) time.Duration { return r.convert })
	dRow("reconcile.Diff, nothing to do", func(r *convergeRun) time.Duration { return r.diffOnly })
	dRow("**second pass (Kick), nothing to write**", func(r *convergeRun) time.Duration { return r.pass2 })
	row("&nbsp;&nbsp;entries written; its read-back; passes before it", func(c convergeCol) string {
		var n []string
		for _, r := range c.runs {
			n = append(n, fmt.Sprint(r.passesBefore))
		}
		return fmt.Sprintf("%d; %s; %s", first(c).pass2Written, get(c, func(r *convergeRun) time.Duration { return r.pass2Read }).mmm(),
			strings.Join(n, ","))
	})
	dRow("**restart: store reopened, new engine, to in sync**", func(r *convergeRun) time.Duration { return r.restart })
	dRow("&nbsp;&nbsp;store open + engine.New (saved pool tables loaded)", func(r *convergeRun) time.Duration { return r.restartOpen })
	dRow("&nbsp;&nbsp;stored intent: Load + Prepare", func(r *convergeRun) time.Duration { return r.restartPrepare })
	dRow("&nbsp;&nbsp;its pass", func(r *convergeRun) time.Duration { return r.restartPass })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;read-back", func(r *convergeRun) time.Duration { return r.restartRead })
	dRow("&nbsp;&nbsp;&nbsp;&nbsp;pools recovered from the read-back (Recover + recompile)", func(r *convergeRun) time.Duration { return r.restartRecover })
	row("&nbsp;&nbsp;entries written / pipeline pushes / pools recovered from the gateway", func(c convergeCol) string {
		r := first(c)
		return fmt.Sprintf("%d / %d / %v", r.restartWritten, r.restartPushes, r.recovered)
	})
	fmt.Fprintf(&b, "\nDurations are the median (min-max) of %d runs, each on a fresh agent, engine and store.\n", runs)
	b.WriteString("\n")
	for _, c := range cols {
		if len(c.runs) == 0 {
			continue
		}
		m := func(f func(*convergeRun) time.Duration) time.Duration { return get(c, f).median() }
		pass, pass2 := m(func(r *convergeRun) time.Duration { return r.passDur }), m(func(r *convergeRun) time.Duration { return r.pass2 })
		pct := func(d, of time.Duration) float64 { return 100 * float64(d) / float64(of) }
		fmt.Fprintf(&b, "* %s: the first pass spends %.0f%% of its time writing and %.0f%% canonicalizing and diffing; "+
			"the second pass, which writes nothing, takes %.0f%% of the first, %.0f%% of it in the read-back; "+
			"the restart takes %.0f%% of the first pass.\n", c.kind.name,
			pct(m(func(r *convergeRun) time.Duration { return r.write }), pass), pct(m(func(r *convergeRun) time.Duration { return r.diff }), pass),
			pct(pass2, pass), pct(m(func(r *convergeRun) time.Duration { return r.pass2Read }), pass2),
			pct(m(func(r *convergeRun) time.Duration { return r.restart }), m(func(r *convergeRun) time.Duration { return r.converge })))
	}
	for _, c := range cols {
		if c.err != nil {
			msg := c.err.Error()
			if len(msg) > 400 {
				msg = msg[:400] + "..."
			}
			fmt.Fprintf(&b, "\n**%s failed**: `%s`\n", c.kind.name, msg)
		} else if len(c.runs) == 0 && c.skip != "" {
			fmt.Fprintf(&b, "\n**%s not run**: %s\n", c.kind.name, c.skip)
		}
	}
	return strings.ReplaceAll(b.String(), "(%d entries)", fmt.Sprintf("(%s entries)", entriesOf(cols)))
}

func entriesOf(cols []convergeCol) string {
	for _, c := range cols {
		if len(c.runs) > 0 {
			return thousands(c.runs[0].entries)
		}
	}
	return "?"
}

func colNames(cols []convergeCol) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.kind.name)
	}
	return out
}
