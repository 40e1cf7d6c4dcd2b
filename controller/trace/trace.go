// Package trace answers "where does this flow go, and why?" for one gateway:
// it runs the reference model (package model) over the entries read back from
// the gateway and explains each step of the decision (docs/pipeline.md): the
// VIP, the tenant, every gray rule by priority and why it did or did not
// decide, the pool, the hash key, the bucket, the backend and the rewrite. The
// same flow traced over the entries the intent wants tells whether the
// gateway decides as the intent says (graygw trace, docs/cli.md).
package trace

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// ErrQuery: the flow to trace is not one a gateway could receive.
var ErrQuery = errors.New("trace: bad flow")

// Field names of the flow, as the query and the explanations use them.
const (
	FieldVNI    = "vni"
	FieldTenant = "tenant"
	FieldSrc    = "src"
	FieldDst    = "dst"
	FieldProto  = "proto"
	FieldSPort  = "sport"
	FieldDPort  = "dport"
	FieldVIPID  = "vip_id" // a gray rule's VIP
)

// Query is the flow to trace: what the gateway parses out of a frame (the
// inner headers of VXLAN traffic, the outer ones of plain traffic).
type Query struct {
	// Plain: not VXLAN. Its destination is the VIP; VNI is 0.
	Plain bool
	VNI   uint32
	Src   netip.Addr
	// Dst is the inner destination (ignored for plain traffic: the VIP).
	Dst          netip.Addr // invalid: not given, traced as 0.0.0.0
	Proto        uint8      // 1 (ICMP), 6 (TCP), 17 (UDP), or any other
	SPort, DPort uint16     // TCP and UDP only
	// Open names the fields the query left open (FieldDst, FieldProto,
	// FieldSPort, FieldDPort): they are traced as 0 (an IPv6 flow's
	// protocol as 59, no next header), and an explanation that depends on
	// one says so.
	Open []string
	// VIP is the intent name of the VIP the flow is sent to; "" traces the
	// flow to every VIP the gateway holds or should hold.
	VIP string
	// AllRules lists every gray rule in a Path; otherwise the rules that
	// miss the flow on its VIP, VNI or tenant (other traffic than the
	// flow's VPC) are only counted (Path.OtherRules).
	AllRules bool
}

// Check reports whether q is a flow a gateway could receive.
func (q *Query) Check() error {
	switch {
	case !q.Src.IsValid() || q.Src.Zone() != "" || q.Src.Is4In6():
		return fmt.Errorf("%w: the source must be an IPv4 or IPv6 address", ErrQuery)
	case q.Dst.IsValid() && (q.Dst.Is4() != q.Src.Is4() || q.Dst.Zone() != "" || q.Dst.Is4In6()):
		return fmt.Errorf("%w: the destination must be an address of the source's family", ErrQuery)
	case q.VNI > pipeline.MaxVNI:
		return fmt.Errorf("%w: vni %d: want at most %d", ErrQuery, q.VNI, pipeline.MaxVNI)
	case q.Plain && q.VNI != 0:
		return fmt.Errorf("%w: plain (non-VXLAN) traffic has no vni", ErrQuery)
	case q.Proto != testpkt.ProtoTCP && q.Proto != testpkt.ProtoUDP && (q.SPort != 0 || q.DPort != 0):
		return fmt.Errorf("%w: ports only with tcp or udp", ErrQuery)
	case q.Plain && q.Proto == testpkt.ProtoUDP && q.DPort == pipeline.VXLANPort:
		return fmt.Errorf("%w: udp to port %d is VXLAN, not plain traffic: give its vni and inner flow", ErrQuery, pipeline.VXLANPort)
	}
	for _, f := range q.Open {
		switch f {
		case FieldDst, FieldProto, FieldSPort, FieldDPort:
		default:
			return fmt.Errorf("%w: field %q cannot be left open", ErrQuery, f)
		}
	}
	return nil
}

func (q *Query) open(field string) bool {
	for _, f := range q.Open {
		if f == field {
			return true
		}
	}
	return false
}

// dst is the traced inner destination (0.0.0.0 or :: when not given).
func (q *Query) dst() netip.Addr {
	if q.Dst.IsValid() {
		return q.Dst
	}
	return unspecified(q.Src)
}

