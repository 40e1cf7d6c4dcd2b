// Package maglev assigns the consistent-hash buckets of a pool to its backends.
//
// A pool has M buckets (M a power of two, pipeline.Buckets by default); the dataplane
// picks bucket = CRC32(flow) & (M-1) and looks the backend up in backend_select
// (docs/pipeline.md). This package computes that bucket -> backend table for a set of
// weighted backends, in the spirit of Maglev (Eisenbud et al., NSDI'16): every backend
// walks its own pseudo-random permutation of the buckets and claims buckets in turn.
//
// Two departures from the paper make the guarantees strict rather than statistical
// (docs/maglev.md has the reasoning and the measured figures):
//
//   - Shares are apportioned exactly first (Webster/Sainte-Laguë divisor method over the
//     weights, see [Quotas]), and the fill only decides which buckets each backend gets.
//   - [Rebuild] starts from the previous table and moves the fewest buckets that reach the
//     new quotas: buckets of a backend that stays and does not shrink never move. Because
//     the divisor method is population-monotone, removing a backend moves only its own
//     buckets, and adding one moves buckets only to the newcomer.
//
// [Build] is a pure function of the backend set (order does not matter); [Rebuild] is a
// pure function of the previous table and the new set. Both are deterministic across
// processes, architectures and Go versions: they use no maps in iteration order, no
// floating point and a fixed hash (FNV-1a 64 + splitmix64) of the backend IDs.
package maglev

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/graygw/graygw/pipeline"
)

// DefaultSize is the number of buckets per pool in the graygw pipeline.
const DefaultSize = pipeline.Buckets

// MaxSize is the largest table size: the bucket match field of backend_select is 16 bits.
const MaxSize = 1 << 16

// Backend is one member of a pool.
type Backend struct {
	// ID names the backend stably across controllers and restarts; it alone decides the
	// backend's preference order over the buckets. It must not be empty.
	ID string
	// Weight is the backend's relative share of the buckets. Zero is allowed as long as
	// some backend has a positive weight: the backend then gets no bucket (draining).
	Weight uint32
}

// Validation errors. Every error returned by this package wraps exactly one of them, so
// callers can test with errors.Is; the message says which input was at fault.
var (
	// ErrTableSize: the table size is not a power of two in [1, MaxSize].
	ErrTableSize = errors.New("maglev: table size must be a power of two between 1 and 65536")
	// ErrNoBackends: the backend list is empty.
	ErrNoBackends = errors.New("maglev: no backends")
	// ErrEmptyID: a backend (or a bucket of a restored table) has an empty ID.
	ErrEmptyID = errors.New("maglev: empty backend ID")
	// ErrDuplicateID: two backends share an ID.
	ErrDuplicateID = errors.New("maglev: duplicate backend ID")
	// ErrTooManyBackends: there are more backends than buckets.
	ErrTooManyBackends = errors.New("maglev: more backends than buckets")
	// ErrZeroWeight: no backend has a positive weight.
	ErrZeroWeight = errors.New("maglev: no backend has a positive weight")
)

// Build assigns the m buckets of a fresh table to backends, in proportion to their
// weights (see [Quotas]). The result depends only on the set of backends, not on their
// order in the slice. Use [Rebuild] when a previous table exists: Build does not know
// it and may move many more buckets than necessary.
func Build(backends []Backend, m int) (*Table, error) {
	s, err := newSet(backends, m)
	if err != nil {
		return nil, err
	}
	owner := make([]int32, m)
	for b := range owner {
		owner[b] = -1
	}
	s.fill(owner, make([]int, len(s.ids)))
	return s.table(owner), nil
}

// Rebuild returns the table for backends that differs least from prev: it keeps the
// size of prev, gives every backend exactly its quota (the same counts as [Build]) and
// moves only buckets that must move, namely
//
//   - buckets of backends that left the set or whose weight dropped to zero, and
//   - the surplus of backends whose quota shrank (each gives up the buckets it
//     prefers least);
//
// those buckets go to backends whose quota grew, each taking the freed buckets it
// prefers most. The number of moved buckets is the minimum any table with these
// counts needs. In particular, removing one backend moves only its buckets, adding one
// moves buckets only to it, and Rebuild(Build(s, m), s) equals Build(s, m).
//
// The result is a pure function of (the buckets of prev, the backend set). A nil or
// empty prev means a from-scratch [Build] of [DefaultSize] buckets.
func Rebuild(prev *Table, backends []Backend) (*Table, error) {
	if prev.Size() == 0 {
		return Build(backends, DefaultSize)
	}
	m := prev.Size()
	s, err := newSet(backends, m)
	if err != nil {
		return nil, err
	}

	// Translate prev's backend indices into s's; -1 for a backend that has no quota.
	trans := make([]int32, len(prev.ids))
	for j, id := range prev.ids {
		trans[j] = -1
		if i, ok := slices.BinarySearch(s.ids, id); ok && s.quota[i] > 0 {
			trans[j] = int32(i)
		}
	}
	owner := make([]int32, m)
	count := make([]int, len(s.ids))
	for b, j := range prev.owner {
		i := trans[j]
		owner[b] = i
		if i >= 0 {
			count[i]++
		}
	}

	// Backends above their quota give up the buckets they prefer least.
	var held [][]uint32 // per shrinking backend: rank<<16 | bucket, built on first use
	for i := range s.ids {
		if count[i] <= s.quota[i] {
			continue
		}
		if held == nil {
			held = make([][]uint32, len(s.ids))
			for b, o := range owner {
				if o >= 0 && count[o] > s.quota[o] {
					held[o] = append(held[o], s.perm[o].rank(uint32(b))<<16|uint32(b))
				}
			}
		}
		slices.Sort(held[i]) // ranks are distinct: most preferred first
		for _, rb := range held[i][s.quota[i]:] {
			owner[rb&0xffff] = -1
		}
		count[i] = s.quota[i]
	}

	s.fill(owner, count)
	return s.table(owner), nil
}

