package compile

import (
	"errors"
	"reflect"
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

var problemClasses = []error{
	intent.ErrSyntax, intent.ErrUnknownField, intent.ErrRequired, intent.ErrRange, intent.ErrAddress,
	intent.ErrUnknownRef, intent.ErrDuplicate, intent.ErrConflict, intent.ErrNoWeight, intent.ErrOverlap,
	intent.ErrCapacity,
}

// FuzzIntent feeds documents to the loader and validator: they never panic; a
// refused document yields only classified problems and no intent; an accepted one
// round-trips through Marshal, compiles, compiles the same again (also over its
// own result and over the pools recovered from its entries), and loads into the
// reference model. The seed corpus is in
// testdata/fuzz/FuzzIntent.
func FuzzIntent(f *testing.F) {
	f.Add([]byte(world))
	f.Add([]byte(withRules))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := intent.Load(data)
		if err != nil {
			if in != nil {
				t.Fatal("an intent came back with an error")
			}
			var es *intent.Errors
			if !errors.As(err, &es) || len(es.Problems) == 0 {
				t.Fatalf("not a list of problems: %T %v", err, err)
			}
			for _, p := range es.Problems {
				known := false
				for _, c := range problemClasses {
					known = known || errors.Is(p, c)
				}
				if !known || p.Msg == "" {
					t.Fatalf("unclassified problem %q", p.Error())
				}
			}
			return
		}
		spec, err := intent.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := intent.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := intent.Parse(out)
		if err != nil || !reflect.DeepEqual(spec, again) {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		r1, err := Compile(in, nil)
		if err != nil {
			t.Fatalf("a valid intent does not compile: %v", err)
		}
		r2, err := Compile(in, nil)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r2.Gateways) {
			t.Fatalf("compilation is not deterministic (%v)", err)
		}
		r3, err := Compile(in, r1)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r3.Gateways) {
			t.Fatalf("recompiling over the installed result changed it (%v)", err)
		}
		for _, g := range r1.Gateways {
			if _, err := ToModel(g.Entries); err != nil {
				t.Fatalf("gateway %s: %v", g.Name, err)
			}
		}
		rec, err := Recover(in, r1.Gateways[0].Entries)
		if err != nil {
			t.Fatalf("recover: %v", err)
		}
		r4, err := Compile(in, rec)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r4.Gateways) {
			t.Fatalf("recompiling over the recovered pools changed the result (%v)", err)
		}
	})
}
