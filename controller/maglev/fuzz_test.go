package maglev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// decodeBackends turns fuzz bytes into backends: per backend, one byte of ID (so
// duplicates happen) and one byte of weight; a weight byte >= 0xf0 takes the next
// four bytes as a full uint32 weight instead.
func decodeBackends(data []byte) []Backend {
	var bs []Backend
	for len(data) >= 2 {
		id, w := data[0], uint32(data[1])
		data = data[2:]
		if w >= 0xf0 && len(data) >= 4 {
			w = binary.BigEndian.Uint32(data)
			data = data[4:]
		}
		name := fmt.Sprintf("b%02x", id)
		if id == 0xff {
			name = ""
		}
		bs = append(bs, Backend{ID: name, Weight: w})
	}
	return bs
}

// decodeSize: below 128, a power of two up to 2^17 (2^17 is too big); otherwise the
// byte itself, mostly not a power of two.
func decodeSize(c uint8) int {
	if c < 128 {
		return 1 << (c % 18)
	}
	return int(c)
}

// expectErr is an independent statement of the validation rules.
func expectErr(bs []Backend, m int) error {
	switch {
	case m < 1 || m > MaxSize || m&(m-1) != 0:
		return ErrTableSize
	case len(bs) == 0:
		return ErrNoBackends
	case len(bs) > m:
		return ErrTooManyBackends
	}
	seen := map[string]bool{}
	var dup, empty, positive bool
	for _, b := range bs {
		dup = dup || seen[b.ID]
		empty = empty || b.ID == ""
		positive = positive || b.Weight > 0
		seen[b.ID] = true
	}
	switch {
	case empty:
		return ErrEmptyID
	case dup:
		return ErrDuplicateID
	case !positive:
		return ErrZeroWeight
	}
	return nil
}

// FuzzBuild checks the invariants of Build and Rebuild on arbitrary backend sets:
// validation, every bucket on a backend with a positive weight, counts equal to the
// quotas and within the Webster bound of the weights, independence from input order,
// and Rebuild's minimal disruption for removing one backend, adding one, and moving
// from an unrelated table. The seed corpus is testdata/fuzz/FuzzBuild, one named file
// per validation rule and per interesting shape.
func FuzzBuild(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, sizeCode, op uint8) {
		bs := decodeBackends(data)
		m := decodeSize(sizeCode)
		want := expectErr(bs, m)
		tb, err := Build(bs, m)
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Fatalf("Build(%v, %d): err = %v, want %v", bs, m, err, want)
		}
		if err != nil {
			return
		}
		checkTable(t, tb, bs, m)

		rev := slices.Clone(bs)
		slices.Reverse(rev)
		if again := mustBuild(t, rev, m); !again.Equal(tb) {
			t.Fatal("Build depends on the order of backends")
		}
		if again := mustRebuild(t, tb, rev); !again.Equal(tb) {
			t.Fatal("Rebuild with the same set moved buckets")
		}

		// Remove one backend: only its buckets move.
		x := int(op) % len(bs)
		if rest := without(bs, x); expectErr(rest, m) == nil {
			next := mustRebuild(t, tb, rest)
			checkTable(t, next, rest, m)
			moved := tb.Diff(next)
			for _, b := range moved {
				if tb.Backend(b) != bs[x].ID {
					t.Fatalf("removing %q moved bucket %d of %q", bs[x].ID, b, tb.Backend(b))
				}
			}
			if len(moved) != tb.Counts()[bs[x].ID] {
				t.Fatalf("removing %q moved %d buckets, it had %d", bs[x].ID, len(moved), tb.Counts()[bs[x].ID])
			}
		}

		// Add one backend: moved buckets go only to it.
		more := append(slices.Clone(bs), Backend{ID: "new", Weight: uint32(op)})
		if expectErr(more, m) == nil {
			next := mustRebuild(t, tb, more)
			checkTable(t, next, more, m)
			for _, b := range tb.Diff(next) {
				if next.Backend(b) != "new" {
					t.Fatalf("adding a backend moved bucket %d to %q", b, next.Backend(b))
				}
			}
		}

		// From an unrelated table: the least movement that reaches the quotas.
		other := []Backend{{ID: "b01", Weight: 1}, {ID: "other", Weight: uint32(op) + 1}}
		if expectErr(other, m) == nil {
			if _, moved, least := rebuildLeast(t, mustBuild(t, other, m), bs, m); moved != least {
				t.Fatalf("Rebuild from an unrelated table moved %d buckets, %d needed", moved, least)
			}
		}
	})
}
