package intent

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

const fastDoc = `version: 1
gateways:
  - name: gw1
    p4runtime: 127.0.0.1:9559
    bgp_next_hop: 10.1.0.1
    ports:
      2: {interface: p2, mac: "02:00:00:00:01:02"}
vips:
  - {name: vpc, address: 10.255.0.1, default_pool: base}
pools:
  - name: base
    cluster: base
    backends:
      - {name: b1, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}
  - name: gray
    cluster: gray
    backends:
      - {name: g1, underlay_ip: 10.3.0.21, mac: "02:00:00:00:30:21", port: 2}
# the rules
gray_rules:
  - name: a # first
    match: {vni: 5001, src: 10.0.0.5}
    pool: gray
  # b is a VPC
  - name: b
    match: {vni: 5002}
    pool: gray

  - {name: c, match: {vni: 5003}, pool: gray}
  # trailing comment
`

// The spliced text parses to exactly the edited spec, for each layout the
// splice accepts; the layouts it refuses are left to the YAML node path.
func TestSplicedTextParsesToTheEditedSpec(t *testing.T) {
	pct := 25.0
	vni := int64(6001)
	nu := RuleSpec{Name: "vpc.pct-6001", Match: MatchSpec{VIP: "vpc", VNI: &vni}, Percent: &pct, Pool: "gray"}
	layouts := map[string]string{
		"indented":  fastDoc,
		"column 0":  column0(fastDoc),
		"no eol":    strings.TrimSuffix(fastDoc, "\n"),
		"re-encode": "",
	}
	sp, err := Parse([]byte(fastDoc))
	if err != nil {
		t.Fatal(err)
	}
	re, err := Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	layouts["re-encode"] = string(re)
	for name, doc := range layouts {
		sp, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text, ok := appendRule([]byte(doc), nu, len(sp.GrayRules))
		if !ok {
			t.Fatalf("%s: append refused", name)
		}
		want := *sp
		want.GrayRules = append(slices.Clip(sp.GrayRules), nu)
		got, err := Parse(text)
		if err != nil || !reflect.DeepEqual(got, &want) {
			t.Fatalf("%s: appended text parses to %+v (%v), want %+v\n%s", name, got, err, &want, text)
		}
		for k := range sp.GrayRules {
			text, ok := removeRule([]byte(doc), k, len(sp.GrayRules))
			if (name == "indented" || name == "column 0") && k == 1 {
				if ok {
					t.Fatalf("%s: removed rule %d, which has a head comment", name, k)
				}
				continue
			}
			if name == "no eol" {
				if ok {
					t.Fatalf("%s: removed a rule from a text without a final newline", name)
				}
				continue
			}
			if !ok {
				t.Fatalf("%s: removing rule %d refused", name, k)
			}
			want := *sp
			want.GrayRules = slices.Delete(slices.Clone(sp.GrayRules), k, k+1)
			got, err := Parse(text)
			if err != nil || !reflect.DeepEqual(got, &want) {
				t.Fatalf("%s: removing %d gives %+v (%v)\n%s", name, k, got, err, text)
			}
			if name == "indented" && !strings.Contains(string(text), "# trailing comment") {
				t.Fatalf("a comment went with the rule:\n%s", text)
			}
		}
	}
	// An item that defines an anchor is left to the node path.
	anchored := strings.Replace(fastDoc, "    match: {vni: 5001, src: 10.0.0.5}", "    match: &m {vni: 5001, src: 10.0.0.5}", 1)
	if _, ok := removeRule([]byte(anchored), 0, 3); ok {
		t.Fatal("removed an item that defines an anchor")
	}
	// Layouts refused: gray_rules not last, flow style, CRLF.
	for name, doc := range map[string]string{
		"not last": strings.Replace(fastDoc, "# the rules\n", "", 1) + "tenants:\n  - {name: t, vnis: [5001]}\n",
		"flow":     fastDoc[:strings.Index(fastDoc, "gray_rules:")] + "gray_rules: [{name: a, match: {vni: 1}, pool: gray}]\n",
		"crlf":     strings.ReplaceAll(fastDoc, "\n", "\r\n"),
	} {
		if _, ok := appendRule([]byte(doc), nu, 3); ok {
			t.Fatalf("%s: append accepted", name)
		}
		if _, ok := removeRule([]byte(doc), 0, 3); ok {
			t.Fatalf("%s: remove accepted", name)
		}
	}
}

