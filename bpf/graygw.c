//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* graygw XDP dataplane: the pipeline of docs/pipeline.md on BPF maps.
 * parse -> vip -> vni_tenant -> gray_rules (tuple-space search) -> pool_hash
 * -> CRC32 bucket -> backend_select and backend (one word: select_cells)
 * -> rewrite -> TX/redirect.
 * graygw_xdp serves IPv4 in IPv4; a frame with an IPv6 header, outer or
 * inner, goes by tail call to graygw_xdp6 (docs/xdp.md, "IPv6"), so the
 * IPv4 path and its verification stay as they were. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/consts.h"
#include "include/structs.h"
#include "include/maps.h"
#include "include/parse.h"
#include "include/parse6.h"
#include "include/csum.h"
#include "include/hash.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* progs: the IPv6 programs graygw_xdp and graygw_xdp6 tail-call
 * (PROG_XDP6, PROG_XDP64). Not pinned: the loader fills its own after the
 * load (bpf.Open), so a harness that loads graygw_xdp alone still can. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} progs SEC(".maps");

static __always_inline void count(void *map, __u32 idx, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &idx);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* verdict counts a packet that is not forwarded under its reason. */
static __always_inline int verdict(__u8 reason, __u64 bytes)
{
	count(&drop_reasons, reason, bytes);
	if (reason == DROP_NOT_IPV4 || reason == DROP_NOT_VIP)
		return XDP_PASS;
	return XDP_DROP;
}

/* vip_of is addr's vip value in vip_index, NULL when addr is no VIP: the
 * VIP_PROBE cells from addr's home, each one 64-bit compare of addr and
 * live (docs/xdp.md, "vip_index"). graygw_xdp copies the value at once: a
 * pointer kept through the gray-rule walk would carry one verifier state
 * per cell that can match. */
static __always_inline struct vip_value *vip_of(__u32 addr)
{
	__u64 want = (__u64)1 << 32 | addr; /* live, addr: little-endian */
	__u32 zero = 0, home = (addr * VIP_HASH_MUL) >> (32 - VIP_INDEX_LOG);
	struct vip_index *t;
	struct vip_cell *c;

	t = bpf_map_lookup_elem(&vip_index, &zero);
	if (!t)
		return NULL;
#pragma unroll
	for (__u32 i = 0; i < VIP_PROBE; i++) {
		c = &t->cells[(home + i) & (VIP_INDEX_SIZE - 1)];
		if (*(volatile __u64 *)c == want)
			return &c->v;
	}
	return NULL;
}

/* vlan_accepted is vlan_accept's verdict on a tagged frame received on
 * ifindex: the port the interface is bound to accepts the VID. */
static __always_inline int vlan_accepted(__u32 ifindex, __u16 tci)
{
	__u32 *port, idx, word, *w;

	port = bpf_map_lookup_elem(&ifindex_port, &ifindex);
	if (!port)
		return 0;
	idx = (*port & (MAX_PORTS - 1)) * VIDS + (tci & VID_MASK);
	word = idx >> 5;
	w = bpf_map_lookup_elem(&vlan_accept, &word);
	return w && (*w >> (idx & 31)) & 1;
}

/* out_tci is the tag a frame leaves with on a port tagged with vid: the
 * received tag's PCP and DEI (0 for an untagged frame), the port's VID. */
static __always_inline __u16 out_tci(const struct packet *p, __u16 vid)
{
	return (p->tagged ? p->tci & ~VID_MASK : 0) | (vid & VID_MASK);
}

/* tag_frame gives a rewritten frame its egress port's tag (docs/pipeline.md
 * §8): vid is the port's VID (the backend cell's copy of port_vlan), 0 for
 * an untagged port. A received tag gets the port's VID or is removed; an
 * untagged frame gets one pushed. Moves ctx->data: the caller reloads its
 * pointers. Nonzero when the frame cannot be changed. */
