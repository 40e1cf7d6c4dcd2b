package compile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

var withRules = world + `gray_rules:
  - {name: vpc, match: {vni: 5002}, pool: gray}
  - {name: vm, match: {vni: 5001, src: 10.0.0.5}, pool: gray}
`

func TestPoolChangeFlipsToTheOtherVersion(t *testing.T) {
	a := load(t, withRules)
	r0 := mustCompile(t, a, nil)
	// gray gains a third backend.
	b := load(t, strings.Replace(withRules, `      - {name: g2,`, `      - {name: g3, underlay_ip: 10.3.0.23, mac: "02:00:00:00:30:23", port: 3}
      - {name: g2,`, 1))
	r1 := mustCompile(t, b, r0)
	gray0, _ := r0.Pool("gray")
	gray1, _ := r1.Pool("gray")
	base0, _ := r0.Pool("base")
	base1, _ := r1.Pool("base")
	if gray0.Slot != 0 || gray1.Slot != 1 || gray1.ID != gray0.BaseID+SlotOffset {
		t.Fatalf("gray: slot %d id %d, then slot %d id %d", gray0.Slot, gray0.ID, gray1.Slot, gray1.ID)
	}
	if base1.ID != base0.ID {
		t.Fatalf("unchanged pool base moved from id %d to %d", base0.ID, base1.ID)
	}
	// Only buckets given to the newcomer moved (Maglev Rebuild over the old table).
	for _, bk := range gray0.Table.Diff(gray1.Table) {
		if gray1.Table.Backend(bk) != "g3" {
			t.Fatalf("bucket %d moved from %s to %s", bk, gray0.Table.Backend(bk), gray1.Table.Backend(bk))
		}
	}
	// The rules now point at the new version.
	for _, e := range r1.Gateways[0].Entries {
		if e.Table == pipeline.TableGrayRules {
			if p, _ := e.Param("pool_id"); uint16(Uint(p.Value)) != gray1.ID {
				t.Fatalf("%s still points at pool %d", e.String(), Uint(p.Value))
			}
		}
	}
	// Recompiling over the installed result keeps the version; the next change
	// flips back to slot 0.
	r2 := mustCompile(t, b, r1)
	if g, _ := r2.Pool("gray"); g.Slot != 1 {
		t.Fatalf("unchanged pool changed slot: %d", g.Slot)
	}
	c := load(t, strings.Replace(withRules, `{name: g2, underlay_ip: 10.3.0.22, mac: "02:00:00:00:30:22", port: 3}`,
		`{name: g2, underlay_ip: 10.3.0.22, mac: "02:00:00:00:30:22", port: 3, weight: 3}`, 1))
	r3 := mustCompile(t, c, r2)
	if g, _ := r3.Pool("gray"); g.Slot != 0 {
		t.Fatalf("second change went to slot %d, want 0", g.Slot)
	}
}

func TestHashFieldsChangeFlipsVersion(t *testing.T) {
	r0 := mustCompile(t, load(t, withRules), nil)
	b := load(t, strings.Replace(withRules, "    cluster: gray\n", "    cluster: gray\n    hash_fields: [vni, src]\n", 1))
	r1 := mustCompile(t, b, r0)
	if g, _ := r1.Pool("gray"); g.Slot != 1 || g.Hash != (pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}) {
		t.Fatalf("gray: slot %d hash %+v", g.Slot, g.Hash)
	}
}

// A backend's own attributes are modified in place: no new pool version.
func TestBackendAttributeChangeKeepsVersion(t *testing.T) {
	r0 := mustCompile(t, load(t, withRules), nil)
	b := load(t, strings.Replace(withRules, `mac: "02:00:00:00:30:22"`, `mac: "02:00:00:00:30:99"`, 1))
	r1 := mustCompile(t, b, r0)
	for i := range r0.Pools {
		if r0.Pools[i].ID != r1.Pools[i].ID {
			t.Fatalf("pool %s changed version", r0.Pools[i].Name)
		}
	}
	diff := 0
	for i := range r0.Gateways[0].Entries {
		if !r0.Gateways[0].Entries[i].Equal(&r1.Gateways[0].Entries[i]) {
			diff++
			if r0.Gateways[0].Entries[i].Origin != "backend g2" {
				t.Fatalf("unexpected change: %s", r1.Gateways[0].Entries[i].String())
			}
		}
	}
	if diff != 1 {
		t.Fatalf("%d entries changed, want 1", diff)
	}
}

