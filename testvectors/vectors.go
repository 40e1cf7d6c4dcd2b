// Package testvectors holds the pipeline test vectors shared by every graygw
// dataplane: named cases of table state + input frame + expected decision and output
// frame, stored language-neutral in pipeline.json so the Go model, the XDP program
// (via BPF_PROG_TEST_RUN) and the P4 programs (via PTF) all test against the same
// cases. The expectations are computed by the reference model (package model) and
// the file is regenerated with `make vectors`; the model's own tests check its
// semantics independently.
package testvectors

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// File is the whole pipeline.json.
type File struct {
	Comment string           `json:"comment"`
	Buckets int              `json:"buckets"`
	States  map[string]State `json:"states"`
	Cases   []Case           `json:"cases"`
}

// State is the content of every table, in P4Info names. IPv4 addresses in exact
// keys and action parameters are dotted strings, IPv6 ones RFC 5952 text, MACs
// colon strings; ternary values and masks are plain integers (IPv4 as a 32-bit
// number), but IPv6 addresses (RuleEntry.Match6).
type State struct {
	VIP           []VIPEntry        `json:"vip"`
	VIPv6         []VIPEntry        `json:"vip_v6,omitempty"` // dst_addr IPv6
	VNITenant     []TenantEntry     `json:"vni_tenant"`
	GrayRules     []RuleEntry       `json:"gray_rules"`
	GrayRulesV6   []RuleEntry       `json:"gray_rules_v6,omitempty"`
	PoolHash      []PoolHash        `json:"pool_hash"`
	BackendSelect []SelectFill      `json:"backend_select"`
	Backend       []BackendEntry    `json:"backend"`
	VLANAccept    []VLANAcceptEntry `json:"vlan_accept,omitempty"`
	PortVLAN      []PortVLANEntry   `json:"port_vlan,omitempty"`
}

// VLANAcceptEntry is a vlan_accept entry: the port accepts the VID's tagged
// frames.
type VLANAcceptEntry struct {
	IngressPort uint16 `json:"ingress_port"`
	VID         uint16 `json:"vid"`
}

// PortVLANEntry is a port_vlan entry (set_port_vlan): the port sends tagged
// with VID.
type PortVLANEntry struct {
	EgressPort uint16 `json:"egress_port"`
	VID        uint16 `json:"vid"`
}

// VIPEntry is a vip entry.
type VIPEntry struct {
	DstAddr     string `json:"dst_addr"`
	VIPID       uint16 `json:"vip_id"`
	DefaultPool uint16 `json:"default_pool"`
}

// TenantEntry is a vni_tenant entry.
type TenantEntry struct {
	VNI      uint32 `json:"vni"`
	TenantID uint16 `json:"tenant_id"`
}

// Ternary is a ternary match value and mask.
type Ternary struct {
	Value uint64 `json:"value"`
	Mask  uint64 `json:"mask"`
}

// Ternary6 is a ternary match on an IPv6 address: value and mask as IPv6
// text ("2001:db8::5", "ffff:ffff:ffff:ffff::").
type Ternary6 struct {
	Value string `json:"value"`
	Mask  string `json:"mask"`
}

// RuleEntry is a gray_rules or gray_rules_v6 entry. Match is keyed by match field
// name (vip_id, vni, tenant_id, inner_src, inner_dst, inner_proto, inner_sport,
// inner_dport); an absent field is a wildcard. In a gray_rules_v6 entry the
// 128-bit inner_src and inner_dst are in Match6 instead. Action is the P4
// action's name without its control: in gray_rules "set_pool" (params
// pool_id), "split_pool" (params pool_gray, threshold) or "set_pool_mirror";
// in gray_rules_v6 "set_pool_v6" or "split_pool_v6" (the same params).
type RuleEntry struct {
	Priority int32               `json:"priority"`
	Match    map[string]Ternary  `json:"match"`
	Match6   map[string]Ternary6 `json:"match6,omitempty"`
	Action   string              `json:"action"`
	Params   map[string]uint64   `json:"params"`
}

// PoolHash is a pool_hash entry (set_hash_mask).
type PoolHash struct {
	PoolID     uint16 `json:"pool_id"`
	VNIMask    uint32 `json:"vni_mask"`
	TenantMask uint16 `json:"tenant_mask"`
	SrcMask    uint32 `json:"src_mask"`
	DstMask    uint32 `json:"dst_mask"`
	ProtoMask  uint8  `json:"proto_mask"`
	SPortMask  uint16 `json:"sport_mask"`
	DPortMask  uint16 `json:"dport_mask"`
}