static __always_inline int tag_frame(struct xdp_md *ctx, const struct packet *p, __u16 vid)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct vlanhdr *vlan = data + ETH_HLEN_;
	struct ethhdr *eth;
	__u8 macs[2 * ETH_ALEN];

	if (!vid && !p->tagged)
		return 0;
	if ((void *)(vlan + 1) > data_end)
		return -1;
	if (p->tagged && vid) {
		vlan->tci = bpf_htons(out_tci(p, vid));
		return 0;
	}
	if (p->tagged) {
		/* Strip: the MACs move up over the tag, the encapsulated
		 * ethertype is already where the Ethernet one goes. */
		__builtin_memcpy(macs, data, sizeof(macs));
		__builtin_memcpy(data + VLAN_HLEN, macs, sizeof(macs));
		return bpf_xdp_adjust_head(ctx, VLAN_HLEN);
	}
	/* Push: the MACs move down, the ethertype stays as the tag's. */
	if (bpf_xdp_adjust_head(ctx, -VLAN_HLEN))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	vlan = data + ETH_HLEN_;
	if ((void *)(vlan + 1) > data_end)
		return -1;
	__builtin_memcpy(macs, data + VLAN_HLEN, sizeof(macs));
	__builtin_memcpy(data, macs, sizeof(macs));
	eth->h_proto = bpf_htons(ETH_P_8021Q_);
	vlan->tci = bpf_htons(out_tci(p, vid));
	return 0;
}

/* tenant_of is vni_tenant's tenant of vni, 0 on a miss: through tenant_dir
 * and tenant_pages, or vni_tenant for a range without a page. */
static __always_inline __u16 tenant_of(__u32 vni)
{
	__u32 hi = vni >> TENANT_PAGE_LOG, *w, idx, *t;

	w = bpf_map_lookup_elem(&tenant_dir, &hi);
	if (!w)
		return 0;
	idx = *(volatile __u32 *)w;
	if (idx == 0)
		return 0;
	if (idx == TENANT_DIR_HASH) {
		t = bpf_map_lookup_elem(&vni_tenant, &vni);
		return t ? *t : 0;
	}
	idx = (idx - 1) * TENANT_PAGE + (vni & (TENANT_PAGE - 1));
	t = bpf_map_lookup_elem(&tenant_pages, &idx);
	return t ? *(volatile __u32 *)t : 0;
}

/* find_rule returns the gray_rules value of k, whose tss_filter bit is bit:
 * from its rule_cells cell when k is alone in its rule_index slot (two
 * inlined array lookups and a compare), else from gray_rules. */
static __always_inline struct rule_value *find_rule(const struct tss_key *k, __u32 bit)
{
	__u32 slot = bit >> (TSS_FILTER_LOG - RULE_INDEX_LOG), *ref, cell;
	struct rule_cell *c;

	ref = bpf_map_lookup_elem(&rule_index, &slot);
	if (!ref)
		return NULL;
	cell = *(volatile __u32 *)ref;
	if (cell == RULE_INDEX_MANY)
		return bpf_map_lookup_elem(&gray_rules, k);
	if (cell == 0)
		return NULL;
	cell--;
	c = bpf_map_lookup_elem(&rule_cells, &cell);
	if (!c || c->key.addr != k->addr || c->key.ids != k->ids || c->key.ports != k->ports ||
	    c->key.mask_id != k->mask_id)
		return NULL;
	return &c->value;
}

/* best_rule runs the tuple-space search: one hash lookup per mask position
 * in use whose bound beats the best match so far (find_rule). The packet's fields are
 * packed in three words once; per mask, three ANDs give the masked key, and
 * tss_filter skips the hash lookup of a key no rule has. Returns 0 on a miss. */
static __always_inline __u32 best_rule(__u16 vip_id, const struct flow *f, struct rule_value *out)
{
	__u64 addr = (__u64)f->src << 32 | f->dst;
	__u64 ids = (__u64)(f->vni | (__u32)f->proto << 24) << 32 | (__u32)vip_id << 16 | f->tenant;
	__u64 ports = (__u64)((__u32)f->sport << 16 | f->dport) << 32;
	__u32 zero = 0, best = 0, n, bit;
	struct tss_filter *filter;
	struct tss_key k = {};
	struct mask_table *t;
	struct rule_value *r;
	__u64 a, d, p;

	t = bpf_map_lookup_elem(&gray_masks, &zero);
	filter = bpf_map_lookup_elem(&tss_filter, &zero);
	if (!t || !filter)
		return 0;
	n = *(volatile __u32 *)&t->len;
	for (__u32 i = 0; i < MAX_MASKS && i < n; i++) {
		struct mask_entry *m = &t->masks[i];

		if (best >= *(volatile __u32 *)&t->max[i])
			continue; /* no rule of this mask can beat the best (0: no mask) */
		a = addr & m->addr_mask;
		d = ids & m->ids_mask;
		p = ports & m->ports_mask;
		bit = tss_bit(a, d, p, m->mask_id);
		if (!(filter->words[bit >> 6] & (1ULL << (bit & 63))))
			continue; /* no rule of this mask can match */
		k.addr = a;
		k.ids = d;
		k.ports = p >> 32;
		k.mask_id = m->mask_id;
		r = find_rule(&k, bit);
		if (r && r->priority > best) {
			best = r->priority;
			*out = *r;
		}
	}
	return best;
}

