package change

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// ProbeFunc probes targets through the VIP named vip (the intent's only VIP
// when empty).
type ProbeFunc func(ctx context.Context, vip string, targets []probe.Target, opts probe.Options) ([]probe.Result, error)

// Rollouts is the rollout.Controller (and rollout.VIPProber and
// rollout.IntentSource) a rollout.Runner drives in process: its cutovers and
// rollbacks are the Manager's, applied and waited for (the probes after a step
// must see the gateways hold it).
type Rollouts struct {
	// Changes applies the steps. Required.
	Changes *Manager
	// Prober runs the probes. Required.
	Prober ProbeFunc
	// Actor is who the rollout's changes are recorded as ("rollout" when nil).
	Actor func() string
	// Down, when set, says whether health checks declare an underlay
	// address down (the pool_healthy gate); nil: no health checks.
	Down func(netip.Addr) (down bool, why string)
	// Copies counts the copies the mirror rule named rule has made over every
	// gateway (mirror_counter); nil: a plan's mirror phase fails.
	Copies func(ctx context.Context, rule string) (uint64, error)
}

var (
	_ rollout.Controller   = Rollouts{}
	_ rollout.VIPProber    = Rollouts{}
	_ rollout.IntentSource = Rollouts{}
	_ rollout.Mirrorer     = Rollouts{}
)

func (r Rollouts) actor() string {
	if r.Actor == nil {
		return "rollout"
	}
	return r.Actor()
}

// Cutover implements rollout.Controller.
func (r Rollouts) Cutover(ctx context.Context, sc rollout.Scope, pool string, dry bool) (string, error) {
	req, err := scopeCutover(sc, pool)
	if err != nil {
		return "", fmt.Errorf("%w: %w", rollout.ErrRefused, err)
	}
	return r.cutover(ctx, req, dry)
}

// Mirror implements rollout.Mirrorer: the scope's rule keeps serving from the
// VIP's default pool and copies to pool.
func (r Rollouts) Mirror(ctx context.Context, sc rollout.Scope, pool string, rate int) (string, error) {
	req, err := scopeCutover(sc, "")
	if err != nil {
		return "", fmt.Errorf("%w: %w", rollout.ErrRefused, err)
	}
	req.MirrorPool, req.MirrorRate = pool, uint32(max(rate, 1))
	return r.cutover(ctx, req, false)
}

// MirrorCopies implements rollout.Mirrorer.
func (r Rollouts) MirrorCopies(ctx context.Context, rule string) (uint64, error) {
	if r.Copies == nil {
		return 0, fmt.Errorf("the mirror counters are not wired to the rollouts")
	}
	return r.Copies(ctx, rule)
}

// cutover applies req and waits for the gateways (Cutover and Mirror).
func (r Rollouts) cutover(ctx context.Context, req Cutover, dry bool) (string, error) {
	res, err := r.Changes.Cutover(ctx, req, Options{Actor: r.actor(), DryRun: dry, Wait: !dry})
	if err != nil {
		return "", err
	}
	if len(res.Problems) > 0 {
		return "", fmt.Errorf("%w: %w", rollout.ErrRefused, ProblemsError(res.Problems))
	}
	if res.WaitError != "" {
		// Applied, but not every gateway confirmed it: probes would test a
		// state nobody can vouch for. Take the rule out again.
		rb, rerr := r.Changes.Rollback(ctx, RollbackRule, res.Rule,
			Options{Actor: r.actor(), Summary: "rollout: remove rule " + res.Rule + ": the gateways did not confirm it"})
		undo := "removed again"
		if rerr != nil || len(rb.Problems) > 0 {
			var ps []Problem
			if rb != nil {
				ps = rb.Problems
			}
			undo = fmt.Sprintf("REMOVING IT FAILED (%v %v): roll back rule %s by hand", rerr, ps, res.Rule)
		}
		return "", fmt.Errorf("rule %s applied as intent version %d but the gateways did not confirm it: %s; the rule was %s",
			res.Rule, res.Version, res.WaitError, undo)
	}
	return res.Rule, nil
}