// applyPhase is one step of what the reconciler does: write (insert or modify)
// the entries of the given tables as in want. deletePhase deletes the entries of
// have that want lacks.
func applyPhase(have map[string]Entry, want []Entry, tables ...string) {
	in := func(t string) bool {
		for _, x := range tables {
			if x == t {
				return true
			}
		}
		return false
	}
	for _, e := range want {
		if in(e.Table) {
			have[e.Key()] = e
		}
	}
}

func deletePhase(have map[string]Entry, want []Entry) {
	keep := map[string]bool{}
	for _, e := range want {
		keep[e.Key()] = true
	}
	for k := range have {
		if !keep[k] {
			delete(have, k)
		}
	}
}

func stateOf(t *testing.T, have map[string]Entry) *model.State {
	t.Helper()
	var es []Entry
	for _, e := range have {
		es = append(es, e)
	}
	sortEntries(es)
	st, err := ToModel(es)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The flip is make-before-break: after writing the new version nothing moves yet,
// every phase forwards every packet, and after the repoint traffic is where the
// new intent says.
func TestFlipIsMakeBeforeBreak(t *testing.T) {
	a := load(t, withRules)
	r0 := mustCompile(t, a, nil)
	b := load(t, strings.Replace(withRules, `      - {name: g1, underlay_ip: 10.3.0.21, mac: "02:00:00:00:30:21", port: 3}
`, "", 1)) // g1 leaves gray
	r1 := mustCompile(t, b, r0)
	have := map[string]Entry{}
	applyPhase(have, r0.Gateways[0].Entries, TableOrder...)
	g0, g1 := newGW(t, a, r0), newGW(t, b, r1)
	fs := flows(9, 1500, 5001, 5002, 6001)
	check := func(phase string, want *gw) {
		st := stateOf(t, have)
		for _, f := range fs {
			r := model.Process(st, f.frame())
			if r.Verdict != model.Forward {
				t.Fatalf("%s: %+v: %v %v", phase, f, r.Verdict, r.Reason)
			}
			if w := model.Process(want.state, f.frame()); r.BackendID != w.BackendID {
				t.Fatalf("%s: %+v went to backend %d, want %d", phase, f, r.BackendID, w.BackendID)
			}
		}
	}
	// 1. the new version's backends, pool_hash and buckets: nothing moves.
	applyPhase(have, r1.Gateways[0].Entries, pipeline.TableBackend, pipeline.TablePoolHash, pipeline.TableBackendSelect)
	check("after writing the new version", g0)
	// 2. repoint vip and rules: traffic as the new intent says.
	applyPhase(have, r1.Gateways[0].Entries, pipeline.TableVNITenant, pipeline.TableVIP, pipeline.TableGrayRules)
	check("after repointing", g1)
	// 3. delete the old version (and g1's backend entry).
	deletePhase(have, r1.Gateways[0].Entries)
	check("after deleting the old version", g1)
	if len(have) != len(r1.Gateways[0].Entries) {
		t.Fatalf("%d entries left, want %d", len(have), len(r1.Gateways[0].Entries))
	}
}

// Pools that swap explicit ids never reuse an id another pool still holds.
func TestSwappedIDsDoNotReuseInstalledIDs(t *testing.T) {
	doc := func(a, b int) string {
		return strings.Replace(strings.Replace(world, "  - name: base\n", fmt.Sprintf("  - name: base\n    id: %d\n", a), 1),
			"  - name: gray\n", fmt.Sprintf("  - name: gray\n    id: %d\n", b), 1)
	}
	r0 := mustCompile(t, load(t, doc(1, 2)), nil)
	r1 := mustCompile(t, load(t, doc(2, 1)), r0)
	old := map[uint16]string{}
	for _, p := range r0.Pools {
		old[p.ID] = p.Name
	}
	for _, p := range r1.Pools {
		if o, ok := old[p.ID]; ok && o != p.Name {
			t.Fatalf("pool %s took id %d, still installed for %s", p.Name, p.ID, o)
		}
	}
	if b, _ := r1.Pool("base"); b.ID != 2+SlotOffset {
		t.Fatalf("base id %d, want %d", b.ID, 2+SlotOffset)
	}
}

func TestTransitionCapacity(t *testing.T) {
	var b strings.Builder
	b.WriteString(strings.Split(world, "vips:")[0])
	b.WriteString("vips:\n  - {name: v, address: 10.255.0.1, default_pool: p0}\npools:\n")
	pools := func(n, weight int) string {
		var s strings.Builder
		for i := 0; i < n; i++ {
			w := 1
			if i < weight {
				w = 2
			}
			fmt.Fprintf(&s, "  - name: p%d\n    id: %d\n    cluster: base\n    backends:\n", i, i+1)
			fmt.Fprintf(&s, "      - {name: x, id: 1, underlay_ip: 10.2.0.1, mac: \"02:00:00:00:00:10\", port: 2}\n")
			fmt.Fprintf(&s, "      - {name: y, id: 2, underlay_ip: 10.2.0.2, mac: \"02:00:00:00:00:11\", port: 2, weight: %d}\n", w)
		}
		return s.String()
	}
	head := b.String()
	r0 := mustCompile(t, load(t, head+pools(40, 0)), nil)
	// 24 changed pools: 40 + 24 = 64 versions at once, fits.
	if _, err := Compile(load(t, head+pools(40, 24)), r0); err != nil {
		t.Fatalf("64 versions refused: %v", err)
	}
	// 25: 65 versions.
	res, err := Compile(load(t, head+pools(40, 25)), r0)
	if res != nil || !errors.Is(err, ErrTransition) || !strings.Contains(err.Error(), "65 pool versions") {
		t.Fatalf("65 versions: %v, %v", res, err)
	}
}

func TestBothSlotsTakenIsRefused(t *testing.T) {
	in := load(t, world)
	base, _ := in.Pool("base")
	prev := &Result{Pools: []Pool{
		{Name: "old-a", BaseID: base.ID, ID: base.ID},
		{Name: "old-b", BaseID: base.ID, Slot: 1, ID: base.ID + SlotOffset},
	}}
	if _, err := Compile(in, prev); !errors.Is(err, ErrTransition) || !strings.Contains(err.Error(), "both version slots") {
		t.Fatalf("err = %v", err)
	}
}

func TestToModelRejectsMalformedEntries(t *testing.T) {
	good := mustCompile(t, load(t, withRules), nil).Gateways[0].Entries
	if _, err := ToModel(good); err != nil {
		t.Fatal(err)
	}
	find := func(table string) Entry {
		for _, e := range good {
			if e.Table == table {
				return e
			}
		}
		t.Fatalf("no %s entry", table)
		return Entry{}
	}
	vip, rule := find(pipeline.TableVIP), find(pipeline.TableGrayRules)
	for name, e := range map[string]Entry{
		"unknown table": {Table: "GrayIngress.nope"},
		"wrong action":  func() Entry { e := vip; e.Action = pipeline.ActionSetPool; return e }(),
		"missing param": func() Entry { e := vip; e.Params = e.Params[:1]; return e }(),
		"wide param": func() Entry {
			e := vip
			e.Params = []Param{param(pipeline.ParamVIPID, 1), param(pipeline.Field{Name: "default_pool", Bits: 24}, 1)}
			return e
		}(),
		"missing field":  func() Entry { e := vip; e.Match = nil; return e }(),
		"no priority":    func() Entry { e := rule; e.Priority = 0; return e }(),
		"exact as tern.": func() Entry { e := rule; e.Match = []Match{exact(pipeline.MatchVNI, 1)}; return e }(),
	} {
		if _, err := ToModel([]Entry{e}); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := ToModel([]Entry{vip, vip}); !errors.Is(err, ErrEntry) || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate: err = %v", err)
	}
}

func TestCompileNil(t *testing.T) {
	if r, err := Compile(nil, nil); r != nil || err == nil {
		t.Fatal("nil intent compiled")
	}
}

// A pool compiled from a previous Result with the same members, weights, ids
// and hash reuses its table and entries; the result is exactly what compiling
// without that cache (the same previous tables, recovered) gives.
func TestUnchangedPoolsAreReusedAsCompiled(t *testing.T) {
	changes := []string{
		withRules + "  - {name: vm2, match: {vni: 5001, src: 10.0.0.6}, pool: gray}\n",    // a rule added
		strings.Replace(withRules, `port: 2, weight: 2}`, `port: 2, weight: 3}`, 1),       // a weight changed
		strings.Replace(withRules, `"02:00:00:00:30:22"`, `"02:00:00:00:30:99"`, 1),       // a backend attribute
		strings.Replace(withRules, "  - name: gray\n", "  - name: gray\n    id: 77\n", 1), // a base id
	}
	for i, doc := range changes {
		r0 := mustCompile(t, load(t, withRules), nil)
		cached := mustCompile(t, load(t, doc), r0)
		// The same previous tables without the cache's bookkeeping.
		bare := &Result{}
		for _, p := range r0.Pools {
			p.built, p.entries = "", nil
			bare.Pools = append(bare.Pools, p)
		}
		fresh := mustCompile(t, load(t, doc), bare)
		if !reflect.DeepEqual(cached.Gateways, fresh.Gateways) {
			t.Fatalf("change %d: cached and fresh compilations differ", i)
		}
		for j := range cached.Pools {
			c, f := cached.Pools[j], fresh.Pools[j]
			if c.ID != f.ID || c.Slot != f.Slot || !slices.Equal(c.Buckets, f.Buckets) {
				t.Fatalf("change %d: pool %s differs: %d/%d vs %d/%d", i, c.Name, c.ID, c.Slot, f.ID, f.Slot)
			}
		}
		if i == 0 {
			p0, _ := r0.Pool("base")
			p1, _ := cached.Pool("base")
			if p0.Table != p1.Table || &p0.entries[0] != &p1.entries[0] {
				t.Fatal("adding a rule rebuilt an unchanged pool")
			}
		}
	}
}

func TestCompileSplitIsCompile(t *testing.T) {
	a, b := load(t, withRules), load(t, strings.Replace(withRules, `port: 2, weight: 2}`, `port: 2, weight: 3}`, 1))
	r0 := mustCompile(t, a, nil)
	for _, c := range []struct {
		in   *intent.Intent
		prev *Result
	}{{a, nil}, {a, r0}, {b, r0}} {
		want := mustCompile(t, c.in, c.prev)
		split, err := CompileSplit(c.in, c.prev)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range split.Gateways {
			for _, e := range g.Entries {
				if e.Table == pipeline.TablePoolHash || e.Table == pipeline.TableBackendSelect {
					t.Fatalf("split result holds a pool entry: %s", e.String())
				}
			}
		}
		if !split.Split() || !reflect.DeepEqual(split.Full().Gateways, want.Gateways) {
			t.Fatal("CompileSplit(...).Full() differs from Compile")
		}
	}
}

// sortEntries (by byte keys) orders exactly as compareEntries does.
func TestSortKeysOrderAsCompareEntries(t *testing.T) {
	doc := withRules + `  - {name: p24, match: {vni: 5001, src: 10.0.1.0/24}, pool: gray}
  - {name: dst, match: {vni: 5001, dst: 10.0.2.0/24}, pool: gray, priority: 4047}
  - {name: flow, match: {vni: 5001, src: 10.0.0.9, proto: tcp, dport: 22}, pool: base}
  - {name: t, match: {tenant: acme}, pool: gray}
  - {name: all, match: {vip: vip1}, pool: gray, percent: 10}
  - {name: v2, match: {vni: 6001}, pool: gray}
`
	res := mustCompile(t, load(t, doc), nil)
	es := res.Gateways[0].Entries
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		a := slices.Clone(es)
		rng.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
		b := slices.Clone(a)
		sortEntries(a)
		slices.SortStableFunc(b, compareEntries)
		if !reflect.DeepEqual(a, b) {
			t.Fatal("sortEntries differs from compareEntries' order")
		}
	}
}
