//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// backendsAgree fails unless every vector decides as the model says over ms.
func backendsAgree(t *testing.T, d *Dataplane, ms *model.State, when string) {
	t.Helper()
	vectorsAgree(t, d, ms, func(name string, ret uint32, want model.Result) {
		t.Fatalf("%s: %s: %s, want %s %s", when, name, verdictName(ret), want.Verdict, want.Reason)
	})
}

// A backend modified more often than there are free cells keeps deciding as
// the model does (the loader waits for a grace period and reuses the
// quarantined cells); at any time one cell per backend is named, and a
// deleted backend's word is zero.
func TestBackendCells(t *testing.T) {
	d := openTest(t)
	ms := basicModel(t)
	applyState(t, d, ms)
	backendsAgree(t, d, ms, "basic state")
	const id = 21
	be := ms.Backends[id]
	for i := range backendCells + 100 {
		be.UnderlayIP = 0x0a030000 | uint32(i&0xffff)
		if err := d.SetBackendEntry(id, be); err != nil {
			t.Fatalf("modify %d: %v", i, err)
		}
	}
	ms.Backends[id] = be
	backendsAgree(t, d, ms, "after many modifications")
	if n := len(d.cells.of); n != len(ms.Backends) {
		t.Fatalf("%d cells named, want %d", n, len(ms.Backends))
	}
	if err := d.DeleteBackendEntry(id); err != nil {
		t.Fatal(err)
	}
	delete(ms.Backends, id)
	backendsAgree(t, d, ms, "after delete")
	var w uint32
	if err := d.objs.BackendVer.Lookup(uint32(id), &w); err != nil || w != 0 {
		t.Fatalf("backend_ver[%d] = %d, %v after delete", id, w, err)
	}
	if err := d.DeleteBackendEntry(id); err == nil {
		t.Fatal("second delete succeeded")
	}
	// The buckets still name it: written again, it is served again.
	if err := d.SetBackendEntry(id, be); err != nil {
		t.Fatal(err)
	}
	ms.Backends[id] = be
	backendsAgree(t, d, ms, "after it is written again")
	selectCellsAgree(t, d)
}

// selectCellsAgree fails unless every select_cells word is what its
// backend_select word names: the backend's cell+1 in backend_ver, 0 for an
// empty cell or an absent backend.
func selectCellsAgree(t *testing.T, d *Dataplane) {
	t.Helper()
	n := MaxPools * pipeline.Buckets
	sel, err := readArray(d.objs.BackendSelect, n)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := readArray(d.objs.BackendVer, BackendIDs)
	if err != nil {
		t.Fatal(err)
	}
	words, err := readArray(d.objs.SelectCells, n)
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for i, v := range sel {
		var want uint32
		if v&selectValid != 0 {
			want = ver[uint16(v)]
		}
		if words[i] != want {
			t.Fatalf("select_cells[%d] = %d, backend_select %#x names cell+1 %d", i, words[i], v, want)
		}
		if want != 0 {
			named++
		}
	}
	if named == 0 {
		t.Fatal("no select_cells word names a backend")
	}
}

// A loader killed between a backend_select write and its select_cells
// write, or between a backend's new cell and the words naming it, leaves
// select_cells words naming a wrong cell, or none; Open rewrites them from
// backend_select and backend_ver.
func TestSelectCellsRebuild(t *testing.T) {
	dir, d, ms := basicPinned(t)
	selectCellsAgree(t, d)
	words, err := readArray(d.objs.SelectCells, MaxPools*pipeline.Buckets)
	if err != nil {
		t.Fatal(err)
	}
	var named []uint32
	for i, w := range words {
		if w != 0 {
			named = append(named, uint32(i))
		}
	}
	// One named cell emptied, one pointed at another backend's cell, and an
	// empty cell given a backend.
	check(t, d.objs.SelectCells.Update(named[0], uint32(0), ebpf.UpdateAny))
	for _, i := range named {
		if words[i] != words[named[0]] {
			check(t, d.objs.SelectCells.Update(named[1], words[i], ebpf.UpdateAny))
			break
		}
	}
	for i, w := range words {
		if w == 0 {
			check(t, d.objs.SelectCells.Update(uint32(i), words[named[0]], ebpf.UpdateAny))
			break
		}
	}
	d = restart(t, d, dir)
	backendsAgree(t, d, ms, "after reopen")
	selectCellsAgree(t, d)
}

// A loader killed between the writes of a backend operation leaves words
// that name a wrong cell, a stale value, or a deleted backend; Open repairs
// them from the backends hash.
func TestBackendCellsRebuild(t *testing.T) {
	dir, d, ms := basicPinned(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// 11 names 12's cell, 12's cell holds a stale value, 99 (no backend) is named.
	must(d.objs.BackendVer.Update(uint32(11), d.cells.of[12]+1, ebpf.UpdateAny))
	var v graygwBackend
	must(d.objs.BackendCells.Lookup(d.cells.of[13], &v))
	v.UnderlayIp++
	must(d.objs.BackendCells.Update(d.cells.of[13], &v, ebpf.UpdateAny))
	must(d.objs.BackendVer.Update(uint32(99), d.cells.of[21]+1, ebpf.UpdateAny))
	d = restart(t, d, dir)
	backendsAgree(t, d, ms, "after reopen")
	var w uint32
	must(d.objs.BackendVer.Lookup(uint32(99), &w))
	if w != 0 {
		t.Fatalf("backend_ver[99] = %d after the repair, want 0", w)
	}
	seen := map[uint32]bool{}
	for id, c := range d.cells.of {
		if seen[c] {
			t.Fatalf("cell %d named twice (backend %d)", c, id)
		}
		seen[c] = true
	}
}