/* select_pool applies gray_rules; a miss leaves the VIP's default pool. The
 * winning rule is left in r (action 0: none). */
static __always_inline __u16 select_pool(const struct vip_value *vip, const struct flow *f, __u64 bytes,
					 struct rule_value *r)
{
	if (!best_rule(vip->vip_id, f, r))
		return vip->default_pool;
	count(&rule_counters, r->slot, bytes);
	if (r->action != ACTION_SPLIT_POOL)
		return r->pool;
	if (split_hash(f->vni, f->src) < r->threshold)
		return r->pool;
	return vip->default_pool;
}

/* best_rule6 is best_rule on gray_rules_v6: per mask whose bound beats the
 * best match so far, six ANDs, the filter bit, and a hash lookup when the
 * bit is set. Returns 0 on a miss. */
static __always_inline __u32 best_rule6(__u16 vip_id, const struct flow6 *f, struct rule_value *out)
{
	__u64 ids = (__u64)(f->vni | (__u32)f->proto << 24) << 32 | (__u32)vip_id << 16 | f->tenant;
	__u64 ports = (__u64)((__u32)f->sport << 16 | f->dport) << 32;
	__u32 zero = 0, best = 0, n, bit;
	struct mask6_table *t;
	struct tss6_key k;
	struct rule_value *r;

	t = bpf_map_lookup_elem(&gray_masks6, &zero);
	if (!t)
		return 0;
	n = t->len;
	for (__u32 i = 0; i < MAX_MASKS6 && i < n; i++) {
		struct mask6_entry *m = &t->masks[i];

		if (best >= m->max)
			continue;
		k.src.hi = f->src.hi & m->mask.src.hi;
		k.src.lo = f->src.lo & m->mask.src.lo;
		k.dst.hi = f->dst.hi & m->mask.dst.hi;
		k.dst.lo = f->dst.lo & m->mask.dst.lo;
		k.ids = ids & m->mask.ids;
		k.ports = (ports & m->mask.ports) | m->mask_id;
		bit = tss6_bit(&k);
		if (!(t->filter[bit >> 6] & (1ULL << (bit & 63))))
			continue; /* no rule has this key */
		r = bpf_map_lookup_elem(&gray_rules_v6, &k);
		if (r && r->priority > best) {
			best = r->priority;
			*out = *r;
		}
	}
	return best;
}

/* select_pool6 is select_pool for an IPv6 flow (gray_rules_v6). */
static __always_inline __u16 select_pool6(const struct vip_value *vip, const struct flow6 *f, __u64 bytes,
					  struct rule_value *r)
{
	if (!best_rule6(vip->vip_id, f, r))
		return vip->default_pool;
	count(&rule6_counters, r->slot, bytes);
	if (r->action != ACTION_SPLIT_POOL)
		return r->pool;
	if (split_hash6(f->vni, &f->src) < r->threshold)
		return r->pool;
	return vip->default_pool;
}

/* bucket_of hashes the flow with the pool's field masks: from the bits of
 * its pool_slot word, or from pool_hash when the word says so. */
static __always_inline __u16 bucket_of(__u16 pool, __u32 word, const struct flow *f)
{
	struct hash_mask *m;
	struct flow k = *f;
	__u32 key = pool;

	if (!(word & POOL_HASH_LOOKUP))
		return flow_crc16_out(f, word, POOL_HASH_SHIFT) & (BUCKETS - 1);
	m = bpf_map_lookup_elem(&pool_hash, &key);
	if (m) {
		k.vni &= m->vni;
		k.tenant &= m->tenant;
		k.src &= m->src;
		k.dst &= m->dst;
		k.proto &= m->proto;
		k.sport &= m->sport;
		k.dport &= m->dport;
	}
	return flow_crc16(&k) & (BUCKETS - 1);
}

/* backend_at is the backend of select_cells' cell idx (backend_select's, as
 * the loader resolved it to its backend_cells cell); NULL for an empty cell
 * or an absent backend. */
static __always_inline struct backend *backend_at(__u32 idx)
{
	__u32 *sel, cell;

	sel = bpf_map_lookup_elem(&select_cells, &idx);
	if (!sel)
		return NULL;
	/* 0 (empty) wraps past the array: the lookup's bound check is the
	 * test. */
	cell = *(volatile __u32 *)sel - 1;
	return bpf_map_lookup_elem(&backend_cells, &cell);
}

