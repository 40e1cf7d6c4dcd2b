// graygw for v1model (BMv2 simple_switch / simple_switch_grpc).
//
// The pipeline contract is docs/pipeline.md; the P4Info p4c must emit for this
// program is p4src/graygw.p4info.txtpb (checked by scripts/p4c.sh). Includes are
// relative to this file, so no -I is needed:
//   p4c-bm2-ss -o graygw.json --p4runtime-files graygw.p4info.txt graygw_v1model.p4

#include <core.p4>
// v1model.p4 defaults to its 2018 API, in which PortId_t does not exist and
// counter takes no index type (counter<I> and PortId_t, used below, came with
// 20200408). Must precede the include.
#define V1MODEL_VERSION 20200408
#include <v1model.p4>

#include "../shared/define.p4"
#include "../shared/size.p4"
#include "../shared/header.p4"
#include "../shared/flow.p4"
#include "include/csum16.p4"
#include "include/parser.p4"
#include "include/control/checksum.p4"
#include "include/control/ingress.p4"
#include "include/control/egress.p4"
#include "include/deparser.p4"

V1Switch(
    GrayParser(),
    GrayVerifyChecksum(),
    GrayIngress(),
    GrayEgress(),
    GrayComputeChecksum(),
    GrayDeparser()
) main;
