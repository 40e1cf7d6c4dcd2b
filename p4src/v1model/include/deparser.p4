// Deparser: the parsed headers back in wire order; emit skips invalid ones, and
// the unparsed rest of the frame follows unchanged, so the frame keeps its
// length.

#ifndef __GRAYGW_V1MODEL_DEPARSER__
#define __GRAYGW_V1MODEL_DEPARSER__

control GrayDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv6);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
        packet.emit(hdr.icmp6);
        packet.emit(hdr.vxlan);
        packet.emit(hdr.inner_ethernet);
        packet.emit(hdr.inner_ipv4);
        packet.emit(hdr.inner_ipv6);
        packet.emit(hdr.inner_frag);
        packet.emit(hdr.inner_l4);
    }
}

#endif // __GRAYGW_V1MODEL_DEPARSER__
