package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/compile"
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
		local                               localProbe
		tcpPorts, udpPorts                  []int
		noICMP                              bool
	)
	c := &cobra.Command{
		Use:   "probe (--vm VNI/IP... [--router IP] | --vni N | --plan PLAN [--vni N]) [--tcp PORT] [--udp PORT] [--no-icmp]",
		Short: "Ping VMs' VPC router through the gateway and show which cluster answers",
		Long: `probe asks the controller to send VXLAN-encapsulated ICMP echo requests from its
probe host through the gateway: outer destination the VIP, inner source the VM,
inner destination the VPC router. The backend that answers is known by its
underlay address, so each VM is reported ok, lost, or wrong-backend (answered by a
backend of the other cluster), with round-trip times. Without --expect, the
controller expects what its own tables decide for that VM.

Targets come from --vm (repeatable, with --router) or from a rollout plan's VPCs
(--plan, optionally only --vni N). Without --router they come from the intent's
inventory (its vpcs section): --vni N probes every VM of the VPC, --vm VNI/IP (or
IP) that VM, each towards every route destination of its VPC (next hop, else the
prefix's first address). The controller expands them from its intent in force
(only the VNI or VMs are sent); with --local, the -f document's inventory. A
plan's VPC that names only its VNI takes its VMs from there too; a plan's
probe.tcp and probe.udp ports are probed too (TCP connect: ok, or refused by a
reset; UDP echo), one row each; --tcp, --udp and --no-icmp say the same for --vm
and --vni. The probes go to the VIP --vip names (the
plan's VIP with --plan; the intent's only VIP when it has one). Exit 4 when any
target is not ok; exit 1 when the controller has no probe host (its config's
probe: section).

--local sends the probes from this host instead (AF_PACKET, needs root), e.g.
from the hypervisor's namespace in the lab (--netns): the intent document (-f)
names the backends, and, without --expect, gives the expectations (what its
compiled tables decide for each probe). Probes go only to the VIP.`,
		Example: `  graygw probe --vm 5001/192.168.1.5 --router 192.168.1.1
  graygw probe --vm 5001/192.168.1.5 --vm 5001/192.168.1.6 --router 192.168.1.1 --expect gray
  graygw probe --vm 5001/fd00:1::5 --router fd00:1::1   # an IPv6 VM: ICMPv6 echo through the gateway
  graygw probe --plan plan.yaml --vni 5002 --count 10 --interval 50ms
  graygw probe --vni 5001                # every VM of VNI 5001 in the intent's inventory
  graygw probe --vm 5001/192.168.1.5     # that VM, towards each route of its VPC
  graygw probe --vni 5001 --tcp 443 --udp 53   # also TCP connect to 443 and UDP echo on 53
  graygw probe --local -f intent.yaml --netns hv --iface h0 --router-mac 02:00:00:00:10:fe \
      --vm 5001/192.168.1.5 --router 192.168.1.1`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			var targets []probe.Target
			// server, when set: the controller derives the targets from its
			// intent in force (inventory, or a plan naming only VNIs).
			var server *graygwv1.ProbeRequest
			vip := local.vip
			switch {
			case planFile != "" && len(vms) > 0:
				return usagef("give --vm or --plan, not both")
			case planFile != "":
				data, spec, err := loadPlan(planFile)
				if err != nil {
					return err
				}
				var v uint32
				if fs.Changed("vni") {
					if vni < 1 || vni > 0xffffff {
						return usagef("--vni %d: want 1 to 16777215", vni)
					}
					v = uint32(vni)
				}
				plan, err := spec.Validate()
				if err != nil {
					// VPCs that name only their VNI take their VMs and router
					// from the intent's inventory: the controller's (it
					// resolves the plan), or the -f document's with --local.
					if _, perr := spec.ValidatePartial(); perr != nil {
						return fmt.Errorf("%s: %w", planFile, perr)
					}
					if !local.on {
						if v != 0 && !slices.ContainsFunc(spec.VPCs, func(p rollout.VPCSpec) bool { return p.VNI == int64(v) }) {
							return usagef("--vni %d: unknown VNI %d, not a VPC of %s", v, v, planFile)
						}
						server = &graygwv1.ProbeRequest{PlanYaml: string(data), Vni: v}
						break
					}
					in, ierr := a.inventoryIntent(&local)
					if ierr != nil {
						return ierr
					}
					if plan, err = spec.ValidateWith(in); err != nil {
						return fmt.Errorf("%s: %w", planFile, err)
					}
				}
				if targets, err = probe.Targets(plan.VPCs, v, netip.Addr{}); err != nil {
					return usageErr(err)
				}
				targets = plan.WithChecks(targets) // the plan's TCP and UDP probes too
				if vip == "" {
					vip = plan.VIP
				}
			case router == "" && (len(vms) > 0 || fs.Changed("vni")):
				// From the intent's inventory: every VM of --vni, or the --vm
				// given, towards every route destination of its VPC. The
				// controller expands them (its intent in force); --local, the
				// -f document.
				var scopes []vmScope
				if len(vms) == 0 {
					if vni < 1 || vni > 0xffffff {
						return usagef("--vni %d: want 1 to 16777215", vni)
					}
					scopes = append(scopes, vmScope{vni: uint32(vni)})
				}
				for _, s := range vms {
					n, addr, err := parseVM(s, fs.Changed("vni"), vni)
					if err != nil {
						return err
					}
					scopes = append(scopes, vmScope{n, addr})
				}
				if !local.on {
					server = &graygwv1.ProbeRequest{}
					for _, sc := range scopes {
						is := &graygwv1.InventoryScope{Vni: sc.vni}
						if sc.vm.IsValid() {
							is.Vm = sc.vm.String()
						}
						server.Inventory = append(server.Inventory, is)
					}
					break
				}
				in, err := a.inventoryIntent(&local)
				if err != nil {
					return err
				}
				for _, sc := range scopes {
					ts, err := probe.IntentTargets(in, sc.vni, sc.vm)
					if err != nil {
						return usageErr(err)
					}
					targets = append(targets, ts...)
				}
			case len(vms) > 0:
				r, err := netip.ParseAddr(router)
				if err != nil || r.Zone() != "" || r.Is4In6() {
					return usagef("--router %q: give the VPC router's IPv4 or IPv6 address (the probes' inner destination)", router)
				}
				for _, s := range vms {
					n, addr, err := vmFlag(s)
					if err != nil {
						return err
					}
					// The inner packet is the VM's: one family, the router's.
					if addr.Is6() != r.Is6() {
						return usagef("--vm %s and --router %s: the VM and the router it probes are of one family (probe IPv4 and IPv6 VMs in two runs)", s, router)
					}
					targets = append(targets, probe.Target{VNI: n, VM: addr, Router: r, RouterMAC: routerMAC})
				}
			default:
				return usagef("nothing to probe: give --vm VNI/IP (with --router, or from the intent's inventory), --vni N (from the inventory) or --plan PLAN")
			}
			// --tcp, --udp, --no-icmp: what each target is probed with (a
			// plan says it in its probe section).
			if len(tcpPorts) > 0 || len(udpPorts) > 0 || noICMP {
				if planFile != "" {
					return usagef("--tcp, --udp and --no-icmp are for --vm and --vni: a plan says them in its probe section (probe.tcp, probe.udp, probe.icmp)")
				}
				icmp := !noICMP
				spec := rollout.ChecksSpec{ICMP: &icmp, TCP: tcpPorts, UDP: udpPorts}
				checks, err := spec.Checks("probe")
				if err != nil {
					return usagef("%s", strings.NewReplacer("probe.tcp", "--tcp", "probe.udp", "--udp", "probe.icmp: false", "--no-icmp").
						Replace(strings.TrimPrefix(err.Error(), rollout.ErrPlan.Error()+": ")))
				}
				targets = (&rollout.Plan{Checks: checks}).WithChecks(targets)
				if server != nil {
					server.Checks = &graygwv1.ProbeChecks{NoIcmp: noICMP}
					for _, c := range checks {
						switch c.Proto {
						case probe.ProtoTCP:
							server.Checks.Tcp = append(server.Checks.Tcp, uint32(c.Port))
						case probe.ProtoUDP:
							server.Checks.Udp = append(server.Checks.Udp, uint32(c.Port))
						}
					}
				}
			}
			switch expect {
			case "":
			case string(intent.ClusterBase), string(intent.ClusterGray):
				for i := range targets {
					targets[i].ExpectCluster = intent.Cluster(expect)
				}
				if server != nil {
					server.ExpectCluster = expect
				}
			default:
				return usagef("--expect %q: want base or gray", expect)
			}
			o := opts.WithDefaults()
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			if local.on {
				local.vip = vip
				rs, err := local.run(a, targets, o, expect != "", routerMAC)
				if err != nil {
					return err
				}
				return a.probeResults(rs)
			}
			req := server
			if req == nil {
				req = &graygwv1.ProbeRequest{}
				for _, t := range targets {
					req.Targets = append(req.Targets, convert.ProbeTarget(t))
				}
			}
			req.Vip, req.Options = vip, convert.ProbeOptions(o)
			rs, err := a.probe(req)
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			return a.probeResults(rs)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&vms, "vm", nil, "VM to probe, VNI/IP or IP (repeatable); without --router, towards its VPC's route destinations in the intent's inventory")
	f.StringVar(&router, "router", "", "VPC router address (inner destination) for --vm")
	f.StringVar(&routerMAC, "router-mac", "", "VPC router MAC for --vm (default: the controller's)")
	f.StringVar(&planFile, "plan", "", "probe the VMs of this rollout plan")
	f.Int64Var(&vni, "vni", 0, "with --plan: only this VNI; alone: every VM of this VNI in the intent's inventory")
	f.StringVar(&expect, "expect", "", "cluster that should answer: base or gray (default: what the tables decide)")
	f.IntSliceVar(&tcpPorts, "tcp", nil, "also connect to this TCP port of each destination (repeatable or comma-separated; a reset is refused)")
	f.IntSliceVar(&udpPorts, "udp", nil, "also send a UDP datagram to this port of each destination, which must be echoed (repeatable)")
	f.BoolVar(&noICMP, "no-icmp", false, "with --tcp or --udp: no ICMP echo")
	f.IntVar(&opts.Count, "count", probe.DefaultCount, "echo requests per VM (1-100)")
	positiveDurationVar(f, &opts.Interval, "interval", probe.DefaultInterval, "between rounds")
	positiveDurationVar(f, &opts.Timeout, "reply-timeout", probe.DefaultTimeout, "wait for replies after the last request")
	f.IntVar(&opts.MaxLoss, "max-loss", 0, "unanswered requests per VM still counted ok")
	f.BoolVar(&local.on, "local", false, "send the probes from this host, not the controller's probe host")
	f.StringVarP(&local.intentFile, "file", "f", "", "with --local: the intent document (backends, VIPs, expectations)")
	f.StringVar(&local.vip, "vip", "", "the VIP to probe through (name in the intent; default: the plan's, else the intent's only VIP)")
	f.StringVar(&local.netns, "netns", "", "with --local: network namespace to send from (name or path)")
	f.StringVar(&local.iface, "iface", "", "with --local: interface towards the gateway (default: the route's)")
	f.StringVar(&local.source, "source", "", "with --local: outer source address (default: the interface's); backends answer it")
	f.StringVar(&local.gatewayMAC, "gateway-mac", "", "with --local: next hop MAC towards the VIP (default: from the neighbour table)")
	return c
}

