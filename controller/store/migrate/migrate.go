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
// checks the copy. Versions and events keep their numbers, times and actors;
// versions a retention policy pruned from the source (their events are kept)
// stay absent. The destination must be a store.Importer.
func Copy(ctx context.Context, from, to store.Store) (Stats, error) {
	var st Stats
	fromNS, ok1 := from.(store.Namespacer)
	toNS, ok2 := to.(store.Namespacer)
	imp, ok3 := to.(store.Importer)
	if !ok1 || !ok2 || !ok3 {
		return st, errors.New("migrate: the stores must list their namespaces and the destination must import (bbolt, etcd)")
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
	if len(versions) > 0 {
		if err := imp.Import(ctx, versions, events); err != nil {
			return st, fmt.Errorf("migrate: %w", err)
		}
	}
	st.Versions, st.Events = len(versions), len(events)
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

// readAll reads every event and every version still held, oldest first.
func readAll(ctx context.Context, s store.Store) ([]store.Version, []store.Event, error) {
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
	if len(events) == 0 || events[len(events)-1].After != cur.Number {
		return nil, nil, fmt.Errorf("migrate: the newest history event does not make the current version %d", cur.Number)
	}
	var versions []store.Version
	for _, ev := range events {
		if ev.After == 0 || (len(versions) > 0 && versions[len(versions)-1].Number == ev.After) {
			continue
		}
		v, err := s.Version(ctx, ev.After)
		if errors.Is(err, store.ErrNotFound) {
			continue // pruned by the source's retention policy
		}
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: version %d: %w", ev.After, err)
		}
		versions = append(versions, *v)
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
	if len(ea) != len(eb) {
		return fmt.Errorf("migrate: %d history events against %d", len(ea), len(eb))
	}
	for i := range va {
		x, y := va[i], vb[i]
		if x.Number != y.Number || !bytes.Equal(x.Intent, y.Intent) || !x.Time.Equal(y.Time) || x.Actor != y.Actor {
			return fmt.Errorf("migrate: version %d differs", x.Number)
		}
	}
	for i := range ea {
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
