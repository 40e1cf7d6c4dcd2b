/* Parsing (docs/pipeline.md §1): headers in order, stop at the first
 * problem and return its reason. Never reads past data_end. */
#ifndef __GRAYGW_PARSE_H
#define __GRAYGW_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"
#include "structs.h"

struct vlanhdr {
	__be16 tci;
	__be16 encap; /* the ethertype the tag encapsulates */
};

struct vxlanhdr {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};

/* ports reads the source and destination ports at l4, in host order. */
static __always_inline void ports(const void *l4, struct flow *f)
{
	const __be16 *p = l4;

	f->sport = bpf_ntohs(p[0]);
	f->dport = bpf_ntohs(p[1]);
}

/* parse_inner reads VXLAN and the inner frame that starts at vx; an inner
 * IPv6 header is PARSE_INNER_IPV6 (f->vni set), for graygw_xdp6. */
static __always_inline __u8 parse_inner(void *vx_start, void *data_end, struct flow *f)
{
	struct vxlanhdr *vx = vx_start;
	struct ethhdr *eth;
	struct iphdr *ip;
	void *l4;

	__builtin_memset(f, 0, sizeof(*f));
	if ((void *)(vx + 1) > data_end)
		return DROP_VXLAN_TRUNCATED;
	if (!(vx->flags & VXLAN_FLAG_I))
		return DROP_VXLAN_BAD_FLAGS;
	f->vni = (__u32)vx->vni[0] << 16 | (__u32)vx->vni[1] << 8 | vx->vni[2];

	eth = (void *)(vx + 1);
	if ((void *)(eth + 1) > data_end)
		return DROP_INNER_TRUNCATED;
	if (eth->h_proto != bpf_htons(ETH_P_IPV4))
		return eth->h_proto == bpf_htons(ETH_P_IPV6_) ? PARSE_INNER_IPV6 : DROP_INNER_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return DROP_INNER_TRUNCATED;
	if (*(__u8 *)ip != IPV4_VERSION_IHL5)
		return DROP_INNER_IPV4_MALFORMED;
	f->src = bpf_ntohl(ip->saddr);
	f->dst = bpf_ntohl(ip->daddr);
	f->proto = ip->protocol;
	if (ip->frag_off & bpf_htons(IPV4_FRAG_MASK))
		return DROP_NONE;
	if (f->proto != IPPROTO_TCP_ && f->proto != IPPROTO_UDP_)
		return DROP_NONE;
	l4 = ip + 1;
	if (l4 + 4 > data_end)
		return DROP_INNER_TRUNCATED;
	ports(l4, f);
	return DROP_NONE;
}

/* outer_ip is where the outer IPv4 header starts: after the Ethernet header
 * and, when the frame is tagged, the tag. */
static __always_inline void *outer_ip(void *data, const struct packet *p)
{
	return data + (p->l2 & 31); /* 14 or 18; the mask bounds it for the verifier */
}

/* parse fills p from the frame and returns the first problem met. Once the
 * outer IPv4 header is read p->outer_dst is valid, whatever the reason. One
 * 802.1Q tag is read (a frame cut inside it is ETH_TRUNCATED); a second tag,
 * or QinQ's 802.1ad one, is NOT_IPV4. An IPv6 header, outer or inner, is
 * PARSE_IPV6 or PARSE_INNER_IPV6: graygw_xdp6 parses it (p->l2, p->tagged
 * and p->tci are set, and for an inner one everything before it). */
static __always_inline __u8 parse(void *data, void *data_end, struct packet *p)
{
	struct ethhdr *eth = data;
	struct vlanhdr *vlan = (void *)(eth + 1);
	__u32 tagged, m;
	struct iphdr *ip;
	__be16 proto;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return DROP_ETH_TRUNCATED;
	/* Branch-free, so that the verifier walks one path for tagged and
	 * untagged frames (docs/xdp.md, "Verifier"): tagged is 1 for 802.1Q,
	 * m all ones then. A frame of 14 to 17 bytes is too short either way. */
	tagged = (((__u32)(eth->h_proto ^ bpf_htons(ETH_P_8021Q_)) - 1) >> 31) & 1;
	if ((void *)(vlan + 1) > data_end)
		return tagged ? DROP_ETH_TRUNCATED :
		       eth->h_proto == bpf_htons(ETH_P_IPV4) ? DROP_IPV4_TRUNCATED :
		       eth->h_proto == bpf_htons(ETH_P_IPV6_) ? PARSE_IPV6 : DROP_NOT_IPV4;
	m = -tagged;
	proto = (eth->h_proto & ~m) | (vlan->encap & m);
	p->tagged = tagged;
	p->tci = bpf_ntohs(vlan->tci) & m;
	p->l2 = ETH_HLEN_ + (tagged << 2);
	if (proto != bpf_htons(ETH_P_IPV4))
		return proto == bpf_htons(ETH_P_IPV6_) ? PARSE_IPV6 : DROP_NOT_IPV4;
	ip = outer_ip(data, p);
	if ((void *)(ip + 1) > data_end)
		return DROP_IPV4_TRUNCATED;
	p->outer_dst = bpf_ntohl(ip->daddr);
	p->ttl = ip->ttl;
	if (*(__u8 *)ip != IPV4_VERSION_IHL5)
		return DROP_IPV4_MALFORMED;
	if (ip->frag_off & bpf_htons(IPV4_FRAG_MASK))
		return DROP_IPV4_FRAGMENT;
	p->flow.src = bpf_ntohl(ip->saddr);
	p->flow.dst = p->outer_dst;
	p->flow.proto = ip->protocol;

	l4 = ip + 1;
	if (ip->protocol == IPPROTO_TCP_) {
		if (l4 + sizeof(struct tcphdr) > data_end)
			return DROP_L4_TRUNCATED;
	} else if (ip->protocol == IPPROTO_UDP_) {
		if (l4 + sizeof(struct udphdr) > data_end)
			return DROP_L4_TRUNCATED;
	} else {
		return DROP_NONE; /* plain, ports 0 */
	}
	ports(l4, &p->flow);
	if (ip->protocol != IPPROTO_UDP_ || p->flow.dport != VXLAN_PORT)
		return DROP_NONE;

	p->overlay = 1;
	return parse_inner(l4 + sizeof(struct udphdr), data_end, &p->flow);
}

#endif
