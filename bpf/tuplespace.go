//go:build linux

package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// tupleSpace is what the writers of gray_rules (rules.go) and gray_rules_v6
// (rules6.go) keep and do alike: the rules by identity, the masks in use,
// the rule ids (counter cells and store keys), the store and the counters,
// and the steps of an insert, modify or delete around the map writes. The
// map writes themselves, whose order keeps a packet from seeing half a
// change, are each table's own: the place and unplace functions the caller
// passes, and its writeHead.
//
// R is the rule type, K the key type of masked values and masks, M the mask.
type tupleSpace[R, K comparable, M tssMaskOf[R, K]] struct {
	kind     ruleKind[R, K]
	what     string    // the rules' name in errors: "gray rule", "gray rule v6"
	maxMasks int       // the distinct masks a packet may walk
	store    *ebpf.Map // id -> definition, for rebuild: rule_store, rule6_store
	counters *ebpf.Map // by id: rule_counters, rule6_counters
	ids      slots
	rules    map[R]*tssEntry[R] // by identity (values already masked)
	masks    map[K]M            // by mask
}

// ruleKind is what a tupleSpace needs to know of its rule type R, whose keys
// are K.
type ruleKind[R, K any] interface {
	identity(r R) R                // what P4Runtime knows r by: model.RuleID
	normalize(r R) R               // r with its identity's masked values
	valid(r R) error               // ErrInvalid, saying why
	keys(r R) (value, mask K)      // r's masked value and mask
	priority(r R) int32            // larger wins
	definition(r R, id uint32) any // what the store holds of r with id
}

// tssMaskOf is a mask of a tupleSpace: its groups, by masked value.
type tssMaskOf[R, K any] interface {
	head(value K) *tssEntry[R] // the best rule of value's group
}

// tssEntry is an installed rule and its id.
type tssEntry[R any] struct {
	id   uint32
	rule R // normalized
}

func newTupleSpace[R, K comparable, M tssMaskOf[R, K]](kind ruleKind[R, K], what string, maxMasks, size int,
	store, counters *ebpf.Map) tupleSpace[R, K, M] {
	return tupleSpace[R, K, M]{kind: kind, what: what, maxMasks: maxMasks, store: store, counters: counters,
		ids: newSlots(size), rules: map[R]*tssEntry[R]{}, masks: map[K]M{}}
}

// check normalizes r and checks it: the rule to write, its identity, its
// masked value and its mask.
func (s *tupleSpace[R, K, M]) check(r R) (R, R, K, K, error) {
	r = s.kind.normalize(r)
	value, mask := s.kind.keys(r)
	if err := s.kind.valid(r); err != nil {
		return r, r, value, mask, fmt.Errorf("bpf: %s: %w", s.what, err)
	}
	return r, s.kind.identity(r), value, mask, nil
}

// insert adds rule r under d's lock: ErrExists if a rule of its identity is
// installed, ErrFull past maxMasks masks or the ids. It takes an id, zeroes
// its counter and stores r's definition, then place writes the table's maps
// and records e (m is nil for a mask not in use yet). On place's error, which
// has undone what it wrote, the id is given back.
func (s *tupleSpace[R, K, M]) insert(d *Dataplane, r R, place func(e *tssEntry[R], m M, value, mask K) error) error {
	r, rid, value, mask, err := s.check(r)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := s.rules[rid]; ok {
		return fmt.Errorf("bpf: %s %+v: %w", s.what, rid, ErrExists)
	}
	m, ok := s.masks[mask]
	if !ok && len(s.masks) >= s.maxMasks {
		return fmt.Errorf("bpf: %s: %w: %d distinct masks in use (the tuple-space bound)", s.what, ErrFull, s.maxMasks)
	}
	id, ok := s.ids.alloc()
	if !ok {
		return fmt.Errorf("bpf: %s: %w", s.what, ErrFull)
	}
	err = d.zero(s.counters, id)
	if err == nil {
		err = s.write(id, r)
	}
	if err == nil {
		err = place(&tssEntry[R]{id: id, rule: r}, m, value, mask)
	}
	if err != nil {
		_ = s.store.Delete(id)
		s.ids.free(id)
		return err
	}
	return nil
}

