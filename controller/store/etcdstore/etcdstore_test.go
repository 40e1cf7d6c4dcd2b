package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
	"github.com/graygw/graygw/controller/store/storetest"
	"github.com/graygw/graygw/internal/etcdlab"
)

var prefixes atomic.Int64

// fresh opens a store on a prefix no other test uses, closed when t ends.
func fresh(t *testing.T, c *etcdlab.Cluster, mod func(*etcdstore.Config)) *etcdstore.Store {
	t.Helper()
	cfg := etcdstore.Config{Endpoints: c.Endpoints(), Prefix: fmt.Sprintf("/t%d/", prefixes.Add(1)), RequestTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := etcdstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the Store suite the bbolt and memory stores pass
// against a real 3-member etcd cluster.
func TestConformance(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	storetest.Run(t, func(t *testing.T) store.Store { return fresh(t, c, nil) })
}

// TestTwoControllersOneWinner: two stores (two controller replicas, two etcd
// clients) committing on the same base: exactly one commit wins per version,
// and each sees the other's.
func TestTwoControllersOneWinner(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	a := fresh(t, c, nil)
	b := fresh(t, c, func(cfg *etcdstore.Config) { cfg.Prefix = a.Prefix() })
	ctx := context.Background()
	for base := uint64(0); base < 5; base++ {
		var wg sync.WaitGroup
		var won atomic.Int32
		for i, s := range []*etcdstore.Store{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.Commit(ctx, store.Change{Base: base, Intent: []byte(fmt.Sprintf("v%d-%d", base+1, i)), Actor: "t", Operation: "apply"})
				switch {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("commit on %d: %v", base, err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("base %d: %d commits won, want 1", base, won.Load())
		}
	}
	va, err := a.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Current(ctx)
	if err != nil || va.Number != 5 || vb.Number != 5 || string(va.Intent) != string(vb.Intent) {
		t.Fatalf("current: a %+v, b %+v, %v", va, vb, err)
	}
	if h, _ := b.History(ctx, store.Query{}); len(h) != 5 {
		t.Fatalf("history: %d events, want 5", len(h))
	}
}

// TestMemberLossAndQuorumLoss: one member of three killed changes nothing; two
// killed (no quorum) makes every call fail within the request timeout with an
// error that says so, writing nothing; the quorum back, the store works on.
func TestMemberLossAndQuorumLoss(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	// s has the default 5s request timeout (a killed leader costs an
	// election); q, on the same prefix, 1s, to time the refusals.
	s := fresh(t, c, func(cfg *etcdstore.Config) { cfg.RequestTimeout = 5 * time.Second })
	q := fresh(t, c, func(cfg *etcdstore.Config) { cfg.Prefix, cfg.RequestTimeout = s.Prefix(), time.Second })
	ctx := context.Background()
	commitOn := func(st *etcdstore.Store, base uint64) error {
		_, _, err := st.Commit(ctx, store.Change{Base: base, Intent: []byte(fmt.Sprint("v", base+1)), Actor: "t", Operation: "apply"})
		return err
	}
	commit := func(base uint64) error { return commitOn(s, base) }
	if err := commit(0); err != nil {
		t.Fatal(err)
	}
	c.Kill(2)
	start := time.Now()
	if err := commit(1); err != nil {
		t.Fatalf("with one member of three dead: %v", err)
	}
	t.Logf("commit with one member dead: %s", time.Since(start).Round(time.Millisecond))

	c.Kill(1)
	start = time.Now()
	err := commitOn(q, 2)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("commit without a quorum: %v, want an error naming the quorum", err)
	}
	t.Logf("commit without a quorum refused after %s: %v", took.Round(time.Millisecond), err)
	if took > 3*time.Second {
		t.Errorf("refusal took %s, request timeout 1s", took)
	}
	if err := q.Put(ctx, "ns", "k", []byte("v")); err == nil {
		t.Error("Put without a quorum succeeded")
	}

	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	var cur *store.Version
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if cur, err = s.Current(ctx); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || cur.Number != 2 {
		t.Fatalf("after the quorum came back: %+v %v, want version 2 (the refused commit wrote nothing)", cur, err)
	}
	if err := commit(2); err != nil {
		t.Fatalf("commit after the quorum came back: %v", err)
	}
}

// TestMutualTLS: a cluster that requires client certificates serves a store
// with them and refuses one without.
func TestMutualTLS(t *testing.T) {
	c := etcdlab.Start(t, 1, true)
	tl := c.TLS()
	s := fresh(t, c, func(cfg *etcdstore.Config) {
		cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = tl.ClientCert, tl.ClientKey, tl.CA
	})
	ctx := context.Background()
	if _, _, err := s.Commit(ctx, store.Change{Intent: []byte("x"), Actor: "t", Operation: "apply"}); err != nil {
		t.Fatalf("commit over mutual TLS: %v", err)
	}
	_, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: c.Endpoints(), DialTimeout: time.Second, RequestTimeout: time.Second})
	if err == nil {
		t.Fatal("a store without a client certificate opened")
	}
	t.Logf("without a client certificate: %v", err)
}

// TestForeignLayoutAndBadConfig: a prefix with another layout version is
// refused; a bad config names its fields.
func TestForeignLayoutAndBadConfig(t *testing.T) {
	c := etcdlab.Start(t, 1, false)
	cli := etcdlab.Client(t, c.Endpoints()...)
	if _, err := cli.Put(context.Background(), "/other/meta/schema", "9"); err != nil {
		t.Fatal(err)
	}
	if _, err := etcdstore.Open(context.Background(), etcdstore.Config{Endpoints: c.Endpoints(), Prefix: "/other/"}); err == nil ||
		!strings.Contains(err.Error(), "unsupported store layout") {
		t.Fatalf("foreign layout: %v", err)
	}
	err := etcdstore.Config{Endpoints: []string{"localhost:2379"}, Prefix: "x", TLSCert: "c"}.Validate()
	for _, want := range []string{"etcd.endpoints[0]", "etcd.prefix", "give all three"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config: %v, want it to name %s", err, want)
		}
	}
}

