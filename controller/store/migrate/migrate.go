// Package migrate copies a controller store whole into another (a bbolt file
// into etcd and back): every intent version with its time and actor, every
// history event, every key/value record; then reads both back and compares
// them, so a copy that lost anything is an error, not a surprise later.
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/graygw/graygw/controller/store"
)

// Stats counts what was copied.
type Stats struct {
	Versions, Events, Records, Namespaces int
}

// Copy copies from into to, which must be empty (no intent, no record), then
// checks the copy. Versions are replayed through Commit with their own time,
// actor and history event, so version numbers and event sequence numbers come
// out the same; a source whose history does not pair each version with its
// event (1..N, gap-free) is refused before anything is written.
func Copy(ctx context.Context, from, to store.Store) (Stats, error) {
	var st Stats
	fromNS, ok1 := from.(store.Namespacer)
	toNS, ok2 := to.(store.Namespacer)
	if !ok1 || !ok2 {
		return st, errors.New("migrate: both stores must list their namespaces (store.Namespacer)")
	}
	if _, err := to.Current(ctx); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			err = errors.New("it holds an intent")
		}
		return st, fmt.Errorf("migrate: the destination is not empty: %w", err)
	}
	if ns, err := toNS.Namespaces(ctx); err != nil || len(ns) > 0 {
		return st, fmt.Errorf("migrate: the destination is not empty: namespaces %v %v", ns, err)
	}

	versions, events, err := readAll(ctx, from)
	if err != nil {
		return st, err
	}
	for i, v := range versions {
		ev := events[i]
		_, _, err := to.Commit(ctx, store.Change{Base: v.Number - 1, Intent: v.Intent, Actor: v.Actor, Time: v.Time,
			Operation: ev.Operation, Summary: ev.Summary, Undoes: ev.Undoes})
		if err != nil {
			return st, fmt.Errorf("migrate: version %d: %w", v.Number, err)
		}
		st.Versions++
		st.Events++
	}
	nss, err := fromNS.Namespaces(ctx)
	if err != nil {
		return st, fmt.Errorf("migrate: list the source's namespaces: %w", err)
	}
	for _, ns := range nss {
		kvs, err := from.List(ctx, ns)
		if err != nil {
			return st, fmt.Errorf("migrate: namespace %s: %w", ns, err)
		}
		for _, kv := range kvs {
			if err := to.Put(ctx, ns, kv.Key, kv.Value); err != nil {
				return st, fmt.Errorf("migrate: %s/%s: %w", ns, kv.Key, err)
			}
			st.Records++
		}
		st.Namespaces++
	}
	return st, Equal(ctx, from, to)
}

// readAll reads every version and its event, oldest first, checking that
// they pair up.
func readAll(ctx context.Context, s store.Store) ([]*store.Version, []store.Event, error) {
	events, err := s.History(ctx, store.Query{})
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: read the history: %w", err)
	}
	slices.Reverse(events)
	cur, err := s.Current(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if len(events) > 0 {
			return nil, nil, fmt.Errorf("migrate: %d history events but no intent", len(events))
		}
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("migrate: read the current intent: %w", err)
	}
	if uint64(len(events)) != cur.Number {
		return nil, nil, fmt.Errorf("migrate: the source has %d history events for %d versions (pruned?); this tool copies only a complete history", len(events), cur.Number)
	}
	var versions []*store.Version
	for i, ev := range events {
		n := uint64(i + 1)
		if ev.Seq != n || ev.After != n || ev.Before != n-1 {
			return nil, nil, fmt.Errorf("migrate: history event %d (seq %d, versions %d -> %d) does not make version %d", i+1, ev.Seq, ev.Before, ev.After, n)
		}
		v, err := s.Version(ctx, n)
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: version %d: %w", n, err)
		}
		versions = append(versions, v)
	}
	return versions, events, nil
}

// Equal compares two stores whole: versions (intent, time, actor), history
// events and every record. It names the first difference.
func Equal(ctx context.Context, a, b store.Store) error {
	va, ea, err := readAll(ctx, a)
	if err != nil {
		return err
	}
	vb, eb, err := readAll(ctx, b)
	if err != nil {
		return err
	}
	if len(va) != len(vb) {
		return fmt.Errorf("migrate: %d versions against %d", len(va), len(vb))
	}
	for i := range va {
		x, y := va[i], vb[i]
		if !bytes.Equal(x.Intent, y.Intent) || !x.Time.Equal(y.Time) || x.Actor != y.Actor {
			return fmt.Errorf("migrate: version %d differs", x.Number)
		}
		ex, ey := ea[i], eb[i]
		ex.Time, ey.Time = ex.Time.UTC(), ey.Time.UTC()
		if ex != ey {
			return fmt.Errorf("migrate: history event %d differs: %+v against %+v", ex.Seq, ex, ey)
		}
	}
	na, err := a.(store.Namespacer).Namespaces(ctx)
	if err != nil {
		return err
	}
	nb, err := b.(store.Namespacer).Namespaces(ctx)
	if err != nil {
		return err
	}
	if !slices.Equal(na, nb) {
		return fmt.Errorf("migrate: namespaces %v against %v", na, nb)
	}
	for _, ns := range na {
		ka, err := a.List(ctx, ns)
		if err != nil {
			return err
		}
		kb, err := b.List(ctx, ns)
		if err != nil {
			return err
		}
		if !slices.EqualFunc(ka, kb, func(x, y store.KV) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }) {
			return fmt.Errorf("migrate: namespace %s differs", ns)
		}
	}
	return nil
}
