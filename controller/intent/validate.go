package intent

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/graygw/graygw/pipeline"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// validName is nameRE.MatchString without the regexp machinery (10k rule
// names per validation).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validator holds what is resolved so far; later sections look earlier ones up.
type validator struct {
	ps       problems
	in       Intent
	gateways []*Gateway
	pools    map[string]*Pool
	backends map[string]*backendDecl
	vips     map[string]*VIP
	tenants  map[string]*Tenant
	vniOwner map[uint32]*Tenant
}

type backendDecl struct {
	path string // where first declared
	spec BackendSpec
	b    Backend
}

// Validate checks every field of s and resolves it into an Intent. It reports every
// problem at once, as an *Errors; on error the Intent is nil.
func (s *Spec) Validate() (*Intent, error) {
	v := &validator{
		pools: map[string]*Pool{}, backends: map[string]*backendDecl{}, vips: map[string]*VIP{},
		tenants: map[string]*Tenant{}, vniOwner: map[uint32]*Tenant{},
	}
	if s.Version != SchemaVersion {
		v.ps.add(ErrRange, "version", "%d: this graygw reads version %d", s.Version, SchemaVersion)
	}
	v.gatewaysSection(s.Gateways)
	v.tenantsSection(s.Tenants)
	v.poolsSection(s.Pools)
	v.vipsSection(s.VIPs)
	v.ipv6NextHops(s.Gateways)
	v.rulesSection(s.GrayRules)
	v.vpcsSection(s.VPCs)
	v.families(s.Pools)
	if err := v.ps.err(); err != nil {
		return nil, err
	}
	in := &v.in
	byName := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortFunc(in.Gateways, func(a, b Gateway) int { return byName(a.Name, b.Name) })
	slices.SortFunc(in.VIPs, func(a, b VIP) int { return byName(a.Name, b.Name) })
	slices.SortFunc(in.Pools, func(a, b Pool) int { return byName(a.Name, b.Name) })
	slices.SortFunc(in.Backends, func(a, b Backend) int { return byName(a.Name, b.Name) })
	slices.SortFunc(in.Tenants, func(a, b Tenant) int { return byName(a.Name, b.Name) })
	slices.SortFunc(in.VPCs, func(a, b VPC) int { return int(a.VNI) - int(b.VNI) })
	return in, nil
}