// proto is the traced protocol: q.Proto, except an open one of an IPv6 flow,
// traced as 59 (no next header): IPv6's next header 0 is a hop-by-hop
// options header, which the gateway drops (INNER_IPV6_EXTENSION).
func (q *Query) proto() uint8 {
	if q.Src.Is6() && q.open(FieldProto) {
		return protoNoNextHeader
	}
	return q.Proto
}

// protoNoNextHeader is IPv6's "no next header" (RFC 8200).
const protoNoNextHeader = 59

// Reaches says whether the flow can be sent to vip: plain traffic only to a
// VIP of its own family (its outer header is the flow's); VXLAN carries
// either family to either.
func (q *Query) Reaches(vip netip.Addr) bool {
	return !q.Plain || vip.Is4() == q.Src.Is4()
}

// frame is the frame that carries q to vip: plain, or VXLAN over the VIP's
// family with an inner frame of the flow's.
func (q *Query) frame(vip netip.Addr) []byte {
	eth := testpkt.Eth{Dst: [6]byte{0x02, 0, 0, 0, 0, 1}, Src: [6]byte{0x02, 0, 0, 0, 0, 2}}
	l4 := testpkt.L4{Proto: q.proto(), SPort: q.SPort, DPort: q.DPort}
	if q.Plain && q.Src.Is6() {
		return testpkt.Plain6(eth, testpkt.IP6{Src: q.Src, Dst: vip}, l4)
	}
	if q.Plain {
		return testpkt.Plain(eth, testpkt.IP{Src: q.Src, Dst: vip}, l4)
	}
	var inner []byte
	if q.Src.Is6() {
		inner = testpkt.Inner6(eth, testpkt.IP6{Src: q.Src, Dst: q.dst()}, l4)
	} else {
		inner = testpkt.Inner(eth, testpkt.IP{Src: q.Src, Dst: q.dst()}, l4)
	}
	// The outer source (the sender's VTEP) and UDP source port do not enter
	// the decision; the gateway keeps both.
	if vip.Is6() {
		return testpkt.VXLAN6(eth, testpkt.IP6{Src: netip.IPv6Unspecified(), Dst: vip}, 49152, q.VNI, inner)
	}
	return testpkt.VXLAN(eth, testpkt.IP{Src: netip.IPv4Unspecified(), Dst: vip}, 49152, q.VNI, inner)
}