// SelectFill stands for Buckets backend_select entries of one pool: bucket b ->
// Fill[b % len(Fill)].
type SelectFill struct {
	PoolID uint16   `json:"pool_id"`
	Fill   []uint16 `json:"fill"`
}

// BackendEntry is a backend entry: to_backend, or to_backend_v6 when
// UnderlayIP is an IPv6 address.
type BackendEntry struct {
	BackendID  uint16 `json:"backend_id"`
	Port       uint16 `json:"port"`
	SMAC       string `json:"smac"`
	DMAC       string `json:"dmac"`
	UnderlayIP string `json:"underlay_ip"`
}

// Case is one input frame run over one named state.
type Case struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	State       string `json:"state"`
	// InPort is the port the frame is received on (vlan_accept's key); 0
	// when absent. Only the VLAN state's cases depend on it.
	InPort uint16 `json:"in_port,omitempty"`
	Packet string `json:"packet"` // hex
	Expect Expect `json:"expect"`
}

// Expect is the decision, as the reference model computes it. The trace fields after
// Packet are meaningful when the packet reached that step (0 otherwise).
type Expect struct {
	Verdict  string `json:"verdict"` // forward, drop, pass
	Reason   string `json:"reason"`
	Port     uint16 `json:"port"`
	Packet   string `json:"packet,omitempty"` // hex, forward only
	VIPID    uint16 `json:"vip_id"`
	TenantID uint16 `json:"tenant_id"`
	// IPv6: the flow is IPv6 (inner IPv6, or plain IPv6): Rule indexes
	// gray_rules_v6 and HashKey is the 42-byte key6.
	IPv6      bool   `json:"ipv6,omitempty"`
	Rule      int    `json:"rule"` // index into the state's gray_rules (gray_rules_v6 for IPv6), -1 none
	Pool      uint16 `json:"pool"`
	SplitHash uint16 `json:"split_hash"`
	HashKey   string `json:"hash_key,omitempty"` // hex, masked, 18 bytes (42 for IPv6)
	CRC       uint32 `json:"crc"`
	Bucket    uint16 `json:"bucket"`
	BackendID uint16 `json:"backend_id"`

	// Copy is the mirror copy (docs/pipeline.md §10), absent when none is made.
	Copy *ExpectCopy `json:"copy,omitempty"`
}

// ExpectCopy is a mirror copy: its trace, and its port and frame when sent.
type ExpectCopy struct {
	MirrorID  uint16 `json:"mirror_id"`
	Pool      uint16 `json:"pool"`
	HashKey   string `json:"hash_key"` // hex, masked, 18 bytes
	CRC       uint32 `json:"crc"`
	Bucket    uint16 `json:"bucket"`
	BackendID uint16 `json:"backend_id"`
	Sent      bool   `json:"sent"`
	// BackendFamily: the copy hit a backend entry of the other family, and
	// was not sent (backend_counter counts it).
	BackendFamily bool   `json:"backend_family,omitempty"`
	Port          uint16 `json:"port"`
	Packet        string `json:"packet,omitempty"` // hex, sent only
}

// StateMirror is the name of the state whose rules mirror (docs/pipeline.md
// §10); a target without mirroring skips its cases.
const StateMirror = "mirror"

// StateVLAN is the name of the state with 802.1Q port entries (vlan_accept,
// port_vlan; docs/pipeline.md §1, §8).
const StateVLAN = "vlan"

// Load reads a vectors file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, b)
}

// Frame returns the case's input frame.
func (c *Case) Frame() ([]byte, error) { return hex.DecodeString(c.Packet) }

