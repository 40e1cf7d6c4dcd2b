package change

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/kinderr"
)

// maxRuleName is the longest rule name the intent accepts.
const maxRuleName = 63

// Scope is what a cutover moves.
type Scope int

// Scopes of a Cutover.
const (
	ScopeNone    Scope = iota // refused: a cutover needs a scope
	ScopeVNI                  // a whole VNI (VNI)
	ScopeVM                   // one VM (VNI, Src)
	ScopePrefix               // a source and/or destination prefix (VNI optional)
	ScopeFlow                 // one flow (VNI optional, Src, Dst, Proto, ports)
	ScopePercent              // a sticky share of a VNI's VMs (VNI, Percent)
)

// Cutover asks for one gray rule: the traffic of its scope goes to Pool. The
// problems a cutover is refused with name the API's request fields
// ("cutover.vm.src").
type Cutover struct {
	Scope Scope
	// VNI is the VNI of every scope; for prefix and flow scopes only when
	// HasVNI.
	VNI    uint32
	HasVNI bool
	// Src and Dst are the VM's address (VM), prefixes or addresses (Prefix),
	// or the flow's addresses (Flow).
	Src, Dst string
	// Proto ("tcp", "udp" or a number) and the ports (0: any) of a flow.
	Proto        string
	SPort, DPort uint32
	// Percent of a percentage scope, in (0, 100].
	Percent float64
	// Pool receives the traffic. Required.
	Pool string
	// VIP narrows the rule to one VIP's traffic ("": every VIP).
	VIP string
	// Rule names the rule; "": derived from the scope.
	Rule string
	// MirrorPool, when set, makes the rule a mirror (docs/pipeline.md §10): a
	// copy of its traffic goes to MirrorPool, from 1 in MirrorRate VMs (0 or
	// 1: every VM), while Pool serves it ("": the VIP's default pool).
	MirrorPool string
	MirrorRate uint32
}

// CutoverResult is a Result and the rule a cutover wrote.
type CutoverResult struct {
	*Result
	// Rule is the rule's name.
	Rule string
	// Replaced says a rule of that name existed and was updated.
	Replaced bool
}

