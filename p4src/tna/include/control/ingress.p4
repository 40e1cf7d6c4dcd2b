// GrayIngress for TNA: the same tables, actions, counters, names and @ids as the
// v1model control (p4src/v1model/include/control/ingress.p4), in Tofino idioms.
// Where the two differ, and why: docs/p4-targets.md.

#ifndef __GRAYGW_TNA_INGRESS__
#define __GRAYGW_TNA_INGRESS__

control GrayIngress(inout headers_t hdr,
                    inout graygw_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    // CRC32/IEEE 802.3 spelled out (polynomial 0x04C11DB7 reflected, init and
    // xor-out 0xFFFFFFFF): zlib's crc32 = BMv2's crc32 = Go's ChecksumIEEE.
    // Not the predefined HashAlgorithm_t.CRC32, whose init and xor-out are
    // bf-p4c's choice; this is the form Intel's tna_custom_hash example checks
    // against zlib.crc32. One polynomial instance per Hash, one Hash per use.
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) split_overlay_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) split_plain_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) bucket_crc32;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, split_overlay_crc32) split_overlay_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, split_plain_crc32) split_plain_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, bucket_crc32) bucket_hasher;
    // IPv6 (issue 19): split_hash6 over vni ++ src(128), overlay and plain,
    // and key6's bucket hash in the four forms a pool's masks give it (a zero
    // src_mask or dst_mask leaves the 128-bit address out: docs/pipeline.md
    // §6), all four computed in the bucket hash's stage and one picked there,
    // so that leaving an address out costs no stage.
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) split_overlay6_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) split_plain6_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) bucket6_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) bucket6_nosrc_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) bucket6_nodst_crc32;
    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false,
                           32w0xFFFFFFFF, 32w0xFFFFFFFF) bucket6_noaddr_crc32;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, split_overlay6_crc32) split_overlay6_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, split_plain6_crc32) split_plain6_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, bucket6_crc32) bucket6_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, bucket6_nosrc_crc32) bucket6_nosrc_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, bucket6_nodst_crc32) bucket6_nodst_hasher;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, bucket6_noaddr_crc32) bucket6_noaddr_hasher;

    // One cell per drop reason, counted for every packet not forwarded
    // (cell 0, DROP_NONE, never).
    @id(0x12000001)
    Counter<bit<32>, drop_reason_t>(NUM_DROP_REASONS, CounterType_t.PACKETS_AND_BYTES) drop_reasons;

    // Mirror copies made, per mirror id, and sent, per backend (§10). Indexed
    // by the id's low bits: the controller keeps mirror ids below MIRROR_IDS
    // and backend ids below BACKEND_TABLE_SIZE.
    @id(0x12000002)
    Counter<bit<32>, bit<10>>(MIRROR_IDS, CounterType_t.PACKETS_AND_BYTES) mirror_counter;
    @id(0x12000003)
    Counter<bit<32>, bit<12>>(BACKEND_TABLE_SIZE, CounterType_t.PACKETS_AND_BYTES) mirror_backend_counter;

    @id(0x13000001)
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) vip_counter;
    @id(0x13000002)
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) gray_rules_counter;
    @id(0x13000003)
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) backend_counter;
    @id(0x13000004)
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) vip_v6_counter;
    @id(0x13000005)
    DirectCounter<bit<32>>(CounterType_t.PACKETS_AND_BYTES) gray_rules_v6_counter;

    /*
     * The parse outcome (step 1), in one stage: the parser's reason, unless
     * an extract was cut by the end of the frame (PARSER_ERROR_PARTIAL_HDR),
     * in which case the header it cut is the first one left invalid. Only
     * that error bit: after another the parse may have finished. The entries
     * are the shared TruncatedReason control's if-chain (flow.p4), in its
     * order, as constant entries, because the chain takes a stage of its own
     * on Tofino. Hidden: not part of the P4Runtime contract.
     */
    @hidden
    action keep_parse_reason() {
        meta.drop_reason = meta.parse_reason;
    }
    @hidden
    action truncated(drop_reason_t reason) {
        meta.drop_reason = reason;
    }

    @hidden
    table parse_outcome {
        key = {
            ig_prsr_md.parser_err      : ternary;
            hdr.vxlan.isValid()        : ternary;
            hdr.udp.isValid()          : ternary;
            hdr.ipv4.isValid()         : ternary;
            hdr.ipv6.isValid()         : ternary;
            hdr.vlan.isValid()         : ternary;
            hdr.vlan.ether_type        : ternary;
            hdr.ethernet.isValid()     : ternary;
            hdr.ethernet.ether_type    : ternary;
        }
        actions = {
            keep_parse_reason;
            truncated;
        }
        const entries = {
            // err                      vxlan  udp    ipv4   ipv6   vlan   vlan et         eth    eth et
            (0 &&& PARSER_ERROR_PARTIAL_HDR, _,     _,     _,     _,     _,     _,              _,     _)              : keep_parse_reason();
            (PARSER_ERROR_PARTIAL_HDR,       true,  _,     _,     _,     _,     _,              _,     _)              : truncated(DROP_INNER_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, true,  _,     _,     _,     _,              _,     _)              : truncated(DROP_VXLAN_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, true,  _,     _,     _,              _,     _)              : truncated(DROP_L4_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, true,  _,     _,              _,     _)              : truncated(DROP_L4_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, true,  ETHERTYPE_IPV6, _,     _)              : truncated(DROP_IPV6_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, true,  _,              _,     _)              : truncated(DROP_IPV4_TRUNCATED);
            // The 802.1Q tag was cut: part of the Ethernet header.
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, false, _,              true,  ETHERTYPE_VLAN) : truncated(DROP_ETH_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, false, _,              true,  ETHERTYPE_IPV6) : truncated(DROP_IPV6_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, false, _,              true,  _)              : truncated(DROP_IPV4_TRUNCATED);
            (PARSER_ERROR_PARTIAL_HDR,       false, false, false, false, false, _,              false, _)              : truncated(DROP_ETH_TRUNCATED);
        }
        const default_action = keep_parse_reason();
        size = 11;
    }

    /*
     * Flow fields (step 1's output, docs/pipeline.md "The flow fields").
     *
     * The same fields as the shared FlowInit control, in one stage: which
     * headers supply them is chosen by this table's constant entries on
     * header validity rather than by nested ifs (two stages of gateways on
     * Tofino). Each action also presets the hash key to the flow (pool_hash
     * may mask it). The VNI comes from the parser (0 for plain traffic), the
     * tenant from vni_tenant. Hidden: not part of the P4Runtime contract.
     */
    @hidden
    action flow_overlay(l4_port_t sport, l4_port_t dport) {
        meta.flow.src   = hdr.inner_ipv4.src_addr;
        meta.flow.dst   = hdr.inner_ipv4.dst_addr;
        meta.flow.proto = hdr.inner_ipv4.protocol;
        meta.flow.sport = sport;
        meta.flow.dport = dport;
        meta.hash_key.src   = hdr.inner_ipv4.src_addr;
        meta.hash_key.dst   = hdr.inner_ipv4.dst_addr;
        meta.hash_key.proto = hdr.inner_ipv4.protocol;
        meta.hash_key.sport = sport;
        meta.hash_key.dport = dport;
    }
    @hidden
    action flow_overlay_l4() {
        flow_overlay(hdr.inner_l4.sport, hdr.inner_l4.dport);
    }
    // Inner ICMP, inner fragments and other protocols: ports 0.
    @hidden
    action flow_overlay_no_l4() {
        flow_overlay(0, 0);
    }
    @hidden
    action flow_plain(l4_port_t sport, l4_port_t dport) {
        meta.flow.src   = hdr.ipv4.src_addr;
        meta.flow.dst   = hdr.ipv4.dst_addr;
        meta.flow.proto = hdr.ipv4.protocol;
        meta.flow.sport = sport;
        meta.flow.dport = dport;
        meta.hash_key.src   = hdr.ipv4.src_addr;
        meta.hash_key.dst   = hdr.ipv4.dst_addr;
        meta.hash_key.proto = hdr.ipv4.protocol;
        meta.hash_key.sport = sport;
        meta.hash_key.dport = dport;
    }
    @hidden
    action flow_plain_tcp() {
        flow_plain(hdr.tcp.sport, hdr.tcp.dport);
    }
    @hidden
    action flow_plain_udp() {
        flow_plain(hdr.udp.sport, hdr.udp.dport);
    }
    @hidden
    action flow_plain_no_l4() {
        flow_plain(0, 0);
    }

    // An IPv6 flow: its addresses in flow6; flow.src and flow.dst all ones,
    // so that pool_hash's ANDs leave the pool's src_mask and dst_mask in
    // hash_key.src and .dst, where the bucket hash's stage tests them for 0.
    @hidden
    action flow6(ipv6_addr_t src, ipv6_addr_t dst, bit<8> proto,
                 l4_port_t sport, l4_port_t dport) {
        meta.flow_v6 = true;
        meta.flow6.src  = src;
        meta.flow6.dst  = dst;
        meta.flow.src   = 0xFFFFFFFF;
        meta.flow.dst   = 0xFFFFFFFF;
        meta.flow.proto = proto;
        meta.flow.sport = sport;
        meta.flow.dport = dport;
        meta.hash_key.src   = 0xFFFFFFFF;
        meta.hash_key.dst   = 0xFFFFFFFF;
        meta.hash_key.proto = proto;
        meta.hash_key.sport = sport;
        meta.hash_key.dport = dport;
    }
    @hidden
    action flow_overlay6_l4() {
        flow6(hdr.inner_ipv6.src_addr, hdr.inner_ipv6.dst_addr, hdr.inner_ipv6.next_hdr,
              hdr.inner_l4.sport, hdr.inner_l4.dport);
    }
    // A fragment: its fragment header's protocol, ports 0.
    @hidden
    action flow_overlay6_frag() {
        flow6(hdr.inner_ipv6.src_addr, hdr.inner_ipv6.dst_addr, hdr.inner_frag.next_hdr, 0, 0);
    }
    @hidden
    action flow_overlay6_no_l4() {
        flow6(hdr.inner_ipv6.src_addr, hdr.inner_ipv6.dst_addr, hdr.inner_ipv6.next_hdr, 0, 0);
    }
    @hidden
    action flow_plain6_tcp() {
        flow6(hdr.ipv6.src_addr, hdr.ipv6.dst_addr, hdr.ipv6.next_hdr, hdr.tcp.sport, hdr.tcp.dport);
    }
    @hidden
    action flow_plain6_udp() {
        flow6(hdr.ipv6.src_addr, hdr.ipv6.dst_addr, hdr.ipv6.next_hdr, hdr.udp.sport, hdr.udp.dport);
    }
    @hidden
    action flow_plain6_no_l4() {
        flow6(hdr.ipv6.src_addr, hdr.ipv6.dst_addr, hdr.ipv6.next_hdr, 0, 0);
    }

    @hidden
    table flow_init {
        key = {
            hdr.vxlan.isValid()      : exact;
            hdr.inner_ipv6.isValid() : exact;
            hdr.inner_frag.isValid() : exact;
            hdr.inner_l4.isValid()   : exact;
            hdr.ipv6.isValid()       : exact;
            hdr.tcp.isValid()        : exact;
            hdr.udp.isValid()        : exact;
        }
        actions = {
            flow_overlay_l4;
            flow_overlay_no_l4;
            flow_plain_tcp;
            flow_plain_udp;
            flow_plain_no_l4;
            flow_overlay6_l4;
            flow_overlay6_frag;
            flow_overlay6_no_l4;
            flow_plain6_tcp;
            flow_plain6_udp;
            flow_plain6_no_l4;
        }
        // vxlan, inner_ipv6, inner_frag, inner_l4, ipv6, tcp, udp. Overlay
        // entries hold for either outer family.
        const entries = {
            (true,  false, false, true,  false, false, true)  : flow_overlay_l4();
            (true,  false, false, false, false, false, true)  : flow_overlay_no_l4();
            (true,  false, false, true,  true,  false, true)  : flow_overlay_l4();
            (true,  false, false, false, true,  false, true)  : flow_overlay_no_l4();
            (true,  true,  false, true,  false, false, true)  : flow_overlay6_l4();
            (true,  true,  true,  false, false, false, true)  : flow_overlay6_frag();
            (true,  true,  false, false, false, false, true)  : flow_overlay6_no_l4();
            (true,  true,  false, true,  true,  false, true)  : flow_overlay6_l4();
            (true,  true,  true,  false, true,  false, true)  : flow_overlay6_frag();
            (true,  true,  false, false, true,  false, true)  : flow_overlay6_no_l4();
            (false, false, false, false, false, true,  false) : flow_plain_tcp();
            (false, false, false, false, false, false, true)  : flow_plain_udp();
            (false, false, false, false, true,  true,  false) : flow_plain6_tcp();
            (false, false, false, false, true,  false, true)  : flow_plain6_udp();
            (false, false, false, false, true,  false, false) : flow_plain6_no_l4();
        }
        const default_action = flow_plain_no_l4();
        size = 16;
    }

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
        meta.vip_hit = true;
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

    // IPv6 VIP table (step 2): vip for an outer IPv6 destination. bf-p4c
    // binds an action that counts a direct counter to that counter's one
    // table, so the table has its own set_vip_v6 (set_vip's parameters); the
    // v1model program has the same action, name and id (docs/p4-targets.md,
    // "IPv6").
    @id(0x0100000c)
    action set_vip_v6(vip_id_t vip_id, pool_id_t default_pool) {
        meta.vip_hit = true;
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
     * VLAN accept table (802.1Q, step 2).
     *
     * The (ingress port, VID) pairs whose tagged frames are served. The
     * parser marks a tagged frame refused; a hit clears the mark, so the
     * table runs in stage 0 beside vip and apply reads one bit. A tagged
     * frame for a VIP left refused is VLAN_NOT_ACCEPTED.
     */
    @id(0x01000009)
    action accept_vlan() {
        meta.vlan_refused = false;
    }

    @id(0x02000007)
    table vlan_accept {
        key = {
            ig_intr_md.ingress_port : exact @name("ingress_port");
            hdr.vlan.vid            : exact @name("vid");
        }
        actions = {
            accept_vlan;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        size = VLAN_ACCEPT_TABLE_SIZE;
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
        meta.hash_key.tenant = tenant_id;
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
        // hash16 < threshold exactly when threshold |-| hash16 is not 0: one
        // saturating subtraction on action data, in gray_rules' own stage;
        // apply tests the result (docs/p4-targets.md, "The split").
        meta.split.pool_gray = pool_gray;
        meta.split.below = threshold |-| meta.split.hash16;
        gray_rules_counter.count();
    }

    @id(0x01000008)
    action set_pool_mirror(pool_id_t pool_id, pool_id_t mirror_pool,
                           bit<16> sample, mirror_id_t mirror_id) {
        meta.pool_id = pool_id;
        // Sampled when split hash <= sample: apply computes hash16 |-|
        // sample (0 then) in the next stage, as a subtraction's second
        // operand cannot be action data.
        meta.mirror_active = true;
        meta.mirror_sample[15:0] = sample;
        meta.mirror_pool = mirror_pool;
        meta.mirror_id = mirror_id;
        // For the deparser's mirror, set here rather than beside mirror_type:
        // constants there would be action data of a keyless table, which
        // Tofino 2 cannot combine with the counter's hashed index.
        meta.mirror_kind = MIRROR_KIND_COPY;
        meta.mirror_session = (bit<10>)MIRROR_SESSION_ID;
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

    // IPv6 gray rules table (step 4): gray_rules for an IPv6 flow, 128-bit
    // addresses, no mirror. set_pool_v6 and split_pool_v6 are set_pool and
    // split_pool counting in its own counter (as vip_v6's set_vip_v6; the
    // same actions, names and ids as v1model's).
    @id(0x0100000d)
    action set_pool_v6(pool_id_t pool_id) {
        meta.pool_id = pool_id;
        gray_rules_v6_counter.count();
    }

    @id(0x0100000e)
    action split_pool_v6(pool_id_t pool_gray, bit<16> threshold) {
        meta.split.pool_gray = pool_gray;
        meta.split.below = threshold |-| meta.split.hash16;
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
     * mask, straight into the hash key (action-data operands, so the ANDs take
     * no stage of their own). A miss hashes every field (the key is preset to
     * the flow).
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
     * backend's underlay address, TTL - 1. The deparser then recomputes the
     * IPv4 checksum; apply decides about the L4 one. A miss is NO_BACKEND.
     */
    @id(0x01000007)
    action to_backend(PortId_t port, mac_addr_t smac, mac_addr_t dmac,
                      ipv4_addr_t underlay_ip) {
        ig_tm_md.ucast_egress_port = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv4.dst_addr = underlay_ip;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        // BACKEND_FAMILY when the outer header is IPv6 (the parser's).
        meta.drop_reason = meta.reason_to_v4;
        backend_counter.count();
    }

    // The same towards an IPv6 underlay: outer IPv6 dst, hop limit - 1; the
    // deparser fixes the L4 checksum.
    @id(0x0100000b)
    action to_backend_v6(PortId_t port, mac_addr_t smac, mac_addr_t dmac,
                         ipv6_addr_t underlay_ip) {
        ig_tm_md.ucast_egress_port = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv6.dst_addr = underlay_ip;
        hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
        // BACKEND_FAMILY when the outer header is IPv4.
        meta.drop_reason = meta.reason_to_v6;
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

    // The order of work is the contract's, but laid out for Tofino's 12
    // stages (docs/p4-targets.md, "Tofino fit"): whatever reads only headers
    // or parser metadata runs in stage 0 for every packet, gray_rules starts
    // in stage 1 behind one gateway, and every later step is one stage.
    apply {
        // The whole pipeline runs here; egress only tags the frame for its
        // port (port_vlan, GrayEgress).

        // Stage 0. The flow fields and split hash (meaningless, and unused,
        // for packets that end up dropped); the VIP; the VLAN; the tenant.
        flow_init.apply();
        // A mirror copy has its pool from the parser (mirror.p4).
        if (hdr.ipv4.isValid() && !meta.is_copy) {
            vip.apply();
        } else if (hdr.ipv6.isValid()) {
            vip_v6.apply();
        }
        if (hdr.vlan.isValid()) {
            vlan_accept.apply();
        }
        vni_tenant.apply();
        // 4. The split hash, low 16 bits of CRC32 over vni(24) ++ src(32),
        // from the headers, so that split_pool can compare in gray_rules' own
        // stages.
        // IPv6 flows: ++ src(128).
        if (hdr.inner_ipv6.isValid()) {
            meta.split.hash16 = split_overlay6_hasher.get({
                meta.flow.vni, hdr.inner_ipv6.src_addr })[15:0];
        } else if (hdr.vxlan.isValid()) {
            meta.split.hash16 = split_overlay_hasher.get({
                meta.flow.vni, hdr.inner_ipv4.src_addr })[15:0];
        } else if (hdr.ipv6.isValid()) {
            meta.split.hash16 = split_plain6_hasher.get({
                meta.flow.vni, hdr.ipv6.src_addr })[15:0];
        } else {
            meta.split.hash16 = split_plain_hasher.get({
                meta.flow.vni, hdr.ipv4.src_addr })[15:0];
        }
        // VXLAN's UDP checksum is sent as 0 over IPv4 (over IPv6 the
        // deparser updates it).
        if (hdr.vxlan.isValid() && hdr.ipv4.isValid()) {
            hdr.udp.checksum = 0;
        }

        // 1. The parse outcome.
        parse_outcome.apply();

        if (meta.vip_hit && !meta.vlan_refused && meta.drop_reason == DROP_NONE && meta.rx_ttl > 1) {
            // 4. Gray rules (gray_rules_v6 for an IPv6 flow), then the
            // split's outcome. A copy never meets them: its pool is the
            // mirror pool, it is never mirrored twice.
            if (meta.flow_v6) {
                gray_rules_v6.apply();
            } else if (!meta.is_copy) {
                gray_rules.apply();
            }
            if (meta.split.below != 0) {
                meta.pool_id = meta.split.pool_gray;
            }
            // §10: 0 when a set_pool_mirror rule's VM is sampled (unused
            // otherwise).
            meta.mirror_over = meta.split.hash16 |-| meta.mirror_sample[15:0];

            // 5. The key is the flow unless the pool masks it.
            pool_hash.apply();

            // 6. bucket = the low BUCKET_BITS bits of CRC32/IEEE over the masked
            // 18-byte key, in key order. The bits above are the parser's 0.
            // An IPv6 flow's 42-byte key6: an address whose pool mask is 0
            // (hash_key.src or .dst 0: flow_init) is hashed as 128 zero bits.
            if (!meta.flow_v6) {
                meta.bucket[BUCKET_BITS - 1:0] = bucket_hasher.get({
                    meta.hash_key.vni,
                    meta.hash_key.tenant,
                    meta.hash_key.src,
                    meta.hash_key.dst,
                    meta.hash_key.proto,
                    meta.hash_key.sport,
                    meta.hash_key.dport
                })[BUCKET_BITS - 1:0];
            } else if (meta.hash_key.src != 0 && meta.hash_key.dst != 0) {
                meta.bucket[BUCKET_BITS - 1:0] = bucket6_hasher.get({
                    meta.hash_key.vni, meta.hash_key.tenant,
                    meta.flow6.src, meta.flow6.dst,
                    meta.hash_key.proto, meta.hash_key.sport, meta.hash_key.dport
                })[BUCKET_BITS - 1:0];
            } else if (meta.hash_key.dst != 0) {
                meta.bucket[BUCKET_BITS - 1:0] = bucket6_nosrc_hasher.get({
                    meta.hash_key.vni, meta.hash_key.tenant,
                    128w0, meta.flow6.dst,
                    meta.hash_key.proto, meta.hash_key.sport, meta.hash_key.dport
                })[BUCKET_BITS - 1:0];
            } else if (meta.hash_key.src != 0) {
                meta.bucket[BUCKET_BITS - 1:0] = bucket6_nodst_hasher.get({
                    meta.hash_key.vni, meta.hash_key.tenant,
                    meta.flow6.src, 128w0,
                    meta.hash_key.proto, meta.hash_key.sport, meta.hash_key.dport
                })[BUCKET_BITS - 1:0];
            } else {
                meta.bucket[BUCKET_BITS - 1:0] = bucket6_noaddr_hasher.get({
                    meta.hash_key.vni, meta.hash_key.tenant,
                    128w0, 128w0,
                    meta.hash_key.proto, meta.hash_key.sport, meta.hash_key.dport
                })[BUCKET_BITS - 1:0];
            }

            // 7-8.
            if (!backend_select.apply().hit) {
                meta.drop_reason = DROP_NO_BACKEND;
            } else if (!backend.apply().hit) {
                meta.drop_reason = DROP_NO_BACKEND;
            }
        } else if (hdr.ipv4.isValid() || hdr.ipv6.isValid()) {
            // 2. With the outer IPv4 (IPv6) header read, a VIP miss is NOT_VIP
            // whatever else the parse found; a hit keeps the parse reason.
            // TTL is checked only after a clean parse, since we decrement it.
            if (!meta.vip_hit) {
                meta.drop_reason = DROP_NOT_VIP;
            } else if (meta.vlan_refused) {
                meta.drop_reason = DROP_VLAN_NOT_ACCEPTED;
            } else if (meta.drop_reason == DROP_NONE) {
                meta.drop_reason = DROP_TTL_EXPIRED;
            }
        }

        if (meta.is_copy) {
            // §10: a copy is counted per backend; one whose mirror pool has no
            // backend is dropped, counted nowhere else.
            if (meta.drop_reason == DROP_NONE) {
                mirror_backend_counter.count(meta.backend_id[11:0]);
            } else {
                ig_dprsr_md.drop_ctl = 1;
            }
        } else if (meta.drop_reason != DROP_NONE) {
            // 9.
            drop_reasons.count(meta.drop_reason);
            ig_dprsr_md.drop_ctl = 1;
        } else if (meta.mirror_active && meta.mirror_over == 0 && hdr.ipv4.isValid()) {
            // (An IPv6 outer frame is never mirrored: docs/pipeline.md §10.)
            // §10: a served frame of a sampled VM; the deparser mirrors it.
            mirror_counter.count(meta.mirror_id[9:0]);
            ig_dprsr_md.mirror_type = MIRROR_TYPE_COPY;
        }
    }
}

#endif // __GRAYGW_TNA_INGRESS__