// Model converts s into the reference model's tables.
func (s *State) Model() (*model.State, error) {
	m := model.NewState()
	for _, v := range s.VIP {
		a, err := ipv4(v.DstAddr)
		if err != nil {
			return nil, err
		}
		m.VIPs[a] = model.VIP{ID: v.VIPID, DefaultPool: v.DefaultPool}
	}
	for _, v := range s.VIPv6 {
		a, err := ipv6(v.DstAddr)
		if err != nil {
			return nil, err
		}
		m.VIPsV6[a] = model.VIP{ID: v.VIPID, DefaultPool: v.DefaultPool}
	}
	for _, t := range s.VNITenant {
		m.Tenants[t.VNI] = t.TenantID
	}
	for i, r := range s.GrayRules {
		g, err := r.Model()
		if err != nil {
			return nil, fmt.Errorf("gray_rules[%d]: %w", i, err)
		}
		m.GrayRules = append(m.GrayRules, g)
	}
	for i, r := range s.GrayRulesV6 {
		g, err := r.ModelV6()
		if err != nil {
			return nil, fmt.Errorf("gray_rules_v6[%d]: %w", i, err)
		}
		m.GrayRulesV6 = append(m.GrayRulesV6, g)
	}
	for _, p := range s.PoolHash {
		m.PoolHash[p.PoolID] = pipeline.FlowKey{VNI: p.VNIMask, Tenant: p.TenantMask, Src: p.SrcMask,
			Dst: p.DstMask, Proto: p.ProtoMask, SPort: p.SPortMask, DPort: p.DPortMask}
	}
	for _, f := range s.BackendSelect {
		if len(f.Fill) == 0 {
			continue
		}
		for b := 0; b < pipeline.Buckets; b++ {
			m.BackendSelect[model.SelectKey{Pool: f.PoolID, Bucket: uint16(b)}] = f.Fill[b%len(f.Fill)]
		}
	}
	for _, b := range s.Backend {
		be, err := b.Model()
		if err != nil {
			return nil, err
		}
		m.Backends[b.BackendID] = be
	}
	for _, v := range s.VLANAccept {
		m.VLANAccept[model.PortVID{Port: v.IngressPort, VID: v.VID}] = true
	}
	for _, v := range s.PortVLAN {
		m.PortVLAN[v.EgressPort] = v.VID
	}
	return m, nil
}

// Model converts a rule entry.
func (r *RuleEntry) Model() (model.GrayRule, error) {
	g := model.GrayRule{Priority: r.Priority}
	for name := range r.Match {
		if !slices.Contains(pipeline.Names(pipeline.GrayRulesMatch...), name) {
			return g, fmt.Errorf("unknown match field %q", name)
		}
	}
	// key is the flow fields' values (part: Ternary.Value) or masks; a field
	// left out is 0 in both (matches anything).
	key := func(part func(Ternary) uint64) pipeline.FlowKey {
		f := func(field pipeline.Field) uint64 { return part(r.Match[field.Name]) }
		return pipeline.FlowKey{VNI: uint32(f(pipeline.MatchVNI)), Tenant: uint16(f(pipeline.MatchTenantID)),
			Src: uint32(f(pipeline.MatchInnerSrc)), Dst: uint32(f(pipeline.MatchInnerDst)), Proto: uint8(f(pipeline.MatchInnerProto)),
			SPort: uint16(f(pipeline.MatchInnerSPort)), DPort: uint16(f(pipeline.MatchInnerDPort))}
	}
	g.Match, g.Mask = key(func(t Ternary) uint64 { return t.Value }), key(func(t Ternary) uint64 { return t.Mask })
	vip := r.Match[pipeline.MatchVIPID.Name]
	g.VIPID, g.VIPMask = uint16(vip.Value), uint16(vip.Mask)
	switch r.Action {
	case "set_pool":
		g.Action, g.Pool = model.SetPool, uint16(r.Params[pipeline.ParamPoolID.Name])
	case "split_pool":
		g.Action, g.Pool, g.Threshold = model.SplitPool, uint16(r.Params[pipeline.ParamPoolGray.Name]), uint16(r.Params[pipeline.ParamThreshold.Name])
	case "set_pool_mirror":
		g.Action, g.Pool = model.SetPoolMirror, uint16(r.Params[pipeline.ParamPoolID.Name])
		g.MirrorPool = uint16(r.Params[pipeline.ParamMirrorPool.Name])
		g.Sample = uint16(r.Params[pipeline.ParamSample.Name])
		g.MirrorID = uint16(r.Params[pipeline.ParamMirrorID.Name])
	default:
		return g, fmt.Errorf("unknown action %q", r.Action)
	}
	return g, nil
}