/* lookup_backend is pool_hash, the hash, backend_select and backend (one
 * select_cells word names the bucket's backend's current cell); NULL
 * means NO_BACKEND. backend_select is exact on (pool, bucket): pool_slot
 * translates the pool id to the slot holding its cells (0: the pool owns no
 * buckets, so no hash is needed). Each word is read once: the loader
 * rewrites them while packets run. */
static __always_inline struct backend *lookup_backend(__u16 pool, const struct flow *f)
{
	__u32 key = pool, *slot, word, s;

	slot = bpf_map_lookup_elem(&pool_slot, &key);
	if (!slot)
		return NULL;
	word = *(volatile __u32 *)slot;
	s = word & POOL_SLOT_MASK;
	if (s == 0 || s > MAX_POOLS)
		return NULL;
	return backend_at((s - 1) * BUCKETS + bucket_of(pool, word, f));
}

/* bucket_of6 is bucket_of for an IPv6 flow: an address whose pool_hash mask
 * is 0 is left out, any other mask keeps it whole (pipeline.FlowKey.Mask6). */
static __always_inline __u16 bucket_of6(__u16 pool, __u32 word, const struct flow6 *f)
{
	struct hash_mask *m;
	struct flow6 k = *f;
	__u32 key = pool, out = 0;

	if (!(word & POOL_HASH_LOOKUP))
		return flow6_crc16_out(f, word, POOL_HASH_SHIFT) & (BUCKETS - 1);
	m = bpf_map_lookup_elem(&pool_hash, &key);
	if (m) {
		k.vni &= m->vni;
		k.tenant &= m->tenant;
		k.proto &= m->proto;
		k.sport &= m->sport;
		k.dport &= m->dport;
		out = (m->src ? 0 : 4) | (m->dst ? 0 : 8);
	}
	return flow6_crc16_out(&k, out, 0) & (BUCKETS - 1);
}

/* lookup_backend6 is lookup_backend for an IPv6 flow. */
static __always_inline struct backend *lookup_backend6(__u16 pool, const struct flow6 *f)
{
	__u32 key = pool, *slot, word, s;

	slot = bpf_map_lookup_elem(&pool_slot, &key);
	if (!slot)
		return NULL;
	word = *(volatile __u32 *)slot;
	s = word & POOL_SLOT_MASK;
	if (s == 0 || s > MAX_POOLS)
		return NULL;
	return backend_at((s - 1) * BUCKETS + bucket_of6(pool, word, f));
}

/* rewrite applies to_backend: MACs, outer dst IP, TTL, checksums. */
static __always_inline int rewrite_at(void *data, void *data_end, const struct packet *p,
				      const struct backend *be, const __u32 l2)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + l2;
	void *l4 = ip + 1;
	__u32 old = p->outer_dst, new = be->underlay_ip;

	if (l4 > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, be->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, be->smac, ETH_ALEN);
	ipv4_forward(ip, new);

	if (p->overlay) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return -1;
		udp->check = 0;
	} else if (p->flow.proto == IPPROTO_TCP_) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		tcp->check = csum_update32_be(tcp->check, bpf_htonl(old), bpf_htonl(new));
	} else if (p->flow.proto == IPPROTO_UDP_) {
		struct udphdr *udp = l4;
		__u16 c;

		if ((void *)(udp + 1) > data_end)
			return -1;
		if (udp->check) {
			c = csum_update32_be(udp->check, bpf_htonl(old), bpf_htonl(new));
			udp->check = c ? c : 0xffff; /* 0 and 0xffff read alike both ways */
		}
	}
	return 0;
}

/* rewrite is rewrite_at where the outer IPv4 header is: a constant offset on
 * each path (the branch is after the gray rules' walk, so the verifier's
 * cost of the two paths is small). */
static __always_inline int rewrite(void *data, void *data_end, const struct packet *p,
				   const struct backend *be)
{
	if (p->tagged)
		return rewrite_at(data, data_end, p, be, ETH_HLEN_ + VLAN_HLEN);
	return rewrite_at(data, data_end, p, be, ETH_HLEN_);
}

/* rewrite6_at applies to_backend_v6 to an outer IPv6 header at l2: MACs,
 * outer dst, hop limit, and the L4 checksum over the pseudo-header (RFC
 * 1624 over the address's eight words): a zero UDP checksum stays zero (RFC
 * 6935), a non-zero one never becomes zero; ICMPv6's is updated too. */
