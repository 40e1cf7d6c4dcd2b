package pipeline

// The table schema: every table's match fields and every action's parameters,
// by P4Info name and width, in P4Info order. The committed P4Info is checked
// against it (schema_test.go); the compiler, the agent's translation, the test
// builders, the test vectors and the PTF tool spell names and widths through it.

// Field is a match field or an action parameter: its P4Info name and its width
// in bits.
type Field struct {
	Name string
	Bits int
}

// Bytes is the length of the field's canonical P4Runtime byte string.
func (f Field) Bytes() int { return (f.Bits + 7) / 8 }

// Match fields.
var (
	MatchDstAddr     = Field{"dst_addr", 32}   // vip: the outer destination address
	MatchVNI         = Field{"vni", VNIBits}   // vni_tenant; gray_rules
	MatchVIPID       = Field{"vip_id", 16}     // gray_rules
	MatchTenantID    = Field{"tenant_id", 16}  // gray_rules
	MatchInnerSrc    = Field{"inner_src", 32}  // gray_rules
	MatchInnerDst    = Field{"inner_dst", 32}  // gray_rules
	MatchInnerProto  = Field{"inner_proto", 8} // gray_rules
	MatchInnerSPort  = Field{"inner_sport", 16}
	MatchInnerDPort  = Field{"inner_dport", 16}
	MatchPoolID      = Field{"pool_id", 16}              // pool_hash; backend_select
	MatchBucket      = Field{"bucket", 16}               // backend_select
	MatchBackendID   = Field{"backend_id", 16}           // backend
	MatchIngressPort = Field{"ingress_port", PortIDBits} // vlan_accept
	MatchVID         = Field{"vid", VIDBits}             // vlan_accept
	MatchEgressPort  = Field{"egress_port", PortIDBits}  // port_vlan
	// IPv6: the same names, 128 bits wide.
	MatchDstAddr6  = Field{"dst_addr", 128}  // vip_v6: the outer IPv6 destination
	MatchInnerSrc6 = Field{"inner_src", 128} // gray_rules_v6
	MatchInnerDst6 = Field{"inner_dst", 128} // gray_rules_v6
)

// Action parameters.
var (
	ParamVIPID       = Field{"vip_id", 16}       // set_vip, set_vip_v6
	ParamDefaultPool = Field{"default_pool", 16} // set_vip, set_vip_v6
	ParamTenantID    = Field{"tenant_id", 16}    // set_tenant
	ParamPoolID      = Field{"pool_id", 16}      // set_pool, set_pool_v6
	ParamPoolGray    = Field{"pool_gray", 16}    // split_pool, split_pool_v6
	ParamThreshold   = Field{"threshold", 16}    // split_pool(_v6), in 1/65536
	ParamVNIMask     = Field{"vni_mask", VNIBits}
	ParamTenantMask  = Field{"tenant_mask", 16}
	ParamSrcMask     = Field{"src_mask", 32}
	ParamDstMask     = Field{"dst_mask", 32}
	ParamProtoMask   = Field{"proto_mask", 8}
	ParamSPortMask   = Field{"sport_mask", 16}
	ParamDPortMask   = Field{"dport_mask", 16}
	ParamMirrorPool  = Field{"mirror_pool", 16}  // set_pool_mirror
	ParamSample      = Field{"sample", 16}       // set_pool_mirror: copy when split_hash <= sample
	ParamMirrorID    = Field{"mirror_id", 16}    // set_pool_mirror: mirror_counter's cell
	ParamBackendID   = Field{"backend_id", 16}   // set_backend (of backend_select)
	ParamPort        = Field{"port", PortIDBits} // to_backend
	ParamSMAC        = Field{"smac", 48}
	ParamDMAC        = Field{"dmac", 48}
	ParamUnderlayIP  = Field{"underlay_ip", 32}
	ParamVID         = Field{"vid", VIDBits}     // set_port_vlan
	ParamUnderlayIP6 = Field{"underlay_ip", 128} // to_backend_v6
)

// GrayRulesMatch are gray_rules' ternary match fields, in P4Info order.
var GrayRulesMatch = []Field{MatchVIPID, MatchVNI, MatchTenantID, MatchInnerSrc, MatchInnerDst,
	MatchInnerProto, MatchInnerSPort, MatchInnerDPort}

