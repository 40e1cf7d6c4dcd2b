package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
)

// maxRuleName is the longest rule name the intent accepts.
const maxRuleName = 63

// Cutover implements graygwv1.ControllerServer: it adds (or updates) one gray
// rule in the current intent document, keeping the rest of the document (and
// its comments) as written, and applies the result like Apply.
func (s *Service) Cutover(ctx context.Context, req *graygwv1.CutoverRequest) (*graygwv1.CutoverResponse, error) {
	spec, scope, problems := cutoverRule(req)
	if problems != nil {
		return &graygwv1.CutoverResponse{Result: refused(problems...)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.currentLocked(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return &graygwv1.CutoverResponse{Result: refused(problem("", "no intent stored yet: Apply one first", ClassRequest))}, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	out := &graygwv1.CutoverResponse{Rule: spec.Name}
	share := ""
	if spec.Percent != nil {
		share = fmt.Sprintf(" (%g%% of its VMs)", *spec.Percent)
	}
	// A new rule appended to the parsed spec and spliced into the text
	// (fastdoc.go), when the layout allows.
	if cs, err := s.specOf(cur); err == nil && !slices.ContainsFunc(cs.GrayRules, func(r intent.RuleSpec) bool { return r.Name == spec.Name }) {
		if text, ok := appendRule(cur.Intent, spec, len(cs.GrayRules)); ok {
			ns := *cs
			ns.GrayRules = append(slices.Clip(cs.GrayRules), spec)
			summary := fmt.Sprintf("cutover %s%s to pool %s (rule %s)", scope, share, spec.Pool, spec.Name)
			res, err := s.changeLocked(ctx, change{doc: text, spec: &ns, op: OpCutover, opts: req.GetOptions(), summary: summary, base: cur})
			if err != nil {
				return nil, err
			}
			renameProblems(res, len(cs.GrayRules))
			out.Result = res
			return out, nil
		}
	}
	doc, err := parseDoc(cur.Intent)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stored intent version %d: %v", cur.Number, err)
	}
	rules := mappingValue(doc, "gray_rules", yaml.SequenceNode)
	idx := -1
	for i, n := range rules.Content {
		if !hasName(n, spec.Name) {
			continue // decoding 10k rules to find one name is most of a cutover's parse
		}
		var r intent.RuleSpec
		if n.Decode(&r) == nil && r.Name == spec.Name {
			idx = i
			if !reflect.DeepEqual(r.Match, spec.Match) {
				return &graygwv1.CutoverResponse{Rule: spec.Name, Result: refused(problem("cutover.rule",
					fmt.Sprintf("rule %q already exists with another match; name the new rule", spec.Name), "duplicate"))}, nil
			}
			if r.Pool == spec.Pool && reflect.DeepEqual(r.Percent, spec.Percent) {
				out.Result = &graygwv1.ChangeResult{Unchanged: true, Version: cur.Number,
					Summary: fmt.Sprintf("rule %s already sends %s to pool %s", spec.Name, scope, spec.Pool)}
				return out, nil
			}
			spec.Priority = r.Priority // an operator's explicit priority stays
		}
	}
	node, err := ruleNode(spec)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode rule: %v", err)
	}
	if idx >= 0 {
		node.HeadComment = rules.Content[idx].HeadComment
		rules.Content[idx] = node
		out.Replaced = true
	} else {
		idx = len(rules.Content)
		rules.Content = append(rules.Content, node)
	}
	text, err := encodeDoc(doc)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode intent: %v", err)
	}
	summary := fmt.Sprintf("cutover %s%s to pool %s (rule %s)", scope, share, spec.Pool, spec.Name)
	if out.Replaced {
		summary = fmt.Sprintf("cutover %s%s to pool %s (rule %s updated)", scope, share, spec.Pool, spec.Name)
	}
	res, err := s.changeLocked(ctx, change{doc: text, op: OpCutover, opts: req.GetOptions(), summary: summary, base: cur})
	if err != nil {
		return nil, err
	}
	renameProblems(res, idx)
	out.Result = res
	return out, nil
}

