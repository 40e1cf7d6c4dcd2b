package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/pipeline"
)

// A gateway whose program has no IPv6 tables gets the IPv4 entries of an
// IPv4 intent, without the gray_rules_v6 entries of its rules without an
// address (it cannot receive an IPv6 flow); an IPv6 rule, VIP or backend
// is refused for it, named.
func TestWithoutIPv6(t *testing.T) {
	compiled := func(d intenttest.Doc) []compile.Entry {
		t.Helper()
		_, res := compiletest.Doc(t, d.YAML())
		return res.Gateways[0].Entries
	}
	d := intenttest.Small()
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}"}
	d.Rules = []string{"{name: vm, match: {vni: 5001, src: 10.0.0.5}, pool: gray}", "{name: vpc, match: {vni: 5002}, pool: gray}"}
	all := compiled(d)
	got, err := withoutIPv6("gw1", all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all)-1 {
		t.Fatalf("%d entries of %d: want one left out", len(got), len(all))
	}
	for _, e := range got {
		if e.Table == pipeline.TableGrayRulesV6 {
			t.Fatalf("kept %s", e.String())
		}
	}
	if n := len(all); all[n-1].Table != pipeline.TableGrayRules {
		t.Fatal("withoutIPv6 changed its argument")
	}

	d.Rules = append(d.Rules, `{name: vm6, match: {vni: 5001, src: "2001:db8::5"}, pool: gray}`)
	if _, err := withoutIPv6("gw1", compiled(d)); !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "gateway gw1 runs a program without IPv6") ||
		!strings.Contains(err.Error(), "rule vm6") {
		t.Errorf("an IPv6 rule: %v", err)
	}
	if _, err := withoutIPv6("gw1", compiled(intenttest.IPv6(intenttest.Small()))); !errors.Is(err, ErrCompile) {
		t.Errorf("an IPv6 VIP and backends: %v", err)
	}
}
