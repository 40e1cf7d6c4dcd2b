// Table sizes (docs/pipeline.md "Sizes"; pipeline/pipeline.go and
// bpf/include/consts.h hold the same numbers). They are in the P4Info: changing
// one means changing p4src/graygw.p4info.txtpb too.

#ifndef __GRAYGW_SIZE__
#define __GRAYGW_SIZE__

#define VIP_TABLE_SIZE            1024
#define VNI_TENANT_TABLE_SIZE     65536
#define GRAY_RULES_TABLE_SIZE     16384
#define POOL_HASH_TABLE_SIZE      1024
// 64 pools x BUCKETS (4096).
#define BACKEND_SELECT_TABLE_SIZE 262144
#define BACKEND_TABLE_SIZE        4096

#endif // __GRAYGW_SIZE__
