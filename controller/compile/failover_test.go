package compile

import (
	"slices"
	"strings"
	"testing"
)

func compileExcluding(t *testing.T, doc string, prev *Result, excluded map[string][]string) (*gw, *Result) {
	t.Helper()
	in := load(t, doc)
	res, err := CompileSplitExcluding(in, prev, excluded)
	if err != nil {
		t.Fatal(err)
	}
	return newGW(t, in, res.Full()), res
}

// Health failover through the compiler, checked with the reference model on
// 4000 flows: excluding b2 moves exactly b2's flows, to the other members;
// restoring it brings exactly those back; a pool without health_failover
// ignores exclusions.
func TestHealthFailoverMovesOnlyTheDeadBackendsFlows(t *testing.T) {
	doc := strings.Replace(world, "  - name: base\n    cluster: base\n", "  - name: base\n    cluster: base\n    health_failover: true\n", 1)
	fs := flows(7, 4000, 5001, 5002, 6001)
	route := func(g *gw) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			_, out[i] = g.route(t, f)
		}
		return out
	}
	g0, r0 := compileExcluding(t, doc, nil, nil)
	before := route(g0)

	g1, r1 := compileExcluding(t, doc, r0, map[string][]string{"base": {"b2"}, "gray": {"g1"}})
	if p, _ := r1.Pool("base"); !slices.Equal(p.Excluded, []string{"b2"}) {
		t.Fatalf("base excluded %v", p.Excluded)
	}
	if p, _ := r1.Pool("gray"); p.Excluded != nil {
		t.Fatalf("gray has no health_failover, excluded %v", p.Excluded)
	}
	during := route(g1)
	moved := 0
	for i := range fs {
		switch {
		case before[i] == "b2" && during[i] == "b2":
			t.Fatalf("flow %+v still on the excluded b2", fs[i])
		case before[i] != "b2" && during[i] != before[i]:
			t.Fatalf("flow %+v of %s moved to %s", fs[i], before[i], during[i])
		case before[i] == "b2":
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no flow on b2: the test proves nothing")
	}

	g2, _ := compileExcluding(t, doc, r1, nil)
	if after := route(g2); !slices.Equal(after, before) {
		n := 0
		for i := range after {
			if after[i] != before[i] {
				n++
			}
		}
		t.Fatalf("after b2's restoration %d of %d flows are not where they were", n, len(fs))
	}
	t.Logf("%d of %d flows failed over from b2 and returned", moved, len(fs))

	// Excluding every serving member is ignored: the pool keeps them.
	_, r3 := compileExcluding(t, doc, r0, map[string][]string{"base": {"b1", "b2", "b3", "b4"}})
	if p, _ := r3.Pool("base"); p.Excluded != nil || !slices.Equal(p.Buckets, mustPool(t, r0, "base").Buckets) {
		t.Errorf("excluding all: excluded %v, table changed %v", p.Excluded, !slices.Equal(p.Buckets, mustPool(t, r0, "base").Buckets))
	}
}

func mustPool(t *testing.T, r *Result, name string) *Pool {
	t.Helper()
	p, ok := r.Pool(name)
	if !ok {
		t.Fatalf("no pool %s", name)
	}
	return p
}
