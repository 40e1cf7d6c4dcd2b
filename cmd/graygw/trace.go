package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/trace"
	"github.com/graygw/graygw/pipeline"
)

// errTraceFlagged: a gateway's tables differ from the intent, a gateway
// could not be read, or the probe was answered by another backend; exit 4.
var errTraceFlagged = fmt.Errorf("trace: %w", errProbeFailed)

// TraceReport is graygw trace's output (-o json: its stable schema,
// docs/cli.md).
type TraceReport struct {
	// Flow is the flow traced, as given ("*" for what was left open).
	Flow string `json:"flow" yaml:"flow"`
	// Gateways is the flow's path through each gateway, over the entries
	// read back from it (controller/trace.Gateway).
	Gateways []trace.Gateway `json:"gateways" yaml:"gateways"`
	// Probe is the probe's result with --probe: who answered, and whether
	// it is the backend the trace gives.
	Probe *TraceProbe `json:"probe,omitempty" yaml:"probe,omitempty"`
}

// TraceProbe is a real probe sent along the traced flow.
type TraceProbe struct {
	Result probe.Result `json:"result" yaml:"result"`
	// AnsweredBy names the backends that answered; Traced the backend(s)
	// the trace gives; Match says they are the same.
	AnsweredBy string `json:"answered_by" yaml:"answered_by"`
	Traced     string `json:"traced" yaml:"traced"`
	Match      bool   `json:"match" yaml:"match"`
}

type traceFlags struct {
	vm, flow, vip, gateway string
	vni                    int64
	probe                  bool
	verbose                bool // --all-rules
	opts                   probe.Options
}

