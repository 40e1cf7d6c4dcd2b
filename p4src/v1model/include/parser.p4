// Parser (docs/pipeline.md §1). It never rejects: every problem ends in accept
// with a reason, and ingress decides (the VIP-first rule needs the outer
// destination even of a broken packet).
//
// Truncation: BMv2 stops at an extract that would read past the end of the
// frame, leaves that header invalid, sets standard_metadata.parser_error to
// PacketTooShort and still runs ingress, which names the cut header from the
// headers left valid (TruncatedReason, shared/flow.p4).

#ifndef __GRAYGW_V1MODEL_PARSER__
#define __GRAYGW_V1MODEL_PARSER__

parser GrayParser(packet_in packet,
                  out headers_t hdr,
                  inout graygw_metadata_t meta,
                  inout standard_metadata_t standard_md) {

    state start {
        meta.parse_reason = DROP_NONE;
        meta.split.active = false;
        transition parse_ethernet;
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

    // One 802.1Q tag; ingress checks its VID against vlan_accept.
    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: not_ipv4;  // a second tag, ARP...
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
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

    // Outer IPv6: as IPv4, ingress applies vip_v6 before acting on any reason
    // below. Extension headers (fragments too) are not supported.
    state parse_ipv6 {
        packet.extract(hdr.ipv6);
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
            PROTO_TCP: parse_tcp;
            PROTO_UDP: parse_udp;
            PROTO_ICMP6: parse_icmp6;
            default: accept;  // plain traffic with ports 0
        }
    }

    state parse_icmp6 {
        packet.extract(hdr.icmp6);
        transition accept;
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        transition select(hdr.udp.dport) {
            VXLAN_UDP_PORT: parse_vxlan;
            default: accept;
        }
    }

    state parse_vxlan {
        packet.extract(hdr.vxlan);
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

    // Inner ports only for TCP and UDP that are not fragments; anything else
    // (ICMP, fragments, other protocols) is a complete flow with ports 0.
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

    // Ports for TCP and UDP; the fragment header is read for its protocol
    // (ports 0); the other extension headers are refused, so that a port
    // rule never silently misses a packet whose ports were not found.
    state check_inner6_l4 {
        transition select(hdr.inner_ipv6.next_hdr) {
            PROTO_TCP: parse_inner_l4;
            PROTO_UDP: parse_inner_l4;
            IPV6_FRAGMENT: parse_inner_frag;
            IPV6_HOP_BY_HOP: inner_ipv6_extension;
            IPV6_ROUTING: inner_ipv6_extension;
            IPV6_AH: inner_ipv6_extension;
            IPV6_DEST_OPTS: inner_ipv6_extension;
            default: accept;  // ICMPv6, ESP, no next header...: ports 0
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

    // A failed check: remember it and stop. No header after it is read.
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

#endif // __GRAYGW_V1MODEL_PARSER__
