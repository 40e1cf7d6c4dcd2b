// Types and constants of the graygw pipeline (docs/pipeline.md), shared by the
// v1model and the TNA programs. The Go twins live in pipeline/, the C ones in
// bpf/include/consts.h: change all three together.

#ifndef __GRAYGW_DEFINE__
#define __GRAYGW_DEFINE__

typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<16> l4_port_t;

typedef bit<24> vni_t;
typedef bit<16> vip_id_t;
typedef bit<16> pool_id_t;
typedef bit<16> tenant_id_t;
typedef bit<16> backend_id_t;
// 16 bits although BUCKETS is 4096, so that changing BUCKETS (any power of two
// up to 65536) does not change the P4Info.
typedef bit<16> bucket_t;
// Index of a drop_reasons cell; 17 reasons.
typedef bit<5>  drop_reason_t;
typedef bit<12> vid_t;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
// 802.1Q (C-tag). QinQ's 802.1ad S-tag (0x88A8) is not parsed: NOT_IPV4.
const bit<16> ETHERTYPE_VLAN = 0x8100;

const bit<8> PROTO_ICMP = 1;
const bit<8> PROTO_TCP  = 6;
const bit<8> PROTO_UDP  = 17;
const bit<8> PROTO_ICMP6 = 58;

// IPv6 next headers that are extension headers (docs/pipeline.md §1): outer,
// every one is IPV6_EXTENSION; inner, the fragment header is read and the
// others are INNER_IPV6_EXTENSION.
const bit<8> IPV6_HOP_BY_HOP = 0;
const bit<8> IPV6_ROUTING    = 43;
const bit<8> IPV6_FRAGMENT   = 44;
const bit<8> IPV6_AH         = 51;
const bit<8> IPV6_DEST_OPTS  = 60;

const l4_port_t VXLAN_UDP_PORT = 4789;
// The I flag in the first byte of the VXLAN header: the VNI is valid.
const bit<8> VXLAN_FLAG_I = 0x08;

// IPv4 flags are (reserved, DF, MF): a packet with MF set or a non-zero offset
// is a fragment. DF and the reserved bit are ignored.
const bit<3> IPV4_FLAG_MF = 0x1;

// Consistent-hash buckets per pool: a power of two, bucket = CRC32 & (BUCKETS-1).
// BUCKET_BITS = log2(BUCKETS): TNA slices the CRC, v1model passes BUCKETS as the
// hash() max. Keep the two in step (pipeline.Buckets).
const bit<32> BUCKETS = 4096;
#define BUCKET_BITS 12

// split_pool compares the low 16 bits of a CRC32 with a threshold in 1/65536
// units: v1model hash() max.
const bit<32> SPLIT_HASH_RANGE = 65536;

// Mirror (docs/pipeline.md §10): mirror_counter cells, the copy's outer DSCP
// (Lower-Effort, RFC 8622), and the v1model clone session and field list that
// make the copy (pipeline.MirrorIDs, MirrorDSCP, MirrorSessionID).
#define MIRROR_IDS 1024
typedef bit<16> mirror_id_t;
const bit<6>  MIRROR_DSCP = 1;
const bit<32> MIRROR_SESSION_ID = 1;
// v1model: the @field_list index of the fields the copy keeps (header.p4).
const bit<8>  FL_MIRROR = 1;

// Drop reasons = drop_reasons cell indices (docs/pipeline.md §9,
// pipeline/reason.go). Cell 0 is never counted.
#define NUM_DROP_REASONS 32
const drop_reason_t DROP_NONE                 = 0;  // forwarded
const drop_reason_t DROP_ETH_TRUNCATED        = 1;
const drop_reason_t DROP_NOT_IPV4             = 2;  // not for us
const drop_reason_t DROP_IPV4_TRUNCATED       = 3;
const drop_reason_t DROP_NOT_VIP              = 4;  // not for us
const drop_reason_t DROP_IPV4_MALFORMED       = 5;
const drop_reason_t DROP_IPV4_FRAGMENT        = 6;
const drop_reason_t DROP_L4_TRUNCATED         = 7;
const drop_reason_t DROP_VXLAN_TRUNCATED      = 8;
const drop_reason_t DROP_VXLAN_BAD_FLAGS      = 9;
const drop_reason_t DROP_INNER_TRUNCATED      = 10;
const drop_reason_t DROP_INNER_NOT_IPV4       = 11;
const drop_reason_t DROP_INNER_IPV4_MALFORMED = 12;
const drop_reason_t DROP_TTL_EXPIRED          = 13;
const drop_reason_t DROP_NO_BACKEND           = 14;
const drop_reason_t DROP_PORT_DOWN            = 15; // XDP only: never set in P4
const drop_reason_t DROP_VLAN_NOT_ACCEPTED    = 16; // tagged, VID not in vlan_accept
// IPv6 (issue 19). Cells 23-31 are spare.
const drop_reason_t DROP_IPV6_TRUNCATED       = 17;
const drop_reason_t DROP_IPV6_MALFORMED       = 18;
const drop_reason_t DROP_IPV6_EXTENSION       = 19;
const drop_reason_t DROP_INNER_IPV6_MALFORMED = 20;
const drop_reason_t DROP_INNER_IPV6_EXTENSION = 21;
const drop_reason_t DROP_BACKEND_FAMILY       = 22;

#endif // __GRAYGW_DEFINE__
