package service

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
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
	nu := intent.RuleSpec{Name: "vpc.pct-6001", Match: intent.MatchSpec{VIP: "vpc", VNI: &vni}, Percent: &pct, Pool: "gray"}
	layouts := map[string]string{
		"indented":  fastDoc,
		"column 0":  column0(fastDoc),
		"no eol":    strings.TrimSuffix(fastDoc, "\n"),
		"re-encode": "",
	}
	sp, err := intent.Parse([]byte(fastDoc))
	if err != nil {
		t.Fatal(err)
	}
	re, err := intent.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	layouts["re-encode"] = string(re)
	for name, doc := range layouts {
		sp, err := intent.Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text, ok := appendRule([]byte(doc), nu, len(sp.GrayRules))
		if !ok {
			t.Fatalf("%s: append refused", name)
		}
		want := *sp
		want.GrayRules = append(slices.Clip(sp.GrayRules), nu)
		got, err := intent.Parse(text)
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
			got, err := intent.Parse(text)
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