// vmScope is every VM of vni (vm invalid) or one VM (of vni, or of whichever
// VPC has it when vni is 0) of the intent's inventory.
type vmScope struct {
	vni uint32
	vm  netip.Addr
}

// parseVM parses --vm: VNI/IP, or IP alone (the VNI from --vni, else
// whichever VPC of the inventory has it: 0).
func parseVM(s string, haveVNI bool, vni int64) (uint32, netip.Addr, error) {
	vs, ip, ok := strings.Cut(s, "/")
	if !ok {
		ip, vs = s, ""
	}
	var n int64
	if vs != "" {
		var err error
		if n, err = strconv.ParseInt(vs, 10, 64); err != nil || n < 1 || n > 0xffffff {
			return 0, netip.Addr{}, usagef("--vm %q: want VNI/IP or IP, e.g. 5001/192.168.1.5 or 5001/2001:db8::5", s)
		}
	} else if haveVNI {
		if vni < 1 || vni > 0xffffff {
			return 0, netip.Addr{}, usagef("--vni %d: want 1 to 16777215", vni)
		}
		n = vni
	}
	addr, err := hostAddr(ip)
	if err != nil {
		return 0, netip.Addr{}, usagef("--vm %q: want VNI/IP or IP, e.g. 5001/192.168.1.5 or 5001/2001:db8::5", s)
	}
	return uint32(n), addr, nil
}

