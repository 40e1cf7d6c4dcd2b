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
	// FieldSPort, FieldDPort): they are traced as 0, and an explanation
	// that depends on one says so.
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
	case !q.Src.Is4():
		return fmt.Errorf("%w: the source must be an IPv4 address", ErrQuery)
	case q.Dst.IsValid() && !q.Dst.Is4():
		return fmt.Errorf("%w: the destination must be an IPv4 address", ErrQuery)
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

// dst is the traced inner destination (0.0.0.0 when not given).
func (q *Query) dst() netip.Addr {
	if q.Dst.IsValid() {
		return q.Dst
	}
	return netip.IPv4Unspecified()
}

// frame is the frame that carries q to vip.
func (q *Query) frame(vip netip.Addr) []byte {
	eth := testpkt.Eth{Dst: [6]byte{0x02, 0, 0, 0, 0, 1}, Src: [6]byte{0x02, 0, 0, 0, 0, 2}}
	l4 := testpkt.L4{Proto: q.Proto, SPort: q.SPort, DPort: q.DPort}
	if q.Plain {
		return testpkt.Plain(eth, testpkt.IP{Src: q.Src, Dst: vip}, l4)
	}
	inner := testpkt.Inner(eth, testpkt.IP{Src: q.Src, Dst: q.dst()}, l4)
	// The outer source (the sender's VTEP) and UDP source port do not enter
	// the decision; the gateway keeps both.
	return testpkt.VXLAN(eth, testpkt.IP{Src: netip.IPv4Unspecified(), Dst: vip}, 49152, q.VNI, inner)
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
	vips     map[uint32]string
	vipAddrs map[string]uint32 // name -> address
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
	t := &Tables{state: st, vips: map[uint32]string{}, vipAddrs: map[string]uint32{}, tenants: map[uint16]string{},
		pools: map[uint16]string{}, backends: map[uint16]string{}}
	for i := range entries {
		en := &entries[i]
		kind, name, _ := strings.Cut(en.Origin, " ")
		switch en.Table {
		case pipeline.TableGrayRules:
			if kind != "rule" || name == "" {
				name = fmt.Sprintf("rule@prio-%d", en.Priority)
			}
			t.rules = append(t.rules, name)
		case pipeline.TableVIP:
			if m, ok := en.Field(pipeline.MatchDstAddr.Name); ok && kind == "vip" {
				t.vips[uint32(compile.Uint(m.Value))] = name
				t.vipAddrs[name] = uint32(compile.Uint(m.Value))
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
		if name == "" || t.vips[a] == name {
			out = append(out, addr(a))
		}
	}
	return out
}

// VIPAddress returns the address of the VIP named name in t.
func (t *Tables) VIPAddress(name string) (netip.Addr, bool) {
	a, ok := t.vipAddrs[name]
	return addr(a), ok
}

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
	p.VIP = t.vips[uint32FromAddr(vip)]
	if p.VIP == "" {
		p.VIP = vip.String()
	}
	if !r.VIPHit {
		return p
	}
	p.VIPID = r.VIP.ID
	if r.Verdict == model.Drop && r.Reason != pipeline.NoBackend {
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
	p.Rules, p.OtherRules = t.explainRules(q, r)
	if p.Rules == nil {
		p.Rules = []RuleCheck{}
	}
	p.PoolID = r.Pool
	p.Pool = t.pool(r.Pool)
	if r.Rule >= 0 {
		p.Rule = t.rules[r.Rule]
		if a := t.state.GrayRules[r.Rule].Action; a == model.SplitPool || a == model.SetPoolMirror {
			h := r.SplitHash
			p.SplitHash = &h
		}
	}
	mask, ok := t.state.PoolHash[r.Pool]
	if !ok {
		mask = pipeline.AllOnes
	}
	p.HashFields = maskFields(mask)
	key := r.HashKey.Bytes()
	p.HashKey = fmt.Sprintf("%x", key[:])
	p.CRC, p.Bucket = r.CRC, r.Bucket
	p.BackendID = r.BackendID
	if id, ok := t.state.BackendSelect[model.SelectKey{Pool: r.Pool, Bucket: r.Bucket}]; ok {
		p.Backend = t.backend(id)
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("pool_id %d has no backend_select entry for bucket %d", r.Pool, r.Bucket))
	}
	if open := openIn(q, mask); len(open) > 0 && r.Verdict == model.Forward {
		p.Notes = append(p.Notes, fmt.Sprintf("the pool hashes on %s, not given: traced as 0, another value may pick another backend",
			strings.Join(open, ", ")))
	}
	if r.Verdict == model.Forward {
		p.Rewrite = rewrite(q, r.Frame, r.Port)
	}
	if r.Rule >= 0 && t.state.GrayRules[r.Rule].Action == model.SetPoolMirror && r.Verdict == model.Forward {
		rule := t.state.GrayRules[r.Rule]
		m := &Mirror{Sampled: r.Copy != nil, Pool: t.pool(rule.MirrorPool)}
		if r.Copy != nil {
			m.Bucket, m.BackendID = r.Copy.Bucket, r.Copy.BackendID
			if r.Copy.Sent {
				m.Backend = t.backend(r.Copy.BackendID)
			}
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
	if !r.VIPHit || r.Verdict == model.Drop && r.Reason != pipeline.NoBackend {
		return o
	}
	if r.Rule >= 0 {
		o.Rule = t.rules[r.Rule]
	}
	o.Pool = t.pool(r.Pool)
	if id, ok := t.state.BackendSelect[model.SelectKey{Pool: r.Pool, Bucket: r.Bucket}]; ok {
		o.Backend = t.backend(id)
	}
	return o
}

// explainRules explains the gray rules of t for the flow of r (every one
// with q.AllRules) and counts those it leaves out.
func (t *Tables) explainRules(q *Query, r model.Result) (out []RuleCheck, other int) {
	rules := t.state.GrayRules
	order := make([]int, len(rules))
	for i := range order {
		order[i] = i
	}
	// Highest priority first; equal priorities in table order (the model's
	// tie-break: the first one wins).
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rules[b].Priority, rules[a].Priority) })
	for _, i := range order {
		g := &rules[i]
		if !q.AllRules && i != r.Rule && otherScope(g, r.VIP.ID, r.Flow) {
			other++
			continue
		}
		c := RuleCheck{Name: t.rules[i], Priority: g.Priority, Pool: t.pool(g.Pool)}
		switch g.Action {
		case model.SetPool:
			c.Action = pipeline.ActionSetPool
		case model.SplitPool:
			c.Action = pipeline.ActionSplitPool
		case model.SetPoolMirror:
			c.Action = pipeline.ActionSetPoolMirror
		}
		c.Action = shortName(c.Action)
		c.Matched = g.Matches(r.VIP.ID, r.Flow)
		c.Decided = i == r.Rule
		switch {
		case !c.Matched:
			c.Why, c.Mismatch = t.mismatch(q, g, r.VIP.ID, r.Flow)
		case c.Decided && g.Action == model.SplitPool && r.SplitHash >= g.Threshold:
			c.Why = fmt.Sprintf("decided: split hash %d >= threshold %d, the VM stays on the default pool", r.SplitHash, g.Threshold)
		case c.Decided && g.Action == model.SplitPool:
			c.Why = fmt.Sprintf("decided: split hash %d < threshold %d, the VM moves to %s", r.SplitHash, g.Threshold, c.Pool)
		case c.Decided:
			c.Why = "decided: the highest-priority match"
		default:
			w := &rules[r.Rule]
			if w.Priority == g.Priority {
				c.Why = fmt.Sprintf("matches, but %s has the same priority and comes first in the table", t.rules[r.Rule])
			} else {
				c.Why = fmt.Sprintf("matches, but %s (priority %d) wins", t.rules[r.Rule], w.Priority)
			}
		}
		out = append(out, c)
	}
	return out, other
}

