// Package etcdstore is the controller's Store (controller/store) on an etcd
// cluster, for several controller replicas sharing one state: intent versions,
// history and the key/value namespaces, each change one etcd transaction, with
// the same compare-and-swap on the current version as the bbolt store
// (docs/ha.md).
//
// Layout under Config.Prefix (default "/graygw/"):
//
//	meta/schema          "1"
//	meta/current         the current intent version (decimal); its ModRevision
//	                     is what Commit compares
//	intents/%020d        a version (JSON: time, actor, intent)
//	history/%020d        an event (JSON, as store.Event): commits and records
//	                     (Record) numbered together; a write takes the number
//	                     after the newest key, its transaction requiring it free
//	kv/<ns>/<key>        a record; ns is path-escaped, so it holds no "/"
//
// Zero-padded numbers make etcd's byte order the numeric order.
package etcdstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/tlsfiles"
)

// schema is the layout version in meta/schema.
const schema = "1"

// Config says how to reach the cluster.
type Config struct {
	// Endpoints are the members' client URLs (https://host:2379).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is prepended to every key (default "/graygw/"): several
	// controller fleets can share a cluster under different prefixes.
	Prefix string `yaml:"prefix"`
	// TLSCert, TLSKey and TLSCA are this controller's client certificate and
	// the CA the members' certificates chain to (mutual TLS). All three, or
	// none (plaintext: loopback tests only).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	TLSCA   string `yaml:"tls_ca"`
	// DialTimeout bounds connecting at Open (default 5s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds every operation (default 5s): without a quorum a
	// request would otherwise wait forever; with it, the caller gets an error
	// that says so and nothing is half written.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RetainVersions keeps at most this many intent versions, the newest
	// (0: all): each commit deletes the older ones in its own transaction.
	// History events are all kept. The controller sets it from
	// store_retention.versions.
	RetainVersions int `yaml:"-"`
	// RetainAge deletes the intent versions committed longer ago than this
	// (0: no age bound), the current one excepted, in the transaction of each
	// commit. The controller sets it from store_retention.age.
	RetainAge time.Duration `yaml:"-"`
}

