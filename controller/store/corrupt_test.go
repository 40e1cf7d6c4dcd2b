package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seeded writes a store with versions, history and key/values, and returns its
// path and the current version and history it must show.
func seeded(t testing.TB, dir string) (string, *Version, []Event) {
	t.Helper()
	path := filepath.Join(dir, "controller.db")
	s, err := OpenBolt(path, BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 12 {
		if _, _, err := s.Commit(ctx, change(uint64(i), fmt.Sprintf("intent %d %s", i, strings.Repeat("x", 300)))); err != nil {
			t.Fatal(err)
		}
	}
	s.Put(ctx, "engine", "pools", []byte("tables"))
	cur, _ := s.Current(ctx)
	hist, _ := s.History(ctx, Query{})
	s.Close()
	return path, cur, hist
}

func copyFile(t testing.TB, from, to string) []byte {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmptyStoreFileRefused: the zero-length controller.db is refused,
// not re-initialized as a new store.
func TestEmptyStoreFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.db")
	os.WriteFile(path, nil, 0o600)
	if _, err := OpenBolt(path, BoltOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("OpenBolt(0-byte file) = %v, want ErrCorrupt saying it is empty", err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatal("the refused file was written")
	}
}

// TestGarbagePagesRefused: random bytes in every page but the metas (bbolt then
// trusts garbage and panics), in every page, or in one meta page (bbolt would
// fall back to the previous commit): an error wrapping ErrCorrupt, no panic.
func TestGarbagePagesRefused(t *testing.T) {
	src, _, _ := seeded(t, t.TempDir())
	orig, _ := os.ReadFile(src)
	const page = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	for name, damage := range map[string]func(b []byte){
		"every page":        func(b []byte) { fill(rng, b) },
		"all but the metas": func(b []byte) { fill(rng, b[2*page:]) },
		"meta page 0":       func(b []byte) { fill(rng, b[16:page]) },
		"meta page 1":       func(b []byte) { fill(rng, b[page+16:2*page]) },
		"data pages zeroed": func(b []byte) { clear(b[2*page:]) },
	} {
		for try := range 5 {
			b := bytes.Clone(orig)
			damage(b)
			path := filepath.Join(t.TempDir(), "controller.db")
			os.WriteFile(path, b, 0o600)
			s, err := OpenBolt(path, BoltOptions{LockTimeout: time.Second})
			if err == nil {
				s.Close()
				t.Fatalf("%s (try %d): opened", name, try)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("%s (try %d): %v, want ErrCorrupt naming the file", name, try, err)
			}
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// FuzzOpenBolt changes bytes of a store file: OpenBolt refuses it, or the store
// shows exactly the committed current version and history. Never a panic, never
// an older version as current.
func FuzzOpenBolt(f *testing.F) {
	src, cur, hist := seeded(f, f.TempDir())
	orig, _ := os.ReadFile(src)
	f.Add(uint32(100), byte(1), uint16(0))
	f.Add(uint32(4096+40), byte(0x80), uint16(0))
	f.Add(uint32(3*4096+20), byte(0xff), uint16(64))
	f.Fuzz(func(t *testing.T, off uint32, xor byte, span uint16) {
		b := bytes.Clone(orig)
		start := int(off) % len(b)
		for i := start; i <= start+int(span) && i < len(b); i++ {
			b[i] ^= xor
		}
		path := filepath.Join(t.TempDir(), "controller.db")
		os.WriteFile(path, b, 0o600)
		s, err := OpenBolt(path, BoltOptions{NoSync: true, LockTimeout: time.Second})
		if err != nil {
			return
		}
		defer s.Close()
		ctx := context.Background()
		got, err := s.Current(ctx)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return
			}
			t.Fatalf("Current = %v", err)
		}
		if got.Number != cur.Number || !bytes.Equal(got.Intent, cur.Intent) || got.Actor != cur.Actor || !got.Time.Equal(cur.Time) {
			t.Fatalf("Current = version %d %q, want version %d", got.Number, got.Intent[:min(len(got.Intent), 20)], cur.Number)
		}
		h, err := s.History(ctx, Query{})
		if err == nil && len(h) != len(hist) {
			t.Fatalf("History has %d events, want %d", len(h), len(hist))
		}
	})
}

// TestRetention: a count and an age bound drop old versions at commit and at
// open; the current version stays whatever the bounds; the history (records
// included) is kept and a pruned version says so.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "controller.db")
	s, err := OpenBolt(path, BoltOptions{NoSync: true, Retain: Retention{Versions: 3}})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-48 * time.Hour)
	for i := range 10 {
		c := change(uint64(i), fmt.Sprint("v", i+1))
		c.Time = base.Add(time.Duration(i) * time.Hour)
		if _, _, err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(ctx, Record{Actor: "bob", Operation: "drain", Summary: fmt.Sprint("drain ", i+1), Time: c.Time}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Oldest(ctx); n != 8 {
		t.Fatalf("oldest kept = %d, want 8 (3 of 10)", n)
	}
	if _, err := s.Version(ctx, 7); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("Version(7) = %v, want ErrNotFound naming the retention", err)
	}
	if h, _ := s.History(ctx, Query{}); len(h) != 20 || !h[0].Record || h[19].Record {
		t.Fatalf("history has %d events, want all 20 (10 changes, 10 records: records are kept as the changes are)", len(h))
	}
	s.Close()
	// Reopened with an age bound that every version exceeds: only the current stays.
	s, err = OpenBolt(path, BoltOptions{NoSync: true, Retain: Retention{Age: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.Oldest(ctx); n != 10 {
		t.Fatalf("oldest kept = %d, want 10 (the current)", n)
	}
	if cur, err := s.Current(ctx); err != nil || string(cur.Intent) != "v10" {
		t.Fatalf("Current = %v, %v", cur, err)
	}
	if _, _, err := s.Commit(ctx, change(10, "v11")); err != nil {
		t.Fatalf("commit after pruning: %v", err)
	}
}

// TestRetentionCompactsTheFile: the growth (+8 MB after 20 cutovers of a
// 273 KB intent) is bounded: with 3 versions kept the file shrinks back when
// reopened.
func TestRetentionCompactsTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "controller.db")
	doc := strings.Repeat("y", 273<<10)
	s, err := OpenBolt(path, BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c := change(uint64(i), fmt.Sprint(i, doc))
		c.Summary = "cutover"
		if _, _, err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	grown, _ := os.Stat(path)
	s, err = OpenBolt(path, BoltOptions{NoSync: true, Retain: Retention{Versions: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := s.Current(ctx); err != nil || cur.Number != 20 || !strings.HasPrefix(string(cur.Intent), "19y") {
		t.Fatalf("after compaction Current = %v, %v", cur, err)
	}
	if h, _ := s.History(ctx, Query{}); len(h) != 20 {
		t.Fatalf("after compaction %d events", len(h))
	}
	s.Close()
	shrunk, _ := os.Stat(path)
	t.Logf("20 versions of a 273 KiB intent: %d bytes; 3 kept and compacted: %d bytes", grown.Size(), shrunk.Size())
	if shrunk.Size() > 2*grown.Size()/5 {
		t.Fatalf("file is %d bytes after keeping 3 of 20 versions (was %d)", shrunk.Size(), grown.Size())
	}
}
