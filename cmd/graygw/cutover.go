package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/rollout"
)

// cutoverFlags are the selectors of a cutover.
type cutoverFlags struct {
	vni     int64
	vm      string
	prefix  string
	flow    string
	percent float64
	pool    string
	vip     string
	name    string
	change  changeFlags
}

func (a *app) cutoverCmd() *cobra.Command {
	var f cutoverFlags
	c := &cobra.Command{
		Use:   "cutover --pool POOL (--vni N [--percent P] | --vm VNI/IP | [--vni N] --prefix CIDR | [--vni N] --flow SPEC)",
		Short: "Move traffic to a pool (one VM, a VPC, a prefix, a flow, or a percentage)",
		Long: `cutover adds a gray rule that sends the selected traffic to --pool, usually the
gray cluster's pool. Pick exactly one selector:

  --vni N                 a whole VPC (VNI)
  --vni N --percent P     a sticky P% of the VPC's VMs: a VM (VNI, inner source)
                          is always on the same side; raise P by repeating the
                          cutover with the same --name
  --vm VNI/IP             one VM: its inner source address in that VNI (IPv4
                          or IPv6: 5001/2001:db8::5)
  [--vni N] --prefix CIDR the VMs of a subnet (of one VPC with --vni; IPv4 or
                          IPv6: 2001:db8::/64)
  [--vni N] --flow SPEC   one flow: PROTO/SRC[:SPORT]/DST[:DPORT], e.g.
                          tcp/192.168.1.5:33001/192.168.1.1:22 (a port left out
                          or * matches any; --vni 0 selects plain, non-VXLAN
                          traffic); IPv6 ends with a port in brackets:
                          tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22

The rule's name is printed; undo the last change with 'graygw rollback --step',
or this rule with 'graygw rollback --rule NAME'. The controller refuses (exit 3)
an unknown VNI, VIP or pool and a rule that would overlap another rule of equal
priority, listing why; nothing changes then.`,
		Example: `  graygw cutover --vm 5001/192.168.1.5 --pool gray-router --dry-run
  graygw cutover --vm 5001/192.168.1.5 --pool gray-router
  graygw cutover --vni 5001 --pool gray-router --vip vpc-router
  graygw cutover --vni 5001 --prefix 192.168.1.0/28 --pool gray-router
  graygw cutover --vni 5001 --flow tcp/192.168.1.5:33001/192.168.1.1:22 --pool gray-router
  graygw cutover --vm 5001/2001:db8::5 --pool gray-router
  graygw cutover --vni 5001 --prefix 2001:db8::/64 --pool gray-router
  graygw cutover --vni 5001 --flow tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22 --pool gray-router
  graygw cutover --vni 5002 --percent 10 --pool gray-router --name pct-5002
  graygw cutover --vni 5002 --percent 50 --pool gray-router --name pct-5002 --wait`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, err := f.scope(cmd)
			if err != nil {
				return err
			}
			req, err := cutoverRequest(scope, f.pool)
			if err != nil {
				return err
			}
			req.Options = f.change.options()
			cs, err := a.cutover(req)
			if err != nil {
				return fmt.Errorf("cutover: %w", err)
			}
			return a.printChange(cs, fmt.Sprintf("rule %s: %s -> pool %s", strings.Join(cs.Rules, ","), describeScope(scope), f.pool))
		},
	}
	fl := f.add(c)
	fl.Float64Var(&f.percent, "percent", 0, "sticky share of the VNI's VMs to move, 0 < P <= 100 (with --vni)")
	fl.StringVar(&f.pool, "pool", "", "target pool (required)")
	fl.StringVar(&f.vip, "vip", "", "restrict to this VIP (name from the intent)")
	return c
}

// add adds the flags cutover and mirror share to c: the selectors, the rule
// name and the change flags. It returns c's flags for the command's own.
func (f *cutoverFlags) add(c *cobra.Command) *pflag.FlagSet {
	fl := c.Flags()
	fl.Int64Var(&f.vni, "vni", 0, "VXLAN network id of the VPC (0 = plain traffic, with --flow)")
	fl.StringVar(&f.vm, "vm", "", "one VM: VNI/IP")
	fl.StringVar(&f.prefix, "prefix", "", "inner source prefix (CIDR), optionally with --vni")
	fl.StringVar(&f.flow, "flow", "", "one flow: PROTO/SRC[:SPORT]/DST[:DPORT], optionally with --vni")
	fl.StringVar(&f.name, "name", "", "rule name (default: derived by the controller from the scope)")
	f.change.add(c)
	return fl
}

