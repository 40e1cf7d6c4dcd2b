// The mirror on Tofino (docs/pipeline.md §10, docs/p4-targets.md "Mirror").
//
// Three passes make a copy, and no table is duplicated:
//   1. ingress, the served frame: a sampled VM's frame under set_pool_mirror
//      is served as usual, and the ingress deparser mirrors it to session
//      MIRROR_SESSION_ID (whose port is the pipe's recirculation port) behind
//      a mirror_h. Intel's documentation says the copy is the frame as
//      received; it may be the deparser's output, already rewritten for the
//      served backend: pass 2 makes the copy right either way.
//   2. egress, the copy (the only packets egress sees: served frames bypass
//      it): the received outer destination and TTL come back from mirror_h,
//      the L4 checksum is corrected to match (egress checksum engines, as in
//      ingress), the marker DSCP is set, and the mirror pool is stashed in the
//      destination MAC, which the copy's own to_backend overwrites.
//   3. ingress again, from the recirculation port: the frame as received but
//      marked; the parser takes the pool from the destination MAC, and
//      ingress skips vip and gray_rules (the copy is never counted there and
//      never mirrored twice), then runs steps 5-8 with the mirror pool.

#ifndef __GRAYGW_TNA_MIRROR__
#define __GRAYGW_TNA_MIRROR__

// ig_dprsr_md.mirror_type of a served frame to copy (0: none).
const MirrorType_t MIRROR_TYPE_COPY = 1;

// The first byte of mirror_h: egress drops anything else.
const bit<8> MIRROR_KIND_COPY = 0x6d;

// The recirculation port that session MIRROR_SESSION_ID names, pipe-local (the
// pipe is in port bits 8:7): copies come back through it in any pipe. Tofino 1:
// 68; Tofino 2: 6 (Intel's port maps; to check on the first Tofino 2 run). The
// controller writes the session with the pipe 0 port (controller/engine
// MirrorSession).
#if __TARGET_TOFINO__ == 2
const PortId_t RECIRC_PORT = 6;
#else
const PortId_t RECIRC_PORT = 68;
#endif
const PortId_t PIPE_LOCAL_PORT_MASK = 0x7f;

// What egress needs of the served frame to rebuild the received one: the
// mirror pool, the received outer destination and TTL (to_backend changed
// both). 8 bytes, emitted by the ingress deparser in front of the copy.
header mirror_h {
    bit<8>      kind;
    pool_id_t   pool;
    ipv4_addr_t rx_dst;
    bit<8>      rx_ttl;
}

#endif // __GRAYGW_TNA_MIRROR__
