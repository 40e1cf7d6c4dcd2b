package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt: the store file is damaged (bad pages, checksums, or records that do
// not decode). The controller refuses to start on it rather than panic inside
// bbolt or serve a partial history.
var ErrCorrupt = errors.New("store: corrupt")

// CheckBolt verifies the bbolt file at path without changing it: the meta pages'
// checksums (bbolt.Open), every page of every bucket visited, every intent version
// and history event decoded. bbolt trusts its pages and panics (or faults) on
// garbage, so the walk runs in its own goroutine with faults turned into panics and
// every panic recovered: a damaged file is an error wrapping ErrCorrupt, not a
// crash. (bbolt's own tx.Check is not used: it walks in a goroutine of its own,
// where a panic cannot be recovered.)
// A missing file is os.ErrNotExist; an empty (0-byte) one is ErrCorrupt.
func CheckBolt(path string, lockTimeout time.Duration) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("%w: %s is empty (0 bytes): a new store is never empty, so it was truncated", ErrCorrupt, path)
	}
	if err := checkMetas(path); err != nil {
		return err
	}
	if err := checkPagesFile(path); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%w: %s: bbolt failed reading it: %v", ErrCorrupt, path, r)
			}
		}()
		done <- checkBolt(path, lockTimeout)
	}()
	return <-done
}

func checkBolt(path string, lockTimeout time.Duration) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%w: %s (waited %s)", ErrLocked, path, lockTimeout)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if err := walkBolt(tx); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
		return nil
	})
}

// walkBolt visits every bucket, key and value, and decodes the records the store
// wrote. A file without the buckets is a store being created: that is fine.
func walkBolt(tx *bolt.Tx) error {
	var visit func(b *bolt.Bucket, depth int) error
	visit = func(b *bolt.Bucket, depth int) error {
		if depth > 4 {
			return errors.New("buckets nested deeper than the store writes them")
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				sub := b.Bucket(k)
				if sub == nil {
					return fmt.Errorf("key %x: neither a value nor a bucket", k)
				}
				if err := visit(sub, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error { return visit(b, 1) }); err != nil {
		return err
	}
	var last uint64
	if b := tx.Bucket(bucketIntents); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) <= last {
				return fmt.Errorf("intent version key %x out of order", k)
			}
			last = binary.BigEndian.Uint64(k)
			_, err := decodeVersion(last, v)
			return err
		}); err != nil {
			return err
		}
	}
	if b := tx.Bucket(bucketHistory); b != nil {
		var seq uint64
		var ev *Event
		if err := b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) <= seq {
				return fmt.Errorf("history key %x out of order", k)
			}
			seq = binary.BigEndian.Uint64(k)
			var err error
			ev, err = decodeEvent(seq, v)
			return err
		}); err != nil {
			return err
		}
		// The newest event made the current version: a current version that
		// is not the last event's is a file that lost (or regained) pages.
		if ev != nil && ev.After != last {
			return fmt.Errorf("the current intent version is %d but the last history event made version %d", last, ev.After)
		}
	}
	if b := tx.Bucket(bucketKV); b != nil {
		return b.ForEachBucket(func(ns []byte) error {
			return b.Bucket(ns).ForEach(func(_, _ []byte) error { return nil })
		})
	}
	return nil
}

// checkMetas verifies both bbolt meta pages. bbolt itself silently uses the other
// one when the newest is damaged: that is the previous commit, an older state
// presented as current, so a damaged meta page is refused here.
func checkMetas(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	const pageHeader, sumAt = 16, 56 // page header; offset of the checksum in the meta
	read := func(i int, off int64) ([]byte, error) {
		b := make([]byte, pageHeader+sumAt+8)
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("%w: %s: meta page %d: %w", ErrCorrupt, path, i, err)
		}
		m := b[pageHeader:]
		h := fnv.New64a()
		h.Write(m[:sumAt])
		if binary.LittleEndian.Uint32(m) != 0xED0CDAED || h.Sum64() != binary.LittleEndian.Uint64(m[sumAt:]) {
			return nil, fmt.Errorf("%w: %s: meta page %d (offset %d) fails its checksum", ErrCorrupt, path, i, off)
		}
		return m, nil
	}
	m0, err := read(0, 0)
	if err != nil {
		return err
	}
	ps := int64(binary.LittleEndian.Uint32(m0[8:]))
	if ps < 1024 || ps > 1<<20 {
		return fmt.Errorf("%w: %s: page size %d", ErrCorrupt, path, ps)
	}
	_, err = read(1, ps)
	return err
}
