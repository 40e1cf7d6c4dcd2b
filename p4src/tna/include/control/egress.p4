// Egress for TNA. Two kinds of packets pass here:
//
// * Served frames (and a mirror copy's final pass): they get their egress
//   port's 802.1Q tag (port_vlan, docs/pipeline.md §8). Egress parses only
//   the Ethernet header and a tag; the rest passes as payload. In ingress the
//   table would need a stage after backend's, and Tofino 1's ingress has none
//   left ("Tofino fit").
// * Mirror copies on their way to the recirculation port (docs/pipeline.md
//   §10, mirror.p4), behind a mirror_h: each leaves rebuilt as it was
//   received, so that its next ingress pass hashes and rewrites it as a
//   served frame of the mirror pool: received outer destination and TTL
//   back, the L4 checksum corrected to match (the same residual form as the
//   ingress parser and deparser), the marker DSCP, the mirror pool in the
//   destination MAC. The MACs are the served backend's until then; the copy's
//   to_backend writes both. A received tag stays as it was; the copy's final
//   pass through here gives it its own port's VID.

#ifndef __GRAYGW_TNA_EGRESS__
#define __GRAYGW_TNA_EGRESS__

struct egress_headers_t {
    mirror_h   mirror;
    ethernet_t ethernet;
    vlan_t     vlan;
    ipv4_t     ipv4;
    tcp_t      tcp;
    udp_t      udp;
}

struct egress_metadata_t {
    bit<16> l4_csum_residual;
    bool    upd_tcp_csum;
    bool    upd_udp_csum;
    bool    tagged; // set_port_vlan ran: the port sends vid
    vid_t   vid;
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
        meta.tagged = false;
        meta.vid = 0;
        // A served frame starts with its destination MAC, unicast, so never
        // with MIRROR_KIND_COPY (its multicast bit is set).
        transition select(packet.lookahead<bit<8>>()) {
            MIRROR_KIND_COPY: parse_mirror;
            default: parse_served;
        }
    }

    state parse_served {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_served_vlan;
            default: accept;
        }
    }

    state parse_served_vlan {
        packet.extract(hdr.vlan);
        transition accept;
    }

    // The served frame: IPv4 without options and not a fragment, or it would
    // not have been served; tagged as it was received.
    state parse_mirror {
        packet.extract(hdr.mirror);
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_mirror_vlan;
            default: parse_mirror_ipv4;
        }
    }

    state parse_mirror_vlan {
        packet.extract(hdr.vlan);
        transition parse_mirror_ipv4;
    }

    state parse_mirror_ipv4 {
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

    /*
     * Port VLAN table (802.1Q, step 8): the VID frames leaving a port are
     * tagged with (PCP and DEI kept from a received tag, 0 on a pushed one).
     * A miss: the port sends untagged, a received tag is removed.
     */
    @id(0x0100000a)
    action set_port_vlan(vid_t vid) {
        meta.tagged = true;
        meta.vid = vid;
    }

    @id(0x02000008)
    table port_vlan {
        key = {
            eg_intr_md.egress_port : exact @name("egress_port");
        }
        actions = {
            set_port_vlan;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = PORT_VLAN_TABLE_SIZE;
    }

    apply {
        if (hdr.mirror.isValid()) {
            hdr.ethernet.dst_addr = (mac_addr_t)hdr.mirror.pool;
            hdr.ipv4.dst_addr = hdr.mirror.rx_dst;
            hdr.ipv4.ttl = hdr.mirror.rx_ttl;
            hdr.ipv4.dscp = MIRROR_DSCP;
        } else {
            port_vlan.apply();
            if (meta.tagged) {
                if (!hdr.vlan.isValid()) {
                    hdr.vlan.setValid();
                    hdr.vlan.pcp = 0;
                    hdr.vlan.dei = 0;
                    hdr.vlan.ether_type = hdr.ethernet.ether_type;
                    hdr.ethernet.ether_type = ETHERTYPE_VLAN;
                }
                hdr.vlan.vid = meta.vid;
            } else if (hdr.vlan.isValid()) {
                hdr.ethernet.ether_type = hdr.vlan.ether_type;
                hdr.vlan.setInvalid();
            }
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
        packet.emit(hdr.vlan);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
    }
}

#endif // __GRAYGW_TNA_EGRESS__
