// Fills the flow fields from the parsed headers (docs/pipeline.md §1, "The flow
// fields"). Core P4 only, so both architectures apply the same control. Applied
// only after a parse without any reason: on the overlay path the inner IPv4
// header is then valid.

#ifndef __GRAYGW_FLOW__
#define __GRAYGW_FLOW__

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

#endif // __GRAYGW_FLOW__