// unspecified is 0.0.0.0 or :: by a's family.
func unspecified(a netip.Addr) netip.Addr {
	if a.Is6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Path is the decision for the flow sent to one VIP, step by step, over one
// set of tables.
type Path struct {
	VIP     string `json:"vip" yaml:"vip"` // intent name, or the address when no name is known
	Address string `json:"address" yaml:"address"`
	VIPID   uint16 `json:"vip_id" yaml:"vip_id"`
	// Verdict is "forward", "drop" or "pass" (not for this gateway); Reason
	// the drop reason (docs/pipeline.md §9), "" when forwarded.
	Verdict string `json:"verdict" yaml:"verdict"`
	Reason  string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// Tenant is the VNI's tenant (vni_tenant); "" and 0 on a miss.
	Tenant   string `json:"tenant,omitempty" yaml:"tenant,omitempty"`
	TenantID uint16 `json:"tenant_id" yaml:"tenant_id"`
	// Rules are the gray rules of the tables, highest priority first (ties
	// in table order, as the pipeline breaks them), each with its verdict:
	// every rule with Query.AllRules, else those that match the flow or miss
	// it only on addresses, protocol or ports. OtherRules counts the rest
	// (they miss it on the VIP, VNI or tenant: other VPCs' rules).
	Rules      []RuleCheck `json:"rules" yaml:"rules"`
	OtherRules int         `json:"other_rules" yaml:"other_rules"`
	// Rule is the name of the rule that decided, "" for none (the VIP's
	// default pool).
	Rule string `json:"rule,omitempty" yaml:"rule,omitempty"`
	// Pool is the pool that serves the flow, PoolID its dataplane id (a
	// version slot: id or id+32768).
	Pool   string `json:"pool,omitempty" yaml:"pool,omitempty"`
	PoolID uint16 `json:"pool_id" yaml:"pool_id"`
	// SplitHash is the VM's sticky split hash, for split and mirror rules.
	SplitHash *uint16 `json:"split_hash,omitempty" yaml:"split_hash,omitempty"`
	// HashFields are the fields the pool hashes on; HashKey the 18 masked
	// key bytes (hex: vni(3) tenant(2) src(4) dst(4) proto(1) sport(2)
	// dport(2)); CRC its CRC32 and Bucket CRC & 4095.
	HashFields []string `json:"hash_fields,omitempty" yaml:"hash_fields,omitempty"`
	HashKey    string   `json:"hash_key,omitempty" yaml:"hash_key,omitempty"`
	CRC        uint32   `json:"crc32" yaml:"crc32"`
	Bucket     uint16   `json:"bucket" yaml:"bucket"`
	// Backend is the backend_select entry's backend, by name.
	Backend   string `json:"backend,omitempty" yaml:"backend,omitempty"`
	BackendID uint16 `json:"backend_id" yaml:"backend_id"`
	// Rewrite is what the gateway sends, when it forwards.
	Rewrite *Rewrite `json:"rewrite,omitempty" yaml:"rewrite,omitempty"`
	// Mirror is the mirror copy, when a mirror rule decided.
	Mirror *Mirror `json:"mirror,omitempty" yaml:"mirror,omitempty"`
	// Notes say what the decision depends on that the query left open.
	Notes []string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// RuleCheck is one gray rule's part in the decision.
type RuleCheck struct {
	Name     string `json:"name" yaml:"name"`
	Priority int32  `json:"priority" yaml:"priority"`
	// Action is set_pool, split_pool or set_pool_mirror; Pool its pool.
	Action string `json:"action" yaml:"action"`
	Pool   string `json:"pool" yaml:"pool"`
	// Matched: the rule's key matches the flow. Decided: it is the one that
	// decided (the highest-priority match).
	Matched bool `json:"matched" yaml:"matched"`
	Decided bool `json:"decided" yaml:"decided"`
	// Why says why it did not match, or did not decide, or what it did;
	// Mismatch names the fields that did not match (FieldVIPID, FieldVNI...).
	Why      string   `json:"why" yaml:"why"`
	Mismatch []string `json:"mismatch,omitempty" yaml:"mismatch,omitempty"`
}

// Rewrite is the frame the gateway sends (docs/pipeline.md §8).
type Rewrite struct {
	Port   uint16 `json:"port" yaml:"port"`
	SrcMAC string `json:"src_mac" yaml:"src_mac"`
	DstMAC string `json:"dst_mac" yaml:"dst_mac"`
	// OuterSrc is kept: the sender's (for VXLAN, its VTEP, which the trace
	// does not know); OuterDst is the backend's underlay address, replacing
	// the VIP.
	OuterSrc string `json:"outer_src" yaml:"outer_src"`
	OuterDst string `json:"outer_dst" yaml:"outer_dst"`
	// SPort and DPort are the outer UDP (VXLAN) or transport ports, kept as
	// they came; for VXLAN SPort is 0 here: the sender's entropy port, which
	// the trace does not know.
	SPort uint16 `json:"sport" yaml:"sport"`
	DPort uint16 `json:"dport" yaml:"dport"`
	// TTL is decremented by one.
	TTL uint8 `json:"ttl" yaml:"ttl"`
}

// Mirror is a mirror copy's path (docs/pipeline.md §10).
type Mirror struct {
	Sampled   bool   `json:"sampled" yaml:"sampled"`
	Pool      string `json:"pool" yaml:"pool"`
	Bucket    uint16 `json:"bucket" yaml:"bucket"`
	Backend   string `json:"backend,omitempty" yaml:"backend,omitempty"`
	BackendID uint16 `json:"backend_id" yaml:"backend_id"`
}

// Outcome is the short form of a Path, to compare two of them.
type Outcome struct {
	Verdict string `json:"verdict" yaml:"verdict"`
	Reason  string `json:"reason,omitempty" yaml:"reason,omitempty"`
	Rule    string `json:"rule,omitempty" yaml:"rule,omitempty"`
	Pool    string `json:"pool,omitempty" yaml:"pool,omitempty"`
	Backend string `json:"backend,omitempty" yaml:"backend,omitempty"`
}

// Outcome returns p's outcome.
func (p *Path) Outcome() Outcome {
	return Outcome{Verdict: p.Verdict, Reason: p.Reason, Rule: p.Rule, Pool: p.Pool, Backend: p.Backend}
}

// String writes o on one line.
func (o Outcome) String() string {
	if o.Verdict != model.Forward.String() {
		return o.Verdict + " " + o.Reason
	}
	rule := "no rule"
	if o.Rule != "" {
		rule = "rule " + o.Rule
	}
	return fmt.Sprintf("%s, pool %s, backend %s", rule, o.Pool, o.Backend)
}

// Tables is one set of table entries loaded for tracing: the model's state
// and the names of what it holds, from the entries' origins.
type Tables struct {
	state    *model.State
	rules    []string // parallel to state.GrayRules
	rules6   []string // parallel to state.GrayRulesV6
	vips     map[netip.Addr]string
	vipAddrs map[string]netip.Addr // name -> address
	tenants  map[uint16]string
	pools    map[uint16]string
	backends map[uint16]string
}

// Load loads entries (as read back, or as wanted) for tracing. Names come
// from the entries' Origin ("rule NAME", "vip NAME", "pool NAME vN"...); an
// entry without one is named by its id ("backend-id-12", "rule@prio-100").
func Load(entries []compile.Entry) (*Tables, error) {
	st, err := compile.ToModel(entries)
	if err != nil {
		return nil, err
	}
	t := &Tables{state: st, vips: map[netip.Addr]string{}, vipAddrs: map[string]netip.Addr{}, tenants: map[uint16]string{},
		pools: map[uint16]string{}, backends: map[uint16]string{}}
	for i := range entries {
		en := &entries[i]
		kind, name, _ := strings.Cut(en.Origin, " ")
		switch en.Table {
		case pipeline.TableGrayRules, pipeline.TableGrayRulesV6:
			if kind != "rule" || name == "" {
				name = fmt.Sprintf("rule@prio-%d", en.Priority)
			}
			if en.Table == pipeline.TableGrayRules {
				t.rules = append(t.rules, name)
			} else {
				t.rules6 = append(t.rules6, name)
			}
		case pipeline.TableVIP, pipeline.TableVIPv6:
			m, ok := en.Field(pipeline.MatchDstAddr.Name)
			a, aok := netip.AddrFromSlice(m.Value)
			if ok && aok && kind == "vip" {
				t.vips[a] = name
				t.vipAddrs[name] = a
			}
		case pipeline.TableVNITenant:
			if p, ok := en.Param(pipeline.ParamTenantID.Name); ok && kind == "tenant" {
				t.tenants[uint16(compile.Uint(p.Value))] = name
			}
		case pipeline.TablePoolHash, pipeline.TableBackendSelect:
			if m, ok := en.Field(pipeline.MatchPoolID.Name); ok && kind == "pool" {
				pool, _, _ := strings.Cut(name, " ") // "NAME vN": the version is in the pool_id
				t.pools[uint16(compile.Uint(m.Value))] = pool
			}
		case pipeline.TableBackend:
			if m, ok := en.Field(pipeline.MatchBackendID.Name); ok && kind == "backend" {
				t.backends[uint16(compile.Uint(m.Value))] = name
			}
		}
	}
	return t, nil
}

// VIPs returns the addresses of the VIPs named name ("" every VIP) in t.
func (t *Tables) VIPs(name string) []netip.Addr {
	var out []netip.Addr
	for a := range t.state.VIPs {
		if name == "" || t.vips[addr(a)] == name {
			out = append(out, addr(a))
		}
	}
	for a := range t.state.VIPsV6 {
		if name == "" || t.vips[netip.AddrFrom16(a)] == name {
			out = append(out, netip.AddrFrom16(a))
		}
	}
	return out
}

// VIPAddress returns the address of the VIP named name in t.
func (t *Tables) VIPAddress(name string) (netip.Addr, bool) {
	a, ok := t.vipAddrs[name]
	return a, ok
}

// VIPName returns the name of the VIP at a in t ("" when t has none).
func (t *Tables) VIPName(a netip.Addr) string { return t.vips[a] }

func (t *Tables) pool(id uint16) string {
	if n, ok := t.pools[id]; ok {
		return n
	}
	return fmt.Sprintf("pool-id-%d", id)
}

func (t *Tables) backend(id uint16) string {
	if n, ok := t.backends[id]; ok {
		return n
	}
	return fmt.Sprintf("backend-id-%d", id)
}

// Explain traces q sent to vip over t.
func (t *Tables) Explain(q *Query, vip netip.Addr) Path {
	r := model.Process(t.state, q.frame(vip))
	p := Path{Address: vip.String(), Verdict: r.Verdict.String(), Rules: []RuleCheck{}}
	if r.Verdict != model.Forward {
		p.Reason = r.Reason.String()
	}
	p.VIP = t.vips[vip]
	if p.VIP == "" {
		p.VIP = vip.String()
	}
	if !r.VIPHit {
		return p
	}
	p.VIPID = r.VIP.ID
	if r.Verdict == model.Drop && r.Reason != pipeline.NoBackend && r.Reason != pipeline.BackendFamily {
		return p // dropped before the tables (parse, TTL)
	}
	p.TenantID = r.Flow.Tenant
	if _, ok := t.state.Tenants[r.Flow.VNI]; ok {
		p.Tenant = t.tenants[r.Flow.Tenant]
		if p.Tenant == "" {
			p.Tenant = fmt.Sprintf("tenant-id-%d", r.Flow.Tenant)
		}
	} else if !q.Plain {
		p.Notes = append(p.Notes, fmt.Sprintf("vni %d has no vni_tenant entry: tenant 0", r.Flow.VNI))
	}
	rows, winner := t.ruleRows(q, r)
	p.Rules, p.OtherRules = t.explainRules(q, r, rows, winner)
	if p.Rules == nil {
		p.Rules = []RuleCheck{}
	}
	p.PoolID = r.Pool
	p.Pool = t.pool(r.Pool)
	if winner >= 0 {
		p.Rule = rows[winner].name
		if a := rows[winner].action; a == model.SplitPool || a == model.SetPoolMirror {
			h := r.SplitHash
			p.SplitHash = &h
		}
	}
	mask, ok := t.state.PoolHash[r.Pool]
	if !ok {
		mask = pipeline.AllOnes
	}
	p.HashFields = maskFields(mask)
	if r.IPv6 {
		key := r.HashKey6.Bytes()
		p.HashKey = fmt.Sprintf("%x", key[:])
	} else {
		key := r.HashKey.Bytes()
		p.HashKey = fmt.Sprintf("%x", key[:])
	}
	p.CRC, p.Bucket = r.CRC, r.Bucket
	p.BackendID = r.BackendID
	if id, ok := t.state.BackendSelect[model.SelectKey{Pool: r.Pool, Bucket: r.Bucket}]; ok {
		p.Backend = t.backend(id)
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("pool_id %d has no backend_select entry for bucket %d", r.Pool, r.Bucket))
	}
	if r.Reason == pipeline.BackendFamily {
		p.Notes = append(p.Notes, fmt.Sprintf("backend %s's underlay is not of the VIP's family (%s): the gateway drops the frame", p.Backend, vip))
	}
	if open := openIn(q, mask); len(open) > 0 && r.Verdict == model.Forward {
		p.Notes = append(p.Notes, fmt.Sprintf("the pool hashes on %s, not given: traced as 0 (an IPv6 protocol as 59), another value may pick another backend",
			strings.Join(open, ", ")))
	}
	if r.Verdict == model.Forward {
		p.Rewrite = rewrite(q, r.Frame, r.Port)
	}
	if !r.IPv6 && r.Rule >= 0 && t.state.GrayRules[r.Rule].Action == model.SetPoolMirror && r.Verdict == model.Forward {
		rule := t.state.GrayRules[r.Rule]
		m := &Mirror{Sampled: r.Copy != nil, Pool: t.pool(rule.MirrorPool)}
		if r.Copy != nil {
			m.Bucket, m.BackendID = r.Copy.Bucket, r.Copy.BackendID
			if r.Copy.Sent {
				m.Backend = t.backend(r.Copy.BackendID)
			}
		}
		if vip.Is6() {
			p.Notes = append(p.Notes, "a frame with an IPv6 outer header is never mirrored")
		}
		p.Mirror = m
	}
	return p
}

// Decide returns the outcome of q sent to vip over t, without the
// explanation: Explain(q, vip).Outcome(), for less.
func (t *Tables) Decide(q *Query, vip netip.Addr) Outcome {
	r := model.Process(t.state, q.frame(vip))
	o := Outcome{Verdict: r.Verdict.String()}
	if r.Verdict != model.Forward {
		o.Reason = r.Reason.String()
	}
	if !r.VIPHit || r.Verdict == model.Drop && r.Reason != pipeline.NoBackend && r.Reason != pipeline.BackendFamily {
		return o
	}
	switch {
	case r.IPv6 && r.RuleV6 >= 0:
		o.Rule = t.rules6[r.RuleV6]
	case !r.IPv6 && r.Rule >= 0:
		o.Rule = t.rules[r.Rule]
	}
	o.Pool = t.pool(r.Pool)
	if id, ok := t.state.BackendSelect[model.SelectKey{Pool: r.Pool, Bucket: r.Bucket}]; ok {
		o.Backend = t.backend(id)
	}
	return o
}

// ternaryKey is a gray rule's key, or a flow (with all-ones masks), of either
// table: addresses big-endian, 4 or 16 bytes; nums are vni, tenant, proto,
// sport and dport.
type ternaryKey struct {
	vip      uint16
	nums     [5]uint64
	src, dst []byte
}

// numFields name ternaryKey.nums.
var numFields = [5]string{FieldVNI, FieldTenant, FieldProto, FieldSPort, FieldDPort}

func key4(vip uint16, k pipeline.FlowKey) ternaryKey {
	a, b := addr(k.Src).As4(), addr(k.Dst).As4()
	return ternaryKey{vip: vip, nums: [5]uint64{uint64(k.VNI), uint64(k.Tenant), uint64(k.Proto), uint64(k.SPort), uint64(k.DPort)},
		src: a[:], dst: b[:]}
}

func key6(vip uint16, k pipeline.FlowKey6) ternaryKey {
	return ternaryKey{vip: vip, nums: [5]uint64{uint64(k.VNI), uint64(k.Tenant), uint64(k.Proto), uint64(k.SPort), uint64(k.DPort)},
		src: slices.Clone(k.Src[:]), dst: slices.Clone(k.Dst[:])}
}

// ruleRow is one entry of the gray rule table a flow is matched against
// (gray_rules for an IPv4 flow, gray_rules_v6 for an IPv6 one).
type ruleRow struct {
	name      string
	prio      int32
	action    model.RuleAction
	pool      uint16
	threshold uint16
	value     ternaryKey
	mask      ternaryKey
	matched   bool
}

// ruleRows are the rules of the table r's flow was matched against, and the
// index of the one that decided (-1: none).
func (t *Tables) ruleRows(q *Query, r model.Result) ([]ruleRow, int) {
	var rows []ruleRow
	if r.IPv6 {
		for i := range t.state.GrayRulesV6 {
			g := &t.state.GrayRulesV6[i]
			rows = append(rows, ruleRow{name: t.rules6[i], prio: g.Priority, action: g.Action, pool: g.Pool, threshold: g.Threshold,
				value: key6(g.VIPID, g.Match), mask: key6(g.VIPMask, g.Mask), matched: g.Matches(r.VIP.ID, r.Flow6)})
		}
		return rows, r.RuleV6
	}
	for i := range t.state.GrayRules {
		g := &t.state.GrayRules[i]
		rows = append(rows, ruleRow{name: t.rules[i], prio: g.Priority, action: g.Action, pool: g.Pool, threshold: g.Threshold,
			value: key4(g.VIPID, g.Match), mask: key4(g.VIPMask, g.Mask), matched: g.Matches(r.VIP.ID, r.Flow)})
	}
	return rows, r.Rule
}

// explainRules explains the gray rules rows for the flow of r (every one
// with q.AllRules) and counts those it leaves out; winner decided.
func (t *Tables) explainRules(q *Query, r model.Result, rows []ruleRow, winner int) (out []RuleCheck, other int) {
	flow := key4(r.VIP.ID, r.Flow)
	if r.IPv6 {
		flow = key6(r.VIP.ID, r.Flow6)
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	// Highest priority first; equal priorities in table order (the model's
	// tie-break: the first one wins).
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rows[b].prio, rows[a].prio) })
	for _, i := range order {
		g := &rows[i]
		if !q.AllRules && i != winner && otherScope(g, flow) {
			other++
			continue
		}
		c := RuleCheck{Name: g.name, Priority: g.prio, Pool: t.pool(g.pool)}
		switch {
		case g.action == model.SetPool && r.IPv6:
			c.Action = pipeline.ActionSetPoolV6
		case g.action == model.SplitPool && r.IPv6:
			c.Action = pipeline.ActionSplitPoolV6
		case g.action == model.SetPool:
			c.Action = pipeline.ActionSetPool
		case g.action == model.SplitPool:
			c.Action = pipeline.ActionSplitPool
		case g.action == model.SetPoolMirror:
			c.Action = pipeline.ActionSetPoolMirror
		}
		c.Action = shortName(c.Action)
		c.Matched = g.matched
		c.Decided = i == winner
		switch {
		case !c.Matched:
			c.Why, c.Mismatch = t.mismatch(q, g, flow)
		case c.Decided && g.action == model.SplitPool && r.SplitHash >= g.threshold:
			c.Why = fmt.Sprintf("decided: split hash %d >= threshold %d, the VM stays on the default pool", r.SplitHash, g.threshold)
		case c.Decided && g.action == model.SplitPool:
			c.Why = fmt.Sprintf("decided: split hash %d < threshold %d, the VM moves to %s", r.SplitHash, g.threshold, c.Pool)
		case c.Decided:
			c.Why = "decided: the highest-priority match"
		default:
			w := &rows[winner]
			if w.prio == g.prio {
				c.Why = fmt.Sprintf("matches, but %s has the same priority and comes first in the table", w.name)
			} else {
				c.Why = fmt.Sprintf("matches, but %s (priority %d) wins", w.name, w.prio)
			}
		}
		out = append(out, c)
	}
	return out, other
}