// Cutover adds (or updates) one gray rule in the current intent document,
// keeping the rest of the document (and its comments) as written, and applies
// the result like Apply.
func (m *Manager) Cutover(ctx context.Context, req Cutover, opts Options) (*CutoverResult, error) {
	spec, scope, problems := req.rule()
	if problems != nil {
		return &CutoverResult{Result: refused(problems...)}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.currentLocked(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return &CutoverResult{Result: refused(Problem{"", "no intent stored yet: Apply one first", ClassRequest})}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &CutoverResult{Rule: spec.Name}
	share := ""
	if spec.Percent != nil {
		share = fmt.Sprintf(" (%g%% of its VMs)", *spec.Percent)
	}
	doc := m.documentOf(cur)
	if p := req.unownedVNI(doc); p != nil {
		return &CutoverResult{Rule: spec.Name, Result: refused(*p)}, nil
	}
	verb, to := "cutover", "to pool "+spec.Pool
	if spec.Mirror != nil {
		if spec.Pool == "" {
			pool, p := servingPool(doc, req.VIP)
			if p != nil {
				return &CutoverResult{Rule: spec.Name, Result: refused(*p)}, nil
			}
			spec.Pool = pool
		}
		verb, to = "mirror", fmt.Sprintf("to pool %s, served by %s", spec.Mirror.Pool, spec.Pool)
		if spec.Mirror.Rate != nil {
			to += fmt.Sprintf(", 1 in %d VMs", *spec.Mirror.Rate)
		}
	}
	old, idx, err := doc.Rule(spec.Name)
	if err != nil {
		return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
	}
	summary := fmt.Sprintf("%s %s%s %s (rule %s)", verb, scope, share, to, spec.Name)
	var next *intent.Document
	if idx >= 0 {
		if !reflect.DeepEqual(old.Match, spec.Match) {
			return &CutoverResult{Rule: spec.Name, Result: refused(Problem{"cutover.rule",
				fmt.Sprintf("rule %q already exists with another match; name the new rule", spec.Name), "duplicate"})}, nil
		}
		if old.Pool == spec.Pool && reflect.DeepEqual(old.Percent, spec.Percent) && reflect.DeepEqual(old.Mirror, spec.Mirror) {
			out.Result = &Result{Unchanged: true, Version: cur.Number,
				Summary: fmt.Sprintf("rule %s already sends %s %s", spec.Name, scope, to)}
			return out, nil
		}
		spec.Priority = old.Priority // an operator's explicit priority stays
		next, idx, err = doc.ReplaceRule(spec)
		out.Replaced = true
		summary = fmt.Sprintf("%s %s%s %s (rule %s updated)", verb, scope, share, to, spec.Name)
	} else {
		next, idx, err = doc.AddRule(spec)
	}
	if err != nil {
		return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
	}
	res, err := m.changeLocked(ctx, change{doc: next, op: OpCutover, opts: opts, summary: summary, base: cur})
	if err != nil {
		return nil, err
	}
	renameProblems(res, idx)
	out.Result = res
	return out, nil
}

// servingPool is the pool a mirror serves from when the request names none:
// the VIP's default pool, or the one every VIP has. A problem otherwise.
func servingPool(doc *intent.Document, vip string) (string, *Problem) {
	sp, err := doc.Spec()
	if err != nil {
		return "", &Problem{"", fmt.Sprintf("the stored intent does not parse: %v", err), ClassRequest}
	}
	pool := ""
	for _, v := range sp.VIPs {
		switch {
		case vip != "" && v.Name == vip:
			return v.DefaultPool, nil
		case vip != "":
		case pool == "":
			pool = v.DefaultPool
		case pool != v.DefaultPool:
			return "", &Problem{"cutover.vip", "the VIPs have different default pools: name the VIP whose traffic to mirror, or the pool that serves it", ClassRequest}
		}
	}
	if pool == "" {
		return "", &Problem{"cutover.vip", fmt.Sprintf("no VIP %q in the intent in force", vip), "unknown_ref"}
	}
	return pool, nil
}

// renameProblems names the problems about the new rule (gray_rules[idx]) after
// the request's fields.
func renameProblems(res *Result, idx int) {
	prefix := fmt.Sprintf("gray_rules[%d]", idx)
	for i, p := range res.Problems {
		if rest, ok := strings.CutPrefix(p.Path, prefix); ok {
			res.Problems[i].Path = "cutover" + rest
		}
	}
}

// rule builds the rule a cutover asks for, and a description of its scope;
// problems name the request's fields.
func (c Cutover) rule() (intent.RuleSpec, string, []Problem) {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{path, fmt.Sprintf(format, args...), ClassRequest})
	}
	vni := func(v uint32) *int64 { n := int64(v); return &n }
	addr := func(path, s string) string {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			bad(path, "%q is not an IPv4 or IPv6 address", s)
			return s
		}
		return a.String()
	}
	prefix := func(path, s string) string {
		if s == "" {
			return ""
		}
		if !strings.Contains(s, "/") {
			return addr(path, s)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4In6() {
			bad(path, "%q is not an IPv4 or IPv6 prefix", s)
			return s
		}
		return p.String()
	}
	var spec intent.RuleSpec
	var name, scope string
	switch c.Scope {
	case ScopeVNI:
		spec.Match.VNI = vni(c.VNI)
		name, scope = fmt.Sprintf("vni-%d", c.VNI), fmt.Sprintf("VNI %d", c.VNI)
	case ScopeVM:
		spec.Match.VNI = vni(c.VNI)
		spec.Match.Src = addr("cutover.vm.src", c.Src)
		name = fmt.Sprintf("vm-%d-%s", c.VNI, spec.Match.Src)
		scope = fmt.Sprintf("VM %s in VNI %d", spec.Match.Src, c.VNI)
	case ScopePrefix:
		if c.HasVNI {
			spec.Match.VNI = vni(c.VNI)
		}
		spec.Match.Src = prefix("cutover.prefix.src", c.Src)
		spec.Match.Dst = prefix("cutover.prefix.dst", c.Dst)
		if spec.Match.Src == "" && spec.Match.Dst == "" {
			bad("cutover.prefix", "a src or dst prefix is required")
		}
		name, scope = "prefix", "prefix"
		if c.HasVNI {
			name += fmt.Sprintf("-%d", c.VNI)
			scope += fmt.Sprintf(" in VNI %d", c.VNI)
		}
		if spec.Match.Src != "" {
			name += "-" + spec.Match.Src
			scope += " src " + spec.Match.Src
		}
		if spec.Match.Dst != "" {
			name += "-to-" + spec.Match.Dst
			scope += " dst " + spec.Match.Dst
		}
	case ScopeFlow:
		if c.HasVNI {
			spec.Match.VNI = vni(c.VNI)
		}
		spec.Match.Src = addr("cutover.flow.src", c.Src)
		spec.Match.Dst = addr("cutover.flow.dst", c.Dst)
		if c.Proto == "" {
			bad("cutover.flow.proto", "required (tcp, udp or a protocol number)")
		}
		spec.Match.Proto = strings.ToLower(c.Proto)
		if c.SPort > 65535 || c.DPort > 65535 {
			bad("cutover.flow", "ports are 0-65535")
		}
		if c.SPort != 0 {
			n := int64(c.SPort)
			spec.Match.SPort = &n
		}
		if c.DPort != 0 {
			n := int64(c.DPort)
			spec.Match.DPort = &n
		}
		name = "flow"
		scope = "flow"
		if c.HasVNI {
			name += fmt.Sprintf("-%d", c.VNI)
			scope += fmt.Sprintf(" in VNI %d", c.VNI)
		}
		name += fmt.Sprintf("-%s-%s-%s-%d-%d", spec.Match.Src, spec.Match.Dst, spec.Match.Proto, c.SPort, c.DPort)
		scope += fmt.Sprintf(" %s %s -> %s", spec.Match.Proto, hostPort(spec.Match.Src, c.SPort), hostPort(spec.Match.Dst, c.DPort))
	case ScopePercent:
		p := c.Percent
		if !(p > 0 && p <= 100) {
			bad("cutover.percent.percent", "%g is not in (0, 100]", p)
		}
		spec.Match.VNI = vni(c.VNI)
		spec.Percent = &p
		name, scope = fmt.Sprintf("pct-%d", c.VNI), fmt.Sprintf("VNI %d", c.VNI)
	default:
		bad("cutover.scope", "required: one of vni, vm, prefix, flow, percent")
	}
	if c.Pool == "" && c.MirrorPool == "" {
		bad("cutover.pool", "required: the pool the traffic moves to")
	}
	spec.Pool = c.Pool
	if c.MirrorPool != "" {
		spec.Mirror = &intent.MirrorSpec{Pool: c.MirrorPool}
		if c.MirrorRate > 1 {
			r := int64(c.MirrorRate)
			spec.Mirror.Rate = &r
		}
	}
	if c.VIP != "" {
		spec.Match.VIP = c.VIP
		name = c.VIP + "." + name
		scope += " to VIP " + c.VIP
	}
	spec.Name = c.Rule
	if spec.Name == "" {
		spec.Name = ruleName(name)
	}
	return spec, scope, ps
}