// otherScope says g misses the flow k on its VIP, VNI or tenant: a rule for
// other traffic than the flow's VPC.
func otherScope(g *model.GrayRule, vipID uint16, k pipeline.FlowKey) bool {
	return vipID&g.VIPMask != g.VIPID&g.VIPMask || k.VNI&g.Mask.VNI != g.Match.VNI&g.Mask.VNI ||
		k.Tenant&g.Mask.Tenant != g.Match.Tenant&g.Mask.Tenant
}

// mismatch says which fields of g's key the flow k does not match, in
// words and by name.
func (t *Tables) mismatch(q *Query, g *model.GrayRule, vipID uint16, k pipeline.FlowKey) (string, []string) {
	var why, fields []string
	if vipID&g.VIPMask != g.VIPID&g.VIPMask {
		why = append(why, fmt.Sprintf("for vip_id %d, not %d", g.VIPID, vipID))
		fields = append(fields, FieldVIPID)
	}
	field := func(name string, v, m, want uint64, show func(uint64) string) {
		if v&m == want&m {
			return
		}
		fields = append(fields, name)
		isAddr := name == FieldSrc || name == FieldDst
		s := fmt.Sprintf("%s %s, rule wants %s", name, show(v), showMasked(want, m, isAddr, show))
		if q.open(name) {
			s += fmt.Sprintf(" (%s not given: traced as 0)", name)
		}
		why = append(why, s)
	}
	num := func(v uint64) string { return fmt.Sprint(v) }
	ip := func(v uint64) string { return addr(uint32(v)).String() }
	mk, mm := g.Match, g.Mask
	field(FieldVNI, uint64(k.VNI), uint64(mm.VNI), uint64(mk.VNI), num)
	field(FieldTenant, uint64(k.Tenant), uint64(mm.Tenant), uint64(mk.Tenant), func(v uint64) string {
		if n := t.tenants[uint16(v)]; n != "" {
			return fmt.Sprintf("%d (%s)", v, n)
		}
		return num(v)
	})
	field(FieldSrc, uint64(k.Src), uint64(mm.Src), uint64(mk.Src), ip)
	field(FieldDst, uint64(k.Dst), uint64(mm.Dst), uint64(mk.Dst), ip)
	field(FieldProto, uint64(k.Proto), uint64(mm.Proto), uint64(mk.Proto), num)
	field(FieldSPort, uint64(k.SPort), uint64(mm.SPort), uint64(mk.SPort), num)
	field(FieldDPort, uint64(k.DPort), uint64(mm.DPort), uint64(mk.DPort), num)
	return "no match: " + strings.Join(why, "; "), fields
}

