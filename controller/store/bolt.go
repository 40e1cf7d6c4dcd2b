package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket layout of the bbolt file. Keys of intents and history are 8-byte
// big-endian numbers, so bbolt's byte order is numeric order.
var (
	bucketIntents = []byte("intents") // version -> boltVersion (JSON)
	bucketHistory = []byte("history") // seq -> Event (JSON)
	bucketMeta    = []byte("meta")    // "schema" -> 1
	bucketKV      = []byte("kv")      // namespace -> nested bucket key -> value
)

// boltSchema is the layout version written in the meta bucket.
const boltSchema = 1

// DefaultLockTimeout is how long Open waits for another process to release the file.
const DefaultLockTimeout = 2 * time.Second

// BoltOptions configure OpenBolt.
type BoltOptions struct {
	// LockTimeout bounds the wait for the file lock (DefaultLockTimeout when 0).
	// bbolt holds an exclusive flock while open: a second controller on the same
	// file fails with ErrLocked instead of sharing it.
	LockTimeout time.Duration
	// NoSync skips fsync on commit (tests only: a crash can lose commits).
	NoSync bool
	// Retain is the history retention policy for intent versions.
	Retain Retention
}

// Retention bounds how many intent versions the store keeps. Every version holds
// the whole document, so without a bound the file grows by one document per
// change. The current version is always kept; history events (small) are all
// kept, and name a pruned version by number only.
type Retention struct {
	// Versions keeps at most this many versions, the newest (0: no count limit).
	Versions int
	// Age drops versions committed longer ago than this (0: no age limit).
	Age time.Duration
}

// compactAbove is the free space (bytes) past which OpenBolt rewrites the file:
// bbolt reuses freed pages but never shrinks the file.
const compactAbove = 1 << 20

// Bolt is the embedded Store: one bbolt file. Its methods are safe for concurrent
// use; bbolt serializes writers.
type Bolt struct {
	db     *bolt.DB
	retain Retention
}

// boltVersion is an intent version as stored.
type boltVersion struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Intent string    `json:"intent"`
	// Sum is the CRC-32C of the record's JSON without Sum: bbolt has no checksum
	// on its data pages, so a changed byte would otherwise pass for the intent.
	// Records written before it existed have none.
	Sum string `json:"sum,omitempty"`
}

// boltEvent is a history event as stored.
type boltEvent struct {
	Event
	Sum string `json:"sum,omitempty"`
}

// sealed marshals v (a record whose Sum is empty) and returns its sum.
func sealed(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x", crc32.Checksum(raw, castagnoli)), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeVersion(bv boltVersion) ([]byte, error) {
	bv.Sum = ""
	sum, err := sealed(bv)
	if err != nil {
		return nil, err
	}
	bv.Sum = sum
	return json.Marshal(bv)
}

func decodeVersion(n uint64, raw []byte) (*boltVersion, error) {
	var bv boltVersion
	if err := json.Unmarshal(raw, &bv); err != nil {
		return nil, fmt.Errorf("%w: intent version %d: %w", ErrCorrupt, n, err)
	}
	if bv.Sum != "" {
		c := bv
		c.Sum = ""
		if sum, err := sealed(c); err != nil || sum != bv.Sum {
			return nil, fmt.Errorf("%w: intent version %d: checksum mismatch", ErrCorrupt, n)
		}
	}
	return &bv, nil
}

func encodeEvent(ev Event) ([]byte, error) {
	sum, err := sealed(boltEvent{Event: ev})
	if err != nil {
		return nil, err
	}
	return json.Marshal(boltEvent{Event: ev, Sum: sum})
}