// modify changes the action of the installed rule of r's identity under d's
// lock: its definition in the store, then, if it heads its group, the
// group's entry (writeHead). Its counter keeps counting.
func (s *tupleSpace[R, K, M]) modify(d *Dataplane, r R, writeHead func(m M, value K) error) error {
	r, rid, value, mask, err := s.check(r)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := s.find(rid)
	if err != nil {
		return err
	}
	if err := s.write(e.id, r); err != nil {
		return err
	}
	e.rule = r
	if m := s.masks[mask]; m.head(value) == e {
		return writeHead(m, value)
	}
	return nil
}

// delete removes the installed rule of r's identity (r's action is not read)
// under d's lock: unplace writes the table's maps and forgets it, then its
// definition leaves the store and its id is free.
func (s *tupleSpace[R, K, M]) delete(d *Dataplane, r R, unplace func(e *tssEntry[R], m M, value, mask K) error) error {
	rid := s.kind.identity(r)
	value, mask := s.kind.keys(rid)
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := s.find(rid)
	if err != nil {
		return err
	}
	if err := unplace(e, s.masks[mask], value, mask); err != nil {
		return err
	}
	if err := s.store.Delete(e.id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: %s: %s: %w", s.what, s.store, err)
	}
	s.ids.free(e.id)
	return nil
}

// find returns the installed rule of identity rid.
func (s *tupleSpace[R, K, M]) find(rid R) (*tssEntry[R], error) {
	e, ok := s.rules[rid]
	if !ok {
		return nil, fmt.Errorf("bpf: %s %+v: %w", s.what, rid, ErrNotFound)
	}
	return e, nil
}

// write stores the definition of rule r with id.
func (s *tupleSpace[R, K, M]) write(id uint32, r R) error {
	if err := s.store.Update(id, s.kind.definition(r, id), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: %s: %s: %w", s.what, s.store, err)
	}
	return nil
}

// counter reads the direct counter of the installed rule of r's identity.
func (s *tupleSpace[R, K, M]) counter(d *Dataplane, r R) (Counter, error) {
	d.mu.Lock()
	e, err := s.find(s.kind.identity(r))
	d.mu.Unlock()
	if err != nil {
		return Counter{}, err
	}
	return d.sum(s.counters, e.id)
}

// setCounter sets the direct counter of the installed rule of r's identity.
func (s *tupleSpace[R, K, M]) setCounter(d *Dataplane, r R, c Counter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := s.find(s.kind.identity(r))
	if err != nil {
		return err
	}
	return d.set(s.counters, e.id, c)
}

// list returns every rule, shadowed ones included, best priority first.
func (s *tupleSpace[R, K, M]) list(d *Dataplane) []R {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]R, 0, len(s.rules))
	for _, e := range s.rules {
		out = append(out, e.rule)
	}
	slices.SortFunc(out, func(x, y R) int { return cmp.Compare(s.kind.priority(y), s.kind.priority(x)) })
	return out
}

// sortGroup orders a group best first; equals by id, the order they were
// written in.
func (s *tupleSpace[R, K, M]) sortGroup(g []*tssEntry[R]) {
	slices.SortFunc(g, func(x, y *tssEntry[R]) int {
		return cmp.Or(cmp.Compare(s.kind.priority(y.rule), s.kind.priority(x.rule)), cmp.Compare(x.id, y.id))
	})
}

// dropStrays deletes the entries of m no rule accounts for (want), left by
// a process that died half-way through a write.
func dropStrays[K comparable, V any](m *ebpf.Map, want map[K]bool) error {
	var k K
	var v V
	var strays []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			strays = append(strays, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range strays {
		if err := m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}