static __always_inline int rewrite6_at(void *data, void *data_end, const struct packet6 *p,
				       const struct backend *be, const __u32 l2)
{
	struct ethhdr *eth = data;
	struct ip6hdr *ip = data + l2;
	void *l4 = (void *)ip + IPV6_HLEN;
	struct addr6 nw;
	__u16 *csum, c;
	__u32 diff;

	if (l4 > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, be->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, be->smac, ETH_ALEN);
	addr6_load(be->underlay_ip6, &nw);
	diff = csum_diff128(p->outer_dst6.hi, p->outer_dst6.lo, nw.hi, nw.lo);
	__builtin_memcpy(ip->daddr, be->underlay_ip6, 16);
	ip->hop_limit = p->hop_limit - 1;

	if (p->l4_proto == IPPROTO_TCP_)
		csum = l4 + __builtin_offsetof(struct tcphdr, check);
	else if (p->l4_proto == IPPROTO_UDP_)
		csum = l4 + __builtin_offsetof(struct udphdr, check);
	else if (p->l4_proto == IPPROTO_ICMPV6_)
		csum = l4 + 2;
	else
		return 0;
	if ((void *)(csum + 1) > data_end)
		return -1;
	if (p->l4_proto == IPPROTO_UDP_) {
		if (!*csum)
			return 0;
		c = csum_update_diff(bpf_ntohs(*csum), diff);
		*csum = bpf_htons(c ? c : 0xffff);
		return 0;
	}
	*csum = bpf_htons(csum_update_diff(bpf_ntohs(*csum), diff));
	return 0;
}

/* rewrite_any applies the backend to a frame of either outer family. */
static __always_inline int rewrite_any(void *data, void *data_end, const struct packet6 *p,
				       const struct backend *be)
{
	if (!p->outer6)
		return rewrite(data, data_end, &p->pkt, be);
	if (p->pkt.tagged)
		return rewrite6_at(data, data_end, p, be, ETH_HLEN_ + VLAN_HLEN);
	return rewrite6_at(data, data_end, p, be, ETH_HLEN_);
}

/* mirror serves a frame of a sampled VM under set_pool_mirror (docs/pipeline.md
 * §10): the copy is counted and its backend chosen here; when it has one, the
 * served frame is rewritten and passed up with a mirror_meta for graygw_tc,
 * which sends it and then the copy. Without one, the frame is served alone. */
static __always_inline int mirror(struct xdp_md *ctx, const struct packet *p, const struct backend *be,
				  __u32 served_ifindex, const struct rule_value *r, __u64 bytes)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = outer_ip(data, p);
	struct mirror_meta mm = {}, *meta;
	struct ethhdr *eth;
	struct backend *cbe;
	__u32 port, *cif;
	__u16 *csum;

	count(&mirror_counters, r->mirror_id, bytes);
	cbe = lookup_backend(r->mirror_pool, &p->flow);
	if (!cbe)
		goto serve;
	count(&backend_counters, cbe->slot, bytes);
	if (cbe->family != FAMILY_IPV4)
		goto serve; /* to_backend_v6: the copy is dropped (docs/pipeline.md §10) */
	count(&mirror_backend_counters, cbe->slot, bytes);
	if ((void *)(ip + 1) > data_end)
		return verdict(DROP_ETH_TRUNCATED, bytes); /* unreachable: parsed */
	port = cbe->port;
	cif = bpf_map_lookup_elem(&port_ifindex, &port);
	mm.served_ifindex = served_ifindex;
	mm.copy_ifindex = cif ? *cif : 0;
	mm.underlay_ip = cbe->underlay_ip;
	mm.orig_dst = p->outer_dst;
	__builtin_memcpy(mm.smac, cbe->smac, ETH_ALEN);
	__builtin_memcpy(mm.dmac, cbe->dmac, ETH_ALEN);
	mm.tos = ip->tos;
	mm.kind = MIRROR_META_MAGIC | MIRROR_L4_NONE;
	if (!p->overlay && ip->protocol == IPPROTO_TCP_) {
		csum = (void *)(ip + 1) + __builtin_offsetof(struct tcphdr, check);
		if ((void *)(csum + 1) > data_end)
			goto serve;
		mm.orig_l4_csum = bpf_ntohs(*csum);
		mm.kind = MIRROR_META_MAGIC | MIRROR_L4_TCP;
	} else if (!p->overlay && ip->protocol == IPPROTO_UDP_) {
		csum = (void *)(ip + 1) + __builtin_offsetof(struct udphdr, check);
		if ((void *)(csum + 1) > data_end)
			goto serve;
		mm.orig_l4_csum = bpf_ntohs(*csum);
		if (mm.orig_l4_csum)
			mm.kind = MIRROR_META_MAGIC | MIRROR_L4_UDP;
	}
	if (be->vlan)
		mm.kind |= MIRROR_SERVED_TAGGED;
	if (cbe->vlan) {
		mm.kind |= MIRROR_COPY_TAGGED;
		mm.copy_tci = out_tci(p, cbe->vlan);
	}
	if (rewrite(data, data_end, p, be) || tag_frame(ctx, p, be->vlan))
		return verdict(DROP_ETH_TRUNCATED, bytes); /* unreachable: parsed */
	if (bpf_xdp_adjust_head(ctx, -(int)MIRROR_PREFIX))
		goto transmit; /* no headroom: the frame is served, the copy lost */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + MIRROR_PREFIX + sizeof(struct ethhdr) > data_end)
		return XDP_DROP; /* unreachable: the room was just made */
	eth = data;
	__builtin_memcpy(eth, data + MIRROR_PREFIX, sizeof(*eth));
	eth->h_proto = bpf_htons(ETH_P_IP);
	meta = (void *)(eth + 1);
	*meta = mm;
	return XDP_PASS;