func decodeEvent(seq uint64, raw []byte) (*Event, error) {
	var be boltEvent
	if err := json.Unmarshal(raw, &be); err != nil {
		return nil, fmt.Errorf("%w: history event %d: %w", ErrCorrupt, seq, err)
	}
	if be.Seq != seq {
		return nil, fmt.Errorf("%w: history event %d: stored as %d", ErrCorrupt, seq, be.Seq)
	}
	if be.Sum != "" {
		if sum, err := sealed(boltEvent{Event: be.Event}); err != nil || sum != be.Sum {
			return nil, fmt.Errorf("%w: history event %d: checksum mismatch", ErrCorrupt, seq)
		}
	}
	return &be.Event, nil
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating when absent, with its directory) the store file at path.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if path == "" {
		return nil, errorf(ErrInvalid, "empty store path")
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory of %s: %w", path, err)
	}
	// Check an existing file before bbolt trusts it (CheckBolt).
	if err := CheckBolt(path, opts.LockTimeout); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %s)", ErrLocked, path, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIntents, bucketHistory, bucketMeta, bucketKV} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("schema")); v != nil {
			if len(v) != 8 || binary.BigEndian.Uint64(v) != boltSchema {
				return fmt.Errorf("unsupported store layout %x (this controller reads %d)", v, boltSchema)
			}
			return nil
		}
		return meta.Put([]byte("schema"), u64(boltSchema))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: initialize %s: %w", path, err)
	}
	s := &Bolt{db: db, retain: opts.Retain}
	if err := s.update(context.Background(), s.prune); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: apply retention to %s: %w", path, err)
	}
	if free := int64(db.Stats().FreePageN+db.Stats().PendingPageN) * int64(db.Info().PageSize); free > compactAbove {
		db.Close()
		if err := compactFile(path, opts); err != nil {
			return nil, err
		}
		if db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync}); err != nil {
			return nil, fmt.Errorf("store: open %s after compaction: %w", path, err)
		}
		s.db = db
	}
	return s, nil
}

// compactFile rewrites the store at path into a new file holding only live pages,
// then renames it into place (a crash leaves the old file whole).
func compactFile(path string, opts BoltOptions) error {
	tmp := path + ".compact"
	os.Remove(tmp)
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	defer src.Close()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, src, 16<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("store: compact %s: %w", path, err)
	}
	defer d.Close()
	return d.Sync()
}

// prune deletes the intent versions the retention policy no longer keeps. It
// runs in the transaction of every commit and at open.
func (s *Bolt) prune(tx *bolt.Tx) error {
	if s.retain.Versions <= 0 && s.retain.Age <= 0 {
		return nil
	}
	intents := tx.Bucket(bucketIntents)
	cur := lastKey(intents)
	if cur == 0 {
		return nil
	}
	var drop [][]byte
	c := intents.Cursor()
	for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) < cur; k, v = c.Next() {
		n := binary.BigEndian.Uint64(k)
		old := s.retain.Versions > 0 && cur-n >= uint64(s.retain.Versions)
		if !old && s.retain.Age > 0 {
			if bv, err := decodeVersion(n, v); err == nil {
				old = time.Since(bv.Time) > s.retain.Age
			}
		}
		if !old {
			break // versions are in commit order: the rest are newer
		}
		drop = append(drop, append([]byte(nil), k...))
	}
	for _, k := range drop {
		if err := intents.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Oldest is the oldest intent version the store still holds (0 when none).
func (s *Bolt) Oldest(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketIntents).Cursor().First(); len(k) == 8 {
			n = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return n, err
}

// Path is the file the store lives in.
func (s *Bolt) Path() string { return s.db.Path() }

// Close closes the file and releases its lock.
func (s *Bolt) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.wrap(s.db.View(fn))
}

func (s *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.wrap(s.db.Update(fn))
}

func (s *Bolt) wrap(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

func lastKey(b *bolt.Bucket) uint64 {
	k, _ := b.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

func getVersion(tx *bolt.Tx, n uint64) (*Version, error) {
	raw := tx.Bucket(bucketIntents).Get(u64(n))
	if raw == nil {
		if k, _ := tx.Bucket(bucketIntents).Cursor().First(); len(k) == 8 && n > 0 && n < binary.BigEndian.Uint64(k) {
			return nil, errorf(ErrNotFound, "intent version %d (pruned by the retention policy; the oldest kept is %d)",
				n, binary.BigEndian.Uint64(k))
		}
		return nil, errorf(ErrNotFound, "intent version %d", n)
	}
	bv, err := decodeVersion(n, raw)
	if err != nil {
		return nil, err
	}
	return &Version{Number: n, Intent: []byte(bv.Intent), Time: bv.Time, Actor: bv.Actor}, nil
}

// Current implements Store.
func (s *Bolt) Current(ctx context.Context) (*Version, error) {
	var v *Version
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n := lastKey(tx.Bucket(bucketIntents))
		if n == 0 {
			return errorf(ErrNotFound, "no intent stored")
		}
		var err error
		v, err = getVersion(tx, n)
		return err
	})
	return v, err
}

