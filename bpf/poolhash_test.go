//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

func TestHashBits(t *testing.T) {
	all := pipeline.FlowKey{VNI: pipeline.MaxVNI, Tenant: 0xffff, Src: 0xffffffff, Dst: 0xffffffff, Proto: 0xff,
		SPort: 0xffff, DPort: 0xffff}
	for _, c := range []struct {
		name string
		m    pipeline.FlowKey
		ok   bool
		want uint32
	}{
		{"no entry", pipeline.FlowKey{}, false, 0},
		{"all ones", all, true, 0},
		{"nothing", pipeline.FlowKey{}, true, 0x7f << poolHashShift},
		{"vni+src", pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}, true, 0b1111010 << poolHashShift},
		{"src /24", pipeline.FlowKey{Src: 0xffffff00}, true, poolHashLookup},
		{"dport high byte", func() pipeline.FlowKey { m := all; m.DPort = 0xff00; return m }(), true, poolHashLookup},
	} {
		if got := hashBits(c.m, c.ok); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
}

// Each encoding of a pool's hash mask decides as the model does, and moving a
// pool between them (set, modify, delete, and with the pool's slot taken and
// given back) keeps pool_slot in step; a reopen rederives lost bits.
func TestPoolHashEncodings(t *testing.T) {
	dir, d, ms := basicPinned(t)
	check := func(when string) {
		t.Helper()
		backendsAgree(t, d, ms, when)
		for _, p := range []uint16{testvectors.PoolBase, testvectors.PoolGray} {
			var w uint32
			if err := d.objs.PoolSlot.Lookup(uint32(p), &w); err != nil {
				t.Fatal(err)
			}
			m, ok := ms.PoolHash[p]
			if want := d.sel.of[p] + 1 | hashBits(m, ok); w != want {
				t.Fatalf("%s: pool_slot[%d] = %#x, want %#x", when, p, w, want)
			}
		}
	}
	check("basic state (gray pool: vni+src bits)")
	set := func(p uint16, m pipeline.FlowKey) {
		t.Helper()
		if err := d.SetPoolHash(p, m); err != nil {
			t.Fatal(err)
		}
		ms.PoolHash[p] = m
	}
	set(testvectors.PoolBase, pipeline.FlowKey{Src: 0xffffff00, DPort: 0xffff}) // pool_hash lookup
	check("base pool: src /24 + dport")
	set(testvectors.PoolGray, pipeline.FlowKey{Dst: 0xffffffff, SPort: 0xffff}) // other bits
	check("gray pool: dst + sport")
	set(testvectors.PoolBase, pipeline.FlowKey{VNI: pipeline.MaxVNI}) // lookup -> bits
	check("base pool: vni")
	set(testvectors.PoolBase, pipeline.FlowKey{Dst: 0xfff00000}) // bits -> lookup
	check("base pool: dst /12")
	if err := d.DeletePoolHash(testvectors.PoolBase); err != nil {
		t.Fatal(err)
	}
	delete(ms.PoolHash, testvectors.PoolBase)
	check("base pool: entry deleted")
	if err := d.DeletePoolHash(testvectors.PoolBase); err == nil {
		t.Fatal("deleting a missing pool_hash entry succeeded")
	}
	// The gray pool loses its slot and gets one again: the new word carries the bits.
	var cells []uint16
	for b := range pipeline.Buckets {
		cells = append(cells, ms.BackendSelect[model.SelectKey{Pool: testvectors.PoolGray, Bucket: uint16(b)}])
	}
	if err := d.ClearPool(testvectors.PoolGray); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBuckets(testvectors.PoolGray, 0, cells); err != nil {
		t.Fatal(err)
	}
	check("gray pool re-given buckets")
	// A word without its bits (a loader killed between the two writes of
	// SetPoolHash) is repaired by the next Open.
	if err := d.objs.PoolSlot.Update(uint32(testvectors.PoolGray), d.sel.of[testvectors.PoolGray]+1, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	d = restart(t, d, dir)
	check("after reopen")
}
