package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
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
	j, _, _ := open(t, dir, "")
	appendAll(t, j, "first", "second")
	j.Close()
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
	j, _, _ := open(t, dir, "boot1")
	appendAll(t, j, "old")
	j.Close()
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
