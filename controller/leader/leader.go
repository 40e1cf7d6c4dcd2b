// Package leader elects one controller replica to lead, on an etcd lease
// (etcd's concurrency election), and says for how long the leader may act.
//
// Fencing: the leadership term is the leader key's creation revision, which
// etcd makes larger for every new leader. Term.ElectionID is the P4Runtime
// election id a leader uses, so a newer leader always preempts an older one on
// every gateway, and a deposed leader's writes are refused by the gateways
// themselves (P4Runtime accepts writes from the highest election id only), not
// only by its own good behaviour.
//
// Stepping down before the lease runs out: the lease is renewed every TTL/6
// (a renewal stuck on a dead member is sent again to another). A leader whose
// renewals go unanswered for 3/4 of the TTL (a partition from etcd, a lost
// quorum) is told to stop (Leadership.Done) while its lease still has at
// least TTL/4 to run at the server (an answer counts from when its request
// was sent; the server counts the TTL from later), so it has stopped writing
// before another replica can be elected. A shorter bound stepped down on one
// renewal answered late under CPU load; etcd changing its own leader (a
// member killed, quorum kept) costs about 1 s without answers (measured).
package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Config configures an Elector.
type Config struct {
	// Client is the etcd client (the store's cluster).
	Client *clientv3.Client
	// Prefix is the election's key prefix (default "/graygw/leader/").
	Prefix string
	// ID identifies this replica to the others.
	ID string
	// Address is this replica's API address (unix:///path or host:port): the
	// followers send clients there while it leads.
	Address string
	// TTL is the lease (default 2s; whole seconds, at least 1s): how long a
	// dead leader blocks the election.
	TTL time.Duration
}

// Term is one leadership.
type Term struct {
	// Number is the leader key's creation revision: larger for every new
	// leader.
	Number uint64 `json:"number"`
	// Leader is the leader's Config.ID.
	Leader string `json:"leader"`
	// Address is the leader's Config.Address.
	Address string `json:"address,omitempty"`
}

// value is what a replica's key holds.
type value struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
}

// ElectionID is the P4Runtime election id (low 64 bits) of a leader of t:
// larger for every newer term.
func (t Term) ElectionID() uint64 { return t.Number }

// Elector campaigns for one replica.
type Elector struct {
	cfg Config
}

// New checks cfg and returns an elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.ID == "" {
		return nil, errors.New("leader: Client and ID are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/graygw/leader/"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 2 * time.Second
	}
	if cfg.TTL < time.Second || cfg.TTL%time.Second != 0 {
		return nil, fmt.Errorf("leader: TTL %s: want whole seconds, at least 1s", cfg.TTL)
	}
	return &Elector{cfg: cfg}, nil
}

// Leadership is this replica's term as leader.
type Leadership struct {
	Term
	// Elected is when the campaign was won.
	Elected time.Time

	e       *Elector
	session *concurrency.Session
	elec    *concurrency.Election
	done    chan struct{}
	cancel  context.CancelFunc

	mu      sync.Mutex
	lastAck time.Time
	longest time.Duration // the longest time between two answered renewals
	reason  error
}