// scopeCutover turns a rollout scope into a cutover (VNI, VM or a percentage
// of a VNI: what plans produce).
func scopeCutover(sc rollout.Scope, pool string) (Cutover, error) {
	m := sc.Match
	req := Cutover{VIP: m.VIP, Pool: pool, Rule: sc.Name}
	if m.VNI == nil || m.Dst != "" || m.Tenant != "" || m.Proto != "" || m.SPort != nil || m.DPort != nil {
		return req, fmt.Errorf("scope %+v: a rollout step moves a VNI or a VM of a VNI", m)
	}
	req.VNI = uint32(*m.VNI)
	switch {
	case m.Src != "":
		p, err := netip.ParsePrefix(m.Src)
		if err != nil {
			var a netip.Addr
			a, err = netip.ParseAddr(m.Src)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil || !p.IsSingleIP() {
			return req, fmt.Errorf("scope: src %q is not one VM's address", m.Src)
		}
		a := p.Addr()
		req.Scope, req.Src = ScopeVM, a.String()
	case sc.Percent > 0 && sc.Percent < 100:
		req.Scope, req.Percent = ScopePercent, sc.Percent
	default:
		req.Scope = ScopeVNI
	}
	return req, nil
}

// Rollback implements rollout.Controller: the rule is removed and the gateways
// are waited for; a rule that is not there is already rolled back.
func (r Rollouts) Rollback(ctx context.Context, rule string) error {
	res, err := r.Changes.Rollback(ctx, RollbackRule, rule, Options{Actor: r.actor(), Wait: true})
	if err != nil {
		return err
	}
	for _, p := range res.Problems {
		if p.Class == "unknown_ref" && p.Path == "rollback.rule" {
			return nil
		}
	}
	if len(res.Problems) > 0 {
		return ProblemsError(res.Problems)
	}
	if res.WaitError != "" {
		// The rule is out of the intent; the engine brings the gateways there.
		// The probes after the rollback show where the traffic really goes.
		r.Changes.log.Warn("rollout: rule removed, but not every gateway confirmed it in time", "rule", rule, "wait_error", res.WaitError)
	}
	return nil
}

// Intent implements rollout.IntentSource: the intent in force, whose
// inventory fills in what a plan's VPCs leave out.
func (r Rollouts) Intent() *intent.Intent {
	in, _ := r.Changes.cfg.Engine.Intent()
	return in
}

// Probe implements rollout.Controller (the intent's only VIP).
func (r Rollouts) Probe(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	return r.ProbeVIP(ctx, "", ts, o)
}

// ProbeVIP implements rollout.VIPProber.
func (r Rollouts) ProbeVIP(ctx context.Context, vip string, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	return r.Prober(ctx, vip, ts, o)
}

var (
	_ rollout.CounterSource = Rollouts{}
	_ rollout.HealthSource  = Rollouts{}
)

// Drops implements rollout.CounterSource: every gateway's drop counters,
// summed by reason. A gateway whose counters cannot be read is an error (a
// gate must not pass on a gateway it did not see).
func (r Rollouts) Drops(ctx context.Context) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := r.eachCounters(ctx, func(cs *engine.Counters) {
		for reason, c := range cs.Drops {
			out[reason] += c.Packets
		}
	})
	return out, err
}

// RulePackets implements rollout.CounterSource: the rule's packets, summed
// over the gateways.
func (r Rollouts) RulePackets(ctx context.Context, rule string) (uint64, error) {
	var n uint64
	err := r.eachCounters(ctx, func(cs *engine.Counters) { n += cs.Rules[rule].Packets })
	return n, err
}

func (r Rollouts) eachCounters(ctx context.Context, f func(*engine.Counters)) error {
	eng := r.Changes.Engine()
	for _, gw := range eng.Gateways() {
		cs, err := eng.Counters(ctx, gw)
		if err != nil {
			return fmt.Errorf("counters of %s: %w", gw, err)
		}
		f(cs)
	}
	return nil
}

// Unhealthy implements rollout.HealthSource: the members of pool (weight
// above 0) whose underlay address health checks declare down. It fails when
// the controller runs no health checks.
func (r Rollouts) Unhealthy(_ context.Context, pool string) ([]string, error) {
	if r.Down == nil {
		return nil, fmt.Errorf("backend health checking is off (health.enabled in the controller's config)")
	}
	in, _ := r.Changes.Engine().Intent()
	if in == nil {
		return nil, fmt.Errorf("no intent in force")
	}
	addr := map[string]netip.Addr{}
	for _, b := range in.Backends {
		addr[b.Name] = b.UnderlayIP
	}
	for _, p := range in.Pools {
		if p.Name != pool {
			continue
		}
		var out []string
		for _, m := range p.Members {
			if m.Weight == 0 {
				continue
			}
			if down, why := r.Down(addr[m.Backend]); down {
				out = append(out, fmt.Sprintf("%s (%s): %s", m.Backend, addr[m.Backend], why))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no pool %q in the intent in force", pool)
}
