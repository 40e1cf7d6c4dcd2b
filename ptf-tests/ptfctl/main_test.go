package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/testvectors"
)

func committed(t *testing.T) *testvectors.File {
	t.Helper()
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// vectorFiles are the shared vectors PTF runs: pipeline.json and ipv6.json.
func vectorFiles(t *testing.T) map[string]*testvectors.File {
	t.Helper()
	v6, err := testvectors.IPv6()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*testvectors.File{"pipeline.json": committed(t), "ipv6.json": v6}
}

// The basic state as an intent reproduces every case but those that need a
// table an intent cannot produce: a pool without buckets, buckets naming a
// backend without an entry (both NO_BACKEND).
func TestBasicStateAsIntent(t *testing.T) {
	f := committed(t)
	tr, err := translate(f, "basic", "127.0.0.1:9559", 1, map[int64]string{1: "p1", 2: "p2", 3: "p3"})
	if err != nil {
		t.Fatal(err)
	}
	left := strings.Join(tr.Left, "\n")
	for _, s := range []string{"pool 4: no backend_select entries", "pool 5: its buckets name backend 99"} {
		if !strings.Contains(left, s) {
			t.Errorf("left out:\n%s\nlacks %q", left, s)
		}
	}
	cl, err := classify(f, "basic", tr.Intent)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range f.Cases {
		if c.State != "basic" {
			continue
		}
		n++
		got, ok := cl[c.Name]
		if !ok {
			t.Errorf("case %s not classified", c.Name)
			continue
		}
		wantIntent := c.Expect.Reason != "NO_BACKEND"
		if got.Intent != wantIntent {
			t.Errorf("case %s: intent %v (%s), want %v", c.Name, got.Intent, got.Why, wantIntent)
		}
	}
	if n < 40 {
		t.Fatalf("only %d basic cases", n)
	}
	// The document round-trips through the intent parser, as the controller reads it.
	doc, err := tr.YAML("pipeline.json", "basic")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := intent.Load(doc); err != nil {
		t.Fatalf("generated intent does not load: %v\n%s", err, doc)
	}
}

// stateEntries writes exactly the vector state: every case's frame gets the
// vector's decision and bytes over it.
// ipv6.json's state holds vip_v6, gray_rules_v6 and to_backend_v6 entries: the
// table-level group writes them through the same compile.FromModel.
func TestStateEntriesAreTheVectorState(t *testing.T) {
	for file, f := range vectorFiles(t) {
		states := map[string]*model.State{}
		for name, vs := range f.States {
			es, err := stateEntries(vs)
			if err != nil {
				t.Fatal(err)
			}
			if states[name], err = compile.ToModel(es); err != nil {
				t.Fatalf("%s state %s: %v", file, name, err)
			}
		}
		for _, c := range f.Cases {
			st := states[c.State]
			fr, _ := c.Frame()
			r := model.ProcessPort(st, c.InPort, fr)
			e := testvectors.ExpectFrom(r)
			if e.Verdict != c.Expect.Verdict || e.Reason != c.Expect.Reason || e.Packet != c.Expect.Packet || e.Port != c.Expect.Port {
				t.Errorf("%s case %s: %s %s port %d %s, want %s %s port %d %s", file, c.Name, e.Verdict, e.Reason, e.Port, e.Packet,
					c.Expect.Verdict, c.Expect.Reason, c.Expect.Port, c.Expect.Packet)
			}
		}
	}
}

// compareResult finds nothing to say about the vector state itself, and names
// the difference when the backend's rewrite is wrong.
func TestCompareResult(t *testing.T) {
	f := committed(t)
	vst := f.States["basic"]
	vm, err := vst.Model()
	if err != nil {
		t.Fatal(err)
	}
	for file, f := range vectorFiles(t) {
		for i := range f.Cases {
			c := &f.Cases[i]
			cst := f.States[c.State]
			cm, err := cst.Model()
			if err != nil {
				t.Fatal(err)
			}
			why, err := compareCase(c, &cst, cm)
			if err != nil || len(why) != 0 {
				t.Errorf("%s case %s over its own state: %v %v", file, c.Name, why, err)
			}
		}
	}
	var c *testvectors.Case
	for i := range f.Cases {
		if f.Cases[i].Name == "plain_tcp" {
			c = &f.Cases[i]
		}
	}
	fr, _ := c.Frame()
	r := model.Process(vm, fr)
	r.Frame[len(r.Frame)-1] ^= 0xff // a payload byte changed on the way
	why := compareResult(c, vm, fr, r, vm)
	if len(why) == 0 || !strings.Contains(strings.Join(why, " "), "not the vector's rewrite") {
		t.Errorf("corrupt frame not reported: %v", why)
	}

	// An IPv6 flow's winning rule is gray_rules_v6's: a state whose
	// gray_rules_v6 lost the rule the vector names is reported.
	v6 := vectorFiles(t)["ipv6.json"]
	for i := range v6.Cases {
		if v6.Cases[i].Name == "v6_overlay_vm_cutover" {
			c = &v6.Cases[i]
		}
	}
	vst6 := v6.States[c.State]
	m6, err := vst6.Model()
	if err != nil {
		t.Fatal(err)
	}
	m6.GrayRulesV6 = slices.DeleteFunc(slices.Clone(m6.GrayRulesV6), func(r model.GrayRuleV6) bool {
		return r.Priority == m6.GrayRulesV6[c.Expect.Rule].Priority
	})
	why, err = compareCase(c, &vst6, m6)
	if err != nil || !strings.Contains(strings.Join(why, " "), "rule priority -1, vector 100") {
		t.Errorf("IPv6 case without its gray_rules_v6 rule: %v %v", why, err)
	}
}

func TestIntentCommand(t *testing.T) {
	dir := t.TempDir()
	vec := filepath.Join(dir, "pipeline.json")
	if err := os.WriteFile(vec, testvectors.JSON, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"intent", "-vectors", vec, "-state", "basic", "-iface", "1=p1,2=p2,3=p3",
		"-cases", filepath.Join(dir, "cases.json")}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, s := range []string{"# left out: pool 4", "name: vip-1", "interface: p2", "percent: 50"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("intent lacks %q:\n%s", s, out.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil || !strings.Contains(string(b), `"drop_no_backend_empty_pool": {`) {
		t.Errorf("cases.json: %v\n%s", err, b)
	}
	if code := run([]string{"nope"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}
