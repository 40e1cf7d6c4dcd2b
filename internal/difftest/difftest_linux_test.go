//go:build linux

package difftest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

const (
	framesPerState = 150
	batchSize      = 50
	window         = 8 // frames in flight to BMv2
	// settle bounds the wait for a batch's outcome; it is reached only when a
	// target loses a frame (neither sends nor counts it).
	settle = 3 * time.Second
)

func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// TestParity sends the same random frames over the same random table states
// to the reference model, the XDP program (behind the agent's P4Runtime
// server) and the v1model program on BMv2 (simple_switch_grpc), and requires
// of each frame the same verdict, egress port and output bytes, and of each
// batch the same counter deltas (drop_reasons by reason, and the direct
// counters of vip, gray_rules and backend). The states are written through
// P4Runtime to both targets, each as the diff from the previous one, so
// inserts, modifies and deletes are all exercised.
//
// GRAYGW_DIFF_SEED reproduces a run (its seed is logged); GRAYGW_DIFF_FRAMES
// sets the number of frames (default 3000, 150 per state).
func TestParity(t *testing.T) {
	ssg, program := requirements(t)
	seed := envUint(t, "GRAYGW_DIFF_SEED", uint64(time.Now().UnixNano()))
	total := int(envUint(t, "GRAYGW_DIFF_FRAMES", 3000))
	t.Logf("seed %d: reproduce with GRAYGW_DIFF_SEED=%d GRAYGW_DIFF_FRAMES=%d", seed, seed, total)
	start := time.Now()
	tl := newLab(t, ssg, program)
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))

	order := reconcile.Order{}
	for _, name := range []string{pipeline.TableBackend, pipeline.TablePoolHash, pipeline.TableBackendSelect,
		pipeline.TableVNITenant, pipeline.TableVIP, pipeline.TableGrayRules} {
		tb, err := tl.info.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, tb.ID)
	}

	g := NewGen(seed)
	var have []*p4v1.TableEntry
	seen := map[string]int{}
	sent, states, updates := 0, 0, 0
	for sent < total {
		st, owners := g.State()
		frames := make([][]byte, min(framesPerState, total-sent))
		for i := range frames {
			frames[i] = g.Frame(st)
		}
		g.Fill(st, owners, frames)
		ents := Entries(st)
		want := make([]*p4v1.TableEntry, len(ents))
		for i := range ents {
			te, err := tl.codec.ToP4(&ents[i])
			if err != nil {
				t.Fatal(err)
			}
			want[i] = te
		}
		plan, err := reconcile.Diff(want, have, order)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := parallel(func(tg *target) error { return tg.write(ctx, plan.Phases) }, tl.xdp, tl.bmv2); err != nil {
			cancel()
			t.Fatalf("seed %d state %d: %v", seed, states, err)
		}
		cancel()
		have, updates = want, updates+len(plan.Updates)

		run := &stateRun{tl: tl, seed: seed, index: states, st: st, ents: ents, keys: KeysOf(st)}
		for b := 0; b < len(frames); b += batchSize {
			batch := frames[b:min(b+batchSize, len(frames))]
			if msg := run.compare(t, batch); msg != "" {
				run.fail(t, batch, b, msg)
			}
		}
		for _, f := range frames {
			r := model.Process(st, f)
			seen[r.Verdict.String()+" "+r.Reason.String()]++
			if r.Rule >= 0 {
				seen["gray rule "+[...]string{"", "set_pool", "split_pool"}[st.GrayRules[r.Rule].Action]]++
			}
		}
		sent += len(frames)
		states++
	}
	t.Logf("%d frames over %d table states (%d P4Runtime updates to each target): 0 mismatches, %v in all",
		sent, states, updates, time.Since(start).Round(time.Millisecond))
	t.Logf("exercised: %v", seen)
	if total >= 1000 {
		for _, k := range []string{"forward NONE", "pass NOT_VIP", "pass NOT_IPV4", "drop NO_BACKEND", "drop TTL_EXPIRED",
			"drop IPV4_MALFORMED", "drop IPV4_FRAGMENT", "drop L4_TRUNCATED", "drop VXLAN_TRUNCATED", "drop VXLAN_BAD_FLAGS",
			"drop INNER_TRUNCATED", "drop INNER_NOT_IPV4", "drop INNER_IPV4_MALFORMED", "drop IPV4_TRUNCATED",
			"gray rule set_pool", "gray rule split_pool"} {
			if seen[k] == 0 {
				t.Errorf("no frame exercised %q: the generator lost coverage", k)
			}
		}
	}
}

