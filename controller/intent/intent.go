// Package intent is graygw's intent model: what the operator wants the gray
// gateways to do, as one YAML document (docs/intent.md), and its validation.
//
// Parse decodes a document strictly into a Spec (the document as written);
// Spec.Validate checks everything at once and resolves it into an Intent, in
// which every numeric id, rule priority, address and ternary key is settled, so
// that package compile can turn it into table entries without further checks.
// Load does both. A document with problems yields an *Errors listing all of them,
// each naming its field ("pools[1].backends[2].weight: ...") and wrapping one of
// the Err* classes, and never a partial Intent.
package intent

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/graygw/graygw/internal/find"
	"github.com/graygw/graygw/pipeline"
)

// Limits of numeric fields.
const (
	// MaxPoolID is the largest pool base id: pool_id is 16 bits and its top bit is
	// the version slot.
	MaxPoolID = 1<<15 - 1
	// MaxID is the largest VIP, backend and tenant id (16-bit fields).
	MaxID = 1<<16 - 1
	// MaxWeight is the largest backend weight.
	MaxWeight = 1_000_000
	// MaxPort is the largest gateway port number (9 bits).
	MaxPort = 1<<pipeline.PortIDBits - 1
	// VIPV6TableSize and GrayRulesV6TableSize are the sizes of vip_v6 and
	// gray_rules_v6 (docs/pipeline.md, Sizes) on v1model and XDP; a Tofino
	// build holds fewer v6 rules (the engine refuses what its P4Info lacks).
	VIPV6TableSize       = 1024
	GrayRulesV6TableSize = 4096
	// MaxPools is the largest number of pools: backend_select holds
	// BackendSelectTableSize/Buckets = 64 pool versions, and one is kept free so a
	// pool can always be rebuilt make-before-break (two versions live at once).
	MaxPools = pipeline.BackendSelectTableSize/pipeline.Buckets - 1
)

// Intent is a validated intent with every id, priority and address resolved.
// Slices are sorted by name, except Rules, which keep the document order.
type Intent struct {
	Gateways []Gateway
	VIPs     []VIP
	Pools    []Pool
	// Backends are all distinct backends of all pools (a backend may be a member of
	// several pools).
	Backends []Backend
	Tenants  []Tenant
	Rules    []Rule
	// VPCs is the inventory (sorted by VNI; empty when the document has none).
	// It compiles to no table entry: probes are derived from it.
	VPCs []VPC
}

// VPC is a resolved inventory entry: a VNI's VMs and route table.
type VPC struct {
	VNI       uint32
	Tenant    string // the tenant the VNI belongs to
	CIDRs     []netip.Prefix
	RouterMAC string // as written (validated); "" = the probe host's default
	Routes    []Route
	VMs       []VM // in document order
}

// Route is a resolved route table entry.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr // invalid when absent
}

// Dest is the address probes for the route go to: its next hop when given,
// else the prefix's first host address (network + 1; the prefix's own address
// for a /31 or /32, an IPv6 /127 or /128).
func (r Route) Dest() netip.Addr {
	if r.NextHop.IsValid() {
		return r.NextHop
	}
	a := r.Prefix.Addr()
	if r.Prefix.Bits() >= a.BitLen()-1 {
		return a
	}
	return a.Next()
}

// VM is a resolved VM of the inventory.
type VM struct {
	Address netip.Addr
	Name    string
	MAC     string // as written (validated); "" when absent
}

// VPC returns the inventory entry of a VNI.
func (in *Intent) VPC(vni uint32) (*VPC, bool) {
	return find.First(in.VPCs, func(v *VPC) bool { return v.VNI == vni })
}

// Gateway is a gray gateway.
type Gateway struct {
	Name       string
	P4Runtime  string // host:port
	DeviceID   uint64
	BGPNextHop netip.Addr
	// BGPNextHopV6 is the next hop of the IPv6 VIPs' paths; the zero Addr
	// when the gateway has none (the intent then has no IPv6 VIP).
	BGPNextHopV6 netip.Addr
	Ports        []Port // sorted by number
}

// Port is a gateway port.
type Port struct {
	Number    uint16
	Interface string
	MAC       [6]byte
	// AcceptVIDs are the VIDs whose tagged frames the port serves, sorted.
	AcceptVIDs []uint16
	// TagVID is the VID frames leave the port tagged with; 0: untagged.
	TagVID uint16
}

