//go:build linux

package difftest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
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
	// quiet ends a wait for a target's progress: so long without a frame
	// processed happens only when it lost one (neither sent nor counted it).
	quiet = 3 * time.Second
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

// TestParity sends the same random frames, into random ports, over the same
// random table states to the reference model, the XDP program (behind the
// agent's P4Runtime server) and the v1model program on BMv2
// (simple_switch_grpc), and requires of each frame the same verdict, egress
// port and output bytes, its mirror copy's too (docs/pipeline.md §10: the
// states draw set_pool_mirror rules), of each batch the same counter deltas
// (drop_reasons by reason, the direct counters of vip, gray_rules and
// backend, mirror_counter and mirror_backend_counter), and of the two targets
// the same counters. The states are written through P4Runtime to both targets, each
// as the diff from the previous one, so inserts, modifies and deletes are all
// exercised, and must read back as written.
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
	for _, name := range compile.TableOrder {
		tb, err := tl.info.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, tb.ID)
	}

	// The mirror's clone session, which BMv2 copies through (XDP keeps it
	// without needing it), written once: the states change only entries.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := parallel(func(tg *target) error { return tg.write(ctx, [][]*p4v1.Update{{mirrorSession()}}) }, tl.xdp, tl.bmv2)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	g := NewGen(seed)
	// IPv6 frames and tables are drawn on every run since all three targets
	// pass them; GRAYGW_DIFF_IPV6=0 draws IPv4 only (to tell a regression's
	// family apart).
	g.IPv6 = os.Getenv("GRAYGW_DIFF_IPV6") != "0"
	var have []*p4v1.TableEntry
	seen := map[string]int{}
	sent, states, updates := 0, 0, 0
	for sent < total {
		st, owners := g.State()
		frames := make([][]byte, min(framesPerState, total-sent))
		inputs := make([]input, len(frames))
		for i := range frames {
			frames[i] = g.Frame(st)
			inputs[i] = input{port: g.Ingress(), frame: frames[i]}
		}
		g.Fill(st, owners, frames)
		g.Sharpen(st, frames)
		ents := compile.FromModel(st)
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
		have, updates = want, updates+len(plan.Updates)
		// Both hold exactly the state, as P4Runtime reads it back.
		for _, tg := range []*target{tl.xdp, tl.bmv2} {
			if d := tl.holds(ctx, tg, ents); d != "" {
				cancel()
				t.Fatalf("seed %d state %d: %s does not read back what was written:%s", seed, states, tg.name, d)
			}
		}
		cancel()

		run := &stateRun{tl: tl, seed: seed, index: states, st: st, ents: ents, keys: KeysOf(st)}
		for b := 0; b < len(inputs); b += batchSize {
			batch := inputs[b:min(b+batchSize, len(inputs))]
			if msg := run.compare(t, batch); msg != "" {
				run.fail(t, batch, b, msg)
			}
		}
		for _, in := range inputs {
			r := model.ProcessPort(st, uint16(in.port), in.frame)
			seen[r.Verdict.String()+" "+r.Reason.String()]++
			if r.Rule >= 0 {
				seen["gray rule "+[...]string{"", "set_pool", "split_pool", "set_pool_mirror"}[st.GrayRules[r.Rule].Action]]++
			}
			if r.RuleV6 >= 0 {
				seen["gray_rules_v6 "+[...]string{"", "set_pool", "split_pool"}[st.GrayRulesV6[r.RuleV6].Action]]++
			}
			if p := model.Parse(in.frame); r.Verdict == model.Forward && (p.Outer6 || r.IPv6) {
				seen[fmt.Sprintf("forward IPv6: outer %v, flow %v", p.Outer6, r.IPv6)]++
			}
			switch {
			case r.Copy != nil && r.Copy.Sent:
				seen["mirror copy sent"]++
			case r.Copy != nil:
				seen["mirror copy without backend"]++
			case r.Rule >= 0 && st.GrayRules[r.Rule].Action == model.SetPoolMirror && r.Verdict == model.Forward:
				seen["mirror rule, VM not sampled"]++
			}
			if r.Verdict != model.Forward {
				continue
			}
			if int(r.Port) == in.port {
				seen["forward to the ingress port"]++
			}
			switch tagIn, tagOut := model.Parse(in.frame).Tagged, model.Parse(r.Frame).Tagged; {
			case tagIn && tagOut:
				seen["forward tagged, VID rewritten"]++
			case tagIn:
				seen["forward tagged, tag removed"]++
			case tagOut:
				seen["forward untagged, tag pushed"]++
			}
			if off := plainChecksum(r.Frame); off > 0 {
				if c := binary.BigEndian.Uint16(r.Frame[off:]); c == 0 || c == 0xffff {
					seen["forward plain, L4 checksum out 0 or ffff"]++
				}
			}
		}
		sent += len(frames)
		states++
	}
	t.Logf("%d frames (%d mirror copies sent) over %d table states (%d P4Runtime updates to each target): 0 mismatches, %v in all",
		sent, seen["mirror copy sent"], states, updates, time.Since(start).Round(time.Millisecond))
	t.Logf("exercised: %v", seen)
	if total >= 1000 {
		for _, k := range []string{"forward NONE", "pass NOT_VIP", "pass NOT_IPV4", "drop NO_BACKEND", "drop TTL_EXPIRED",
			"drop IPV4_MALFORMED", "drop IPV4_FRAGMENT", "drop L4_TRUNCATED", "drop VXLAN_TRUNCATED", "drop VXLAN_BAD_FLAGS",
			"drop INNER_TRUNCATED", "drop INNER_NOT_IPV4", "drop INNER_IPV4_MALFORMED", "drop IPV4_TRUNCATED",
			"gray rule set_pool", "gray rule split_pool", "forward to the ingress port", "forward plain, L4 checksum out 0 or ffff",
			"gray rule set_pool_mirror", "mirror copy sent",
			"drop VLAN_NOT_ACCEPTED", "forward tagged, VID rewritten", "forward tagged, tag removed", "forward untagged, tag pushed"} {
			if seen[k] == 0 {
				t.Errorf("no frame exercised %q: the generator lost coverage", k)
			}
		}
		for _, k := range []string{"drop IPV6_TRUNCATED", "drop IPV6_MALFORMED", "drop IPV6_EXTENSION",
			"drop INNER_IPV6_MALFORMED", "drop INNER_IPV6_EXTENSION", "drop BACKEND_FAMILY",
			"gray_rules_v6 set_pool", "gray_rules_v6 split_pool", "forward IPv6: outer true, flow true",
			"forward IPv6: outer true, flow false", "forward IPv6: outer false, flow true"} {
			if g.IPv6 && seen[k] == 0 {
				t.Errorf("no frame exercised %q: the generator lost IPv6 coverage", k)
			}
		}
	}
}

