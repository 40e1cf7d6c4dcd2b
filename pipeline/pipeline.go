// Package pipeline holds the constants of the graygw pipeline contract
// (docs/pipeline.md) that every dataplane and the controller share: drop reasons,
// table sizes, the hash key layout and the well-known P4Info names.
package pipeline

// Buckets is the number of consistent-hash buckets per pool (a power of two).
// bucket = CRC32 & (Buckets-1).
const Buckets = 4096

// VXLANPort is the outer UDP destination port that marks VXLAN overlay traffic.
const VXLANPort = 4789

// Table sizes, as in p4src/shared/size.p4 and bpf/include/consts.h.
const (
	VIPTableSize           = 1024
	VIPv6TableSize         = 1024
	VNITenantTableSize     = 65536
	GrayRulesTableSize     = 16384
	GrayRulesV6TableSize   = 4096 // on Tofino what fits (docs/p4-targets.md)
	PoolHashTableSize      = 1024
	BackendSelectTableSize = 262144 // 64 pools x Buckets
	BackendTableSize       = 4096
	VLANAcceptTableSize    = 4096 // (ingress port, VID) pairs
	PortVLANTableSize      = 512  // one per port
)

// 802.1Q (docs/pipeline.md §1 and §8).
const (
	// EtherVLAN is the ethertype of an 802.1Q tag (C-tag). QinQ's S-tag
	// (0x88a8) is not parsed: such frames are NOT_IPV4.
	EtherVLAN = 0x8100
	// VLANTagLen is the tag's length: TCI (PCP 3, DEI 1, VID 12) and the
	// encapsulated ethertype.
	VLANTagLen = 4
	VIDBits    = 12
	// MaxVID is the largest VID a port may accept or send: 4095 is reserved.
	MaxVID = 4094
	// MaxVIDValue is the largest value of a 12-bit VID field (the tables take it).
	MaxVIDValue = 1<<VIDBits - 1
	// MaxPortID is the largest port number (9 bits).
	MaxPortID = 1<<PortIDBits - 1
)

// Mirror (docs/pipeline.md §10).
const (
	// MirrorIDs is the number of mirror_counter cells (mirror ids 0..MirrorIDs-1).
	MirrorIDs = 1024
	// MirrorDSCP marks a copy: its outer IPv4 DSCP (Lower-Effort, RFC 8622).
	MirrorDSCP = 1
	// MirrorSessionID is the clone session (v1model) or mirror session
	// (Tofino) that makes the copies.
	MirrorSessionID = 1
	// MirrorPortTofino and MirrorPortTofino2 are the mirror session's port on
	// Tofino: pipe 0's recirculation port, through which the copy comes back
	// to ingress (p4src/tna/include/mirror.p4 RECIRC_PORT).
	MirrorPortTofino  = 68
	MirrorPortTofino2 = 6
	// SampleAll is set_pool_mirror's sample for a copy of every frame.
	SampleAll = 0xffff
)

// Sample returns set_pool_mirror's sample for a rate of 1 in n (n >= 1): a copy
// when split_hash <= Sample(n), i.e. for 65536/n of the 65536 split hash values.
func Sample(n int) uint16 {
	if n <= 1 {
		return SampleAll
	}
	if n > 65536 {
		n = 65536
	}
	return uint16(65536/n - 1)
}

// Field widths in bits.
const (
	VNIBits    = 24
	PortIDBits = 9
)

// MaxVNI is the largest VNI (24 bits).
const MaxVNI = 1<<VNIBits - 1

// Well-known P4Info names (control GrayIngress of p4src/v1model/graygw_v1model.p4).
const (
	TableVIP           = "GrayIngress.vip"
	TableVNITenant     = "GrayIngress.vni_tenant"
	TableGrayRules     = "GrayIngress.gray_rules"
	TablePoolHash      = "GrayIngress.pool_hash"
	TableBackendSelect = "GrayIngress.backend_select"
	TableBackend       = "GrayIngress.backend"
	// IPv6 (issue 19): the outer IPv6 VIPs, and the gray rules of IPv6 flows.
	TableVIPv6       = "GrayIngress.vip_v6"
	TableGrayRulesV6 = "GrayIngress.gray_rules_v6"

	ActionSetVIP        = "GrayIngress.set_vip"
	ActionSetTenant     = "GrayIngress.set_tenant"
	ActionSetPool       = "GrayIngress.set_pool"
	ActionSplitPool     = "GrayIngress.split_pool"
	ActionSetHashMask   = "GrayIngress.set_hash_mask"
	ActionSetBackend    = "GrayIngress.set_backend"
	ActionToBackend     = "GrayIngress.to_backend"
	ActionSetPoolMirror = "GrayIngress.set_pool_mirror"
	ActionToBackendV6   = "GrayIngress.to_backend_v6" // an IPv6 underlay
	// The IPv6 tables' own actions, the parameters of set_vip, set_pool and
	// split_pool: bf-p4c binds an action that counts a direct counter to that
	// counter's one table, so no action is shared between a v4 and a v6 table
	// on any target (docs/p4-targets.md, "IPv6").
	ActionSetVIPv6    = "GrayIngress.set_vip_v6"
	ActionSetPoolV6   = "GrayIngress.set_pool_v6"
	ActionSplitPoolV6 = "GrayIngress.split_pool_v6"
	ActionNoAction    = "NoAction"

	// 802.1Q: the ingress port's accepted VIDs, and the egress port's tag.
	TableVLANAccept   = "GrayIngress.vlan_accept"
	ActionAcceptVLAN  = "GrayIngress.accept_vlan"
	TablePortVLAN     = "GrayEgress.port_vlan"
	ActionSetPortVLAN = "GrayEgress.set_port_vlan"

	CounterDropReasons       = "GrayIngress.drop_reasons"
	CounterMirror            = "GrayIngress.mirror_counter"
	CounterMirrorBackend     = "GrayIngress.mirror_backend_counter"
	DirectCounterVIP         = "GrayIngress.vip_counter"
	DirectCounterGrayRules   = "GrayIngress.gray_rules_counter"
	DirectCounterBackend     = "GrayIngress.backend_counter"
	DirectCounterVIPv6       = "GrayIngress.vip_v6_counter"
	DirectCounterGrayRulesV6 = "GrayIngress.gray_rules_v6_counter"
)
