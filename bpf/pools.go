//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// backend_select is exact on (pool_id:16, bucket:16), any pool id. The program
// holds it in two arrays: pool_slot (one word per pool id: slot+1, 0 when the
// pool owns no buckets) and backend_select (MaxPools slots of pipeline.Buckets
// cells, SELECT_VALID|backend_id, 0 empty). The loader gives a pool a slot with
// its first bucket and takes it back with its last:
//
//	alloc: a free slot whose cells are empty, write the cells, publish pool_slot[pool]
//	free:  unpublish pool_slot[pool], clear the cells, quarantine the slot
//
// A packet reads pool_slot then one cell. One that read pool_slot just before
// an unpublish may read the cell after it: it sees the old pool's cell or an
// empty one, as if it came a moment earlier or later. The quarantine keeps such
// a packet from reading another pool's cells: a freed slot is handed out again
// only after an RCU grace period (every program run that could hold the old
// mapping has ended), waited for once for all the slots freed since the last
// wait, and only when no never-quarantined slot is left.
//
// Packets do not read backend_select: they read select_cells, its twin whose
// word is the named backend's backend_cells cell+1 (0 for an empty cell or a
// backend not written yet), so one load finds the bucket's backend. The
// loader writes a cell's two words together, and repoints a backend's
// select_cells words when the backend moves to a new cell (repointSelect).

const (
	// PoolIDs is the number of pool ids (16 bits): pool_slot has one entry each.
	PoolIDs   = 1 << 16
	cellWords = pipeline.Buckets / 64
)

type slotState uint8

const (
	slotFree       slotState = iota // owned by no pool; cells empty unless cells says otherwise
	slotQuarantine                  // unpublished, a grace period not yet waited for
	slotUsed                        // published in pool_slot for one pool
)

// selectSlots is the Go side of pool_slot, backend_select and select_cells.
type selectSlots struct {
	of    map[uint16]uint32 // published pool -> slot
	state [MaxPools]slotState
	cells [MaxPools][cellWords]uint64        // non-empty cells of each slot, as written
	n     [MaxPools]int                      // non-empty cells of each slot
	ids   [MaxPools][pipeline.Buckets]uint16 // the backend id of each non-empty cell
	users [BackendIDs]uint32                 // non-empty cells naming each backend id
}

func newSelectSlots() selectSlots { return selectSlots{of: map[uint16]uint32{}} }

func (s *selectSlots) filled(slot uint32, b int) bool { return s.cells[slot][b/64]&(1<<(b%64)) != 0 }

// mark records cell b of slot as naming backend id (on), or as empty.
func (s *selectSlots) mark(slot uint32, b int, id uint16, on bool) {
	if s.filled(slot, b) {
		s.cells[slot][b/64] &^= 1 << (b % 64)
		s.n[slot]--
		s.users[s.ids[slot][b]]--
	}
	if on {
		s.cells[slot][b/64] |= 1 << (b % 64)
		s.n[slot]++
		s.ids[slot][b] = id
		s.users[id]++
	}
}

// naming returns the backend_select indexes of the non-empty cells naming id.
func (s *selectSlots) naming(id uint16) []uint32 {
	var keys []uint32
	for slot := range uint32(MaxPools) {
		if s.n[slot] == 0 {
			continue
		}
		for w, word := range s.cells[slot] {
			for word != 0 {
				b := w*64 + bits.TrailingZeros64(word)
				word &= word - 1
				if s.ids[slot][b] == id {
					keys = append(keys, cellIndex(slot, b))
				}
			}
		}
	}
	return keys
}

// selectWord is the select_cells word of a cell naming backend id: its
// published cell+1, 0 when id has none.
func (d *Dataplane) selectWord(id uint16) uint32 {
	if cell, ok := d.cells.of[id]; ok {
		return cell + 1
	}
	return 0
}

// repointSelect rewrites the select_cells words of the cells naming id to
// its current cell (or to 0 when it has none): after a backend's new cell is
// published, before its old one is quarantined.
func (d *Dataplane) repointSelect(id uint16) error {
	if d.sel.users[id] == 0 {
		return nil
	}
	keys := d.sel.naming(id)
	vals := make([]uint32, len(keys))
	for i := range vals {
		vals[i] = d.selectWord(id)
	}
	if _, err := d.objs.SelectCells.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("select_cells: %w", err)
	}
	return nil
}

func cellIndex(slot uint32, b int) uint32 { return slot*pipeline.Buckets + uint32(b) }

