/* Map keys and values, and the packet summary the parser fills. Every
 * multi-byte field is in host byte order (IPv4 addresses as numbers); the Go
 * mirror types are in bpf/types.go. No implicit padding: keys are compared
 * byte for byte, so every hole is an explicit zero field. */
#ifndef __GRAYGW_STRUCTS_H
#define __GRAYGW_STRUCTS_H

#include <linux/types.h>

/* The flow fields of docs/pipeline.md §1 plus the tenant (a table result). */
struct flow {
	__u32 vni;
	__u32 src;
	__u32 dst;
	__u16 tenant;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

/* What parse() learns about a frame. */
struct packet {
	struct flow flow;
	__u32 outer_dst;
	__u8 ttl;
	__u8 overlay;
	__u8 tagged; /* one 802.1Q tag after the MACs */
	__u8 l2;     /* where the outer IPv4 header starts: 14, 18 when tagged */
	__u16 tci; /* the tag's PCP, DEI and VID, host order */
	__u16 pad2;
};

/* vip value: set_vip(vip_id, default_pool); slot indexes vip_counters. */
struct vip_value {
	__u16 vip_id;
	__u16 default_pool;
	__u32 slot;
};

/* A vip_index cell: addr's vip value while live is 1. A packet reads addr
 * and live as one 64-bit word; the loader writes v, then addr, then live
 * (each one aligned store), clears live to delete, and rewrites a cell only
 * after an RCU grace period. vip_id and default_pool share one word, so a
 * modify is one store. */
struct vip_cell {
	__u32 addr;
	__u32 live;
	struct vip_value v;
};

/* vip_index's one value. */
struct vip_index {
	struct vip_cell cells[VIP_INDEX_SIZE];
};

/* The ternary key of gray_rules, with the vip_id; also used as a mask. */
struct rule_key {
	__u32 vni;
	__u32 src;
	__u32 dst;
	__u16 vip_id;
	__u16 tenant;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* gray_rules key: a key already ANDed with a mask, packed as struct
 * mask_entry packs masks (24 bytes: one jhash round fewer than the fields
 * one by one), and the mask's id. */
struct tss_key {
	__u64 addr;  /* src << 32 | dst */
	__u64 ids;   /* (vni | proto << 24) << 32 | vip_id << 16 | tenant */
	__u32 ports; /* sport << 16 | dport */
	__u32 mask_id;
};

/* gray_rules value: the best-priority rule of its (mask, masked key). */
struct rule_value {
	__u32 priority; /* larger wins; >= 1 */
	__u16 action;   /* ACTION_SET_POOL, ACTION_SPLIT_POOL, ACTION_SET_POOL_MIRROR */
	__u16 pool;     /* set_pool's and set_pool_mirror's pool_id, split_pool's pool_gray */
	__u16 threshold;
	__u16 mirror_pool; /* set_pool_mirror only, like sample and mirror_id */
	__u32 slot; /* rule id: indexes rule_counters and rule_store */
	__u16 sample;    /* a copy when split_hash <= sample */
	__u16 mirror_id; /* indexes mirror_counters */
};

/* The prefix of a mirrored frame (docs/xdp.md, "Mirror"). This kernel's XDP
 * has no metadata area (bpf_xdp_adjust_meta), so the served frame, already
 * rewritten, goes up to graygw_tc behind a copy of its Ethernet header
 * (ethertype IPv4, so tc can cut the prefix with bpf_skb_adjust_room) and
 * this struct. tc cuts both, sends a clone as served to served_ifindex and
 * turns the frame into the copy: MACs, outer dst, DSCP and checksums,
 * computed from the received frame's values as the model does. kind comes
 * first: its high nibble (0xa) can never start an IPv4 header (0x45), so
 * neither GRO nor tc takes the prefix for one. Its low bits say what the
 * copy's L4 checksum needs and how the served frame and the copy are
 * tagged (802.1Q). */
struct mirror_meta {
	__u8 kind;          /* MIRROR_META_MAGIC | MIRROR_L4_* */
	__u8 tos;           /* the received TOS */
	__u16 orig_l4_csum; /* the received L4 checksum, host order */
	__u32 served_ifindex;
	__u32 copy_ifindex; /* 0: the copy's port has no interface, drop it */
	__u32 underlay_ip;  /* the copy's backend, host order */
	__u32 orig_dst;     /* the received outer dst, host order */
	__u8 smac[6];
	__u8 dmac[6];
	__u16 copy_tci; /* the copy's tag when MIRROR_COPY_TAGGED, host order */
	__u16 pad;
};

/* tss_filter's one value: the Bloom filter's words. */
struct tss_filter {
	__u64 words[TSS_FILTER_WORDS];
};

/* rule_cells value: a gray_rules key and its value, for a key alone in its
 * rule_index slot (the packet compares the key, then takes the value). */
struct rule_cell {
	struct tss_key key;
	struct rule_value value;
};

/* One mask in use. The *_mask words are the mask packed as tss_words()
 * packs a packet, so a packet ANDs three words per mask to get the key
 * tss_bit() hashes. */
struct mask_entry {
	__u64 addr_mask;  /* src << 32 | dst */
	__u64 ids_mask;   /* (vni | proto << 24) << 32 | vip_id << 16 | tenant */
	__u64 ports_mask; /* (sport << 16 | dport) << 32 */
	struct rule_key mask;
	__u32 mask_id;
};

/* The masks in use, by position (gray_masks' one value, memory-mapped by the
 * loader). max[i] is the highest priority among the rules of the mask at
 * position i, 0 when packets skip the position: one word, which a rule write
 * changes in place. masks[i] is written only while max[i] is 0. */
struct mask_table {
	__u32 len; /* positions in use: packets walk [0, len) */
	__u32 pad;
	__u32 max[MAX_MASKS];
	struct mask_entry masks[MAX_MASKS];
};

/* A rule as the control plane wrote it (rule_store; not read by XDP). */
struct rule_def {
	struct rule_key value;
	struct rule_key mask;
	struct rule_value action;
};

/* pool_hash value: set_hash_mask. Field masks in flow order. */
struct hash_mask {
	__u32 vni;
	__u32 src;
	__u32 dst;
	__u16 tenant;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

/* backend value: to_backend(port, smac, dmac, underlay_ip) or
 * to_backend_v6(port, smac, dmac, underlay_ip6). The IPv6 fields come last:
 * an ABI 12 value zero-extended is the same IPv4 backend (pin migration). */
struct backend {
	__u32 underlay_ip;
	__u16 port;
	__u8 smac[6];
	__u8 dmac[6];
	__u16 vlan; /* port_vlan's VID of port (1-4094), 0: untagged; the
		     * loader keeps it, so packets never read port_vlan */
	__u32 slot; /* indexes backend_counters */
	__u8 underlay_ip6[16]; /* network order; to_backend_v6 */
	__u8 family;	       /* FAMILY_IPV4 (to_backend), FAMILY_IPV6 */
	__u8 pad[3];
};

/* An IPv6 address as two big-endian halves read as host u64s: hi holds
 * bytes 0-7 (the first byte in the top bits), lo bytes 8-15. Masks and
 * compares work on the words; the CRC reads the bytes back out. */
struct addr6 {
	__u64 hi;
	__u64 lo;
};

/* The flow fields of an IPv6 flow (docs/pipeline.md §1) plus the tenant. */
struct flow6 {
	struct addr6 src;
	struct addr6 dst;
	__u32 vni;
	__u16 tenant;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad;
};

/* What graygw_xdp6's parse learns: pkt as parse() fills it (the outer
 * IPv4 header's fields, an IPv4 flow, the tag), the outer header's family,
 * and the flow's (an IPv6 flow in flow6). */
struct packet6 {
	struct packet pkt;
	struct flow6 flow6;
	struct addr6 outer_dst6; /* outer IPv6 */
	__u8 outer6;		 /* the outer header is IPv6 */
	__u8 is_flow6;		 /* the flow is IPv6 */
	__u8 hop_limit;		 /* outer IPv6 */
	__u8 l4_proto;		 /* outer IPv6's next header */
	__u32 pad;
};

/* handoff6 value: graygw_xdp6's parse and VIP of a frame for graygw_xdp64. */
struct handoff6 {
	struct packet6 p;
	struct vip_value vip;
};

/* gray_rules_v6 key: the rule key ANDed with a mask, in six words, and the
 * mask's id in the last one's low half; also a mask (mask_id 0). */
struct tss6_key {
	struct addr6 src;
	struct addr6 dst;
	__u64 ids;   /* (vni | proto << 24) << 32 | vip_id << 16 | tenant */
	__u64 ports; /* (sport << 16 | dport) << 32 | mask_id */
};

/* One gray_rules_v6 mask in use (its ports word's low half 0), its id and
 * the highest priority of its rules. */
struct mask6_entry {
	struct tss6_key mask;
	__u32 mask_id;
	__u32 max;
};

/* gray_masks6's one value: the masks in use, walked [0, len), and a Bloom
 * filter over the gray_rules_v6 keys (bit tss6_bit(key) set while the key
 * has an entry) that spares a packet the lookup of a key no rule has.
 * Replaced whole by the loader (a hash element: a packet sees the old or the
 * new list and filter, never half of each). */
struct mask6_table {
	__u32 len;
	__u32 pad;
	struct mask6_entry masks[MAX_MASKS6];
	__u64 filter[TSS6_FILTER_WORDS];
};

/* A gray_rules_v6 rule as the control plane wrote it (rule6_store). */
struct rule6_def {
	struct tss6_key value; /* mask_id 0 */
	struct tss6_key mask;
	struct rule_value action;
	__u32 pad;
};

/* A direct or indexed counter cell (one per CPU). */
struct counter {
	__u64 packets;
	__u64 bytes;
};

/* meta value: what wrote the pinned maps. */
struct meta {
	__u32 magic;
	__u32 abi;
};

#endif