// plainChecksum is the offset of the L4 checksum of a plain TCP or UDP frame,
// 0 for any other.
func plainChecksum(f []byte) int {
	if p := model.Parse(f); p.Overlay || p.Tagged {
		return 0
	}
	switch f[14+9] {
	case 6:
		return 14 + 20 + 16
	case 17:
		return 14 + 20 + 6
	}
	return 0
}

// parallel runs f for each target at once and returns the first error.
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

// input is a frame and the port it enters.
type input struct {
	port  int
	frame []byte
}

// observed is what one target did with a batch.
type observed struct {
	out    map[int][][]byte // by egress port
	passed [][]byte         // XDP only: to the kernel
	counts Counts           // deltas
	abs    Counts           // the counters after the batch
}

// compare sends batch to both targets and returns "" when both did exactly
// what the model says, else what differs.
func (r *stateRun) compare(t *testing.T, batch []input) string {
	t.Helper()
	want := observed{out: map[int][][]byte{}, counts: NewCounts()}
	pass, sent := 0, 0 // frames the model passes to the kernel, sends to ports
	for _, in := range batch {
		f := in.frame
		res := model.ProcessPort(r.st, uint16(in.port), f)
		want.counts.Expect(r.keys, f, res)
		switch res.Verdict {
		case model.Forward:
			want.out[int(res.Port)] = append(want.out[int(res.Port)], res.Frame)
			sent++
			if c := res.Copy; c != nil && c.Sent {
				want.out[int(c.Port)] = append(want.out[int(c.Port)], c.Frame)
				sent++
			}
		case model.NotForUs:
			want.passed = append(want.passed, f)
			pass++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := map[string]Counts{}
	for _, tg := range []*target{r.tl.xdp, r.tl.bmv2} {
		c, err := r.tl.counters(ctx, tg, &r.keys)
		if err != nil {
			t.Fatal(err)
		}
		before[tg.name] = c
	}
	r.tl.rx.take()
	r.tl.passed.take()
	// processed is how many frames of the batch tg has dealt with so far:
	// every frame ends in a frame sent, a frame passed or a counted drop. A
	// mirror copy sent is not a frame of the batch: it is taken off once
	// mirror_backend_counter counts it, which may be before it is seen, never
	// after.
	processed := func(tg *target) (int, error) {
		// Frames seen first, counters after: a frame a target sent was counted
		// before it left.
		n := r.tl.rx.count()[tg.name]
		if tg == r.tl.xdp {
			// A frame passed to the kernel is counted too; wait for both.
			n -= pass - r.tl.passed.count()["kernel"]
		}
		c, err := r.tl.counters(ctx, tg, &r.keys)
		d := sub(c, before[tg.name])
		return n + int(d.dropped()) - int(d.sent()), err
	}
	// awaitSent waits until tg sent n frames, or sent none for quiet: a copy
	// may leave after every frame of the batch was processed.
	awaitSent := func(tg *target, n int) {
		last, since := -1, time.Now()
		for got := r.tl.rx.count()[tg.name]; got < n; got = r.tl.rx.count()[tg.name] {
			if got != last {
				last, since = got, time.Now()
			} else if time.Since(since) > quiet {
				return
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	// await waits until tg processed n frames, or made no progress for quiet.
	await := func(tg *target, n int) error {
		last, since := -1, time.Now()
		for {
			got, err := processed(tg)
			if err != nil || got >= n {
				return err
			}
			if got != last {
				last, since = got, time.Now()
			} else if time.Since(since) > quiet {
				return nil
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	if err := parallel(func(tg *target) error {
		for i, in := range batch {
			// BMv2 loses frames that arrive faster than it processes them
			// (about 1 ms each): keep at most window frames in flight.
			if tg == r.tl.bmv2 && i >= window {
				if err := await(tg, i-window+1); err != nil {
					return err
				}
			}
			if err := tg.tx.send(in.port, in.frame); err != nil {
				return fmt.Errorf("send %d bytes to %s port %d: %w", len(in.frame), tg.name, in.port, err)
			}
		}
		if err := await(tg, len(batch)); err != nil {
			return err
		}
		awaitSent(tg, sent)
		return nil
	}, r.tl.xdp, r.tl.bmv2); err != nil {
		t.Fatal(err)
	}
	// A frame sent in excess would come right after: give it a moment.
	time.Sleep(5 * time.Millisecond)
	got := map[string]*observed{}
	for _, tg := range []*target{r.tl.xdp, r.tl.bmv2} {
		abs, err := r.tl.counters(ctx, tg, &r.keys)
		if err != nil {
			t.Fatal(err)
		}
		got[tg.name] = &observed{out: map[int][][]byte{}, counts: sub(abs, before[tg.name]), abs: abs}
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
	// Same frames, same entries since the pipeline push: the same counters,
	// whatever each target did with cells across modifies and deletes.
	if d := got["bmv2"].abs.Diff(got["xdp"].abs); d != "" {
		fmt.Fprintf(&msg, "\nbmv2's counters are not xdp's (got bmv2, want xdp):%s", d)
	}
	return msg.String()
}

// sameFrames reports whether a and b hold the same frames, in any order:
// frames entering different ports may leave one port in either order.
func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = sorted(a), sorted(b)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sorted(fs [][]byte) [][]byte {
	return slices.SortedFunc(slices.Values(fs), bytes.Compare)
}

func frameDiff(got, want [][]byte) string {
	got, want = sorted(got), sorted(want)
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
func (r *stateRun) fail(t *testing.T, batch []input, offset int, msg string) {
	t.Helper()
	culprit, cmsg := -1, msg
	for i, in := range batch {
		if m := r.compare(t, []input{in}); m != "" {
			culprit, cmsg = i, m
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, table state %d: mismatch (reproduce: GRAYGW_DIFF_SEED=%d)\n", r.seed, r.index, r.seed)
	if culprit < 0 {
		fmt.Fprintf(&b, "batch of frames %d..%d fails, no frame fails alone:%s\nframes:\n", offset, offset+len(batch)-1, msg)
		for _, in := range batch {
			fmt.Fprintf(&b, "  port %d: %x\n", in.port, in.frame)
		}
	} else {
		orig := batch[culprit]
		min, mmsg := r.shrink(t, orig, cmsg)
		res := model.ProcessPort(r.st, uint16(orig.port), min)
		fmt.Fprintf(&b, "frame %d of the state, into port %d: %x\nminimal case (%d bytes): %x\nmodel: %s %s port %d rule %d pool %d bucket %d backend %d%s\n",
			offset+culprit, orig.port, orig.frame, len(min), min, res.Verdict, res.Reason, res.Port, res.Rule, res.Pool, res.Bucket, res.BackendID, mmsg)
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
func (r *stateRun) shrink(t *testing.T, in input, msg string) ([]byte, string) {
	t.Helper()
	frame, tries := in.frame, 0
	try := func(c []byte) bool {
		if tries >= 60 || len(c) < MinLen(c) || bytes.Equal(c, frame) {
			return false
		}
		tries++
		if m := r.compare(t, []input{{in.port, c}}); m != "" {
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