// Validate checks c, every problem by field.
func (c Config) Validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("etcd.endpoints: empty"))
	}
	for i, e := range c.Endpoints {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("etcd.endpoints[%d]: %q is not an http(s)://host:port URL", i, e))
		}
	}
	if n := count(c.TLSCert, c.TLSKey, c.TLSCA); n != 0 && n != 3 {
		errs = append(errs, errors.New("etcd.tls_cert, tls_key, tls_ca: give all three (mutual TLS) or none"))
	}
	if c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("etcd.prefix: %q must end with /", c.Prefix))
	}
	if c.DialTimeout < 0 || c.RequestTimeout < 0 {
		errs = append(errs, errors.New("etcd.dial_timeout, request_timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

func count(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// Store is a store.Store on etcd. It is safe for concurrent use.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	retain  int
	// retainAge is Config.RetainAge.
	retainAge time.Duration
	closed    atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the cluster and checks (or writes, on an empty prefix) the
// layout version.
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if c.Prefix == "" {
		c.Prefix = "/graygw/"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	cc := clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: zap.NewNop()}
	if c.TLSCert != "" {
		t, err := clientTLS(c)
		if err != nil {
			return nil, err
		}
		cc.TLS = t
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("store: etcd %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	s := &Store{cli: cli, prefix: c.Prefix, timeout: c.RequestTimeout, retain: c.RetainVersions, retainAge: c.RetainAge}
	if err := s.init(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	return s, nil
}

func clientTLS(c Config) (*tls.Config, error) {
	return tlsfiles.Client(c.TLSCert, c.TLSKey, c.TLSCA, "store: etcd.tls_cert/tls_key", "store: etcd.tls_ca")
}

// init writes meta/schema on a new prefix, or checks it.
func (s *Store) init(ctx context.Context) error {
	key := s.prefix + "meta/schema"
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, schema)).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return s.fail(ctx, "open", err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 || string(kvs[0].Value) != schema {
		return fmt.Errorf("store: etcd prefix %s: unsupported store layout %q (this controller reads %s)", s.prefix, kvValue(kvs), schema)
	}
	return nil
}

func kvValue(kvs []*mvccpb.KeyValue) string {
	if len(kvs) == 0 {
		return ""
	}
	return string(kvs[0].Value)
}

// Prefix is the key prefix in use.
func (s *Store) Prefix() string { return s.prefix }

// Close closes the client.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// op bounds one operation by the request timeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// fail wraps an etcd error: the caller's own cancellation as is, a closed
// store as ErrClosed, anything else with what was being done.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	switch {
	case s.closed.Load():
		return fmt.Errorf("%w: %s: %w", store.ErrClosed, what, err)
	case noAnswer(ctx, err):
		return fmt.Errorf("%w: etcd %s: no answer within %s (members down or unreachable, no quorum, or TLS refused): %w", store.ErrUnavailable, what, s.timeout, err)
	}
	return fmt.Errorf("store: etcd %s: %w", what, err)
}

// noAnswer reports an error that means the cluster did not answer in time
// (members down, no quorum, no leader). The server's own "context deadline
// exceeded" comes back as a gRPC error of code Unknown, not as
// context.DeadlineExceeded.
func noAnswer(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrNoLeader) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && (st.Code() == codes.DeadlineExceeded || st.Code() == codes.Unavailable ||
		(st.Code() == codes.Unknown && strings.Contains(st.Message(), "deadline exceeded")))
}

// attemptTimeout bounds one attempt of a commit's transaction (the request
// timeout bounds them all): above an etcd election (500 ms to a few seconds
// with etcd's defaults: a member that had a proposal waits that long for its
// leader), and a commit's ordinary latency on a loaded cluster.
const attemptTimeout = 1500 * time.Millisecond

// commitRetrying commits the transaction ifs -> then, each attempt bounded
// by attemptTimeout, and sends it again while its answer may have been lost:
// the compares let it land at most once. retried says it was sent again, so
// a failed compare may be an earlier attempt that landed.
func (s *Store) commitRetrying(ctx context.Context, ifs []clientv3.Cmp, then []clientv3.Op) (resp *clientv3.TxnResponse, retried bool, err error) {
	attempt := func() (*clientv3.TxnResponse, error) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		return s.cli.Txn(actx).If(ifs...).Then(then...).Commit()
	}
	resp, err = attempt()
	for err != nil && ctx.Err() == nil && (lostAnswer(err) || errors.Is(err, context.DeadlineExceeded)) {
		retried = true
		time.Sleep(50 * time.Millisecond)
		resp, err = attempt()
	}
	return resp, retried, err
}

// lostAnswer reports an error after which a transaction may or may not have
// landed: the connection to the member broke, or the member lost its leader
// (or timed out on the way to a new one).
func lostAnswer(err error) bool {
	for _, e := range []error{rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrNoLeader,
		rpctypes.ErrLeaderChanged, rpctypes.ErrTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// landed reports whether version n holds exactly raw: a commit whose answer
// was lost, found by its retry.
func (s *Store) landed(ctx context.Context, n uint64, raw []byte) bool {
	return s.holds(ctx, s.intentKey(n), raw)
}

// holds reports whether key holds exactly raw.
func (s *Store) holds(ctx context.Context, key string, raw []byte) bool {
	resp, err := s.cli.Get(ctx, key)
	return err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == string(raw)
}

// check refuses calls on a closed store and with a done context.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: etcd store", store.ErrClosed)
	}
	return ctx.Err()
}

func (s *Store) intentKey(n uint64) string { return fmt.Sprintf("%sintents/%020d", s.prefix, n) }
func (s *Store) eventKey(n uint64) string  { return fmt.Sprintf("%shistory/%020d", s.prefix, n) }
func (s *Store) currentKey() string        { return s.prefix + "meta/current" }
func (s *Store) nsPrefix(ns string) string { return s.prefix + "kv/" + url.PathEscape(ns) + "/" }

// version is an intent version as stored.
type version struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Intent string    `json:"intent"`
}

