package difftest

import (
	"reflect"
	"testing"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// The entries written to the targets must hold exactly the state the model
// decides over: the generator's states, through compile.FromModel, the
// P4Runtime codec and back, then loaded by compile.ToModel, come back equal.
func TestEntriesHoldTheState(t *testing.T) {
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	codec := engine.NewCodec(info)
	g := NewGen(1)
	for range 20 {
		st, owners := g.State()
		frames := make([][]byte, 100)
		for i := range frames {
			frames[i] = g.Frame(st)
		}
		g.Fill(st, owners, frames)
		var back []compile.Entry
		for _, e := range compile.FromModel(st) {
			te, err := codec.ToP4(&e)
			if err != nil {
				t.Fatal(err)
			}
			ce, err := codec.FromP4(te)
			if err != nil {
				t.Fatal(err)
			}
			back = append(back, ce)
		}
		got, err := compile.ToModel(back)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("state changed through its entries:\n got %+v\nwant %+v", got, st)
		}
	}
}

// Every frame is one a veth carries unchanged, and the same seed draws the
// same frames.
func TestFramesAreDeliverableAndReproducible(t *testing.T) {
	a, b := NewGen(7), NewGen(7)
	sa, _ := a.State()
	sb, _ := b.State()
	if !reflect.DeepEqual(sa, sb) {
		t.Fatal("the same seed drew two states")
	}
	for range 5000 {
		fa, fb := a.Frame(sa), b.Frame(sb)
		if string(fa) != string(fb) {
			t.Fatalf("the same seed drew %x and %x", fa, fb)
		}
		if len(fa) < MinLen(fa) || len(fa) > MaxFrame {
			t.Fatalf("frame %x is not %d to %d bytes long, as a veth carries", fa, MinLen(fa), MaxFrame)
		}
	}
}

// Expect counts what the pipeline contract counts (docs/pipeline.md §9).
func TestExpectCountsReasonsAndHits(t *testing.T) {
	st := model.NewState()
	st.VIPs[0x0aff0001] = model.VIP{ID: 1, DefaultPool: 1}
	st.Backends[3] = model.Backend{Port: 2}
	st.BackendSelect[model.SelectKey{Pool: 1, Bucket: 0}] = 3
	keys := KeysOf(st)
	c := NewCounts()
	g := NewGen(1)
	frame := g.overlay(testpkt.Eth{Dst: gatewayMAC, Src: clientMAC}, addr(0x0aff0001), 5001, g.srcs[0], g.dsts[0], g.l4())
	r := model.Process(st, frame)
	c.Expect(keys, frame, r)
	if len(c.Direct) != 1 || c.Direct[keys.VIP[0x0aff0001]] != (Cell{1, uint64(len(frame))}) {
		t.Fatalf("a VIP hit counted %v", c.Direct)
	}
	if r.Reason == pipeline.None || c.Drops[r.Reason] != (Cell{1, uint64(len(frame))}) {
		t.Fatalf("reason %s counted %v", r.Reason, c.Drops)
	}
	if d := c.Diff(c); d != "" {
		t.Fatalf("counts differ from themselves: %s", d)
	}
	if d := NewCounts().Diff(c); d == "" {
		t.Fatal("no difference reported between empty and non-empty counts")
	}
}
