// Package p4src holds the graygw P4 programs and embeds the committed P4Info, so Go
// code resolves tables, actions and counters by name from the same file p4c is
// checked against (make p4), never from hard-coded ids.
package p4src

import _ "embed"

// P4InfoText is the text-format P4Info of the v1model program (graygw.p4info.txtpb).
//
//go:embed graygw.p4info.txtpb
var P4InfoText []byte

// TNAP4InfoText is the text-format P4Info bf-p4c emits for the Tofino 1 build of
// the TNA program (tna/graygw_tna.p4info.txtpb, checked by make p4): the names and
// ids of the v1model one, gray_rules sized for Tofino 1, counter ids of
// bf-p4c's own choosing (docs/p4-targets.md).
//
//go:embed tna/graygw_tna.p4info.txtpb
var TNAP4InfoText []byte
