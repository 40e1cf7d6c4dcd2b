// Package p4src holds the graygw P4 programs and embeds the committed P4Info, so Go
// code resolves tables, actions and counters by name from the same file p4c is
// checked against (make p4), never from hard-coded ids.
package p4src

import _ "embed"

// P4InfoText is the text-format P4Info of the v1model program (graygw.p4info.txtpb).
//
//go:embed graygw.p4info.txtpb
var P4InfoText []byte
