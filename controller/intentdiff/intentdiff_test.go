package intentdiff

import (
	"os"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

func load(t *testing.T, doc string) *intent.Intent {
	t.Helper()
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return in
}

func TestCompare(t *testing.T) {
	data, err := os.ReadFile("../../docs/examples/intent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := load(t, string(data))
	if d := Compare(a, a); len(d) != 0 {
		t.Fatalf("an intent differs from itself: %v", d)
	}
	doc := string(data)
	for _, r := range []struct{ old, new string }{
		// gray-2 undrained (weight 0 -> 1), a rule moved to another pool,
		// a rule added, health failover on for base-router.
		{"        weight: 0                # draining: keeps its backend entry, gets no bucket\n", ""},
		{"  - name: vpc-5002\n    match: {vip: vpc-router, vni: 5002}\n    pool: gray-router\n",
			"  - name: vpc-5002\n    match: {vip: vpc-router, vni: 5002}\n    pool: base-router\n  - name: vm-10.0.0.9\n    match: {vip: vpc-router, vni: 5001, src: 10.0.0.9}\n    pool: gray-router\n"},
		{"    cluster: base                # base | gray (the software version the backends run)\n",
			"    cluster: base                # base | gray (the software version the backends run)\n    health_failover: true\n"},
	} {
		if !strings.Contains(doc, r.old) {
			t.Fatalf("the example lacks %q", r.old)
		}
		doc = strings.Replace(doc, r.old, r.new, 1)
	}
	b := load(t, doc)
	var got []string
	for _, d := range Compare(a, b) {
		got = append(got, d.String())
	}
	want := []string{
		"pool base-router changed: health_failover false -> true",
		"member gray-router/gray-2 changed: weight 0 -> 1",
		"rule vm-10.0.0.9 added: match vip=vpc-router vni=5001 src=10.0.0.9; pool gray-router; priority " + prio(b, "vm-10.0.0.9"),
		"rule vpc-5002 changed: pool gray-router -> base-router",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Compare:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Reversed: the same objects, the other way.
	rev := Compare(b, a)
	if len(rev) != 4 || rev[2].Op != Removed || rev[2].Name != "vm-10.0.0.9" {
		t.Errorf("reversed: %v", rev)
	}
	if d := Compare(nil, a); len(d) == 0 || d[0].Op != Added {
		t.Errorf("from nothing: %v", d)
	}
}

func prio(in *intent.Intent, rule string) string {
	for _, r := range in.Rules {
		if r.Name == rule {
			return strings.TrimSpace(strings.Split(ruleFields(r)[3].value, " ")[0])
		}
	}
	return "?"
}
