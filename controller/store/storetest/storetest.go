// Package storetest is the conformance suite of controller/store's Store
// interface: every implementation (bbolt, memory, etcd) must pass the same
// tests of versions, compare-and-swap commits, history paging and key/value
// namespaces. Call Run from the implementation's own tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/store"
)

// Run runs every conformance test against a fresh store from open; the test
// closes it (open registers nothing to close).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"EmptyStoreHasNoIntent", emptyStoreHasNoIntent},
		{"CommitVersionsAndHistory", commitVersionsAndHistory},
		{"CommitConflict", commitConflict},
		{"CommitRefusesIncompleteChanges", commitRefusesIncompleteChanges},
		{"ConcurrentCommitsOneWinsPerVersion", concurrentCommitsOneWinsPerVersion},
		{"HistoryPaging", historyPaging},
		{"UndoesIsRecorded", undoesIsRecorded},
		{"RecordsInTheHistory", recordsInTheHistory},
		{"ConcurrentRecordsAndCommits", concurrentRecordsAndCommits},
		{"KeyValue", keyValue},
		{"ClosedStore", closedStore},
		{"CancelledContext", cancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func change(base uint64, text string) store.Change {
	return store.Change{Base: base, Intent: []byte(text), Actor: "alice", Operation: "apply", Summary: "set " + text}
}

func emptyStoreHasNoIntent(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Current(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Current on empty store: %v, want store.ErrNotFound", err)
	}
	if _, err := s.Version(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Version(1) on empty store: %v, want store.ErrNotFound", err)
	}
	h, err := s.History(ctx, store.Query{})
	if err != nil || len(h) != 0 {
		t.Fatalf("History on empty store: %v %v", h, err)
	}
}

func commitVersionsAndHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		c := change(uint64(i), fmt.Sprintf("v%d", i+1))
		c.Time = t0.Add(time.Duration(i) * time.Minute)
		v, ev, err := s.Commit(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if v.Number != uint64(i+1) || ev.Seq != uint64(i+1) || ev.Before != uint64(i) || ev.After != uint64(i+1) {
			t.Fatalf("commit %d: version %d event %+v", i, v.Number, ev)
		}
	}
	cur, err := s.Current(ctx)
	if err != nil || cur.Number != 3 || string(cur.Intent) != "v3" || cur.Actor != "alice" {
		t.Fatalf("Current = %+v, %v", cur, err)
	}
	v1, err := s.Version(ctx, 1)
	if err != nil || string(v1.Intent) != "v1" || !v1.Time.Equal(t0) {
		t.Fatalf("Version(1) = %+v, %v", v1, err)
	}
	h, err := s.History(ctx, store.Query{})
	if err != nil || len(h) != 3 {
		t.Fatalf("History = %v, %v", h, err)
	}
	for i, ev := range h { // newest first
		if ev.Seq != uint64(3-i) || ev.Operation != "apply" || ev.Summary != fmt.Sprintf("set v%d", 3-i) {
			t.Fatalf("History[%d] = %+v", i, ev)
		}
	}
}

func commitConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.Commit(ctx, change(0, "a")); err != nil {
		t.Fatal(err)
	}
	// Two writers both read version 1; the second loses.
	if _, _, err := s.Commit(ctx, change(1, "b")); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Commit(ctx, change(1, "c"))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit: %v, want store.ErrConflict", err)
	}
	cur, _ := s.Current(ctx)
	if string(cur.Intent) != "b" {
		t.Fatalf("a refused commit changed the intent to %q", cur.Intent)
	}
	if h, _ := s.History(ctx, store.Query{}); len(h) != 2 {
		t.Fatalf("a refused commit left a history event: %d events", len(h))
	}
}

func commitRefusesIncompleteChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	for name, c := range map[string]store.Change{
		"no actor":     {Intent: []byte("x"), Operation: "apply"},
		"no operation": {Intent: []byte("x"), Actor: "a"},
		"no intent":    {Actor: "a", Operation: "apply"},
	} {
		if _, _, err := s.Commit(ctx, c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want store.ErrInvalid", name, err)
		}
	}
	if _, err := s.Current(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an invalid change was stored: %v", err)
	}
}

func concurrentCommitsOneWinsPerVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.Commit(ctx, change(0, fmt.Sprint(i)))
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("commit: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d commits based on version 0 succeeded, want 1", won)
	}
}

func historyPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 10 {
		if _, _, err := s.Commit(ctx, change(uint64(i), fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(q store.Query) []uint64 {
		h, err := s.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range h {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		q    store.Query
		want string
	}{
		{store.Query{Limit: 3}, "[10 9 8]"},
		{store.Query{Before: 8, Limit: 3}, "[7 6 5]"},
		{store.Query{Before: 3}, "[2 1]"},
		{store.Query{Before: 1}, "[]"},
		{store.Query{Before: 100, Limit: 2}, "[10 9]"},
	} {
		if got := fmt.Sprint(seqs(tc.q)); got != tc.want {
			t.Errorf("History(%+v) = %s, want %s", tc.q, got, tc.want)
		}
	}
}

func undoesIsRecorded(t *testing.T, s store.Store) {
	ctx := context.Background()
	s.Commit(ctx, change(0, "a"))
	s.Commit(ctx, change(1, "b"))
	c := change(2, "a")
	c.Operation, c.Undoes = "rollback", 2
	_, ev, err := s.Commit(ctx, c)
	if err != nil || ev.Undoes != 2 || ev.Before != 2 || ev.After != 3 {
		t.Fatalf("rollback event %+v, %v", ev, err)
	}
	h, _ := s.History(ctx, store.Query{Limit: 1})
	if h[0].Undoes != 2 || h[0].Operation != "rollback" {
		t.Fatalf("stored rollback event %+v", h[0])
	}
}

// recordsInTheHistory: records are numbered with the commits, name the
// version in force, make no version and never stand in a commit's way.
func recordsInTheHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := func(op, reason string, at time.Time) *store.Event {
		t.Helper()
		ev, err := s.Record(ctx, store.Record{Actor: "bob", Operation: op, Summary: op + " gw1", Reason: reason, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if ev := rec("drain", "maintenance", t0); ev.Seq != 1 || ev.Before != 0 || ev.After != 0 || !ev.Record {
		t.Fatalf("record before any intent: %+v", ev)
	}
	if _, ev, err := s.Commit(ctx, change(0, "a")); err != nil || ev.Seq != 2 || ev.After != 1 || ev.Record {
		t.Fatalf("commit after a record: %+v, %v", ev, err)
	}
	if ev := rec("undrain", "", t0.Add(time.Minute)); ev.Seq != 3 || ev.Before != 1 || ev.After != 1 {
		t.Fatalf("record at version 1: %+v", ev)
	}
	if _, ev, err := s.Commit(ctx, change(1, "b")); err != nil || ev.Seq != 4 || ev.Before != 1 || ev.After != 2 {
		t.Fatalf("commit based on version 1 after a record: %+v, %v", ev, err)
	}
	rec("failover-excluded", "down for 3s", time.Time{})
	if cur, err := s.Current(ctx); err != nil || cur.Number != 2 || string(cur.Intent) != "b" {
		t.Fatalf("Current after records = %+v, %v", cur, err)
	}
	h, err := s.History(ctx, store.Query{})
	if err != nil || len(h) != 5 {
		t.Fatalf("History = %+v, %v", h, err)
	}
	want := []string{"5 failover-excluded record 2->2", "4 apply change 1->2", "3 undrain record 1->1", "2 apply change 0->1", "1 drain record 0->0"}
	for i, ev := range h {
		kind := "change"
		if ev.Record {
			kind = "record"
		}
		if got := fmt.Sprintf("%d %s %s %d->%d", ev.Seq, ev.Operation, kind, ev.Before, ev.After); got != want[i] {
			t.Errorf("History[%d] = %s, want %s", i, got, want[i])
		}
	}
	if h[4].Reason != "maintenance" || h[4].Actor != "bob" || h[4].Summary != "drain gw1" || !h[4].Time.Equal(t0) {
		t.Errorf("stored drain record %+v", h[4])
	}
	if h[0].Time.IsZero() || h[0].Reason != "down for 3s" {
		t.Errorf("a record without a time gets now: %+v", h[0])
	}
	if p, err := s.History(ctx, store.Query{Before: 4, Limit: 2}); err != nil || len(p) != 2 || p[0].Seq != 3 || p[1].Seq != 2 {
		t.Errorf("History(before 4, limit 2) = %+v, %v", p, err)
	}
	for name, r := range map[string]store.Record{"no actor": {Operation: "drain"}, "no operation": {Actor: "a"}} {
		if _, err := s.Record(ctx, r); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("record with %s: %v, want store.ErrInvalid", name, err)
		}
	}
	if h, _ := s.History(ctx, store.Query{}); len(h) != 5 {
		t.Errorf("refused records were stored: %d events", len(h))
	}
}

// concurrentRecordsAndCommits: records written while commits go on (a
// health failover during an apply) each get a number of their own, and every
// commit still succeeds on its base.
func concurrentRecordsAndCommits(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each, commits = 4, 5, 6
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Record(ctx, store.Record{Actor: "health-failover", Operation: "failover-excluded", Summary: fmt.Sprintf("w%d r%d", w, i)}); err != nil {
					t.Errorf("record: %v", err)
				}
			}
		}()
	}
	for i := range commits {
		if _, _, err := s.Commit(ctx, change(uint64(i), fmt.Sprint(i))); err != nil {
			t.Errorf("commit %d beside records: %v", i+1, err)
		}
	}
	wg.Wait()
	h, err := s.History(ctx, store.Query{})
	if err != nil || len(h) != writers*each+commits {
		t.Fatalf("History: %d events, %v; want %d", len(h), err, writers*each+commits)
	}
	versions := 0
	for i, ev := range h {
		if ev.Seq != uint64(len(h)-i) {
			t.Fatalf("History[%d].Seq = %d: numbers are not 1..%d without gaps", i, ev.Seq, len(h))
		}
		if !ev.Record {
			versions++
		}
	}
	if versions != commits {
		t.Fatalf("%d commit events, want %d", versions, commits)
	}
}

func keyValue(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "rollout/r1", "step"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get in missing namespace: %v", err)
	}
	if l, err := s.List(ctx, "rollout/r1"); err != nil || len(l) != 0 {
		t.Fatalf("List of missing namespace: %v %v", l, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, "rollout/r1", "step", []byte("3")))
	must(s.Put(ctx, "rollout/r1", "state", []byte("running")))
	must(s.Put(ctx, "rollout/r1", "empty", nil))
	must(s.Put(ctx, "rollout/r2", "step", []byte("1")))
	must(s.Put(ctx, "rollout/r1", "step", []byte("4"))) // overwrite
	v, err := s.Get(ctx, "rollout/r1", "step")
	if err != nil || string(v) != "4" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	v, err = s.Get(ctx, "rollout/r1", "empty")
	if err != nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %q, %v", v, err)
	}
	l, err := s.List(ctx, "rollout/r1")
	if err != nil || fmt.Sprint(keys(l)) != "[empty state step]" {
		t.Fatalf("List = %v, %v", keys(l), err)
	}
	must(s.Delete(ctx, "rollout/r1", "state"))
	must(s.Delete(ctx, "rollout/r1", "state")) // absent: no error
	must(s.Delete(ctx, "nowhere", "x"))
	if _, err := s.Get(ctx, "rollout/r1", "state"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	for _, bad := range [][2]string{{"", "k"}, {"ns", ""}} {
		if err := s.Put(ctx, bad[0], bad[1], nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Put(%q, %q): %v, want store.ErrInvalid", bad[0], bad[1], err)
		}
	}
	// A returned value is a copy.
	v, _ = s.Get(ctx, "rollout/r2", "step")
	v[0] = 'x'
	if v2, _ := s.Get(ctx, "rollout/r2", "step"); string(v2) != "1" {
		t.Fatalf("mutating a returned value changed the store: %q", v2)
	}
}

func keys(l []store.KV) []string {
	var out []string
	for _, kv := range l {
		out = append(out, kv.Key)
	}
	return out
}

func closedStore(t *testing.T, s store.Store) {
	ctx := context.Background()
	s.Close()
	if _, err := s.Current(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Current after Close: %v, want store.ErrClosed", err)
	}
	if _, _, err := s.Commit(ctx, change(0, "a")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Commit after Close: %v, want store.ErrClosed", err)
	}
	if _, err := s.Record(ctx, store.Record{Actor: "a", Operation: "drain"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Record after Close: %v, want store.ErrClosed", err)
	}
}

func cancelledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Commit(ctx, change(0, "a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a cancelled context: %v", err)
	}
}
