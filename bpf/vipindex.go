//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/internal/vipindex"
)

// vip_index: the IPv4 VIPs as packets read them (ABI 15). The vip hash
// stays the loader's record; packets read this open-addressed array instead
// (one inlined array lookup and a few compares, no jhash and bucket walk).
// An address lives in one of the vipProbe cells from its home cell, which
// packets and this file compute alike (vipHome). A cell is struct vip_cell:
// addr, live, then the vip value; the loader writes it through a memory
// mapping one aligned 32-bit word at a time, and a packet reads addr and
// live as one 64-bit word:
//
//	publish: value words, addr, then live = 1 (the cell was not live)
//	modify:  the vip_id/default_pool word (one store; the counter slot
//	         never changes while the entry lives)
//	delete:  live = 0, the cell quarantined
//
// A quarantined cell is rewritten only after an RCU grace period, waited for
// once for all of them when an address's window has no free cell left, so a
// packet that matched a cell never reads another VIP's value in it.

// Sizes of vip_index (VIP_INDEX_SIZE, VIP_PROBE): the model's, which the
// controller checks plans with (internal/vipindex).
const (
	vipIndexSize = vipindex.Size
	vipProbe     = vipindex.Probe
)

// The cell layout is the generated one (a compile-time check of the size).
var _ = [1]struct{}{}[len(graygwVipIndex{}.Cells)-vipIndexSize]

// Offsets in struct vip_index.
var (
	vipCellLen  = int64(unsafe.Sizeof(graygwVipIndex{}.Cells[0]))
	vipAddrOff  = int64(unsafe.Offsetof(graygwVipIndex{}.Cells[0].Addr))
	vipLiveOff  = int64(unsafe.Offsetof(graygwVipIndex{}.Cells[0].Live))
	vipValueOff = int64(unsafe.Offsetof(graygwVipIndex{}.Cells[0].V))
	vipSlotOff  = vipValueOff + int64(unsafe.Offsetof(graygwVipValue{}.Slot))
)

// vipHome is the first cell of addr's window (vip_of in graygw.c): the
// model's function itself, so the controller's pre-commit check
// (controller/engine, vipOverflow) sees the windows this file fills.
var vipHome = vipindex.Home

// vipIndex is the Go side of vip_index.
type vipIndex struct {
	mem   *ebpf.Memory
	at    map[uint32]uint32 // published address -> cell
	state [vipIndexSize]slotState
}

// vipPublish makes packets to addr find v: in place when addr has a cell
// holding v's counter slot, else in a free cell of its window.
func (d *Dataplane) vipPublish(addr uint32, v graygwVipValue) error {
	x := &d.vidx
	if c, ok := x.at[addr]; ok && x.slotOf(c) == v.Slot {
		return x.word(c, vipValueOff, idPoolWord(v))
	}
	c, err := d.allocVIPCell(addr)
	if err != nil {
		return err
	}
	for _, w := range []struct {
		off int64
		v   uint32
	}{{vipValueOff, idPoolWord(v)}, {vipSlotOff, v.Slot}, {vipAddrOff, addr}, {vipLiveOff, 1}} {
		if err := x.word(c, w.off, w.v); err != nil {
			x.state[c] = slotQuarantine // may be half written: not free
			return err
		}
	}
	if old, ok := x.at[addr]; ok {
		if err := x.unpublishCell(old); err != nil {
			return err
		}
	}
	x.at[addr] = c
	return nil
}

// vipUnpublish hides addr from packets and quarantines its cell.
func (d *Dataplane) vipUnpublish(addr uint32) error {
	if c, ok := d.vidx.at[addr]; ok {
		if err := d.vidx.unpublishCell(c); err != nil {
			return err
		}
		delete(d.vidx.at, addr)
	}
	return nil
}

func (x *vipIndex) unpublishCell(c uint32) error {
	if err := x.word(c, vipLiveOff, 0); err != nil {
		return err
	}
	x.state[c] = slotQuarantine
	return nil
}

