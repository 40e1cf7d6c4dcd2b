package maglev

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
)

// equal returns n backends of weight 1.
func equal(n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{ID: fmt.Sprintf("be-%02d", i), Weight: 1}
	}
	return bs
}

// random returns n backends with weights in [1, 100].
func random(r *rand.Rand, n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{ID: fmt.Sprintf("vm-%x", r.Uint32()), Weight: uint32(r.IntN(100) + 1)}
	}
	return bs
}

func mustBuild(t testing.TB, bs []Backend, m int) *Table {
	t.Helper()
	tb, err := Build(bs, m)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tb
}

func mustRebuild(t testing.TB, prev *Table, bs []Backend) *Table {
	t.Helper()
	tb, err := Rebuild(prev, bs)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	return tb
}

func without(bs []Backend, x int) []Backend {
	return slices.Concat(bs[:x], bs[x+1:])
}

// sample returns up to 7 indices spread over [0, n), always including both ends.
func sample(n int) []int {
	var xs []int
	for _, x := range []int{0, 1, n / 4, n / 2, 3 * n / 4, n - 2, n - 1} {
		if x >= 0 && x < n && !slices.Contains(xs, x) {
			xs = append(xs, x)
		}
	}
	return xs
}

// checkTable verifies the invariants every table must meet for its backend set:
// every bucket belongs to a backend with a positive weight, the counts are the
// quotas, and each count is within the Webster bound of the exact share.
func checkTable(t testing.TB, tb *Table, bs []Backend, m int) {
	t.Helper()
	if tb.Size() != m {
		t.Fatalf("size %d, want %d", tb.Size(), m)
	}
	weight := map[string]uint32{}
	var total uint64
	var positive int
	for _, b := range bs {
		weight[b.ID] = b.Weight
		total += uint64(b.Weight)
		if b.Weight > 0 {
			positive++
		}
	}
	counts := tb.Counts() // covers every bucket
	for id := range counts {
		if weight[id] == 0 {
			t.Fatalf("buckets map to %q, which has weight 0 or is not in the set", id)
		}
	}
	q, err := Quotas(bs, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if counts[b.ID] != q[b.ID] {
			t.Fatalf("%q has %d buckets, quota %d", b.ID, counts[b.ID], q[b.ID])
		}
		exact := float64(m) * float64(b.Weight) / float64(total)
		bound := 0.5 + exact*float64(positive)/float64(2*m) + 1e-9
		if dev := float64(counts[b.ID]) - exact; dev > bound || -dev > bound {
			t.Fatalf("%q has %d buckets, exact share %.3f, off by more than %.3f", b.ID, counts[b.ID], exact, bound)
		}
	}
}

// maxDeviation returns the largest |count/m - w/W| of tb over bs, in percentage
// points, and in buckets.
func maxDeviation(tb *Table, bs []Backend) (pp, buckets float64) {
	var total uint64
	for _, b := range bs {
		total += uint64(b.Weight)
	}
	m := float64(tb.Size())
	counts := tb.Counts()
	for _, b := range bs {
		d := float64(counts[b.ID]) - m*float64(b.Weight)/float64(total)
		if d < 0 {
			d = -d
		}
		buckets = max(buckets, d)
	}
	return 100 * buckets / m, buckets
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		m        int
		want     error
	}{
		{"no backends", nil, 4096, ErrNoBackends},
		{"empty list", []Backend{}, 4096, ErrNoBackends},
		{"all weights zero", []Backend{{"a", 0}, {"b", 0}}, 4096, ErrZeroWeight},
		{"duplicate id", []Backend{{"a", 1}, {"b", 1}, {"a", 2}}, 4096, ErrDuplicateID},
		{"empty id", []Backend{{"a", 1}, {"", 1}}, 4096, ErrEmptyID},
		{"size not a power of two", equal(2), 4095, ErrTableSize},
		{"size zero", equal(2), 0, ErrTableSize},
		{"size negative", equal(2), -4096, ErrTableSize},
		{"size too big", equal(2), 1 << 17, ErrTableSize},
		{"more backends than buckets", equal(9), 8, ErrTooManyBackends},
		{"size limit ok", equal(2), 1 << 16, nil},
		{"as many backends as buckets", equal(8), 8, nil},
		{"one bucket", equal(1), 1, nil},
		{"draining backend", []Backend{{"a", 0}, {"b", 1}}, 4096, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := Build(tt.backends, tt.m)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build: err = %v, want %v", err, tt.want)
			}
			if err != nil {
				if tb != nil {
					t.Error("Build returned a table with an error")
				}
				if _, err := Quotas(tt.backends, tt.m); !errors.Is(err, tt.want) {
					t.Errorf("Quotas: err = %v, want %v", err, tt.want)
				}
				return
			}
			checkTable(t, tb, tt.backends, tt.m)
		})
	}
	// Rebuild validates the new set the same way.
	prev := mustBuild(t, equal(3), 8)
	if _, err := Rebuild(prev, equal(9)); !errors.Is(err, ErrTooManyBackends) {
		t.Errorf("Rebuild 9 backends into 8 buckets: err = %v", err)
	}
	if _, err := Rebuild(prev, []Backend{{"a", 0}}); !errors.Is(err, ErrZeroWeight) {
		t.Errorf("Rebuild all zero weights: err = %v", err)
	}
}

