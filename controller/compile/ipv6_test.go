package compile

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/pipeline"
)

// ipv6Intent is the small world with an IPv6 VIP and underlay, a tenant and
// rules of each family.
func ipv6Intent(t *testing.T, rules ...string) *intent.Intent {
	t.Helper()
	d := intenttest.IPv6(intenttest.Small())
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001, 5002]}"}
	d.Rules = rules
	in, err := intent.Load([]byte(d.YAML()))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// byTable returns the entries of one table.
func byTable(es []Entry, table string) []Entry {
	var out []Entry
	for _, e := range es {
		if e.Table == table {
			out = append(out, e)
		}
	}
	return out
}

// An IPv6 VIP is a vip_v6 entry, an IPv6 backend a to_backend_v6 one, and
// a rule goes to gray_rules, gray_rules_v6 or both by its addresses' family
// (docs/intent.md, IPv6); a mirrored rule without an address mirrors in
// gray_rules only.
func TestCompileIPv6(t *testing.T) {
	in := ipv6Intent(t,
		`{name: vm6, match: {vni: 5001, src: "2001:db8::5"}, pool: gray}`,
		`{name: net6, match: {vni: 5001, dst: "2001:db8:1::/64"}, percent: 25, pool: gray}`,
		`{name: vm4, match: {vni: 5001, src: 10.0.0.5}, pool: gray}`,
		`{name: vpc, match: {vni: 5002}, pool: base, mirror: {pool: gray}}`,
	)
	res, err := Compile(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	es := res.Gateways[0].Entries

	if v := byTable(es, pipeline.TableVIP); len(v) != 0 {
		t.Errorf("vip entries for an IPv6 VIP: %v", v)
	}
	vips := byTable(es, pipeline.TableVIPv6)
	want := netip.MustParseAddr("2001:db8:ff::1").As16()
	if len(vips) != 1 || vips[0].Match[0].Field != "dst_addr" || vips[0].Match[0].Bits != 128 || !bytes.Equal(vips[0].Match[0].Value, want[:]) ||
		vips[0].Action != pipeline.ActionSetVIPv6 {
		t.Fatalf("vip_v6 entries %v", vips)
	}
	for _, e := range byTable(es, pipeline.TableBackend) {
		p, ok := e.Param("underlay_ip")
		if e.Action != pipeline.ActionToBackendV6 || !ok || p.Bits != 128 || len(p.Value) != 16 || p.Value[0] != 0x20 {
			t.Errorf("backend %s", e.String())
		}
	}

	origins := func(table string) map[string]*Entry {
		m := map[string]*Entry{}
		for _, e := range byTable(es, table) {
			m[e.Origin] = &e
		}
		return m
	}
	v4, v6 := origins(pipeline.TableGrayRules), origins(pipeline.TableGrayRulesV6)
	for rule, tables := range map[string][2]bool{"vm6": {false, true}, "net6": {false, true}, "vm4": {true, false}, "vpc": {true, true}} {
		_, in4 := v4["rule "+rule]
		_, in6 := v6["rule "+rule]
		if in4 != tables[0] || in6 != tables[1] {
			t.Errorf("rule %s: in gray_rules %v, gray_rules_v6 %v; want %v", rule, in4, in6, tables)
		}
	}
	vm6 := v6["rule vm6"]
	src, ok := vm6.Field("inner_src")
	addr := netip.MustParseAddr("2001:db8::5").As16()
	if !ok || src.Bits != 128 || !bytes.Equal(src.Value, addr[:]) || !bytes.Equal(src.Mask, bytes.Repeat([]byte{0xff}, 16)) ||
		vm6.Priority != 5152 || vm6.Action != pipeline.ActionSetPoolV6 {
		t.Errorf("vm6: %s prio %d", vm6.String(), vm6.Priority)
	}
	net6 := v6["rule net6"]
	dst, _ := net6.Field("inner_dst")
	if net6.Action != pipeline.ActionSplitPoolV6 || !bytes.Equal(dst.Mask, append(bytes.Repeat([]byte{0xff}, 8), make([]byte, 8)...)) {
		t.Errorf("net6: %s", net6.String())
	}
	if v4["rule vpc"].Action != pipeline.ActionSetPoolMirror || v6["rule vpc"].Action != pipeline.ActionSetPoolV6 {
		t.Errorf("vpc: %s / %s", v4["rule vpc"].String(), v6["rule vpc"].String())
	}
	if _, ok := v6["rule vpc"].Field("inner_src"); ok {
		t.Error("an address-less rule's gray_rules_v6 entry fixes inner_src")
	}

	// The entries are in make-before-break table order (vip_v6 after vip,
	// the rule tables last).
	rank := -1
	for _, e := range es {
		r := tableRank(e.Table)
		if r < rank {
			t.Fatalf("%s out of table order", e.Table)
		}
		rank = r
	}

	// Recompiling over the result reuses every rule entry as it is, and a
	// change of an address-less rule changes its two entries only.
	again, err := Compile(in, res)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffEntries(es, again.Gateways[0].Entries); d != "" {
		t.Errorf("recompile changed: %s", d)
	}
}

// diffEntries names the first entry that differs ("" when none).
func diffEntries(a, b []Entry) string {
	if len(a) != len(b) {
		return "count"
	}
	for i := range a {
		if !a[i].Equal(&b[i]) {
			return a[i].String() + " != " + b[i].String()
		}
	}
	return ""
}
