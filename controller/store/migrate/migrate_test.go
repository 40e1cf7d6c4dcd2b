package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
	"github.com/graygw/graygw/controller/store/migrate"
	"github.com/graygw/graygw/internal/etcdlab"
)

// openEtcd opens the store under prefix on cluster c, closed when t ends.
func openEtcd(t *testing.T, c *etcdlab.Cluster, prefix string) *etcdstore.Store {
	t.Helper()
	et, err := etcdstore.Open(context.Background(), etcdstore.Config{Endpoints: c.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { et.Close() })
	return et
}

func openBolt(t *testing.T, name string) *store.Bolt {
	t.Helper()
	s, err := store.OpenBolt(filepath.Join(t.TempDir(), name), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill writes what a controller keeps: versions (one a rollback), and
// records in namespaces, some with "/" in the namespace or key.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	for i := range 4 {
		c := store.Change{Base: uint64(i), Intent: []byte(fmt.Sprintf("version: 1\n# %d\n", i+1)), Actor: fmt.Sprintf("op%d (uid=%d)", i, 1000+i),
			Operation: "apply", Summary: fmt.Sprintf("change %d", i+1), Time: t0.Add(time.Duration(i) * time.Hour)}
		if i == 3 {
			c.Operation, c.Undoes = "rollback", 3
		}
		if _, _, err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		// Records between the versions and after the last: a drain, a
		// failover, a rollout's verdict.
		if _, err := s.Record(ctx, store.Record{Actor: "health-failover", Operation: "failover-excluded",
			Summary: fmt.Sprintf("pool p backend b%d excluded", i), Reason: "down for 3s", Time: c.Time.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][3]string{{"bgp-drain", "gw1", `{"actor":"alice"}`}, {"rollout", "plan/a", "step 3"},
		{"rollout/r1", "state", "running"}, {"pools", "gw1", string([]byte{0, 1, 2, 255})}, {"empty", "k", ""}} {
		if err := s.Put(ctx, r[0], r[1], []byte(r[2])); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBoltToEtcdAndBack: a bbolt store copied into etcd, and that copy into a
// new bbolt file, equals the original in every version, event and record.
func TestBoltToEtcdAndBack(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	ctx := context.Background()
	src := openBolt(t, "src.db")
	fill(t, src)
	et := openEtcd(t, c, "/m/")
	st, err := migrate.Copy(ctx, src, et)
	if err != nil {
		t.Fatal(err)
	}
	if st != (migrate.Stats{Versions: 4, Events: 8, Records: 5, Namespaces: 5}) {
		t.Errorf("bolt -> etcd copied %+v", st)
	}
	back := openBolt(t, "back.db")
	if _, err := migrate.Copy(ctx, et, back); err != nil {
		t.Fatal(err)
	}
	if err := migrate.Equal(ctx, src, back); err != nil {
		t.Fatalf("bolt -> etcd -> bolt: %v", err)
	}
	h, _ := back.History(ctx, store.Query{Limit: 2})
	if h[1].Undoes != 3 || h[1].Operation != "rollback" || h[1].Actor != "op3 (uid=1003)" {
		t.Errorf("last change after the round trip: %+v", h[1])
	}
	if !h[0].Record || h[0].Seq != 8 || h[0].After != 4 || h[0].Reason != "down for 3s" || h[0].Operation != "failover-excluded" {
		t.Errorf("last record after the round trip: %+v", h[0])
	}
	// The copy numbers what comes next after the copied records.
	if ev, err := back.Record(ctx, store.Record{Actor: "alice", Operation: "undrain"}); err != nil || ev.Seq != 9 || ev.After != 4 {
		t.Errorf("record on the copy: %+v, %v", ev, err)
	}

	// Into a store that is not empty: refused, nothing written.
	if _, err := migrate.Copy(ctx, src, back); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
	kvOnly := openBolt(t, "kv.db")
	kvOnly.Put(ctx, "x", "y", []byte("z"))
	if _, err := migrate.Copy(ctx, src, kvOnly); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a store with records: %v", err)
	}
	// Equal names a difference.
	other := openBolt(t, "other.db")
	fill(t, other)
	other.Put(ctx, "rollout", "plan/a", []byte("step 4"))
	if err := migrate.Equal(ctx, src, other); err == nil || !strings.Contains(err.Error(), "namespace rollout differs") {
		t.Fatalf("Equal of different stores: %v", err)
	}
}

// TestPrunedSourceKeepsItsNumbers: a bbolt store whose retention pruned its
// old versions (their events kept) copies into etcd with the same numbers and
// the same gaps, and the copy takes the next commit as the source would.
func TestPrunedSourceKeepsItsNumbers(t *testing.T) {
	c := etcdlab.Start(t, 1, false)
	ctx := context.Background()
	src, err := store.OpenBolt(filepath.Join(t.TempDir(), "pruned.db"), store.BoltOptions{NoSync: true, Retain: store.Retention{Versions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	if _, err := src.Version(ctx, 1); err == nil {
		t.Fatal("retention kept version 1")
	}
	et := openEtcd(t, c, "/p/")
	st, err := migrate.Copy(ctx, src, et)
	if err != nil {
		t.Fatal(err)
	}
	if st.Versions != 2 || st.Events != 8 {
		t.Errorf("copied %+v, want the 2 versions kept and all 8 events (4 records)", st)
	}
	if _, err := et.Version(ctx, 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("version 2 in the copy: %v, want not found (pruned in the source)", err)
	}
	v, ev, err := et.Commit(ctx, store.Change{Base: 4, Intent: []byte("five"), Actor: "t", Operation: "apply"})
	if err != nil || v.Number != 5 || ev.Seq != 9 {
		t.Fatalf("commit on the copy: %+v %+v %v", v, ev, err)
	}
}
