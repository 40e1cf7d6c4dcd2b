// Checksum controls (docs/pipeline.md §1 and §8).

#ifndef __GRAYGW_V1MODEL_CHECKSUM__
#define __GRAYGW_V1MODEL_CHECKSUM__

// Received IPv4 checksums are not verified: the NIC does it, and the outer one
// is recomputed from scratch on the way out anyway.
control GrayVerifyChecksum(inout headers_t hdr, inout graygw_metadata_t meta) {
    apply { }
}

// The outer IPv4 header checksum over its 20 bytes, from scratch, so a bad
// received checksum leaves corrected (for dropped packets it does not matter).
// The outer L4 checksum is updated incrementally in GrayIngress
// (csum16_replace32), not here: update_checksum_with_payload would recompute
// it over the payload, hiding a corrupt segment and summing any Ethernet
// padding as if it were payload.
control GrayComputeChecksum(inout headers_t hdr, inout graygw_metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            {
                hdr.ipv4.version,
                hdr.ipv4.ihl,
                hdr.ipv4.dscp,
                hdr.ipv4.ecn,
                hdr.ipv4.total_len,
                hdr.ipv4.identification,
                hdr.ipv4.flags,
                hdr.ipv4.frag_offset,
                hdr.ipv4.ttl,
                hdr.ipv4.protocol,
                hdr.ipv4.src_addr,
                hdr.ipv4.dst_addr
            },
            hdr.ipv4.hdr_checksum,
            HashAlgorithm.csum16
        );
    }
}

#endif // __GRAYGW_V1MODEL_CHECKSUM__
