package compile

import (
	"reflect"
	"testing"

	"github.com/graygw/graygw/testvectors"
)

// FromModel is the inverse of ToModel: the entries a compiled intent holds
// come back from their model state entry for entry (rules in order, the other
// tables as sets), and every vector state goes round trip unchanged.
func TestFromModelInvertsToModel(t *testing.T) {
	res := mustCompile(t, load(t, world+`gray_rules:
  - {name: vm, match: {vni: 5001, src: 10.0.0.5}, pool: gray}
  - {name: vpc, match: {vni: 5002}, pool: gray}
  - {name: pct, match: {vni: 6001}, percent: 25, pool: gray}
  - {name: web, match: {dst: 10.9.0.0/16, proto: tcp, dport: 443}, pool: gray}
`), nil)
	entries := res.Gateways[0].Entries
	st, err := ToModel(entries)
	if err != nil {
		t.Fatal(err)
	}
	back := FromModel(st)
	key := func(es []Entry) map[string]string {
		m := map[string]string{}
		for i := range es {
			e := es[i]
			e.Origin = ""
			m[e.Key()] = e.String()
		}
		return m
	}
	if got, want := key(back), key(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("FromModel(ToModel(entries)) differs: %d entries, want %d", len(got), len(want))
	}
	var rules, backRules []string
	for _, e := range entries {
		if e.Table == TableOrder[len(TableOrder)-1] {
			rules = append(rules, e.Key())
		}
	}
	for _, e := range back {
		if e.Table == TableOrder[len(TableOrder)-1] {
			backRules = append(backRules, e.Key())
		}
	}
	if len(rules) != 4 || !reflect.DeepEqual(rules, backRules) {
		t.Fatalf("gray rules out of order:\n%v\nwant\n%v", backRules, rules)
	}
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	for name, vs := range f.States {
		want, err := vs.Model()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ToModel(FromModel(want))
		if err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		// The model keeps a rule's value unmasked; the entry masks it.
		for i := range want.GrayRules {
			r := &want.GrayRules[i]
			r.VIPID &= r.VIPMask
			r.Match = r.Match.And(r.Mask)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("state %s: round trip changed it", name)
		}
	}
}
