package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/controller/probe"
)

var localIntent = func() string {
	d := intenttest.Router()
	d.Pools[1].HashFields = ""
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}"}
	d.Rules = []string{"{name: pinned, match: {vip: vpc-router, vni: 5002, src: 192.168.2.9}, pool: base-router}"}
	return d.YAML()
}()

func TestLocalController(t *testing.T) {
	spec, err := intent.Parse([]byte(localIntent))
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	var last *compile.Result
	l, err := NewLocal(spec, func(_ *intent.Intent, r *compile.Result) error { applied++; last = r; return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vni := int64(5001)
	vm := Scope{Name: "vm5", Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni, Src: "192.168.1.5"}}
	if name, err := l.Cutover(ctx, vm, "gray-router", true); err != nil || name != "vm5" || applied != 1 {
		t.Fatalf("dry run: %q %v, applied %d", name, err, applied)
	}
	if _, err := l.Cutover(ctx, vm, "gray-router", false); err != nil || applied != 2 || len(l.Rules()) != 1 {
		t.Fatalf("cutover: %v applied %d", err, applied)
	}
	if n := countRules(last); n != 2 {
		t.Errorf("%d gray_rules entries, want 2 (pinned + vm5)", n)
	}
	// Idempotent under the same name; refused with another selector.
	if _, err := l.Cutover(ctx, vm, "gray-router", false); err != nil || len(l.Rules()) != 1 {
		t.Errorf("repeat: %v, %d rules", err, len(l.Rules()))
	}
	other := vm
	other.Match.Src = "192.168.1.6"
	if _, err := l.Cutover(ctx, other, "gray-router", false); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `rule "vm5" already exists`) {
		t.Errorf("same name, other selector: %v", err)
	}
	// Unknown VNI, unknown pool, plain-traffic percentage with a bad value.
	bad := int64(7777)
	if _, err := l.Cutover(ctx, Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &bad}}, "gray-router", false); !errors.Is(err, ErrUnknownVNI) {
		t.Errorf("unknown VNI: %v", err)
	}
	if _, err := l.Cutover(ctx, Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni}}, "nope", false); !errors.Is(err, intent.ErrUnknownRef) {
		t.Errorf("unknown pool: %v", err)
	}
	if _, err := l.Cutover(ctx, Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni}, Percent: 150}, "gray-router", false); !errors.Is(err, intent.ErrRange) {
		t.Errorf("150%%: %v", err)
	}
	// A percentage split gets a generated name.
	name, err := l.Cutover(ctx, Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni}, Percent: 25}, "gray-router", false)
	if err != nil || name != "cutover-1" {
		t.Errorf("split: %q %v", name, err)
	}
	if applied != 3 {
		t.Errorf("refused changes were applied: %d applies, want 3", applied)
	}
	// Rollback: the intent's own rule is refused, an unknown one is a no-op.
	if err := l.Rollback(ctx, "pinned"); !errors.Is(err, ErrRefused) {
		t.Errorf("rollback of an intent rule: %v", err)
	}
	if err := l.Rollback(ctx, "never-was"); err != nil || applied != 3 {
		t.Errorf("rollback of an unknown rule: %v (applies %d)", err, applied)
	}
	for _, r := range []string{"vm5", "cutover-1"} {
		if err := l.Rollback(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.Rules()) != 0 || countRules(last) != 1 {
		t.Errorf("after rollbacks: %v, %d entries", l.Rules(), countRules(last))
	}
	if _, err := l.Probe(ctx, nil, probe.Options{}); err == nil {
		t.Error("probe without a prober succeeded")
	}
}

func countRules(r *compile.Result) int {
	n := 0
	for _, e := range r.Gateways[0].Entries {
		if e.Table == "GrayIngress.gray_rules" {
			n++
		}
	}
	return n
}