// Version implements Store.
func (s *Bolt) Version(ctx context.Context, n uint64) (*Version, error) {
	var v *Version
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		v, err = getVersion(tx, n)
		return err
	})
	return v, err
}

// Commit implements Store.
func (s *Bolt) Commit(ctx context.Context, c Change) (*Version, *Event, error) {
	if err := checkChange(&c); err != nil {
		return nil, nil, err
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	var v *Version
	var ev *Event
	err := s.update(ctx, func(tx *bolt.Tx) error {
		intents, history := tx.Bucket(bucketIntents), tx.Bucket(bucketHistory)
		cur := lastKey(intents)
		if c.Base != cur {
			return errorf(ErrConflict, "change based on version %d, current is %d", c.Base, cur)
		}
		raw, err := encodeVersion(boltVersion{Time: c.Time, Actor: c.Actor, Intent: string(c.Intent)})
		if err != nil {
			return err
		}
		next := cur + 1
		if err := intents.Put(u64(next), raw); err != nil {
			return err
		}
		seq := lastKey(history) + 1
		ev = &Event{Seq: seq, Time: c.Time, Actor: c.Actor, Operation: c.Operation, Summary: c.Summary,
			Before: cur, After: next, Undoes: c.Undoes}
		raw, err = encodeEvent(*ev)
		if err != nil {
			return err
		}
		if err := history.Put(u64(seq), raw); err != nil {
			return err
		}
		if err := s.prune(tx); err != nil {
			return err
		}
		v = &Version{Number: next, Intent: append([]byte(nil), c.Intent...), Time: c.Time, Actor: c.Actor}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrClosed) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("store: commit: %w", err)
	}
	return v, ev, nil
}

// Record implements Store.
func (s *Bolt) Record(ctx context.Context, r Record) (*Event, error) {
	if err := CheckRecord(&r); err != nil {
		return nil, err
	}
	var ev Event
	err := s.update(ctx, func(tx *bolt.Tx) error {
		history := tx.Bucket(bucketHistory)
		seq := lastKey(history) + 1
		ev = RecordEvent(r, seq, lastKey(tx.Bucket(bucketIntents)))
		raw, err := encodeEvent(ev)
		if err != nil {
			return err
		}
		return history.Put(u64(seq), raw)
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("store: record: %w", err)
	}
	return &ev, nil
}

// History implements Store.
func (s *Bolt) History(ctx context.Context, q Query) ([]Event, error) {
	var out []Event
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		var k, v []byte
		if q.Before > 0 {
			// Seek finds the first key >= Before; the one before it is the newest
			// event to return. No such key: every event is older than Before.
			if k, _ = c.Seek(u64(q.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if q.Limit > 0 && len(out) >= q.Limit {
				break
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: history key %x", ErrCorrupt, k)
			}
			ev, err := decodeEvent(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, *ev)
		}
		return nil
	})
	return out, err
}

// Get implements Store.
func (s *Bolt) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if err := checkKey(ns, key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Bucket([]byte(ns))
		if b == nil {
			return errorf(ErrNotFound, "namespace %q", ns)
		}
		v := b.Get([]byte(key))
		if v == nil {
			return errorf(ErrNotFound, "key %q in namespace %q", key, ns)
		}
		out = append([]byte{}, v...)
		return nil
	})
	return out, err
}

// Put implements Store.
func (s *Bolt) Put(ctx context.Context, ns, key string, value []byte) error {
	if err := checkKey(ns, key); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketKV).CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), append([]byte{}, value...))
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: put %s/%s: %w", ns, key, err)
	}
	return err
}

// Delete implements Store.
func (s *Bolt) Delete(ctx context.Context, ns, key string) error {
	if err := checkKey(ns, key); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("store: delete %s/%s: %w", ns, key, err)
	}
	return err
}

// List implements Store.
func (s *Bolt) List(ctx context.Context, ns string) ([]KV, error) {
	if ns == "" {
		return nil, errorf(ErrInvalid, "empty namespace")
	}
	var out []KV
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Bucket([]byte(ns))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil { // a nested bucket: not written by this package
				return nil
			}
			out = append(out, KV{Key: string(k), Value: append([]byte{}, v...)})
			return nil
		})
	})
	return out, err
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
