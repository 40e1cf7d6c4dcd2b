// Controls shared by the v1model and the TNA ingress. Core P4 only.

#ifndef __GRAYGW_FLOW__
#define __GRAYGW_FLOW__

// Fills the flow fields from the parsed headers (docs/pipeline.md §1, "The flow
// fields"). Reads headers only. Its result matters only after a parse without
// any reason (on the overlay path the inner IPv4 header is then valid); TNA
// applies it to every packet so that it does not wait for the vip lookup.
control FlowInit(in headers_t hdr, out flow_key_t flow) {
    apply {
        // vni_tenant fills it; a miss means tenant 0.
        flow.tenant = 0;
        if (hdr.vxlan.isValid()) {
            flow.vni   = hdr.vxlan.vni;
            flow.src   = hdr.inner_ipv4.src_addr;
            flow.dst   = hdr.inner_ipv4.dst_addr;
            flow.proto = hdr.inner_ipv4.protocol;
            // Inner ICMP, inner fragments and other protocols: ports 0.
            if (hdr.inner_l4.isValid()) {
                flow.sport = hdr.inner_l4.sport;
                flow.dport = hdr.inner_l4.dport;
            } else {
                flow.sport = 0;
                flow.dport = 0;
            }
        } else {
            flow.vni   = 0;
            flow.src   = hdr.ipv4.src_addr;
            flow.dst   = hdr.ipv4.dst_addr;
            flow.proto = hdr.ipv4.protocol;
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

// The reason of a parse cut short by the end of the frame (v1model:
// error.PacketTooShort; TNA: PARSER_ERROR_PARTIAL_HDR): the header the parser
// was extracting is the first one left invalid, and each extract is the only
// one that can follow the last valid header listed here. TCP ends the parse,
// so a valid TCP header never comes with this error. After the Ethernet
// header the cut one is the 802.1Q tag (part of the Ethernet header for the
// contract: ETH_TRUNCATED) when the ethertype says so, else IPv4.
control TruncatedReason(in headers_t hdr, out drop_reason_t reason) {
    apply {
        if (hdr.vxlan.isValid()) {
            reason = DROP_INNER_TRUNCATED;   // inner Ethernet, IPv4 or ports
        } else if (hdr.udp.isValid()) {
            reason = DROP_VXLAN_TRUNCATED;   // UDP to 4789, VXLAN cut
        } else if (hdr.ipv4.isValid()) {
            reason = DROP_L4_TRUNCATED;      // outer TCP or UDP cut
        } else if (hdr.vlan.isValid()) {
            reason = DROP_IPV4_TRUNCATED;
        } else if (hdr.ethernet.isValid() && hdr.ethernet.ether_type != ETHERTYPE_VLAN) {
            reason = DROP_IPV4_TRUNCATED;
        } else {
            reason = DROP_ETH_TRUNCATED;
        }
    }
}

#endif // __GRAYGW_FLOW__
