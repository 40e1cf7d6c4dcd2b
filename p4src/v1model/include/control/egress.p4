// Egress: the served frame passes untouched (everything, the rewrite included,
// happens in ingress, as on Tofino where egress is bypassed). A mirror copy
// (an ingress clone, docs/pipeline.md §10) goes back to ingress, keeping its
// FL_MIRROR fields, to be sent to the mirror pool by the same tables.

#ifndef __GRAYGW_V1MODEL_EGRESS__
#define __GRAYGW_V1MODEL_EGRESS__

control GrayEgress(inout headers_t hdr,
                   inout graygw_metadata_t meta,
                   inout standard_metadata_t standard_md) {
    apply {
        if (standard_md.instance_type == PKT_INSTANCE_TYPE_INGRESS_CLONE) {
            recirculate_preserving_field_list(FL_MIRROR);
        }
    }
}

#endif // __GRAYGW_V1MODEL_EGRESS__
