package leader_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/internal/etcdlab"
)

func elector(t *testing.T, cli *clientv3.Client, id string) *leader.Elector {
	t.Helper()
	e, err := leader.New(leader.Config{Client: cli, ID: id, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// lead campaigns with e until it leads, failing t on an error.
func lead(t *testing.T, ctx context.Context, e *leader.Elector) *leader.Leadership {
	t.Helper()
	l, err := e.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// campaign campaigns with e in the background: the channel receives its
// leadership (nil after an error, which fails t).
func campaign(t *testing.T, ctx context.Context, e *leader.Elector) <-chan *leader.Leadership {
	got := make(chan *leader.Leadership, 1)
	go func() {
		l, err := e.Campaign(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	return got
}

// TestOneLeaderAndNewerTermsPreempt: of two replicas exactly one leads; when
// it resigns, or dies without resigning (its client closed: the lease runs
// out), the other is elected with a larger term, so a larger P4Runtime
// election id.
func TestOneLeaderAndNewerTermsPreempt(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := elector(t, etcdlab.Client(t, c.Endpoints()...), "a")
	bcli := etcdlab.Client(t, c.Endpoints()...)
	b := elector(t, bcli, "b")

	la := lead(t, ctx, a)
	got := campaign(t, ctx, b)
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
	ccli := etcdlab.Client(t, c.Endpoints()...)
	cc := elector(t, ccli, "c")
	got2 := campaign(t, ctx, cc)
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
	a := elector(t, etcdlab.Client(t, ends[0]), "a")
	la := lead(t, ctx, a)
	c.Kill(1)
	c.Kill(2)
	lost := time.Now()
	select {
	case <-la.Done():
		// etcd's leader answers renewals until it notices the lost quorum
		// (an election timeout): the lease runs a TTL from the last of them.
		took, renewed := time.Since(lost), la.LastRenewed()
		t.Logf("quorum lost: the leader stepped down after %s (TTL 2s), %s after its last answered renewal was sent: %v",
			took.Round(time.Millisecond), time.Since(renewed).Round(time.Millisecond), la.Err())
		if time.Since(renewed) >= 2*time.Second {
			t.Errorf("stepped down %s after its last renewal: not before the 2s lease could run out", time.Since(renewed))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the leader did not step down without a quorum")
	}
	b := elector(t, etcdlab.Client(t, ends[0]), "b")
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	if _, err := b.Campaign(bctx); err == nil {
		t.Fatal("a replica was elected without a quorum")
	}
	bcancel()
	c.Restart(1)
	c.Restart(2)
	c.WaitHealthy(30 * time.Second)
	lb := lead(t, ctx, b)
	if lb.Number <= la.Number {
		t.Fatalf("term after the quorum came back %d, want above %d", lb.Number, la.Number)
	}
}

// TestLeaderKeepsLeadingThroughEtcdLeaderKills: etcd's own leader member is
// SIGKILLed three times (restarted in between) under a controller leader with
// a lease on all three endpoints: a quorum is kept, so its leadership must go
// on. Its renewals stuck on the dead member are sent again to another, and
// the longest time without an answer (logged: about 0.7-1.4s) stays under the
// 3/4 TTL it may last. (clientv3's own KeepAlive went 1.5s without an answer
// and stepped down with a 2s lease.)
func TestLeaderKeepsLeadingThroughEtcdLeaderKills(t *testing.T) {
	c := etcdlab.Start(t, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := etcdlab.Client(t, c.Endpoints()...)
	// A 3s lease: the renewals may go unanswered for 2.25s, and etcd's
	// election on a loaded machine (CI) has taken up to 1.4s of the 1.5s a 2s
	// lease allows.
	e, err := leader.New(leader.Config{Client: cli, ID: "a", TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	la := lead(t, ctx, e)
	for round := 0; round < 3; round++ {
		m := etcdlab.Leader(t, cli, c.Endpoints())
		c.Kill(m)
		select {
		case <-la.Done():
			t.Fatalf("round %d: etcd's leader member m%d killed (quorum kept): the leadership ended: %v", round, m, la.Err())
		case <-time.After(3 * time.Second):
		}
		c.Restart(m)
		c.WaitHealthy(30 * time.Second)
	}
	t.Logf("etcd's leader member killed 3 times: still leading (term %d); longest wait for a renewal %s (TTL 3s)", la.Number,
		la.LongestWait().Round(time.Millisecond))
}
