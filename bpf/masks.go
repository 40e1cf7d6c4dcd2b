//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
)

// Mask positions. Packets walk the masks in use through gray_masks' one
// value (struct mask_table, one inlined array lookup per packet): len, the
// positions packets walk; max[i], the highest priority among the rules of
// the mask at position i (0: packets skip it); masks[i], the mask packed.
// The loader writes the value through a memory mapping, one aligned word at a
// time, so a rule write that changes a mask's highest priority changes one
// word under running packets, never the whole value. An entry is written
// only while its word is 0:
//
//	new mask:    take a free position, write its entry, raise len, then
//	             (after the mask's first gray_rules entry) its word
//	mask empty:  zero its word, quarantine the position
//
// A quarantined position becomes free after an RCU grace period, waited for
// once for all of them when no free position is left, so no packet still
// reads the entry when it is rewritten. Mask ids are never reused and start
// at 1, so an entry read out of order (arm64) names a mask with no rules.

// Offsets in struct mask_table.
var (
	maskLenOff   = int64(unsafe.Offsetof(graygwMaskTable{}.Len))
	maskMaxOff   = int64(unsafe.Offsetof(graygwMaskTable{}.Max))
	maskEntryOff = int64(unsafe.Offsetof(graygwMaskTable{}.Masks))
	maskEntryLen = int64(unsafe.Sizeof(graygwMaskEntry{}))
)

// maskPositions is the Go side of gray_masks.
type maskPositions struct {
	mem   *ebpf.Memory // gray_masks' value
	of    [MaxMasks]*tssMask
	state [MaxMasks]slotState
	len   uint32 // len as written
}

// addMask gives a new mask a position and writes its entry there; packets
// skip it until setMaskMax.
func (d *Dataplane) addMask(mask ruleKey) (*tssMask, error) {
	t := &d.tss
	pos, err := d.allocMaskPos()
	if err != nil {
		return nil, err
	}
	m := newTSSMask(t.nextMask)
	t.nextMask++
	m.pos = pos
	if err := d.writeMaskEntry(m, mask); err != nil {
		t.pos.state[pos] = slotFree
		return nil, err
	}
	t.pos.of[pos] = m
	return m, nil
}

// writeMaskEntry writes m's entry at its position (whose word is 0) and
// covers the position with len.
func (d *Dataplane) writeMaskEntry(m *tssMask, mask ruleKey) error {
	p := &d.tss.pos
	a, ids, ports := packKey(mask)
	e := graygwMaskEntry{AddrMask: a, IdsMask: ids, PortsMask: ports, Mask: mask.raw(), MaskId: m.id}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&e)), maskEntryLen)
	if _, err := p.mem.WriteAt(b, maskEntryOff+int64(m.pos)*maskEntryLen); err != nil {
		return fmt.Errorf("bpf: gray_masks: %w", err)
	}
	if n := m.pos + 1; n > p.len {
		if err := p.writeWord(maskLenOff, n); err != nil {
			return err
		}
		p.len = n
	}
	return nil
}

// writeWord stores one aligned 32-bit word of the table (one store: Go's
// copy moves 4 aligned bytes at once, as cilium/ebpf's Memory documents).
func (p *maskPositions) writeWord(off int64, v uint32) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	if _, err := p.mem.WriteAt(b[:], off); err != nil {
		return fmt.Errorf("bpf: gray_masks: %w", err)
	}
	return nil
}

// readTable copies the whole table (rebuild).
func (p *maskPositions) readTable() (*graygwMaskTable, error) {
	var t graygwMaskTable
	b := unsafe.Slice((*byte)(unsafe.Pointer(&t)), unsafe.Sizeof(t))
	if _, err := p.mem.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("bpf: gray_masks: %w", err)
	}
	return &t, nil
}

// allocMaskPos takes the lowest free position, waiting for a grace period
// first if only quarantined ones are left.
func (d *Dataplane) allocMaskPos() (uint32, error) {
	p := &d.tss.pos
	pos, ok, err := d.lowestFree(p.state[:])
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("bpf: gray rule: %w: %d mask positions in use", ErrFull, MaxMasks)
	}
	p.state[pos] = slotUsed
	return pos, nil
}

// setMaskMax writes m's highest rule priority to its position's word.
func (d *Dataplane) setMaskMax(m *tssMask) error {
	return d.tss.pos.writeWord(maskMaxOff+4*int64(m.pos), uint32(max(m.maxPriority(), 0)))
}

// dropMask hides the position of a mask that lost its last rule and
// quarantines it.
func (d *Dataplane) dropMask(m *tssMask) error {
	p := &d.tss.pos
	if err := p.writeWord(maskMaxOff+4*int64(m.pos), 0); err != nil {
		p.of[m.pos] = nil // stays taken: packets still visit it
		return err
	}
	p.of[m.pos], p.state[m.pos] = nil, slotQuarantine
	return nil
}