// current reads the current version number and the revision it was last
// written at (0, 0 when nothing was committed).
func (s *Store) current(ctx context.Context) (n uint64, rev int64, err error) {
	resp, err := s.cli.Get(ctx, s.currentKey())
	if err != nil {
		return 0, 0, s.fail(ctx, "read the current version", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	n, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("store: etcd %s is corrupt: %w", s.currentKey(), err)
	}
	return n, resp.Kvs[0].ModRevision, nil
}

// Current implements store.Store.
func (s *Store) Current(ctx context.Context) (*store.Version, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, _, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no intent stored", store.ErrNotFound)
	}
	return s.version(ctx, n)
}

// Version implements store.Store.
func (s *Store) Version(ctx context.Context, n uint64) (*store.Version, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	return s.version(ctx, n)
}

func (s *Store) version(ctx context.Context, n uint64) (*store.Version, error) {
	resp, err := s.cli.Get(ctx, s.intentKey(n))
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("read intent version %d", n), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: intent version %d", store.ErrNotFound, n)
	}
	var v version
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		return nil, fmt.Errorf("store: intent version %d is corrupt: %w", n, err)
	}
	return &store.Version{Number: n, Intent: []byte(v.Intent), Time: v.Time, Actor: v.Actor}, nil
}

// Commit implements store.Store: one transaction writes the version, the
// event and the new current version, provided meta/current has not changed
// since it was read as c.Base and the event's number is still free.
func (s *Store) Commit(ctx context.Context, c store.Change) (*store.Version, *store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, nil, err
	}
	if err := checkChange(c); err != nil {
		return nil, nil, err
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	ctx, cancel := s.op(ctx)
	defer cancel()
	rawV, err := json.Marshal(version{Time: c.Time, Actor: c.Actor, Intent: string(c.Intent)})
	if err != nil {
		return nil, nil, err
	}
	// A record (Record) may take the event number this commit read as next:
	// then the version is still the base, and the commit tries the next number.
	for range maxAttempts {
		cur, rev, err := s.current(ctx)
		if err != nil {
			return nil, nil, err
		}
		if c.Base != cur {
			return nil, nil, fmt.Errorf("%w: change based on version %d, current is %d", store.ErrConflict, c.Base, cur)
		}
		seq, err := s.lastSeq(ctx)
		if err != nil {
			return nil, nil, err
		}
		next := cur + 1
		ev := &store.Event{Seq: seq + 1, Time: c.Time, Actor: c.Actor, Operation: c.Operation, Summary: c.Summary,
			Before: cur, After: next, Undoes: c.Undoes}
		rawE, err := json.Marshal(ev)
		if err != nil {
			return nil, nil, err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(s.currentKey()), "=", rev)
		if rev == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(s.currentKey()), "=", 0)
		}
		ops := []clientv3.Op{
			clientv3.OpPut(s.intentKey(next), string(rawV)),
			clientv3.OpPut(s.eventKey(ev.Seq), string(rawE)),
			clientv3.OpPut(s.currentKey(), strconv.FormatUint(next, 10)),
		}
		keepFrom, err := s.keepFrom(ctx, next)
		if err != nil {
			return nil, nil, err
		}
		if keepFrom > 1 {
			// Versions 1 .. keepFrom-1 go, in the same transaction.
			ops = append(ops, clientv3.OpDelete(s.intentKey(0), clientv3.WithRange(s.intentKey(keepFrom))))
		}
		// Each attempt is bounded by attemptTimeout: a proposal forwarded to
		// an etcd leader that dies is lost, and the member would answer only
		// at its own request timeout (seconds). A commit whose answer was lost
		// (its member died, its connection broke, the proposal timed out) is
		// sent again, another member answers; the compares let it land at
		// most once, and a retry that finds it landed recognises it below.
		resp, retried, err := s.commitRetrying(ctx, []clientv3.Cmp{cmp, clientv3.Compare(clientv3.CreateRevision(s.eventKey(ev.Seq)), "=", 0)}, ops)
		if err != nil {
			// The outcome is unknown when the answer was lost: the caller re-reads
			// (a retried Commit on the same Base then gets ErrConflict if it landed).
			return nil, nil, s.fail(ctx, "commit", err)
		}
		if !resp.Succeeded && retried && s.landed(ctx, next, rawV) {
			resp.Succeeded = true // the first attempt landed: this version is ours (same time, actor, intent)
		}
		if resp.Succeeded {
			return &store.Version{Number: next, Intent: append([]byte(nil), c.Intent...), Time: c.Time, Actor: c.Actor}, ev, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: commit: the history's next number was taken %d times in a row", store.ErrUnavailable, maxAttempts)
}