func parallel(f func(*target) error, ts ...*target) error {
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, tg := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(tg) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// stateRun compares batches of frames over one table state.
type stateRun struct {
	tl    *testLab
	seed  uint64
	index int
	st    *model.State
	ents  []compile.Entry
	keys  Keys
}

// observed is what one target did with a batch.
type observed struct {
	out    map[int][][]byte // by egress port, in order
	passed [][]byte         // XDP only: to the kernel, in order
	counts Counts
}

// compare sends batch to both targets and returns "" when both did exactly
// what the model says, else what differs.
func (r *stateRun) compare(t *testing.T, batch [][]byte) string {
	t.Helper()
	want := observed{out: map[int][][]byte{}, counts: NewCounts()}
	fwd, notFwd, pass := 0, 0, 0
	for _, f := range batch {
		res := model.Process(r.st, f)
		want.counts.Expect(r.keys, f, res)
		switch res.Verdict {
		case model.Forward:
			want.out[int(res.Port)] = append(want.out[int(res.Port)], res.Frame)
			fwd++
		case model.NotForUs:
			want.passed = append(want.passed, f)
			pass++
			notFwd++
		default:
			notFwd++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := map[string]Counts{}
	for _, tg := range []*target{r.tl.xdp, r.tl.bmv2} {
		c, err := r.tl.counters(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		before[tg.name] = c
	}
	r.tl.rx.take()
	r.tl.passed.take()
	// processed is how many frames of the batch tg has dealt with so far:
	// every frame ends in a frame sent, a frame passed or a counted drop.
	processed := func(tg *target) int {
		// Frames seen first, counters after: a frame a target sent was counted
		// before it left.
		n := r.tl.rx.count()[tg.name]
		if tg == r.tl.xdp {
			// A frame passed to the kernel is counted too; wait for both.
			n -= pass - r.tl.passed.count()["kernel"]
		}
		return n + int(r.counts(t, ctx, tg, before).dropped())
	}
	if err := parallel(func(tg *target) error {
		for i, f := range batch {
			// BMv2 loses frames that arrive faster than it processes them
			// (about 1 ms each): keep at most window frames in flight.
			for tg == r.tl.bmv2 && i >= window {
				if processed(tg) > i-window {
					break
				}
				time.Sleep(500 * time.Microsecond)
			}
			if err := tg.tx.send(f); err != nil {
				return fmt.Errorf("send %d bytes to %s: %w", len(f), tg.name, err)
			}
		}
		return nil
	}, r.tl.xdp, r.tl.bmv2); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(settle)
	for _, tg := range []*target{r.tl.xdp, r.tl.bmv2} {
		for processed(tg) < len(batch) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	// A frame sent in excess would come right after: give it a moment.
	time.Sleep(5 * time.Millisecond)
	got := map[string]*observed{}
	for _, tg := range []*target{r.tl.xdp, r.tl.bmv2} {
		got[tg.name] = &observed{out: map[int][][]byte{}, counts: r.counts(t, ctx, tg, before)}
	}
	for _, f := range r.tl.rx.take() {
		got[f.target].out[f.port] = append(got[f.target].out[f.port], f.data)
	}
	for _, f := range r.tl.passed.take() {
		got["xdp"].passed = append(got["xdp"].passed, f.data)
	}

	var msg strings.Builder
	for _, name := range []string{"xdp", "bmv2"} {
		o := got[name]
		for p := range Ports {
			if !sameFrames(o.out[p], want.out[p]) {
				fmt.Fprintf(&msg, "\n%s port %d sent %d frames, the model %d:%s", name, p, len(o.out[p]), len(want.out[p]), frameDiff(o.out[p], want.out[p]))
			}
		}
		wantPassed := want.passed
		if name == "bmv2" {
			wantPassed = nil // P4 drops what is not for us; counted below
		}
		if !sameFrames(o.passed, wantPassed) {
			fmt.Fprintf(&msg, "\n%s passed %d frames to the kernel, the model %d:%s", name, len(o.passed), len(wantPassed), frameDiff(o.passed, wantPassed))
		}
		if d := o.counts.Diff(want.counts); d != "" {
			fmt.Fprintf(&msg, "\n%s counters:%s", name, d)
		}
	}
	return msg.String()
}

// counts returns tg's counters less before[tg].
func (r *stateRun) counts(t *testing.T, ctx context.Context, tg *target, before map[string]Counts) Counts {
	t.Helper()
	c, err := r.tl.counters(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	return sub(c, before[tg.name])
}

func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func frameDiff(got, want [][]byte) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w []byte
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !bytes.Equal(g, w) {
			fmt.Fprintf(&b, "\n    #%d got  %x\n    #%d want %x", i, g, i, w)
		}
	}
	return b.String()
}

// fail finds the first frame of batch that fails alone, shrinks it while it
// still fails, and stops the test with the seed, the state and the case.
func (r *stateRun) fail(t *testing.T, batch [][]byte, offset int, msg string) {
	t.Helper()
	culprit, cmsg := -1, msg
	for i, f := range batch {
		if m := r.compare(t, [][]byte{f}); m != "" {
			culprit, cmsg = i, m
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, table state %d: mismatch (reproduce: GRAYGW_DIFF_SEED=%d)\n", r.seed, r.index, r.seed)
	if culprit < 0 {
		fmt.Fprintf(&b, "batch of frames %d..%d fails, no frame fails alone:%s\nframes:\n", offset, offset+len(batch)-1, msg)
		for _, f := range batch {
			fmt.Fprintf(&b, "  %x\n", f)
		}
	} else {
		orig := batch[culprit]
		min, mmsg := r.shrink(t, orig, cmsg)
		res := model.Process(r.st, min)
		fmt.Fprintf(&b, "frame %d of the state: %x\nminimal case (%d bytes): %x\nmodel: %s %s port %d rule %d pool %d bucket %d backend %d%s\n",
			offset+culprit, orig, len(min), min, res.Verdict, res.Reason, res.Port, res.Rule, res.Pool, res.Bucket, res.BackendID, mmsg)
	}
	b.WriteString("table state (backend_select: the entries of the pools in use, bucket -> backend):\n")
	for _, e := range r.ents {
		if e.Table != pipeline.TableBackendSelect {
			fmt.Fprintf(&b, "  %s\n", e.String())
		}
	}
	per := map[uint16][]string{}
	for k, v := range r.st.BackendSelect {
		per[k.Pool] = append(per[k.Pool], fmt.Sprintf("%d->%d", k.Bucket, v))
	}
	for p, l := range per {
		fmt.Fprintf(&b, "  pool %d: %d buckets: %s\n", p, len(l), strings.Join(l, " "))
	}
	t.Fatal(b.String())
}

// shrink returns the shortest, most zeroed variant of frame that still fails,
// within a bounded number of tries.
func (r *stateRun) shrink(t *testing.T, frame []byte, msg string) ([]byte, string) {
	t.Helper()
	tries := 0
	try := func(c []byte) bool {
		if tries >= 60 || len(c) < MinLen(c) || bytes.Equal(c, frame) {
			return false
		}
		tries++
		if m := r.compare(t, [][]byte{c}); m != "" {
			frame, msg = c, m
			return true
		}
		return false
	}
	// Shorter: drop the tail in halves, then byte by byte.
	for step := len(frame) / 2; step >= 1; step /= 2 {
		for try(frame[:len(frame)-step]) {
		}
	}
	// Zero what follows the headers, then byte runs within them.
	if len(frame) > 92 {
		c := append([]byte(nil), frame...)
		clear(c[92:])
		try(c)
	}
	for off := 0; off+8 <= len(frame) && tries < 60; off += 8 {
		c := append([]byte(nil), frame...)
		clear(c[off : off+8])
		try(c)
	}
	return frame, msg
}
