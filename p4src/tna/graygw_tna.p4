// graygw for TNA (Tofino; Tofino 2 with --target tofino2 --arch t2na).
//
// The same pipeline as p4src/v1model/graygw_v1model.p4 (docs/pipeline.md), with
// the same table, action and counter names and @ids; docs/p4-targets.md lists
// where Tofino makes it differ. Includes are relative to this file:
//   bf-p4c --target tofino --arch tna -o build/p4/tna \
//       --p4runtime-files build/p4/tna/graygw_tna.p4info.txt \
//       --p4runtime-force-std-externs -DGRAY_RULES_TABLE_SIZE=8192 graygw_tna.p4
// (scripts/p4c.sh; the size override: docs/p4-targets.md, "Tofino fit").

#include <core.p4>
#if __TARGET_TOFINO__ == 2
#include <t2na.p4>
#else
#include <tna.p4>
#endif

#include "../shared/define.p4"
#include "../shared/size.p4"
#include "../shared/header.p4"
#include "../shared/flow.p4"
#include "include/mirror.p4"
#include "include/parser.p4"
#include "include/control/ingress.p4"
#include "include/control/egress.p4"

Pipeline(
    GrayIngressParser(),
    GrayIngress(),
    GrayIngressDeparser(),
    GrayEgressParser(),
    GrayEgress(),
    GrayEgressDeparser()
) pipe;

Switch(pipe) main;
