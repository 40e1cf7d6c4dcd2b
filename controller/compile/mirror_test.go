package compile

import (
	"errors"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// A rule with a mirror (docs/pipeline.md §10) compiles to set_pool_mirror: its
// traffic is served exactly as without the mirror, and the sampled VMs' frames
// are copied to a backend of the mirror pool, counted under the rule's mirror id.
func TestMirrorRuleServesAsBeforeAndCopiesToTheMirrorPool(t *testing.T) {
	const rules = `
  - name: shadow-5001
    match: {vni: 5001}
    pool: base
    mirror: {pool: gray, rate: 4}
  - name: shadow-6001
    match: {vni: 6001}
    pool: base
    mirror: {pool: gray}
`
	before := load(t, world)
	after := load(t, world+"gray_rules:\n"+rules)
	g0 := newGW(t, before, mustCompile(t, before, nil))
	res := mustCompile(t, after, nil)
	g1 := newGW(t, after, res)
	if r := after.Rules[0]; !r.Mirrored() || r.MirrorID != 1 || r.MirrorSample != pipeline.Sample(4) || after.Rules[1].MirrorID != 2 {
		t.Fatalf("rules: %+v", after.Rules)
	}
	gray, _ := res.Pool("gray")
	copies, vms := 0, map[string]bool{}
	for _, f := range flows(1, 2000, 5001, 6001, 5002) {
		r0, r1 := model.Process(g0.state, f.frame()), model.Process(g1.state, f.frame())
		if string(r1.Frame) != string(r0.Frame) || r1.Port != r0.Port {
			t.Fatalf("%+v: served differently with the mirror", f)
		}
		switch {
		case f.vni == 5002 && r1.Copy != nil:
			t.Fatalf("%+v: copied without a rule", f)
		case f.vni == 6001 && (r1.Copy == nil || !r1.Copy.Sent || r1.Copy.MirrorID != 2):
			t.Fatalf("%+v: rate 1, copy %+v", f, r1.Copy)
		case f.vni == 5001:
			if r1.Copy != nil {
				copies++
				if r1.Copy.Pool != gray.ID || r1.Copy.MirrorID != 1 {
					t.Fatalf("%+v: copy %+v, want pool %d id 1", f, r1.Copy, gray.ID)
				}
				vms[f.src] = true
			}
		}
	}
	if copies == 0 || len(vms) == 40 {
		t.Fatalf("rate 1/4: %d copies from %d of 40 VMs", copies, len(vms))
	}
}

func TestMirrorRefusals(t *testing.T) {
	for name, c := range map[string]struct{ rule, want string }{
		"unknown pool": {`{name: r, match: {vni: 5001}, pool: base, mirror: {pool: nope}}`, "mirror.pool"},
		"own pool":     {`{name: r, match: {vni: 5001}, pool: gray, mirror: {pool: gray}}`, "mirror.pool"},
		"rate 0":       {`{name: r, match: {vni: 5001}, pool: base, mirror: {pool: gray, rate: 0}}`, "mirror.rate"},
		"split":        {`{name: r, match: {vni: 5001}, pool: gray, percent: 50, mirror: {pool: base}}`, "mirror"},
	} {
		_, err := intent.Load([]byte(world + "gray_rules:\n  - " + c.rule + "\n"))
		var ie *intent.Errors
		if !errors.As(err, &ie) || !containsPath(ie, c.want) {
			t.Errorf("%s: %v, want a problem at %s", name, err, c.want)
		}
	}
}

func containsPath(ie *intent.Errors, suffix string) bool {
	for _, p := range ie.Problems {
		if len(p.Path) >= len(suffix) && p.Path[len(p.Path)-len(suffix):] == suffix {
			return true
		}
	}
	return false
}
