// Controls shared by the v1model and the TNA ingress. Core P4 only.

#ifndef __GRAYGW_FLOW__
#define __GRAYGW_FLOW__

// Fills the flow fields from the parsed headers (docs/pipeline.md §1, "The flow
// fields"). Reads headers only. Its result matters only after a parse without
// any reason (on the overlay path an inner IPv4 or IPv6 header is then valid).
// v1model only: TNA has the same as a table of constant entries (flow_init).
control FlowInit(in headers_t hdr, out flow_key_t flow, out bool flow_v6,
                 out flow_addr6_t flow6) {
    apply {
        // vni_tenant fills it; a miss means tenant 0.
        flow.tenant = 0;
        // An IPv4 flow's 128-bit addresses, and an IPv6 flow's 32-bit ones,
        // are 0.
        flow.src = 0;
        flow.dst = 0;
        flow6.src = 0;
        flow6.dst = 0;
        flow_v6 = false;
        if (hdr.vxlan.isValid()) {
            flow.vni = hdr.vxlan.vni;
            if (hdr.inner_ipv6.isValid()) {
                flow_v6 = true;
                flow6.src = hdr.inner_ipv6.src_addr;
                flow6.dst = hdr.inner_ipv6.dst_addr;
                // A fragment's protocol is its fragment header's.
                if (hdr.inner_frag.isValid()) {
                    flow.proto = hdr.inner_frag.next_hdr;
                } else {
                    flow.proto = hdr.inner_ipv6.next_hdr;
                }
            } else {
                flow.src   = hdr.inner_ipv4.src_addr;
                flow.dst   = hdr.inner_ipv4.dst_addr;
                flow.proto = hdr.inner_ipv4.protocol;
            }
            // Inner ICMP, inner fragments and other protocols: ports 0.
            if (hdr.inner_l4.isValid()) {
                flow.sport = hdr.inner_l4.sport;
                flow.dport = hdr.inner_l4.dport;
            } else {
                flow.sport = 0;
                flow.dport = 0;
            }
        } else {
            flow.vni = 0;
            if (hdr.ipv6.isValid()) {
                flow_v6 = true;
                flow6.src  = hdr.ipv6.src_addr;
                flow6.dst  = hdr.ipv6.dst_addr;
                flow.proto = hdr.ipv6.next_hdr;
            } else {
                flow.src   = hdr.ipv4.src_addr;
                flow.dst   = hdr.ipv4.dst_addr;
                flow.proto = hdr.ipv4.protocol;
            }
            if (hdr.tcp.isValid()) {
                flow.sport = hdr.tcp.sport;
                flow.dport = hdr.tcp.dport;
            } else if (hdr.udp.isValid()) {
                flow.sport = hdr.udp.sport;
                flow.dport = hdr.udp.dport;
            } else {
                flow.sport = 0;
                flow.dport = 0;
            }
        }
    }
}

// The outer IP header cut after an Ethernet header (or tag) of this ethertype.
drop_reason_t outer_ip_truncated(in bit<16> ether_type) {
    if (ether_type == ETHERTYPE_IPV6) {
        return DROP_IPV6_TRUNCATED;
    }
    return DROP_IPV4_TRUNCATED;
}

// The reason of a parse cut short by the end of the frame (v1model:
// error.PacketTooShort; TNA: PARSER_ERROR_PARTIAL_HDR): the header the parser
// was extracting is the first one left invalid, and each extract is the only
// one that can follow the last valid header listed here. TCP ends the parse,
// so a valid TCP header never comes with this error. After the Ethernet
// header the cut one is the 802.1Q tag (part of the Ethernet header for the
// contract: ETH_TRUNCATED) when the ethertype says so, else the outer IPv4
// or IPv6 header.
control TruncatedReason(in headers_t hdr, out drop_reason_t reason) {
    apply {
        if (hdr.vxlan.isValid()) {
            reason = DROP_INNER_TRUNCATED;   // inner Ethernet, IP, fragment or ports
        } else if (hdr.udp.isValid()) {
            reason = DROP_VXLAN_TRUNCATED;   // UDP to 4789, VXLAN cut
        } else if (hdr.ipv4.isValid() || hdr.ipv6.isValid()) {
            reason = DROP_L4_TRUNCATED;      // outer TCP, UDP or ICMPv6 cut
        } else if (hdr.vlan.isValid()) {
            reason = outer_ip_truncated(hdr.vlan.ether_type);
        } else if (hdr.ethernet.isValid() && hdr.ethernet.ether_type != ETHERTYPE_VLAN) {
            reason = outer_ip_truncated(hdr.ethernet.ether_type);
        } else {
            reason = DROP_ETH_TRUNCATED;
        }
    }
}

#endif // __GRAYGW_FLOW__