// scope checks the selector flags and builds the cutover scope. Every mistake
// is a usage error (exit 2) saying what to write instead.
func (f *cutoverFlags) scope(cmd *cobra.Command) (rollout.Scope, error) {
	fs := cmd.Flags()
	var sc rollout.Scope
	if f.pool == "" {
		return sc, usagef("--pool is required: the pool to move the traffic to (e.g. the gray cluster's)")
	}
	hasVNI := changed(fs, "vni")
	n := 0
	for _, s := range []string{"vm", "prefix", "flow"} {
		if changed(fs, s) {
			n++
		}
	}
	switch {
	case n > 1:
		return sc, usagef("give one of --vm, --prefix, --flow (with --vni)")
	case n == 0 && !hasVNI:
		return sc, usagef("nothing selected: give --vni N, --vm VNI/IP, --vni N --prefix CIDR or --vni N --flow SPEC")
	case changed(fs, "vm") && hasVNI:
		return sc, usagef("--vm VNI/IP carries its VNI: drop --vni")
	}
	if hasVNI && (f.vni < 0 || f.vni > 0xffffff) {
		return sc, usagef("--vni %d: want 0 to 16777215", f.vni)
	}
	if hasVNI && f.vni == 0 && !changed(fs, "flow") {
		return sc, usagef("--vni 0 (plain traffic) only with --flow")
	}
	m := intent.MatchSpec{VIP: f.vip}
	if hasVNI {
		v := f.vni
		m.VNI = &v
	}
	switch {
	case changed(fs, "vm"): // an empty value is refused below, not a match-all
		n, addr, err := vmFlag(f.vm)
		if err != nil {
			return sc, err
		}
		vni := int64(n)
		m.VNI, m.Src = &vni, addr.String()
	case changed(fs, "prefix"):
		p, err := prefixFlag(f.prefix)
		if err != nil {
			return sc, err
		}
		m.Src = p.String()
	case changed(fs, "flow"):
		if err := parseFlow(f.flow, &m); err != nil {
			return sc, usageErr(err)
		}
	}
	if changed(fs, "percent") {
		if n > 0 {
			return sc, usagef("--percent splits the VMs of a VNI (--vni N alone); a VM, prefix or flow moves whole")
		}
		if !(f.percent > 0 && f.percent <= 100) {
			return sc, usagef("--percent %g: want more than 0, at most 100", f.percent)
		}
		sc.Percent = f.percent
	}
	sc.Match, sc.Name = m, f.name
	return sc, nil
}

// parseFlow reads PROTO/SRC[:SPORT]/DST[:DPORT]; an IPv6 end with a port is
// written [ADDR]:PORT.
func parseFlow(s string, m *intent.MatchSpec) error {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return fmt.Errorf("--flow %q: want PROTO/SRC[:SPORT]/DST[:DPORT], e.g. tcp/192.168.1.5:33001/192.168.1.1:22 or tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22", s)
	}
	switch parts[0] {
	case "tcp", "udp":
		m.Proto = parts[0]
	default:
		return fmt.Errorf("--flow %q: protocol %q: want tcp or udp", s, parts[0])
	}
	end := func(what, v string) (netip.Addr, *int64, error) {
		a, port, err := flowEnd(v)
		if err != nil {
			return a, nil, fmt.Errorf("--flow %q: %s %v", s, what, err)
		}
		if port == "" || port == "*" {
			return a, nil, nil
		}
		p, err := strconv.ParseInt(port, 10, 64)
		if err != nil || p < 0 || p > 65535 {
			return a, nil, fmt.Errorf("--flow %q: %s port %q: want 0-65535 or *", s, what, port)
		}
		return a, &p, nil
	}
	src, sport, err := end("source", parts[1])
	if err != nil {
		return err
	}
	dst, dport, err := end("destination", parts[2])
	if err != nil {
		return err
	}
	if src.IsValid() && dst.IsValid() && src.Is4() != dst.Is4() {
		return fmt.Errorf("--flow %q: the source %s and the destination %s are of different families", s, src, dst)
	}
	m.SPort, m.DPort = sport, dport
	if src.IsValid() {
		m.Src = src.String()
	}
	if dst.IsValid() {
		m.Dst = dst.String()
	}
	if m.Src == "" && m.Dst == "" && m.SPort == nil && m.DPort == nil {
		return fmt.Errorf("--flow %q selects every %s packet: give an address or a port", s, m.Proto)
	}
	return nil
}

