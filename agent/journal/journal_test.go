package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, dir, gen string) (*Journal, []string, Replayed) {
	t.Helper()
	var got []string
	j, rep, err := Open(dir, Options{Generation: gen}, func(r []byte) error {
		got = append(got, string(r))
		return nil
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j, got, rep
}

func appendAll(t *testing.T, j *Journal, recs ...string) {
	t.Helper()
	for _, r := range recs {
		if err := j.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
}

// writeClosed leaves in dir a journal of generation gen holding recs, closed.
func writeClosed(t *testing.T, dir, gen string, recs ...string) {
	t.Helper()
	j, _, _ := open(t, dir, gen)
	appendAll(t, j, recs...)
	j.Close()
}

func TestReplayInOrder(t *testing.T) {
	dir := t.TempDir()
	j, got, _ := open(t, dir, "boot1")
	if len(got) != 0 {
		t.Fatalf("fresh journal replayed %q", got)
	}
	appendAll(t, j, "a", "b")
	if err := j.Append([]byte("c"), []byte(""), []byte("d")); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, got, rep := open(t, dir, "boot1")
	if want := []string{"a", "b", "c", "", "d"}; !slices.Equal(got, want) || rep.Records != 5 {
		t.Fatalf("replayed %q (%d), want %q", got, rep.Records, want)
	}
	appendAll(t, j, "e")
	j.Close()
	_, got, _ = open(t, dir, "boot1")
	if want := []string{"a", "b", "c", "", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen and append: %q", got)
	}
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	writeClosed(t, dir, "", "first", "second")
	// Simulate death inside write(2): half a record at the end.
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(frame(nil, []byte("third, torn"))[:10])
	f.Close()

	j, got, rep := open(t, dir, "")
	if !slices.Equal(got, []string{"first", "second"}) || rep.TornBytes != 10 {
		t.Fatalf("replayed %q, torn %d", got, rep.TornBytes)
	}
	appendAll(t, j, "fourth")
	j.Close()
	_, got, _ = open(t, dir, "")
	if !slices.Equal(got, []string{"first", "second", "fourth"}) {
		t.Fatalf("after append past the cut: %q", got)
	}
}

func TestCorruptSnapshotFails(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, "")
	appendAll(t, j, "x")
	if err := j.Compact(func(emit func([]byte) error) error { return emit([]byte("state")) }); err != nil {
		t.Fatal(err)
	}
	j.Close()
	path := filepath.Join(dir, SnapshotFile)
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 0xff
	os.WriteFile(path, b, 0o600)
	_, _, err := Open(dir, Options{}, func([]byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(corrupt snapshot) = %v, want ErrCorrupt", err)
	}
}

func TestGenerationChangeDiscards(t *testing.T) {
	dir := t.TempDir()
	writeClosed(t, dir, "boot1", "old")
	j, got, rep := open(t, dir, "boot2")
	if len(got) != 0 || rep.Discarded == "" {
		t.Fatalf("after reboot: replayed %q, discarded %q", got, rep.Discarded)
	}
	appendAll(t, j, "new")
	j.Close()
	_, got, rep = open(t, dir, "boot2")
	if !slices.Equal(got, []string{"new"}) || rep.Discarded != "" {
		t.Fatalf("replayed %q, discarded %q", got, rep.Discarded)
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, "g")
	appendAll(t, j, "1", "2", "3")
	if j.LogSize() != 3*9 {
		t.Errorf("LogSize = %d", j.LogSize())
	}
	oldLog, _ := os.ReadFile(filepath.Join(dir, LogFile))
	if err := j.Compact(func(emit func([]byte) error) error {
		for _, r := range []string{"s1", "s2"} {
			if err := emit([]byte(r)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if j.LogSize() != 0 || j.SnapshotSize() != 2*10 {
		t.Errorf("after compact: log %d, snapshot %d", j.LogSize(), j.SnapshotSize())
	}
	appendAll(t, j, "4")
	j.Close()
	_, got, _ := open(t, dir, "g")
	if !slices.Equal(got, []string{"s1", "s2", "4"}) {
		t.Fatalf("replayed %q", got)
	}

	// A crash between the snapshot rename and the new log: the old log (older
	// epoch) must not be replayed on top of the snapshot that contains it.
	os.WriteFile(filepath.Join(dir, LogFile), oldLog, 0o600)
	_, got, _ = open(t, dir, "g")
	if !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("stale log replayed: %q", got)
	}
}

func TestReplayErrorFailsOpen(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, "")
	appendAll(t, j, "a")
	j.Close()
	boom := fmt.Errorf("boom")
	if _, _, err := Open(dir, Options{}, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Open = %v", err)
	}
	if err := j.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
}

// history builds a journal with a compacted snapshot and a log behind it, and
// returns the records Open must replay: every one acknowledged, in order.
func history(t testing.TB, dir string) []string {
	t.Helper()
	j, _, err := Open(dir, Options{Generation: "boot"}, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	add := func(recs ...string) {
		for _, r := range recs {
			if err := j.Append([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("gone-1", "gone-2")
	snap := []string{"snap-a", "snap-bb", ""}
	if err := j.Compact(func(emit func([]byte) error) error {
		for _, r := range snap {
			if err := emit([]byte(r)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want = append(want, snap...)
	for i := range 6 {
		r := fmt.Sprintf("log-%d-%s", i, string(make([]byte, i*7)))
		add(r)
		want = append(want, r)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func copyDir(t testing.TB, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{SnapshotFile, LogFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func replayAll(dir string) ([]string, Replayed, error) {
	var got []string
	j, rep, err := Open(dir, Options{Generation: "boot"}, func(r []byte) error {
		got = append(got, string(r))
		return nil
	})
	if err == nil {
		j.Close()
	}
	return got, rep, err
}

// TestEveryFlippedByteIsRefused: one byte changed anywhere in either file (the
// issue's "byte flipped in the middle of the log") is corruption, named with the
// file and the offset: never a torn tail cut, never an older state.
func TestEveryFlippedByteIsRefused(t *testing.T) {
	base := t.TempDir()
	history(t, base)
	for _, name := range []string{SnapshotFile, LogFile} {
		orig, _ := os.ReadFile(filepath.Join(base, name))
		for off := range orig {
			dir := copyDir(t, base)
			b := slices.Clone(orig)
			b[off] ^= 0xff
			os.WriteFile(filepath.Join(dir, name), b, 0o600)
			got, _, err := replayAll(dir)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s byte %d flipped: Open = %v (replayed %d records), want ErrCorrupt", name, off, err, len(got))
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, name)+" at offset ") {
				t.Fatalf("%s byte %d flipped: error %q does not name the file and offset", name, off, err)
			}
			// Open refused without touching the files.
			if after, _ := os.ReadFile(filepath.Join(dir, name)); !slices.Equal(after, b) {
				t.Fatalf("%s byte %d flipped: Open changed the file", name, off)
			}
		}
	}
}

// TestCutFileIsRefused: a log or snapshot cut short anywhere (the issue's "log cut
// in half") is corruption; only bytes past the commit mark are a torn tail.
func TestCutFileIsRefused(t *testing.T) {
	base := t.TempDir()
	history(t, base)
	for _, name := range []string{SnapshotFile, LogFile} {
		orig, _ := os.ReadFile(filepath.Join(base, name))
		for size := range len(orig) {
			dir := copyDir(t, base)
			os.WriteFile(filepath.Join(dir, name), orig[:size], 0o600)
			if _, _, err := replayAll(dir); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut to %d of %d bytes: Open = %v, want ErrCorrupt", name, size, len(orig), err)
			}
		}
	}
}

// TestUnacknowledgedTailIsCut: bytes after the commit mark (an append that never
// returned) are cut whatever they hold, and the state is the acknowledged one.
func TestUnacknowledgedTailIsCut(t *testing.T) {
	base := t.TempDir()
	want := history(t, base)
	for _, tail := range [][]byte{frame(nil, []byte("never acknowledged")), {1, 2, 3}, make([]byte, 5000)} {
		dir := copyDir(t, base)
		f, _ := os.OpenFile(filepath.Join(dir, LogFile), os.O_APPEND|os.O_WRONLY, 0)
		f.Write(tail)
		f.Close()
		got, rep, err := replayAll(dir)
		if err != nil || !slices.Equal(got, want) || rep.TornBytes != int64(len(tail)) {
			t.Fatalf("tail of %d bytes: replayed %q, torn %d, err %v", len(tail), got, rep.TornBytes, err)
		}
		if got, _, err := replayAll(dir); err != nil || !slices.Equal(got, want) {
			t.Fatalf("second open after the cut: %q, %v", got, err)
		}
	}
}

// TestMissingOrStaleFileIsRefused: files that contradict each other are refused.
func TestMissingOrStaleFileIsRefused(t *testing.T) {
	base := t.TempDir()
	history(t, base)
	for name, damage := range map[string]func(dir string){
		"log removed":      func(dir string) { os.Remove(filepath.Join(dir, LogFile)) },
		"snapshot removed": func(dir string) { os.Remove(filepath.Join(dir, SnapshotFile)) },
		"older snapshot put back": func(dir string) {
			// A snapshot of epoch 1 (the first, empty one) under a log of epoch 2.
			b := append(header("boot", 1), trailer(0)...)
			os.WriteFile(filepath.Join(dir, SnapshotFile), b, 0o600)
		},
	} {
		dir := copyDir(t, base)
		damage(dir)
		if _, _, err := replayAll(dir); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestFirstFormatIsUpgraded: files of graygw-agent-journal/1 (an agent upgraded in
// place) replay as before and are rewritten in the current format.
func TestFirstFormatIsUpgraded(t *testing.T) {
	dir := t.TempDir()
	v1 := func(epoch int, recs ...string) []byte {
		b := []byte(fmt.Sprintf("%s %d %q\n", magicV1, epoch, "boot"))
		for _, r := range recs {
			b = frame(b, []byte(r))
		}
		return b
	}
	os.WriteFile(filepath.Join(dir, SnapshotFile), v1(3, "s1", "s2"), 0o600)
	os.WriteFile(filepath.Join(dir, LogFile), append(v1(3, "l1"), frame(nil, []byte("torn"))[:5]...), 0o600)
	got, rep, err := replayAll(dir)
	if want := []string{"s1", "s2", "l1"}; err != nil || !slices.Equal(got, want) || !rep.Upgraded {
		t.Fatalf("v1 journal: replayed %q, %+v, %v", got, rep, err)
	}
	for _, name := range []string{SnapshotFile, LogFile} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); !strings.HasPrefix(string(b), magic+" ") {
			t.Fatalf("%s not rewritten: %q", name, b)
		}
	}
	if got, rep, err := replayAll(dir); err != nil || !slices.Equal(got, []string{"s1", "s2", "l1"}) || rep.Upgraded {
		t.Fatalf("after the upgrade: %q, %+v, %v", got, rep, err)
	}
}

// TestSetAside: the recovery path moves a corrupt journal aside; the next Open
// starts without one.
func TestSetAside(t *testing.T) {
	dir := t.TempDir()
	history(t, dir)
	b, _ := os.ReadFile(filepath.Join(dir, LogFile))
	b[len(b)-1] ^= 1
	os.WriteFile(filepath.Join(dir, LogFile), b, 0o600)
	if _, _, err := replayAll(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatal(err)
	}
	moved, err := SetAside(dir, time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC))
	if err != nil || len(moved) != 2 || !strings.HasSuffix(moved[1], "log.corrupt-20261207T140000Z") {
		t.Fatalf("SetAside = %q, %v", moved, err)
	}
	if got, rep, err := replayAll(dir); err != nil || len(got) != 0 || rep.Discarded != "" {
		t.Fatalf("after SetAside: %q, %+v, %v", got, rep, err)
	}
}

// FuzzOpen damages a journal (bytes changed, the file cut or extended) and checks
// the one rule: Open either refuses with ErrCorrupt or replays exactly the
// acknowledged records; never a prefix of them (an older state).
func FuzzOpen(f *testing.F) {
	f.Add(false, uint32(100), byte(1), uint32(0), []byte{})
	f.Add(true, uint32(40), byte(0x20), uint32(0), []byte{})
	f.Add(true, uint32(0), byte(0), uint32(30), []byte{})
	f.Add(true, uint32(0), byte(0), uint32(0), []byte("tail"))
	base := f.TempDir()
	want := history(f, base)
	f.Fuzz(func(t *testing.T, log bool, off uint32, xor byte, cut uint32, extra []byte) {
		dir := copyDir(t, base)
		name := SnapshotFile
		if log {
			name = LogFile
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if len(b) > 0 {
			b[int(off)%len(b)] ^= xor
		}
		b = b[:len(b)-int(cut)%(len(b)+1)]
		b = append(b, extra...)
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
		got, _, err := replayAll(dir)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want nil or ErrCorrupt", err)
			}
			return
		}
		if !slices.Equal(got, want) {
			t.Fatalf("replayed %d records, want the %d acknowledged", len(got), len(want))
		}
	})
}

// TestFailedAppendLeavesNoPartialRecord: a log on a full filesystem (a real tmpfs)
// refuses the append that does not fit and keeps no part of it, so the appends
// acknowledged after space is freed replay, in order (the ENOSPC loss).
func TestFailedAppendLeavesNoPartialRecord(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 32<<10), 0o600)
	jdir := filepath.Join(dir, "j")
	j, _, _ := open(t, jdir, "")
	var want []string
	rec := string(make([]byte, 3000))
	failed := false
	for i := 0; i < 100 && !failed; i++ {
		r := fmt.Sprint(i) + rec
		if err := j.Append([]byte(r)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: %v, want ENOSPC", i, err)
			}
			failed = true
			break
		}
		want = append(want, r)
	}
	if !failed {
		t.Fatal("the filesystem never filled")
	}
	st, _ := os.Stat(filepath.Join(jdir, LogFile))
	if st.Size() != j.end {
		t.Fatalf("log is %d bytes after the failed append, acknowledged records end at %d", st.Size(), j.end)
	}
	os.Remove(filler)
	for _, r := range []string{"after-1", "after-2"} {
		if err := j.Append([]byte(r)); err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		want = append(want, r)
	}
	j.Close()
	_, got, rep := open(t, jdir, "")
	if !slices.Equal(got, want) || rep.TornBytes != 0 {
		t.Fatalf("replayed %d records (torn %d), want the %d acknowledged", len(got), rep.TornBytes, len(want))
	}
}

// BenchmarkAppend: one record per Append (a batch of one update, ~100 bytes)
// against its baseline in the same process, one write(2) of the same framed
// bytes to a plain file: the commit mark costs a second pwrite(2) per append.
func BenchmarkAppend(b *testing.B) {
	rec := make([]byte, 100)
	b.Run("journal", func(b *testing.B) {
		j, _, err := Open(b.TempDir(), Options{}, func([]byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		for b.Loop() {
			if err := j.Append(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-write", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := frame(nil, rec)
		for b.Loop() {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
