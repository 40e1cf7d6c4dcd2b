// Egress: nothing to do. Everything, the rewrite included, happens in ingress,
// as on Tofino where egress is bypassed.

#ifndef __GRAYGW_V1MODEL_EGRESS__
#define __GRAYGW_V1MODEL_EGRESS__

control GrayEgress(inout headers_t hdr,
                   inout graygw_metadata_t meta,
                   inout standard_metadata_t standard_md) {
    apply { }
}

#endif // __GRAYGW_V1MODEL_EGRESS__