// keepFrom is the oldest intent version the retention keeps once next is
// committed: the newest RetainVersions, none committed more than RetainAge
// ago (next itself always kept). The age is read from the oldest versions
// themselves, one at a time until a young one, so a commit reads one version
// more than it deletes (at most agedOutPerCommit go per commit).
func (s *Store) keepFrom(ctx context.Context, next uint64) (uint64, error) {
	from := uint64(1)
	if s.retain > 0 && next > uint64(s.retain) {
		from = next - uint64(s.retain) + 1
	}
	if s.retainAge <= 0 {
		return from, nil
	}
	for range agedOutPerCommit {
		resp, err := s.cli.Get(ctx, s.intentKey(from), clientv3.WithRange(s.intentKey(next)), clientv3.WithLimit(1))
		if err != nil {
			return 0, s.fail(ctx, "read the oldest version", err)
		}
		if len(resp.Kvs) == 0 {
			return next, nil // every older version goes
		}
		kv := resp.Kvs[0]
		n, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), s.prefix+"intents/"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("store: etcd key %s is not a version: %w", kv.Key, err)
		}
		var v version
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return 0, fmt.Errorf("store: etcd %s: %w", kv.Key, err)
		}
		if time.Since(v.Time) <= s.retainAge {
			return n, nil
		}
		from = n + 1
	}
	return from, nil
}

// agedOutPerCommit bounds the versions one commit deletes by age (and the
// reads it costs); the next commits delete the rest.
const agedOutPerCommit = 100

// maxAttempts bounds the retries of a write that lost the history's next
// number to a concurrent one.
const maxAttempts = 16

