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

var (
	_ Namespacer = (*Bolt)(nil)
	_ Namespacer = (*Memory)(nil)
)

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