// Quotas returns how many of m buckets each backend gets, by the Webster
// (Sainte-Laguë) divisor method: the m largest of the quotients weight/(2k+1),
// k = 0, 1, 2, ..., taken over all backends, ties going to the smaller ID. Every
// backend's count is within 0.5 + (m·w/W)·n/(2m) buckets of its exact share m·w/W (n
// the number of backends with a positive weight), so within 1 percentage point for
// n <= 64 at m = 4096, and usually within one bucket. Unlike the largest-remainder
// method, a divisor method never lowers a backend's count when another backend leaves,
// nor raises it when another joins: that is what lets [Rebuild] move only the buckets
// of the backend that changed. Zero-weight backends get 0; so may a backend whose
// share is below half a bucket.
func Quotas(backends []Backend, m int) (map[string]int, error) {
	s, err := newSet(backends, m)
	if err != nil {
		return nil, err
	}
	q := make(map[string]int, len(s.ids))
	for i, id := range s.ids {
		q[id] = s.quota[i]
	}
	return q, nil
}

// set is a validated backend set for a table of m buckets, sorted by ID.
type set struct {
	m      int
	ids    []string
	weight []uint32
	quota  []int
	perm   []perm
}

func checkSize(m int) error {
	if m < 1 || m > MaxSize || m&(m-1) != 0 {
		return fmt.Errorf("%w: got %d", ErrTableSize, m)
	}
	return nil
}

func newSet(backends []Backend, m int) (*set, error) {
	if err := checkSize(m); err != nil {
		return nil, err
	}
	if len(backends) == 0 {
		return nil, ErrNoBackends
	}
	if len(backends) > m {
		return nil, fmt.Errorf("%w: %d backends for %d buckets", ErrTooManyBackends, len(backends), m)
	}
	sorted := slices.Clone(backends)
	slices.SortFunc(sorted, func(a, b Backend) int { return cmp.Compare(a.ID, b.ID) })
	var total uint64
	for i, b := range sorted {
		if b.ID == "" {
			return nil, ErrEmptyID
		}
		if i > 0 && sorted[i-1].ID == b.ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateID, b.ID)
		}
		total += uint64(b.Weight)
	}
	if total == 0 {
		return nil, fmt.Errorf("%w: all %d backends have weight 0", ErrZeroWeight, len(backends))
	}

	s := &set{
		m:      m,
		ids:    make([]string, len(sorted)),
		weight: make([]uint32, len(sorted)),
		perm:   make([]perm, len(sorted)),
	}
	for i, b := range sorted {
		s.ids[i], s.weight[i] = b.ID, b.Weight
		s.perm[i] = newMixer(b.ID, m)
	}
	s.quota = webster(s.weight, m)
	return s, nil
}

// webster apportions m seats to weights by the Sainte-Laguë divisor method: each seat
// goes to the largest quotient w/(2k+1), k being the seats already held; ties go to
// the lower index. The seats are the m largest quotients of a total order that does
// not depend on which other backends exist, hence population monotonicity.
func webster(weight []uint32, m int) []int {
	var total uint64
	var n int // backends with a positive weight
	for _, w := range weight {
		total += uint64(w)
		if w > 0 {
			n++
		}
	}
	// Hand out the seats that are certainly among the m largest quotients first, so
	// that only about 1.5n seats go through the heap. With x_i = w_i/d for the final
	// divisor d, each count lies within x_i ± 1/2, so |Σx - m| <= n/2 and every count
	// is at least w_i(2m-n)/(2W) - 1/2; one seat less covers the floor.
	seats := make([]int, len(weight))
	left := m
	for i, w := range weight {
		if lb := uint64(w) * uint64(2*m-n) / (2 * total); lb > 1 {
			seats[i] = int(lb) - 1
			left -= seats[i]
		}
	}
	// higher reports whether i's next quotient ranks above j's. The products fit:
	// weights < 2^32 and 2k+1 <= 2^17.
	higher := func(i, j int32) bool {
		l := uint64(weight[i]) * uint64(2*seats[j]+1)
		r := uint64(weight[j]) * uint64(2*seats[i]+1)
		return l > r || l == r && i < j
	}
	h := heap{less: higher}
	for i, w := range weight {
		if w > 0 {
			h.push(int32(i))
		}
	}
	for range left {
		seats[h.items[0]]++
		h.fix0()
	}
	return seats
}

