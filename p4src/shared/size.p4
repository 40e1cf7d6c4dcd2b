// Table sizes (docs/pipeline.md "Sizes"; pipeline/pipeline.go and
// bpf/include/consts.h hold the same numbers). They are in the P4Info: changing
// one means changing p4src/graygw.p4info.txtpb too. Each can be overridden on the
// compiler's command line (-DGRAY_RULES_TABLE_SIZE=8192) for a target that
// cannot hold the default; its P4Info then says so (docs/p4-targets.md, "Tofino
// fit").

#ifndef __GRAYGW_SIZE__
#define __GRAYGW_SIZE__

#ifndef VIP_TABLE_SIZE
#define VIP_TABLE_SIZE            1024
#endif
#ifndef VIP_V6_TABLE_SIZE
#define VIP_V6_TABLE_SIZE         1024
#endif
#ifndef VNI_TENANT_TABLE_SIZE
#define VNI_TENANT_TABLE_SIZE     65536
#endif
#ifndef GRAY_RULES_TABLE_SIZE
#define GRAY_RULES_TABLE_SIZE     16384
#endif
// 128-bit ternary addresses: 352 key bits, eight TCAM words a rule on Tofino
// (docs/p4-targets.md "Tofino fit" for the sizes Tofino builds use).
#ifndef GRAY_RULES_V6_TABLE_SIZE
#define GRAY_RULES_V6_TABLE_SIZE  4096
#endif
#ifndef POOL_HASH_TABLE_SIZE
#define POOL_HASH_TABLE_SIZE      1024
#endif
// 64 pools x BUCKETS (4096).
#ifndef BACKEND_SELECT_TABLE_SIZE
#define BACKEND_SELECT_TABLE_SIZE 262144
#endif
#ifndef BACKEND_TABLE_SIZE
#define BACKEND_TABLE_SIZE        4096
#endif

// 802.1Q: (ingress port, VID) pairs accepted; one tag per egress port.
#ifndef VLAN_ACCEPT_TABLE_SIZE
#define VLAN_ACCEPT_TABLE_SIZE    4096
#endif
#ifndef PORT_VLAN_TABLE_SIZE
#define PORT_VLAN_TABLE_SIZE      512
#endif

#endif // __GRAYGW_SIZE__
