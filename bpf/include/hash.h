/* The pipeline's hashes (docs/pipeline.md §6): CRC32/IEEE over the
 * big-endian key bytes, bit-exact with Go's crc32.ChecksumIEEE in the low 16
 * bits (all the pipeline uses), from per-position tables; and the tss_filter
 * bit of a gray_rules key. */
#ifndef __GRAYGW_HASH_H
#define __GRAYGW_HASH_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#include "crc32.h"
#include "structs.h"

#if BUCKETS > 65536
#error "flow_crc16 gives 16 bits: BUCKETS must be at most 65536"
#endif

#define B0(x) ((x) >> 24)
#define B1(x) (((x) >> 16) & 0xff)
#define B2(x) (((x) >> 8) & 0xff)
#define B3(x) ((x) & 0xff)

/* flow_crc16 is the low 16 bits of the CRC of the 18-byte key vni(24)
 * tenant(16) src dst proto sport dport: one independent table load per
 * byte (crc32.h explains why that is the CRC). */
static __always_inline __u16 flow_crc16(const struct flow *k)
{
	__u32 vni = k->vni, src = k->src, dst = k->dst;
	__u32 tp = (__u32)k->tenant << 16 | k->proto << 8, pt = (__u32)k->sport << 16 | k->dport;

	return CRC_FLOW_ZERO ^
	       crc_flow_tab[0][B1(vni)] ^ crc_flow_tab[1][B2(vni)] ^ crc_flow_tab[2][B3(vni)] ^
	       crc_flow_tab[3][B0(tp)] ^ crc_flow_tab[4][B1(tp)] ^
	       crc_flow_tab[5][B0(src)] ^ crc_flow_tab[6][B1(src)] ^
	       crc_flow_tab[7][B2(src)] ^ crc_flow_tab[8][B3(src)] ^
	       crc_flow_tab[9][B0(dst)] ^ crc_flow_tab[10][B1(dst)] ^
	       crc_flow_tab[11][B2(dst)] ^ crc_flow_tab[12][B3(dst)] ^
	       crc_flow_tab[13][B2(tp)] ^
	       crc_flow_tab[14][B0(pt)] ^ crc_flow_tab[15][B1(pt)] ^
	       crc_flow_tab[16][B2(pt)] ^ crc_flow_tab[17][B3(pt)];
}

/* split_hash is the low 16 bits of the CRC of vni(24) src(32). */
static __always_inline __u16 split_hash(__u32 vni, __u32 src)
{
	return CRC_SPLIT_ZERO ^
	       crc_split_tab[0][B1(vni)] ^ crc_split_tab[1][B2(vni)] ^ crc_split_tab[2][B3(vni)] ^
	       crc_split_tab[3][B0(src)] ^ crc_split_tab[4][B1(src)] ^
	       crc_split_tab[5][B2(src)] ^ crc_split_tab[6][B3(src)];
}

/* tss_bit is the tss_filter bit of a gray_rules key, from the masked key
 * packed in three words (see struct mask_entry) and the mask id: a
 * multiplicative hash; bpf/filter.go computes the same. */
static __always_inline __u32 tss_bit(__u64 addr, __u64 ids, __u64 ports, __u32 mask_id)
{
	__u64 h;

	h = addr * 0x9e3779b97f4a7c15ULL;
	h ^= ids * 0xc2b2ae3d27d4eb4fULL;
	h ^= (ports | mask_id) * 0x165667b19e3779f9ULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h >> (64 - TSS_FILTER_LOG);
}

#endif
