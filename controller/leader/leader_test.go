package leader_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/internal/etcdlab"
)

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func elector(t *testing.T, cli *clientv3.Client, id string) *leader.Elector {
	t.Helper()
	e, err := leader.New(leader.Config{Client: cli, ID: id, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOneLeaderAndNewerTermsPreempt: of two replicas exactly one leads; when
// it resigns, or dies without resigning (its client closed: the lease runs
// out), the other is elected with a larger term, so a larger P4Runtime
// election id.
func TestOneLeaderAndNewerTermsPreempt(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := elector(t, client(t, c.Endpoints()...), "a")
	bcli := client(t, c.Endpoints()...)
	b := elector(t, bcli, "b")

	la, err := a.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *leader.Leadership, 1)
	go func() {
		lb, err := b.Campaign(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- lb
	}()
	select {
	case <-got:
		t.Fatal("b was elected while a leads")
	case <-time.After(500 * time.Millisecond):
	}
	if cur, ok, err := leader.Current(ctx, bcli, ""); err != nil || !ok || cur != la.Term {
		t.Fatalf("current leader %+v %v %v, want %+v", cur, ok, err, la.Term)
	}
	start := time.Now()
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	lb := <-got
	t.Logf("a resigned: b elected after %s, term %d -> %d", time.Since(start).Round(time.Millisecond), la.Number, lb.Number)
	if lb.ElectionID() <= la.ElectionID() {
		t.Fatalf("b's election id %d is not above a's %d", lb.ElectionID(), la.ElectionID())
	}
	select {
	case <-la.Done():
	default:
		t.Error("a's leadership not done after Resign")
	}

	// b dies without resigning: a new replica is elected once b's lease ends.
	ccli := client(t, c.Endpoints()...)
	cc := elector(t, ccli, "c")
	got2 := make(chan *leader.Leadership, 1)
	go func() {
		l, err := cc.Campaign(ctx)
		if err != nil {
			t.Error(err)
		}
		got2 <- l
	}()
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	bcli.Close()
	lc := <-got2
	took := time.Since(start)
	t.Logf("b's client closed: c elected after %s (TTL 2s), term %d", took.Round(time.Millisecond), lc.Number)
	if lc.ElectionID() <= lb.ElectionID() || took > 5*time.Second {
		t.Fatalf("c: term %d after %s, want above %d within the TTL and a margin", lc.Number, took, lb.Number)
	}
}

// TestLeaderStepsDownBeforeItsLeaseRunsOut: a leader that loses etcd's quorum
// is told to stop (Done) at 3/4 of the TTL without an answer, before its
// lease could run out at the server; nobody is elected without a quorum; with the quorum
// back a replica is elected with a larger term.
func TestLeaderStepsDownBeforeItsLeaseRunsOut(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends := c.Endpoints()
	a := elector(t, client(t, ends[0]), "a")
	la, err := a.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(1)
	c.Kill(2)
	lost := time.Now()
	select {
	case <-la.Done():
		took := time.Since(lost)
		t.Logf("quorum lost: the leader stepped down after %s (TTL 2s): %v", took.Round(time.Millisecond), la.Err())
		if took >= 2*time.Second {
			t.Errorf("stepped down after %s: not before the 2s lease could run out", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not step down without a quorum")
	}
	b := elector(t, client(t, ends[0]), "b")
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	if _, err := b.Campaign(bctx); err == nil {
		t.Fatal("a replica was elected without a quorum")
	}
	bcancel()
	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	lb, err := b.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Number <= la.Number {
		t.Fatalf("term after the quorum came back %d, want above %d", lb.Number, la.Number)
	}
}