serve:
	if (rewrite(data, data_end, p, be) || tag_frame(ctx, p, be->vlan))
		return verdict(DROP_ETH_TRUNCATED, bytes); /* unreachable: parsed */
transmit:
	if (served_ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	port = be->port;
	return bpf_redirect_map(&tx_ports, port, XDP_DROP);
}

/* graygw_tc (tcx ingress, beside the XDP program) sends a mirrored frame
 * twice: as served (a clone), then rewritten into the copy. It cuts the
 * prefix graygw_xdp put in front (struct mirror_meta); every other frame goes
 * on untouched. */
SEC("tc")
int graygw_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct mirror_meta mm, *meta = (void *)(eth + 1);
	struct vlanhdr *vlan;
	struct iphdr *ip;
	__u16 *csum, c;
	__u32 l2;

	if ((void *)(meta + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    (meta->kind & 0xf0) != MIRROR_META_MAGIC)
		return TC_ACT_UNSPEC;
	mm = *meta;
	/* Cut the struct and the served frame's Ethernet header: what stays is
	 * the served frame, behind a copy of its Ethernet header whose
	 * ethertype says IPv4 (802.1Q when the served frame is tagged). */
	if (bpf_skb_adjust_room(skb, -(int)MIRROR_PREFIX, BPF_ADJ_ROOM_MAC, 0))
		return TC_ACT_SHOT;
	if (mm.kind & MIRROR_SERVED_TAGGED) {
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
		eth->h_proto = bpf_htons(ETH_P_8021Q_);
	}
	bpf_clone_redirect(skb, mm.served_ifindex, 0);
	if (!mm.copy_ifindex)
		return TC_ACT_SHOT;
	/* The copy's tag: as the served frame's but for its own port. */
	if ((mm.kind & MIRROR_SERVED_TAGGED) && !(mm.kind & MIRROR_COPY_TAGGED)) {
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
		eth->h_proto = bpf_htons(ETH_P_IP);
		if (bpf_skb_adjust_room(skb, -VLAN_HLEN, BPF_ADJ_ROOM_MAC, 0))
			return TC_ACT_SHOT;
	} else if (!(mm.kind & MIRROR_SERVED_TAGGED) && (mm.kind & MIRROR_COPY_TAGGED)) {
		if (bpf_skb_adjust_room(skb, VLAN_HLEN, BPF_ADJ_ROOM_MAC, 0))
			return TC_ACT_SHOT;
	}
	l2 = mm.kind & MIRROR_COPY_TAGGED ? ETH_HLEN_ + VLAN_HLEN : ETH_HLEN_;
	if (bpf_skb_pull_data(skb, l2 + sizeof(*ip) + sizeof(struct tcphdr)))
		bpf_skb_pull_data(skb, 0);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	vlan = (void *)(eth + 1);
	if ((void *)(vlan + 1) > data_end)
		return TC_ACT_SHOT;
	if (mm.kind & MIRROR_COPY_TAGGED) {
		eth->h_proto = bpf_htons(ETH_P_8021Q_);
		vlan->tci = bpf_htons(mm.copy_tci);
		vlan->encap = bpf_htons(ETH_P_IP);
		ip = (void *)(vlan + 1);
	} else {
		ip = (void *)(eth + 1);
	}
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, mm.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mm.smac, ETH_ALEN);
	ip->daddr = bpf_htonl(mm.underlay_ip);
	ip->tos = MIRROR_DSCP << 2 | (mm.tos & 3);
	ipv4_csum(ip);
	switch (mm.kind & MIRROR_L4_MASK) {
	case MIRROR_L4_TCP:
		csum = (void *)(ip + 1) + __builtin_offsetof(struct tcphdr, check);
		if ((void *)(csum + 1) > data_end)
			return TC_ACT_SHOT;
		*csum = bpf_htons(csum_update32(mm.orig_l4_csum, mm.orig_dst, mm.underlay_ip));
		break;
	case MIRROR_L4_UDP:
		csum = (void *)(ip + 1) + __builtin_offsetof(struct udphdr, check);
		if ((void *)(csum + 1) > data_end)
			return TC_ACT_SHOT;
		c = csum_update32(mm.orig_l4_csum, mm.orig_dst, mm.underlay_ip);
		*csum = bpf_htons(c ? c : 0xffff);
		break;
	}
	return bpf_redirect(mm.copy_ifindex, 0);
}

