//go:build linux

package bpf

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// cellPool allocates the cells of a word-and-cells pair of arrays
// (backend_ver and backend_cells, rule_index and rule_cells): a word names
// cell+1, 0 for none. A cell no word names any more is quarantined, as a
// packet may still be reading it, and freed after an RCU grace period, waited
// for once for all of them when no free cell is left.
type cellPool struct {
	what  string      // what the cells hold, for errors
	free  []uint32    // cells no word names, no packet reads
	quar  []uint32    // cells no word names since the last grace period
	state []slotState // by cell
}

// newCellPool returns n free cells of what, handed out lowest first.
func newCellPool(what string, n int) cellPool {
	p := cellPool{what: what, state: make([]slotState, n)}
	p.refill()
	return p
}

// refill makes every slotFree cell free again, lowest handed out first.
func (p *cellPool) refill() {
	p.free = p.free[:0]
	for i := len(p.state) - 1; i >= 0; i-- {
		if p.state[i] == slotFree {
			p.free = append(p.free, uint32(i))
		}
	}
}

func (p *cellPool) quarantine(cell uint32) {
	p.state[cell] = slotQuarantine
	p.quar = append(p.quar, cell)
}

// release gives back a cell no word ever named: no packet read it.
func (p *cellPool) release(cell uint32) {
	p.state[cell] = slotFree
	p.free = append(p.free, cell)
}

// alloc takes a free cell, waiting for a grace period first if only
// quarantined ones are left.
func (p *cellPool) alloc(grace func() error) (uint32, error) {
	if len(p.free) == 0 && len(p.quar) > 0 {
		if err := grace(); err != nil {
			return 0, err
		}
		for _, q := range p.quar {
			p.state[q] = slotFree
		}
		p.free, p.quar = append(p.free, p.quar...), nil
	}
	if len(p.free) == 0 {
		return 0, fmt.Errorf("%w: %d %s cells in use", ErrFull, len(p.state), p.what)
	}
	cell := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.state[cell] = slotUsed
	return cell, nil
}

// publish writes v to a fresh cell of cells, then points word of words at
// it: a packet reading the word finds the value whole. The caller
// quarantines the cell the word named before.
func (d *Dataplane) publish(p *cellPool, cells, words *ebpf.Map, word uint32, v any) (uint32, error) {
	cell, err := p.alloc(d.grace)
	if err != nil {
		return 0, err
	}
	err = cells.Update(cell, v, ebpf.UpdateAny)
	if err == nil {
		err = words.Update(word, cell+1, ebpf.UpdateAny)
	}
	if err != nil {
		p.release(cell)
		return 0, err
	}
	return cell, nil
}

// lowestFree returns the lowest index whose state is slotFree. When there
// is none but some are quarantined, it waits for a grace period, frees them
// and looks again; ok is false when none is free even then.
func (d *Dataplane) lowestFree(state []slotState) (i uint32, ok bool, err error) {
	if i := slices.Index(state, slotFree); i >= 0 {
		return uint32(i), true, nil
	}
	if !slices.Contains(state, slotQuarantine) {
		return 0, false, nil
	}
	if err := d.grace(); err != nil {
		return 0, false, err
	}
	for i, s := range state {
		if s == slotQuarantine {
			state[i] = slotFree
		}
	}
	return uint32(slices.Index(state, slotFree)), true, nil
}

// readWords reads the n words of an array of cell+1 words; a fresh map's are
// all 0, without a read.
func (d *Dataplane) readWords(words *ebpf.Map, n int) ([]uint32, error) {
	if d.fresh {
		return make([]uint32, n), nil
	}
	return readArray(words, n)
}