// Equal reports whether p and q are the same port, configured the same.
func (p Port) Equal(q Port) bool {
	return p.Number == q.Number && p.Interface == q.Interface && p.MAC == q.MAC &&
		slices.Equal(p.AcceptVIDs, q.AcceptVIDs) && p.TagVID == q.TagVID
}

// Port returns the gateway's port with the given number.
func (g *Gateway) Port(n uint16) (Port, bool) {
	for _, p := range g.Ports {
		if p.Number == n {
			return p, true
		}
	}
	return Port{}, false
}

// VIP is a resolved VIP.
type VIP struct {
	Name        string
	ID          uint16
	Address     netip.Addr
	DefaultPool string
}

// Cluster says which software version a pool's backends run.
type Cluster string

// Clusters.
const (
	ClusterBase Cluster = "base"
	ClusterGray Cluster = "gray"
)

// Pool is a resolved pool.
type Pool struct {
	Name    string
	ID      uint16 // base id, 1..MaxPoolID
	Cluster Cluster
	Hash    HashFields
	Members []Member // in document order
	// HealthFailover: health checks move a down member's buckets to the
	// others (controller/failover).
	HealthFailover bool
}

// Member is a backend's membership in a pool.
type Member struct {
	Backend string // Backend.Name
	Weight  uint32
}

// Backend is a resolved backend.
type Backend struct {
	Name       string
	ID         uint16
	UnderlayIP netip.Addr
	MAC        [6]byte
	Port       uint16
}

// Tenant is a resolved tenant.
type Tenant struct {
	Name string
	ID   uint16
	VNIs []uint32 // sorted
}

// Rule is a resolved gray rule.
type Rule struct {
	Name string
	// Index is the rule's position in the document's gray_rules.
	Index int
	// Match is the rule's selector as written (with names resolved).
	Match Match
	// Key is the ternary key of the rule's entry: in gray_rules for an IPv4
	// rule, gray_rules_v6 for an IPv6 one, both when it has no address
	// (Key.Family).
	Key Key
	// Tier is the specificity class the derived priority is based on.
	Tier Tier
	// Priority is the entry's priority (larger wins), explicit or derived.
	Priority int32
	// PriorityExplicit says Priority was written in the document.
	PriorityExplicit bool
	// Pool is the target pool's name.
	Pool string
	// Percent is the share of VMs moved, 100 for a plain move.
	Percent float64
	// Threshold is split_pool's threshold, round(Percent/100*65536), for
	// Percent < 100; 0 when the rule is a plain set_pool.
	Threshold uint16
	// MirrorPool names the pool that receives a copy of the rule's traffic
	// (set_pool_mirror, docs/pipeline.md §10); "" for none.
	MirrorPool string
	// MirrorRate is the mirror's 1-in-N sampling per VM (1: every VM), and
	// MirrorSample its set_pool_mirror sample (pipeline.Sample).
	MirrorRate   int
	MirrorSample uint16
	// MirrorID numbers the mirrored rules in document order from 1: the
	// mirror_counter cell of the rule's copies.
	MirrorID uint16
}

// Mirrored reports whether the rule sends copies to a mirror pool.
func (r *Rule) Mirrored() bool { return r.MirrorPool != "" }

// Split reports whether the rule is a percentage split (split_pool) rather than a
// plain move (set_pool).
func (r *Rule) Split() bool { return r.Threshold != 0 }

// Match is a rule's selector with names resolved. Zero values are wildcards,
// except where a Has flag says the field is set.
type Match struct {
	VIP      string // "" = any
	VIPID    uint16
	HasVNI   bool
	VNI      uint32
	Tenant   string // "" = any
	TenantID uint16
	Src, Dst netip.Prefix // invalid = any
	HasProto bool
	Proto    uint8
	HasSPort bool
	SPort    uint16
	HasDPort bool
	DPort    uint16
}

// Family is the address family of a rule's addresses: it says which of the
// two gray rule tables the rule is written to (docs/intent.md, IPv6).
type Family uint8

