package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

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
	dry     bool
}

func (a *app) cutoverCmd() *cobra.Command {
	var f cutoverFlags
	c := &cobra.Command{
		Use:   "cutover --pool POOL (--vni N | --vm VNI/IP | --vni N --prefix CIDR | --vni N --flow SPEC) [--percent P]",
		Short: "Move traffic to a pool (one VM, a VPC, a prefix, a flow, or a percentage)",
		Long: `cutover adds a gray rule that sends the selected traffic to --pool, usually the
gray cluster's pool. Pick exactly one selector:

  --vni N                 a whole VPC (VNI)
  --vm VNI/IP             one VM: its inner source address in that VNI
  --vni N --prefix CIDR   the VMs of a subnet of the VPC
  --vni N --flow SPEC     one flow: PROTO/SRC[:SPORT]/DST[:DPORT], e.g.
                          tcp/192.168.1.5:33001/192.168.1.1:22 (a port left out
                          or * matches any; --vni 0 selects plain, non-VXLAN traffic)

--percent P (with --vni or --prefix) moves a sticky P% of the selected VMs: a VM
(VNI, source) is always on the same side. The rule's name is printed; undo it
with 'graygw rollback --step NAME'. The controller refuses (exit 3) an unknown
VNI, VIP or pool and rules that would overlap another rule of equal priority.`,
		Example: `  graygw cutover --vm 5001/192.168.1.5 --pool gray-router --dry-run
  graygw cutover --vm 5001/192.168.1.5 --pool gray-router
  graygw cutover --vni 5001 --pool gray-router --vip vpc-router
  graygw cutover --vni 5001 --prefix 192.168.1.0/28 --pool gray-router
  graygw cutover --vni 5001 --flow tcp/192.168.1.5:33001/192.168.1.1:22 --pool gray-router
  graygw cutover --vni 5002 --percent 10 --pool gray-router`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, err := f.scope(cmd)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Cutover(ctx, scope, f.pool, f.dry)
			if err != nil {
				return fmt.Errorf("cutover: %w", err)
			}
			return a.print(cs, func(w io.Writer) {
				printChanges(w, cs, fmt.Sprintf("rule %s: %s -> pool %s", strings.Join(cs.Rules, ","), describeScope(scope), f.pool))
			})
		},
	}
	fl := c.Flags()
	fl.Int64Var(&f.vni, "vni", -1, "VXLAN network id of the VPC (0 = plain traffic, with --flow)")
	fl.StringVar(&f.vm, "vm", "", "one VM: VNI/IP")
	fl.StringVar(&f.prefix, "prefix", "", "inner source prefix (CIDR), with --vni")
	fl.StringVar(&f.flow, "flow", "", "one flow: PROTO/SRC[:SPORT]/DST[:DPORT], with --vni")
	fl.Float64Var(&f.percent, "percent", 0, "sticky share of the selected VMs to move, 0 < P <= 100 (with --vni or --prefix)")
	fl.StringVar(&f.pool, "pool", "", "target pool (required)")
	fl.StringVar(&f.vip, "vip", "", "restrict to this VIP (name from the intent)")
	fl.StringVar(&f.name, "name", "", "rule name (default: chosen by the controller)")
	fl.BoolVar(&f.dry, "dry-run", false, "check with the controller, change nothing")
	return c
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
	case (changed(fs, "prefix") || changed(fs, "flow")) && !hasVNI:
		return sc, usagef("--prefix and --flow need --vni (0 for plain traffic)")
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
	case f.vm != "":
		vs, ip, ok := strings.Cut(f.vm, "/")
		vni, err := strconv.ParseInt(vs, 10, 64)
		addr, aerr := netip.ParseAddr(ip)
		if !ok || err != nil || vni < 1 || vni > 0xffffff || aerr != nil || !addr.Is4() {
			return sc, usagef("--vm %q: want VNI/IPv4, e.g. 5001/192.168.1.5", f.vm)
		}
		m.VNI, m.Src = &vni, addr.String()
	case f.prefix != "":
		p, err := netip.ParsePrefix(f.prefix)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return sc, usagef("--prefix %q: want an IPv4 prefix without host bits, e.g. 192.168.1.0/28", f.prefix)
		}
		m.Src = p.String()
	case f.flow != "":
		if err := parseFlow(f.flow, &m); err != nil {
			return sc, usageErr(err)
		}
	}
	if changed(fs, "percent") {
		if f.vm != "" || f.flow != "" {
			return sc, usagef("--percent splits the VMs of a VNI or prefix; a VM or a flow moves whole")
		}
		if !(f.percent > 0 && f.percent <= 100) {
			return sc, usagef("--percent %g: want more than 0, at most 100", f.percent)
		}
		sc.Percent = f.percent
	}
	sc.Match, sc.Name = m, f.name
	return sc, nil
}

