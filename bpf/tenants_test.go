//go:build linux

package bpf

import (
	"testing"

	"github.com/graygw/graygw/model"
)

// tenantInMaps is the tenant a packet of vni reads: the program's walk of
// tenant_dir, tenant_pages and vni_tenant, done from user space.
func tenantInMaps(t *testing.T, d *Dataplane, vni uint32) uint16 {
	t.Helper()
	var w, v uint32
	if err := d.objs.TenantDir.Lookup(vni>>tenantPageLog, &w); err != nil {
		t.Fatal(err)
	}
	switch w {
	case 0:
		return 0
	case tenantDirHash:
		if d.objs.VniTenant.Lookup(vni, &v) != nil {
			return 0
		}
	default:
		if err := d.objs.TenantPages.Lookup((w-1)*tenantPage+vni&(tenantPage-1), &v); err != nil {
			t.Fatal(err)
		}
	}
	return uint16(v)
}

// checkTenants fails unless every VNI of want, and a neighbour of each
// without an entry, reads its vni_tenant tenant through the maps.
func checkTenants(t *testing.T, d *Dataplane, want map[uint32]uint16, when string) {
	t.Helper()
	for vni, tn := range want {
		if got := tenantInMaps(t, d, vni); got != tn {
			t.Fatalf("%s: vni %d reads tenant %d, want %d", when, vni, got, tn)
		}
		if _, ok := want[vni^1]; !ok {
			if got := tenantInMaps(t, d, vni^1); got != 0 {
				t.Fatalf("%s: vni %d without an entry reads tenant %d", when, vni^1, got)
			}
		}
	}
}

// More ranges with tenants than pages: the ranges past the pages read
// vni_tenant, and packets agree with the model either way, through
// deletes and a reopen that hands the pages out again.
func TestTenantPagesAndHashFallback(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	want := map[uint32]uint16{}
	for i := range uint32(tenantPages + 4) {
		vni := (0x800+i)<<tenantPageLog | i
		if err := d.SetTenant(vni, uint16(500+i)); err != nil {
			t.Fatal(err)
		}
		want[vni] = uint16(500 + i)
	}
	ms := basicModel(t) // its tenants' range comes after the pages ran out
	applyState(t, d, ms)
	for vni, tn := range ms.Tenants {
		want[vni] = tn
	}
	var w uint32
	if err := d.objs.TenantDir.Lookup(uint32(0x800+tenantPages), &w); err != nil || w != tenantDirHash {
		t.Fatalf("range past the pages: word %#x (%v), want the hash", w, err)
	}
	checkTenants(t, d, want, "pages full")
	mismatch := func(name string, ret uint32, r model.Result) {
		t.Errorf("%s: %s, want %s %s", name, verdictName(ret), r.Verdict, r.Reason)
	}
	vectorsAgree(t, d, ms, mismatch)

	for vni := range want {
		if _, basic := ms.Tenants[vni]; basic || vni&1 == 0 {
			continue
		}
		if err := d.DeleteTenant(vni); err != nil {
			t.Fatal(err)
		}
		delete(want, vni)
		if got := tenantInMaps(t, d, vni); got != 0 {
			t.Fatalf("deleted vni %d reads tenant %d", vni, got)
		}
	}
	checkTenants(t, d, want, "after deletes")
	d.Close()
	d = reopen(t, dir)
	checkTenants(t, d, want, "after reopen")
	vectorsAgree(t, d, ms, mismatch)
}
