/* Constants of the graygw pipeline (docs/pipeline.md). The Go twins live in
 * package pipeline; bpf/consts_test.go checks that the two agree. */
#ifndef __GRAYGW_CONSTS_H
#define __GRAYGW_CONSTS_H

/* ABI of the pinned maps: bump on any change of a key or value layout or of
 * what a value means, so a process finds old pins incompatible (meta map). */
#define GRAYGW_MAGIC 0x67726179 /* "gray" */
#define GRAYGW_ABI 16 /* 2: pool_slot; 3: tss_filter; 4: pool_slot hash bits;
			* 5: packed gray_rules key; 6: backend_ver, backend_cells;
			* 7: gray_masks a memory-mapped array by position,
			* rule_index, rule_cells, tenant_dir, tenant_pages;
			* 8: rule_value mirror fields, mirror counters;
			* 9: tss_filter one memory-mapped value;
			* 10: vip_map, backends renamed vip, backend (P4's);
			* 11: 17 drop reasons (VLAN_NOT_ACCEPTED), vlan_accept,
			* ifindex_port, port_vlan (802.1Q);
			* 12: 32 drop reasons (IPv6: 17-22, 23-31 spare);
			* 13: IPv6: backend value underlay_ip6 and family,
			* vip_v6, gray_rules_v6, gray_masks6, rule6_store,
			* vip6_counters, rule6_counters;
			* 14: gray_masks6 carries a Bloom filter;
			* 15: vip_index (packets read it, not vip);
			* 16: select_cells (packets read it, not
			* backend_select and backend_ver) */

/* Drop reasons: the index of the drop_reasons cell that counts them. */
#define DROP_NONE 0
#define DROP_ETH_TRUNCATED 1
#define DROP_NOT_IPV4 2 /* not for us: XDP_PASS */
#define DROP_IPV4_TRUNCATED 3
#define DROP_NOT_VIP 4 /* not for us: XDP_PASS */
#define DROP_IPV4_MALFORMED 5
#define DROP_IPV4_FRAGMENT 6
#define DROP_L4_TRUNCATED 7
#define DROP_VXLAN_TRUNCATED 8
#define DROP_VXLAN_BAD_FLAGS 9
#define DROP_INNER_TRUNCATED 10
#define DROP_INNER_NOT_IPV4 11
#define DROP_INNER_IPV4_MALFORMED 12
#define DROP_TTL_EXPIRED 13
#define DROP_NO_BACKEND 14
#define DROP_PORT_DOWN 15
#define DROP_VLAN_NOT_ACCEPTED 16
/* IPv6 (issue 19). Cells 23-31 are spare. */
#define DROP_IPV6_TRUNCATED 17
#define DROP_IPV6_MALFORMED 18
#define DROP_IPV6_EXTENSION 19
#define DROP_INNER_IPV6_MALFORMED 20
#define DROP_INNER_IPV6_EXTENSION 21
#define DROP_BACKEND_FAMILY 22
#define NUM_DROP_REASONS 32

/* Table sizes (p4src/shared/size.p4, pipeline/pipeline.go). */
#define VIP_SIZE 1024
#define VIP_V6_SIZE 1024
/* vip_index: the IPv4 VIPs as packets read them, an open-addressed array
 * of 2^VIP_INDEX_LOG cells; an address sits in one of the VIP_PROBE cells
 * from its home, the top VIP_INDEX_LOG bits of addr * VIP_HASH_MUL (bpf/vipindex.go
 * computes the same). 8 times VIP_SIZE, yet scattered addresses can fill a
 * window (ErrFull; 1024 random ones reached offset 7 of 8 in 1000 draws), so
 * the controller refuses, before it commits, an intent whose VIPs could
 * (internal/vipindex.Crowded, docs/xdp.md). */
#define VIP_INDEX_LOG 13
#define VIP_INDEX_SIZE (1 << VIP_INDEX_LOG)
#define VIP_PROBE 8
#define VIP_HASH_MUL 0x9e3779b1U
#define GRAY_RULES_V6_SIZE 4096
#define VNI_TENANT_SIZE 65536
#define GRAY_RULES_SIZE 16384
#define POOL_HASH_SIZE 1024
#define BACKEND_SIZE 4096

/* Consistent-hash buckets per pool (a power of two); bucket = crc & (BUCKETS-1). */
#define BUCKETS 4096
/* Pool ids are 16 bits wide: pool_slot has one entry per id. */
#define POOL_IDS 65536
/* backend_select is an array of MAX_POOLS slots of BUCKETS cells, indexed
 * slot * BUCKETS + bucket; pool_slot[pool] = slot + 1 (0: no buckets). Any
 * pool id can own buckets; MAX_POOLS pools at once. */
#define MAX_POOLS 64
#define BACKEND_SELECT_SIZE (MAX_POOLS * BUCKETS)
/* A backend_select cell holds SELECT_VALID | backend_id; 0 is an empty cell. */
#define SELECT_VALID 0x10000

/* A pool_slot word: slot + 1 in POOL_SLOT_MASK (0: no buckets), and the
 * pool's hash mask when every field of it is all ones or zero (the usual
 * case): bit POOL_HASH_SHIFT + i set means field i is left out of the hash
 * (i: vni, tenant, src, dst, proto, sport, dport). POOL_HASH_LOOKUP: any
 * other mask, read pool_hash. No bits: every field (pool_hash's miss). */
#define POOL_SLOT_MASK 0xffff
#define POOL_HASH_SHIFT 16
#define POOL_HASH_LOOKUP 0x80000000

/* Tuple-space search bound: distinct gray rule masks in use at once
 * (gray_rules; gray_rules_v6: MAX_MASKS6). */
#define MAX_MASKS 64
#define MAX_MASKS6 32
/* gray_masks6's Bloom filter over the gray_rules_v6 keys: 2^TSS6_FILTER_LOG
 * bits (one hash function), written with the mask list it belongs to. */
#define TSS6_FILTER_LOG 14
#define TSS6_FILTER_WORDS (1 << (TSS6_FILTER_LOG - 6))

/* tss_filter: a Bloom filter (one hash function) over the gray_rules keys,
 * 2^TSS_FILTER_LOG bits in u64 words. A clear bit proves a miss without the
 * hash lookup; with the table full (16384 keys) 1.6% of misses still look up. */
#define TSS_FILTER_LOG 20
#define TSS_FILTER_WORDS (1 << (TSS_FILTER_LOG - 6))

/* tenant_dir: one word per 2^TENANT_PAGE_LOG VNIs (vni >> TENANT_PAGE_LOG):
 * 0 when no VNI of the range has a tenant, page + 1 in tenant_pages, or
 * TENANT_DIR_HASH: look vni_tenant up (no page was free for the range). */
#define TENANT_PAGE_LOG 12
#define TENANT_PAGE (1 << TENANT_PAGE_LOG)
#define TENANT_DIR_SIZE (1 << (24 - TENANT_PAGE_LOG))
#define TENANT_PAGES 16
#define TENANT_DIR_HASH 0xffffffff

/* rule_index: 2^RULE_INDEX_LOG words, one per group of tss_filter bits (slot =
 * bit >> (TSS_FILTER_LOG - RULE_INDEX_LOG)): cell + 1 in rule_cells of the one
 * gray_rules key hashing there, 0 for none, RULE_INDEX_MANY for several (the
 * packet looks gray_rules up). rule_cells: twice the table, as backend cells. */
#define RULE_INDEX_LOG 18
#define RULE_INDEX_SIZE (1 << RULE_INDEX_LOG)
#define RULE_INDEX_MANY 0xffffffff
#define RULE_CELLS (2 * GRAY_RULES_SIZE)

/* Backend ids are 16 bits wide: backend_ver has one word per id, naming one
 * of BACKEND_CELLS cells (twice the table: a modify writes a fresh cell). */
#define BACKEND_IDS 65536
#define BACKEND_CELLS (2 * BACKEND_SIZE)

/* Ports are 9 bits wide (P4 port_t). */
#define MAX_PORTS 512

/* 802.1Q (docs/pipeline.md §1, §8). vlan_accept is a bitmap over (port,
 * VID): bit port * VIDS + vid, in u32 words. A port_vlan word is
 * PORT_VLAN_TAGGED | vid, 0 for an untagged port. */
#define ETH_P_8021Q_ 0x8100
#define VLAN_HLEN 4
#define VIDS 4096
#define VID_MASK 0x0fff
#define VLAN_ACCEPT_WORDS (MAX_PORTS * VIDS / 32)
#define PORT_VLAN_TAGGED 0x10000

/* Gray rule actions. */
#define ACTION_SET_POOL 1
#define ACTION_SPLIT_POOL 2
#define ACTION_SET_POOL_MIRROR 3

/* Mirror (docs/pipeline.md §10): mirror_counters cells, the copy's DSCP. */
#define MIRROR_IDS 1024
#define MIRROR_DSCP 1
/* mirror_meta.kind: MIRROR_META_MAGIC | what the copy's L4 checksum needs. */
#define MIRROR_META_MAGIC 0xa0
#define MIRROR_L4_NONE 0    /* overlay (UDP checksum 0 already), or no L4 checksum */
#define MIRROR_L4_TCP 1
#define MIRROR_L4_UDP 2     /* plain UDP with a checksum */
#define MIRROR_L4_MASK 0x03
/* mirror_meta.kind flags: the served frame leaves tagged; the copy must. */
#define MIRROR_SERVED_TAGGED 0x04
#define MIRROR_COPY_TAGGED 0x08
/* What graygw_xdp puts in front of a mirrored frame: an Ethernet header and
 * struct mirror_meta (36 bytes). graygw_tc cuts it and the served frame's
 * Ethernet header behind it, that is MIRROR_PREFIX bytes after the first 14. */
#define MIRROR_PREFIX (14 + 36)

/* IPv6 (docs/pipeline.md §1). parse() hands a frame with an IPv6 header it
 * needs (outer, or inner behind an IPv4 outer) to graygw_xdp6 by tail call:
 * PARSE_IPV6 is that verdict, never a drop reason. */
#define PARSE_IPV6 0xff	      /* the outer header */
#define PARSE_INNER_IPV6 0xfe /* the inner header, behind VXLAN over IPv4 */
#define PROG_XDP6 0	      /* graygw_xdp6's index in progs */
#define PROG_XDP64 1	      /* graygw_xdp64's */
#define ETH_P_IPV6_ 0x86dd
#define IPV6_HLEN 40
#define IPV6_FRAG_HLEN 8
#define IPPROTO_ICMPV6_ 58
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AH 51
#define NEXTHDR_DEST 60
/* backend.family: the underlay family of a backend entry. 0 is IPv4 so a
 * backend written before ABI 13 (zeros past its old end) keeps its meaning. */
#define FAMILY_IPV4 0
#define FAMILY_IPV6 1

#define ETH_HLEN_ 14
#define ETH_P_IPV4 0x0800
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define VXLAN_PORT 4789
#define VXLAN_HLEN 8
#define VXLAN_FLAG_I 0x08
#define IPV4_VERSION_IHL5 0x45
#define IPV4_FRAG_MASK 0x3fff /* MF and fragment offset */

#endif
