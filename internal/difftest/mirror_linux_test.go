package difftest

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestMirror runs the vectors' mirror state (docs/pipeline.md §10) on the
// XDP program (its tc program sends the copies) and on the v1model program
// (clone and recirculation): every served frame leaves as the model says,
// every copy leaves on the gray port rewritten for its gray backend and
// marked, nothing else leaves, and mirror_counter and mirror_backend_counter,
// read over P4Runtime, count exactly the copies. Then the rules stop mirroring
// and no copy leaves.
func TestMirror(t *testing.T) {
	tl, ctx := vectorLab(t, 2*time.Minute)
	f, st, b := tl.loadState(ctx, t, testvectors.StateMirror)
	tl.onBoth(t, func(t *testing.T, tg *target) { tl.mirrorCases(ctx, t, tg, f, st, b) })
}

func (tl *testLab) mirrorCases(ctx context.Context, t *testing.T, tg *target, f *testvectors.File, st testvectors.State, b p4rtest.Builder) {

	var cases []testvectors.Case
	for _, c := range f.Cases {
		if c.State == testvectors.StateMirror {
			cases = append(cases, c)
		}
	}
	wantCopies := map[uint16]int{} // by mirror id
	wantSent := map[uint16]int{}   // by backend id
	for _, c := range cases {
		frame, _ := c.Frame()
		got := tl.sendOne(t, tg, frame)
		want := map[int][]string{}
		if c.Expect.Verdict == "forward" {
			want[int(c.Expect.Port)] = append(want[int(c.Expect.Port)], c.Expect.Packet)
		}
		if cp := c.Expect.Copy; cp != nil {
			wantCopies[cp.MirrorID]++
			if cp.Sent {
				want[int(cp.Port)] = append(want[int(cp.Port)], cp.Packet)
				wantSent[cp.BackendID]++
			}
		}
		if !sameOut(got, want) {
			t.Errorf("case %s: %s sent %v, want %v", c.Name, tg.name, got, want)
		}
	}
	t.Logf("%d mirror cases: copies made by mirror id %v, sent by backend %v", len(cases), wantCopies, wantSent)
	for id := range uint16(3) {
		if n := tl.indexed(ctx, t, tg, pipeline.CounterMirror, int64(id)); n != wantCopies[id] {
			t.Errorf("mirror_counter[%d] = %d, want %d", id, n, wantCopies[id])
		}
	}
	for _, id := range []uint16{11, 12, 13, 21, 22} {
		if n := tl.indexed(ctx, t, tg, pipeline.CounterMirrorBackend, int64(id)); n != wantSent[id] {
			t.Errorf("mirror_backend_counter[%d] = %d, want %d", id, n, wantSent[id])
		}
	}

	// The mirror stops: each rule becomes the set_pool of its serving pool,
	// and the same frames leave served only.
	var stop []*p4v1.Update
	for _, r := range st.GrayRules {
		if r.Action != "set_pool_mirror" {
			continue
		}
		r.Action, r.Params = "set_pool", map[string]uint64{pipeline.ParamPoolID.Name: r.Params[pipeline.ParamPoolID.Name]}
		u := p4rtest.StateUpdates(t, b, testvectors.State{GrayRules: []testvectors.RuleEntry{r}})[0]
		u.Type = p4v1.Update_MODIFY
		stop = append(stop, u)
	}
	if err := tg.write(ctx, [][]*p4v1.Update{stop}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		frame, _ := c.Frame()
		got := tl.sendOne(t, tg, frame)
		want := map[int][]string{}
		if c.Expect.Verdict == "forward" {
			want[int(c.Expect.Port)] = []string{c.Expect.Packet}
		}
		if !sameOut(got, want) {
			t.Errorf("case %s after the mirror stopped: %s sent %v, want %v", c.Name, tg.name, got, want)
		}
	}
	if n := tl.indexed(ctx, t, tg, pipeline.CounterMirror, 1); n != wantCopies[1] {
		t.Errorf("mirror_counter[1] = %d after the mirror stopped, want still %d", n, wantCopies[1])
	}
}

// mirrorSession inserts the clone session the controller writes to a v1model
// gateway (docs/pipeline.md §10).
func mirrorSession() *p4v1.Update {
	return &p4v1.Update{Type: p4v1.Update_INSERT, Entity: engine.MirrorSession("v1model")}
}

// loadState writes the committed vectors' state name to both targets, BMv2
// with the clone session its mirror copies go through (XDP needs none), and
// returns the vectors, the state and the builder that wrote it.
func (tl *testLab) loadState(ctx context.Context, t *testing.T, name string) (*testvectors.File, testvectors.State, p4rtest.Builder) {
	t.Helper()
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	b := p4rtest.Builder{T: t, Info: tl.info}
	st := f.States[name]
	if err := tl.xdp.write(ctx, [][]*p4v1.Update{p4rtest.StateUpdates(t, b, st)}); err != nil {
		t.Fatal(err)
	}
	ups := append(p4rtest.StateUpdates(t, b, st), mirrorSession())
	if err := tl.bmv2.write(ctx, [][]*p4v1.Update{ups}); err != nil {
		t.Fatal(err)
	}
	return f, st, b
}

// sendOne sends frame into tg's port 1 and returns, by port, the hex of every
// frame tg sent within the next 300 ms (a frame and its copy: BMv2 takes
// about a millisecond per pass).
func (tl *testLab) sendOne(t *testing.T, tg *target, frame []byte) map[int][]string {
	t.Helper()
	return tl.sendOn(t, tg, 1, frame)
}

// sendOn is sendOne into port port.
func (tl *testLab) sendOn(t *testing.T, tg *target, port int, frame []byte) map[int][]string {
	t.Helper()
	tl.rx.take()
	if err := tg.tx.send(port, frame); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	got := map[int][]string{}
	for _, f := range tl.rx.take() {
		if f.target == tg.name {
			got[f.port] = append(got[f.port], hex.EncodeToString(f.data))
		}
	}
	return got
}

func sameOut(a, b map[int][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for p, fs := range a {
		if len(fs) != len(b[p]) {
			return false
		}
		for i := range fs {
			if !bytes.Equal([]byte(fs[i]), []byte(b[p][i])) {
				return false
			}
		}
	}
	return true
}

// indexed reads one cell's packet count of an indexed counter from tg.
func (tl *testLab) indexed(ctx context.Context, t *testing.T, tg *target, name string, index int64) int {
	t.Helper()
	c, err := tl.info.Counter(name)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := p4rtest.Read(ctx, tg.rt, 1, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
		CounterId: c.ID, Index: &p4v1.Index{Index: index}}}})
	if err != nil || len(ents) != 1 {
		t.Fatalf("read %s[%d]: %d entities, %v", name, index, len(ents), err)
	}
	return int(ents[0].GetCounterEntry().GetData().GetPacketCount())
}