// Families.
const (
	// FamilyAny: the rule fixes no address (VIP, VNI, tenant, protocol, ports
	// only): it matches flows of both families and is written to gray_rules
	// and gray_rules_v6.
	FamilyAny Family = 0
	// Family4: IPv4 addresses; gray_rules only.
	Family4 Family = 4
	// Family6: IPv6 addresses; gray_rules_v6 only.
	Family6 Family = 6
)

// String returns "any", "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case FamilyAny:
		return "any"
	case Family4:
		return "IPv4"
	case Family6:
		return "IPv6"
	}
	return fmt.Sprintf("family%d", uint8(f))
}

// Addr6 is a 128-bit address (or mask) of an IPv6 key, big-endian.
type Addr6 [16]byte

func (a Addr6) and(m Addr6) Addr6 {
	for i := range a {
		a[i] &= m[i]
	}
	return a
}

// Key is a gray rule's ternary key: value and mask over the VIP id and the
// flow fields (Flow.Tenant is the tenant id). A zero mask is a wildcard. An
// IPv4 rule's addresses are in Value.Src and Value.Dst, an IPv6 rule's in Src6
// and Dst6 (with their masks); Family says which, FamilyAny that the rule fixes
// no address.
type Key struct {
	VIPID, VIPMask uint16
	Value, Mask    pipeline.FlowKey
	Family         Family
	Src6, Src6Mask Addr6
	Dst6, Dst6Mask Addr6
}

// Overlaps reports whether some packet matches both keys. Keys of different
// families never do: their rules are in different tables.
func (k Key) Overlaps(o Key) bool {
	m := k.mask().and(o.mask())
	return k.project(m) == o.project(m)
}

// ternary is a Key's masks (VIP, flow fields, IPv6 addresses; fam set when the
// family is fixed), or a Key projected on such masks.
type ternary struct {
	vip        uint16
	flow       pipeline.FlowKey
	fam        Family
	src6, dst6 Addr6
}

// mask returns the fields k fixes; fam is k's family (0: any).
func (k Key) mask() ternary {
	return ternary{vip: k.VIPMask, flow: k.Mask, fam: k.Family, src6: k.Src6Mask, dst6: k.Dst6Mask}
}

// and is the mask two keys both fix: the family only when both fix one.
func (t ternary) and(u ternary) ternary {
	fam := Family(0xff)
	if t.fam == FamilyAny || u.fam == FamilyAny {
		fam = FamilyAny
	}
	return ternary{vip: t.vip & u.vip, flow: t.flow.And(u.flow), fam: fam, src6: t.src6.and(u.src6), dst6: t.dst6.and(u.dst6)}
}

// project returns k's values on the mask m: two keys overlap exactly when
// their projections on their common mask are equal.
func (k Key) project(m ternary) ternary {
	return ternary{vip: k.VIPID & m.vip, flow: k.Value.And(m.flow), fam: k.Family & m.fam,
		src6: k.Src6.and(m.src6), dst6: k.Dst6.and(m.dst6)}
}

// Bits is the number of key bits the rule fixes (0 to 160 for IPv4, to 352
// for IPv6).
func (k Key) Bits() int {
	n := ones(uint64(k.VIPMask)) + ones(uint64(k.Mask.VNI)) + ones(uint64(k.Mask.Tenant)) +
		ones(uint64(k.Mask.Src)) + ones(uint64(k.Mask.Dst)) + ones(uint64(k.Mask.Proto)) +
		ones(uint64(k.Mask.SPort)) + ones(uint64(k.Mask.DPort))
	for i := range k.Src6Mask {
		n += ones(uint64(k.Src6Mask[i])) + ones(uint64(k.Dst6Mask[i]))
	}
	return n
}

func ones(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// Pool returns the pool with the given name.
func (in *Intent) Pool(name string) (*Pool, bool) {
	return find.First(in.Pools, func(p *Pool) bool { return p.Name == name })
}

// Backend returns the backend with the given name.
func (in *Intent) Backend(name string) (*Backend, bool) {
	return find.First(in.Backends, func(b *Backend) bool { return b.Name == name })
}

// VIP returns the VIP with the given name.
func (in *Intent) VIP(name string) (*VIP, bool) {
	return find.First(in.VIPs, func(v *VIP) bool { return v.Name == name })
}

// Gateway returns the gateway with the given name.
func (in *Intent) Gateway(name string) (*Gateway, bool) {
	return find.First(in.Gateways, func(g *Gateway) bool { return g.Name == name })
}