// GrayRulesV6Match are gray_rules_v6's ternary match fields, in P4Info order:
// gray_rules' with 128-bit addresses.
var GrayRulesV6Match = []Field{MatchVIPID, MatchVNI, MatchTenantID, MatchInnerSrc6, MatchInnerDst6,
	MatchInnerProto, MatchInnerSPort, MatchInnerDPort}

// HashMaskParams are set_hash_mask's parameters, in P4Info order.
var HashMaskParams = []Field{ParamVNIMask, ParamTenantMask, ParamSrcMask, ParamDstMask, ParamProtoMask,
	ParamSPortMask, ParamDPortMask}

// MatchKind is how a table matches its fields (all of a table's fields match
// the same way).
type MatchKind int

// Match kinds.
const (
	Exact MatchKind = iota + 1
	Ternary
)

// Action is an action: its P4Info name and parameters, in P4Info order.
type Action struct {
	Name   string
	Params []Field
}

// Table is a table's schema.
type Table struct {
	Name  string
	Kind  MatchKind
	Match []Field
	// Actions are the actions an entry may name (NoAction, the default of
	// some tables, is not one).
	Actions []Action
	// Size is the table's size in the BMv2 and XDP builds (a Tofino build may
	// be smaller: its P4Info says).
	Size int
	// DirectCounter names the table's direct counter, if it has one.
	DirectCounter string
}

// Tables is the schema of every table, in pipeline order.
var Tables = []Table{
	{Name: TableVIP, Kind: Exact, Match: []Field{MatchDstAddr}, Size: VIPTableSize, DirectCounter: DirectCounterVIP,
		Actions: []Action{{ActionSetVIP, []Field{ParamVIPID, ParamDefaultPool}}}},
	{Name: TableVIPv6, Kind: Exact, Match: []Field{MatchDstAddr6}, Size: VIPv6TableSize, DirectCounter: DirectCounterVIPv6,
		Actions: []Action{{ActionSetVIPv6, []Field{ParamVIPID, ParamDefaultPool}}}},
	{Name: TableVNITenant, Kind: Exact, Match: []Field{MatchVNI}, Size: VNITenantTableSize,
		Actions: []Action{{ActionSetTenant, []Field{ParamTenantID}}}},
	{Name: TableGrayRules, Kind: Ternary, Match: GrayRulesMatch, Size: GrayRulesTableSize, DirectCounter: DirectCounterGrayRules,
		Actions: []Action{{ActionSetPool, []Field{ParamPoolID}}, {ActionSplitPool, []Field{ParamPoolGray, ParamThreshold}},
			{ActionSetPoolMirror, []Field{ParamPoolID, ParamMirrorPool, ParamSample, ParamMirrorID}}}},
	{Name: TableGrayRulesV6, Kind: Ternary, Match: GrayRulesV6Match, Size: GrayRulesV6TableSize, DirectCounter: DirectCounterGrayRulesV6,
		Actions: []Action{{ActionSetPoolV6, []Field{ParamPoolID}}, {ActionSplitPoolV6, []Field{ParamPoolGray, ParamThreshold}}}},
	{Name: TablePoolHash, Kind: Exact, Match: []Field{MatchPoolID}, Size: PoolHashTableSize,
		Actions: []Action{{ActionSetHashMask, HashMaskParams}}},
	{Name: TableBackendSelect, Kind: Exact, Match: []Field{MatchPoolID, MatchBucket}, Size: BackendSelectTableSize,
		Actions: []Action{{ActionSetBackend, []Field{ParamBackendID}}}},
	{Name: TableBackend, Kind: Exact, Match: []Field{MatchBackendID}, Size: BackendTableSize, DirectCounter: DirectCounterBackend,
		Actions: []Action{{ActionToBackend, []Field{ParamPort, ParamSMAC, ParamDMAC, ParamUnderlayIP}},
			{ActionToBackendV6, []Field{ParamPort, ParamSMAC, ParamDMAC, ParamUnderlayIP6}}}},
	{Name: TableVLANAccept, Kind: Exact, Match: []Field{MatchIngressPort, MatchVID}, Size: VLANAcceptTableSize,
		Actions: []Action{{ActionAcceptVLAN, nil}}},
	{Name: TablePortVLAN, Kind: Exact, Match: []Field{MatchEgressPort}, Size: PortVLANTableSize,
		Actions: []Action{{ActionSetPortVLAN, []Field{ParamVID}}}},
}

// TableSchema returns the schema of the table named name.
func TableSchema(name string) (Table, bool) {
	for _, t := range Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Names returns the fields' names.
func Names(fs ...Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}
