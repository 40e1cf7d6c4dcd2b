package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The Store contract itself (versions, history, conflicts, key/value, closed
// and cancelled stores) is storetest.Run, run on every implementation by
// storetest_test.go and etcdstore; these are the bbolt file's own properties.

func change(base uint64, text string) Change {
	return Change{Base: base, Intent: []byte(text), Actor: "alice", Operation: "apply", Summary: "set " + text}
}

func TestBoltPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graygw.db")
	ctx := context.Background()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Commit(ctx, change(0, "first"))
	s.Commit(ctx, change(1, "second"))
	s.Put(ctx, "engine", "pools", []byte("tables"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cur, err := s.Current(ctx)
	if err != nil || cur.Number != 2 || string(cur.Intent) != "second" {
		t.Fatalf("after reopen Current = %+v, %v", cur, err)
	}
	if h, _ := s.History(ctx, Query{}); len(h) != 2 {
		t.Fatalf("after reopen %d events, want 2", len(h))
	}
	if v, err := s.Get(ctx, "engine", "pools"); err != nil || string(v) != "tables" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
	if _, _, err := s.Commit(ctx, change(2, "third")); err != nil {
		t.Fatalf("commit after reopen: %v", err)
	}
}

func TestBoltSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graygw.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = OpenBolt(path, BoltOptions{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("second open waited %s", time.Since(start))
	}
}

func TestBoltRefusesForeignLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graygw.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.db.Update(func(tx *boltTx) error { return tx.Bucket(bucketMeta).Put([]byte("schema"), u64(99)) })
	s.Close()
	if _, err := OpenBolt(path, BoltOptions{}); err == nil {
		t.Fatal("a store with layout 99 was opened")
	}
}

type boltTx = bolt.Tx