// renameProblems names the problems about the new rule (gray_rules[idx]) after
// the request's fields.
func renameProblems(res *graygwv1.ChangeResult, idx int) {
	prefix := fmt.Sprintf("gray_rules[%d]", idx)
	for _, p := range res.Problems {
		if rest, ok := strings.CutPrefix(p.Path, prefix); ok {
			p.Path = "cutover" + rest
		}
	}
}

// hasName reports whether a rule node may be the rule named name: false only
// when it is a mapping whose name key is a plain scalar of another value.
func hasName(n *yaml.Node, name string) bool {
	if n.Kind != yaml.MappingNode {
		return true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
			return v.Value == name
		}
	}
	return true
}

// cutoverRule builds the rule a cutover request asks for, and a description of
// its scope; problems name the request's fields.
func cutoverRule(req *graygwv1.CutoverRequest) (intent.RuleSpec, string, []*graygwv1.Problem) {
	var ps []*graygwv1.Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, problem(path, fmt.Sprintf(format, args...), ClassRequest))
	}
	vni := func(v uint32) *int64 { n := int64(v); return &n }
	addr := func(path, s string) string {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			bad(path, "%q is not an IPv4 address", s)
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
		if err != nil || !p.Addr().Is4() {
			bad(path, "%q is not an IPv4 prefix", s)
			return s
		}
		return p.String()
	}
	var spec intent.RuleSpec
	var name, scope string
	switch sc := req.GetScope().(type) {
	case *graygwv1.CutoverRequest_Vni:
		spec.Match.VNI = vni(sc.Vni.GetVni())
		name, scope = fmt.Sprintf("vni-%d", sc.Vni.GetVni()), fmt.Sprintf("VNI %d", sc.Vni.GetVni())
	case *graygwv1.CutoverRequest_Vm:
		spec.Match.VNI = vni(sc.Vm.GetVni())
		spec.Match.Src = addr("cutover.vm.src", sc.Vm.GetSrc())
		name = fmt.Sprintf("vm-%d-%s", sc.Vm.GetVni(), spec.Match.Src)
		scope = fmt.Sprintf("VM %s in VNI %d", spec.Match.Src, sc.Vm.GetVni())
	case *graygwv1.CutoverRequest_Prefix:
		p := sc.Prefix
		if p.Vni != nil {
			spec.Match.VNI = vni(p.GetVni())
		}
		spec.Match.Src = prefix("cutover.prefix.src", p.GetSrc())
		spec.Match.Dst = prefix("cutover.prefix.dst", p.GetDst())
		if spec.Match.Src == "" && spec.Match.Dst == "" {
			bad("cutover.prefix", "a src or dst prefix is required")
		}
		name, scope = "prefix", "prefix"
		if p.Vni != nil {
			name += fmt.Sprintf("-%d", p.GetVni())
			scope += fmt.Sprintf(" in VNI %d", p.GetVni())
		}
		if spec.Match.Src != "" {
			name += "-" + spec.Match.Src
			scope += " src " + spec.Match.Src
		}
		if spec.Match.Dst != "" {
			name += "-to-" + spec.Match.Dst
			scope += " dst " + spec.Match.Dst
		}
	case *graygwv1.CutoverRequest_Flow:
		f := sc.Flow
		if f.Vni != nil {
			spec.Match.VNI = vni(f.GetVni())
		}
		spec.Match.Src = addr("cutover.flow.src", f.GetSrc())
		spec.Match.Dst = addr("cutover.flow.dst", f.GetDst())
		if f.GetProto() == "" {
			bad("cutover.flow.proto", "required (tcp, udp or a protocol number)")
		}
		spec.Match.Proto = strings.ToLower(f.GetProto())
		if f.GetSport() > 65535 || f.GetDport() > 65535 {
			bad("cutover.flow", "ports are 0-65535")
		}
		if f.GetSport() != 0 {
			n := int64(f.GetSport())
			spec.Match.SPort = &n
		}
		if f.GetDport() != 0 {
			n := int64(f.GetDport())
			spec.Match.DPort = &n
		}
		name = "flow"
		scope = "flow"
		if f.Vni != nil {
			name += fmt.Sprintf("-%d", f.GetVni())
			scope += fmt.Sprintf(" in VNI %d", f.GetVni())
		}
		name += fmt.Sprintf("-%s-%s-%s-%d-%d", spec.Match.Src, spec.Match.Dst, spec.Match.Proto, f.GetSport(), f.GetDport())
		scope += fmt.Sprintf(" %s %s:%d -> %s:%d", spec.Match.Proto, spec.Match.Src, f.GetSport(), spec.Match.Dst, f.GetDport())
	case *graygwv1.CutoverRequest_Percent:
		p := sc.Percent.GetPercent()
		if !(p > 0 && p <= 100) {
			bad("cutover.percent.percent", "%g is not in (0, 100]", p)
		}
		spec.Match.VNI = vni(sc.Percent.GetVni())
		spec.Percent = &p
		name, scope = fmt.Sprintf("pct-%d", sc.Percent.GetVni()), fmt.Sprintf("VNI %d", sc.Percent.GetVni())
	case nil:
		bad("cutover.scope", "required: one of vni, vm, prefix, flow, percent")
	}
	if req.GetPool() == "" {
		bad("cutover.pool", "required: the pool the traffic moves to")
	}
	spec.Pool = req.GetPool()
	if req.GetVip() != "" {
		spec.Match.VIP = req.GetVip()
		name = req.GetVip() + "." + name
		scope += " to VIP " + req.GetVip()
	}
	spec.Name = req.GetRule()
	if spec.Name == "" {
		spec.Name = ruleName(name)
	}
	return spec, scope, ps
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