SEC("xdp")
int graygw_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet p = {};
	struct rule_value r = {};
	struct vip_value *hit; /* the vip entry (vip_index) */
	struct backend *be;
	__u32 port, *ifindex;
	__u16 pool;
	__u8 reason;

	reason = parse(data, data_end, &p);
	if (reason >= PARSE_INNER_IPV6) {
		bpf_tail_call(ctx, &progs, PROG_XDP6);
		return verdict(DROP_NOT_IPV4, bytes); /* unreachable: progs is filled at load */
	}
	if (reason == DROP_ETH_TRUNCATED || reason == DROP_NOT_IPV4 ||
	    reason == DROP_IPV4_TRUNCATED)
		return verdict(reason, bytes);
	/* VIP first: a packet not for a VIP is not ours, however broken. */
	/* p stays in memory, as when its address went to the vip hash lookup:
	 * the walk's verification prunes on its stack slots (docs/xdp.md,
	 * "Verifier"; without this, 540k instructions instead of 183k). */
	asm volatile("" : : "r"(&p) : "memory");
	hit = vip_of(p.outer_dst);
	if (!hit)
		return verdict(DROP_NOT_VIP, bytes);
	count(&vip_counters, hit->slot, bytes);
	if (p.tagged && !vlan_accepted(ctx->ingress_ifindex, p.tci))
		return verdict(DROP_VLAN_NOT_ACCEPTED, bytes);
	if (reason != DROP_NONE)
		return verdict(reason, bytes);
	if (p.ttl <= 1)
		return verdict(DROP_TTL_EXPIRED, bytes);

	p.flow.tenant = tenant_of(p.flow.vni);
	pool = select_pool(hit, &p.flow, bytes, &r);
	be = lookup_backend(pool, &p.flow);
	if (!be)
		return verdict(DROP_NO_BACKEND, bytes);
	count(&backend_counters, be->slot, bytes);
	if (be->family != FAMILY_IPV4)
		return verdict(DROP_BACKEND_FAMILY, bytes);

	port = be->port;
	ifindex = bpf_map_lookup_elem(&port_ifindex, &port);
	if (!ifindex || !*ifindex)
		return verdict(DROP_PORT_DOWN, bytes);
	if (r.action == ACTION_SET_POOL_MIRROR && split_hash(p.flow.vni, p.flow.src) <= r.sample)
		return mirror(ctx, &p, be, *ifindex, &r, bytes);
	if (rewrite(data, data_end, &p, be) || tag_frame(ctx, &p, be->vlan))
		return verdict(DROP_ETH_TRUNCATED, bytes); /* unreachable: parsed */
	if (*ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, port, XDP_DROP);
}

/* forward6 is the end of graygw_xdp6 and graygw_xdp64 once the backend is
 * chosen: its counter, the family guard, the port, the rewrite. */
static __always_inline int forward6(struct xdp_md *ctx, const struct packet6 *p, const struct backend *be,
				    __u64 bytes)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 port, *ifindex;

	count(&backend_counters, be->slot, bytes);
	if (be->family != (p->outer6 ? FAMILY_IPV6 : FAMILY_IPV4))
		return verdict(DROP_BACKEND_FAMILY, bytes);
	port = be->port;
	ifindex = bpf_map_lookup_elem(&port_ifindex, &port);
	if (!ifindex || !*ifindex)
		return verdict(DROP_PORT_DOWN, bytes);
	if (rewrite_any(data, data_end, p, be) || tag_frame(ctx, &p->pkt, be->vlan))
		return verdict(DROP_ETH_TRUNCATED, bytes); /* unreachable: parsed */
	if (*ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect_map(&tx_ports, port, XDP_DROP);
}

