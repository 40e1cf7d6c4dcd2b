// Egress: the served frame gets its egress port's 802.1Q tag (port_vlan,
// docs/pipeline.md §8); everything else, the rewrite included, happens in
// ingress. A mirror copy (an ingress clone, docs/pipeline.md §10) goes back to
// ingress, keeping its FL_MIRROR fields, to be sent to the mirror pool by the
// same tables, and gets its own port's tag on its way out.

#ifndef __GRAYGW_V1MODEL_EGRESS__
#define __GRAYGW_V1MODEL_EGRESS__

control GrayEgress(inout headers_t hdr,
                   inout graygw_metadata_t meta,
                   inout standard_metadata_t standard_md) {

    bool  tagged = false;
    vid_t out_vid = 0;

    /*
     * Port VLAN table (802.1Q, step 8).
     *
     * The VID the frames leaving a port are tagged with: a received tag has
     * its VID rewritten (PCP and DEI kept), an untagged frame gets a tag (PCP
     * and DEI 0). A miss: the port sends untagged, a received tag is removed.
     */
    @id(0x0100000a)
    action set_port_vlan(vid_t vid) {
        tagged = true;
        out_vid = vid;
    }

    @id(0x02000008)
    table port_vlan {
        key = {
            standard_md.egress_port : exact @name("egress_port");
        }
        actions = {
            set_port_vlan;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = PORT_VLAN_TABLE_SIZE;
    }

    apply {
        if (standard_md.instance_type == PKT_INSTANCE_TYPE_INGRESS_CLONE) {
            recirculate_preserving_field_list(FL_MIRROR);
        } else {
            port_vlan.apply();
            if (tagged) {
                if (!hdr.vlan.isValid()) {
                    hdr.vlan.setValid();
                    hdr.vlan.pcp = 0;
                    hdr.vlan.dei = 0;
                    hdr.vlan.ether_type = hdr.ethernet.ether_type;
                    hdr.ethernet.ether_type = ETHERTYPE_VLAN;
                }
                hdr.vlan.vid = out_vid;
            } else if (hdr.vlan.isValid()) {
                hdr.ethernet.ether_type = hdr.vlan.ether_type;
                hdr.vlan.setInvalid();
            }
        }
    }
}

#endif // __GRAYGW_V1MODEL_EGRESS__