// allocVIPCell takes the first free cell of addr's window, waiting for a
// grace period first if only quarantined ones are left there.
func (d *Dataplane) allocVIPCell(addr uint32) (uint32, error) {
	x := &d.vidx
	home := vipHome(addr)
	for pass := range 2 {
		for i := range uint32(vipProbe) {
			c := (home + i) % vipIndexSize
			if x.state[c] == slotFree {
				x.state[c] = slotUsed
				return c, nil
			}
		}
		if pass == 1 {
			break
		}
		if err := d.grace(); err != nil {
			return 0, err
		}
		for c, s := range x.state {
			if s == slotQuarantine {
				x.state[c] = slotFree
			}
		}
	}
	return 0, fmt.Errorf("vip_index: %w: the %d cells of its window are taken", ErrFull, vipProbe)
}

// rebuildVIPIndex brings vip_index in line with the vip hash under running
// packets: a live cell in its address's window holding the hash's value is
// kept; every other entry is published afresh, then stale cells (another
// value, an address the hash lacks, a second cell of one address) are
// hidden. Cells not kept start quarantined, but on maps this Open created.
func (d *Dataplane) rebuildVIPIndex() error {
	mem, err := d.objs.VipIndex.Memory()
	if err != nil {
		return fmt.Errorf("bpf: vip_index: %w", err)
	}
	d.vidx = vipIndex{mem: mem, at: map[uint32]uint32{}}
	x := &d.vidx
	want := map[uint32]graygwVipValue{}
	var k uint32
	var v graygwVipValue
	for it := d.objs.Vip.Iterate(); it.Next(&k, &v); {
		want[k] = v
	}
	var t graygwVipIndex
	if _, err := mem.ReadAt(unsafe.Slice((*byte)(unsafe.Pointer(&t)), unsafe.Sizeof(t)), 0); err != nil {
		return fmt.Errorf("bpf: vip_index: %w", err)
	}
	var stale []uint32
	for c := range t.Cells {
		cell := &t.Cells[c]
		x.state[c] = slotQuarantine
		if d.fresh {
			x.state[c] = slotFree
		}
		if cell.Live == 0 {
			continue
		}
		w, ok := want[cell.Addr]
		_, dup := x.at[cell.Addr]
		if ok && !dup && cell.V == w && (uint32(c)-vipHome(cell.Addr))%vipIndexSize < vipProbe {
			x.at[cell.Addr], x.state[c] = uint32(c), slotUsed
			continue
		}
		x.state[c] = slotUsed // hidden below, after its replacement is published
		stale = append(stale, uint32(c))
	}
	for a, w := range want {
		if _, ok := x.at[a]; ok {
			continue
		}
		if err := d.vipPublish(a, w); err != nil {
			return fmt.Errorf("bpf: rebuild vip_index: %w", err)
		}
	}
	for _, c := range stale {
		if err := x.unpublishCell(c); err != nil {
			return fmt.Errorf("bpf: rebuild vip_index: %w", err)
		}
	}
	return nil
}

// word stores one aligned 32-bit word of cell c (one store: Go's copy moves
// 4 aligned bytes at once, as cilium/ebpf's Memory documents).
func (x *vipIndex) word(c uint32, off int64, v uint32) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	if _, err := x.mem.WriteAt(b[:], int64(c)*vipCellLen+off); err != nil {
		return fmt.Errorf("vip_index: %w", err)
	}
	return nil
}

// slotOf reads cell c's counter slot back.
func (x *vipIndex) slotOf(c uint32) uint32 {
	var b [4]byte
	if _, err := x.mem.ReadAt(b[:], int64(c)*vipCellLen+vipSlotOff); err != nil {
		return ^uint32(0)
	}
	return binary.NativeEndian.Uint32(b[:])
}

// idPoolWord is the vip value's first word: vip_id, then default_pool.
func idPoolWord(v graygwVipValue) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint16(b[:], v.VipId)
	binary.NativeEndian.PutUint16(b[2:], v.DefaultPool)
	return binary.NativeEndian.Uint32(b[:])
}