// Rollback implements graygwv1.ControllerServer.
func (s *Service) Rollback(ctx context.Context, req *graygwv1.RollbackRequest) (*graygwv1.RollbackResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.currentLocked(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return &graygwv1.RollbackResponse{Result: refused(problem("", "no intent stored yet: nothing to roll back", ClassNothing))}, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	switch req.GetMode() {
	case graygwv1.RollbackRequest_STEP:
		return s.rollbackStep(ctx, cur, req.GetOptions())
	case graygwv1.RollbackRequest_ALL:
		return s.rollbackRules(ctx, cur, "", req.GetOptions())
	case graygwv1.RollbackRequest_RULE:
		if req.GetRule() == "" {
			return &graygwv1.RollbackResponse{Result: refused(problem("rollback.rule", "required with RULE: the rule to remove", ClassRequest))}, nil
		}
		return s.rollbackRules(ctx, cur, req.GetRule(), req.GetOptions())
	}
	return &graygwv1.RollbackResponse{Result: refused(problem("rollback.mode", "required: STEP, RULE or ALL", ClassRequest))}, nil
}

// rollbackStep restores the intent from before the newest change that is not a
// step rollback and was not undone by one.
func (s *Service) rollbackStep(ctx context.Context, cur *store.Version, opts *graygwv1.ChangeOptions) (*graygwv1.RollbackResponse, error) {
	undone := map[uint64]bool{}
	var target *store.Event
	before := uint64(0)
walk:
	for {
		evs, err := s.cfg.Store.History(ctx, store.Query{Before: before, Limit: 256})
		if err != nil {
			return nil, storeError(err)
		}
		for i := range evs {
			ev := &evs[i]
			switch {
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
		return &graygwv1.RollbackResponse{Result: refused(problem("", "nothing to roll back: every change has been undone", ClassNothing))}, nil
	}
	if target.Before == 0 {
		return &graygwv1.RollbackResponse{Result: refused(problem("", fmt.Sprintf(
			"change #%d (%s by %s) installed the first intent: there is no earlier intent to restore; use Rollback ALL to remove the gray rules",
			target.Seq, target.Operation, target.Actor), ClassNothing))}, nil
	}
	prev, err := s.cfg.Store.Version(ctx, target.Before)
	if err != nil {
		return nil, storeError(err)
	}
	summary := fmt.Sprintf("undo #%d (%s by %s: %s)", target.Seq, target.Operation, target.Actor, target.Summary)
	res, err := s.changeLocked(ctx, change{doc: prev.Intent, op: OpRollback, opts: opts, summary: summary,
		undoes: target.Seq, base: cur})
	if err != nil {
		return nil, err
	}
	return &graygwv1.RollbackResponse{Result: res, Undone: target.Seq}, nil
}

// rollbackRules removes the gray rule named only from the current intent, or
// every gray rule when only is "".
func (s *Service) rollbackRules(ctx context.Context, cur *store.Version, only string, opts *graygwv1.ChangeOptions) (*graygwv1.RollbackResponse, error) {
	// One rule removed from the parsed spec and cut from the text
	// (fastdoc.go), when the layout allows.
	if cs, err := s.specOf(cur); err == nil && only != "" {
		k := slices.IndexFunc(cs.GrayRules, func(r intent.RuleSpec) bool { return r.Name == only })
		if k >= 0 && !slices.ContainsFunc(cs.GrayRules[k+1:], func(r intent.RuleSpec) bool { return r.Name == only }) {
			if text, ok := removeRule(cur.Intent, k, len(cs.GrayRules)); ok {
				ns := *cs
				ns.GrayRules = slices.Delete(slices.Clone(cs.GrayRules), k, k+1)
				summary := fmt.Sprintf("rollback rule %s (its traffic leaves pool %s)", only, cs.GrayRules[k].Pool)
				res, err := s.changeLocked(ctx, change{doc: text, spec: &ns, op: OpRollbackRule, opts: opts, summary: summary, base: cur})
				if err != nil {
					return nil, err
				}
				return &graygwv1.RollbackResponse{Result: res, RemovedRules: []string{only}}, nil
			}
		}
	}
	doc, err := parseDoc(cur.Intent)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stored intent version %d: %v", cur.Number, err)
	}
	var removed, pools []string
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "gray_rules" {
			continue
		}
		seq := root.Content[i+1]
		kept := seq.Content[:0:0]
		for _, n := range seq.Content {
			var r intent.RuleSpec
			if (only == "" || hasName(n, only)) && n.Decode(&r) == nil && (only == "" || r.Name == only) {
				removed = append(removed, r.Name)
				pools = append(pools, r.Pool)
				continue
			}
			kept = append(kept, n)
		}
		seq.Content = kept
		if len(kept) == 0 {
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
		}
		break
	}
	if only != "" && len(removed) == 0 {
		return &graygwv1.RollbackResponse{Result: refused(problem("rollback.rule",
			fmt.Sprintf("no gray rule %q in intent version %d", only, cur.Number), "unknown_ref"))}, nil
	}
	if len(removed) == 0 {
		return &graygwv1.RollbackResponse{Result: &graygwv1.ChangeResult{Unchanged: true, Version: cur.Number,
			Summary: "no gray rule: all traffic already goes to the VIPs' default pools"}}, nil
	}
	text, err := encodeDoc(doc)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode intent: %v", err)
	}
	op, summary := OpRollbackAll, "rollback all: removed rules "+strings.Join(removed, ", ")
	if only != "" {
		op, summary = OpRollbackRule, fmt.Sprintf("rollback rule %s (its traffic leaves pool %s)", only, pools[0])
	}
	res, err := s.changeLocked(ctx, change{doc: text, op: op, opts: opts, summary: summary, base: cur})
	if err != nil {
		return nil, err
	}
	return &graygwv1.RollbackResponse{Result: res, RemovedRules: removed}, nil
}

// parseDoc decodes an intent document into a YAML node tree, comments kept.
func parseDoc(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the intent is not a YAML mapping")
	}
	return &doc, nil
}

// mappingValue returns the value of key in the document's top mapping, adding
// an empty node of kind when absent.
func mappingValue(doc *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			v := root.Content[i+1]
			if v.Kind != kind { // "gray_rules:" with nothing after it is a null scalar
				*v = yaml.Node{Kind: kind, Tag: tagOf(kind)}
			}
			return v
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: kind, Tag: tagOf(kind)}
	root.Content = append(root.Content, k, v)
	return v
}

func tagOf(kind yaml.Kind) string {
	switch kind {
	case yaml.SequenceNode:
		return "!!seq"
	case yaml.MappingNode:
		return "!!map"
	}
	return ""
}

// ruleNode encodes a rule, its match on one line as the examples write it.
func ruleNode(r intent.RuleSpec) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(r); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "match" {
			n.Content[i+1].Style = yaml.FlowStyle
		}
	}
	return &n, nil
}

func encodeDoc(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