// inventoryIntent returns the -f document of --local, whose inventory (vpcs)
// gives probe targets. (Talking to a controller, the controller expands the
// inventory of its intent in force.)
func (a *app) inventoryIntent(l *localProbe) (*intent.Intent, error) {
	if l.intentFile == "" {
		return nil, usagef("--local needs -f INTENT: it names the backends and holds the inventory")
	}
	_, in, err := loadIntent(l.intentFile)
	return in, err
}

func (a *app) probeResults(rs []probe.Result) error {
	if err := a.print(rs, func(w io.Writer) { printProbeTable(w, rs) }); err != nil {
		return err
	}
	if bad := probe.Failed(rs); len(bad) > 0 {
		return fmt.Errorf("%d of %d targets not ok: %w", len(bad), len(rs), errProbeFailed)
	}
	return nil
}

// localProbe runs probes from this host.
type localProbe struct {
	on                                                bool
	intentFile, vip, netns, iface, source, gatewayMAC string
	routerMAC                                         *string
}

func (l *localProbe) run(a *app, targets []probe.Target, o probe.Options, haveExpect bool, routerMAC string) ([]probe.Result, error) {
	if l.intentFile == "" {
		return nil, usagef("--local needs -f INTENT: it names the backends that may answer")
	}
	_, in, err := loadIntent(l.intentFile)
	if err != nil {
		return nil, err
	}
	var vip netip.Addr
	switch {
	case l.vip != "":
		v, ok := in.VIP(l.vip)
		if !ok {
			return nil, usagef("--vip %q is not a VIP of %s", l.vip, l.intentFile)
		}
		vip = v.Address
	case len(in.VIPs) == 1:
		vip = in.VIPs[0].Address
	default:
		return nil, usagef("%s has %d VIPs: say which with --vip", l.intentFile, len(in.VIPs))
	}
	cfg := probe.Config{VIP: vip, NetNS: l.netns, Interface: l.iface, GatewayMAC: l.gatewayMAC, RouterMAC: routerMAC,
		Backends: probe.BackendsFromIntent(in)}
	if l.source != "" {
		if cfg.Source, err = netip.ParseAddr(l.source); err != nil || !cfg.Source.Is4() {
			return nil, usagef("--source %q: want an IPv4 address", l.source)
		}
	}
	if !haveExpect {
		res, err := compile.Compile(in, nil)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", l.intentFile, err)
		}
		if targets, err = probe.Expect(in, res, vip, targets); err != nil {
			return nil, fmt.Errorf("expectations from %s: %w", l.intentFile, err)
		}
	}
	p, err := probe.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("probe host: %w", err)
	}
	defer p.Close()
	rs, err := p.Run(a.ctx, targets, o)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return rs, nil
}

// probe asks the controller to send req's probes and returns their results.
func (a *app) probe(req *graygwv1.ProbeRequest) ([]probe.Result, error) {
	return ask(a, graygwv1.ControllerClient.Probe, req, func(resp *graygwv1.ProbeResponse) ([]probe.Result, error) {
		return convert.ProbeResultsFrom(resp.GetResults()), nil
	})
}
