//go:build linux

package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// Sizes of tss_filter (TSS_FILTER_LOG, TSS_FILTER_WORDS in consts.h).
const (
	filterLog   = 20
	filterWords = 1 << (filterLog - 6)
)

// filterBit is tss_bit of hash.h: the tss_filter bit of the gray_rules key
// (mask id, masked key). Both sides must agree bit for bit
// (TestFilterBitMatchesProgram).
func filterBit(maskID uint32, k ruleKey) uint32 { return filterBitOf(tssKey(maskID, k)) }

// filterBitOf is filterBit of a gray_rules key.
func filterBitOf(k graygwTssKey) uint32 {
	h := k.Addr * 0x9e3779b97f4a7c15
	h ^= k.Ids * 0xc2b2ae3d27d4eb4f
	h ^= (uint64(k.Ports)<<32 | uint64(k.MaskId)) * 0x165667b19e3779f9
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return uint32(h >> (64 - filterLog))
}

// tssKey is the gray_rules key of the masked value v of mask maskID.
func tssKey(maskID uint32, v ruleKey) graygwTssKey {
	addr, ids, ports := packKey(v)
	return graygwTssKey{Addr: addr, Ids: ids, Ports: uint32(ports >> 32), MaskId: maskID}
}

// packKey packs a key (or a mask) in the three words of struct mask_entry.
func packKey(k ruleKey) (addr, ids, ports uint64) {
	f := k.Flow
	addr = uint64(f.Src)<<32 | uint64(f.Dst)
	ids = uint64(f.VNI&pipeline.MaxVNI|uint32(f.Proto)<<24)<<32 | uint64(k.VIPID)<<16 | uint64(f.Tenant)
	ports = uint64(uint32(f.SPort)<<16|uint32(f.DPort)) << 32
	return addr, ids, ports
}

// tssFilter is the Go side of tss_filter, a Bloom filter over the keys of
// gray_rules: a bit is set while at least one (mask, masked key) group that
// hashes to it exists. A set bit with no entry behind it costs a packet one
// hash lookup; a clear bit with an entry behind it would lose a rule, so a
// bit is set before its entry is written and cleared after it is deleted.
type tssFilter struct {
	refs  map[uint32]uint32 // bit -> groups hashing to it
	words []uint64          // what tss_filter holds
	mem   *ebpf.Memory      // tss_filter's value, written one word at a time
}

func newTSSFilter() tssFilter {
	return tssFilter{refs: map[uint32]uint32{}, words: make([]uint64, filterWords)}
}

// filterAdd counts a new group (mask id, masked value) and sets its bit in
// tss_filter. Call it before writing the group's gray_rules entry.
func (d *Dataplane) filterAdd(maskID uint32, v ruleKey) error {
	f := &d.tss.filter
	b := filterBit(maskID, v)
	if f.refs[b] == 0 {
		w := f.words[b/64] | 1<<(b%64)
		if err := f.write(b/64, w); err != nil {
			return err
		}
		f.words[b/64] = w
	}
	f.refs[b]++
	return nil
}

// filterRemove forgets a group whose gray_rules entry is gone and clears its
// bit when no other group needs it. A failed write leaves the bit set, which
// only costs packets a lookup.
func (d *Dataplane) filterRemove(maskID uint32, v ruleKey) {
	f := &d.tss.filter
	b := filterBit(maskID, v)
	if f.refs[b] > 1 {
		f.refs[b]--
		return
	}
	delete(f.refs, b)
	w := f.words[b/64] &^ (1 << (b % 64))
	if err := f.write(b/64, w); err == nil {
		f.words[b/64] = w
	}
}

// write stores word i of tss_filter: one aligned 8-byte copy through the
// mapping (cilium/ebpf's Memory: Go's copy moves aligned words whole).
func (f *tssFilter) write(i uint32, w uint64) error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], w)
	if _, err := f.mem.WriteAt(b[:], int64(i)*8); err != nil {
		return fmt.Errorf("bpf: tss_filter: %w", err)
	}
	return nil
}

// read returns tss_filter's words.
func (f *tssFilter) read() ([]uint64, error) {
	b := make([]byte, filterWords*8)
	if _, err := f.mem.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("bpf: tss_filter: %w", err)
	}
	w := make([]uint64, filterWords)
	for i := range w {
		w[i] = binary.NativeEndian.Uint64(b[i*8:])
	}
	return w, nil
}

// rebuildFilter recounts the groups of the rebuilt rules. With orOnly it
// only sets the bits they need (before their entries are rewritten);
// otherwise it writes the filter exactly (after stray entries are gone).
// Either way only the words that differ from the map are written.
func (d *Dataplane) rebuildFilter(orOnly bool) error {
	f := &d.tss.filter
	f.refs = map[uint32]uint32{}
	if f.mem == nil {
		mem, err := d.objs.TssFilter.Memory()
		if err != nil {
			return fmt.Errorf("bpf: tss_filter: %w", err)
		}
		f.mem = mem
	}
	want := make([]uint64, filterWords)
	for _, m := range d.tss.masks {
		for v := range m.groups {
			b := filterBit(m.id, v)
			f.refs[b]++
			want[b/64] |= 1 << (b % 64)
		}
	}
	have, err := f.read()
	if err != nil {
		return fmt.Errorf("bpf: rebuild: %w", err)
	}
	for i := range want {
		w := want[i]
		if orOnly {
			w |= have[i]
		}
		if w != have[i] {
			if err := f.write(uint32(i), w); err != nil {
				return fmt.Errorf("bpf: rebuild: %w", err)
			}
		}
		f.words[i] = w
	}
	return nil
}
