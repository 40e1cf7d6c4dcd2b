// GrayIngress: the whole pipeline (docs/pipeline.md §1-9). Every table, action
// and counter is declared directly in this control, so p4c names them
// GrayIngress.<name>, the names in p4src/graygw.p4info.txtpb; the @ids pin the
// ids of that file.

#ifndef __GRAYGW_V1MODEL_INGRESS__
#define __GRAYGW_V1MODEL_INGRESS__

// BMv2's standard_metadata.instance_type values: an ingress clone in egress,
// a recirculated packet in ingress (the mirror copy, docs/pipeline.md §10).
const bit<32> PKT_INSTANCE_TYPE_INGRESS_CLONE = 1;
const bit<32> PKT_INSTANCE_TYPE_RECIRC = 4;

control GrayIngress(inout headers_t hdr,
                    inout graygw_metadata_t meta,
                    inout standard_metadata_t standard_md) {

    FlowInit() flow_init;
    TruncatedReason() truncated_reason;

    // One cell per drop reason, counted for every packet not forwarded
    // (cell 0, DROP_NONE, never). Bytes are the frame as received.
    @id(0x12000001)
    counter<bit<32>>(NUM_DROP_REASONS, CounterType.packets_and_bytes) drop_reasons;

    // Mirror copies made, per mirror id, and sent, per backend (§10).
    @id(0x12000002)
    counter<bit<32>>(MIRROR_IDS, CounterType.packets_and_bytes) mirror_counter;
    @id(0x12000003)
    counter<bit<32>>(BACKEND_TABLE_SIZE, CounterType.packets_and_bytes) mirror_backend_counter;

    @id(0x13000001)
    direct_counter(CounterType.packets_and_bytes) vip_counter;
    @id(0x13000002)
    direct_counter(CounterType.packets_and_bytes) gray_rules_counter;
    @id(0x13000003)
    direct_counter(CounterType.packets_and_bytes) backend_counter;
    @id(0x13000004)
    direct_counter(CounterType.packets_and_bytes) vip_v6_counter;
    @id(0x13000005)
    direct_counter(CounterType.packets_and_bytes) gray_rules_v6_counter;

    /*
     * VIP table (step 2).
     *
     * The outer destination address of every packet whose 20-byte outer IPv4
     * header was read, whatever else is wrong with it: a miss means the packet
     * is not for us (NOT_VIP), and that wins over any later parse error. A hit
     * names the VIP and its default pool, the pool unless a gray rule says
     * otherwise.
     */
    @id(0x01000001)
    action set_vip(vip_id_t vip_id, pool_id_t default_pool) {
        meta.vip_id = vip_id;
        meta.pool_id = default_pool;
        vip_counter.count();
    }

    @id(0x02000001)
    table vip {
        key = {
            hdr.ipv4.dst_addr : exact @name("dst_addr");
        }
        actions = {
            set_vip;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = vip_counter;
        size = VIP_TABLE_SIZE;
    }

    /*
     * IPv6 VIP table (step 2): vip for a frame whose 40-byte outer IPv6
     * header was read. set_vip_v6 is set_vip counting in vip_v6's counter:
     * every IPv6 table has its own actions, on every target, because bf-p4c
     * binds an action that counts a direct counter to that counter's table
     * (docs/p4-targets.md, "IPv6").
     */
    @id(0x0100000c)
    action set_vip_v6(vip_id_t vip_id, pool_id_t default_pool) {
        meta.vip_id = vip_id;
        meta.pool_id = default_pool;
        vip_v6_counter.count();
    }

    @id(0x02000009)
    table vip_v6 {
        key = {
            hdr.ipv6.dst_addr : exact @name("dst_addr");
        }
        actions = {
            set_vip_v6;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = vip_v6_counter;
        size = VIP_V6_TABLE_SIZE;
    }

    /*
     * VNI to tenant table (step 3).
     *
     * Maps the flow's VNI (0 for plain traffic) to its tenant, a key of the
     * gray rules and of the hash. A miss leaves tenant 0.
     */
    @id(0x01000002)
    action set_tenant(tenant_id_t tenant_id) {
        meta.flow.tenant = tenant_id;
    }

    @id(0x02000002)
    table vni_tenant {
        key = {
            meta.flow.vni : exact @name("vni");
        }
        actions = {
            set_tenant;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = VNI_TENANT_TABLE_SIZE;
    }

    /*
     * Gray rules table (step 4).
     *
     * Selects the pool before hashing, from the VIP and the flow fields (inner
     * ones for overlay traffic). The matching entry with the highest P4Runtime
     * priority wins; the controller refuses overlapping rules of equal
     * priority. set_pool moves the selected flows whole; split_pool moves the
     * VMs (vni, src) whose split hash is below a threshold, so a VM is always
     * on one side. set_pool_mirror serves like set_pool and sends a copy of
     * the sampled VMs' frames to a mirror pool (§10). A miss keeps the VIP's
     * default pool.
     */
    @id(0x01000003)
    action set_pool(pool_id_t pool_id) {
        meta.pool_id = pool_id;
        gray_rules_counter.count();
    }

    @id(0x01000004)
    action split_pool(pool_id_t pool_gray, bit<16> threshold) {
        // Decided in apply: the split hash is needed only for these packets.
        meta.split.active = true;
        meta.split.pool_gray = pool_gray;
        meta.split.threshold = (bit<17>)threshold;
        gray_rules_counter.count();
    }

    @id(0x01000008)
    action set_pool_mirror(pool_id_t pool_id, pool_id_t mirror_pool,
                           bit<16> sample, mirror_id_t mirror_id) {
        meta.pool_id = pool_id;
        // Sampled in apply, with the split hash.
        meta.mirror_active = true;
        meta.mirror_pool = mirror_pool;
        meta.mirror_sample = (bit<17>)sample;
        meta.mirror_id = mirror_id;
        gray_rules_counter.count();
    }

    @id(0x02000003)
    table gray_rules {
        key = {
            meta.vip_id      : ternary @name("vip_id");
            meta.flow.vni    : ternary @name("vni");
            meta.flow.tenant : ternary @name("tenant_id");
            meta.flow.src    : ternary @name("inner_src");
            meta.flow.dst    : ternary @name("inner_dst");
            meta.flow.proto  : ternary @name("inner_proto");
            meta.flow.sport  : ternary @name("inner_sport");
            meta.flow.dport  : ternary @name("inner_dport");
        }
        actions = {
            set_pool;
            split_pool;
            set_pool_mirror;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = gray_rules_counter;
        size = GRAY_RULES_TABLE_SIZE;
    }

    /*
     * IPv6 gray rules table (step 4): gray_rules for an IPv6 flow, with
     * 128-bit addresses and the same field names; no mirror. set_pool_v6 and
     * split_pool_v6 are set_pool and split_pool counting in this table's
     * counter (as set_vip_v6).
     */
    @id(0x0100000d)
    action set_pool_v6(pool_id_t pool_id) {
        meta.pool_id = pool_id;
        gray_rules_v6_counter.count();
    }

    @id(0x0100000e)
    action split_pool_v6(pool_id_t pool_gray, bit<16> threshold) {
        meta.split.active = true;
        meta.split.pool_gray = pool_gray;
        meta.split.threshold = (bit<17>)threshold;
        gray_rules_v6_counter.count();
    }

    @id(0x0200000a)
    table gray_rules_v6 {
        key = {
            meta.vip_id      : ternary @name("vip_id");
            meta.flow.vni    : ternary @name("vni");
            meta.flow.tenant : ternary @name("tenant_id");
            meta.flow6.src   : ternary @name("inner_src");
            meta.flow6.dst   : ternary @name("inner_dst");
            meta.flow.proto  : ternary @name("inner_proto");
            meta.flow.sport  : ternary @name("inner_sport");
            meta.flow.dport  : ternary @name("inner_dport");
        }
        actions = {
            set_pool_v6;
            split_pool_v6;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = gray_rules_v6_counter;
        size = GRAY_RULES_V6_TABLE_SIZE;
    }

    /*
     * Pool hash mask table (step 5).
     *
     * Which flow fields feed the pool's hash: each field is ANDed with its
     * mask, straight into the hash key. A miss hashes every field (the key is
     * preset to the flow). An IPv6 flow's 128-bit addresses are kept whole or
     * left out by the 32-bit masks (apply).
     */
    @id(0x01000005)
    action set_hash_mask(vni_t vni_mask, tenant_id_t tenant_mask,
                         ipv4_addr_t src_mask, ipv4_addr_t dst_mask,
                         bit<8> proto_mask,
                         l4_port_t sport_mask, l4_port_t dport_mask) {
        meta.hash_key.vni    = meta.flow.vni    & vni_mask;
        meta.hash_key.tenant = meta.flow.tenant & tenant_mask;
        meta.hash_key.src    = meta.flow.src    & src_mask;
        meta.hash_key.dst    = meta.flow.dst    & dst_mask;
        meta.hash_key.proto  = meta.flow.proto  & proto_mask;
        meta.hash_key.sport  = meta.flow.sport  & sport_mask;
        meta.hash_key.dport  = meta.flow.dport  & dport_mask;
        meta.src_mask = src_mask;
        meta.dst_mask = dst_mask;
    }

    @id(0x02000004)
    table pool_hash {
        key = {
            meta.pool_id : exact @name("pool_id");
        }
        actions = {
            set_hash_mask;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = POOL_HASH_TABLE_SIZE;
    }

    /*
     * Backend select table (step 7).
     *
     * The pool's consistent-hash ring: (pool, bucket) -> backend, filled by the
     * controller's Maglev builder. A miss is NO_BACKEND.
     */
    @id(0x01000006)
    action set_backend(backend_id_t backend_id) {
        meta.backend_id = backend_id;
    }

    @id(0x02000005)
    table backend_select {
        key = {
            meta.pool_id : exact @name("pool_id");
            meta.bucket  : exact @name("bucket");
        }
        actions = {
            set_backend;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = BACKEND_SELECT_TABLE_SIZE;
    }

    /*
     * Backend table (step 8).
     *
     * Rewrites the outer headers towards the backend and picks the port: dst
     * MAC, src MAC (the port's, passed by the controller), outer dst IP to the
     * backend's underlay address, TTL - 1. The IPv4 checksum is recomputed in
     * GrayComputeChecksum, the L4 one fixed in apply. A miss is NO_BACKEND.
     */
    @id(0x01000007)
    action to_backend(PortId_t port, mac_addr_t smac, mac_addr_t dmac,
                      ipv4_addr_t underlay_ip) {
        standard_md.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv4.dst_addr = underlay_ip;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        backend_counter.count();
    }

    // The same towards an IPv6 underlay: outer IPv6 dst, hop limit - 1 (no
    // header checksum). apply drops a frame whose outer header is not IPv6
    // (BACKEND_FAMILY), as to_backend's whose outer header is not IPv4.
    @id(0x0100000b)
    action to_backend_v6(PortId_t port, mac_addr_t smac, mac_addr_t dmac,
                         ipv6_addr_t underlay_ip) {
        standard_md.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv6.dst_addr = underlay_ip;
        hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
        meta.to_v6 = true;
        backend_counter.count();
    }

    @id(0x02000006)
    table backend {
        key = {
            meta.backend_id : exact @name("backend_id");
        }
        actions = {
            to_backend;
            to_backend_v6;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = backend_counter;
        size = BACKEND_TABLE_SIZE;
    }

    /*
     * VLAN accept table (802.1Q, step 2).
     *
     * The (ingress port, VID) pairs whose tagged frames are served. Applied
     * to a tagged frame for a VIP only: a miss drops it as VLAN_NOT_ACCEPTED
     * (a frame not for a VIP is not ours, tagged or not). Untagged frames
     * are accepted on every port.
     */
    @id(0x01000009)
    action accept_vlan() { }

    @id(0x02000007)
    table vlan_accept {
        key = {
            standard_md.ingress_port : exact @name("ingress_port");
            hdr.vlan.vid             : exact @name("vid");
        }
        actions = {
            accept_vlan;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = VLAN_ACCEPT_TABLE_SIZE;
    }

    apply {
        // Dropped unless to_backend picks a port: BMv2 would otherwise send
        // an undecided packet to port 0.
        mark_to_drop(standard_md);

        // A mirror copy (§10) back from egress: the frame as received, with
        // the mirror pool, id and tenant kept from the pass that made it. It
        // skips steps 1-4 (it was parsed, looked up and counted there), so it
        // never meets gray_rules again.
        bool copy = standard_md.instance_type == PKT_INSTANCE_TYPE_RECIRC;

        if (copy) {
            meta.drop_reason = DROP_NONE;
            flow_init.apply(hdr, meta.flow, meta.flow_v6, meta.flow6);
            meta.flow.tenant = meta.mirror_tenant;
            meta.pool_id = meta.mirror_pool;
        } else {
            // 1. The parse outcome. A failed extract (PacketTooShort is the
            // only error this parser can raise) left the header it cut invalid.
            meta.drop_reason = meta.parse_reason;
            if (standard_md.parser_error != error.NoError) {
                truncated_reason.apply(hdr, meta.drop_reason);
            }

            // 2. VIP first: with the outer IPv4 (IPv6) header read, a miss is
            // NOT_VIP whatever else the parse found; a hit keeps the parse
            // reason. Without it (ETH_TRUNCATED, NOT_IPV4, IPV4_TRUNCATED,
            // IPV6_TRUNCATED) there is nothing to look up. TTL (hop limit) is
            // checked only after a clean parse, since we decrement it.
            bool outer_read = false;
            bool vip_hit = false;
            bit<8> ttl = 0;
            if (hdr.ipv4.isValid()) {
                outer_read = true;
                vip_hit = vip.apply().hit;
                ttl = hdr.ipv4.ttl;
            } else if (hdr.ipv6.isValid()) {
                outer_read = true;
                vip_hit = vip_v6.apply().hit;
                ttl = hdr.ipv6.hop_limit;
            }
            if (outer_read) {
                if (!vip_hit) {
                    meta.drop_reason = DROP_NOT_VIP;
                } else if (hdr.vlan.isValid() && !vlan_accept.apply().hit) {
                    meta.drop_reason = DROP_VLAN_NOT_ACCEPTED;
                } else if (meta.drop_reason == DROP_NONE && ttl <= 1) {
                    meta.drop_reason = DROP_TTL_EXPIRED;
                }
            }

            if (meta.drop_reason == DROP_NONE) {
                flow_init.apply(hdr, meta.flow, meta.flow_v6, meta.flow6);

                // 3.
                vni_tenant.apply();

                // 4. The split hash: low 16 bits of CRC32 over vni(24) ++
                // src(32), or ++ src(128) for an IPv6 flow, for a split and
                // for a mirror's sampling.
                if (meta.flow_v6) {
                    gray_rules_v6.apply();
                } else {
                    gray_rules.apply();
                }
                // §10: a frame with an IPv6 outer header is never mirrored: a
                // set_pool_mirror rule serves it as set_pool.
                if (hdr.ipv6.isValid()) {
                    meta.mirror_active = false;
                }
                if (meta.flow_v6 && meta.split.active) {
                    hash(meta.split.hash_value, HashAlgorithm.crc32, 17w0,
                         { meta.flow.vni, meta.flow6.src }, SPLIT_HASH_RANGE);
                } else if (meta.split.active || meta.mirror_active) {
                    hash(meta.split.hash_value, HashAlgorithm.crc32, 17w0,
                         { meta.flow.vni, meta.flow.src }, SPLIT_HASH_RANGE);
                }
                if (meta.split.active && meta.split.hash_value < meta.split.threshold) {
                    meta.pool_id = meta.split.pool_gray;
                }
                if (meta.mirror_active && meta.split.hash_value > meta.mirror_sample) {
                    meta.mirror_active = false;
                }
            }
        }

        if (meta.drop_reason == DROP_NONE) {
            // 5. The key is the flow unless the pool masks it.
            meta.hash_key = meta.flow;
            meta.src_mask = 0xFFFFFFFF;
            meta.dst_mask = 0xFFFFFFFF;
            pool_hash.apply();

            // 6. bucket = CRC32/IEEE(masked key) % BUCKETS, i.e. its low bits
            // (BMv2's crc32 is zlib's = Go's crc32.ChecksumIEEE): the 18-byte
            // key of an IPv4 flow, the 42-byte key6 of an IPv6 one.
            if (meta.flow_v6) {
                meta.hash_key6 = meta.flow6;
                if (meta.src_mask == 0) {
                    meta.hash_key6.src = 0;
                }
                if (meta.dst_mask == 0) {
                    meta.hash_key6.dst = 0;
                }
                hash(meta.bucket, HashAlgorithm.crc32, (bucket_t)0,
                     { meta.hash_key.vni,
                       meta.hash_key.tenant,
                       meta.hash_key6.src,
                       meta.hash_key6.dst,
                       meta.hash_key.proto,
                       meta.hash_key.sport,
                       meta.hash_key.dport },
                     BUCKETS);
            } else {
                hash(meta.bucket, HashAlgorithm.crc32, (bucket_t)0,
                     { meta.hash_key.vni,
                       meta.hash_key.tenant,
                       meta.hash_key.src,
                       meta.hash_key.dst,
                       meta.hash_key.proto,
                       meta.hash_key.sport,
                       meta.hash_key.dport },
                     BUCKETS);
            }

            // 7-8.
            if (!backend_select.apply().hit) {
                meta.drop_reason = DROP_NO_BACKEND;
            } else {
                ipv4_addr_t old_dst = hdr.ipv4.dst_addr;
                ipv6_addr_t old_dst6 = hdr.ipv6.dst_addr;
                meta.to_v6 = false;
                if (!backend.apply().hit) {
                    meta.drop_reason = DROP_NO_BACKEND;
                } else if (meta.to_v6 != hdr.ipv6.isValid()) {
                    // A controller error: the entry's underlay is not the
                    // frame's family.
                    meta.drop_reason = DROP_BACKEND_FAMILY;
                } else if (hdr.ipv6.isValid()) {
                    // Every IPv6 L4 checksum covers the pseudo-header's dst.
                    if (hdr.tcp.isValid()) {
                        hdr.tcp.checksum = csum16_replace128(hdr.tcp.checksum, old_dst6,
                                                             hdr.ipv6.dst_addr);
                    } else if (hdr.udp.isValid() && hdr.udp.checksum != 0) {
                        // UDP, overlay or plain: a zero checksum (RFC 6935's
                        // tunnel) stays 0; a computed 0 is sent as 0xFFFF.
                        hdr.udp.checksum = csum16_replace128(hdr.udp.checksum, old_dst6,
                                                             hdr.ipv6.dst_addr);
                        if (hdr.udp.checksum == 0) {
                            hdr.udp.checksum = 0xFFFF;
                        }
                    } else if (hdr.icmp6.isValid()) {
                        hdr.icmp6.checksum = csum16_replace128(hdr.icmp6.checksum, old_dst6,
                                                               hdr.ipv6.dst_addr);
                    }
                } else if (hdr.vxlan.isValid()) {
                    // Overlay: a zero UDP checksum is allowed for IPv4 VXLAN.
                    hdr.udp.checksum = 0;
                } else if (hdr.tcp.isValid()) {
                    // Plain TCP: the checksum covers the pseudo-header's dst.
                    hdr.tcp.checksum = csum16_replace32(hdr.tcp.checksum, old_dst,
                                                        hdr.ipv4.dst_addr);
                } else if (hdr.udp.isValid() && hdr.udp.checksum != 0) {
                    // Plain UDP with a checksum (0 means none and stays 0);
                    // a computed 0 is sent as 0xFFFF.
                    hdr.udp.checksum = csum16_replace32(hdr.udp.checksum, old_dst,
                                                        hdr.ipv4.dst_addr);
                    if (hdr.udp.checksum == 0) {
                        hdr.udp.checksum = 0xFFFF;
                    }
                }
            }
        }

        if (copy) {
            // §10: the copy is marked and counted per backend; a copy whose
            // mirror pool has no backend is dropped, counted nowhere else.
            if (meta.drop_reason == DROP_NONE) {
                hdr.ipv4.dscp = MIRROR_DSCP;
                mirror_backend_counter.count((bit<32>)meta.backend_id);
            } else {
                mark_to_drop(standard_md);
            }
        } else if (meta.drop_reason != DROP_NONE) {
            // 9.
            drop_reasons.count((bit<32>)meta.drop_reason);
            mark_to_drop(standard_md);
        } else if (meta.mirror_active) {
            // §10: a served frame of a sampled VM: copy it as received.
            mirror_counter.count((bit<32>)meta.mirror_id);
            meta.mirror_tenant = meta.flow.tenant;
            clone_preserving_field_list(CloneType.I2E, MIRROR_SESSION_ID, FL_MIRROR);
        }
    }
}

#endif // __GRAYGW_V1MODEL_INGRESS__
