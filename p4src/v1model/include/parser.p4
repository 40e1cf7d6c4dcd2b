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
            ETHERTYPE_VLAN: parse_vlan;
            default: not_ipv4;  // ARP, IPv6, QinQ...
        }
    }

    // One 802.1Q tag; ingress checks its VID against vlan_accept.
    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: not_ipv4;  // a second tag, ARP, IPv6...
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
            default: inner_not_ipv4;  // inner IPv6 is planned
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
}

#endif // __GRAYGW_V1MODEL_PARSER__