// ModelV6 converts a gray_rules_v6 entry: inner_src and inner_dst from
// Match6, the other fields from Match as for gray_rules; set_pool_v6 or
// split_pool_v6.
func (r *RuleEntry) ModelV6() (model.GrayRuleV6, error) {
	for name := range r.Match {
		if name == pipeline.MatchInnerSrc.Name || name == pipeline.MatchInnerDst.Name {
			return model.GrayRuleV6{}, fmt.Errorf("%s is 128 bits in gray_rules_v6: it goes in match6", name)
		}
	}
	v4 := *r // the fields both tables share, under gray_rules' action names
	switch r.Action {
	case "set_pool_v6":
		v4.Action = "set_pool"
	case "split_pool_v6":
		v4.Action = "split_pool"
	default:
		return model.GrayRuleV6{}, fmt.Errorf("action %q not in gray_rules_v6", r.Action)
	}
	g4, err := v4.Model()
	if err != nil {
		return model.GrayRuleV6{}, err
	}
	six := func(k pipeline.FlowKey) pipeline.FlowKey6 {
		return pipeline.FlowKey6{VNI: k.VNI, Tenant: k.Tenant, Proto: k.Proto, SPort: k.SPort, DPort: k.DPort}
	}
	g := model.GrayRuleV6{Priority: g4.Priority, VIPID: g4.VIPID, VIPMask: g4.VIPMask, Match: six(g4.Match), Mask: six(g4.Mask),
		Action: g4.Action, Pool: g4.Pool, Threshold: g4.Threshold}
	for name, t := range r.Match6 {
		v, err := ipv6(t.Value)
		if err != nil {
			return g, err
		}
		m, err := ipv6(t.Mask)
		if err != nil {
			return g, err
		}
		switch name {
		case pipeline.MatchInnerSrc.Name:
			g.Match.Src, g.Mask.Src = v, m
		case pipeline.MatchInnerDst.Name:
			g.Match.Dst, g.Mask.Dst = v, m
		default:
			return g, fmt.Errorf("unknown IPv6 match field %q", name)
		}
	}
	return g, nil
}

// Model converts a backend entry.
func (b *BackendEntry) Model() (model.Backend, error) {
	var be model.Backend
	a, err := netip.ParseAddr(b.UnderlayIP)
	if err != nil || a.Zone() != "" {
		return be, fmt.Errorf("testvectors: bad underlay address %q", b.UnderlayIP)
	}
	smac, err := net.ParseMAC(b.SMAC)
	if err != nil {
		return be, err
	}
	dmac, err := net.ParseMAC(b.DMAC)
	if err != nil {
		return be, err
	}
	be.Port = b.Port
	if a.Is4() {
		be.UnderlayIP = binary.BigEndian.Uint32(a.AsSlice())
	} else {
		be.IPv6, be.UnderlayIPv6 = true, a.As16()
	}
	copy(be.SMAC[:], smac)
	copy(be.DMAC[:], dmac)
	return be, nil
}

func ipv4(s string) (uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("testvectors: bad IPv4 address %q", s)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

func ipv6(s string) ([16]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return [16]byte{}, fmt.Errorf("testvectors: bad IPv6 address %q", s)
	}
	return a.As16(), nil
}

// ExpectFrom records a model result as an expectation.
func ExpectFrom(r model.Result) Expect {
	e := Expect{Verdict: r.Verdict.String(), Reason: r.Reason.String(), Rule: r.Rule}
	if r.Verdict == model.Forward {
		e.Port, e.Packet = r.Port, hex.EncodeToString(r.Frame)
	}
	if r.VIPHit {
		e.VIPID = r.VIP.ID
	}
	e.TenantID, e.Pool, e.SplitHash = r.Flow.Tenant, r.Pool, r.SplitHash
	if r.CRC != 0 || r.Bucket != 0 || r.Verdict == model.Forward || r.Reason == pipeline.NoBackend || r.Reason == pipeline.BackendFamily {
		k := r.HashKey.Bytes()
		e.HashKey, e.CRC, e.Bucket = hex.EncodeToString(k[:]), r.CRC, r.Bucket
		if r.IPv6 {
			k6 := r.HashKey6.Bytes()
			e.HashKey = hex.EncodeToString(k6[:])
		}
	}
	if r.IPv6 {
		e.IPv6, e.Rule = true, r.RuleV6
	}
	e.BackendID = r.BackendID
	if c := r.Copy; c != nil {
		k := c.HashKey.Bytes()
		e.Copy = &ExpectCopy{MirrorID: c.MirrorID, Pool: c.Pool, HashKey: hex.EncodeToString(k[:]), CRC: c.CRC,
			Bucket: c.Bucket, BackendID: c.BackendID, Sent: c.Sent, BackendFamily: c.BackendFamily, Port: c.Port}
		if c.Sent {
			e.Copy.Packet = hex.EncodeToString(c.Frame)
		}
	}
	return e
}