// lastSeq reads the newest history event's number (0 when there is none).
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+"history/", clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return 0, s.fail(ctx, "read the history's last number", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	k := string(resp.Kvs[0].Key)
	n, err := strconv.ParseUint(strings.TrimPrefix(k, s.prefix+"history/"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: etcd history key %s is corrupt: %w", k, err)
	}
	return n, nil
}

// Record implements store.Store: the event takes the next history number
// (the transaction requires it free) while the version it names is in force.
func (s *Store) Record(ctx context.Context, r store.Record) (*store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckRecord(&r); err != nil {
		return nil, err
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	for range maxAttempts {
		cur, rev, err := s.current(ctx)
		if err != nil {
			return nil, err
		}
		seq, err := s.lastSeq(ctx)
		if err != nil {
			return nil, err
		}
		ev := store.RecordEvent(r, seq+1, cur)
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(s.currentKey()), "=", rev)
		if rev == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(s.currentKey()), "=", 0)
		}
		// As a commit's (Commit): bounded attempts, one whose answer was lost
		// sent again, and a retry that finds the first landed recognises its
		// record (the same bytes), so a record is never written twice.
		resp, retried, err := s.commitRetrying(ctx, []clientv3.Cmp{cmp, clientv3.Compare(clientv3.CreateRevision(s.eventKey(ev.Seq)), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(s.eventKey(ev.Seq), string(raw))})
		if err != nil {
			return nil, s.fail(ctx, "record", err)
		}
		if resp.Succeeded || retried && s.holds(ctx, s.eventKey(ev.Seq), raw) {
			return &ev, nil
		}
	}
	return nil, fmt.Errorf("%w: record: the history's next number was taken %d times in a row", store.ErrUnavailable, maxAttempts)
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, q store.Query) ([]store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	end := clientv3.GetPrefixRangeEnd(s.prefix + "history/")
	if q.Before > 0 {
		end = s.eventKey(q.Before)
	}
	opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if q.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(q.Limit)))
	}
	resp, err := s.cli.Get(ctx, s.prefix+"history/", opts...)
	if err != nil {
		return nil, s.fail(ctx, "read the history", err)
	}
	out := make([]store.Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ev store.Event
		if err := json.Unmarshal(kv.Value, &ev); err != nil {
			return nil, fmt.Errorf("store: history event %s is corrupt: %w", strings.TrimPrefix(string(kv.Key), s.prefix), err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, ns, key string) ([]byte, error) {
	var resp *clientv3.GetResponse
	err := s.keyOp(ctx, "get", ns, key, func(ctx context.Context, k string) (err error) {
		resp, err = s.cli.Get(ctx, k)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: key %q in namespace %q", store.ErrNotFound, key, ns)
	}
	return append([]byte{}, resp.Kvs[0].Value...), nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte) error {
	return s.keyOp(ctx, "put", ns, key, func(ctx context.Context, k string) error {
		_, err := s.cli.Put(ctx, k, string(value))
		return err
	})
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	return s.keyOp(ctx, "delete", ns, key, func(ctx context.Context, k string) error {
		_, err := s.cli.Delete(ctx, k)
		return err
	})
}

// keyOp runs do on the etcd key of ns/key after the checks of every key
// operation, within the store's operation timeout; an etcd error is reported
// as "<what> ns/key".
func (s *Store) keyOp(ctx context.Context, what, ns, key string, do func(ctx context.Context, k string) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := checkKey(ns, key); err != nil {
		return err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	if err := do(ctx, s.nsPrefix(ns)+key); err != nil {
		return s.fail(ctx, fmt.Sprintf("%s %s/%s", what, ns, key), err)
	}
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, ns string) ([]store.KV, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if ns == "" {
		return nil, fmt.Errorf("%w: empty namespace", store.ErrInvalid)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	p := s.nsPrefix(ns)
	resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(ctx, "list "+ns, err)
	}
	var out []store.KV
	for _, kv := range resp.Kvs {
		out = append(out, store.KV{Key: strings.TrimPrefix(string(kv.Key), p), Value: append([]byte{}, kv.Value...)})
	}
	return out, nil
}

// checkChange and checkKey refuse what the bbolt store refuses, with the same
// sentinel.
func checkChange(c store.Change) error {
	switch {
	case c.Actor == "":
		return fmt.Errorf("%w: change without an actor", store.ErrInvalid)
	case c.Operation == "":
		return fmt.Errorf("%w: change without an operation", store.ErrInvalid)
	case len(c.Intent) == 0:
		return fmt.Errorf("%w: change with an empty intent", store.ErrInvalid)
	}
	return nil
}

func checkKey(ns, key string) error {
	if ns == "" {
		return fmt.Errorf("%w: empty namespace", store.ErrInvalid)
	}
	if key == "" {
		return fmt.Errorf("%w: empty key in namespace %q", store.ErrInvalid, ns)
	}
	return nil
}

var _ store.Namespacer = (*Store)(nil)

// Namespaces implements store.Namespacer.
func (s *Store) Namespaces(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	p := s.prefix + "kv/"
	resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, s.fail(ctx, "list the namespaces", err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		esc, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), p), "/")
		ns, err := url.PathUnescape(esc)
		if err != nil {
			return nil, fmt.Errorf("store: etcd key %s is corrupt: %w", kv.Key, err)
		}
		if len(out) == 0 || out[len(out)-1] != ns {
			out = append(out, ns)
		}
	}
	slices.Sort(out) // escaping changes the order ("a/b" is "a%2Fb")
	return out, nil
}

var _ store.Importer = (*Store)(nil)

// importBatch bounds the operations of one import transaction (etcd's
// default --max-txn-ops is 128).
const importBatch = 100

// Import implements store.Importer: the versions and events in transactions
// of importBatch puts, then meta/current, which makes the import visible, in
// a last transaction that requires it absent. An import that fails midway
// leaves keys under the prefix but no current version: delete the prefix
// (etcdctl del --prefix) and import again.
func (s *Store) Import(ctx context.Context, versions []store.Version, events []store.Event) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.CheckImport(versions, events); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout*time.Duration(2+(len(versions)+len(events))/importBatch))
	defer cancel()
	for _, p := range []string{"intents/", "history/", "meta/current"} {
		resp, err := s.cli.Get(ctx, s.prefix+p, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return s.fail(ctx, "import", err)
		}
		if resp.Count > 0 {
			return fmt.Errorf("%w: import into a store that holds an intent (%s)", store.ErrInvalid, s.prefix+p)
		}
	}
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return s.fail(ctx, "import", err)
		}
		ops = ops[:0]
		return nil
	}
	for _, v := range versions {
		raw, err := json.Marshal(version{Time: v.Time.UTC(), Actor: v.Actor, Intent: string(v.Intent)})
		if err != nil {
			return err
		}
		if ops = append(ops, clientv3.OpPut(s.intentKey(v.Number), string(raw))); len(ops) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for _, ev := range events {
		ev.Time = ev.Time.UTC()
		raw, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if ops = append(ops, clientv3.OpPut(s.eventKey(ev.Seq), string(raw))); len(ops) == importBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	last := versions[len(versions)-1].Number
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.currentKey()), "=", 0)).
		Then(clientv3.OpPut(s.currentKey(), strconv.FormatUint(last, 10))).Commit()
	if err != nil {
		return s.fail(ctx, "import", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: import: another writer committed during the import", store.ErrConflict)
	}
	return nil
}