// name checks an object's name and its uniqueness among seen (name -> path).
func (v *validator) name(path, name string, seen map[string]string) {
	p := dot(path, "name")
	switch {
	case name == "":
		v.ps.add(ErrRequired, p, "missing")
	case !validName(name):
		v.ps.add(ErrRange, p, "%q: names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	case seen[name] != "":
		v.ps.add(ErrDuplicate, p, "%q already names %s", name, seen[name])
	default:
		seen[name] = path
	}
}

func (v *validator) ipv4(path, s string) (netip.Addr, bool) {
	if s == "" {
		v.ps.add(ErrRequired, path, "missing")
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.ps.add(ErrAddress, path, "%q is not an IPv4 address", s)
		return netip.Addr{}, false
	}
	return a, true
}

// ip parses a VIP's or a backend's address: IPv4, or a global unicast IPv6
// address without a zone; an IPv4-mapped IPv6 address is refused (the IPv4
// address is what is meant).
func (v *validator) ip(path, s string) (netip.Addr, bool) {
	if s == "" {
		v.ps.add(ErrRequired, path, "missing")
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		v.ps.add(ErrAddress, path, "%q is not an IPv4 or IPv6 address", s)
	case a.Is4In6():
		v.ps.add(ErrAddress, path, "%q is an IPv4-mapped IPv6 address: write %s", s, a.Unmap())
	case a.Is6() && !a.IsGlobalUnicast():
		v.ps.add(ErrAddress, path, "%q is not a global unicast IPv6 address", s)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// familyOf is the family of an address.
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return Family4
	}
	return Family6
}

// setPrefix writes a rule's prefix p into the key: the IPv4 fields v4, m4 or
// the IPv6 ones v6, m6 by its family, which becomes the key's. An invalid p
// leaves the key as it is.
func (k *Key) setPrefix(p netip.Prefix, v4, m4 *uint32, v6, m6 *Addr6) {
	if !p.IsValid() {
		return
	}
	k.Family = familyOf(p.Addr())
	if k.Family == Family4 {
		a := p.Addr().As4()
		*v4 = uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		*m4 = ^uint32(0) << (32 - p.Bits())
		return
	}
	*v6 = p.Addr().As16()
	for i := 0; i < p.Bits(); i++ {
		m6[i/8] |= 0x80 >> (i % 8)
	}
}

func (v *validator) mac(path, s string) ([6]byte, bool) {
	var m [6]byte
	if s == "" {
		v.ps.add(ErrRequired, path, "missing")
		return m, false
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		v.ps.add(ErrAddress, path, "%q is not a MAC address (aa:bb:cc:dd:ee:ff)", s)
		return m, false
	}
	if hw[0]&1 != 0 {
		v.ps.add(ErrAddress, path, "%q is a multicast MAC address", s)
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// idUse records which object holds an id, for collision reports.
type idUse struct {
	path, name string
	explicit   bool
}

// assignID resolves an explicit or derived id and checks it is unique in used.
func (v *validator) assignID(path, kind, name string, explicit *int64, max int, used map[uint16]idUse) (uint16, bool) {
	var id uint16
	if explicit != nil {
		if *explicit < 1 || *explicit > int64(max) {
			v.ps.add(ErrRange, dot(path, "id"), "%d out of range 1-%d", *explicit, max)
			return 0, false
		}
		id = uint16(*explicit)
	} else {
		if name == "" {
			return 0, false
		}
		id = DerivedID(kind, name, max)
	}
	if prev, ok := used[id]; ok {
		how := func(explicit bool) string {
			if explicit {
				return "explicit"
			}
			return "derived from the name"
		}
		v.ps.add(ErrDuplicate, dot(path, "id"), "%s id %d (%s) is already the id of %s %q (%s); give one of them an explicit, unused id",
			kind, id, how(explicit != nil), prev.path, prev.name, how(prev.explicit))
		return 0, false
	}
	used[id] = idUse{path: path, name: name, explicit: explicit != nil}
	return id, true
}

func (v *validator) gatewaysSection(specs []GatewaySpec) {
	if len(specs) == 0 {
		v.ps.add(ErrRequired, "gateways", "at least one gateway is needed")
	}
	names := map[string]string{}
	targets := map[string]string{}
	nextHops := map[netip.Addr]string{}
	for i, gs := range specs {
		path := idx("gateways", i)
		v.name(path, gs.Name, names)
		g := &Gateway{Name: gs.Name, P4Runtime: gs.P4Runtime, DeviceID: gs.DeviceID}
		if gs.P4Runtime == "" {
			v.ps.add(ErrRequired, dot(path, "p4runtime"), "missing")
		} else if !validTarget(gs.P4Runtime) {
			v.ps.add(ErrAddress, dot(path, "p4runtime"), "%q is not host:port or unix:///absolute/path", gs.P4Runtime)
		} else {
			key := fmt.Sprintf("%s device %d", gs.P4Runtime, gs.DeviceID)
			if prev := targets[key]; prev != "" {
				v.ps.add(ErrDuplicate, dot(path, "p4runtime"), "%s is already %s", key, prev)
			}
			targets[key] = path
		}
		if a, ok := v.ipv4(dot(path, "bgp_next_hop"), gs.BGPNextHop); ok {
			if prev := nextHops[a]; prev != "" {
				v.ps.add(ErrDuplicate, dot(path, "bgp_next_hop"), "%s is already the next hop of %s", a, prev)
			}
			nextHops[a] = path
			g.BGPNextHop = a
		}
		if gs.BGPNextHopV6 != "" {
			p := dot(path, "bgp_next_hop_v6")
			a, err := netip.ParseAddr(gs.BGPNextHopV6)
			switch {
			case err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "":
				v.ps.add(ErrAddress, p, "%q is not an IPv6 address", gs.BGPNextHopV6)
			case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast():
				v.ps.add(ErrAddress, p, "%s: want a global or unique local unicast address (a link-local next hop needs the session's interface)", a)
			case nextHops[a] != "":
				v.ps.add(ErrDuplicate, p, "%s is already the next hop of %s", a, nextHops[a])
			default:
				nextHops[a] = path
				g.BGPNextHopV6 = a
			}
		}
		if len(gs.Ports) == 0 {
			v.ps.add(ErrRequired, dot(path, "ports"), "at least one port is needed")
		}
		ifaces := map[string]string{}
		for _, n := range sortedKeys(gs.Ports) {
			ps := gs.Ports[n]
			pp := fmt.Sprintf("%s.ports[%d]", path, n)
			if n < 0 || n > MaxPort {
				v.ps.add(ErrRange, pp, "port number %d out of range 0-%d (9 bits)", n, MaxPort)
				continue
			}
			port := Port{Number: uint16(n), Interface: ps.Interface}
			if ps.Interface == "" {
				v.ps.add(ErrRequired, dot(pp, "interface"), "missing")
			} else if prev := ifaces[ps.Interface]; prev != "" {
				v.ps.add(ErrDuplicate, dot(pp, "interface"), "%q is already %s", ps.Interface, prev)
			} else {
				ifaces[ps.Interface] = pp
			}
			port.MAC, _ = v.mac(dot(pp, "mac"), ps.MAC)
			if ps.VLAN != nil {
				port.AcceptVIDs, port.TagVID = v.vlan(dot(pp, "vlan"), ps.VLAN)
			}
			g.Ports = append(g.Ports, port)
		}
		v.in.Gateways = append(v.in.Gateways, *g)
	}
	for i := range v.in.Gateways {
		v.gateways = append(v.gateways, &v.in.Gateways[i])
	}
}

// vlan checks a port's 802.1Q configuration: accepted VIDs 0-4094 (0, a
// priority tag, included), each once; a tag VID 1-4094.
func (v *validator) vlan(path string, s *VLANSpec) (accept []uint16, tag uint16) {
	seen := map[int64]bool{}
	for i, vid := range s.Accept {
		p := fmt.Sprintf("%s.accept[%d]", path, i)
		switch {
		case vid < 0 || vid > pipeline.MaxVID:
			v.ps.add(ErrRange, p, "VID %d out of range 0-%d", vid, pipeline.MaxVID)
		case seen[vid]:
			v.ps.add(ErrDuplicate, p, "VID %d is listed twice", vid)
		default:
			seen[vid] = true
			accept = append(accept, uint16(vid))
		}
	}
	slices.Sort(accept)
	if s.Tag != nil {
		if *s.Tag < 1 || *s.Tag > pipeline.MaxVID {
			v.ps.add(ErrRange, dot(path, "tag"), "VID %d out of range 1-%d", *s.Tag, pipeline.MaxVID)
		} else {
			tag = uint16(*s.Tag)
		}
	}
	return accept, tag
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) tenantsSection(specs []TenantSpec) {
	names := map[string]string{}
	ids := map[uint16]idUse{}
	vniPaths := map[uint32]string{}
	for i, ts := range specs {
		path := idx("tenants", i)
		v.name(path, ts.Name, names)
		id, _ := v.assignID(path, KindTenant, ts.Name, ts.ID, MaxID, ids)
		t := &Tenant{Name: ts.Name, ID: id}
		if len(ts.VNIs) == 0 {
			v.ps.add(ErrRequired, dot(path, "vnis"), "a tenant needs at least one VNI")
		}
		for j, n := range ts.VNIs {
			vp := idx(dot(path, "vnis"), j)
			if n < 0 || n > pipeline.MaxVNI {
				v.ps.add(ErrRange, vp, "%d out of 24 bits", n)
				continue
			}
			if prev := vniPaths[uint32(n)]; prev != "" {
				v.ps.add(ErrDuplicate, vp, "VNI %d is already %s", n, prev)
				continue
			}
			vniPaths[uint32(n)] = vp
			t.VNIs = append(t.VNIs, uint32(n))
		}
		slices.Sort(t.VNIs)
		v.in.Tenants = append(v.in.Tenants, *t)
	}
	if len(vniPaths) > pipeline.VNITenantTableSize {
		v.ps.add(ErrCapacity, "tenants", "%d VNIs, vni_tenant holds %d", len(vniPaths), pipeline.VNITenantTableSize)
	}
	for i := range v.in.Tenants {
		t := &v.in.Tenants[i]
		if t.Name != "" && v.tenants[t.Name] == nil {
			v.tenants[t.Name] = t
		}
		for _, n := range t.VNIs {
			v.vniOwner[n] = t
		}
	}
}

func (v *validator) poolsSection(specs []PoolSpec) {
	if len(specs) == 0 {
		v.ps.add(ErrRequired, "pools", "at least one pool is needed")
	}
	if len(specs) > MaxPools {
		v.ps.add(ErrCapacity, "pools", "%d pools, at most %d: backend_select holds %d pools of %d buckets and one is kept free for rebuilding a pool make-before-break",
			len(specs), MaxPools, pipeline.BackendSelectTableSize/pipeline.Buckets, pipeline.Buckets)
	}
	names := map[string]string{}
	ids := map[uint16]idUse{}
	backendIDs := map[uint16]idUse{}
	underlay := map[netip.Addr]string{}
	var order []string // backend names, first-declaration order
	for i, ps := range specs {
		path := idx("pools", i)
		v.name(path, ps.Name, names)
		id, _ := v.assignID(path, KindPool, ps.Name, ps.ID, MaxPoolID, ids)
		p := Pool{Name: ps.Name, ID: id, Cluster: Cluster(ps.Cluster), Hash: HashAll, HealthFailover: ps.HealthFailover}
		switch p.Cluster {
		case ClusterBase, ClusterGray:
		case "":
			v.ps.add(ErrRequired, dot(path, "cluster"), "missing (base or gray)")
		default:
			v.ps.add(ErrRange, dot(path, "cluster"), "%q: must be base or gray", ps.Cluster)
		}
		if ps.HashFields != nil {
			p.Hash = 0
			if len(ps.HashFields) == 0 {
				v.ps.add(ErrRequired, dot(path, "hash_fields"), "empty: every flow would hash to one bucket; omit the field to hash on all fields")
			}
			for j, f := range ps.HashFields {
				h, ok := ParseHashField(f)
				switch {
				case !ok:
					v.ps.add(ErrRange, idx(dot(path, "hash_fields"), j), "%q is not one of %s", f, strings.Join(hashFieldNames, ", "))
				case p.Hash&h != 0:
					v.ps.add(ErrDuplicate, idx(dot(path, "hash_fields"), j), "%q listed twice", f)
				}
				p.Hash |= h
			}
		}
		if len(ps.Backends) == 0 {
			v.ps.add(ErrRequired, dot(path, "backends"), "a pool needs at least one backend")
		}
		if len(ps.Backends) > pipeline.Buckets {
			v.ps.add(ErrCapacity, dot(path, "backends"), "%d backends, more than the %d buckets of a pool", len(ps.Backends), pipeline.Buckets)
		}
		members := map[string]string{}
		positive, lastZero := false, ""
		for j, bs := range ps.Backends {
			bp := idx(dot(path, "backends"), j)
			m := Member{Backend: bs.Name, Weight: 1}
			if bs.Weight != nil {
				if *bs.Weight < 0 || *bs.Weight > MaxWeight {
					v.ps.add(ErrRange, dot(bp, "weight"), "%d out of range 0-%d", *bs.Weight, MaxWeight)
				} else {
					m.Weight = uint32(*bs.Weight)
				}
			}
			if m.Weight > 0 {
				positive = true
			} else {
				lastZero = dot(bp, "weight")
			}
			// The backend's identity, shared by every pool it is a member of.
			if bs.Name == "" {
				v.ps.add(ErrRequired, dot(bp, "name"), "missing")
				continue
			}
			if !validName(bs.Name) {
				v.ps.add(ErrRange, dot(bp, "name"), "%q: names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", bs.Name)
				continue
			}
			if prev := members[bs.Name]; prev != "" {
				v.ps.add(ErrDuplicate, dot(bp, "name"), "%q is already %s", bs.Name, prev)
				continue
			}
			members[bs.Name] = bp
			p.Members = append(p.Members, m)
			if d := v.backends[bs.Name]; d != nil {
				v.sameBackend(bp, bs, d)
				continue
			}
			d := &backendDecl{path: bp, spec: bs, b: Backend{Name: bs.Name}}
			v.backends[bs.Name] = d
			order = append(order, bs.Name)
			d.b.ID, _ = v.assignID(bp, KindBackend, bs.Name, bs.ID, MaxID, backendIDs)
			if a, ok := v.ip(dot(bp, "underlay_ip"), bs.UnderlayIP); ok {
				if prev := underlay[a]; prev != "" {
					v.ps.add(ErrDuplicate, dot(bp, "underlay_ip"), "%s is already the underlay_ip of %s; a backend in several pools keeps one name", a, prev)
				}
				underlay[a] = bp
				d.b.UnderlayIP = a
			}
			d.b.MAC, _ = v.mac(dot(bp, "mac"), bs.MAC)
			if bs.Port < 0 || bs.Port > MaxPort {
				v.ps.add(ErrRange, dot(bp, "port"), "%d out of range 0-%d (9 bits)", bs.Port, MaxPort)
			} else {
				d.b.Port = uint16(bs.Port)
				for _, g := range v.gateways {
					if _, ok := g.Port(d.b.Port); !ok && g.Name != "" {
						v.ps.add(ErrUnknownRef, dot(bp, "port"), "%d is not a port of gateway %q", bs.Port, g.Name)
					}
				}
			}
		}
		if !positive && lastZero != "" {
			v.ps.add(ErrNoWeight, lastZero, "0 with no other backend of weight > 0")
		}
		v.in.Pools = append(v.in.Pools, p)
	}
	if len(order) > pipeline.BackendTableSize {
		v.ps.add(ErrCapacity, "pools", "%d distinct backends, the backend table holds %d", len(order), pipeline.BackendTableSize)
	}
	for _, n := range order {
		v.in.Backends = append(v.in.Backends, v.backends[n].b)
	}
	for i := range v.in.Pools {
		p := &v.in.Pools[i]
		if p.Name != "" && v.pools[p.Name] == nil {
			v.pools[p.Name] = p
		}
	}
}

// sameBackend checks that a further declaration of a backend agrees with the first.
func (v *validator) sameBackend(path string, bs BackendSpec, d *backendDecl) {
	f := d.spec
	differs := func(field, a, b string) {
		if a != b {
			v.ps.add(ErrConflict, dot(path, field), "%s differs from %s (%s): backend %q is declared in several pools and all but its weight must agree",
				a, d.path, b, bs.Name)
		}
	}
	idStr := func(p *int64) string {
		if p == nil {
			return "absent"
		}
		return strconv.FormatInt(*p, 10)
	}
	differs("id", idStr(bs.ID), idStr(f.ID))
	differs("underlay_ip", bs.UnderlayIP, f.UnderlayIP)
	differs("mac", strings.ToLower(bs.MAC), strings.ToLower(f.MAC))
	differs("port", strconv.FormatInt(bs.Port, 10), strconv.FormatInt(f.Port, 10))
}

// ipv6NextHops refuses an IPv6 VIP while a gateway has no bgp_next_hop_v6:
// every gateway serves every VIP, and an IPv6 route needs an IPv6 next hop.
func (v *validator) ipv6NextHops(specs []GatewaySpec) {
	for _, x := range v.in.VIPs {
		if !x.Address.Is6() {
			continue
		}
		for i, gs := range specs {
			if gs.BGPNextHopV6 == "" {
				v.ps.add(ErrRequired, dot(idx("gateways", i), "bgp_next_hop_v6"),
					"missing: VIP %s is IPv6 (%s), announced with each gateway's IPv6 next hop", x.Name, x.Address)
			}
		}
		return
	}
}

func (v *validator) vipsSection(specs []VIPSpec) {
	n4 := 0
	for _, vs := range specs {
		if a, err := netip.ParseAddr(vs.Address); err != nil || a.Is4() {
			n4++
		}
	}
	if n4 > pipeline.VIPTableSize {
		v.ps.add(ErrCapacity, "vips", "%d IPv4 VIPs, the vip table holds %d", n4, pipeline.VIPTableSize)
	}
	if n6 := len(specs) - n4; n6 > VIPV6TableSize {
		v.ps.add(ErrCapacity, "vips", "%d IPv6 VIPs, the vip_v6 table holds %d", n6, VIPV6TableSize)
	}
	names := map[string]string{}
	ids := map[uint16]idUse{}
	addrs := map[netip.Addr]string{}
	for i, vs := range specs {
		path := idx("vips", i)
		v.name(path, vs.Name, names)
		id, _ := v.assignID(path, KindVIP, vs.Name, vs.ID, MaxID, ids)
		vip := VIP{Name: vs.Name, ID: id, DefaultPool: vs.DefaultPool}
		if a, ok := v.ip(dot(path, "address"), vs.Address); ok {
			vip.Address = a
			if prev := addrs[a]; prev != "" {
				v.ps.add(ErrDuplicate, dot(path, "address"), "%s is already the address of %s", a, prev)
			}
			addrs[a] = path
			for _, b := range v.in.Backends {
				if b.UnderlayIP == a {
					v.ps.add(ErrConflict, dot(path, "address"), "%s is also the underlay_ip of %s: packets would loop through the gateway", a, v.backends[b.Name].path)
				}
			}
		}
		switch {
		case vs.DefaultPool == "":
			v.ps.add(ErrRequired, dot(path, "default_pool"), "missing")
		case v.pools[vs.DefaultPool] == nil:
			v.ps.add(ErrUnknownRef, dot(path, "default_pool"), "unknown pool %q", vs.DefaultPool)
		}
		v.in.VIPs = append(v.in.VIPs, vip)
	}
	for i := range v.in.VIPs {
		x := &v.in.VIPs[i]
		if x.Name != "" && v.vips[x.Name] == nil {
			v.vips[x.Name] = x
		}
	}
}

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

var protoNames = map[string]uint8{"icmp": protoICMP, "tcp": 6, "udp": 17, "icmpv6": protoICMPv6}

func (v *validator) rulesSection(specs []RuleSpec) {
	names := make(map[string]string, len(specs))
	v.in.Rules = make([]Rule, 0, len(specs))
	okRules := make([]int, 0, len(specs))
	mirrors := 0 // mirrored rules so far: the next one's mirror_id
	for i, rs := range specs {
		path := idx("gray_rules", i)
		v.name(path, rs.Name, names)
		r := Rule{Name: rs.Name, Index: i, Pool: rs.Pool, Percent: 100}
		ok := v.match(dot(path, "match"), &rs.Match, &r)
		switch {
		case rs.Pool == "":
			v.ps.add(ErrRequired, dot(path, "pool"), "missing")
		case v.pools[rs.Pool] == nil:
			v.ps.add(ErrUnknownRef, dot(path, "pool"), "unknown pool %q", rs.Pool)
		}
		if rs.Percent != nil {
			p := *rs.Percent
			// !(p > 0) also catches NaN.
			if !(p > 0) || p > 100 {
				v.ps.add(ErrRange, dot(path, "percent"), "%v out of range (0, 100]", p)
				ok = false
			} else if p < 100 {
				t := math.Round(p / 100 * 65536)
				switch {
				case t < 1:
					v.ps.add(ErrRange, dot(path, "percent"), "%v is below the 1/65536 resolution of split_pool", p)
					ok = false
				case t > 65535:
					v.ps.add(ErrRange, dot(path, "percent"), "%v rounds to 65536/65536; write 100", p)
					ok = false
				default:
					r.Percent, r.Threshold = p, uint16(t)
				}
			}
		}
		if m := rs.Mirror; m != nil {
			mpath := dot(path, "mirror")
			rate := int64(1)
			if m.Rate != nil {
				rate = *m.Rate
			}
			mirrors++
			switch {
			case m.Pool == "":
				v.ps.add(ErrRequired, dot(mpath, "pool"), "missing")
				ok = false
			case v.pools[m.Pool] == nil:
				v.ps.add(ErrUnknownRef, dot(mpath, "pool"), "unknown pool %q", m.Pool)
				ok = false
			case m.Pool == rs.Pool:
				v.ps.add(ErrConflict, dot(mpath, "pool"), "the rule's own pool %q: a copy would go where the frame goes", m.Pool)
				ok = false
			case rate < 1 || rate > 65536:
				v.ps.add(ErrRange, dot(mpath, "rate"), "%d out of range 1-65536 (1 in N VMs)", rate)
				ok = false
			case r.Threshold != 0:
				v.ps.add(ErrConflict, mpath, "a mirror does not combine with percent < 100 (set_pool_mirror serves like set_pool)")
				ok = false
			case r.Key.Family == Family6:
				v.ps.add(ErrConflict, mpath, "not supported on an IPv6 rule: gray_rules_v6 has no mirror action (docs/pipeline.md §10)")
				ok = false
			case mirrors >= pipeline.MirrorIDs:
				v.ps.add(ErrCapacity, mpath, "more than %d mirrored rules (mirror_counter cells)", pipeline.MirrorIDs-1)
				ok = false
			default:
				r.MirrorPool, r.MirrorRate, r.MirrorSample, r.MirrorID = m.Pool, int(rate), pipeline.Sample(int(rate)), uint16(mirrors)
			}
		}
		r.Tier = tierOf(&r.Match)
		r.Priority = DerivedPriority(r.Tier, r.Key.Bits())
		if rs.Priority != nil {
			if *rs.Priority < 1 || *rs.Priority > math.MaxInt32 {
				v.ps.add(ErrRange, dot(path, "priority"), "%d out of range 1-%d", *rs.Priority, math.MaxInt32)
				ok = false
			} else {
				r.Priority, r.PriorityExplicit = int32(*rs.Priority), true
			}
		}
		v.in.Rules = append(v.in.Rules, r)
		if ok {
			okRules = append(okRules, len(v.in.Rules)-1)
		}
	}
	v.ruleCapacity()
	// The overlap check looks at the valid rules only (all of them, usually:
	// no copy then).
	rules := v.in.Rules
	if len(okRules) != len(rules) {
		rules = make([]Rule, len(okRules))
		for i, k := range okRules {
			rules[i] = v.in.Rules[k]
		}
	}
	v.overlaps(rules)
}

// ruleCapacity refuses more rules than a table holds: an IPv4 rule takes a
// gray_rules entry, an IPv6 rule a gray_rules_v6 one, and a rule without an
// address one of each.
func (v *validator) ruleCapacity() {
	var n4, n6 int
	for i := range v.in.Rules {
		f := v.in.Rules[i].Key.Family
		if f != Family6 {
			n4++
		}
		if f != Family4 {
			n6++
		}
	}
	if n4 > pipeline.GrayRulesTableSize {
		v.ps.add(ErrCapacity, "gray_rules", "%d rules take a gray_rules entry (IPv4 or no address), gray_rules holds %d", n4, pipeline.GrayRulesTableSize)
	}
	if n6 > GrayRulesV6TableSize {
		v.ps.add(ErrCapacity, "gray_rules", "%d rules take a gray_rules_v6 entry (IPv6 or no address), gray_rules_v6 holds %d", n6, GrayRulesV6TableSize)
	}
}

// overlaps refuses two rules of equal priority that match a common packet: the
// target would pick either (docs/pipeline.md, gray_rules). Rules that fix
// different VNIs never overlap, so only rules of one priority and one VNI (or
// with a wildcard VNI) are compared pairwise.
func (v *validator) overlaps(rules []Rule) {
	// Only rules of equal priority can conflict, and two keys overlap exactly
	// when their values agree on the bits both masks fix. So the rules of one
	// priority are grouped by mask (a few classes: VM, prefix, VNI...), and for
	// each pair of classes the values projected on the common mask are matched
	// through a map: linear in the rules (plus the overlaps found), where
	// comparing every pair of 10k rules would take 50M checks.
	// A class's mask includes the family: IPv4 and IPv6 rules are in
	// different classes, and never overlap (ternary.and).
	type class struct {
		mask  ternary
		rules []int
	}
	byPrio := map[int32][]*class{}
	classOf := map[int32]map[ternary]*class{}
	var prios []int32
	for i := range rules {
		r := &rules[i]
		m := r.Key.mask()
		if classOf[r.Priority] == nil {
			classOf[r.Priority] = map[ternary]*class{}
			prios = append(prios, r.Priority)
		}
		c := classOf[r.Priority][m]
		if c == nil {
			c = &class{mask: m}
			classOf[r.Priority][m] = c
			byPrio[r.Priority] = append(byPrio[r.Priority], c)
		}
		c.rules = append(c.rules, i)
	}
	type pair struct{ a, b int } // a < b, indexes into rules
	var found []pair
	add := func(i, j int) {
		if i > j {
			i, j = j, i
		}
		found = append(found, pair{i, j})
	}
	for _, prio := range prios {
		classes := byPrio[prio]
		for x, a := range classes {
			for _, b := range classes[x:] {
				if a.mask.fam != FamilyAny && b.mask.fam != FamilyAny && a.mask.fam != b.mask.fam {
					continue // gray_rules and gray_rules_v6
				}
				cm := a.mask.and(b.mask)
				at := func(i int) ternary { return rules[i].Key.project(cm) }
				seen := make(map[ternary][]int, len(b.rules))
				if a == b {
					for _, i := range a.rules {
						k := at(i)
						for _, j := range seen[k] {
							add(j, i)
						}
						seen[k] = append(seen[k], i)
					}
					continue
				}
				for _, j := range b.rules {
					k := at(j)
					seen[k] = append(seen[k], j)
				}
				for _, i := range a.rules {
					for _, j := range seen[at(i)] {
						add(i, j)
					}
				}
			}
		}
	}
	slices.SortFunc(found, func(p, q pair) int {
		if p.b != q.b {
			return p.b - q.b
		}
		return p.a - q.a
	})
	for _, p := range found {
		a, b := &rules[p.a], &rules[p.b]
		how := "derived"
		if b.PriorityExplicit {
			how = "explicit"
		}
		v.ps.add(ErrOverlap, idx("gray_rules", b.Index),
			"rule %q overlaps gray_rules[%d] %q at the same priority %d (%s); give one an explicit priority or narrow its match",
			b.Name, a.Index, a.Name, b.Priority, how)
	}
}

// match resolves a selector into r.Match and r.Key; it reports whether it is valid.
func (v *validator) match(path string, ms *MatchSpec, r *Rule) bool {
	m, k := &r.Match, &r.Key
	n := len(v.ps.list)
	empty := true
	if ms.VIP != "" {
		empty = false
		if x := v.vips[ms.VIP]; x == nil {
			v.ps.add(ErrUnknownRef, dot(path, "vip"), "unknown VIP %q", ms.VIP)
		} else {
			m.VIP, m.VIPID = ms.VIP, x.ID
			k.VIPID, k.VIPMask = x.ID, 0xffff
		}
	}
	if ms.VNI != nil {
		empty = false
		if *ms.VNI < 0 || *ms.VNI > pipeline.MaxVNI {
			v.ps.add(ErrRange, dot(path, "vni"), "%d out of 24 bits", *ms.VNI)
		} else {
			m.HasVNI, m.VNI = true, uint32(*ms.VNI)
			k.Value.VNI, k.Mask.VNI = m.VNI, pipeline.MaxVNI
		}
	}
	if ms.Tenant != "" {
		empty = false
		t := v.tenants[ms.Tenant]
		switch {
		case t == nil:
			v.ps.add(ErrUnknownRef, dot(path, "tenant"), "unknown tenant %q", ms.Tenant)
		case m.HasVNI && v.vniOwner[m.VNI] != t:
			owner := "no tenant"
			if o := v.vniOwner[m.VNI]; o != nil {
				owner = fmt.Sprintf("tenant %q", o.Name)
			}
			v.ps.add(ErrConflict, dot(path, "tenant"), "%q, but vni %d belongs to %s: the rule would never match", ms.Tenant, m.VNI, owner)
		default:
			m.Tenant, m.TenantID = ms.Tenant, t.ID
			k.Value.Tenant, k.Mask.Tenant = t.ID, 0xffff
		}
	}
	prefix := func(field, s string) netip.Prefix {
		if s == "" {
			return netip.Prefix{}
		}
		empty = false
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				v.ps.add(ErrAddress, dot(path, field), "%q is not an IPv4 or IPv6 prefix or address", s)
				return netip.Prefix{}
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		switch {
		case p.Addr().Is4In6():
			v.ps.add(ErrAddress, dot(path, field), "%q is an IPv4-mapped IPv6 prefix: write the IPv4 prefix", s)
		case p.Masked() != p:
			v.ps.add(ErrAddress, dot(path, field), "%q has host bits set (did you mean %s?)", s, p.Masked())
		case p.Bits() == 0:
			v.ps.add(ErrRange, dot(path, field), "%q matches every address: omit the field", s)
		default:
			return p
		}
		return netip.Prefix{}
	}
	m.Src, m.Dst = prefix("src", ms.Src), prefix("dst", ms.Dst)
	if m.Src.IsValid() && m.Dst.IsValid() && familyOf(m.Src.Addr()) != familyOf(m.Dst.Addr()) {
		v.ps.add(ErrConflict, dot(path, "dst"), "%s is %s and src %s is %s: a rule's addresses are of one family (write one rule per family)",
			ms.Dst, familyOf(m.Dst.Addr()), ms.Src, familyOf(m.Src.Addr()))
		m.Src, m.Dst = netip.Prefix{}, netip.Prefix{}
	}
	k.setPrefix(m.Src, &k.Value.Src, &k.Mask.Src, &k.Src6, &k.Src6Mask)
	k.setPrefix(m.Dst, &k.Value.Dst, &k.Mask.Dst, &k.Dst6, &k.Dst6Mask)
	if ms.Proto != "" {
		empty = false
		p, ok := protoNames[strings.ToLower(ms.Proto)]
		if !ok {
			n, err := strconv.ParseUint(ms.Proto, 10, 8)
			if err != nil {
				v.ps.add(ErrRange, dot(path, "proto"), "%q: tcp, udp, icmp, icmpv6 or a protocol number 0-255", ms.Proto)
			}
			p, ok = uint8(n), err == nil
		}
		// ICMP of the other family would never match: an IPv6 flow's ICMP is 58.
		switch {
		case ok && p == protoICMP && k.Family == Family6:
			v.ps.add(ErrConflict, dot(path, "proto"), "%q with IPv6 addresses: ICMP over IPv6 is icmpv6 (58), the rule would never match", ms.Proto)
			ok = false
		case ok && p == protoICMPv6 && k.Family == Family4:
			v.ps.add(ErrConflict, dot(path, "proto"), "%q with IPv4 addresses: ICMPv6 is IPv6 only, the rule would never match", ms.Proto)
			ok = false
		}
		if ok {
			m.HasProto, m.Proto = true, p
			k.Value.Proto, k.Mask.Proto = p, 0xff
		}
	}
	port := func(field string, x *int64) (bool, uint16) {
		if x == nil {
			return false, 0
		}
		empty = false
		if *x < 0 || *x > 65535 {
			v.ps.add(ErrRange, dot(path, field), "%d out of range 0-65535", *x)
			return false, 0
		}
		if m.HasProto && m.Proto != 6 && m.Proto != 17 {
			v.ps.add(ErrConflict, dot(path, field), "a port with proto %s: only TCP and UDP have ports, the rule would never match", ms.Proto)
			return false, 0
		}
		return true, uint16(*x)
	}
	m.HasSPort, m.SPort = port("sport", ms.SPort)
	if m.HasSPort {
		k.Value.SPort, k.Mask.SPort = m.SPort, 0xffff
	}
	m.HasDPort, m.DPort = port("dport", ms.DPort)
	if m.HasDPort {
		k.Value.DPort, k.Mask.DPort = m.DPort, 0xffff
	}
	if empty {
		v.ps.add(ErrRequired, path, "empty: a rule must select something (a vip at least)")
	} else if ms.VIP == "" {
		v.anyVIP(path)
	}
	return len(v.ps.list) == n
}

// anyVIP refuses a rule without a vip when the VIPs are different services
// (different default pools): it would send every VIP's selected traffic to one
// pool, e.g. NAT traffic to the router's gray pool.
func (v *validator) anyVIP(path string) {
	var first *VIP
	for i := range v.in.VIPs {
		x := &v.in.VIPs[i]
		if first == nil {
			first = x
		} else if x.DefaultPool != first.DefaultPool {
			v.ps.add(ErrConflict, dot(path, "vip"), "missing, and the VIPs serve different default pools (%s: %s, %s: %s): name the VIP the rule is for",
				first.Name, first.DefaultPool, x.Name, x.DefaultPool)
			return
		}
	}
}

// validTarget accepts a P4Runtime address: host:port, or a unix socket as
// unix:///absolute/path (the agent's local listener).
func validTarget(addr string) bool {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		return strings.HasPrefix(path, "/") && len(path) > 1
	}
	host, port, err := net.SplitHostPort(addr)
	return err == nil && host != "" && validPort(port)
}

// families refuses a backend whose underlay address is not of the family of a
// VIP its pool serves: the gateway rewrites the outer header of the VIP's
// family only (a mismatch would be dropped as BACKEND_FAMILY). A pool serves
// the VIPs it is the default pool of, and those of the rules that send (or
// mirror) to it: the rule's VIP, or every VIP for a rule without one.
func (v *validator) families(pools []PoolSpec) {
	serves := map[string][]*VIP{}
	add := func(pool string, x *VIP) {
		if !slices.Contains(serves[pool], x) {
			serves[pool] = append(serves[pool], x)
		}
	}
	for i := range v.in.VIPs {
		add(v.in.VIPs[i].DefaultPool, &v.in.VIPs[i])
	}
	for i := range v.in.Rules {
		r := &v.in.Rules[i]
		for j := range v.in.VIPs {
			x := &v.in.VIPs[j]
			if r.Match.VIP == "" || r.Match.VIP == x.Name {
				add(r.Pool, x)
				if r.MirrorPool != "" {
					add(r.MirrorPool, x)
				}
			}
		}
	}
	for i, ps := range pools {
		for j, bs := range ps.Backends {
			d := v.backends[bs.Name]
			if d == nil || !d.b.UnderlayIP.IsValid() {
				continue
			}
			fam := familyOf(d.b.UnderlayIP)
			for _, x := range serves[ps.Name] {
				if x.Address.IsValid() && familyOf(x.Address) != fam {
					v.ps.add(ErrConflict, dot(idx(dot(idx("pools", i), "backends"), j), "underlay_ip"),
						"backend %q has an %s underlay_ip (%s), but pool %q serves VIP %q (%s, %s): a VIP's backends have underlay addresses of the VIP's family",
						bs.Name, fam, d.b.UnderlayIP, ps.Name, x.Name, x.Address, familyOf(x.Address))
					break
				}
			}
		}
	}
}
