//go:build linux

package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Packets read a VNI's tenant through tenant_dir (one word per range of
// tenantPage VNIs) and tenant_pages (tenantPages pages of one word per VNI),
// two inlined array lookups, instead of the vni_tenant hash, which keeps
// every entry for read-back and rebuild and answers for ranges without a
// page. A range's word is 0 (no tenant: the hash's miss), a page, or
// tenantDirHash. Every cell is one word, so a set or delete is one store:
//
//	set:     vni_tenant first; then the range's page cell, or, for a range
//	         without tenants, a free (all-zero) page with the cell written,
//	         then the word; no page free: the word becomes tenantDirHash
//	delete:  the page cell first (0), then vni_tenant
//
// Pages are taken by the first tenant of a range and kept by the range until
// the next Open, which hands them out again (rebuildTenants).

// Sizes of tenant_dir and tenant_pages (TENANT_* in consts.h).
const (
	tenantPageLog = 12
	tenantPage    = 1 << tenantPageLog
	tenantDirSize = 1 << (24 - tenantPageLog)
	tenantPages   = 16
	tenantDirHash = 0xffffffff
)

// tenantDir is the Go side of tenant_dir and tenant_pages.
type tenantDir struct {
	dir   []uint32 // tenant_dir as written
	taken [tenantPages]bool
}

// setTenantCell makes packets of vni see tenant (vni_tenant written already).
func (d *Dataplane) setTenantCell(vni uint32, tenant uint16) error {
	x := &d.tdir
	hi, lo := vni>>tenantPageLog, vni&(tenantPage-1)
	switch w := x.dir[hi]; {
	case w == tenantDirHash:
		return nil
	case w != 0:
		return d.writeTenantCell((w-1)*tenantPage+lo, tenant)
	case tenant == 0:
		return nil // the range's 0 already says tenant 0
	}
	page := -1
	for p, t := range x.taken {
		if !t {
			page = p
			break
		}
	}
	w := uint32(tenantDirHash)
	if page >= 0 {
		if err := d.writeTenantCell(uint32(page)*tenantPage+lo, tenant); err != nil {
			return err
		}
		w = uint32(page) + 1
	}
	if err := d.objs.TenantDir.Update(hi, w, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: tenant_dir: %w", err)
	}
	x.dir[hi] = w
	if page >= 0 {
		x.taken[page] = true
	}
	return nil
}

// clearTenantCell makes packets of vni see tenant 0 (before vni_tenant
// loses the entry).
func (d *Dataplane) clearTenantCell(vni uint32) error {
	w := d.tdir.dir[vni>>tenantPageLog]
	if w == 0 || w == tenantDirHash {
		return nil
	}
	return d.writeTenantCell((w-1)*tenantPage+vni&(tenantPage-1), 0)
}

func (d *Dataplane) writeTenantCell(idx uint32, tenant uint16) error {
	if err := d.objs.TenantPages.Update(idx, uint32(tenant), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("bpf: tenant_pages: %w", err)
	}
	return nil
}

// rebuildTenants brings tenant_dir and tenant_pages in line with want (the
// vni_tenant hash) under running packets: a range keeps its page, whose
// cells are corrected one by one; pages no word names are zeroed and handed
// to ranges with tenants but no page; a range without tenants gets 0.
func (d *Dataplane) rebuildTenants(want map[uint32]uint16) error {
	x := &d.tdir
	*x = tenantDir{}
	var cells []uint32
	if d.fresh {
		x.dir, cells = make([]uint32, tenantDirSize), make([]uint32, tenantPages*tenantPage)
	} else {
		var err error
		if x.dir, err = readArray(d.objs.TenantDir, tenantDirSize); err != nil {
			return fmt.Errorf("bpf: rebuild tenant_dir: %w", err)
		}
		if cells, err = readArray(d.objs.TenantPages, tenantPages*tenantPage); err != nil {
			return fmt.Errorf("bpf: rebuild tenant_pages: %w", err)
		}
	}
	ranges := map[uint32]bool{}
	for vni := range want {
		ranges[vni>>tenantPageLog] = true
	}
	for hi, w := range x.dir {
		if w != 0 && w != tenantDirHash && (w > tenantPages || x.taken[w-1]) {
			x.dir[hi] = tenantDirHash // not a page this range owns: read the hash until fixed below
			if err := d.objs.TenantDir.Update(uint32(hi), uint32(tenantDirHash), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("bpf: rebuild tenant_dir: %w", err)
			}
		} else if w != 0 && w != tenantDirHash {
			x.taken[w-1] = true
		}
	}
	set := func(idx uint32, v uint32) error {
		if cells[idx] == v {
			return nil
		}
		cells[idx] = v
		return d.writeTenantCell(idx, uint16(v))
	}
	for p, t := range x.taken { // a free page is all zeros
		if t {
			continue
		}
		for lo := range uint32(tenantPage) {
			if err := set(uint32(p)*tenantPage+lo, 0); err != nil {
				return err
			}
		}
	}
	for hi, w := range x.dir {
		if w == 0 || w == tenantDirHash {
			continue
		}
		for lo := range uint32(tenantPage) {
			if err := set((w-1)*tenantPage+lo, uint32(want[uint32(hi)<<tenantPageLog|lo])); err != nil {
				return err
			}
		}
	}
	for hi, w := range x.dir {
		var nw uint32
		switch {
		case !ranges[uint32(hi)]:
			if w != 0 && w != tenantDirHash {
				continue // keeps its (now empty) page
			}
			nw = 0
		case w != 0 && w != tenantDirHash:
			continue
		default:
			nw = tenantDirHash
			for p, t := range x.taken {
				if t {
					continue
				}
				for lo := range uint32(tenantPage) {
					if err := set(uint32(p)*tenantPage+lo, uint32(want[uint32(hi)<<tenantPageLog|lo])); err != nil {
						return err
					}
				}
				x.taken[p], nw = true, uint32(p)+1
				break
			}
		}
		if nw != w {
			if err := d.objs.TenantDir.Update(uint32(hi), nw, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("bpf: rebuild tenant_dir: %w", err)
			}
			x.dir[hi] = nw
		}
	}
	return nil
}
