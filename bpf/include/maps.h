/* The maps of the graygw XDP program, one per P4 table or counter
 * (docs/pipeline.md §2-9, docs/xdp.md). All are pinned by name under the
 * loader's pin directory so a restarted agent reuses them. Multi-word values
 * that decide a packet live in hash maps without preallocation: an update
 * links a new element and unlinks the old one, so a packet sees the old or
 * the new value, never half of each. */
#ifndef __GRAYGW_MAPS_H
#define __GRAYGW_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "consts.h"
#include "structs.h"

/* vip: outer dst IPv4 -> set_vip(vip_id, default_pool), as the control
 * plane wrote it; packets read vip_index. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vip_value);
	__uint(max_entries, VIP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip SEC(".maps");

/* vip_index: the vip entries as packets read them (struct vip_index): one
 * inlined array lookup and at most VIP_PROBE compares instead of the
 * hash's jhash and bucket walk. vip stays the loader's record (read-back,
 * rebuild), as backend beside backend_cells. Memory-mapped: the loader
 * writes one aligned word at a time (struct vip_cell). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vip_index);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_index SEC(".maps");

/* vip_v6: outer dst IPv6 -> set_vip(vip_id, default_pool); slot indexes
 * vip6_counters. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct addr6);
	__type(value, struct vip_value);
	__uint(max_entries, VIP_V6_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_v6 SEC(".maps");

/* vni_tenant: vni -> tenant_id. Miss: tenant 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, VNI_TENANT_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vni_tenant SEC(".maps");

/* tenant_dir: vni >> TENANT_PAGE_LOG -> 0 (no tenant in the range), page + 1
 * in tenant_pages, or TENANT_DIR_HASH (read vni_tenant). With tenant_pages,
 * the packet's tenant in two inlined array lookups instead of a hash lookup;
 * vni_tenant keeps every entry (read-back, rebuild, ranges without a page). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, TENANT_DIR_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tenant_dir SEC(".maps");

/* tenant_pages: page * TENANT_PAGE + (vni & (TENANT_PAGE - 1)) -> tenant_id
 * (0: no entry, which is tenant 0 anyway). A page is all zeros before a
 * tenant_dir word names it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, TENANT_PAGES * TENANT_PAGE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tenant_pages SEC(".maps");

/* gray_masks: key 0 -> the masks in use (struct mask_table). An array, so
 * a packet's lookup is inlined; memory-mapped, so the loader changes one
 * word of it in place (a mask's bound, the number of positions) where an
 * update would rewrite the whole value under running packets. A position is
 * reused only after an RCU grace period. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct mask_table);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gray_masks SEC(".maps");

/* gray_rules: (mask id, masked key) -> the best rule of that masked key. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tss_key);
	__type(value, struct rule_value);
	__uint(max_entries, GRAY_RULES_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gray_rules SEC(".maps");

/* tss_filter: key 0 -> the words of a Bloom filter: bit tss_bit(mask id,
 * masked key) is set while gray_rules may hold that key (the loader sets a
 * bit before it inserts and clears it after it deletes). Lets a packet skip
 * the lookup of a mask none of whose rules can match. One value, so a packet
 * looks it up once, not per mask; memory-mapped, so the loader writes one
 * word in place. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tss_filter);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tss_filter SEC(".maps");

/* rule_index: tss_filter bit >> (TSS_FILTER_LOG - RULE_INDEX_LOG) -> cell + 1
 * of the one gray_rules key hashing there (0: none; RULE_INDEX_MANY: several,
 * look gray_rules up). Lets a packet find a rule with two inlined array
 * lookups and a key compare instead of a hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, RULE_INDEX_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_index SEC(".maps");

/* rule_cells: a gray_rules key and its value, named by a rule_index word. A
 * cell is written before a word names it and reused only after an RCU grace
 * period once no word does, so a packet sees the old or the new rule. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct rule_cell);
	__uint(max_entries, RULE_CELLS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_cells SEC(".maps");

/* rule_store: rule id -> the rule as written, shadowed ones included, so a
 * restarted loader can rebuild its bookkeeping. Never read by XDP. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct rule_def);
	__uint(max_entries, GRAY_RULES_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_store SEC(".maps");

/* gray_masks6: key 0 -> the gray_rules_v6 masks in use (struct
 * mask6_table). A hash element, replaced whole by the loader: a packet sees
 * the old or the new list, never half of each. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct mask6_table);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gray_masks6 SEC(".maps");

/* gray_rules_v6: (masked key, mask id) -> the best rule of that masked key
 * (a tuple-space search as gray_rules', without its filter and index). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tss6_key);
	__type(value, struct rule_value);
	__uint(max_entries, GRAY_RULES_V6_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gray_rules_v6 SEC(".maps");

/* rule6_store: rule id -> the gray_rules_v6 rule as written, shadowed ones
 * included (control plane only, as rule_store). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct rule6_def);
	__uint(max_entries, GRAY_RULES_V6_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule6_store SEC(".maps");

/* pool_hash: pool_id -> set_hash_mask. Miss: every field counts. Read by
 * packets only when the pool's pool_slot word has POOL_HASH_LOOKUP. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct hash_mask);
	__uint(max_entries, POOL_HASH_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pool_hash SEC(".maps");

/* pool_slot: pool_id -> slot + 1 of the pool's cells in backend_select, 0
 * when the pool owns no buckets, with the pool's hash mask in the upper
 * bits when it fits there (consts.h). An array, so the lookup is inlined.
 * The loader publishes a slot only once its cells are written, and
 * unpublishes it before clearing them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, POOL_IDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pool_slot SEC(".maps");

/* backend_select: slot * BUCKETS + bucket -> SELECT_VALID | backend_id
 * (0: empty cell, NO_BACKEND). MAX_POOLS slots, allocated by the loader.
 * The loader's record: packets read select_cells. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, BACKEND_SELECT_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_select SEC(".maps");

/* select_cells: backend_select as packets read it: per cell, cell + 1 in
 * backend_cells of the backend its backend_select word names (0: an empty
 * cell, or a backend not written yet), so a packet reads the bucket's
 * backend in one word where backend_select and backend_ver took two
 * dependent loads. A backend that moves to a new cell is repointed here
 * word by word: each packet reads one word, so it sees the old value or the
 * new one whole; the old cell is reused only after an RCU grace period. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, BACKEND_SELECT_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} select_cells SEC(".maps");

/* backend: backend_id -> to_backend(port, smac, dmac, underlay_ip), as
 * the control plane wrote it: read back and rebuilt from, never read by XDP
 * (packets use select_cells and backend_cells, two inlined array lookups
 * instead of a hash lookup). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(max_entries, BACKEND_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend SEC(".maps");

/* backend_ver: backend_id -> cell + 1 in backend_cells, 0 when there is no
 * such backend: the loader's record of where each backend lives, from which
 * it writes select_cells (never read by XDP since ABI 16). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, BACKEND_IDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_ver SEC(".maps");

/* backend_cells: backend values. A cell no word names any more is reused
 * only after an RCU grace period, so a packet that read the old word never
 * sees the cell rewritten under it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(max_entries, BACKEND_CELLS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_cells SEC(".maps");

/* tx_ports: port -> egress ifindex, for bpf_redirect_map. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_PORTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tx_ports SEC(".maps");

/* port_ifindex: port -> ifindex, 0 when down; mirrors tx_ports so the
 * program can count PORT_DOWN and pick XDP_TX for the ingress port. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_PORTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} port_ifindex SEC(".maps");

/* vlan_accept: bit port * VIDS + vid set when the port accepts the VID's
 * tagged frames (vlan_accept entries; docs/pipeline.md §1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, VLAN_ACCEPT_WORDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vlan_accept SEC(".maps");

/* ifindex_port: ifindex -> port, the inverse of port_ifindex, so a tagged
 * frame's ingress interface names the port vlan_accept is keyed by. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_PORTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifindex_port SEC(".maps");

/* port_vlan: port -> PORT_VLAN_TAGGED | vid, the tag frames leave the port
 * with; 0: untagged (port_vlan entries; docs/pipeline.md §8). The loader's
 * record: packets read the copy in their backend's cell (backend.vlan). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_PORTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} port_vlan SEC(".maps");

/* handoff6: key 0 -> what graygw_xdp6 learnt of a frame it hands to
 * graygw_xdp64 (same CPU, same run). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct handoff6);
	__uint(max_entries, 1);
} handoff6 SEC(".maps");

/* drop_reasons: reason -> packets, bytes (cell 0 never counted). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, NUM_DROP_REASONS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_reasons SEC(".maps");

/* vip_counters: direct counter of vip, by vip_value.slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, VIP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip_counters SEC(".maps");

/* vip6_counters: direct counter of vip_v6, by vip_value.slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, VIP_V6_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vip6_counters SEC(".maps");

/* rule6_counters: direct counter of gray_rules_v6, by rule id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, GRAY_RULES_V6_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule6_counters SEC(".maps");

/* rule_counters: direct counter of gray_rules, by rule id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, GRAY_RULES_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_counters SEC(".maps");

/* backend_counters: direct counter of backend, by backend.slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, BACKEND_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_counters SEC(".maps");

/* mirror_counters: copies made, by set_pool_mirror's mirror_id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, MIRROR_IDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mirror_counters SEC(".maps");

/* mirror_backend_counters: copies sent, by backend.slot (as backend_counters). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, BACKEND_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mirror_backend_counters SEC(".maps");

/* meta: key 0 -> magic and ABI of the program that created the pins. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct meta);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta SEC(".maps");

#endif
