package model_test

import (
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// FuzzParse feeds arbitrary frames to the parser and the whole pipeline, over
// the basic and the ipv6 vector states: they must never panic (and so never
// read past the frame), a forwarded frame keeps its length (but for its tag),
// an IPv6 outer frame's valid L4 checksum stays valid, and the reason agrees
// with the verdict.
func FuzzParse(f *testing.F) {
	vf, vf6 := testvectors.Both(f)
	for _, c := range append(vf.Cases, vf6.Cases...) {
		b, _ := c.Frame()
		f.Add(b)
	}
	var states []*model.State
	for _, st := range []testvectors.State{vf.States["basic"], vf6.States[testvectors.StateIPv6]} {
		s, err := st.Model()
		if err != nil {
			f.Fatal(err)
		}
		states = append(states, s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		p := model.Parse(frame)
		if p.Reason >= pipeline.NumReasons {
			t.Fatalf("reason %d out of range", p.Reason)
		}
		for _, s := range states {
			check(t, frame, model.Process(s, frame))
		}
	})
}

// check: a forwarded frame keeps its length but for an 802.1Q tag removed or
// pushed, and the reason agrees with the verdict.
func check(t *testing.T, frame []byte, r model.Result) {
	t.Helper()
	switch r.Verdict {
	case model.Forward:
		want := len(frame)
		if model.Parse(frame).Tagged {
			want -= pipeline.VLANTagLen
		}
		if model.Parse(r.Frame).Tagged {
			want += pipeline.VLANTagLen
		}
		if r.Reason != pipeline.None || len(r.Frame) != want {
			t.Fatalf("forward with reason %v, len %d -> %d", r.Reason, len(frame), len(r.Frame))
		}
		// An IPv6 outer frame's L4 checksum (TCP, UDP, ICMPv6, VXLAN's UDP)
		// that was valid is valid for the new destination.
		in, out := frame, r.Frame
		if model.Parse(in).Tagged {
			in = model.Untag(in)
		}
		if model.Parse(out).Tagged {
			out = model.Untag(out)
		}
		if p := model.Parse(in); p.Outer6 && checksummed6(in[14+6]) && testpkt.L4ChecksumOK6(in[14:]) && !testpkt.L4ChecksumOK6(out[14:]) {
			t.Fatalf("a valid L4 checksum broken by the IPv6 rewrite:\n in %x\nout %x", in, out)
		}
	case model.NotForUs:
		if !r.Reason.NotForUs() {
			t.Fatalf("pass with reason %v", r.Reason)
		}
	case model.Drop:
		if r.Reason == pipeline.None || r.Reason.NotForUs() {
			t.Fatalf("drop with reason %v", r.Reason)
		}
	}
}

// checksummed6 reports whether an IPv6 next header has a checksum the
// rewrite updates (docs/pipeline.md §8).
func checksummed6(next byte) bool {
	return next == testpkt.ProtoTCP || next == testpkt.ProtoUDP || next == testpkt.ProtoICMPv6
}