// column0 writes the gray_rules items of doc at column 0.
func column0(doc string) string {
	i := strings.Index(doc, "gray_rules:")
	tail := doc[i:]
	for _, r := range [][2]string{{"\n  - ", "\n- "}, {"\n    ", "\n  "}, {"\n  #", "\n#"}} {
		tail = strings.ReplaceAll(tail, r[0], r[1])
	}
	return doc[:i] + tail
}

// Every layout, spliced or through the node tree, edits to the same spec: a
// rule added, replaced (its head comment kept) and removed, one or all.
func TestDocumentEditsAgreeAcrossLayouts(t *testing.T) {
	vni := int64(6001)
	nu := RuleSpec{Name: "n", Match: MatchSpec{VNI: &vni}, Pool: "gray"}
	b2 := RuleSpec{Name: "b", Match: MatchSpec{VNI: &[]int64{5002}[0]}, Pool: "base"}
	layouts := map[string]string{
		"indented": fastDoc,
		"not last": strings.Replace(fastDoc, "# the rules\n", "", 1) + "tenants:\n  - {name: t, vnis: [5001]}\n",
		"crlf":     strings.ReplaceAll(fastDoc, "\n", "\r\n"),
	}
	base, err := Parse([]byte(fastDoc))
	if err != nil {
		t.Fatal(err)
	}
	spec := func(t *testing.T, d *Document) *Spec {
		t.Helper()
		sp, err := Parse(d.Text()) // the text, not what the edit says it parses to
		if err != nil {
			t.Fatalf("%v\n%s", err, d.Text())
		}
		return sp
	}
	rules := func(sp *Spec) []RuleSpec { return sp.GrayRules }
	for name, text := range layouts {
		t.Run(name, func(t *testing.T) {
			d := NewDocument([]byte(text))
			added, i, err := d.AddRule(nu)
			if err != nil || i != 3 || !reflect.DeepEqual(rules(spec(t, added)), append(slices.Clone(base.GrayRules), nu)) {
				t.Fatalf("AddRule: index %d, %v\n%s", i, err, added.Text())
			}
			if r, k, _ := added.Rule("n"); k != 3 || r.Pool != "gray" {
				t.Fatalf("Rule(n) = %+v, %d", r, k)
			}
			repl, i, err := d.ReplaceRule(b2)
			want := slices.Clone(base.GrayRules)
			want[1] = b2
			if err != nil || i != 1 || !reflect.DeepEqual(rules(spec(t, repl)), want) {
				t.Fatalf("ReplaceRule: index %d, %v\n%s", i, err, repl.Text())
			}
			// (yaml.v3 does not attach comments of a CRLF document to nodes.)
			if name != "crlf" && !strings.Contains(string(repl.Text()), "# b is a VPC") {
				t.Fatalf("the replaced rule lost its comment:\n%s", repl.Text())
			}
			if same, i, _ := d.ReplaceRule(nu); same != d || i != -1 {
				t.Fatal("ReplaceRule of an unknown rule changed the document")
			}
			one, removed, err := d.RemoveRules("c")
			if err != nil || len(removed) != 1 || removed[0].Name != "c" ||
				!reflect.DeepEqual(rules(spec(t, one)), base.GrayRules[:2]) {
				t.Fatalf("RemoveRules(c): %+v, %v\n%s", removed, err, one.Text())
			}
			all, removed, err := d.RemoveRules("")
			if err != nil || len(removed) != 3 || len(rules(spec(t, all))) != 0 || strings.Contains(string(all.Text()), "gray_rules") {
				t.Fatalf("RemoveRules(): %+v, %v\n%s", removed, err, all.Text())
			}
			if same, removed, _ := d.RemoveRules("zz"); same != d || removed != nil {
				t.Fatal("RemoveRules of an unknown rule changed the document")
			}
		})
	}
}