/* graygw_xdp6 is the pipeline for a frame with an IPv6 header (graygw_xdp
 * tail-calls it): an IPv6 outer (plain, or VXLAN with an inner IPv4 or IPv6
 * frame) or an inner IPv6 frame behind VXLAN over IPv4. The outer family
 * picks vip or vip_v6 and the rewrite, the flow's family gray_rules or
 * gray_rules_v6 and the hash; the backend's underlay family must be the
 * outer one (BACKEND_FAMILY). An IPv4 flow behind an IPv6 outer goes on to
 * graygw_xdp64 through handoff6: no program holds both tuple-space walks
 * (together they are past the verifier's limit). No mirror: gray_rules_v6
 * has no mirror action, and an IPv6 outer frame is never copied
 * (set_pool_mirror acts as set_pool). */
SEC("xdp")
int graygw_xdp6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct packet6 p = {};
	struct rule_value r = {};
	struct vip_value *hit;
	struct handoff6 *h;
	struct backend *be;
	__u32 zero = 0;
	__u16 pool;
	__u8 reason, ttl;

	reason = parse6(data, data_end, &p);
	if (reason == DROP_ETH_TRUNCATED || reason == DROP_NOT_IPV4 || reason == DROP_IPV4_TRUNCATED ||
	    reason == DROP_IPV6_TRUNCATED)
		return verdict(reason, bytes);
	if (p.outer6) {
		hit = bpf_map_lookup_elem(&vip_v6, &p.outer_dst6);
		if (!hit)
			return verdict(DROP_NOT_VIP, bytes);
		count(&vip6_counters, hit->slot, bytes);
		ttl = p.hop_limit;
	} else {
		hit = vip_of(p.pkt.outer_dst);
		if (!hit)
			return verdict(DROP_NOT_VIP, bytes);
		count(&vip_counters, hit->slot, bytes);
		ttl = p.pkt.ttl;
	}
	if (p.pkt.tagged && !vlan_accepted(ctx->ingress_ifindex, p.pkt.tci))
		return verdict(DROP_VLAN_NOT_ACCEPTED, bytes);
	if (reason != DROP_NONE)
		return verdict(reason, bytes);
	if (ttl <= 1)
		return verdict(DROP_TTL_EXPIRED, bytes);

	if (!p.is_flow6) {
		h = bpf_map_lookup_elem(&handoff6, &zero);
		if (!h)
			return XDP_DROP; /* unreachable: an array */
		h->p = p;
		h->vip = *hit;
		bpf_tail_call(ctx, &progs, PROG_XDP64);
		return XDP_DROP; /* unreachable: progs is filled at load */
	}
	p.flow6.tenant = tenant_of(p.flow6.vni);
	pool = select_pool6(hit, &p.flow6, bytes, &r);
	be = lookup_backend6(pool, &p.flow6);
	if (!be)
		return verdict(DROP_NO_BACKEND, bytes);
	return forward6(ctx, &p, be, bytes);
}

/* graygw_xdp64 serves an IPv4 flow behind an IPv6 outer from where
 * graygw_xdp6 left it in handoff6 (parsed, VIP counted): gray_rules, the
 * IPv4 hash, the IPv6 rewrite. Reading the packet from a map, not the
 * frame, is what keeps its verification small: every path before the walk
 * is one. */
SEC("xdp")
int graygw_xdp64(struct xdp_md *ctx)
{
	__u64 bytes = (__u64)(long)ctx->data_end - (__u64)(long)ctx->data;
	struct rule_value r = {};
	struct handoff6 *h;
	struct vip_value hit;
	struct packet6 p;
	struct backend *be;
	__u32 zero = 0;
	__u16 pool;

	h = bpf_map_lookup_elem(&handoff6, &zero);
	if (!h)
		return XDP_DROP; /* unreachable: an array */
	p = h->p;
	hit = h->vip;
	p.outer6 = 1;
	p.pkt.flow.tenant = tenant_of(p.pkt.flow.vni);
	pool = select_pool(&hit, &p.pkt.flow, bytes, &r);
	be = lookup_backend(pool, &p.pkt.flow);
	if (!be)
		return verdict(DROP_NO_BACKEND, bytes);
	return forward6(ctx, &p, be, bytes);
}
