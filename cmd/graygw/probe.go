package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

func (a *app) probeCmd() *cobra.Command {
	var (
		planFile, router, routerMAC, expect string
		vms                                 []string
		vni                                 int64
		opts                                probe.Options
	)
	c := &cobra.Command{
		Use:   "probe (--vm VNI/IP... --router IP | --plan PLAN [--vni N])",
		Short: "Ping VMs' VPC router through the gateway and show which cluster answers",
		Long: `probe asks the controller to send VXLAN-encapsulated ICMP echo requests from its
probe host through the gateway: outer destination the VIP, inner source the VM,
inner destination the VPC router. The backend that answers is known by its
underlay address, so each VM is reported ok, lost, or wrong-backend (answered by a
backend of the other cluster), with round-trip times. Without --expect, the
controller expects what its own tables decide for that VM.

Targets come from --vm (repeatable, with --router) or from a rollout plan's VPCs
(--plan, optionally only --vni N). Exit 4 when any target is not ok.`,
		Example: `  graygw probe --vm 5001/192.168.1.5 --router 192.168.1.1
  graygw probe --vm 5001/192.168.1.5 --vm 5001/192.168.1.6 --router 192.168.1.1 --expect gray
  graygw probe --plan plan.yaml --vni 5002 --count 10 --interval 50ms`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			var targets []probe.Target
			switch {
			case planFile != "" && len(vms) > 0:
				return usagef("give --vm or --plan, not both")
			case planFile != "":
				data, err := readFile(planFile)
				if err != nil {
					return err
				}
				plan, err := rollout.LoadPlan(data)
				if err != nil {
					return fmt.Errorf("%s: %w", planFile, err)
				}
				var v uint32
				if fs.Changed("vni") {
					v = uint32(vni)
				}
				if targets, err = probe.Targets(plan.VPCs, v, netip.Addr{}); err != nil {
					return usageErr(err)
				}
			case len(vms) > 0:
				r, err := netip.ParseAddr(router)
				if err != nil || !r.Is4() {
					return usagef("--router %q: give the VPC router's IPv4 address (the probes' inner destination)", router)
				}
				for _, s := range vms {
					vs, ip, ok := strings.Cut(s, "/")
					n, err := strconv.ParseInt(vs, 10, 64)
					addr, aerr := netip.ParseAddr(ip)
					if !ok || err != nil || n < 1 || n > 0xffffff || aerr != nil || !addr.Is4() {
						return usagef("--vm %q: want VNI/IPv4, e.g. 5001/192.168.1.5", s)
					}
					targets = append(targets, probe.Target{VNI: uint32(n), VM: addr, Router: r, RouterMAC: routerMAC})
				}
			default:
				return usagef("nothing to probe: give --vm VNI/IP (with --router) or --plan PLAN")
			}
			switch expect {
			case "":
			case string(intent.ClusterBase), string(intent.ClusterGray):
				for i := range targets {
					targets[i].ExpectCluster = intent.Cluster(expect)
				}
			default:
				return usagef("--expect %q: want base or gray", expect)
			}
			o := opts.WithDefaults()
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			rs, err := cl.Probe(ctx, targets, o)
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if err := a.print(rs, func(w io.Writer) { printProbeTable(w, rs) }); err != nil {
				return err
			}
			if bad := notOK(rs); len(bad) > 0 {
				return fmt.Errorf("%d of %d targets not ok: %w", len(bad), len(rs), errProbeFailed)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringArrayVar(&vms, "vm", nil, "VM to probe, VNI/IP (repeatable)")
	f.StringVar(&router, "router", "", "VPC router address (inner destination) for --vm")
	f.StringVar(&routerMAC, "router-mac", "", "VPC router MAC for --vm (default: the controller's)")
	f.StringVar(&planFile, "plan", "", "probe the VMs of this rollout plan")
	f.Int64Var(&vni, "vni", 0, "with --plan: only this VNI")
	f.StringVar(&expect, "expect", "", "cluster that should answer: base or gray (default: what the tables decide)")
	f.IntVar(&opts.Count, "count", probe.DefaultCount, "echo requests per VM (1-100)")
	f.DurationVar(&opts.Interval, "interval", probe.DefaultInterval, "between rounds")
	f.DurationVar(&opts.Timeout, "reply-timeout", probe.DefaultTimeout, "wait for replies after the last request")
	f.IntVar(&opts.MaxLoss, "max-loss", 0, "unanswered requests per VM still counted ok")
	return c
}