// hostPort writes addr:port, [addr]:port for an IPv6 address.
func hostPort(addr string, port uint32) string {
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}

// ruleName makes a derived name fit the intent's name rules: [A-Za-z0-9._-],
// at most 63 characters (a long name keeps its start and a hash of the whole).
func ruleName(s string) string {
	s = strings.NewReplacer("/", "-", ":", "-", " ", "-").Replace(s)
	if len(s) <= maxRuleName {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return s[:maxRuleName-9] + "-" + strconv.FormatUint(uint64(h.Sum32()), 16)
}

// RollbackMode says what a Rollback undoes.
type RollbackMode int

// Rollback modes.
const (
	RollbackNone    RollbackMode = iota // refused: a rollback needs a mode
	RollbackStep                        // the newest change not undone yet
	RollbackAll                         // every gray rule
	RollbackRule                        // one gray rule
	RollbackMirrors                     // every mirror (rules that only mirror go, others lose the mirror)
)

// RollbackResult is a Result and what a rollback undid.
type RollbackResult struct {
	*Result
	// Undone is the history event a step rollback undid.
	Undone uint64
	// RemovedRules are the rules a rule or all rollback removed.
	RemovedRules []string
}

// Rollback undoes the newest change (RollbackStep), removes every gray rule
// (RollbackAll) or the one named rule (RollbackRule), and applies the result.
func (m *Manager) Rollback(ctx context.Context, mode RollbackMode, rule string, opts Options) (*RollbackResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.currentLocked(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return &RollbackResult{Result: refused(Problem{"", "no intent stored yet: nothing to roll back", ClassNothing})}, nil
	}
	if err != nil {
		return nil, err
	}
	switch mode {
	case RollbackStep:
		return m.rollbackStep(ctx, cur, opts)
	case RollbackAll:
		return m.rollbackRules(ctx, cur, "", opts)
	case RollbackRule:
		if rule == "" {
			return &RollbackResult{Result: refused(Problem{"rollback.rule", "required with RULE: the rule to remove", ClassRequest})}, nil
		}
		return m.rollbackRules(ctx, cur, rule, opts)
	case RollbackMirrors:
		return m.stopMirrors(ctx, cur, opts)
	}
	return &RollbackResult{Result: refused(Problem{"rollback.mode", "required: STEP, RULE, ALL or MIRRORS", ClassRequest})}, nil
}

// stopMirrors removes every mirror from the current intent: a rule that only
// mirrors (it serves from the default pool of the VIPs it applies to) is
// removed, any other keeps its pool without the mirror.
func (m *Manager) stopMirrors(ctx context.Context, cur *store.Version, opts Options) (*RollbackResult, error) {
	doc := m.documentOf(cur)
	sp, err := doc.Spec()
	if err != nil {
		return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
	}
	var removed, kept []string
	for _, r := range sp.GrayRules {
		if r.Mirror == nil {
			continue
		}
		if pool, p := servingPool(doc, r.Match.VIP); p == nil && pool == r.Pool {
			if doc, _, err = doc.RemoveRules(r.Name); err != nil {
				return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
			}
			removed = append(removed, r.Name)
			continue
		}
		r.Mirror = nil
		if doc, _, err = doc.ReplaceRule(r); err != nil {
			return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
		}
		kept = append(kept, r.Name)
	}
	if len(removed)+len(kept) == 0 {
		return &RollbackResult{Result: &Result{Unchanged: true, Version: cur.Number, Summary: "no mirror: nothing to stop"}}, nil
	}
	summary := "stop mirrors:"
	if len(removed) > 0 {
		summary += " removed rules " + strings.Join(removed, ", ")
	}
	if len(kept) > 0 {
		summary += " mirror dropped from rules " + strings.Join(kept, ", ")
	}
	res, err := m.changeLocked(ctx, change{doc: doc, op: OpRollbackMirrors, opts: opts, summary: summary, base: cur})
	if err != nil {
		return nil, err
	}
	return &RollbackResult{Result: res, RemovedRules: removed}, nil
}

// rollbackStep restores the intent from before the newest change that is not a
// step rollback and was not undone by one (records, which changed no intent,
// are passed over).
func (m *Manager) rollbackStep(ctx context.Context, cur *store.Version, opts Options) (*RollbackResult, error) {
	undone := map[uint64]bool{}
	var target *store.Event
	before := uint64(0)
walk:
	for {
		evs, err := m.cfg.Store.History(ctx, store.Query{Before: before, Limit: 256})
		if err != nil {
			return nil, err
		}
		for i := range evs {
			ev := &evs[i]
			switch {
			case ev.Record: // a drain, a failover, a rollout's verdict: no intent to restore
			case ev.Operation == OpRollback && ev.Undoes != 0:
				undone[ev.Undoes] = true
			case undone[ev.Seq]:
			default:
				target = ev
				break walk
			}
			before = ev.Seq
		}
		if len(evs) < 256 {
			break
		}
	}
	if target == nil {
		return &RollbackResult{Result: refused(Problem{"", "nothing to roll back: every change has been undone", ClassNothing})}, nil
	}
	if target.Before == 0 {
		return &RollbackResult{Result: refused(Problem{"", fmt.Sprintf(
			"change #%d (%s by %s) installed the first intent: there is no earlier intent to restore; use Rollback ALL to remove the gray rules",
			target.Seq, target.Operation, target.Actor), ClassNothing})}, nil
	}
	prev, err := m.cfg.Store.Version(ctx, target.Before)
	if err != nil {
		return nil, err
	}
	summary := fmt.Sprintf("undo #%d (%s by %s: %s)", target.Seq, target.Operation, target.Actor, target.Summary)
	res, err := m.changeLocked(ctx, change{doc: intent.NewDocument(prev.Intent), op: OpRollback, opts: opts, summary: summary,
		undoes: target.Seq, base: cur})
	if err != nil {
		return nil, err
	}
	return &RollbackResult{Result: res, Undone: target.Seq}, nil
}

// rollbackRules removes the gray rule named only from the current intent, or
// every gray rule when only is "".
func (m *Manager) rollbackRules(ctx context.Context, cur *store.Version, only string, opts Options) (*RollbackResult, error) {
	next, removed, err := m.documentOf(cur).RemoveRules(only)
	if err != nil {
		return nil, kinderr.Errorf(ErrEdit, "stored intent version %d: %v", cur.Number, err)
	}
	if only != "" && len(removed) == 0 {
		return &RollbackResult{Result: refused(Problem{"rollback.rule",
			fmt.Sprintf("no gray rule %q in intent version %d", only, cur.Number), "unknown_ref"})}, nil
	}
	if len(removed) == 0 {
		return &RollbackResult{Result: &Result{Unchanged: true, Version: cur.Number,
			Summary: "no gray rule: all traffic already goes to the VIPs' default pools"}}, nil
	}
	names := make([]string, len(removed))
	for i, r := range removed {
		names[i] = r.Name
	}
	op, summary := OpRollbackAll, "rollback all: removed rules "+strings.Join(names, ", ")
	if only != "" {
		op, summary = OpRollbackRule, fmt.Sprintf("rollback rule %s (its traffic leaves pool %s)", only, removed[0].Pool)
	}
	res, err := m.changeLocked(ctx, change{doc: next, op: op, opts: opts, summary: summary, base: cur})
	if err != nil {
		return nil, err
	}
	return &RollbackResult{Result: res, RemovedRules: names}, nil
}

// unownedVNI refuses a cutover of a VNI no tenant of the intent in force lists
// (docs/cli.md): such a rule would be valid, but it moves nothing the operator
// knows of, and is most likely a typo (cutover --vni 7777 for 7077). VNI 0 (plain
// traffic, for prefix and flow scopes) needs no tenant.
func (c Cutover) unownedVNI(doc *intent.Document) *Problem {
	has := c.HasVNI || c.Scope == ScopeVNI || c.Scope == ScopeVM || c.Scope == ScopePercent
	if !has || c.VNI == 0 || c.VNI >= 1<<24 {
		return nil // a VNI past 24 bits gets the range problem of the rule's validation
	}
	spec, err := doc.Spec()
	if err != nil {
		return nil // the change pipeline reports the document's problems
	}
	for _, t := range spec.Tenants {
		for _, v := range t.VNIs {
			if v == int64(c.VNI) {
				return nil
			}
		}
	}
	return &Problem{"cutover.vni", fmt.Sprintf("VNI %d belongs to no tenant of the intent in force: "+
		"add it to a tenant's vnis first (graygw apply), or check the number", c.VNI), "unknown_ref"}
}