// TestRetention: with RetainVersions 3, five commits leave versions 3-5 and
// every event (the records between them too); the current version is always
// there.
func TestRetention(t *testing.T) {
	c := etcdlab.Start(t, 1, false)
	s := fresh(t, c, func(cfg *etcdstore.Config) { cfg.RetainVersions = 3 })
	ctx := context.Background()
	for i := range 5 {
		if _, _, err := s.Commit(ctx, store.Change{Base: uint64(i), Intent: []byte(fmt.Sprint("v", i+1)), Actor: "t", Operation: "apply"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(ctx, store.Record{Actor: "t", Operation: "drain", Summary: fmt.Sprint("drain ", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(1); n <= 5; n++ {
		_, err := s.Version(ctx, n)
		if kept := n >= 3; kept != (err == nil) {
			t.Errorf("version %d: %v (kept: %v)", n, err, kept)
		}
	}
	if h, err := s.History(ctx, store.Query{}); err != nil || len(h) != 10 || !h[0].Record || h[1].Record || h[1].Seq != 9 {
		t.Fatalf("history: %d events, %v", len(h), err)
	}
	if cur, err := s.Current(ctx); err != nil || cur.Number != 5 {
		t.Fatalf("current: %v %v", cur, err)
	}
}

// TestRetentionByAge: versions committed longer ago than the age bound are
// deleted by the next commit, with the count bound too; the current version
// is kept however old, and history events all stay.
func TestRetentionByAge(t *testing.T) {
	c := etcdlab.Start(t, 1, false)
	s := fresh(t, c, func(cfg *etcdstore.Config) { cfg.RetainVersions, cfg.RetainAge = 4, time.Hour })
	ctx := context.Background()
	commit := func(base uint64, at time.Time) {
		t.Helper()
		if _, _, err := s.Commit(ctx, store.Change{Base: base, Intent: []byte(fmt.Sprint("v", base+1)), Actor: "t", Operation: "apply", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(want ...uint64) {
		t.Helper()
		var got []uint64
		for n := uint64(1); n <= 10; n++ {
			if _, err := s.Version(ctx, n); err == nil {
				got = append(got, n)
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("versions kept %v, want %v", got, want)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	commit(0, old)
	commit(1, old)
	kept(2) // 1 is older than an hour; 2 is the current, kept however old
	commit(2, time.Now())
	kept(3)
	commit(3, time.Now().Add(-90*time.Minute))
	kept(3, 4) // 3 is young; 4 is the current
	for base := uint64(4); base < 7; base++ {
		commit(base, time.Now())
	}
	// The age is checked from the oldest version on, up to the first young
	// one (versions are committed in time order): 3 kept 4 while it was
	// there; once the count bound (4) dropped 3, 4's own age deleted it.
	kept(5, 6, 7)
	commit(7, time.Now())
	kept(5, 6, 7, 8)
	if h, err := s.History(ctx, store.Query{}); err != nil || len(h) != 8 {
		t.Fatalf("history: %d events, %v", len(h), err)
	}
}

// TestWatchFollowsCommitsAndRecords: another client's commit and a record of a
// watched namespace reach the watch (an HA follower's view of the leader's
// writes); a record of another namespace does not; the channel closes with
// its context.
func TestWatchFollowsCommitsAndRecords(t *testing.T) {
	c := etcdlab.Start(t, 1, false)
	leader := fresh(t, c, nil)
	follower := fresh(t, c, func(cfg *etcdstore.Config) { cfg.Prefix = leader.Prefix() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := follower.Watch(ctx, "engine")
	next := func(what string) etcdstore.Change {
		t.Helper()
		select {
		case ch, ok := <-w:
			if !ok {
				t.Fatalf("%s: watch closed", what)
			}
			return ch
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change seen", what)
		}
		return etcdstore.Change{}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case ch := <-w:
			t.Fatalf("%s: change %+v seen", what, ch)
		case <-time.After(300 * time.Millisecond):
		}
	}
	start := next("start")
	bg := context.Background()
	if _, _, err := leader.Commit(bg, store.Change{Intent: []byte("v1"), Actor: "t", Operation: "apply"}); err != nil {
		t.Fatal(err)
	}
	ch := next("commit")
	if ch.Revision <= start.Revision {
		t.Fatalf("commit seen at revision %d, the watch started after %d", ch.Revision, start.Revision)
	}
	if cur, err := follower.Current(bg); err != nil || string(cur.Intent) != "v1" {
		t.Fatalf("follower's current after the change: %v %v", cur, err)
	}
	if err := leader.Put(bg, "rollout", "state", []byte("x")); err != nil {
		t.Fatal(err)
	}
	quiet("a record of an unwatched namespace")
	if err := leader.Put(bg, "engine", "pools", []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if ch2 := next("a record of engine"); ch2.Revision <= ch.Revision {
		t.Fatalf("record seen at revision %d, not after %d", ch2.Revision, ch.Revision)
	}
	cancel()
	for range w {
	}
}

// TestCommitsGoOnThroughMemberKills: commits one after the other while etcd's
// leader member is SIGKILLed (three times, restarted in between): with a
// quorum kept nothing is noticed. A commit in flight to the killed member
// lost its answer; the store sends it again to another member and, when the
// first attempt had landed, recognises its own version instead of calling it
// a conflict. Every commit succeeds, and the versions are exactly the
// commits, in order; a record after each commit likewise goes on and is
// written exactly once.
func TestCommitsGoOnThroughMemberKills(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	s := fresh(t, c, func(cfg *etcdstore.Config) { cfg.RequestTimeout = 5 * time.Second })
	etc := etcdlab.Client(t, c.Endpoints()...)
	ctx := context.Background()
	var base uint64
	var slowest time.Duration
	commitFor := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			t0 := time.Now()
			v, _, err := s.Commit(ctx, store.Change{Base: base, Intent: []byte(fmt.Sprint("v", base+1)), Actor: "t", Operation: "apply"})
			if err != nil {
				t.Fatalf("commit on version %d: %v", base, err)
			}
			if v.Number != base+1 {
				t.Fatalf("commit on version %d made version %d", base, v.Number)
			}
			base, slowest = v.Number, max(slowest, time.Since(t0))
			// A record after each commit (a drain, a failover): it goes on
			// too, and is written once.
			if _, err := s.Record(ctx, store.Record{Actor: "t", Operation: "drain", Summary: fmt.Sprint("after v", base)}); err != nil {
				t.Fatalf("record after version %d: %v", base, err)
			}
		}
	}
	for round := 0; round < 3; round++ {
		commitFor(300 * time.Millisecond)
		leader := etcdlab.Leader(t, etc, c.Endpoints())
		done := make(chan struct{})
		go func() { defer close(done); time.Sleep(100 * time.Millisecond); c.Kill(leader) }()
		commitFor(1500 * time.Millisecond)
		<-done
		c.Restart(leader)
		c.WaitHealthy(30 * time.Second)
	}
	for n := uint64(1); n <= base; n++ {
		v, err := s.Version(ctx, n)
		if err != nil || string(v.Intent) != fmt.Sprint("v", n) {
			t.Fatalf("version %d: %v %v", n, v, err)
		}
	}
	h, err := s.History(ctx, store.Query{})
	if err != nil || uint64(len(h)) != 2*base {
		t.Fatalf("history: %d events, %v; want %d commits and as many records", len(h), err, base)
	}
	for i, ev := range h { // newest first: record, commit, record, commit...
		n := base - uint64(i/2)
		if ev.Seq != 2*base-uint64(i) || ev.Record != (i%2 == 0) || (ev.Record && ev.Summary != fmt.Sprint("after v", n)) || (!ev.Record && ev.After != n) {
			t.Fatalf("history[%d] = %+v", i, ev)
		}
	}
	t.Logf("%d commits and %d records through 3 kills of etcd's leader member, none refused or doubled, the slowest commit %s", base, base, slowest.Round(time.Millisecond))
}
