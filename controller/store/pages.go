package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// checkPages validates the page structure of a bbolt file before bbolt reads it:
// bbolt follows page ids and element offsets without bounds checks, so garbage
// makes it panic, fault, or (a branch page naming itself) loop forever. The
// layout is bbolt's (internal/common: page.go, bucket.go, meta.go), stable since
// boltdb: a 16-byte page header (id, flags, count, overflow); branch elements
// (pos, ksize, child page id) and leaf elements (flags, pos, ksize, vsize) of 16
// bytes, pos counted from the element itself; a bucket value starts with its root
// page id and sequence, root 0 meaning an inline page follows in the value.
func checkPages(b []byte) error {
	if len(b) < 2*1024 {
		return fmt.Errorf("file of %d bytes is smaller than its two meta pages", len(b))
	}
	le := binary.LittleEndian
	ps := int64(le.Uint32(b[16+8:]))
	meta := func(i int64) []byte { return b[i*ps+16:] }
	m := meta(0)
	if len(b) >= int(2*ps) && le.Uint64(meta(1)[48:]) > le.Uint64(m[48:]) {
		m = meta(1) // the newest transaction
	}
	c := &pageChecker{b: b, ps: ps, hwm: le.Uint64(m[40:]), seen: map[uint64]bool{0: true, 1: true}}
	if c.hwm < 2 || int64(c.hwm)*ps > int64(len(b)) {
		return fmt.Errorf("meta: high water mark %d pages is past the file's %d bytes", c.hwm, len(b))
	}
	if err := c.tree(le.Uint64(m[16:]), 0); err != nil {
		return err
	}
	if fl := le.Uint64(m[32:]); fl != ^uint64(0) {
		return c.freelist(fl)
	}
	return nil
}

type pageChecker struct {
	b    []byte
	ps   int64
	hwm  uint64
	seen map[uint64]bool
}

const (
	pageHeader   = 16
	elemSize     = 16
	branchFlag   = 0x01
	leafFlag     = 0x02
	freelistFlag = 0x10
	bucketFlag   = 0x01
	maxDepth     = 64
)

// page returns the bytes of page id (with its overflow pages), claiming them.
func (c *pageChecker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page id %d out of range [2, %d)", id, c.hwm)
	}
	if c.seen[id] {
		return nil, fmt.Errorf("page %d reached twice (a cycle or a shared page)", id)
	}
	p := c.b[int64(id)*c.ps:]
	if got := binary.LittleEndian.Uint64(p); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	over := uint64(binary.LittleEndian.Uint32(p[12:]))
	if id+over >= c.hwm {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high water mark %d", id, over, c.hwm)
	}
	for i := id; i <= id+over; i++ {
		if c.seen[i] {
			return nil, fmt.Errorf("page %d reached twice", i)
		}
		c.seen[i] = true
	}
	return p[:int64(over+1)*c.ps], nil
}

// tree checks the B+tree of a bucket rooted at page id.
func (c *pageChecker) tree(id uint64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxDepth)
	}
	p, err := c.page(id)
	if err != nil {
		return err
	}
	return c.node(p, id, depth)
}

// node checks one branch or leaf page p (id 0: an inline page).
func (c *pageChecker) node(p []byte, id uint64, depth int) error {
	le := binary.LittleEndian
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if pageHeader+count*elemSize > len(p) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	var prev []byte
	for i := range count {
		at := pageHeader + i*elemSize
		e := p[at:]
		pos, ksize := int(le.Uint32(e[4:])), int(le.Uint32(e[8:]))
		vsize := 0
		if flags == leafFlag {
			vsize = int(le.Uint32(e[12:]))
		}
		if flags == branchFlag {
			pos, ksize = int(le.Uint32(e[0:])), int(le.Uint32(e[4:]))
		}
		start, end := at+pos, at+pos+ksize+vsize
		if pos < 0 || ksize < 0 || vsize < 0 || start < at || end > len(p) || end < start {
			return fmt.Errorf("page %d element %d: offsets %d+%d+%d outside the page", id, i, pos, ksize, vsize)
		}
		key := p[start : start+ksize]
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return fmt.Errorf("page %d element %d: keys out of order", id, i)
		}
		prev = key
		switch flags {
		case branchFlag:
			if err := c.tree(le.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		case leafFlag:
			if le.Uint32(e)&bucketFlag == 0 {
				continue
			}
			v := p[start+ksize : end]
			if len(v) < 16 {
				return fmt.Errorf("page %d element %d: bucket header of %d bytes", id, i, len(v))
			}
			if root := le.Uint64(v); root != 0 {
				if err := c.tree(root, depth+1); err != nil {
					return err
				}
				continue
			}
			inline := v[16:]
			if len(inline) < pageHeader || le.Uint16(inline[8:]) != leafFlag {
				return fmt.Errorf("page %d element %d: inline bucket is not a leaf page", id, i)
			}
			if err := c.node(inline, 0, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("page %d: flags %#x, want a branch or leaf page", id, flags)
		}
	}
	if flags != branchFlag && flags != leafFlag {
		return fmt.Errorf("page %d: flags %#x, want a branch or leaf page", id, flags)
	}
	if flags == branchFlag && count == 0 {
		return fmt.Errorf("page %d: empty branch page", id)
	}
	return nil
}

// freelist checks the freelist page: ids in range, none reachable from the tree.
func (c *pageChecker) freelist(id uint64) error {
	p, err := c.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(p[8:]) != freelistFlag {
		return fmt.Errorf("freelist page %d: flags %#x", id, le.Uint16(p[8:]))
	}
	idx, count := 0, uint64(le.Uint16(p[10:]))
	if count == 0xffff {
		idx, count = 1, le.Uint64(p[pageHeader:])
	}
	if uint64(pageHeader+8*idx)+8*count > uint64(len(p)) || count > c.hwm {
		return fmt.Errorf("freelist page %d: %d ids do not fit", id, count)
	}
	for i := range count {
		f := le.Uint64(p[pageHeader+8*(uint64(idx)+i):])
		if f < 2 || f >= c.hwm || c.seen[f] {
			return fmt.Errorf("freelist page %d: free page %d is out of range or in use", id, f)
		}
	}
	return nil
}

// checkPagesFile reads path and runs checkPages.
func checkPagesFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := checkPages(b); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return nil
}