// otherScope says g misses the flow on its VIP, VNI or tenant: a rule for
// other traffic than the flow's VPC.
func otherScope(g *ruleRow, flow ternaryKey) bool {
	return flow.vip&g.mask.vip != g.value.vip&g.mask.vip || !numMatch(g, flow, 0) || !numMatch(g, flow, 1)
}

func numMatch(g *ruleRow, flow ternaryKey, i int) bool {
	return flow.nums[i]&g.mask.nums[i] == g.value.nums[i]&g.mask.nums[i]
}

// mismatch says which fields of g's key the flow does not match, in words
// and by name.
func (t *Tables) mismatch(q *Query, g *ruleRow, flow ternaryKey) (string, []string) {
	var why, fields []string
	if flow.vip&g.mask.vip != g.value.vip&g.mask.vip {
		why = append(why, fmt.Sprintf("for vip_id %d, not %d", g.value.vip, flow.vip))
		fields = append(fields, FieldVIPID)
	}
	miss := func(name, got, want string) {
		fields = append(fields, name)
		s := fmt.Sprintf("%s %s, rule wants %s", name, got, want)
		if q.open(name) {
			s += fmt.Sprintf(" (%s not given: traced as %s)", name, got)
		}
		why = append(why, s)
	}
	num := func(i int) {
		if !numMatch(g, flow, i) {
			miss(numFields[i], fmt.Sprint(flow.nums[i]), showMasked(g.value.nums[i], g.mask.nums[i]))
		}
	}
	address := func(name string, v, want, m []byte) {
		if !maskedEqual(v, want, m) {
			miss(name, showAddr(v), showPrefix(want, m))
		}
	}
	num(0)
	if !numMatch(g, flow, 1) {
		tenant := func(v uint64) string {
			if n := t.tenants[uint16(v)]; n != "" {
				return fmt.Sprintf("%d (%s)", v, n)
			}
			return fmt.Sprint(v)
		}
		miss(FieldTenant, tenant(flow.nums[1]), tenant(g.value.nums[1]&g.mask.nums[1]))
	}
	address(FieldSrc, flow.src, g.value.src, g.mask.src)
	address(FieldDst, flow.dst, g.value.dst, g.mask.dst)
	num(2)
	num(3)
	num(4)
	return "no match: " + strings.Join(why, "; "), fields
}

