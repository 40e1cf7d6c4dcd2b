package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// mirrorCmd is `graygw mirror`: shadow traffic (docs/pipeline.md §10).
func (a *app) mirrorCmd() *cobra.Command {
	var f cutoverFlags
	var rate string
	var stop bool
	c := &cobra.Command{
		Use:   "mirror (--pool POOL (--vni N | --vm VNI/IP | [--vni N] --prefix CIDR | [--vni N] --flow SPEC) [--rate 1/N] | --stop)",
		Short: "Copy traffic to a pool (shadow traffic) while its VIP's default pool serves it",
		Long: `mirror adds a gray rule that keeps the selected traffic on the VIP's default pool
(the base cluster still serves it) and sends a copy of every frame to --pool,
usually the gray cluster's pool: the copy is rewritten for one of its backends
by the same consistent hash and marked DSCP 1 (Lower-Effort), so the gray
cluster discards its answers (docs/pipeline.md §10). Selectors are cutover's.

  --rate 1/N   copy the frames of 1 in N VMs only (sticky per VM; default: all)
  --stop       stop every mirror (a rule that only mirrors is removed)

A later 'graygw cutover' of the same selector (same derived rule name) turns
the mirror into the move: mirror for a while, check the gray pool's counters
('graygw counters'), then cut over. 'graygw rollback --rule NAME' removes one
mirror.`,
		Example: `  graygw mirror --vni 5001 --pool gray-router --rate 1/10 --dry-run
  graygw mirror --vm 5001/192.168.1.5 --pool gray-router --vip vpc-router
  graygw counters
  graygw cutover --vni 5001 --pool gray-router --vip vpc-router
  graygw mirror --stop`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stop {
				for _, fl := range []string{"pool", "vni", "vm", "prefix", "flow", "rate", "name", "vip"} {
					if changed(cmd.Flags(), fl) {
						return usagef("--stop stops every mirror: drop --%s (one mirror: graygw rollback --rule NAME)", fl)
					}
				}
				return a.stopMirrors(f.change)
			}
			if f.pool == "" {
				return usagef("--pool is required: the pool that receives the copies (e.g. the gray cluster's)")
			}
			if changed(cmd.Flags(), "percent") {
				return usagef("a mirror copies whole VMs: use --rate 1/N, not --percent")
			}
			scope, err := f.scope(cmd)
			if err != nil {
				return err
			}
			n, err := parseRate(rate)
			if err != nil {
				return err
			}
			req, err := cutoverRequest(scope, "")
			if err != nil {
				return err
			}
			req.Mirror = &graygwv1.MirrorSpec{Pool: f.pool, Rate: n}
			req.Options = f.change.options()
			cs, err := a.cutover(req)
			if err != nil {
				return fmt.Errorf("mirror: %w", err)
			}
			what := "every VM"
			if n > 1 {
				what = fmt.Sprintf("1 in %d VMs", n)
			}
			return a.printChange(cs, fmt.Sprintf("rule %s: %s copied to pool %s (%s)", strings.Join(cs.Rules, ","), describeScope(scope), f.pool, what))
		},
	}
	fl := f.add(c)
	fl.Float64Var(&f.percent, "percent", 0, "refused: a mirror samples with --rate")
	_ = fl.MarkHidden("percent")
	fl.StringVar(&f.pool, "pool", "", "pool that receives the copies (required)")
	fl.StringVar(&f.vip, "vip", "", "restrict to this VIP (name from the intent); its default pool serves")
	fl.StringVar(&rate, "rate", "", "copy 1 in N VMs: 1/N or N (default: every VM)")
	fl.BoolVar(&stop, "stop", false, "stop every mirror")
	return c
}

func (a *app) stopMirrors(cf changeFlags) error {
	cs, err := a.rollback(&graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_MIRRORS, Options: cf.options()})
	if err != nil {
		return fmt.Errorf("mirror --stop: %w", err)
	}
	head := "stopped every mirror"
	if len(cs.Rules) > 0 {
		head += "; removed rules: " + strings.Join(cs.Rules, ", ")
	}
	return a.printChange(cs, head)
}

// parseRate reads --rate: "1/N" or "N", N from 1 to 65536 ("": 1).
func parseRate(s string) (uint32, error) {
	if s == "" {
		return 1, nil
	}
	v := strings.TrimPrefix(strings.TrimSpace(s), "1/")
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > 65536 {
		return 0, usagef("--rate %q: want 1/N or N with N from 1 to 65536 (copy 1 in N VMs)", s)
	}
	return uint32(n), nil
}
