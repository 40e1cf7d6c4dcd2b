/* Checksums of the rewrite (docs/pipeline.md §8), computed exactly as the
 * reference model does so output frames are byte-identical. */
#ifndef __GRAYGW_CSUM_H
#define __GRAYGW_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

/* csum_fold folds a 32-bit sum of 16-bit words into 16 bits with
 * end-around carry. Two rounds suffice for sums of up to 0x10000 words. */
static __always_inline __u16 csum_fold_(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* ipv4_csum recomputes the header checksum of a 20-byte IPv4 header. */
static __always_inline void ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += bpf_ntohs(w[i]);
	ip->check = bpf_htons((__u16)~csum_fold_(sum));
}

/* ipv4_forward decrements the TTL of a 20-byte IPv4 header, sets its
 * destination (host order) and recomputes its checksum: ipv4_csum's result,
 * computed from what is read before anything is written (a load spanning a
 * byte just stored waits for the store to retire). The one's complement sum
 * does not depend on byte order (RFC 1071 §2(B)), so five 32-bit words summed
 * as loaded fold to the checksum already in network order. */
static __always_inline void ipv4_forward(struct iphdr *ip, __u32 daddr)
{
	const __u32 *w = (const __u32 *)ip;
	__u32 ttl_proto = bpf_ntohl(w[2]) - 0x01000000; /* ttl, protocol, check */
	__u64 sum;

	sum = (__u64)w[0] + w[1] + bpf_htonl(ttl_proto & 0xffff0000) + w[3] + bpf_htonl(daddr);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->ttl = ttl_proto >> 24;
	ip->daddr = bpf_htonl(daddr);
	ip->check = (__u16)~sum;
}

/* csum_update32 is RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a 32-bit
 * field changing from old to new, one 16-bit word at a time (host order). */
static __always_inline __u16 csum_update32(__u16 hc, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~hc + (__u16)~(old >> 16) + (__u16)~old +
		    (new >> 16) + (new & 0xffff);

	return (__u16)~csum_fold_(sum);
}

/* csum_update32_be is csum_update32 on the checksum and the field as they
 * sit in the frame (network order, loaded as is): the one's complement sum
 * does not depend on byte order (RFC 1071 §2(B)), so no word is swapped and
 * the result is the same bits, ready to store. */
static __always_inline __u16 csum_update32_be(__u16 hc, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~hc + (__u16)~(old >> 16) + (__u16)~old +
		    (new >> 16) + (new & 0xffff);

	return (__u16)~csum_fold_(sum);
}

/* csum_diff128 is the one's complement sum of ~old and new over the eight
 * 16-bit words of two IPv6 addresses (host-order halves, struct addr6):
 * the m and m' terms of RFC 1624 eqn. 3 for the whole address. */
static __always_inline __u32 csum_diff128(__u64 old_hi, __u64 old_lo, __u64 new_hi, __u64 new_lo)
{
	__u64 o = ~old_hi, o2 = ~old_lo;
	__u64 sum = (o >> 48) + ((o >> 32) & 0xffff) + ((o >> 16) & 0xffff) + (o & 0xffff) +
		    (o2 >> 48) + ((o2 >> 32) & 0xffff) + ((o2 >> 16) & 0xffff) + (o2 & 0xffff) +
		    (new_hi >> 48) + ((new_hi >> 32) & 0xffff) + ((new_hi >> 16) & 0xffff) + (new_hi & 0xffff) +
		    (new_lo >> 48) + ((new_lo >> 32) & 0xffff) + ((new_lo >> 16) & 0xffff) + (new_lo & 0xffff);

	return csum_fold_((__u32)sum);
}

/* csum_update_diff is RFC 1624 eqn. 3 with the terms of the changed words
 * already summed (csum_diff128). */
static __always_inline __u16 csum_update_diff(__u16 hc, __u32 diff)
{
	return (__u16)~csum_fold_((__u16)~hc + diff);
}

#endif