func TestErrorMessages(t *testing.T) {
	_, err := Build([]Backend{{"web-1", 1}, {"web-1", 2}}, 4096)
	if got, want := err.Error(), `maglev: duplicate backend ID: "web-1"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Build(equal(1), 1000)
	if got, want := err.Error(), "maglev: table size must be a power of two between 1 and 65536: got 1000"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestZeroWeightDrains(t *testing.T) {
	bs := []Backend{{"a", 3}, {"b", 0}, {"c", 1}}
	tb := mustBuild(t, bs, 4096)
	checkTable(t, tb, bs, 4096)
	if n := tb.Counts()["b"]; n != 0 {
		t.Errorf("draining backend b has %d buckets", n)
	}
	if got := tb.Counts(); got["a"] != 3072 || got["c"] != 1024 {
		t.Errorf("counts %v, want a:3072 c:1024", got)
	}

	// Draining a backend in place moves only its buckets.
	before := mustBuild(t, []Backend{{"a", 3}, {"b", 2}, {"c", 1}}, 4096)
	after := mustRebuild(t, before, bs)
	for _, b := range before.Diff(after) {
		if before.Backend(b) != "b" {
			t.Fatalf("bucket %d moved from %q", b, before.Backend(b))
		}
	}
	if len(before.Diff(after)) != before.Counts()["b"] {
		t.Errorf("moved %d buckets, b had %d", len(before.Diff(after)), before.Counts()["b"])
	}
}

func TestOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{2, 5, 16, 64} {
		bs := random(r, n)
		bs[0].Weight = 0
		want := mustBuild(t, bs, 4096)
		prev := mustBuild(t, bs[:n/2+1], 4096)
		wantRe := mustRebuild(t, prev, bs)
		for range 5 {
			r.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			if got := mustBuild(t, bs, 4096); !got.Equal(want) {
				t.Fatalf("n=%d: Build depends on the order of backends", n)
			}
			if got := mustRebuild(t, prev, bs); !got.Equal(wantRe) {
				t.Fatalf("n=%d: Rebuild depends on the order of backends", n)
			}
		}
	}
}

// TestGolden pins the tables themselves: two controllers, possibly running
// different versions of this package, must compute the same table for a set. A change
// here is a change of the on-switch state for every pool and needs a migration plan.
func TestGolden(t *testing.T) {
	weighted := []Backend{{"10.0.0.1", 10}, {"10.0.0.2", 20}, {"10.0.0.3", 70}, {"10.0.0.4", 0}}
	tests := []struct {
		name string
		prev []Backend // Rebuild from Build(prev, m) when set
		next []Backend
		m    int
		want uint64 // FNV-1a 64 of the buckets, NUL-separated
	}{
		{"one", nil, equal(1), 4096, 0x31b0117b8edc2325},
		{"three", nil, equal(3), 4096, 0x5943f2287340b2},
		{"weighted", nil, weighted, 4096, 0x9462f38daf7cc080},
		{"sixty-four", nil, equal(64), 4096, 0x44907fa3ee3e72d},
		{"big table", nil, equal(5), 65536, 0xedae696bec527d15},
		{"tiny table", nil, equal(2), 2, 0x96879e0ac9ea36c8},
		{"rebuild", equal(5), slices.Concat(equal(3), weighted), 4096, 0xe44e1413d12abe22},
	}
	for _, tt := range tests {
		tb := mustBuild(t, tt.next, tt.m)
		if tt.prev != nil {
			tb = mustRebuild(t, mustBuild(t, tt.prev, tt.m), tt.next)
		}
		h := fnv.New64a()
		for _, id := range tb.Buckets() {
			h.Write([]byte(id))
			h.Write([]byte{0})
		}
		if got := h.Sum64(); got != tt.want {
			t.Errorf("%s: table hash %#x, want %#x", tt.name, got, tt.want)
		}
	}
}

// TestMeasureShares measures how closely shares follow weights for N = 1..64 at
// M = 4096, with equal weights and with random weights 1..100 (20 sets per N).
func TestMeasureShares(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var worstEqPP, worstEqB, worstRndPP, worstRndB float64
	for n := 1; n <= 64; n++ {
		bs := equal(n)
		tb := mustBuild(t, bs, 4096)
		checkTable(t, tb, bs, 4096)
		pp, b := maxDeviation(tb, bs)
		worstEqPP, worstEqB = max(worstEqPP, pp), max(worstEqB, b)
		for range 20 {
			bs := random(r, n)
			tb := mustBuild(t, bs, 4096)
			checkTable(t, tb, bs, 4096)
			pp, b := maxDeviation(tb, bs)
			worstRndPP, worstRndB = max(worstRndPP, pp), max(worstRndB, b)
		}
	}
	t.Logf("shares, N=1..64, M=4096: equal weights max |share-weight| = %.4f pp (%.2f buckets); random weights 1..100 (20 sets per N) max = %.4f pp (%.2f buckets)",
		worstEqPP, worstEqB, worstRndPP, worstRndB)
	if worstEqPP >= 1 || worstRndPP >= 1 {
		t.Errorf("share off by 1 percentage point or more")
	}
}

// TestMeasureRemove removes one backend (7 choices spread over the ID order) from sets
// of N = 2..64 backends (equal weights, and 3 random-weight sets per N) and checks
// that exactly the removed backend's buckets move; with equal weights at most 1.1/N.
func TestMeasureRemove(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	var c churn
	for n := 2; n <= 64; n++ {
		sets := [][]Backend{equal(n)}
		for range 3 {
			sets = append(sets, random(r, n))
		}
		for k, bs := range sets {
			prev := mustBuild(t, bs, 4096)
			for _, x := range sample(n) {
				_, moved := rebuildDiff(t, prev, without(bs, x))
				for _, b := range moved {
					if prev.Backend(b) != bs[x].ID {
						t.Fatalf("N=%d remove %q: bucket %d of %q moved", n, bs[x].ID, b, prev.Backend(b))
					}
				}
				if len(moved) != prev.Counts()[bs[x].ID] {
					t.Fatalf("N=%d remove %q: moved %d of its %d buckets", n, bs[x].ID, len(moved), prev.Counts()[bs[x].ID])
				}
				c.record(t, k == 0, n, len(moved), bs[x], bs, fmt.Sprintf("N=%d equal weights: removing one", n))
			}
		}
	}
	t.Logf("remove one of N=2..64, M=4096 (Rebuild): only its buckets move; equal weights max moved = %.4f/N; random weights max moved share - its weight share = %+.4f pp",
		c.worstEq, c.worstRndExcess)
}

// rebuildDiff rebuilds prev (of 4096 buckets) over bs, checks the new
// table, and returns it with the buckets that moved.
func rebuildDiff(t *testing.T, prev *Table, bs []Backend) (*Table, []int) {
	t.Helper()
	next := mustRebuild(t, prev, bs)
	checkTable(t, next, bs, 4096)
	return next, prev.Diff(next)
}

// churn is what TestMeasureRemove and TestMeasureAdd measure of the buckets
// that move when one backend leaves or joins a set: the worst moved·N/M with
// equal weights, the worst moved share beyond the backend's weight share
// (percentage points) with random weights.
type churn struct{ worstEq, worstRndExcess float64 }

// record notes moved buckets of 4096 moving for backend b of set (size
// backends); with equal weights more than 1.1/size is an error, what
// saying which change moved them.
func (c *churn) record(t *testing.T, equalWeights bool, size, moved int, b Backend, set []Backend, what string) {
	t.Helper()
	frac := float64(moved) / 4096
	if !equalWeights {
		var total uint64
		for _, b := range set {
			total += uint64(b.Weight)
		}
		c.worstRndExcess = max(c.worstRndExcess, 100*(frac-float64(b.Weight)/float64(total)))
		return
	}
	c.worstEq = max(c.worstEq, frac*float64(size))
	if frac > 1.1/float64(size) {
		t.Errorf("%s moved %.4f > 1.1/%d", what, frac, size)
	}
}

// TestMeasureAdd adds one backend (7 choices spread over the ID order) to sets of
// N = 1..63 backends (equal weights, and 3 random-weight sets per N) and checks that
// every moved bucket goes to the new backend; with equal weights at most 1.1/(N+1).
func TestMeasureAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var c churn
	for n := 1; n <= 63; n++ {
		eq := equal(n + 1)
		sets := [][]Backend{eq}
		for range 3 {
			sets = append(sets, random(r, n+1))
		}
		for k, all := range sets {
			for _, x := range sample(n + 1) {
				next, moved := rebuildDiff(t, mustBuild(t, without(all, x), 4096), all)
				for _, b := range moved {
					if next.Backend(b) != all[x].ID {
						t.Fatalf("N=%d add %q: bucket %d moved to %q", n, all[x].ID, b, next.Backend(b))
					}
				}
				c.record(t, k == 0, n+1, len(moved), all[x], all, fmt.Sprintf("N=%d equal weights: adding one", n))
			}
		}
	}
	t.Logf("add one to N=1..63, M=4096 (Rebuild): all moved buckets go to the new backend; equal weights max moved = %.4f/(N+1); random weights max moved share - its weight share = %+.4f pp",
		c.worstEq, c.worstRndExcess)
}

func TestRebuildWeightChange(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for range 50 {
		bs := random(r, 2+r.IntN(40))
		prev := mustBuild(t, bs, 4096)
		j := r.IntN(len(bs))
		up := bs[j].Weight < 50
		next := slices.Clone(bs)
		if up {
			next[j].Weight += uint32(1 + r.IntN(50))
		} else {
			next[j].Weight -= uint32(1 + r.IntN(int(bs[j].Weight)))
		}
		tb := mustRebuild(t, prev, next)
		checkTable(t, tb, next, 4096)
		for _, b := range prev.Diff(tb) {
			if up && tb.Backend(b) != bs[j].ID || !up && prev.Backend(b) != bs[j].ID {
				t.Fatalf("weight of %q %d -> %d: bucket %d moved %q -> %q",
					bs[j].ID, bs[j].Weight, next[j].Weight, b, prev.Backend(b), tb.Backend(b))
			}
		}
	}
}

// TestRebuildSequence applies random changes (add, remove, reweight, drain, several at
// once) and checks after each that the counts are the quotas and that the number of
// moved buckets is the least any table with those counts needs.
func TestRebuildSequence(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	const m = 1024
	bs := random(r, 8)
	tb := mustBuild(t, bs, m)
	for step := range 300 {
		next := slices.Clone(bs)
		for range 1 + r.IntN(3) {
			switch op := r.IntN(4); {
			case op == 0 && len(next) < 64:
				next = append(next, random(r, 1)...)
			case op == 1 && len(next) > 1:
				next = without(next, r.IntN(len(next)))
			case op == 2:
				next[r.IntN(len(next))].Weight = uint32(r.IntN(101))
			}
		}
		if _, err := Quotas(next, m); errors.Is(err, ErrZeroWeight) {
			continue
		}
		got, moved, least := rebuildLeast(t, tb, next, m)
		if moved != least {
			t.Fatalf("step %d: moved %d buckets, %d needed", step, moved, least)
		}
		if again := mustRebuild(t, got, next); !again.Equal(got) {
			t.Fatalf("step %d: Rebuild with an unchanged set moved buckets", step)
		}
		bs, tb = next, got
	}
}

// rebuildLeast rebuilds prev for bs (m buckets) and checks the table; it
// returns the table, the buckets it moved and the least movement any table
// with bs's quotas needs.
func rebuildLeast(t testing.TB, prev *Table, bs []Backend, m int) (next *Table, moved, least int) {
	t.Helper()
	next = mustRebuild(t, prev, bs)
	checkTable(t, next, bs, m)
	q, _ := Quotas(bs, m)
	for id, c := range prev.Counts() {
		least += max(0, c-q[id])
	}
	return next, len(prev.Diff(next)), least
}

func TestRebuildFromNothing(t *testing.T) {
	bs := equal(7)
	want := mustBuild(t, bs, DefaultSize)
	if got := mustRebuild(t, nil, bs); !got.Equal(want) {
		t.Error("Rebuild(nil) != Build(DefaultSize)")
	}
	if got := mustRebuild(t, &Table{}, bs); !got.Equal(want) {
		t.Error("Rebuild(empty) != Build(DefaultSize)")
	}
	if got := mustRebuild(t, want, bs); !got.Equal(want) {
		t.Error("Rebuild(Build(s), s) != Build(s)")
	}
}

func TestNewTable(t *testing.T) {
	tb := mustBuild(t, []Backend{{"a", 1}, {"b", 2}, {"c", 0}}, 64)
	back, err := NewTable(tb.Buckets())
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(tb) || !slices.Equal(back.Backends(), []string{"a", "b"}) {
		t.Errorf("round trip through Buckets/NewTable changed the table")
	}
	// A restored table is a valid Rebuild input.
	next := mustRebuild(t, back, []Backend{{"a", 1}, {"b", 2}, {"d", 1}})
	for _, b := range back.Diff(next) {
		if next.Backend(b) != "d" {
			t.Fatalf("bucket %d moved to %q", b, next.Backend(b))
		}
	}
	if _, err := NewTable([]string{"a", "b", "c"}); !errors.Is(err, ErrTableSize) {
		t.Errorf("3 buckets: err = %v", err)
	}
	if _, err := NewTable(nil); !errors.Is(err, ErrTableSize) {
		t.Errorf("no buckets: err = %v", err)
	}
	if _, err := NewTable([]string{"a", ""}); !errors.Is(err, ErrEmptyID) {
		t.Errorf("empty ID: err = %v", err)
	}
}

func TestDiff(t *testing.T) {
	a, _ := NewTable([]string{"x", "y", "x", "y"})
	b, _ := NewTable([]string{"x", "x", "x", "z"})
	if got := a.Diff(b); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("Diff = %v, want [1 3]", got)
	}
	c, _ := NewTable([]string{"x", "x"})
	if got := a.Diff(c); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Diff across sizes = %v, want every bucket of the new table", got)
	}
	if a.Equal(b) || !a.Equal(a) || a.Equal(nil) || !(*Table)(nil).Equal(&Table{}) {
		t.Error("Equal")
	}
}

// TestMeasureBuildDisruption measures what the from-scratch Build moves when one
// backend leaves, as a multiple of the minimum (the leaver's buckets). Build does not
// promise minimal disruption, Rebuild does; this is the cost of losing the previous
// table (say, a controller that cannot read it back).
func TestMeasureBuildDisruption(t *testing.T) {
	for _, weighted := range []bool{false, true} {
		r := rand.New(rand.NewPCG(6, 6))
		var sum, worst float64
		var count int
		for n := 2; n <= 64; n++ {
			for range 3 {
				bs := random(r, n)
				if !weighted {
					for i := range bs {
						bs[i].Weight = 1
					}
				}
				x := r.IntN(n)
				before := mustBuild(t, bs, 4096)
				after := mustBuild(t, without(bs, x), 4096)
				ratio := float64(len(before.Diff(after))) / float64(before.Counts()[bs[x].ID])
				sum += ratio
				worst = max(worst, ratio)
				count++
			}
		}
		t.Logf("from-scratch Build, remove one of N=2..64, M=4096, weighted=%v: moved/minimum mean %.2f, max %.2f",
			weighted, sum/float64(count), worst)
	}
}
