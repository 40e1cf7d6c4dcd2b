package model

import "github.com/graygw/graygw/pipeline"

// VIP is the action data of a vip entry.
type VIP struct {
	ID          uint16
	DefaultPool uint16
}

// RuleAction is what a matching gray rule does.
type RuleAction uint8

// Gray rule actions (P4: set_pool, split_pool, set_pool_mirror; gray_rules_v6
// has its own set_pool_v6 and split_pool_v6, the same two).
const (
	SetPool RuleAction = iota + 1
	SplitPool
	SetPoolMirror // set_pool, plus a copy to a mirror pool (docs/pipeline.md §10)
)

// GrayRule is a gray_rules entry: a ternary match over the VIP id and the flow
// fields, a priority (larger wins) and an action.
type GrayRule struct {
	Priority       int32
	VIPID, VIPMask uint16
	Match, Mask    pipeline.FlowKey // Tenant in Match/Mask is the tenant id
	Action         RuleAction
	Pool           uint16 // set_pool's and set_pool_mirror's pool, split_pool's pool_gray
	Threshold      uint16 // split_pool only, in 1/65536

	// set_pool_mirror only: a copy goes to MirrorPool when the split hash is
	// <= Sample, counted in mirror_counter[MirrorID].
	MirrorPool, Sample, MirrorID uint16
}

// Matches reports whether the rule's ternary key matches.
func (r *GrayRule) Matches(vipID uint16, k pipeline.FlowKey) bool {
	return ternaryMatches(r.VIPID, r.VIPMask, r.Match, r.Mask, vipID, k)
}

// RuleID returns the identity of a gray rule as P4Runtime sees it (masks,
// masked values and priority): the action fields cleared, the values ANDed with
// their masks and the VNI mask cut to 24 bits.
func RuleID(r GrayRule) GrayRule {
	ternaryID(&r.VIPID, r.VIPMask, &r.Match, &r.Mask)
	r.Action, r.Pool, r.Threshold = 0, 0, 0
	r.MirrorPool, r.Sample, r.MirrorID = 0, 0, 0
	return r
}

// GrayRuleV6 is a gray_rules_v6 entry: the ternary match of an IPv6 flow,
// with full 128-bit addresses, a priority (larger wins) and an action:
// SetPool or SplitPool (the table has no mirror action: IPv6 is never
// mirrored, docs/pipeline.md §10).
type GrayRuleV6 struct {
	Priority       int32
	VIPID, VIPMask uint16
	Match, Mask    pipeline.FlowKey6 // Tenant in Match/Mask is the tenant id
	Action         RuleAction
	Pool           uint16 // set_pool_v6's pool, split_pool_v6's pool_gray
	Threshold      uint16 // split_pool_v6 only, in 1/65536
}

// Matches reports whether the rule's ternary key matches.
func (r *GrayRuleV6) Matches(vipID uint16, k pipeline.FlowKey6) bool {
	return ternaryMatches(r.VIPID, r.VIPMask, r.Match, r.Mask, vipID, k)
}

// RuleIDV6 returns the identity of a gray_rules_v6 entry as P4Runtime sees it
// (RuleID's counterpart).
func RuleIDV6(r GrayRuleV6) GrayRuleV6 {
	ternaryID(&r.VIPID, r.VIPMask, &r.Match, &r.Mask)
	r.Action, r.Pool, r.Threshold = 0, 0, 0
	return r
}

// flowKey is pipeline.FlowKey or FlowKey6: gray_rules' and gray_rules_v6's
// flow fields.
type flowKey[K any] interface {
	comparable
	And(mask K) K
}

// ternaryMatches reports whether a gray rule's ternary key (vip_id value
// and mask, flow fields' values and masks) matches vipID and k.
func ternaryMatches[K flowKey[K]](id, idMask uint16, match, mask K, vipID uint16, k K) bool {
	return vipID&idMask == id&idMask && k.And(mask) == match.And(mask)
}

// ternaryID reduces a gray rule's ternary key to what P4Runtime keeps: the
// VNI mask cut to 24 bits (And does it: a mask ANDed with itself keeps
// every other field) and the values ANDed with their masks.
func ternaryID[K flowKey[K]](id *uint16, idMask uint16, match, mask *K) {
	*mask = (*mask).And(*mask)
	*match = (*match).And(*mask)
	*id &= idMask
}

// Counter is a packets and bytes pair: one cell of a direct or indexed
// counter (on XDP, summed over CPUs).
type Counter struct {
	Packets, Bytes uint64
}

// SelectKey is a backend_select key.
type SelectKey struct {
	Pool, Bucket uint16
}

// Backend is the action data of a backend entry: to_backend, or
// to_backend_v6 when IPv6 is set.
type Backend struct {
	Port       uint16
	SMAC, DMAC [6]byte
	UnderlayIP uint32 // to_backend
	// IPv6: the entry is to_backend_v6, whose underlay address is
	// UnderlayIPv6 (UnderlayIP is 0). A frame whose outer family is not the
	// entry's is dropped as BACKEND_FAMILY.
	IPv6         bool
	UnderlayIPv6 [16]byte
}

// PortVID is a vlan_accept key: an ingress port and a VID it accepts.
type PortVID struct {
	Port, VID uint16
}

// State is the content of every table.
type State struct {
	VIPs          map[uint32]VIP   // vip: outer dst IPv4 -> VIP
	VIPsV6        map[[16]byte]VIP // vip_v6: outer dst IPv6 -> VIP
	Tenants       map[uint32]uint16
	GrayRules     []GrayRule                  // applied to IPv4 flows
	GrayRulesV6   []GrayRuleV6                // applied to IPv6 flows
	PoolHash      map[uint16]pipeline.FlowKey // pool -> hash field masks
	BackendSelect map[SelectKey]uint16
	Backends      map[uint16]Backend
	// VLANAccept holds the (ingress port, VID) pairs whose tagged frames are
	// served; a tagged frame to a VIP on any other pair is VLAN_NOT_ACCEPTED.
	// Untagged frames are accepted on every port.
	VLANAccept map[PortVID]bool
	// PortVLAN is port_vlan: the VID frames leave an egress port tagged with;
	// a port without an entry sends them untagged.
	PortVLAN map[uint16]uint16
}

// NewState returns an empty State with its maps made.
func NewState() *State {
	return &State{
		VIPs: map[uint32]VIP{}, VIPsV6: map[[16]byte]VIP{}, Tenants: map[uint32]uint16{},
		PoolHash: map[uint16]pipeline.FlowKey{}, BackendSelect: map[SelectKey]uint16{},
		Backends: map[uint16]Backend{}, VLANAccept: map[PortVID]bool{}, PortVLAN: map[uint16]uint16{},
	}
}
