package maglev

import (
	"fmt"
	"slices"
)

// Table is an immutable bucket -> backend ID assignment, as built by [Build] and
// [Rebuild] or restored with [NewTable]. The zero value and nil are empty tables of
// size 0 (only useful as "no previous table").
type Table struct {
	ids   []string // sorted IDs of the backends that own at least one bucket
	owner []uint16 // bucket -> index into ids (len(ids) <= MaxSize)
}

// NewTable restores a table from its buckets (bucket b -> buckets[b]), for example as
// read back from the dataplane's backend_select entries after a controller restart,
// so that a following [Rebuild] keeps flows where they are. The length must be a power
// of two no greater than [MaxSize] and every bucket must name a backend.
func NewTable(buckets []string) (*Table, error) {
	if err := checkSize(len(buckets)); err != nil {
		return nil, err
	}
	ids := slices.Clone(buckets)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ids[0] == "" {
		return nil, fmt.Errorf("%w: bucket %d", ErrEmptyID, slices.Index(buckets, ""))
	}
	t := &Table{ids: ids, owner: make([]uint16, len(buckets))}
	for b, id := range buckets {
		i, _ := slices.BinarySearch(ids, id)
		t.owner[b] = uint16(i)
	}
	return t, nil
}

// Size returns the number of buckets.
func (t *Table) Size() int {
	if t == nil {
		return 0
	}
	return len(t.owner)
}

// Backend returns the ID of the backend that bucket b maps to. It panics if b is out of
// range, like a slice index.
func (t *Table) Backend(b int) string { return t.ids[t.owner[b]] }

// Buckets returns a copy of the table as a slice: bucket b -> backend ID.
func (t *Table) Buckets() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.owner))
	for b, o := range t.owner {
		out[b] = t.ids[o]
	}
	return out
}

// Backends returns the sorted IDs of the backends that own at least one bucket.
func (t *Table) Backends() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.ids)
}

// Counts returns how many buckets each backend owns; backends without buckets are
// absent.
func (t *Table) Counts() map[string]int {
	if t == nil {
		return map[string]int{}
	}
	n := make([]int, len(t.ids))
	for _, o := range t.owner {
		n[o]++
	}
	c := make(map[string]int, len(t.ids))
	for i, id := range t.ids {
		c[id] = n[i]
	}
	return c
}

// Equal reports whether t and u map every bucket to the same backend.
func (t *Table) Equal(u *Table) bool {
	return t.Size() == u.Size() && (t.Size() == 0 ||
		slices.Equal(t.ids, u.ids) && slices.Equal(t.owner, u.owner))
}

// Diff returns, in increasing order, the buckets whose backend differs between t and
// next: the backend_select entries to rewrite when moving from t to next. If the sizes
// differ every bucket of next is returned.
func (t *Table) Diff(next *Table) []int {
	var d []int
	if t.Size() != next.Size() {
		for b := range next.Size() {
			d = append(d, b)
		}
		return d
	}
	for b := range t.Size() {
		if t.ids[t.owner[b]] != next.ids[next.owner[b]] {
			d = append(d, b)
		}
	}
	return d
}