// writeCells writes ids into buckets first.. of slot, in one batch update of
// backend_select, then of select_cells for the cells written. The
// bookkeeping follows what the kernel reports as written, also on an error.
func (d *Dataplane) writeCells(slot uint32, first int, ids []uint16) error {
	keys := make([]uint32, len(ids))
	vals := make([]uint32, len(ids))
	words := make([]uint32, len(ids))
	for i, id := range ids {
		keys[i], vals[i], words[i] = cellIndex(slot, first+i), selectValid|uint32(id), d.selectWord(id)
	}
	n, err := d.objs.BackendSelect.BatchUpdate(keys, vals, nil)
	n = min(max(n, 0), len(ids))
	for i := range n {
		d.sel.mark(slot, first+i, ids[i], true)
	}
	if n > 0 {
		if _, werr := d.objs.SelectCells.BatchUpdate(keys[:n], words[:n], nil); werr != nil && err == nil {
			err = fmt.Errorf("select_cells: %w", werr)
		}
	}
	return err
}

// clearCells empties the non-empty cells of slot.
func (d *Dataplane) clearCells(slot uint32) error {
	var keys []uint32
	var buckets []int
	for w, word := range d.sel.cells[slot] {
		for word != 0 {
			b := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			keys, buckets = append(keys, cellIndex(slot, b)), append(buckets, b)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	zeros := make([]uint32, len(keys))
	if _, err := d.objs.SelectCells.BatchUpdate(keys, zeros, nil); err != nil {
		return fmt.Errorf("bpf: select_cells: clear slot %d: %w", slot, err)
	}
	n, err := d.objs.BackendSelect.BatchUpdate(keys, zeros, nil)
	for _, b := range buckets[:min(max(n, 0), len(buckets))] {
		d.sel.mark(slot, b, 0, false)
	}
	if err != nil {
		return fmt.Errorf("bpf: backend_select: clear slot %d: %w", slot, err)
	}
	return nil
}

// allocSlot returns a free slot with empty cells: the lowest never-quarantined
// one, else (after one grace period) the lowest of those freed since. It does
// not take it: the caller marks it used once published.
func (d *Dataplane) allocSlot() (uint32, error) {
	slot, ok, err := d.lowestFree(d.sel.state[:])
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %d pools own buckets (backend_select holds %d)", ErrFull, len(d.sel.of), MaxPools)
	}
	if err := d.clearCells(slot); err != nil { // left over by a failed clear
		return 0, err
	}
	return slot, nil
}

// release unpublishes pool from slot, then clears the slot's cells and
// quarantines it. Once pool_slot is written the pool owns no buckets for
// packets and readers alike; a failed clear is repaired when the slot is
// allocated again, so it is not an error of the caller's operation.
func (d *Dataplane) release(pool uint16, slot uint32) error {
	if err := d.objs.PoolSlot.Update(uint32(pool), uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: pool_slot %d: %w", pool, err)
	}
	delete(d.sel.of, pool)
	d.sel.state[slot] = slotQuarantine
	_ = d.clearCells(slot)
	return nil
}

// SetBucket points bucket of pool at backend id (backend_select).
func (d *Dataplane) SetBucket(pool, bucket, backendID uint16) error {
	return d.SetBuckets(pool, bucket, []uint16{backendID})
}

// SetBuckets points buckets first, first+1, ... of pool at ids, in one batch
// update. Each bucket changes on its own (one word each): write new backends
// before the buckets that name them. Any pool id works; a pool's first buckets
// take one of the MaxPools slots of backend_select (ErrFull when all are
// taken), published to packets only once the buckets are written.
func (d *Dataplane) SetBuckets(pool, first uint16, ids []uint16) error {
	if len(ids) == 0 {
		return nil
	}
	if int(first)+len(ids) > pipeline.Buckets {
		return fmt.Errorf("bpf: backend_select pool %d: %w: buckets %d..%d beyond %d",
			pool, ErrInvalid, first, int(first)+len(ids)-1, pipeline.Buckets-1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if slot, ok := d.sel.of[pool]; ok {
		if err := d.writeCells(slot, int(first), ids); err != nil {
			return fmt.Errorf("bpf: backend_select pool %d: %w", pool, err)
		}
		return nil
	}
	slot, err := d.allocSlot()
	if err != nil {
		return fmt.Errorf("bpf: backend_select pool %d: %w", pool, err)
	}
	err = d.writeCells(slot, int(first), ids)
	if err == nil {
		err = d.objs.PoolSlot.Update(uint32(pool), d.slotWord(pool, slot), ebpf.UpdateAny)
	}
	if err != nil {
		_ = d.clearCells(slot) // never published: no packet read them
		return fmt.Errorf("bpf: backend_select pool %d: %w", pool, err)
	}
	d.sel.of[pool], d.sel.state[slot] = slot, slotUsed
	return nil
}

// DeleteBucket empties a backend_select cell: its packets drop NO_BACKEND.
// ErrNotFound when the cell is empty. The pool's last bucket frees its slot.
func (d *Dataplane) DeleteBucket(pool, bucket uint16) error {
	if int(bucket) >= pipeline.Buckets {
		return fmt.Errorf("bpf: backend_select (%d, %d): %w: bucket < %d", pool, bucket, ErrInvalid, pipeline.Buckets)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, ok := d.sel.of[pool]
	if !ok || !d.sel.filled(slot, int(bucket)) {
		return fmt.Errorf("bpf: backend_select (%d, %d): %w", pool, bucket, ErrNotFound)
	}
	if d.sel.n[slot] == 1 {
		return d.release(pool, slot)
	}
	if err := d.objs.SelectCells.Update(cellIndex(slot, int(bucket)), uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: select_cells (%d, %d): %w", pool, bucket, err)
	}
	if err := d.objs.BackendSelect.Update(cellIndex(slot, int(bucket)), uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: backend_select (%d, %d): %w", pool, bucket, err)
	}
	d.sel.mark(slot, int(bucket), 0, false)
	return nil
}

// ClearPool empties every bucket of pool and frees its slot. A pool without
// buckets is left as it is.
func (d *Dataplane) ClearPool(pool uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, ok := d.sel.of[pool]
	if !ok {
		return nil
	}
	return d.release(pool, slot)
}

// Pools returns the pools that own buckets, sorted.
func (d *Dataplane) Pools() []uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]uint16, 0, len(d.sel.of))
	for p := range d.sel.of {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Buckets returns the backend of every bucket of pool, read from the map;
// ok[b] is false for an empty cell. A pool without buckets has none.
func (d *Dataplane) Buckets(pool uint16) (ids []uint16, ok []bool, err error) {
	ids, ok = make([]uint16, pipeline.Buckets), make([]bool, pipeline.Buckets)
	d.mu.Lock() // the slot cannot change owner while it is read
	defer d.mu.Unlock()
	slot, has := d.sel.of[pool]
	if !has {
		return ids, ok, nil
	}
	// One lookup per cell: a batch read cannot start mid-array, and reading
	// the slots before this one costs more than these lookups.
	for b := range pipeline.Buckets {
		var v uint32
		if err := d.objs.BackendSelect.Lookup(cellIndex(slot, b), &v); err != nil {
			return nil, nil, fmt.Errorf("bpf: backend_select pool %d: %w", pool, err)
		}
		ids[b], ok[b] = uint16(v), v&selectValid != 0
	}
	return ids, ok, nil
}

// readArray reads entries 0..n-1 of an array map of u32 values, in batches.
func readArray(m *ebpf.Map, n int) ([]uint32, error) { return readArrayOf[uint32](m, n) }

func readArrayOf[V uint32 | uint64](m *ebpf.Map, n int) ([]V, error) {
	keys, vals := make([]uint32, n), make([]V, n)
	var cur ebpf.MapBatchCursor
	got := 0
	for got < n {
		c, err := m.BatchLookup(&cur, keys[got:], vals[got:], nil)
		got += max(c, 0)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", m.String(), err)
		}
	}
	for i := range got {
		if keys[i] != uint32(i) {
			return nil, fmt.Errorf("read %s: batch returned key %d at %d", m.String(), keys[i], i)
		}
	}
	if got < n {
		return nil, fmt.Errorf("read %s: %d of %d entries", m.String(), got, n)
	}
	return vals, nil
}

// grace returns once every program run that started before the call has
// ended (an RCU grace period). The kernel waits so on an update of a
// map-in-map from user space (maybe_wait_bpf_programs: "so that userspace
// knows that all programs that could be running use the new map value"; the
// kernel's own selftests use it the same way).
func (d *Dataplane) grace() error {
	if err := d.graceOuter.Update(uint32(0), d.graceInner, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: wait for running programs: %w", err)
	}
	return nil
}

// newGrace creates the two private maps grace updates.
func newGrace() (outer, inner *ebpf.Map, err error) {
	spec := &ebpf.MapSpec{Name: "graygw_grace", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	if inner, err = ebpf.NewMap(spec); err != nil {
		return nil, nil, fmt.Errorf("bpf: grace map: %w", err)
	}
	outer, err = ebpf.NewMap(&ebpf.MapSpec{Name: "graygw_grace_o", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4,
		MaxEntries: 1, InnerMap: spec})
	if err != nil {
		inner.Close()
		return nil, nil, fmt.Errorf("bpf: grace map: %w", err)
	}
	return outer, inner, nil
}

// rebuildPools recovers the slot allocation from pool_slot and backend_select
// and repairs what a loader killed between two writes leaves: a slot with
// cells but published for no pool (cleared), a published pool whose slot is
// out of range or has no cells (unpublished: it had no buckets for packets
// either), a slot published for two pools (the lowest keeps it, the others get
// a copy of its cells in a slot of their own, or are unpublished when none is
// left). Reused slots start quarantined: a packet of the previous process may
// still be reading one. Reading the two arrays takes about 90 ms, so maps
// this Open created are not read.
func (d *Dataplane) rebuildPools() error {
	d.sel = newSelectSlots()
	if d.fresh {
		return nil // maps this Open created: all zero
	}
	ps, err := readArray(d.objs.PoolSlot, PoolIDs)
	if err != nil {
		return fmt.Errorf("bpf: rebuild pool_slot: %w", err)
	}
	cells, err := readArray(d.objs.BackendSelect, MaxPools*pipeline.Buckets)
	if err != nil {
		return fmt.Errorf("bpf: rebuild backend_select: %w", err)
	}
	for i, v := range cells {
		if v != 0 {
			d.sel.mark(uint32(i/pipeline.Buckets), i%pipeline.Buckets, uint16(v), true)
		}
	}
	unpublish := func(pool int) error {
		if err := d.objs.PoolSlot.Update(uint32(pool), uint32(0), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: rebuild pool_slot %d: %w", pool, err)
		}
		return nil
	}
	var dups []int
	for pool, v := range ps {
		s := v & poolSlotMask
		switch {
		case v == 0:
		case s == 0 || s > MaxPools || d.sel.n[s-1] == 0:
			if err := unpublish(pool); err != nil {
				return err
			}
		case d.sel.state[s-1] == slotUsed:
			dups = append(dups, pool)
		default:
			d.sel.of[uint16(pool)], d.sel.state[s-1] = s-1, slotUsed
			if w := d.slotWord(uint16(pool), s-1); w != v { // hash bits of another pool_hash
				if err := d.objs.PoolSlot.Update(uint32(pool), w, ebpf.UpdateAny); err != nil {
					return fmt.Errorf("bpf: rebuild pool_slot %d: %w", pool, err)
				}
			}
		}
	}
	for i := range uint32(MaxPools) {
		if d.sel.state[i] == slotUsed {
			continue
		}
		if err := d.clearCells(i); err != nil {
			return err
		}
		if !d.fresh {
			d.sel.state[i] = slotQuarantine
		}
	}
	for _, pool := range dups {
		src := ps[pool]&poolSlotMask - 1
		slot, err := d.allocSlot()
		if errors.Is(err, ErrFull) {
			if err := unpublish(pool); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for b := 0; b < pipeline.Buckets; b++ { // runs of non-empty cells
			var ids []uint16
			start := b
			for ; b < pipeline.Buckets && d.sel.filled(src, b); b++ {
				ids = append(ids, uint16(cells[cellIndex(src, b)]))
			}
			if len(ids) == 0 {
				continue
			}
			if err := d.writeCells(slot, start, ids); err != nil {
				return fmt.Errorf("bpf: rebuild backend_select: %w", err)
			}
		}
		if err := d.objs.PoolSlot.Update(uint32(pool), d.slotWord(uint16(pool), slot), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: rebuild pool_slot %d: %w", pool, err)
		}
		d.sel.of[uint16(pool)], d.sel.state[slot] = slot, slotUsed
	}
	return nil
}

// rebuildSelectCells brings select_cells in line with backend_select and the
// backend cells, once both are rebuilt: a word differing from what its cell
// names now (an ABI 15 set's new, empty select_cells, or a loader killed
// between two writes) is rewritten, one batch for all.
func (d *Dataplane) rebuildSelectCells() error {
	n := MaxPools * pipeline.Buckets
	have, err := d.readWords(d.objs.SelectCells, n)
	if err != nil {
		return fmt.Errorf("bpf: rebuild select_cells: %w", err)
	}
	var keys, vals []uint32
	for i := range n {
		slot, b := uint32(i/pipeline.Buckets), i%pipeline.Buckets
		var want uint32
		if d.sel.filled(slot, b) {
			want = d.selectWord(d.sel.ids[slot][b])
		}
		if have[i] != want {
			keys, vals = append(keys, uint32(i)), append(vals, want)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if _, err := d.objs.SelectCells.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("bpf: rebuild select_cells: %w", err)
	}
	return nil
}
