package model_test

import (
	"testing"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// FuzzParse feeds arbitrary frames to the parser and the whole pipeline: they must
// never panic (and so never read past the frame), a forwarded frame keeps its
// length, and the reason agrees with the verdict.
func FuzzParse(f *testing.F) {
	vf, err := testvectors.Committed()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range vf.Cases {
		b, _ := c.Frame()
		f.Add(b)
	}
	st := vf.States["basic"]
	s, err := st.Model()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		p := model.Parse(frame)
		if p.Reason >= pipeline.NumReasons {
			t.Fatalf("reason %d out of range", p.Reason)
		}
		r := model.Process(s, frame)
		switch r.Verdict {
		case model.Forward:
			if r.Reason != pipeline.None || len(r.Frame) != len(frame) {
				t.Fatalf("forward with reason %v, len %d -> %d", r.Reason, len(frame), len(r.Frame))
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
	})
}
