package store

import (
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Namespacer is a Store that can list its key/value namespaces, which copying a
// store whole (controller/store/migrate) needs. Every store of this module
// implements it.
type Namespacer interface {
	// Namespaces returns the namespaces that hold at least one record, sorted.
	Namespaces(ctx context.Context) ([]string, error)
}

// Importer is a Store that takes intent versions and history events as they
// are, numbers kept, with gaps where a retention policy pruned versions: what
// copying a store whole needs. Import is for an empty store only.
type Importer interface {
	// Import stores versions (ascending, any gaps) and events (ascending by
	// Seq); the last event's After must be the last version.
	Import(ctx context.Context, versions []Version, events []Event) error
}

var (
	_ Namespacer = (*Bolt)(nil)
	_ Namespacer = (*Memory)(nil)
	_ Importer   = (*Bolt)(nil)
)

// CheckImport checks what Import is given: versions and events ascending, the
// newest event making the newest version. Importers call it first.
func CheckImport(versions []Version, events []Event) error {
	if len(versions) == 0 || len(events) == 0 {
		return errorf(ErrInvalid, "import: %d versions and %d events (both are needed)", len(versions), len(events))
	}
	for i := 1; i < len(versions); i++ {
		if versions[i].Number <= versions[i-1].Number {
			return errorf(ErrInvalid, "import: versions out of order at %d", versions[i].Number)
		}
	}
	for i := 1; i < len(events); i++ {
		if events[i].Seq <= events[i-1].Seq {
			return errorf(ErrInvalid, "import: events out of order at %d", events[i].Seq)
		}
	}
	if last := events[len(events)-1]; last.After != versions[len(versions)-1].Number {
		return errorf(ErrInvalid, "import: the newest event makes version %d, the newest version is %d", last.After, versions[len(versions)-1].Number)
	}
	return nil
}

// Import implements Importer.
func (s *Bolt) Import(ctx context.Context, versions []Version, events []Event) error {
	if err := CheckImport(versions, events); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		intents, history := tx.Bucket(bucketIntents), tx.Bucket(bucketHistory)
		if lastKey(intents) != 0 || lastKey(history) != 0 {
			return errorf(ErrInvalid, "import into a store that holds an intent")
		}
		for _, v := range versions {
			raw, err := encodeVersion(boltVersion{Time: v.Time.UTC(), Actor: v.Actor, Intent: string(v.Intent)})
			if err != nil {
				return err
			}
			if err := intents.Put(u64(v.Number), raw); err != nil {
				return err
			}
		}
		for _, ev := range events {
			ev.Time = ev.Time.UTC()
			raw, err := encodeEvent(ev)
			if err != nil {
				return err
			}
			if err := history.Put(u64(ev.Seq), raw); err != nil {
				return err
			}
		}
		return nil
	})
}

// Namespaces implements Namespacer.
func (s *Bolt) Namespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKV).ForEachBucket(func(name []byte) error {
			if k, _ := tx.Bucket(bucketKV).Bucket(name).Cursor().First(); k != nil {
				out = append(out, string(name))
			}
			return nil
		})
	})
	return out, err
}

// Namespaces implements Namespacer.
func (m *Memory) Namespaces(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for ns, kv := range m.kv {
		if len(kv) > 0 {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out, nil
}
