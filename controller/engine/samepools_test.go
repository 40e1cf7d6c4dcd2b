package engine

import (
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/maglev"
)

// TestSamePools: a takeover skips recompiling against the pools recovered from
// a gateway only when they are exactly the compiled ones; any difference (a
// bucket, a version, a reserved second version, health failover's operator
// table) recompiles as before.
func TestSamePools(t *testing.T) {
	pool := func(name string, id uint16, slot uint8, members ...string) compile.Pool {
		names := make([]string, 8)
		ids := make([]uint16, 8)
		for i := range names {
			names[i] = members[i%len(members)]
			ids[i] = uint16(10 + i%len(members))
		}
		tb, err := maglev.NewTable(names)
		if err != nil {
			t.Fatal(err)
		}
		return compile.Pool{Name: name, BaseID: id, Slot: slot, ID: id + uint16(slot)*100, Table: tb, Buckets: ids}
	}
	res := func(ps ...compile.Pool) *compile.Result { return &compile.Result{Pools: ps} }
	desired := res(pool("a", 1, 0, "x", "y"), pool("b", 2, 1, "x", "y", "z"))

	moved := pool("b", 2, 1, "x", "y", "z")
	moved.Buckets = append([]uint16(nil), moved.Buckets...)
	moved.Buckets[3] = 99
	excluded := res(pool("a", 1, 0, "x", "y"), pool("b", 2, 1, "x", "y", "z"))
	excluded.Pools[1].Excluded, excluded.Pools[1].Operator = []string{"z"}, excluded.Pools[1].Table
	// Compile sets Operator, Table's content, when nothing is excluded.
	withOperator := res(pool("a", 1, 0, "x", "y"), pool("b", 2, 1, "x", "y", "z"))
	for i := range withOperator.Pools {
		withOperator.Pools[i].Operator = withOperator.Pools[i].Table
	}

	for _, c := range []struct {
		name      string
		rec, want *compile.Result
		same      bool
	}{
		{"the compiled versions", res(pool("b", 2, 1, "x", "y", "z"), pool("a", 1, 0, "x", "y")), desired, true},
		{"a bucket moved", res(pool("a", 1, 0, "x", "y"), moved), desired, false},
		{"the other slot", res(pool("a", 1, 0, "x", "y"), pool("b", 2, 0, "x", "y", "z")), desired, false},
		{"a version reserved beside", res(pool("a", 1, 0, "x", "y"), pool("b", 2, 1, "x", "y", "z"), pool("b", 2, 0, "x")), desired, false},
		{"a pool not on the gateway", res(pool("a", 1, 0, "x", "y")), desired, false},
		{"an operator's table, nothing excluded", res(pool("b", 2, 1, "x", "y", "z"), pool("a", 1, 0, "x", "y")), withOperator, true},
		{"health failover", res(pool("a", 1, 0, "x", "y"), pool("b", 2, 1, "x", "y", "z")), excluded, false},
		{"nothing recovered", nil, desired, false},
	} {
		if got := samePools(c.rec, c.want); got != c.same {
			t.Errorf("%s: samePools %v, want %v", c.name, got, c.same)
		}
	}
}
