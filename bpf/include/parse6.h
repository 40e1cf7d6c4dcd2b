/* Parsing of IPv6 headers (docs/pipeline.md §1) for graygw_xdp6: an outer
 * IPv6 header, and an inner one behind VXLAN over either family. Never
 * reads past data_end. */
#ifndef __GRAYGW_PARSE6_H
#define __GRAYGW_PARSE6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "consts.h"
#include "structs.h"
#include "parse.h"

/* The fixed IPv6 header (RFC 8200 §3). */
struct ip6hdr {
	__be32 vtc_flow; /* version 4, traffic class 8, flow label 20 */
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* addr6_load reads the 16 bytes at b into a's two big-endian halves. */
static __always_inline void addr6_load(const __u8 *b, struct addr6 *a)
{
	__u64 hi, lo;

	__builtin_memcpy(&hi, b, 8);
	__builtin_memcpy(&lo, b + 8, 8);
	a->hi = bpf_be64_to_cpu(hi);
	a->lo = bpf_be64_to_cpu(lo);
}

static __always_inline int ip6_version_ok(const struct ip6hdr *ip)
{
	return (*(const __u8 *)ip >> 4) == 6;
}

/* ext_header: the extension headers (RFC 8200 §4) that are neither parsed
 * nor passed over: the fragment header is handled by the caller. */
static __always_inline int ext_header(__u8 nh)
{
	return nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_AH || nh == NEXTHDR_DEST;
}

/* parse_ip6_inner reads the inner IPv6 header at ip into f (vni aside). A
 * fragment header gives its next header as the protocol and no ports (every
 * fragment, the first too); the other extension headers are dropped. */
static __always_inline __u8 parse_ip6_inner(void *l3, void *data_end, struct flow6 *f)
{
	struct ip6hdr *ip = l3;
	void *l4 = l3 + IPV6_HLEN;
	__u8 nh;

	if (l4 > data_end)
		return DROP_INNER_TRUNCATED;
	if (!ip6_version_ok(ip))
		return DROP_INNER_IPV6_MALFORMED;
	addr6_load(ip->saddr, &f->src);
	addr6_load(ip->daddr, &f->dst);
	nh = ip->nexthdr;
	f->proto = nh;
	if (nh == IPPROTO_TCP_ || nh == IPPROTO_UDP_) {
		if (l4 + 4 > data_end)
			return DROP_INNER_TRUNCATED;
		f->sport = bpf_ntohs(((__be16 *)l4)[0]);
		f->dport = bpf_ntohs(((__be16 *)l4)[1]);
		return DROP_NONE;
	}
	if (nh == NEXTHDR_FRAGMENT) {
		if (l4 + IPV6_FRAG_HLEN > data_end)
			return DROP_INNER_TRUNCATED;
		f->proto = *(__u8 *)l4;
		return DROP_NONE;
	}
	if (ext_header(nh))
		return DROP_INNER_IPV6_EXTENSION;
	return DROP_NONE;
}

/* parse_outer6 reads the outer IPv6 header at data + p->pkt.l2 and what
 * follows, after parse() returned PARSE_IPV6: a plain IPv6 flow, or VXLAN
 * with an inner IPv4 flow (p->pkt.flow) or IPv6 one (p->flow6). Once the
 * 40 bytes are read p->outer_dst6 is valid, whatever the reason. */
static __always_inline __u8 parse_outer6(void *data, void *data_end, struct packet6 *p)
{
	struct ip6hdr *ip = outer_ip(data, &p->pkt);
	void *l4 = (void *)ip + IPV6_HLEN;
	__u8 nh, r;

	if (l4 > data_end)
		return DROP_IPV6_TRUNCATED;
	p->outer6 = 1;
	addr6_load(ip->daddr, &p->outer_dst6);
	p->hop_limit = ip->hop_limit;
	if (!ip6_version_ok(ip))
		return DROP_IPV6_MALFORMED;
	nh = ip->nexthdr;
	p->l4_proto = nh;
	if (nh == NEXTHDR_FRAGMENT || ext_header(nh))
		return DROP_IPV6_EXTENSION;
	p->is_flow6 = 1;
	addr6_load(ip->saddr, &p->flow6.src);
	p->flow6.dst = p->outer_dst6;
	p->flow6.proto = nh;
	if (nh == IPPROTO_TCP_) {
		if (l4 + 20 > data_end)
			return DROP_L4_TRUNCATED;
	} else if (nh == IPPROTO_UDP_) {
		if (l4 + 8 > data_end)
			return DROP_L4_TRUNCATED;
	} else if (nh == IPPROTO_ICMPV6_) {
		if (l4 + 4 > data_end)
			return DROP_L4_TRUNCATED;
		return DROP_NONE; /* ports 0 */
	} else {
		return DROP_NONE; /* plain, ports 0 */
	}
	p->flow6.sport = bpf_ntohs(((__be16 *)l4)[0]);
	p->flow6.dport = bpf_ntohs(((__be16 *)l4)[1]);
	if (nh != IPPROTO_UDP_ || p->flow6.dport != VXLAN_PORT)
		return DROP_NONE;

	p->pkt.overlay = 1;
	p->is_flow6 = 0;
	r = parse_inner(l4 + 8, data_end, &p->pkt.flow);
	if (r != PARSE_INNER_IPV6)
		return r;
	__builtin_memset(&p->flow6, 0, sizeof(p->flow6));
	p->flow6.vni = p->pkt.flow.vni;
	p->is_flow6 = 1;
	return parse_ip6_inner(l4 + 8 + VXLAN_HLEN + ETH_HLEN_, data_end, &p->flow6);
}

/* parse6 is graygw_xdp6's parse: parse(), then the IPv6 header it stopped
 * at. */
static __always_inline __u8 parse6(void *data, void *data_end, struct packet6 *p)
{
	__u8 r = parse(data, data_end, &p->pkt);

	if (r == PARSE_IPV6)
		return parse_outer6(data, data_end, p);
	if (r != PARSE_INNER_IPV6)
		return r; /* not ours to begin with: graygw_xdp handles it */
	/* VXLAN over IPv4: everything up to the inner IPv6 header was read. */
	p->is_flow6 = 1;
	p->flow6.vni = p->pkt.flow.vni;
	return parse_ip6_inner(outer_ip(data, &p->pkt) + sizeof(struct iphdr) + 8 + VXLAN_HLEN + ETH_HLEN_,
			       data_end, &p->flow6);
}

#endif