// parseFlow reads PROTO/SRC[:SPORT]/DST[:DPORT].
func parseFlow(s string, m *intent.MatchSpec) error {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return fmt.Errorf("--flow %q: want PROTO/SRC[:SPORT]/DST[:DPORT], e.g. tcp/192.168.1.5:33001/192.168.1.1:22", s)
	}
	switch parts[0] {
	case "tcp", "udp":
		m.Proto = parts[0]
	default:
		return fmt.Errorf("--flow %q: protocol %q: want tcp or udp", s, parts[0])
	}
	end := func(what, v string) (string, *int64, error) {
		host, port, hasPort := strings.Cut(v, ":")
		var addr string
		if host != "*" && host != "" {
			a, err := netip.ParseAddr(host)
			if err != nil || !a.Is4() {
				return "", nil, fmt.Errorf("--flow %q: %s address %q: want IPv4 or *", s, what, host)
			}
			addr = a.String()
		}
		if !hasPort || port == "*" {
			return addr, nil, nil
		}
		p, err := strconv.ParseInt(port, 10, 64)
		if err != nil || p < 0 || p > 65535 {
			return "", nil, fmt.Errorf("--flow %q: %s port %q: want 0-65535 or *", s, what, port)
		}
		return addr, &p, nil
	}
	var err error
	if m.Src, m.SPort, err = end("source", parts[1]); err != nil {
		return err
	}
	if m.Dst, m.DPort, err = end("destination", parts[2]); err != nil {
		return err
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
	port := func(p *int64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf(":%d", *p)
	}
	if m.Src != "" || m.SPort != nil {
		parts = append(parts, "src "+or(m.Src, "*")+port(m.SPort))
	}
	if m.Dst != "" || m.DPort != nil {
		parts = append(parts, "dst "+or(m.Dst, "*")+port(m.DPort))
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
	var step string
	var all, dry bool
	c := &cobra.Command{
		Use:   "rollback (--step NAME | --all)",
		Short: "Undo a cutover, or every cutover",
		Long: `rollback removes the gray rule a cutover (or a rollout step) added, so its traffic
returns to the VIP's default pool (or to the next rule that matches). --all removes
every cutover rule; rules written in the intent document are not cutovers and stay
(change the intent to remove them). Rolling back a rule that no longer exists is
not an error.`,
		Example: `  graygw rollback --step vm-5001-192.168.1.5 --dry-run
  graygw rollback --step router-v2.5001
  graygw rollback --all`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (step == "") == !all {
				return usagef("give --step NAME (a rule name from 'graygw get --rules') or --all")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Rollback(ctx, step, all, dry)
			if err != nil {
				return fmt.Errorf("rollback: %w", err)
			}
			return a.print(cs, func(w io.Writer) {
				printChanges(w, cs, fmt.Sprintf("rolled back: %s", or(strings.Join(cs.Rules, ", "), "nothing")))
			})
		},
	}
	c.Flags().StringVar(&step, "step", "", "name of the cutover rule to remove")
	c.Flags().BoolVar(&all, "all", false, "remove every cutover rule")
	c.Flags().BoolVar(&dry, "dry-run", false, "show what would change, change nothing")
	return c
}
