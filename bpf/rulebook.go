//go:build linux

package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// ruleBook is what both tuple spaces (rules.go, rules6.go) keep of their
// rules apart from the masks: the ids (counter cells and store keys) and the
// rules by identity. R is model.GrayRule or model.GrayRuleV6.
type ruleBook[R comparable] struct {
	what     string              // the rules' name in errors: "gray rule", "gray rule v6"
	priority func(R) int32       // R's Priority
	def      func(R, uint32) any // what the store holds of a rule with an id
	store    *ebpf.Map           // rule_store, rule6_store: id -> definition, for rebuild
	counters *ebpf.Map           // rule_counters, rule6_counters: by id
	ids      slots               // rule ids: counter cells and store keys
	rules    map[R]*tssEntry[R]  // by identity (Value already masked)
}

// tssEntry is an installed rule and its id.
type tssEntry[R any] struct {
	id   uint32
	rule R // normalized
}

func newRuleBook[R comparable](what string, store, counters *ebpf.Map, size int,
	priority func(R) int32, def func(R, uint32) any) ruleBook[R] {
	return ruleBook[R]{what: what, priority: priority, def: def, store: store, counters: counters,
		ids: newSlots(size), rules: map[R]*tssEntry[R]{}}
}

// find returns the installed rule of identity rid.
func (b *ruleBook[R]) find(rid R) (*tssEntry[R], error) {
	e, ok := b.rules[rid]
	if !ok {
		return nil, fmt.Errorf("bpf: %s %+v: %w", b.what, rid, ErrNotFound)
	}
	return e, nil
}

// add takes an id for the new rule r of identity rid, zeroes its counter and
// stores its definition: ErrExists if rid is installed, ErrFull if no id is
// left. On error nothing is taken. The caller records the rule once its
// entry is written.
func (b *ruleBook[R]) add(d *Dataplane, rid, r R) (uint32, error) {
	if _, ok := b.rules[rid]; ok {
		return 0, fmt.Errorf("bpf: %s %+v: %w", b.what, rid, ErrExists)
	}
	id, ok := b.ids.alloc()
	if !ok {
		return 0, fmt.Errorf("bpf: %s: %w", b.what, ErrFull)
	}
	err := d.zero(b.counters, id)
	if err == nil {
		err = b.write(id, b.def(r, id))
	}
	if err != nil {
		b.ids.free(id)
		return 0, err
	}
	return id, nil
}

// modify stores the new definition of the installed rule rid, which
// becomes r; the caller rewrites its entry if it heads its group.
func (b *ruleBook[R]) modify(rid, r R) (*tssEntry[R], error) {
	e, err := b.find(rid)
	if err != nil {
		return nil, err
	}
	if err := b.write(e.id, b.def(r, e.id)); err != nil {
		return nil, err
	}
	e.rule = r
	return e, nil
}

// write stores the definition of rule id.
func (b *ruleBook[R]) write(id uint32, def any) error {
	if err := b.store.Update(id, def, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: %s: %s: %w", b.what, b.store, err)
	}
	return nil
}

// remove deletes the definition of id, which is free again.
func (b *ruleBook[R]) remove(id uint32) error {
	if err := b.store.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: %s: %s: %w", b.what, b.store, err)
	}
	b.ids.free(id)
	return nil
}

// release gives back the id of a rule add took that did not get installed.
func (b *ruleBook[R]) release(id uint32) {
	_ = b.store.Delete(id)
	b.ids.free(id)
}

// counter reads the direct counter of the installed rule rid. It locks d.
func (b *ruleBook[R]) counter(d *Dataplane, rid R) (Counter, error) {
	d.mu.Lock()
	e, err := b.find(rid)
	d.mu.Unlock()
	if err != nil {
		return Counter{}, err
	}
	return d.sum(b.counters, e.id)
}

// setCounter sets the direct counter of the installed rule rid. It locks d.
func (b *ruleBook[R]) setCounter(d *Dataplane, rid R, c Counter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := b.find(rid)
	if err != nil {
		return err
	}
	return d.set(b.counters, e.id, c)
}

// list returns every rule, shadowed ones included, best priority first.
func (b *ruleBook[R]) list() []R {
	out := make([]R, 0, len(b.rules))
	for _, e := range b.rules {
		out = append(out, e.rule)
	}
	slices.SortFunc(out, func(x, y R) int { return cmp.Compare(b.priority(y), b.priority(x)) })
	return out
}

// byPriority orders a group best first; equals by id, the order they were
// written in.
func byPriority[R any](priority func(R) int32) func(x, y *tssEntry[R]) int {
	return func(x, y *tssEntry[R]) int {
		return cmp.Or(cmp.Compare(priority(y.rule), priority(x.rule)), cmp.Compare(x.id, y.id))
	}
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