func (a *app) traceCmd() *cobra.Command {
	var f traceFlags
	c := &cobra.Command{
		Use:   "trace (--vm VNI/IP | --vni N --flow SPEC) [--vip NAME] [--gateway NAME] [--probe]",
		Short: "Show where a flow goes on each gateway, and why, from the gateway's own tables",
		Long: `trace asks the controller to read every gateway's tables back over P4Runtime and
run the flow through graygw's reference model over them (not over the intent).
For each gateway and VIP it shows the decision step by step: the VIP and
tenant, the gray rules of the flow's VPC by priority (the one that decided, and
why each other one did not: which field differs, or which rule won; -v lists
the other VPCs' rules too), the pool and the fields
it hashes on, the 18 hash key bytes (vni tenant src dst proto sport dport), the
CRC32 and bucket, the backend, and the rewritten frame (egress port, MACs,
outer destination). Beside it, what the intent's own entries decide: a gateway
that decides otherwise, or whose tables differ from the intent at all, is
flagged, with the entries that differ (missing, different, extra).

The flow, as cutover selects it:

  --vm VNI/IP             a VM's traffic: VNI and inner source; the rest is
                          left open (traced as 0: the output says when the
                          backend depends on it)
  --vni N --flow SPEC     one flow: PROTO/SRC[:SPORT]/DST[:DPORT], PROTO tcp,
                          udp, icmp or a number; * or a left-out port is open;
                          --vni 0 is plain (non-VXLAN) traffic to the VIP

--probe (with an icmp flow: --vni N --flow icmp/VM/ROUTER) then sends real VXLAN
echo requests along the flow from the controller's probe host and says which
backend answered, and whether it is the one the trace gives.

Exit 0 when every gateway holds the intent and decides as it says; 4 when one
does not, cannot be read, or the probe reached another backend; 2 for a bad
flow.`,
		Example: `  graygw trace --vm 5001/192.168.1.5
  graygw trace --vni 5001 --flow tcp/192.168.1.5:33001/192.168.1.1:22
  graygw trace --vni 5001 --flow udp/192.168.1.7:5353/10.0.0.2:53 --gateway gw1 -o json
  graygw trace --vni 5001 --flow icmp/192.168.1.5/192.168.1.1 --probe
  graygw trace --vni 0 --flow tcp/203.0.113.9:40000/*:443 --vip nat
  graygw trace --vm 5001/2001:db8::5
  graygw trace --vni 5001 --flow tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query(cmd)
			if err != nil {
				return err
			}
			if f.probe {
				if err := probeable(q); err != nil {
					return err
				}
				if err := f.opts.WithDefaults().Validate(); err != nil {
					return usageErr(err)
				}
			}
			gws, err := ask(a, graygwv1.ControllerClient.Trace, convert.TraceQuery(q, f.gateway), func(resp *graygwv1.TraceResponse) ([]trace.Gateway, error) {
				var out []trace.Gateway
				for _, g := range resp.GetGateways() {
					out = append(out, convert.GatewayTraceFrom(g))
				}
				return out, nil
			})
			if err != nil {
				return fmt.Errorf("trace: %w", err)
			}
			rep := &TraceReport{Flow: describeQuery(q), Gateways: gws}
			if f.probe {
				rep.Probe, err = f.sendProbe(a, q, gws)
				if err != nil {
					return fmt.Errorf("trace --probe: %w", err)
				}
			}
			if err := a.print(rep, func(w io.Writer) { printTrace(w, rep) }); err != nil {
				return err
			}
			if why := flagged(rep); why != "" {
				return fmt.Errorf("%w: %s", errTraceFlagged, why)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.vm, "vm", "", "a VM: VNI/IP (its other fields left open)")
	fl.Int64Var(&f.vni, "vni", 0, "VXLAN network id of the flow (0 = plain traffic), with --flow")
	fl.StringVar(&f.flow, "flow", "", "the flow: PROTO/SRC[:SPORT]/DST[:DPORT], with --vni")
	fl.StringVar(&f.vip, "vip", "", "the VIP the flow is sent to (name from the intent; default every VIP)")
	fl.StringVar(&f.gateway, "gateway", "", "trace through this gateway only (default all)")
	fl.BoolVar(&f.probe, "probe", false, "send a real probe along the flow (icmp flows) and say which backend answered")
	fl.IntVar(&f.opts.Count, "count", 0, "with --probe: echo requests (default 3)")
	fl.BoolVarP(&f.verbose, "all-rules", "v", false, "list every gray rule, not only those of the flow's VIP, VNI and tenant")
	return c
}

// query checks the selector flags and builds the flow. Every mistake is a
// usage error saying what to write instead.
func (f *traceFlags) query(cmd *cobra.Command) (*trace.Query, error) {
	fs := cmd.Flags()
	q := &trace.Query{VIP: f.vip, AllRules: f.verbose}
	switch {
	case changed(fs, "vm") && (changed(fs, "flow") || changed(fs, "vni")):
		return nil, usagef("give --vm VNI/IP or --vni N --flow SPEC, not both")
	case changed(fs, "vm"):
		var err error
		if q.VNI, q.Src, err = vmFlag(f.vm); err != nil {
			return nil, err
		}
		q.Open = []string{trace.FieldDst, trace.FieldProto, trace.FieldSPort, trace.FieldDPort}
	case changed(fs, "flow"):
		if !changed(fs, "vni") {
			return nil, usagef("--flow needs --vni N: the VPC the flow belongs to (--vni 0 for plain, non-VXLAN traffic)")
		}
		if f.vni < 0 || f.vni > 0xffffff {
			return nil, usagef("--vni %d: want 0 to 16777215", f.vni)
		}
		q.VNI, q.Plain = uint32(f.vni), f.vni == 0
		if err := parseTraceFlow(f.flow, q); err != nil {
			return nil, usageErr(err)
		}
	case changed(fs, "vni"):
		return nil, usagef("--vni alone selects a whole VPC, not a flow: add --flow PROTO/SRC[:SPORT]/DST[:DPORT], or give --vm VNI/IP")
	default:
		return nil, usagef("nothing to trace: give --vm VNI/IP or --vni N --flow PROTO/SRC[:SPORT]/DST[:DPORT]")
	}
	if err := q.Check(); err != nil {
		return nil, usageErr(err)
	}
	return q, nil
}

// parseTraceFlow reads PROTO/SRC[:SPORT]/DST[:DPORT] into q; what is * or
// left out is open. The source is required: it is the VM.
func parseTraceFlow(s string, q *trace.Query) error {
	const form = "want PROTO/SRC[:SPORT]/DST[:DPORT], e.g. tcp/192.168.1.5:33001/192.168.1.1:22 or tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22"
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return fmt.Errorf("--flow %q: %s", s, form)
	}
	ports := false
	switch p := parts[0]; p {
	case "tcp":
		q.Proto, ports = 6, true
	case "udp":
		q.Proto, ports = 17, true
	case "icmp":
		q.Proto = 1
	case "icmpv6":
		q.Proto = 58
	case "*", "":
		q.Open = append(q.Open, trace.FieldProto)
	default:
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return fmt.Errorf("--flow %q: protocol %q: want tcp, udp, icmp, icmpv6, a number 0-255 or *", s, p)
		}
		q.Proto, ports = uint8(n), n == 6 || n == 17
	}
	end := func(what, v string, portField string) (netip.Addr, uint16, error) {
		a, port, err := flowEnd(v)
		if err != nil {
			return a, 0, fmt.Errorf("--flow %q: %s %v", s, what, err)
		}
		if port == "" || port == "*" {
			if ports {
				q.Open = append(q.Open, portField)
			}
			return a, 0, nil
		}
		if !ports {
			return a, 0, fmt.Errorf("--flow %q: a %s port with protocol %s: ports only with tcp or udp", s, what, parts[0])
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return a, 0, fmt.Errorf("--flow %q: %s port %q: want 0-65535 or *", s, what, port)
		}
		return a, uint16(p), nil
	}
	var err error
	if q.Src, q.SPort, err = end("source", parts[1], trace.FieldSPort); err != nil {
		return err
	}
	if !q.Src.IsValid() {
		return fmt.Errorf("--flow %q: the source address is required (the VM, or the client of plain traffic)", s)
	}
	if q.Dst, q.DPort, err = end("destination", parts[2], trace.FieldDPort); err != nil {
		return err
	}
	switch {
	case q.Plain && q.Dst.IsValid():
		return fmt.Errorf("--flow %q: plain traffic's destination is the VIP: write * there (and --vip NAME to pick the VIP)", s)
	case !q.Dst.IsValid() && !q.Plain:
		q.Open = append(q.Open, trace.FieldDst)
	}
	return nil
}

// probeable says whether --probe can send q: the probes are VXLAN ICMP echo
// requests from a VM to a router address.
func probeable(q *trace.Query) error {
	if q.Plain || q.Proto != 1 || !q.Dst.IsValid() {
		return usagef("--probe sends VXLAN ICMP echo requests: trace --vni N --flow icmp/VM/ROUTER (e.g. icmp/192.168.1.5/192.168.1.1)")
	}
	return nil
}

// sendProbe probes the traced flow and compares who answered with the
// backend the trace gives.
func (f *traceFlags) sendProbe(a *app, q *trace.Query, gws []trace.Gateway) (*TraceProbe, error) {
	vip := f.vip
	traced := map[string]bool{}
	var names []string
	for _, g := range gws {
		for _, v := range g.VIPs {
			if vip == "" && len(g.VIPs) == 1 {
				vip = v.VIP
			}
			if v.Backend != "" && !traced[v.Backend] && (f.vip == "" || v.VIP == f.vip) {
				traced[v.Backend] = true
				names = append(names, v.Backend)
			}
		}
	}
	if vip == "" {
		return nil, usagef("the gateways hold several VIPs: say which one the probe goes to with --vip")
	}
	req := &graygwv1.ProbeRequest{Vip: vip, Options: convert.ProbeOptions(f.opts.WithDefaults()),
		Targets: []*graygwv1.ProbeTarget{convert.ProbeTarget(probe.Target{VNI: q.VNI, VM: q.Src, Router: q.Dst})}}
	rs, err := a.probe(req)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, errors.New("the controller answered no probe result")
	}
	p := &TraceProbe{Result: rs[0], AnsweredBy: rs[0].AnsweredBy(), Traced: strings.Join(names, ",")}
	p.Match = p.AnsweredBy != "" && len(names) == 1 && p.AnsweredBy == names[0]
	return p, nil
}

// flagged says what makes the trace fail, "" for nothing.
func flagged(rep *TraceReport) string {
	var why []string
	for _, g := range rep.Gateways {
		switch {
		case g.Error != "":
			why = append(why, g.Gateway+" could not be traced")
		case !g.InSync:
			why = append(why, g.Gateway+"'s tables differ from the intent")
		default:
			for _, v := range g.VIPs {
				if !v.AgreesWithIntent {
					why = append(why, fmt.Sprintf("%s decides otherwise than the intent for vip %s", g.Gateway, v.VIP))
				}
			}
		}
	}
	if p := rep.Probe; p != nil && !p.Match {
		if p.AnsweredBy == "" {
			why = append(why, "the probe was not answered")
		} else {
			why = append(why, fmt.Sprintf("the probe was answered by %s, the trace gives %s", p.AnsweredBy, p.Traced))
		}
	}
	return strings.Join(why, "; ")
}

// describeQuery writes the flow as the operator gave it.
func describeQuery(q *trace.Query) string {
	open := func(f string) bool {
		for _, o := range q.Open {
			if o == f {
				return true
			}
		}
		return false
	}
	proto := map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}[q.Proto]
	if proto == "" {
		proto = strconv.Itoa(int(q.Proto))
	}
	if open(trace.FieldProto) {
		proto = "*"
	}
	end := func(a netip.Addr, port uint16, field string) string {
		s := "*"
		if a.IsValid() {
			s = a.String()
		}
		switch {
		case open(field):
			s += ":*"
		case q.Proto == 6 || q.Proto == 17:
			s += ":" + strconv.Itoa(int(port))
		}
		return s
	}
	if len(q.Open) == 4 {
		return fmt.Sprintf("vni %d from %s (destination, protocol and ports open)", q.VNI, q.Src)
	}
	where := fmt.Sprintf("vni %d", q.VNI)
	if q.Plain {
		where = "plain"
	}
	dst := end(q.Dst, q.DPort, trace.FieldDPort)
	if q.Plain {
		dst = end(netip.Addr{}, q.DPort, trace.FieldDPort)
		dst = "VIP" + strings.TrimPrefix(dst, "*")
	}
	return fmt.Sprintf("%s %s %s -> %s", where, proto, end(q.Src, q.SPort, trace.FieldSPort), dst)
}

func printTrace(w io.Writer, rep *TraceReport) {
	fmt.Fprintf(w, "flow %s\n", rep.Flow)
	for _, g := range rep.Gateways {
		fmt.Fprintln(w)
		if g.Error != "" {
			fmt.Fprintf(w, "gateway %s: NOT TRACED: %s\n", g.Gateway, g.Error)
			continue
		}
		sync := "holds the intent"
		if !g.InSync {
			sync = "DIFFERS FROM THE INTENT"
		}
		fmt.Fprintf(w, "gateway %s: %d entries read back, intent version %d: %s\n", g.Gateway, g.EntriesRead, g.IntentVersion, sync)
		if len(g.VIPs) == 0 {
			fmt.Fprintln(w, "  no VIP on this gateway")
		}
		for _, v := range g.VIPs {
			printPath(w, &v)
		}
		if d := g.Drift; d != nil {
			fmt.Fprintf(w, "  drift: %d missing, %d different, %d extra entries\n", d.MissingCount, d.DifferCount, d.ExtraCount)
			for _, k := range []struct {
				what  string
				es    []string
				total int
			}{{"missing", d.Missing, d.MissingCount}, {"differs", d.Differ, d.DifferCount}, {"extra", d.Extra, d.ExtraCount}} {
				for _, e := range k.es {
					fmt.Fprintf(w, "    %-8s %s\n", k.what, e)
				}
				if k.total > len(k.es) {
					fmt.Fprintf(w, "    %-8s ... and %d more\n", k.what, k.total-len(k.es))
				}
			}
		}
	}
	if p := rep.Probe; p != nil {
		fmt.Fprintln(w)
		verdict := "the backend the trace gives"
		if !p.Match {
			verdict = "NOT the backend the trace gives (" + or(p.Traced, "none") + ")"
		}
		fmt.Fprintf(w, "probe %s: %d/%d answered, by %s: %s\n", p.Result.Target, p.Result.Received, p.Result.Sent, or(p.AnsweredBy, "nobody"), verdict)
	}
}

func printPath(w io.Writer, v *trace.VIPPath) {
	fmt.Fprintf(w, "  vip %s (%s, vip_id %d): %s", v.VIP, v.Address, v.VIPID, v.Verdict)
	if v.Reason != "" {
		fmt.Fprintf(w, " %s", v.Reason)
	}
	fmt.Fprintln(w)
	if v.Verdict == "pass" || (v.Verdict == "drop" && v.Reason != "NO_BACKEND") {
		printIntent(w, v)
		return
	}
	tenant := or(v.Tenant, "none")
	fmt.Fprintf(w, "    tenant    %s (id %d)\n", tenant, v.TenantID)
	for i, r := range v.Rules {
		if i == 0 {
			fmt.Fprintln(w, "    rules     by priority (* decided)")
		}
		mark := " "
		if r.Decided {
			mark = "*"
		}
		fmt.Fprintf(w, "      %s %-20s prio %-6d %s -> %s: %s\n", mark, r.Name, r.Priority, r.Action, r.Pool, r.Why)
	}
	if len(v.Rules) == 0 {
		fmt.Fprintln(w, "    rules     none for this VPC")
	}
	if v.OtherRules > 0 {
		fmt.Fprintf(w, "              (%d rules of other VIPs, VNIs or tenants not listed: -v lists them)\n", v.OtherRules)
	}
	pool := v.Pool
	if v.Rule == "" {
		pool += " (the VIP's default pool)"
	}
	fmt.Fprintf(w, "    pool      %s, pool_id %d, hashes on %s\n", pool, v.PoolID, strings.Join(v.HashFields, ", "))
	if v.SplitHash != nil {
		fmt.Fprintf(w, "    split     hash %d\n", *v.SplitHash)
	}
	fmt.Fprintf(w, "    hash key  %s  crc32 %#08x  bucket %d\n", groupKey(v.HashKey), v.CRC, v.Bucket)
	if v.Backend != "" {
		fmt.Fprintf(w, "    backend   %s (id %d)\n", v.Backend, v.BackendID)
	}
	if rw := v.Rewrite; rw != nil {
		fmt.Fprintf(w, "    rewrite   out port %d, dst mac %s, src mac %s, outer dst %s -> %s, outer src %s, ttl %d",
			rw.Port, rw.DstMAC, rw.SrcMAC, v.Address, rw.OuterDst, rw.OuterSrc, rw.TTL)
		if rw.DPort != 0 {
			fmt.Fprintf(w, ", dport %d", rw.DPort)
		}
		fmt.Fprintln(w)
	}
	if m := v.Mirror; m != nil {
		if m.Sampled {
			fmt.Fprintf(w, "    mirror    a copy to %s, bucket %d, backend %s\n", m.Pool, m.Bucket, or(m.Backend, "none (dropped)"))
		} else {
			fmt.Fprintf(w, "    mirror    this VM is not sampled for %s\n", m.Pool)
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "    note      %s\n", n)
	}
	printIntent(w, v)
}

func printIntent(w io.Writer, v *trace.VIPPath) {
	if v.AgreesWithIntent {
		fmt.Fprintln(w, "    intent    agrees")
		return
	}
	fmt.Fprintf(w, "    intent    DISAGREES: the intent's entries give %s\n", v.Intent)
}

// groupKey spaces the hash key bytes (18, or 42 for an IPv6 flow) by field: vni tenant src dst proto
// sport dport.
func groupKey(hex string) string {
	widths := map[int][]int{
		2 * pipeline.HashKeyLen:  {3, 2, 4, 4, 1, 2, 2},   // IPv4
		2 * pipeline.HashKey6Len: {3, 2, 16, 16, 1, 2, 2}, // IPv6
	}[len(hex)]
	if widths == nil {
		return hex
	}
	var parts []string
	i := 0
	for _, n := range widths {
		parts = append(parts, hex[i:i+2*n])
		i += 2 * n
	}
	return strings.Join(parts, " ")
}
