//go:build linux

package bpf

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
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