// fill completes a partial assignment. owner[b] is the backend index of bucket b, or
// -1 for a free bucket; count[i] is how many buckets backend i holds, at most its
// quota, and the free buckets are exactly the missing ones. Backends with a deficit
// take turns, backend i taking its (k+1)-th bucket at virtual time (2k+1)/(2·deficit_i)
// (ties to the lower index) so that big and small claimants interleave evenly, as in
// weighted Maglev; on its turn a backend claims the first free bucket in its
// permutation.
func (s *set) fill(owner []int32, count []int) {
	deficit := make([]uint64, len(s.ids))
	taken := make([]uint64, len(s.ids))
	cursor := make([]uint32, len(s.ids))
	var q queue
	for i := range s.ids {
		if d := s.quota[i] - count[i]; d > 0 {
			deficit[i] = uint64(d)
			q.push(turn{at: turnTime(0, deficit[i]), i: int32(i)})
		}
	}
	for len(q) > 0 {
		i := q[0].i
		p := s.perm[i]
		// A free bucket is always ahead of the cursor: buckets behind it are taken
		// for good, and free buckets remain while some backend has a deficit.
		b := p.at(cursor[i])
		for owner[b] >= 0 {
			cursor[i]++
			b = p.at(cursor[i])
		}
		owner[b] = i
		cursor[i]++
		taken[i]++
		if taken[i] == deficit[i] {
			q.pop0()
		} else {
			q[0].at = turnTime(taken[i], deficit[i])
			q.fix0()
		}
	}
}

// turnTime returns (2k+1)/(2·deficit) in fixed point with 40 fractional bits; k <
// deficit <= 2^16, so the value fits in 57 bits. Truncation cannot reorder turns: two
// different times with denominators <= 2^17 differ by at least 2^-34, far more than
// the 2^-40 lost, and equal times truncate equally.
func turnTime(k, deficit uint64) uint64 { return (2*k + 1) << 39 / deficit }

// turn is a backend's next turn in fill.
type turn struct {
	at uint64 // turnTime
	i  int32  // backend index; breaks ties
}

func (t turn) before(u turn) bool { return t.at < u.at || t.at == u.at && t.i < u.i }

// queue is a binary min-heap of turns whose keys change only at the top (fix0).
type queue []turn

func (q *queue) push(t turn) {
	*q = append(*q, t)
	h := *q
	for c := len(h) - 1; c > 0; {
		p := (c - 1) / 2
		if !h[c].before(h[p]) {
			break
		}
		h[c], h[p] = h[p], h[c]
		c = p
	}
}

func (q *queue) pop0() {
	n := len(*q) - 1
	(*q)[0] = (*q)[n]
	*q = (*q)[:n]
	q.fix0()
}

func (q queue) fix0() {
	n := len(q)
	for p := 0; ; {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && q[c+1].before(q[c]) {
			c++
		}
		if !q[c].before(q[p]) {
			return
		}
		q[c], q[p] = q[p], q[c]
		p = c
	}
}

// table turns a complete assignment into a Table.
func (s *set) table(owner []int32) *Table {
	t := &Table{owner: make([]uint16, len(owner))}
	// Keep only IDs that own buckets, so that equal tables have equal representations.
	idx := make([]int32, len(s.ids))
	for _, o := range owner {
		idx[o] = 1
	}
	for i, used := range idx {
		if used != 0 {
			idx[i] = int32(len(t.ids))
			t.ids = append(t.ids, s.ids[i])
		}
	}
	for b, o := range owner {
		t.owner[b] = uint16(idx[o])
	}
	return t
}

// heap is a binary min-heap of backend indices under less, whose keys change only for
// the top item (fix0 after changing it). webster uses it; fill has its own queue,
// whose comparisons inline.
type heap struct {
	items []int32
	less  func(a, b int32) bool
}

func (h *heap) push(x int32) {
	h.items = append(h.items, x)
	for c := len(h.items) - 1; c > 0; {
		p := (c - 1) / 2
		if !h.less(h.items[c], h.items[p]) {
			break
		}
		h.items[c], h.items[p] = h.items[p], h.items[c]
		c = p
	}
}

func (h *heap) pop0() {
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	h.items = h.items[:n]
	h.fix0()
}

func (h *heap) fix0() {
	n := len(h.items)
	for p := 0; ; {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && h.less(h.items[c+1], h.items[c]) {
			c++
		}
		if !h.less(h.items[c], h.items[p]) {
			return
		}
		h.items[c], h.items[p] = h.items[p], h.items[c]
		p = c
	}
}
