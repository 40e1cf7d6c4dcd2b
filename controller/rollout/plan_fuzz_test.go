package rollout

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile/compiletest"
)

// planFields are the top-level keys a validation problem's path starts with.
var planFields = []string{"version", "name", "vip", "pool", "base_pool", "individual_vms", "probe", "vpcs"}

// FuzzPlan feeds documents to ParsePlan and the validators. Properties:
//   - nothing panics; every error is a *PlanErrors wrapping ErrPlan, each
//     problem with a message, and every validation problem names its field (a
//     path starting with a plan key);
//   - a parsed plan re-marshals to YAML that parses again, and that second
//     spec marshals to the same bytes (a fixpoint) and validates the same way
//     (same plan or same problems);
//   - Validate succeeding implies ValidatePartial succeeds with the same steps;
//     a valid plan's steps are numbered 1..n with distinct rule names of at
//     most 63 characters, and Plan.Marshal loads back to the same steps;
//   - Resolve (against an intent with an inventory) leaves its input unchanged
//     and never makes a partially valid plan fail ValidatePartial.
//
// Seeds: docs/examples/plan.yaml and testdata/fuzz/FuzzPlan.
func FuzzPlan(f *testing.F) {
	if ex, err := os.ReadFile("../../docs/examples/plan.yaml"); err == nil {
		f.Add(ex)
	}
	f.Add([]byte("version: 1\nname: p\npool: gray\nvpcs:\n  - {vni: 5001}\n  - {vni: 5002, router: 192.168.2.1, vms: [192.168.2.5]}\n"))
	f.Add([]byte("version: 1\nname: p\npool: gray\nindividual_vms: 0\nprobe: {count: 2, scope: step}\nvpcs:\n  - {vni: 1, router: 10.0.0.1, destinations: [10.96.0.1], vms: [10.0.1.5, 10.0.1.6], individual_vms: 2}\n"))
	in := compiletest.Load(f, invIntent)
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParsePlan(data)
		if err != nil {
			checkPlanErr(t, err, false)
			if spec != nil {
				t.Fatal("a spec came back with an error")
			}
			return
		}
		p1, err1 := spec.Validate()
		checkPlanErr(t, err1, true)

		// Round trip.
		out, err := marshalSpec(spec)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParsePlan(out)
		if err != nil {
			t.Fatalf("a parsed plan does not parse after Marshal: %v\n%s", err, out)
		}
		out2, err := marshalSpec(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshal is not a fixpoint (%v):\n%s\n---\n%s", err, out, out2)
		}
		p2, err2 := again.Validate()
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Fatalf("validation differs after the round trip: %v / %v", err1, err2)
		}
		if err1 == nil && !samePlan(p1, p2) {
			t.Fatalf("round trip changed the plan:\n%+v\n%+v", p1, p2)
		}

		pp, errp := spec.ValidatePartial()
		checkPlanErr(t, errp, true)
		if err1 == nil {
			if errp != nil || !reflect.DeepEqual(p1.Steps, pp.Steps) {
				t.Fatalf("valid plan, partial validation: %v", errp)
			}
			rules := map[string]bool{}
			for i, s := range p1.Steps {
				if s.Index != i+1 || rules[s.Rule] || len(s.Rule) > 63 || s.VNI == 0 {
					t.Fatalf("step %d: %+v", i+1, s)
				}
				rules[s.Rule] = true
			}
			b, err := p1.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p3, err := LoadPlan(b)
			if err != nil || !reflect.DeepEqual(p1.Steps, p3.Steps) {
				t.Fatalf("Plan.Marshal does not load back: %v\n%s", err, b)
			}
		}

		// Resolve against an inventory.
		before, _ := marshalSpec(spec)
		r := spec.Resolve(in)
		if after, _ := marshalSpec(spec); !bytes.Equal(before, after) {
			t.Fatalf("Resolve changed its input")
		}
		_, errw := spec.ValidateWith(in)
		checkPlanErr(t, errw, true)
		if _, err := r.ValidatePartial(); errp == nil && err != nil {
			t.Fatalf("resolving broke a partially valid plan: %v", err)
		}
	})
}

func marshalSpec(s *PlanSpec) ([]byte, error) { return (&Plan{Spec: *s}).Marshal() }

// samePlan compares two validated plans but their specs (which may differ in
// nil against empty lists).
func samePlan(a, b *Plan) bool {
	x, y := *a, *b
	x.Spec, y.Spec = PlanSpec{}, PlanSpec{}
	return reflect.DeepEqual(x, y)
}

func checkPlanErr(t *testing.T, err error, validation bool) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *PlanErrors
	if !errors.As(err, &pe) || !errors.Is(err, ErrPlan) || len(pe.Problems) == 0 {
		t.Fatalf("not a list of plan problems: %T %v", err, err)
	}
	for _, p := range pe.Problems {
		if p.Msg == "" {
			t.Fatalf("problem without a message: %+v", p)
		}
		if !validation {
			continue
		}
		ok := false
		for _, f := range planFields {
			ok = ok || p.Path == f || strings.HasPrefix(p.Path, f+".") || strings.HasPrefix(p.Path, f+"[")
		}
		if !ok {
			t.Fatalf("problem does not name a field: %q: %s", p.Path, p.Msg)
		}
	}
}
