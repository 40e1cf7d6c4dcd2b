// Egress for TNA: bypassed (GrayIngress sets bypass_egress), as all of the
// pipeline runs in ingress. Tofino still needs the three blocks; they only
// extract the mandatory egress intrinsic metadata.

#ifndef __GRAYGW_TNA_EGRESS__
#define __GRAYGW_TNA_EGRESS__

struct egress_headers_t { }
struct egress_metadata_t { }

parser GrayEgressParser(packet_in packet,
                        out egress_headers_t hdr,
                        out egress_metadata_t meta,
                        out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        packet.extract(eg_intr_md);
        transition accept;
    }
}

control GrayEgress(inout egress_headers_t hdr,
                   inout egress_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                   inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    apply { }
}

control GrayEgressDeparser(packet_out packet,
                           inout egress_headers_t hdr,
                           in egress_metadata_t meta,
                           in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    apply {
        packet.emit(hdr);
    }
}

#endif // __GRAYGW_TNA_EGRESS__