func maskedEqual(a, b, m []byte) bool {
	for i := range m {
		if a[i]&m[i] != b[i]&m[i] {
			return false
		}
	}
	return true
}

func showAddr(b []byte) string {
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

// showPrefix writes a ternary address: the address under a full mask, a
// prefix under a contiguous one, address/mask otherwise.
func showPrefix(v, m []byte) string {
	masked, prefix := make([]byte, len(v)), make([]byte, len(m))
	ones := 0
	for i := range v {
		masked[i] = v[i] & m[i]
		ones += bits.OnesCount8(m[i])
	}
	for i := 0; i < ones; i++ {
		prefix[i/8] |= 0x80 >> (i % 8)
	}
	a := showAddr(masked)
	switch {
	case !slices.Equal(m, prefix):
		return a + "/" + showAddr(m)
	case ones == len(m)*8:
		return a
	}
	return fmt.Sprintf("%s/%d", a, ones)
}

// showMasked writes a ternary number: the value under a full mask,
// value/mask otherwise.
func showMasked(v, m uint64) string {
	switch m {
	case 0xff, 0xffff, 0xffffff, 0xffffffff:
		return fmt.Sprint(v & m)
	}
	return fmt.Sprintf("%d/%#x", v&m, m)
}

// rewrite reads what the gateway sends out of the rewritten frame: its
// outer header is IPv4 or IPv6 (the VIP's family; the Ethernet type tells).
func rewrite(q *Query, out []byte, port uint16) *Rewrite {
	mac := func(b []byte) string {
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
	}
	ip := out[14:]
	rw := &Rewrite{Port: port, DstMAC: mac(out[0:6]), SrcMAC: mac(out[6:12]), OuterSrc: "kept (the sender's)"}
	var proto uint8
	var l4 []byte
	if out[12] == 0x86 && out[13] == 0xdd {
		rw.TTL, proto, l4 = ip[7], ip[6], ip[40:]
		rw.OuterDst = netip.AddrFrom16([16]byte(ip[24:40])).String()
	} else {
		rw.TTL, proto, l4 = ip[8], ip[9], ip[20:]
		rw.OuterDst = netip.AddrFrom4([4]byte(ip[16:20])).String()
	}
	if q.Plain {
		rw.OuterSrc = q.Src.String()
	}
	if proto == testpkt.ProtoTCP || proto == testpkt.ProtoUDP {
		rw.SPort, rw.DPort = uint16(l4[0])<<8|uint16(l4[1]), uint16(l4[2])<<8|uint16(l4[3])
		if !q.Plain {
			rw.SPort = 0 // the sender's entropy port, kept
		}
	}
	return rw
}

// maskFields names the fields a pool_hash mask keeps.
func maskFields(m pipeline.FlowKey) []string {
	var out []string
	for _, f := range []struct {
		name string
		on   bool
	}{
		{FieldVNI, m.VNI != 0}, {FieldTenant, m.Tenant != 0}, {FieldSrc, m.Src != 0}, {FieldDst, m.Dst != 0},
		{FieldProto, m.Proto != 0}, {FieldSPort, m.SPort != 0}, {FieldDPort, m.DPort != 0},
	} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return out
}

// openIn returns the open fields of q the mask hashes on.
func openIn(q *Query, m pipeline.FlowKey) []string {
	var out []string
	for _, f := range maskFields(m) {
		if q.open(f) {
			out = append(out, f)
		}
	}
	return out
}

func shortName(action string) string {
	if i := strings.LastIndexByte(action, '.'); i >= 0 {
		return action[i+1:]
	}
	return action
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
