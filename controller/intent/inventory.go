package intent

import (
	"net/netip"
	"slices"

	"github.com/graygw/graygw/pipeline"
)

// MaxInventoryVMs is the largest number of VMs of one VPC in the inventory (a
// probe run takes at most 1024 targets; a VPC's VMs are probed in several runs
// or one VM at a time beyond that).
const MaxInventoryVMs = 4096

// vpcsSection validates the inventory: each VPC's VNI is a tenant's, unique;
// its routes are IPv4 or IPv6 prefixes without host bits, unique, with an
// optional next hop of the prefix's family; its VMs are unique unicast
// addresses, inside one of its cidrs when it gives some, none is a route's
// probe destination, and each has a route of its family to be probed towards
// (a dual-stack VPC lists routes of both).
func (v *validator) vpcsSection(specs []VPCSpec) {
	vnis := map[uint32]string{}
	for i, vs := range specs {
		path := idx("vpcs", i)
		x := VPC{RouterMAC: vs.RouterMAC}
		okVNI := false
		switch {
		case vs.VNI < 1 || vs.VNI > pipeline.MaxVNI:
			v.ps.add(ErrRange, dot(path, "vni"), "%d: want 1 to %d", vs.VNI, pipeline.MaxVNI)
		case vnis[uint32(vs.VNI)] != "":
			v.ps.add(ErrDuplicate, dot(path, "vni"), "VNI %d is already %s", vs.VNI, vnis[uint32(vs.VNI)])
		case v.vniOwner[uint32(vs.VNI)] == nil:
			v.ps.add(ErrUnknownRef, dot(path, "vni"), "VNI %d is no tenant's VNI: list it under a tenant's vnis", vs.VNI)
		default:
			okVNI = true
			x.VNI = uint32(vs.VNI)
			x.Tenant = v.vniOwner[x.VNI].Name
			vnis[x.VNI] = path
		}
		if vs.RouterMAC != "" {
			v.mac(dot(path, "router_mac"), vs.RouterMAC)
		}
		for j, c := range vs.CIDRs {
			if p, ok := v.prefix(idx(dot(path, "cidrs"), j), c); ok {
				x.CIDRs = append(x.CIDRs, p)
			}
		}
		if len(vs.Routes) == 0 {
			v.ps.add(ErrRequired, dot(path, "routes"), "at least one route: its destination is what the VMs are probed towards")
		}
		routes := map[netip.Prefix]string{}
		dests := map[netip.Addr]string{}
		for j, rs := range vs.Routes {
			rp := idx(dot(path, "routes"), j)
			p, ok := v.prefix(dot(rp, "prefix"), rs.Prefix)
			if !ok {
				continue
			}
			if prev := routes[p]; prev != "" {
				v.ps.add(ErrDuplicate, dot(rp, "prefix"), "%s is already %s", p, prev)
				continue
			}
			routes[p] = rp
			r := Route{Prefix: p}
			if rs.NextHop != "" {
				a, ok := v.ip(dot(rp, "next_hop"), rs.NextHop)
				if !ok {
					continue
				}
				if a.Is4() != p.Addr().Is4() {
					v.ps.add(ErrConflict, dot(rp, "next_hop"), "%s is %s, the prefix %s %s", a, familyOf(a), p, familyOf(p.Addr()))
					continue
				}
				r.NextHop = a
			}
			if _, seen := dests[r.Dest()]; !seen {
				dests[r.Dest()] = rp
			}
			x.Routes = append(x.Routes, r)
		}
		if len(vs.VMs) == 0 {
			v.ps.add(ErrRequired, dot(path, "vms"), "at least one VM")
		}
		if len(vs.VMs) > MaxInventoryVMs {
			v.ps.add(ErrCapacity, dot(path, "vms"), "%d VMs, at most %d per VPC", len(vs.VMs), MaxInventoryVMs)
		}
		addrs := map[netip.Addr]string{}
		names := map[string]string{}
		for j, ms := range vs.VMs {
			mp := idx(dot(path, "vms"), j)
			vm := VM{Name: ms.Name, MAC: ms.MAC}
			if ms.Name != "" {
				switch {
				case !validName(ms.Name):
					v.ps.add(ErrRange, dot(mp, "name"), "%q: names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", ms.Name)
				case names[ms.Name] != "":
					v.ps.add(ErrDuplicate, dot(mp, "name"), "%q already names %s", ms.Name, names[ms.Name])
				default:
					names[ms.Name] = mp
				}
			}
			if ms.MAC != "" {
				v.mac(dot(mp, "mac"), ms.MAC)
			}
			a, ok := v.ip(dot(mp, "address"), ms.Address)
			if !ok {
				continue
			}
			ap := dot(mp, "address")
			switch {
			case !a.IsGlobalUnicast():
				v.ps.add(ErrAddress, ap, "%s is not a unicast host address", a)
				continue
			case addrs[a] != "":
				v.ps.add(ErrDuplicate, ap, "%s is already %s", a, addrs[a])
				continue
			case dests[a] != "":
				v.ps.add(ErrConflict, ap, "%s is the probe destination of %s: a VM cannot probe itself", a, dests[a])
				continue
			}
			if len(x.CIDRs) > 0 && !containsAddr(x.CIDRs, a) {
				v.ps.add(ErrConflict, ap, "%s is outside the VPC's cidrs %v", a, x.CIDRs)
				continue
			}
			if len(x.Routes) > 0 && !slices.ContainsFunc(x.Routes, func(r Route) bool { return r.Prefix.Addr().Is4() == a.Is4() }) {
				v.ps.add(ErrConflict, ap, "%s is %s and the VPC has no %s route to probe it towards", a, familyOf(a), familyOf(a))
				continue
			}
			addrs[a] = mp
			vm.Address = a
			x.VMs = append(x.VMs, vm)
		}
		if okVNI {
			v.in.VPCs = append(v.in.VPCs, x)
		}
	}
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// prefix parses an IPv4 or IPv6 prefix (an address is a /32 or /128) without
// host bits.
func (v *validator) prefix(path, s string) (netip.Prefix, bool) {
	if s == "" {
		v.ps.add(ErrRequired, path, "missing")
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			v.ps.add(ErrAddress, path, "%q is not an IPv4 or IPv6 prefix or address", s)
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		v.ps.add(ErrAddress, path, "%q is an IPv4-mapped IPv6 prefix: write the IPv4 prefix", s)
	case p.Masked() != p:
		v.ps.add(ErrAddress, path, "%q has host bits set (did you mean %s?)", s, p.Masked())
	default:
		return p, true
	}
	return netip.Prefix{}, false
}