// showMasked writes a ternary value: a prefix for an address under a
// contiguous mask, value/mask for another partial mask.
func showMasked(v, m uint64, isAddr bool, show func(uint64) string) string {
	if isAddr && m != 0xffffffff {
		ones := bits.LeadingZeros32(^uint32(m))
		if uint32(m) == ^uint32(0)<<(32-ones) {
			return fmt.Sprintf("%s/%d", show(v&m), ones)
		}
	}
	switch m {
	case 0xff, 0xffff, 0xffffff, 0xffffffff:
		return show(v & m)
	}
	return fmt.Sprintf("%s/%#x", show(v&m), m)
}

// rewrite reads what the gateway sends out of the rewritten frame.
func rewrite(q *Query, out []byte, port uint16) *Rewrite {
	mac := func(b []byte) string {
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
	}
	ip := out[14:]
	rw := &Rewrite{Port: port, DstMAC: mac(out[0:6]), SrcMAC: mac(out[6:12]), TTL: ip[8],
		OuterDst: netip.AddrFrom4([4]byte(ip[16:20])).String(), OuterSrc: "kept (the sender's)"}
	if q.Plain {
		rw.OuterSrc = q.Src.String()
	}
	if ip[9] == testpkt.ProtoTCP || ip[9] == testpkt.ProtoUDP {
		l4 := ip[20:]
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

func uint32FromAddr(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
