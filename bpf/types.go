//go:build linux

package bpf

import (
	"net/netip"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Sizes of the maps, as in bpf/include/consts.h.
const (
	// MaxPools bounds how many pools own buckets at once (any pool ids):
	// backend_select is an array of MaxPools slots of pipeline.Buckets cells,
	// and pool_slot maps a pool id to its slot. One more pool is ErrFull.
	MaxPools = 64
	// MaxMasks bounds the distinct gray rule masks in use at once (the
	// tuple-space search visits at most this many hash lookups per packet).
	MaxMasks = 64
	// MaxPorts is the number of port slots (ports are 9 bits wide).
	MaxPorts = 512
	// MaxMasks6 bounds the distinct gray_rules_v6 masks in use at once.
	MaxMasks6 = 32
	// VIPV6Size and GrayRulesV6Size are the sizes of vip_v6 and
	// gray_rules_v6 (IPv6 contract: VIP_V6_TABLE_SIZE, GRAY_RULES_V6_TABLE_SIZE).
	VIPV6Size       = 1024
	GrayRulesV6Size = 4096
	// ABI is the layout version of the pinned maps (GRAYGW_ABI). 2: pool_slot
	// added, backend_select indexed by slot instead of pool id. 3: tss_filter
	// added (a Bloom filter over gray_rules that packets consult first), and
	// gray_masks entries carry packed mask words. 4: pool_slot words carry the
	// pool's hash mask above the slot (same sizes as 3). 5: gray_rules keys
	// packed in 24 bytes (was 28). 6: backend_ver and backend_cells added;
	// packets no longer read backends. 7: gray_masks one memory-mapped array
	// value by mask position (was one hash entry holding the list);
	// rule_index, rule_cells, tenant_dir, tenant_pages added. 8: rule_value
	// mirror fields, mirror counters. 9: tss_filter one memory-mapped value
	// (was an array of words). 10: maps vip_map and backends renamed vip
	// and backend, as P4 names the tables (an ABI 9 set is migrated in
	// place: migratePins).
	// 11: drop_reasons 17 cells (VLAN_NOT_ACCEPTED); vlan_accept,
	// ifindex_port and port_vlan added (802.1Q).
	// 12: drop_reasons 32 cells (the IPv6 reasons 17-22; 23-31 spare).
	// 13: IPv6: backend values grow an IPv6 underlay and a family (0:
	// IPv4, so an ABI 12 value zero-extended keeps its meaning); vip_v6,
	// gray_masks6, gray_rules_v6, rule6_store, vip6_counters and
	// rule6_counters added (an ABI 9 to 12 set is migrated in place).
	// 14: gray_masks6's value carries a Bloom filter (an ABI 13 set gets a
	// new gray_masks6, which Open rewrites from rule6_store).
	// 15: vip_index added: packets read the IPv4 VIPs from it, not from vip
	// (an ABI 9 to 14 set gets it empty; Open fills it from vip).
	// 16: select_cells added: packets read a bucket's backend cell from it,
	// not through backend_select and backend_ver (an ABI 9 to 15 set gets
	// it empty; Open fills it from backend_select and backend_ver).
	ABI = 16

	// DefaultPinDir is where maps (and links) are pinned unless Options say otherwise.
	DefaultPinDir = "/sys/fs/bpf/graygw"

	familyIPv6  = 1 // backend.family of to_backend_v6 (FAMILY_IPV6; 0 is IPv4)
	progXDP6    = 0 // graygw_xdp6's index in progs (PROG_XDP6; PROG_XDP64 is 1)
	magic       = 0x67726179
	selectValid = 0x10000
	// pool_slot words (POOL_SLOT_MASK, POOL_HASH_SHIFT, POOL_HASH_LOOKUP)
	poolSlotMask   = 0xffff
	poolHashShift  = 16
	poolHashLookup = 0x80000000
	actionSet      = 1
	actionSplit    = 2
	linkPinStem    = "link_"
)

// VIP is the action data of a vip or vip_v6 entry (set_vip, set_vip_v6): the
// reference model's.
type VIP = model.VIP

// Backend is the action data of a backend entry (to_backend): the reference
// model's (Port < MaxPorts).
type Backend = model.Backend

// Counter is a packets and bytes pair, summed over CPUs: the model's.
type Counter = model.Counter

// Gray rule actions (P4: set_pool, split_pool, set_pool_mirror; in
// gray_rules_v6 set_pool_v6, split_pool_v6), as the program reads them: the
// model's.
const (
	SetPool       = model.SetPool
	SplitPool     = model.SplitPool
	SetPoolMirror = model.SetPoolMirror
)

// ruleKey is one side of gray_rules' ternary key, a value or a mask: the VIP
// id and the flow fields (Flow.Tenant is the tenant id).
type ruleKey struct {
	VIPID uint16
	Flow  pipeline.FlowKey
}

// And returns k with each field ANDed with mask.
func (k ruleKey) And(mask ruleKey) ruleKey {
	return ruleKey{VIPID: k.VIPID & mask.VIPID, Flow: k.Flow.And(mask.Flow)}
}

// normalize masks the VNI to 24 bits and the value with the mask, so two
// spellings of one P4Runtime entry are one rule; its identity (a map key
// here) is model.RuleID.
func normalize(r model.GrayRule) model.GrayRule {
	id := model.RuleID(r)
	r.Match, r.Mask, r.VIPID = id.Match, id.Mask, id.VIPID
	return r
}

func valueOf(r model.GrayRule) ruleKey { return ruleKey{VIPID: r.VIPID, Flow: r.Match} }
func maskOf(r model.GrayRule) ruleKey  { return ruleKey{VIPID: r.VIPMask, Flow: r.Mask} }

func (k ruleKey) raw() graygwRuleKey {
	return graygwRuleKey{VipId: k.VIPID, Vni: k.Flow.VNI, Tenant: k.Flow.Tenant, Src: k.Flow.Src,
		Dst: k.Flow.Dst, Proto: k.Flow.Proto, Sport: k.Flow.SPort, Dport: k.Flow.DPort}
}

func ruleKeyFrom(r graygwRuleKey) ruleKey {
	return ruleKey{VIPID: r.VipId, Flow: pipeline.FlowKey{VNI: r.Vni, Tenant: r.Tenant, Src: r.Src,
		Dst: r.Dst, Proto: r.Proto, SPort: r.Sport, DPort: r.Dport}}
}

func ip4(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
