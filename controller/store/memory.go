package store

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store held in memory: the same semantics as Bolt, nothing
// persisted. For tests and dry runs.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	versions []Version // versions[i].Number == i+1
	events   []Event   // events[i].Seq == i+1
	kv       map[string]map[string][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{kv: map[string]map[string][]byte{}} }

func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errorf(ErrClosed, "memory store")
	}
	return nil
}

func cloneVersion(v Version) *Version {
	v.Intent = slices.Clone(v.Intent)
	return &v
}

// Current implements Store.
func (m *Memory) Current(ctx context.Context) (*Version, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if len(m.versions) == 0 {
		return nil, errorf(ErrNotFound, "no intent stored")
	}
	return cloneVersion(m.versions[len(m.versions)-1]), nil
}

// Version implements Store.
func (m *Memory) Version(ctx context.Context, n uint64) (*Version, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if n == 0 || n > uint64(len(m.versions)) {
		return nil, errorf(ErrNotFound, "intent version %d", n)
	}
	return cloneVersion(m.versions[n-1]), nil
}

// Commit implements Store.
func (m *Memory) Commit(ctx context.Context, c Change) (*Version, *Event, error) {
	if err := checkChange(&c); err != nil {
		return nil, nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	cur := uint64(len(m.versions))
	if c.Base != cur {
		return nil, nil, errorf(ErrConflict, "change based on version %d, current is %d", c.Base, cur)
	}
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	v := Version{Number: cur + 1, Intent: slices.Clone(c.Intent), Time: c.Time, Actor: c.Actor}
	ev := Event{Seq: uint64(len(m.events)) + 1, Time: c.Time, Actor: c.Actor, Operation: c.Operation,
		Summary: c.Summary, Before: cur, After: v.Number, Undoes: c.Undoes}
	m.versions = append(m.versions, v)
	m.events = append(m.events, ev)
	return cloneVersion(v), &ev, nil
}

// History implements Store.
func (m *Memory) History(ctx context.Context, q Query) ([]Event, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Event
	for i := len(m.events) - 1; i >= 0; i-- {
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
		if q.Before > 0 && m.events[i].Seq >= q.Before {
			continue
		}
		out = append(out, m.events[i])
	}
	return out, nil
}

// Record implements Store.
func (m *Memory) Record(ctx context.Context, r Record) (*Event, error) {
	if err := CheckRecord(&r); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ev := RecordEvent(r, uint64(len(m.events))+1, uint64(len(m.versions)))
	m.events = append(m.events, ev)
	return &ev, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, ns, key string) ([]byte, error) {
	if err := checkKey(ns, key); err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	v, ok := m.kv[ns][key]
	if !ok {
		return nil, errorf(ErrNotFound, "key %q in namespace %q", key, ns)
	}
	return slices.Clone(v), nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, ns, key string, value []byte) error {
	if err := checkKey(ns, key); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.kv[ns] == nil {
		m.kv[ns] = map[string][]byte{}
	}
	m.kv[ns][key] = append([]byte{}, value...)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, ns, key string) error {
	if err := checkKey(ns, key); err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.kv[ns], key)
	return nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, ns string) ([]KV, error) {
	if ns == "" {
		return nil, errorf(ErrInvalid, "empty namespace")
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []KV
	for k, v := range m.kv[ns] {
		out = append(out, KV{Key: k, Value: slices.Clone(v)})
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Close implements Store. Later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
