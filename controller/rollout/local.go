package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
)

// ErrUnknownVNI: a cutover names a VNI that no tenant of the intent lists
// (wrapped with ErrRefused). Local refuses those because a VNI the intent does
// not know is far more often a typo than a VPC to move.
var ErrUnknownVNI = errors.New("unknown VNI")

// ProbeRunner runs probes; *probe.Prober is one.
type ProbeRunner interface {
	Run(ctx context.Context, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
}

// Local is an in-process Controller over an intent document: each cutover adds
// a gray rule to the document, which is validated and compiled as a whole and
// handed to Apply; a rollback removes the rule the same way. A refused change
// (validation or compilation) changes nothing. It is what tests and
// single-process tools use where the controller daemon is not running.
type Local struct {
	apply  func(*intent.Intent, *compile.Result) error
	prober ProbeRunner

	mu    sync.Mutex
	base  intent.Spec       // the document without the cutover rules
	rules []intent.RuleSpec // cutover rules, in the order they were added
	in    *intent.Intent
	res   *compile.Result
	seq   int
}

// NewLocal validates and compiles spec, applies it, and returns the controller.
// apply must make the dataplane hold the compiled entries (all or nothing);
// prober answers Probe (nil: Probe fails).
func NewLocal(spec *intent.Spec, apply func(*intent.Intent, *compile.Result) error, prober ProbeRunner) (*Local, error) {
	l := &Local{apply: apply, prober: prober, base: *spec}
	in, res, err := l.build(nil)
	if err != nil {
		return nil, err
	}
	if err := apply(in, res); err != nil {
		return nil, fmt.Errorf("rollout: apply the intent: %w", err)
	}
	l.in, l.res = in, res
	return l, nil
}

// build validates and compiles the base document with rules.
func (l *Local) build(rules []intent.RuleSpec) (*intent.Intent, *compile.Result, error) {
	s := l.base
	s.GrayRules = append(slices.Clip(l.base.GrayRules), rules...)
	in, err := s.Validate()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	res, err := compile.Compile(in, l.res)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return in, res, nil
}

// Intent returns the validated intent in force.
func (l *Local) Intent() *intent.Intent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.in
}

// Result returns the compiled entries in force.
func (l *Local) Result() *compile.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res
}

// Rules returns the cutover rules in force, in the order they were added.
func (l *Local) Rules() []intent.RuleSpec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rules)
}

// Cutover adds the rule {scope.Name, scope.Match, scope.Percent, pool}; see
// Controller.
func (l *Local) Cutover(ctx context.Context, scope Scope, pool string, dry bool) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := intent.RuleSpec{Name: scope.Name, Match: scope.Match, Pool: pool}
	if scope.Percent != 0 && scope.Percent != 100 {
		p := scope.Percent
		rs.Percent = &p
	}
	seq := l.seq
	if rs.Name == "" {
		// Generated names are used up only by applied cutovers.
		for seq++; l.hasRule(fmt.Sprintf("cutover-%d", seq)); seq++ {
		}
		rs.Name = fmt.Sprintf("cutover-%d", seq)
	}
	for _, r := range l.rules {
		if r.Name == rs.Name {
			if reflect.DeepEqual(r, rs) {
				return rs.Name, nil
			}
			return "", fmt.Errorf("%w: rule %q already exists with another selector or pool (roll it back first, or pick another name)", ErrRefused, rs.Name)
		}
	}
	if v := scope.Match.VNI; v != nil && *v != 0 && !l.knownVNI(uint32(*v)) {
		return "", fmt.Errorf("%w: %w %d: no tenant of the intent lists it (known VNIs: %s); add it to a tenant first", ErrRefused, ErrUnknownVNI, *v, l.vniList())
	}
	in, res, err := l.build(append(slices.Clone(l.rules), rs))
	if err != nil {
		return "", err
	}
	if dry {
		return rs.Name, nil
	}
	if err := l.apply(in, res); err != nil {
		return "", fmt.Errorf("rollout: apply rule %s: %w", rs.Name, err)
	}
	l.rules = append(l.rules, rs)
	l.in, l.res, l.seq = in, res, seq
	return rs.Name, nil
}

func (l *Local) hasRule(name string) bool {
	for _, r := range l.base.GrayRules {
		if r.Name == name {
			return true
		}
	}
	for _, r := range l.rules {
		if r.Name == name {
			return true
		}
	}
	return false
}

func (l *Local) knownVNI(vni uint32) bool {
	for _, t := range l.in.Tenants {
		if slices.Contains(t.VNIs, vni) {
			return true
		}
	}
	return false
}

func (l *Local) vniList() string {
	var vs []int
	for _, t := range l.in.Tenants {
		for _, v := range t.VNIs {
			vs = append(vs, int(v))
		}
	}
	sort.Ints(vs)
	var s []string
	for _, v := range vs {
		s = append(s, fmt.Sprint(v))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Rollback removes a cutover rule; an unknown name is not an error. Rules of
// the base document are not cutovers and are refused.
func (l *Local) Rollback(ctx context.Context, rule string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.rules, func(r intent.RuleSpec) bool { return r.Name == rule })
	if i < 0 {
		for _, r := range l.base.GrayRules {
			if r.Name == rule {
				return fmt.Errorf("%w: rule %q is part of the intent, not a cutover: change the intent", ErrRefused, rule)
			}
		}
		return nil
	}
	rest := slices.Delete(slices.Clone(l.rules), i, i+1)
	in, res, err := l.build(rest)
	if err != nil {
		return err
	}
	if err := l.apply(in, res); err != nil {
		return fmt.Errorf("rollout: apply rollback of %s: %w", rule, err)
	}
	l.rules, l.in, l.res = rest, in, res
	return nil
}

// Probe runs the probes. Targets without an expectation get the one the
// compiled tables give (probe.Expect).
func (l *Local) Probe(ctx context.Context, targets []probe.Target, opts probe.Options) ([]probe.Result, error) {
	if l.prober == nil {
		return nil, errors.New("rollout: no prober configured")
	}
	l.mu.Lock()
	in, res := l.in, l.res
	l.mu.Unlock()
	ts := slices.Clone(targets)
	for i, t := range ts {
		if t.ExpectCluster == "" && t.ExpectPool == "" {
			e, err := probe.Expect(in, res, vipOf(in), []probe.Target{t})
			if err != nil {
				return nil, err
			}
			ts[i] = e[0]
		}
	}
	return l.prober.Run(ctx, ts, opts)
}

// vipOf returns the address of the intent's only VIP (expectations need one);
// with several VIPs, targets must carry their expectations.
func vipOf(in *intent.Intent) (a netip.Addr) {
	if len(in.VIPs) > 0 {
		a = in.VIPs[0].Address
	}
	return a
}