// describeScope writes a scope the way an operator reads it.
func describeScope(sc rollout.Scope) string {
	m := sc.Match
	var parts []string
	if m.VIP != "" {
		parts = append(parts, "vip "+m.VIP)
	}
	if m.VNI != nil {
		parts = append(parts, fmt.Sprintf("vni %d", *m.VNI))
	}
	if m.Proto != "" {
		parts = append(parts, m.Proto)
	}
	if m.Src != "" || m.SPort != nil {
		parts = append(parts, "src "+endpoint(m.Src, m.SPort))
	}
	if m.Dst != "" || m.DPort != nil {
		parts = append(parts, "dst "+endpoint(m.Dst, m.DPort))
	}
	if sc.Percent > 0 && sc.Percent < 100 {
		parts = append(parts, fmt.Sprintf("%g%% of the VMs", sc.Percent))
	}
	return strings.Join(parts, " ")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *app) rollbackCmd() *cobra.Command {
	var step, all bool
	var rule string
	var cf changeFlags
	c := &cobra.Command{
		Use:   "rollback (--step | --rule NAME | --all)",
		Short: "Undo the last change, remove one cutover rule, or every gray rule",
		Long: `rollback moves traffic back:

  --step        undo the last change (apply, cutover or rollback) that was not
                itself undone; repeat to walk back through 'graygw history'
  --rule NAME   remove one gray rule (a cutover or rollout step, by the name
                'graygw get --rules' lists), whenever it was made
  --all         remove every gray rule: all traffic back to the VIPs' default pools

A rolled-back rule's traffic returns to the VIP's default pool (or to the next
rule that matches it).`,
		Example: `  graygw rollback --step --dry-run
  graygw rollback --step
  graygw rollback --rule router-v2.5001
  graygw rollback --all --wait`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, set := range []bool{step, rule != "", all} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usagef("give exactly one of --step (undo the last change), --rule NAME or --all")
			}
			req := &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: rule, Options: cf.options()}
			switch {
			case step:
				req.Mode = graygwv1.RollbackRequest_STEP
			case all:
				req.Mode = graygwv1.RollbackRequest_ALL
			}
			cs, err := a.rollback(req)
			if err != nil {
				return fmt.Errorf("rollback: %w", err)
			}
			head := "rolled back the last change"
			if len(cs.Rules) > 0 {
				head = "removed rules: " + strings.Join(cs.Rules, ", ")
			}
			return a.printChange(cs, head)
		},
	}
	c.Flags().BoolVar(&step, "step", false, "undo the last change")
	c.Flags().StringVar(&rule, "rule", "", "remove the gray rule of this name")
	c.Flags().BoolVar(&all, "all", false, "remove every gray rule")
	cf.add(c)
	return c
}

// cutover sends a cutover (or mirror) request; the change set names its rule.
func (a *app) cutover(req *graygwv1.CutoverRequest) (*ChangeSet, error) {
	return ask(a, graygwv1.ControllerClient.Cutover, req, func(resp *graygwv1.CutoverResponse) (*ChangeSet, error) {
		return changeSetOf(resp.GetResult(), req.GetOptions().GetDryRun(), resp.GetRule())
	})
}

// rollback sends a rollback request; the change set names the rules removed.
func (a *app) rollback(req *graygwv1.RollbackRequest) (*ChangeSet, error) {
	return ask(a, graygwv1.ControllerClient.Rollback, req, func(resp *graygwv1.RollbackResponse) (*ChangeSet, error) {
		return changeSetOf(resp.GetResult(), req.GetOptions().GetDryRun(), resp.GetRemovedRules()...)
	})
}

// cutoverRequest maps a scope onto the API's scopes (VNI, VM, prefix, flow,
// percent of a VNI).
func cutoverRequest(sc rollout.Scope, pool string) (*graygwv1.CutoverRequest, error) {
	m := sc.Match
	req := &graygwv1.CutoverRequest{Vip: m.VIP, Pool: pool, Rule: sc.Name}
	if m.Tenant != "" {
		return nil, fmt.Errorf("%w: a cutover by tenant", errUnsupported)
	}
	var vni *uint32
	if m.VNI != nil {
		v := uint32(*m.VNI)
		vni = &v
	}
	isAddr := func(s string) bool { _, err := hostAddr(s); return err == nil }
	asPrefix := func(s string) string {
		if a, err := hostAddr(s); err == nil {
			return netip.PrefixFrom(a, a.BitLen()).String()
		}
		return s
	}
	flow := m.Proto != "" || m.SPort != nil || m.DPort != nil
	switch {
	case sc.Percent > 0 && sc.Percent < 100:
		if vni == nil || m.Src != "" || m.Dst != "" || flow {
			return nil, usagef("--percent splits the VMs of one VNI: give --vni alone")
		}
		req.Scope = &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: *vni, Percent: sc.Percent}}
	case flow:
		if !isAddr(m.Src) || !isAddr(m.Dst) {
			return nil, usagef("the controller takes a flow with both addresses: PROTO/SRC[:SPORT]/DST[:DPORT] (a port may be * or left out; use --prefix for address ranges)")
		}
		f := &graygwv1.FlowScope{Vni: vni, Src: m.Src, Dst: m.Dst, Proto: m.Proto}
		if m.SPort != nil {
			f.Sport = uint32(*m.SPort)
		}
		if m.DPort != nil {
			f.Dport = uint32(*m.DPort)
		}
		req.Scope = &graygwv1.CutoverRequest_Flow{Flow: f}
	case vni != nil && m.Src != "" && isAddr(m.Src) && m.Dst == "":
		req.Scope = &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: *vni, Src: m.Src}}
	case m.Src != "" || m.Dst != "":
		p := &graygwv1.PrefixScope{Vni: vni}
		if m.Src != "" {
			p.Src = asPrefix(m.Src)
		}
		if m.Dst != "" {
			p.Dst = asPrefix(m.Dst)
		}
		req.Scope = &graygwv1.CutoverRequest_Prefix{Prefix: p}
	case vni != nil:
		req.Scope = &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: *vni}}
	default:
		return nil, usagef("nothing selected")
	}
	return req, nil
}
