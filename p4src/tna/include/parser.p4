// Ingress parser and deparser for TNA (docs/pipeline.md §1 and §8).
//
// Same states, checks and reasons as the v1model parser. The differences are
// Tofino's (docs/p4-targets.md): the intrinsic and port metadata come first,
// truncation shows up as ig_intr_md_from_prsr.parser_err (PARTIAL_HDR) rather
// than error.PacketTooShort, and the L4 checksum is fixed by the checksum
// engines: the parser takes the old destination address and the old checksum
// out of a residual, the deparser adds the new address back.

#ifndef __GRAYGW_TNA_PARSER__
#define __GRAYGW_TNA_PARSER__

parser GrayIngressParser(packet_in packet,
                         out headers_t hdr,
                         out graygw_metadata_t meta,
                         out ingress_intrinsic_metadata_t ig_intr_md) {

    // ~HC + ~old_dst in ones' complement: RFC 1624 eqn. 3 without m'.
    Checksum() l4_csum;

    state start {
        packet.extract(ig_intr_md);
        // graygw never resubmits: no resubmit header to tell apart.
        packet.advance(PORT_METADATA_SIZE);
        // Metadata that ingress reads before it may be written. A field
        // written in several states of one path is OR-ed on Tofino, so only
        // fields written once after this zero come from the parser: the VNI
        // (a lookup key in stage 0) and the checksum flags (facts of the
        // parse). The other flow fields are ingress's flow_init.
        meta.parse_reason = DROP_NONE;
        meta.vip_hit = false;
        meta.flow_v6 = false;
        meta.vlan_refused = false;
        meta.split.below = 0;
        meta.bucket = 0;
        meta.upd_ipv4_csum = false;
        meta.upd_tcp_csum = false;
        meta.upd_udp_csum = false;
        meta.upd_tcp6_csum = false;
        meta.upd_udp6_csum = false;
        meta.upd_icmp6_csum = false;
        // What a backend entry of each family makes of the frame: set to
        // BACKEND_FAMILY by the outer header of the other family.
        meta.reason_to_v4 = DROP_NONE;
        meta.reason_to_v6 = DROP_NONE;
        meta.flow.vni = 0;
        meta.hash_key.vni = 0;
        meta.mirror_active = false;
        meta.is_copy = false;
        // A mirror copy comes back only through the recirculation port
        // (mirror.p4): a frame from the wire is never taken for one.
        transition select(ig_intr_md.ingress_port) {
            RECIRC_PORT &&& PIPE_LOCAL_PORT_MASK: parse_copy;
            default: parse_ethernet;
        }
    }

    // A mirror copy's third pass (mirror.p4): the frame as received, marked,
    // with the mirror pool in the low 16 bits of the destination MAC. It
    // counts as a VIP hit with that pool: ingress skips vip and gray_rules.
    state parse_copy {
        packet.extract(hdr.ethernet);
        meta.is_copy = true;
        meta.vip_hit = true;
        meta.pool_id = hdr.ethernet.dst_addr[15:0];
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_VLAN: parse_copy_vlan;
            default: not_ipv4;
        }
    }

    // A copy keeps the received tag, which was accepted on its first pass:
    // not refused again (the recirculation port accepts no VID), and its
    // PCP goes out with the copy's own port's VID (GrayEgress).
    state parse_copy_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: not_ipv4;
        }
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            ETHERTYPE_VLAN: parse_vlan;
            default: not_ipv4;  // ARP, QinQ...
        }
    }

    // One 802.1Q tag: refused until vlan_accept accepts its VID.
    state parse_vlan {
        packet.extract(hdr.vlan);
        meta.vlan_refused = true;
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: not_ipv4;  // a second tag, ARP...
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        // Used only for plain TCP/UDP, taken here while the address is in the
        // parser's window.
        l4_csum.subtract({hdr.ipv4.dst_addr});
        // Recomputed from scratch for every packet that leaves.
        meta.upd_ipv4_csum = true;
        // What a mirror copy needs once to_backend has changed them.
        meta.rx_dst = hdr.ipv4.dst_addr;
        meta.rx_ttl = hdr.ipv4.ttl;
        meta.reason_to_v6 = DROP_BACKEND_FAMILY;
        // From here on the outer destination is known: ingress applies vip
        // before acting on any reason below. Checks in the contract's order.
        transition select(hdr.ipv4.version, hdr.ipv4.ihl) {
            (4w4, 4w5): check_ipv4_fragment;
            default: ipv4_malformed;  // not IPv4, or options
        }
    }

    state check_ipv4_fragment {
        transition select(hdr.ipv4.flags, hdr.ipv4.frag_offset) {
            (3w0 &&& IPV4_FLAG_MF, 13w0): parse_ipv4_payload;
            default: ipv4_fragment;
        }
    }

    state parse_ipv4_payload {
        transition select(hdr.ipv4.protocol) {
            PROTO_TCP: parse_tcp;
            PROTO_UDP: parse_udp;
            default: accept;  // plain traffic with ports 0
        }
    }

    // Outer IPv6 (docs/pipeline.md §1): vip_v6 before any reason below, as
    // for IPv4. Every L4 checksum covers the destination: the residual form,
    // as for IPv4, with the deparser's own engines (upd_*6_csum).
    state parse_ipv6 {
        packet.extract(hdr.ipv6);
        l4_csum.subtract({hdr.ipv6.dst_addr});
        // The hop limit, for the TTL_EXPIRED test (an IPv6 frame is never
        // mirrored: rx_dst stays unused).
        meta.rx_ttl = hdr.ipv6.hop_limit;
        meta.reason_to_v4 = DROP_BACKEND_FAMILY;
        transition select(hdr.ipv6.version) {
            4w6: parse_ipv6_payload;
            default: ipv6_malformed;
        }
    }

    state parse_ipv6_payload {
        transition select(hdr.ipv6.next_hdr) {
            IPV6_HOP_BY_HOP: ipv6_extension;
            IPV6_ROUTING: ipv6_extension;
            IPV6_FRAGMENT: ipv6_extension;
            IPV6_AH: ipv6_extension;
            IPV6_DEST_OPTS: ipv6_extension;
            PROTO_TCP: parse_tcp6;
            PROTO_UDP: parse_udp6;
            PROTO_ICMP6: parse_icmp6;
            default: accept;  // plain traffic with ports 0
        }
    }

    state parse_tcp6 {
        packet.extract(hdr.tcp);
        l4_csum.subtract({hdr.tcp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        meta.upd_tcp6_csum = true;
        transition accept;
    }

    // Over IPv6, VXLAN's UDP checksum is updated like plain UDP's; a zero
    // stays zero (RFC 6935).
    state parse_udp6 {
        packet.extract(hdr.udp);
        l4_csum.subtract({hdr.udp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        transition select(hdr.udp.checksum) {
            0: check_udp6_port;
            default: udp6_checksum;
        }
    }

    state udp6_checksum {
        meta.upd_udp6_csum = true;
        transition check_udp6_port;
    }

    state check_udp6_port {
        transition select(hdr.udp.dport) {
            VXLAN_UDP_PORT: parse_vxlan;
            default: accept;
        }
    }

    state parse_icmp6 {
        packet.extract(hdr.icmp6);
        l4_csum.subtract({hdr.icmp6.checksum});
        meta.l4_csum_residual = l4_csum.get();
        meta.upd_icmp6_csum = true;
        transition accept;
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        l4_csum.subtract({hdr.tcp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        meta.upd_tcp_csum = true;
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        // Unused for VXLAN (its checksum is zeroed) and for a zero checksum.
        l4_csum.subtract({hdr.udp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        transition select(hdr.udp.dport, hdr.udp.checksum) {
            (VXLAN_UDP_PORT, _): parse_vxlan;
            (_, 0): accept;       // no checksum: it stays 0
            default: plain_udp_checksum;
        }
    }

    state plain_udp_checksum {
        meta.upd_udp_csum = true;
        transition accept;
    }

    state parse_vxlan {
        packet.extract(hdr.vxlan);
        meta.flow.vni = hdr.vxlan.vni;
        meta.hash_key.vni = hdr.vxlan.vni;
        transition select(hdr.vxlan.flags) {
            VXLAN_FLAG_I &&& VXLAN_FLAG_I: parse_inner_ethernet;
            default: vxlan_bad_flags;
        }
    }

    state parse_inner_ethernet {
        packet.extract(hdr.inner_ethernet);
        transition select(hdr.inner_ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_inner_ipv4;
            ETHERTYPE_IPV6: parse_inner_ipv6;
            default: inner_not_ipv4;
        }
    }

    state parse_inner_ipv4 {
        packet.extract(hdr.inner_ipv4);
        transition select(hdr.inner_ipv4.version, hdr.inner_ipv4.ihl) {
            (4w4, 4w5): check_inner_l4;
            default: inner_ipv4_malformed;
        }
    }

    // Inner ports only for TCP and UDP that are not fragments.
    state check_inner_l4 {
        transition select(hdr.inner_ipv4.flags, hdr.inner_ipv4.frag_offset,
                          hdr.inner_ipv4.protocol) {
            (3w0 &&& IPV4_FLAG_MF, 13w0, PROTO_TCP): parse_inner_l4;
            (3w0 &&& IPV4_FLAG_MF, 13w0, PROTO_UDP): parse_inner_l4;
            default: accept;
        }
    }

    state parse_inner_ipv6 {
        packet.extract(hdr.inner_ipv6);
        transition select(hdr.inner_ipv6.version) {
            4w6: check_inner6_l4;
            default: inner_ipv6_malformed;
        }
    }

    // As v1model: ports for TCP and UDP, the fragment header for its
    // protocol, the other extension headers refused.
    state check_inner6_l4 {
        transition select(hdr.inner_ipv6.next_hdr) {
            PROTO_TCP: parse_inner_l4;
            PROTO_UDP: parse_inner_l4;
            IPV6_FRAGMENT: parse_inner_frag;
            IPV6_HOP_BY_HOP: inner_ipv6_extension;
            IPV6_ROUTING: inner_ipv6_extension;
            IPV6_AH: inner_ipv6_extension;
            IPV6_DEST_OPTS: inner_ipv6_extension;
            default: accept;
        }
    }

    state parse_inner_frag {
        packet.extract(hdr.inner_frag);
        transition accept;
    }

    state parse_inner_l4 {
        packet.extract(hdr.inner_l4);
        transition accept;
    }

    // A failed check: remember it and stop.
    state not_ipv4 {
        meta.parse_reason = DROP_NOT_IPV4;
        transition accept;
    }

    state ipv4_malformed {
        meta.parse_reason = DROP_IPV4_MALFORMED;
        transition accept;
    }

    state ipv4_fragment {
        meta.parse_reason = DROP_IPV4_FRAGMENT;
        transition accept;
    }

    state ipv6_malformed {
        meta.parse_reason = DROP_IPV6_MALFORMED;
        transition accept;
    }

    state ipv6_extension {
        meta.parse_reason = DROP_IPV6_EXTENSION;
        transition accept;
    }

    state vxlan_bad_flags {
        meta.parse_reason = DROP_VXLAN_BAD_FLAGS;
        transition accept;
    }

    state inner_not_ipv4 {
        meta.parse_reason = DROP_INNER_NOT_IPV4;
        transition accept;
    }

    state inner_ipv4_malformed {
        meta.parse_reason = DROP_INNER_IPV4_MALFORMED;
        transition accept;
    }

    state inner_ipv6_malformed {
        meta.parse_reason = DROP_INNER_IPV6_MALFORMED;
        transition accept;
    }

    state inner_ipv6_extension {
        meta.parse_reason = DROP_INNER_IPV6_EXTENSION;
        transition accept;
    }
}

// The checksums are written here, where Tofino's checksum engines are. The
// flags are the parser's: whether a header is there to fix is known then, and a
// dropped packet's checksums do not matter. Parse-time flags keep these
// conditions off the end of the stage chain.
control GrayIngressDeparser(packet_out packet,
                            inout headers_t hdr,
                            in graygw_metadata_t meta,
                            in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {

    Checksum() ipv4_csum;
    Checksum() tcp_csum;
    Checksum() udp_csum;
    Checksum() tcp6_csum;
    Checksum() udp6_csum;
    Checksum() icmp6_csum;
    // Mirror(): the typed constructor is "Inconsistent mirror selectors" in
    // bf-p4c 9.13 (Intel's own tna_mirror uses this form).
    Mirror() mirror;

    apply {
        // §10: the frame as emitted below, behind what egress needs to
        // rebuild the received one (mirror.p4).
        if (ig_dprsr_md.mirror_type == MIRROR_TYPE_COPY) {
            mirror.emit<mirror_h>((MirrorId_t)meta.mirror_session, {
                meta.mirror_kind, meta.mirror_pool, meta.rx_dst, meta.rx_ttl });
        }
        // From scratch over the 20 bytes: a bad received checksum leaves
        // corrected.
        if (meta.upd_ipv4_csum) {
            hdr.ipv4.hdr_checksum = ipv4_csum.update({
                hdr.ipv4.version,
                hdr.ipv4.ihl,
                hdr.ipv4.dscp,
                hdr.ipv4.ecn,
                hdr.ipv4.total_len,
                hdr.ipv4.identification,
                hdr.ipv4.flags,
                hdr.ipv4.frag_offset,
                hdr.ipv4.ttl,
                hdr.ipv4.protocol,
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr
            });
        }
        // ~(residual + new dst) = ~(~HC + ~m + m'): RFC 1624 eqn. 3.
        if (meta.upd_tcp_csum) {
            hdr.tcp.checksum = tcp_csum.update({
                hdr.ipv4.dst_addr,
                meta.l4_csum_residual
            });
        }
        // UDP: a computed 0 is sent as 0xFFFF (0 would mean "no checksum").
        if (meta.upd_udp_csum) {
            hdr.udp.checksum = udp_csum.update(
                data = {
                    hdr.ipv4.dst_addr,
                    meta.l4_csum_residual
                },
                zeros_as_ones = true);
        }
        // IPv6: the same over the 128-bit destination (no header checksum).
        if (meta.upd_tcp6_csum) {
            hdr.tcp.checksum = tcp6_csum.update({
                hdr.ipv6.dst_addr,
                meta.l4_csum_residual
            });
        }
        if (meta.upd_udp6_csum) {
            hdr.udp.checksum = udp6_csum.update(
                data = {
                    hdr.ipv6.dst_addr,
                    meta.l4_csum_residual
                },
                zeros_as_ones = true);
        }
        if (meta.upd_icmp6_csum) {
            hdr.icmp6.checksum = icmp6_csum.update({
                hdr.ipv6.dst_addr,
                meta.l4_csum_residual
            });
        }
        packet.emit(hdr);
    }
}

#endif // __GRAYGW_TNA_PARSER__