// Client is the store's etcd client (the leader election uses the same
// cluster).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Change is one change Watch saw: the etcd revision it was written at.
type Change struct {
	Revision int64
	// At is when the watch delivered it.
	At time.Time
}

// Watch follows the store: it sends a Change after every commit (the current
// version moved) and every write or delete of a record in one of namespaces,
// until ctx ends (then it closes the channel). Changes are coalesced: a reader
// that falls behind gets the latest revision, once, and reads the store again
// (an HA follower keeps the intent and the pool tables in memory so). The
// first Change is sent at once, with the revision the watch starts after; a
// watch broken by a compaction or a lost member starts again from the latest
// revision, with a Change.
func (s *Store) Watch(ctx context.Context, namespaces ...string) <-chan Change {
	out := make(chan Change, 1)
	send := func(rev int64) {
		c := Change{Revision: rev, At: time.Now()}
		for {
			select {
			case out <- c:
				return
			default:
			}
			select {
			case <-out: // replaced by the newer change
			default:
			}
		}
	}
	wanted := func(key string) bool {
		if key == s.currentKey() {
			return true
		}
		for _, ns := range namespaces {
			if strings.HasPrefix(key, s.nsPrefix(ns)) {
				return true
			}
		}
		return false
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			rctx, cancel := s.op(ctx)
			resp, err := s.cli.Get(rctx, s.currentKey())
			cancel()
			if err != nil {
				select {
				case <-time.After(s.timeout / 4):
					continue
				case <-ctx.Done():
					return
				}
			}
			rev := resp.Header.Revision
			send(rev)
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					if wanted(string(ev.Kv.Key)) {
						send(wr.Header.Revision)
						break
					}
				}
			}
			wcancel()
		}
	}()
	return out
}

// CurrentNumber reads the current intent version's number (0: none yet),
// linearizably: one round trip through the cluster's quorum, which an HA
// replica reports as its store latency.
func (s *Store) CurrentNumber(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, _, err := s.current(ctx)
	return n, err
}
