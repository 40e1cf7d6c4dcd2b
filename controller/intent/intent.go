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
	"net/netip"
	"slices"

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
// for a /31 or /32).
func (r Route) Dest() netip.Addr {
	if r.NextHop.IsValid() {
		return r.NextHop
	}
	a := r.Prefix.Addr()
	if r.Prefix.Bits() >= 31 {
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
	for i := range in.VPCs {
		if in.VPCs[i].VNI == vni {
			return &in.VPCs[i], true
		}
	}
	return nil, false
}

// Gateway is a gray gateway.
type Gateway struct {
	Name       string
	P4Runtime  string // host:port
	DeviceID   uint64
	BGPNextHop netip.Addr
	Ports      []Port // sorted by number
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
	// Key is the ternary key of the gray_rules entry.
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

// Key is a gray_rules ternary key: value and mask over the VIP id and the flow
// fields (Flow.Tenant is the tenant id). A zero mask is a wildcard.
type Key struct {
	VIPID, VIPMask uint16
	Value, Mask    pipeline.FlowKey
}

// Overlaps reports whether some packet matches both keys.
func (k Key) Overlaps(o Key) bool {
	if (k.VIPID^o.VIPID)&k.VIPMask&o.VIPMask != 0 {
		return false
	}
	m := k.Mask.And(o.Mask)
	return k.Value.And(m) == o.Value.And(m)
}

// Bits is the number of key bits the rule fixes (0 to 160).
func (k Key) Bits() int {
	return ones(uint64(k.VIPMask)) + ones(uint64(k.Mask.VNI)) + ones(uint64(k.Mask.Tenant)) +
		ones(uint64(k.Mask.Src)) + ones(uint64(k.Mask.Dst)) + ones(uint64(k.Mask.Proto)) +
		ones(uint64(k.Mask.SPort)) + ones(uint64(k.Mask.DPort))
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
	for i := range in.Pools {
		if in.Pools[i].Name == name {
			return &in.Pools[i], true
		}
	}
	return nil, false
}

// Backend returns the backend with the given name.
func (in *Intent) Backend(name string) (*Backend, bool) {
	for i := range in.Backends {
		if in.Backends[i].Name == name {
			return &in.Backends[i], true
		}
	}
	return nil, false
}

// VIP returns the VIP with the given name.
func (in *Intent) VIP(name string) (*VIP, bool) {
	for i := range in.VIPs {
		if in.VIPs[i].Name == name {
			return &in.VIPs[i], true
		}
	}
	return nil, false
}

// Gateway returns the gateway with the given name.
func (in *Intent) Gateway(name string) (*Gateway, bool) {
	for i := range in.Gateways {
		if in.Gateways[i].Name == name {
			return &in.Gateways[i], true
		}
	}
	return nil, false
}
