// Headers and metadata shared by the v1model and the TNA programs.

#ifndef __GRAYGW_HEADER__
#define __GRAYGW_HEADER__

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

// One 802.1Q tag (docs/pipeline.md §1): TCI and the encapsulated ethertype.
header vlan_t {
    bit<3>     pcp;
    bit<1>     dei;
    vid_t      vid;
    bit<16>    ether_type;
}

// 20 bytes: options (ihl != 5) are refused as IPV4_MALFORMED, never parsed.
header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// IPv6 (docs/pipeline.md §1), outer and inner: the fixed 40 bytes. Extension
// headers are never walked: the outer ones and the inner hop-by-hop, routing,
// AH and destination options are drop reasons; only the inner fragment header
// is read (ipv6_frag_t).
const bit<16> ETHERTYPE_IPV6 = 0x86DD;
header ipv6_t {
    bit<4>   version;
    bit<8>   traffic_class;
    bit<20>  flow_label;
    bit<16>  payload_len;
    bit<8>   next_hdr;
    bit<8>   hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

// The inner IPv6 fragment header (next header 44): its next header is the
// flow's proto; every fragment, the first too, has ports 0.
header ipv6_frag_t {
    bit<8>  next_hdr;
    bit<8>  reserved;
    bit<13> frag_offset;
    bit<2>  res;
    bit<1>  more;
    bit<32> identification;
}

// Outer ICMPv6 (next header 58): its checksum covers the pseudo-header, so
// to_backend_v6 updates it; type and code are read for nothing else.
header icmp6_t {
    bit<8>  type;
    bit<8>  code;
    bit<16> checksum;
}

// The fixed 20 bytes; TCP options stay in the payload, untouched.
header tcp_t {
    l4_port_t sport;
    l4_port_t dport;
    bit<32>   seq_no;
    bit<32>   ack_no;
    bit<4>    data_offset;
    bit<4>    res;
    bit<8>    flags;
    bit<16>   window;
    bit<16>   checksum;
    bit<16>   urgent_ptr;
}

header udp_t {
    l4_port_t sport;
    l4_port_t dport;
    bit<16>   len;
    bit<16>   checksum;
}

header vxlan_t {
    bit<8>  flags;
    bit<24> reserved;
    vni_t   vni;
    bit<8>  reserved2;
}

// Inner TCP or UDP: only the ports are read (4 bytes), so a short inner segment
// is INNER_TRUNCATED only when the ports themselves are cut.
header l4_ports_t {
    l4_port_t sport;
    l4_port_t dport;
}

// In wire order: the TNA deparser emits the struct as it is.
struct headers_t {
    ethernet_t ethernet;
    vlan_t     vlan;
    ipv4_t     ipv4;      // exclusive with ipv6
    ipv6_t     ipv6;
    tcp_t      tcp;
    udp_t      udp;
    icmp6_t    icmp6;     // outer IPv6 only
    vxlan_t    vxlan;
    ethernet_t inner_ethernet;
    ipv4_t     inner_ipv4; // exclusive with inner_ipv6
    ipv6_t     inner_ipv6;
    ipv6_frag_t inner_frag;
    l4_ports_t inner_l4;
}

// The flow fields (docs/pipeline.md §1), in hash key order: vni(24) tenant(16)
// src(32) dst(32) proto(8) sport(16) dport(16) = 18 bytes. The same layout holds
// a pool's hash masks and the masked key. An IPv6 flow keeps its 128-bit
// addresses in flow_addr6_t (src and dst here are then 0); its key6 is vni
// tenant src6 dst6 proto sport dport = 42 bytes.
struct flow_key_t {
    vni_t       vni;
    tenant_id_t tenant;
    ipv4_addr_t src;
    ipv4_addr_t dst;
    bit<8>      proto;
    l4_port_t   sport;
    l4_port_t   dport;
}

// The addresses of an IPv6 flow, and of its masked hash key.
struct flow_addr6_t {
    ipv6_addr_t src;
    ipv6_addr_t dst;
}

// split_pool: pool_gray when hash_value < threshold.
//   v1model: hash_value and threshold zero-extended to 17 bits, compared with '<'.
//   TNA: below = threshold |-| hash16 (saturating), computed by split_pool
//   itself; hash_value < threshold exactly when below != 0. No zero-extension
//   of action data (which bf-p4c cannot place) and a one-field test after
//   gray_rules instead of a borrow bit (which it cannot gate on).
struct split_metadata_t {
    bool      active;     // v1model: the winning gray rule is a split_pool
    pool_id_t pool_gray;
    bit<17>   threshold;  // v1model: the 16-bit action parameter, zero-extended
    bit<17>   hash_value; // v1model: low 16 bits of CRC32(vni ++ src), zero-extended
    bit<16>   hash16;     // TNA: low 16 bits of CRC32(vni ++ src)
    bit<16>   below;      // TNA: threshold |-| hash16; 0 unless a split sends to gray
}

struct graygw_metadata_t {
    // The parse outcome: a check that failed (NOT_IPV4, IPV4_MALFORMED, ...),
    // DROP_NONE if none. A truncated frame is told by the parser error and
    // the headers left invalid (TruncatedReason in flow.p4), not recorded here:
    // on Tofino a metadata field written in several parser states is OR-ed,
    // not overwritten.
    drop_reason_t parse_reason;
    // The verdict: DROP_NONE forwards, anything else is counted and dropped.
    drop_reason_t drop_reason;

    flow_key_t       flow;      // tenant filled by vni_tenant
    // The flow's family: that of the header its fields come from (inner for
    // overlay, outer for plain). An IPv6 flow meets gray_rules_v6 and key6.
    bool             flow_v6;
    flow_addr6_t     flow6;
    bool             vip_hit;   // TNA: set_vip ran (gates gray_rules in one stage)
    // TNA: the frame is tagged and vlan_accept has not accepted its VID (set
    // by the parser, cleared by accept_vlan).
    bool             vlan_refused;
    vip_id_t         vip_id;
    pool_id_t        pool_id;   // the VIP's default pool until gray_rules says otherwise
    split_metadata_t split;
    // The hash input: the flow, ANDed with the pool's masks by set_hash_mask
    // (a pool without a pool_hash entry hashes every field).
    flow_key_t       hash_key;
    flow_addr6_t     hash_key6;
    // v1model: the pool's src and dst masks (all ones without a pool_hash
    // entry), for an IPv6 flow's key6: a zero mask leaves the address out,
    // any other keeps it whole.
    ipv4_addr_t      src_mask;
    ipv4_addr_t      dst_mask;
    // The backend entry's underlay family (to_backend_v6): it must be the
    // outer header's, else BACKEND_FAMILY.
    bool             to_v6;
    bucket_t         bucket;
    backend_id_t     backend_id;

    // Mirror (docs/pipeline.md §10): set by set_pool_mirror; mirror_active is
    // cleared when the VM is not sampled (split hash > sample). v1model keeps
    // the @field_list(1) (FL_MIRROR) fields across the clone and the
    // recirculation that make the copy.
    bool                  mirror_active;
    bit<17>               mirror_sample;  // v1model: zero-extended like split's threshold
    @field_list(1) pool_id_t   mirror_pool;
    @field_list(1) mirror_id_t mirror_id;
    @field_list(1) tenant_id_t mirror_tenant;
    // TNA only (docs/p4-targets.md, "Mirror"): the sampling test's operand
    // (split hash |-| sample: 0 when the VM is sampled), the received outer
    // destination and TTL the copy carries in its mirror header, the mirror
    // session and the header's first byte, and whether this pass is a copy back from the recirculation
    // port (parser: then pool_id is the mirror pool).
    bit<16>               mirror_over;
    ipv4_addr_t           rx_dst;
    bit<8>                rx_ttl;
    bit<10>               mirror_session;
    bit<8>                mirror_kind;
    bool                  is_copy;

    // TNA only (v1model does this in its checksum control and in ingress):
    // the parser's L4 checksum residual (~HC - old dst, ones' complement) and
    // which checksums the deparser must write.
    bit<16> l4_csum_residual;
    bool    upd_ipv4_csum;
    bool    upd_tcp_csum;
    bool    upd_udp_csum;
    bool    upd_tcp6_csum;
    bool    upd_udp6_csum;
    bool    upd_icmp6_csum;
    // TNA: what backend's to_backend (reason_to_v4) and to_backend_v6
    // (reason_to_v6) make the drop reason: NONE, or BACKEND_FAMILY when the
    // outer header is of the other family (set by the parser, so that the
    // guard costs no stage after backend's).
    drop_reason_t reason_to_v4;
    drop_reason_t reason_to_v6;
}

#endif // __GRAYGW_HEADER__
