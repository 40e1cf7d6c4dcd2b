//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// Packets read a backend through two arrays: backend_ver (one word per
// backend id: cell+1, 0 for no backend) and backend_cells (the values). The
// backends hash holds what the control plane wrote, for read-back and
// rebuild; the program never reads it. A write never touches a cell a packet
// may be reading:
//
//	set:    write the value to a free cell, repoint backend_ver[id], quarantine the old cell
//	delete: zero backend_ver[id], quarantine the cell
//
// A quarantined cell becomes free after an RCU grace period, waited for once
// for all of them when no free cell is left. There are twice as many cells as
// backends, so that is at most once per BackendTableSize modifications.

const (
	// BackendIDs is the number of backend ids (16 bits): backend_ver has one word each.
	BackendIDs   = 1 << 16
	backendCells = 2 * pipeline.BackendTableSize
)

// beCells is the Go side of backend_ver and backend_cells.
type beCells struct {
	of    map[uint16]uint32 // backend id -> its published cell
	free  []uint32          // cells no word names, no packet reads
	quar  []uint32          // cells no word names since the last grace period
	state []slotState       // by cell
}

func newBECells() beCells {
	c := beCells{of: map[uint16]uint32{}, state: make([]slotState, backendCells)}
	for i := backendCells - 1; i >= 0; i-- {
		c.free = append(c.free, uint32(i))
	}
	return c
}

func (c *beCells) quarantine(cell uint32) {
	c.state[cell] = slotQuarantine
	c.quar = append(c.quar, cell)
}

// allocCell takes a free cell, waiting for a grace period first if only
// quarantined ones are left.
func (d *Dataplane) allocCell() (uint32, error) {
	c := &d.cells
	if len(c.free) == 0 && len(c.quar) > 0 {
		if err := d.grace(); err != nil {
			return 0, err
		}
		for _, q := range c.quar {
			c.state[q] = slotFree
		}
		c.free, c.quar = append(c.free, c.quar...), nil
	}
	if len(c.free) == 0 {
		return 0, fmt.Errorf("%w: %d backend cells in use", ErrFull, backendCells)
	}
	cell := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.state[cell] = slotUsed
	return cell, nil
}

// publishBackend makes v the value packets see for id: a fresh cell, then
// the word. The old cell, if any, is quarantined.
func (d *Dataplane) publishBackend(id uint16, v *graygwBackend) error {
	c := &d.cells
	cell, err := d.allocCell()
	if err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	err = d.objs.BackendCells.Update(cell, v, ebpf.UpdateAny)
	if err == nil {
		err = d.objs.BackendVer.Update(uint32(id), cell+1, ebpf.UpdateAny)
	}
	if err != nil {
		c.state[cell] = slotFree // never named: no packet read it
		c.free = append(c.free, cell)
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	if old, ok := c.of[id]; ok {
		c.quarantine(old)
	}
	c.of[id] = cell
	return nil
}

// unpublishBackend zeroes the word of id: its packets drop NO_BACKEND.
func (d *Dataplane) unpublishBackend(id uint16) error {
	c := &d.cells
	cell, ok := c.of[id]
	if !ok {
		return nil
	}
	if err := d.objs.BackendVer.Update(uint32(id), uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	delete(c.of, id)
	c.quarantine(cell)
	return nil
}

// rebuildBackends recovers the cell allocation from backend_ver and
// backend_cells against want (the backends hash) and repairs what a loader
// killed between two writes leaves: a word naming no cell, another id's
// cell or a stale value is republished; a word for an id the hash lacks is
// zeroed. Cells no word keeps start quarantined: a packet of the previous
// process may still be reading one.
func (d *Dataplane) rebuildBackends(want map[uint16]graygwBackend) error {
	d.cells = newBECells()
	c := &d.cells
	var ver []uint32
	if d.fresh {
		ver = make([]uint32, BackendIDs)
	} else {
		var err error
		if ver, err = readArray(d.objs.BackendVer, BackendIDs); err != nil {
			return fmt.Errorf("bpf: rebuild backend_ver: %w", err)
		}
		c.free = nil
	}
	for id, w := range ver {
		v, ok := want[uint16(id)]
		if w == 0 || !ok || w > backendCells || c.state[w-1] == slotUsed {
			continue
		}
		var have graygwBackend
		if err := d.objs.BackendCells.Lookup(w-1, &have); err != nil {
			return fmt.Errorf("bpf: rebuild backend_cells: %w", err)
		}
		if have == v {
			c.of[uint16(id)], c.state[w-1] = w-1, slotUsed
		}
	}
	if !d.fresh {
		for cell := range uint32(backendCells) {
			if c.state[cell] != slotUsed {
				c.quarantine(cell)
			}
		}
	}
	for id, w := range ver {
		if _, kept := c.of[uint16(id)]; kept || w == 0 {
			continue
		}
		if _, ok := want[uint16(id)]; !ok {
			if err := d.objs.BackendVer.Update(uint32(id), uint32(0), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("bpf: rebuild backend_ver %d: %w", id, err)
			}
		}
	}
	for id, v := range want {
		if _, kept := c.of[id]; kept {
			continue
		}
		if err := d.publishBackend(id, &v); err != nil {
			if errors.Is(err, ErrFull) {
				return fmt.Errorf("bpf: rebuild: %w (graygw-agent --repin)", err)
			}
			return err
		}
	}
	return nil
}
