// Egress for TNA: only mirror copies pass here (docs/pipeline.md §10,
// mirror.p4); served frames bypass it (GrayIngress sets bypass_egress). A copy
// leaves for the recirculation port rebuilt as it was received, so that its
// next ingress pass hashes and rewrites it as a served frame of the mirror
// pool: received outer destination and TTL back, the L4 checksum corrected to
// match (the same residual form as the ingress parser and deparser), the
// marker DSCP, the mirror pool in the destination MAC. The MACs are the
// served backend's until then; the copy's to_backend writes both.

#ifndef __GRAYGW_TNA_EGRESS__
#define __GRAYGW_TNA_EGRESS__

struct egress_headers_t {
    mirror_h   mirror;
    ethernet_t ethernet;
    ipv4_t     ipv4;
    tcp_t      tcp;
    udp_t      udp;
}

struct egress_metadata_t {
    bit<16> l4_csum_residual;
    bool    upd_tcp_csum;
    bool    upd_udp_csum;
}

parser GrayEgressParser(packet_in packet,
                        out egress_headers_t hdr,
                        out egress_metadata_t meta,
                        out egress_intrinsic_metadata_t eg_intr_md) {

    // ~HC + ~served dst, as in GrayIngressParser.
    Checksum() l4_csum;

    state start {
        packet.extract(eg_intr_md);
        meta.upd_tcp_csum = false;
        meta.upd_udp_csum = false;
        transition select(packet.lookahead<bit<8>>()) {
            MIRROR_KIND_COPY: parse_mirror;
            default: accept;  // not a copy: dropped by GrayEgress
        }
    }

    // The served frame: IPv4 without options and not a fragment, or it would
    // not have been served.
    state parse_mirror {
        packet.extract(hdr.mirror);
        packet.extract(hdr.ethernet);
        packet.extract(hdr.ipv4);
        l4_csum.subtract({hdr.ipv4.dst_addr});
        transition select(hdr.ipv4.protocol) {
            PROTO_TCP: parse_tcp;
            PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        l4_csum.subtract({hdr.tcp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        meta.upd_tcp_csum = true;
        transition accept;
    }

    // VXLAN's checksum was sent as 0, and a 0 stays 0: only plain UDP with a
    // checksum is corrected.
    state parse_udp {
        packet.extract(hdr.udp);
        l4_csum.subtract({hdr.udp.checksum});
        meta.l4_csum_residual = l4_csum.get();
        transition select(hdr.udp.dport, hdr.udp.checksum) {
            (VXLAN_UDP_PORT, _): accept;
            (_, 0): accept;
            default: plain_udp_checksum;
        }
    }

    state plain_udp_checksum {
        meta.upd_udp_csum = true;
        transition accept;
    }
}

control GrayEgress(inout egress_headers_t hdr,
                   inout egress_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                   inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    apply {
        if (hdr.mirror.isValid()) {
            hdr.ethernet.dst_addr = (mac_addr_t)hdr.mirror.pool;
            hdr.ipv4.dst_addr = hdr.mirror.rx_dst;
            hdr.ipv4.ttl = hdr.mirror.rx_ttl;
            hdr.ipv4.dscp = MIRROR_DSCP;
        } else {
            eg_dprsr_md.drop_ctl = 1;
        }
    }
}

control GrayEgressDeparser(packet_out packet,
                           inout egress_headers_t hdr,
                           in egress_metadata_t meta,
                           in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {

    Checksum() tcp_csum;
    Checksum() udp_csum;

    apply {
        // ~(residual + received dst): the checksum of the frame as received
        // (RFC 1624 eqn. 3). The IPv4 header checksum is the next ingress
        // deparser's, after the copy's own rewrite.
        if (meta.upd_tcp_csum) {
            hdr.tcp.checksum = tcp_csum.update({
                hdr.ipv4.dst_addr,
                meta.l4_csum_residual
            });
        }
        if (meta.upd_udp_csum) {
            hdr.udp.checksum = udp_csum.update(
                data = {
                    hdr.ipv4.dst_addr,
                    meta.l4_csum_residual
                },
                zeros_as_ones = true);
        }
        // mirror_h stays behind: the copy leaves as a plain frame.
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
    }
}

#endif // __GRAYGW_TNA_EGRESS__
