//go:build linux

package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// Packets read a backend through two arrays: select_cells (one word per
// backend_select cell: the cell+1 of the backend it names, 0 for none; see
// pools.go) and backend_cells (the values). backend_ver (one word per
// backend id: cell+1, 0 for no backend) records where each backend lives.
// The backends hash holds what the control plane wrote, for read-back and
// rebuild; the program never reads it nor backend_ver. A write never
// touches a cell a packet may be reading:
//
//	set:    write the value to a free cell, repoint backend_ver[id] and the
//	        select_cells words naming id, quarantine the old cell
//	delete: zero backend_ver[id] and the select_cells words naming id,
//	        quarantine the cell
//
// Each packet reads one select_cells word, so it sees a backend's old value
// or its new one whole, while the words naming it are rewritten one by one.
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
	cellPool
	of map[uint16]uint32 // backend id -> its published cell
}

func newBECells() beCells {
	return beCells{cellPool: newCellPool("backend", backendCells), of: map[uint16]uint32{}}
}

// publishBackend makes v the value packets see for id: a fresh cell, then
// the word. The old cell, if any, is quarantined.
func (d *Dataplane) publishBackend(id uint16, v *graygwBackend) error {
	c := &d.cells
	cell, err := d.publish(&c.cellPool, d.objs.BackendCells, d.objs.BackendVer, uint32(id), v)
	if err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
	old, had := c.of[id]
	c.of[id] = cell
	err = d.repointSelect(id)
	if had {
		c.quarantine(old) // also on an error: a word may name the new cell
	}
	if err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
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
	if err := d.repointSelect(id); err != nil {
		return fmt.Errorf("bpf: backend %d: %w", id, err)
	}
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
	ver, err := d.readWords(d.objs.BackendVer, BackendIDs)
	if err != nil {
		return fmt.Errorf("bpf: rebuild backend_ver: %w", err)
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
		c.free = nil
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
