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

/* The contribution of each field of the 18-byte flow key vni(24) tenant(16)
 * src dst proto sport dport to its CRC (crc32.h explains why a key's CRC is
 * CRC_FLOW_ZERO xor one independent table load per byte). A zero byte's
 * entry is 0 in every table, so a field that is all zeros adds nothing. */
#define CRC_VNI(v) (crc_flow_tab[0][B1(v)] ^ crc_flow_tab[1][B2(v)] ^ crc_flow_tab[2][B3(v)])
#define CRC_TENANT(t) (crc_flow_tab[3][((t) >> 8) & 0xff] ^ crc_flow_tab[4][(t) & 0xff])
#define CRC_SRC(x) (crc_flow_tab[5][B0(x)] ^ crc_flow_tab[6][B1(x)] ^ crc_flow_tab[7][B2(x)] ^ \
		    crc_flow_tab[8][B3(x)])
#define CRC_DST(x) (crc_flow_tab[9][B0(x)] ^ crc_flow_tab[10][B1(x)] ^ crc_flow_tab[11][B2(x)] ^ \
		    crc_flow_tab[12][B3(x)])
#define CRC_PROTO(p) (crc_flow_tab[13][(p) & 0xff])
#define CRC_SPORT(p) (crc_flow_tab[14][((p) >> 8) & 0xff] ^ crc_flow_tab[15][(p) & 0xff])
#define CRC_DPORT(p) (crc_flow_tab[16][((p) >> 8) & 0xff] ^ crc_flow_tab[17][(p) & 0xff])

/* flow_crc16 is the low 16 bits of the CRC of the 18-byte flow key. */
static __always_inline __u16 flow_crc16(const struct flow *k)
{
	return CRC_FLOW_ZERO ^ CRC_VNI(k->vni) ^ CRC_TENANT(k->tenant) ^ CRC_SRC(k->src) ^
	       CRC_DST(k->dst) ^ CRC_PROTO(k->proto) ^ CRC_SPORT(k->sport) ^ CRC_DPORT(k->dport);
}

/* flow_crc16_out is flow_crc16 of the key with field i zeroed where bit
 * shift + i of out is set (i: vni, tenant, src, dst, proto, sport, dport):
 * a left-out field is skipped, not loaded. A pool hashing vni and src, the
 * usual gray pool, loads 7 table entries instead of 18. */
static __always_inline __u16 flow_crc16_out(const struct flow *k, __u32 out, int shift)
{
	__u16 c = CRC_FLOW_ZERO;

	if (!(out & (1U << shift)))
		c ^= CRC_VNI(k->vni);
	if (!(out & (2U << shift)))
		c ^= CRC_TENANT(k->tenant);
	if (!(out & (4U << shift)))
		c ^= CRC_SRC(k->src);
	if (!(out & (8U << shift)))
		c ^= CRC_DST(k->dst);
	if (!(out & (16U << shift)))
		c ^= CRC_PROTO(k->proto);
	if (!(out & (32U << shift)))
		c ^= CRC_SPORT(k->sport);
	if (!(out & (64U << shift)))
		c ^= CRC_DPORT(k->dport);
	return c;
}

/* split_hash is the low 16 bits of the CRC of vni(24) src(32). */
static __always_inline __u16 split_hash(__u32 vni, __u32 src)
{
	return CRC_SPLIT_ZERO ^
	       crc_split_tab[0][B1(vni)] ^ crc_split_tab[1][B2(vni)] ^ crc_split_tab[2][B3(vni)] ^
	       crc_split_tab[3][B0(src)] ^ crc_split_tab[4][B1(src)] ^
	       crc_split_tab[5][B2(src)] ^ crc_split_tab[6][B3(src)];
}

/* crc_u64 is the contribution of the 8 bytes of w (big-endian: the top
 * byte first) at rows tab[0..7]. */
static __always_inline __u16 crc_u64(const __u16 (*tab)[256], __u64 w)
{
	return tab[0][w >> 56] ^ tab[1][(w >> 48) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^
	       tab[3][(w >> 32) & 0xff] ^ tab[4][(w >> 24) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^
	       tab[6][(w >> 8) & 0xff] ^ tab[7][w & 0xff];
}

/* The IPv6 flow key (docs/pipeline.md §6): vni(24) tenant(16) src(128)
 * dst(128) proto(8) sport(16) dport(16), 42 bytes; the rows of each field. */
#define CRC6_VNI(v) (crc_flow6_tab[0][B1(v)] ^ crc_flow6_tab[1][B2(v)] ^ crc_flow6_tab[2][B3(v)])
#define CRC6_TENANT(t) (crc_flow6_tab[3][((t) >> 8) & 0xff] ^ crc_flow6_tab[4][(t) & 0xff])
#define CRC6_ADDR(a, row) (crc_u64(crc_flow6_tab + (row), (a).hi) ^ crc_u64(crc_flow6_tab + (row) + 8, (a).lo))
#define CRC6_PROTO(p) (crc_flow6_tab[37][(p) & 0xff])
#define CRC6_SPORT(p) (crc_flow6_tab[38][((p) >> 8) & 0xff] ^ crc_flow6_tab[39][(p) & 0xff])
#define CRC6_DPORT(p) (crc_flow6_tab[40][((p) >> 8) & 0xff] ^ crc_flow6_tab[41][(p) & 0xff])

/* flow6_crc16_out is the low 16 bits of the CRC of the 42-byte IPv6 flow
 * key with field i left out (zeros) where bit shift + i of out is set, as
 * flow_crc16_out. */
static __always_inline __u16 flow6_crc16_out(const struct flow6 *k, __u32 out, int shift)
{
	__u16 c = CRC_FLOW6_ZERO;

	if (!(out & (1U << shift)))
		c ^= CRC6_VNI(k->vni);
	if (!(out & (2U << shift)))
		c ^= CRC6_TENANT(k->tenant);
	if (!(out & (4U << shift)))
		c ^= CRC6_ADDR(k->src, 5);
	if (!(out & (8U << shift)))
		c ^= CRC6_ADDR(k->dst, 21);
	if (!(out & (16U << shift)))
		c ^= CRC6_PROTO(k->proto);
	if (!(out & (32U << shift)))
		c ^= CRC6_SPORT(k->sport);
	if (!(out & (64U << shift)))
		c ^= CRC6_DPORT(k->dport);
	return c;
}

/* split_hash6 is the low 16 bits of the CRC of vni(24) src(128), 19 bytes. */
static __always_inline __u16 split_hash6(__u32 vni, const struct addr6 *src)
{
	return CRC_SPLIT6_ZERO ^
	       crc_split6_tab[0][B1(vni)] ^ crc_split6_tab[1][B2(vni)] ^ crc_split6_tab[2][B3(vni)] ^
	       crc_u64(crc_split6_tab + 3, src->hi) ^ crc_u64(crc_split6_tab + 11, src->lo);
}

/* tss6_bit is the gray_masks6 filter bit of a gray_rules_v6 key (mask id
 * included): a multiplicative hash of its six words; bpf/rules6.go computes
 * the same. */
static __always_inline __u32 tss6_bit(const struct tss6_key *k)
{
	__u64 h;

	h = k->src.hi * 0x9e3779b97f4a7c15ULL;
	h ^= k->src.lo * 0xc2b2ae3d27d4eb4fULL;
	h ^= k->dst.hi * 0x165667b19e3779f9ULL;
	h ^= k->dst.lo * 0xd6e8feb86659fd93ULL;
	h ^= k->ids * 0xff51afd7ed558ccdULL;
	h ^= k->ports * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h >> (64 - TSS6_FILTER_LOG);
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