// Campaign grants a lease, and blocks until this replica leads (or ctx ends).
// The returned leadership ends when Done is closed: keep-alives unanswered
// for 3/4 of the TTL, or the lease lost; the leader must stop acting at once.
func (e *Elector) Campaign(ctx context.Context) (*Leadership, error) {
	ttl := int64(e.cfg.TTL / time.Second)
	lease, err := e.cfg.Client.Grant(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("leader: grant a lease: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	l := &Leadership{e: e, done: make(chan struct{}), cancel: cancel, lastAck: time.Now()}
	go l.keepAlive(lctx, lease.ID)
	if l.session, err = concurrency.NewSession(e.cfg.Client, concurrency.WithLease(lease.ID), concurrency.WithContext(lctx)); err != nil {
		cancel()
		return nil, fmt.Errorf("leader: session: %w", err)
	}
	l.elec = concurrency.NewElection(l.session, e.cfg.Prefix)
	val, err := json.Marshal(value{ID: e.cfg.ID, Address: e.cfg.Address})
	if err != nil {
		l.stop(err)
		return nil, err
	}
	if err := l.elec.Campaign(ctx, string(val)); err != nil {
		l.stop(err)
		_, _ = e.cfg.Client.Revoke(context.Background(), lease.ID)
		return nil, fmt.Errorf("leader: campaign: %w", err)
	}
	l.Term = Term{Number: uint64(l.elec.Rev()), Leader: e.cfg.ID, Address: e.cfg.Address}
	l.Elected = time.Now()
	go l.watchLease(lctx)
	return l, nil
}

// keepAlive renews the lease every TTL/6 until ctx ends, each renewal
// bounded by TTL/6 and sent again at once when it fails: a renewal stuck on
// an etcd member that died is abandoned, and the next goes to another
// member, so that etcd changing its own leader (a member killed, quorum
// kept) costs about its election, well within the 3/4 TTL a leader may go
// without an answer. (clientv3's KeepAlive renews every TTL/3 and waits 500
// ms after a broken stream: with a 2s TTL the leader stepped down at every
// kill of etcd's leader member.) An answer counts from when its request was
// sent: the server's TTL starts later than that, never earlier.
func (l *Leadership) keepAlive(ctx context.Context, id clientv3.LeaseID) {
	every := l.e.cfg.TTL / 6
	for {
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		resp, err := l.e.cfg.Client.KeepAliveOnce(rctx, id)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || err == nil && resp.TTL <= 0:
			l.stop(errors.New("leader: the lease expired or was revoked"))
			return
		case err == nil:
			l.mu.Lock()
			l.longest = max(l.longest, sent.Sub(l.lastAck))
			l.lastAck = sent
			l.mu.Unlock()
		}
		wait := every - time.Since(sent)
		if err != nil {
			wait = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// watchLease ends the leadership when keep-alives have gone unanswered for
// 3/4 of the TTL: the server keeps the lease a TTL after the last one it
// answered, so this replica stops while it still holds the lease.
func (l *Leadership) watchLease(ctx context.Context) {
	limit := l.e.cfg.TTL * 3 / 4
	tick := time.NewTicker(limit / 20)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.mu.Lock()
		since := time.Since(l.lastAck)
		l.mu.Unlock()
		if since > limit {
			l.stop(fmt.Errorf("leader: no keep-alive answered for %s (partitioned from etcd, or no quorum): stepping down before the lease (%s) runs out",
				since.Round(time.Millisecond), l.e.cfg.TTL))
			return
		}
	}
}

func (l *Leadership) stop(reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return
	default:
	}
	l.reason = reason
	close(l.done)
	l.cancel()
}

// LongestWait is the longest time this leadership went without an answered
// renewal of its lease so far.
func (l *Leadership) LongestWait() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longest
}

// LastRenewed is when the last answered renewal of the lease was sent: the
// server holds the lease until at least a TTL after it.
func (l *Leadership) LastRenewed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastAck
}

// Done is closed when the leadership ends; Err then says why.
func (l *Leadership) Done() <-chan struct{} { return l.done }

// Err says why the leadership ended (nil while it lasts).
func (l *Leadership) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason
}

// Resign ends the leadership at once: the key and the lease are deleted, so
// another replica is elected without waiting for the TTL. A leadership that
// already ended (Done) is not resigned: its lease is gone or etcd is out of
// reach, and waiting for it would only delay the exit.
func (l *Leadership) Resign(ctx context.Context) error {
	select {
	case <-l.done:
		return nil
	default:
	}
	err := l.elec.Resign(ctx)
	_, rerr := l.e.cfg.Client.Revoke(ctx, l.session.Lease())
	l.stop(errors.New("leader: resigned"))
	return errors.Join(err, rerr)
}

// Current returns the current leader's term; ok is false when nobody leads.
func Current(ctx context.Context, cli *clientv3.Client, prefix string) (t Term, ok bool, err error) {
	if prefix == "" {
		prefix = "/graygw/leader/"
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithFirstCreate()...)
	if err != nil {
		return Term{}, false, fmt.Errorf("leader: read the leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Term{}, false, nil
	}
	kv := resp.Kvs[0]
	var v value
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return Term{}, false, fmt.Errorf("leader: the leader key %s holds %q: %w", kv.Key, kv.Value, err)
	}
	return Term{Number: uint64(kv.CreateRevision), Leader: v.ID, Address: v.Address}, true, nil
}

// Replica is one controller replica in the election: the leader, or one
// standing by. It is listed while its lease is alive.
type Replica struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	// Leader: this replica leads; Term is then its term.
	Leader bool   `json:"leader"`
	Term   uint64 `json:"term,omitempty"`
}

// Replicas lists the replicas campaigning or leading under prefix, the leader
// first (the oldest key wins, as in etcd's election), then by age. A replica
// whose process or host died is gone once its lease runs out.
func Replicas(ctx context.Context, cli *clientv3.Client, prefix string) ([]Replica, error) {
	if prefix == "" {
		prefix = "/graygw/leader/"
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("leader: list the replicas: %w", err)
	}
	var out []Replica
	for i, kv := range resp.Kvs {
		var v value
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("leader: replica key %s holds %q: %w", kv.Key, kv.Value, err)
		}
		r := Replica{ID: v.ID, Address: v.Address}
		if i == 0 {
			r.Leader, r.Term = true, uint64(kv.CreateRevision)
		}
		out = append(out, r)
	}
	return out, nil
}
