/* The pipeline's hashes (docs/pipeline.md §6): CRC32/IEEE, slicing-by-4,
 * over the big-endian key bytes, bit-exact with Go's crc32.ChecksumIEEE. */
#ifndef __GRAYGW_HASH_H
#define __GRAYGW_HASH_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#include "crc32.h"
#include "structs.h"

/* crc32_be4 feeds the four bytes of w, most significant first. */
static __always_inline __u32 crc32_be4(__u32 crc, __u32 w)
{
	crc ^= __builtin_bswap32(w); /* the first byte in the low lane */
	return crc32_tab[3][crc & 0xff] ^ crc32_tab[2][(crc >> 8) & 0xff] ^
	       crc32_tab[1][(crc >> 16) & 0xff] ^ crc32_tab[0][crc >> 24];
}

static __always_inline __u32 crc32_byte(__u32 crc, __u8 b)
{
	return crc32_tab[0][(crc ^ b) & 0xff] ^ (crc >> 8);
}

/* flow_crc is the CRC of vni(24) tenant(16) src dst proto sport dport. */
static __always_inline __u32 flow_crc(const struct flow *k)
{
	__u32 crc = 0xffffffff;

	crc = crc32_be4(crc, k->vni << 8 | k->tenant >> 8);
	crc = crc32_be4(crc, (__u32)(k->tenant & 0xff) << 24 | k->src >> 8);
	crc = crc32_be4(crc, k->src << 24 | k->dst >> 8);
	crc = crc32_be4(crc, k->dst << 24 | (__u32)k->proto << 16 | k->sport);
	crc = crc32_byte(crc, k->dport >> 8);
	crc = crc32_byte(crc, k->dport & 0xff);
	return ~crc;
}

/* split_hash is the low 16 bits of the CRC of vni(24) src(32). */
static __always_inline __u16 split_hash(__u32 vni, __u32 src)
{
	__u32 crc = 0xffffffff;

	crc = crc32_be4(crc, vni << 8 | src >> 24);
	crc = crc32_byte(crc, (src >> 16) & 0xff);
	crc = crc32_byte(crc, (src >> 8) & 0xff);
	crc = crc32_byte(crc, src & 0xff);
	return (__u16)~crc;
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
