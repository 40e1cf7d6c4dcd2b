package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the gateways, their sync state and the current rollout",
		Example: `  graygw status
  graygw status -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st *Status
			err := a.call(func(ctx context.Context, cl *apiClient) error {
				resp, err := cl.Status(ctx, &graygwv1.StatusRequest{})
				if err != nil {
					return err
				}
				st = statusOf(resp)
				// The rollout, when the controller has one (older
				// controllers, or none yet: nothing to show).
				if r, err := cl.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{}); err == nil {
					if p, err := progressOf(r); err == nil {
						st.Rollout = rolloutSummaryOf(p)
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			return a.print(st, func(w io.Writer) {
				fmt.Fprintf(w, "intent version %d", st.IntentVersion)
				if st.Draining {
					fmt.Fprint(w, " (controller draining: changes are refused)")
				}
				fmt.Fprintln(w)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GATEWAY\tADDRESS\tSTATE\tVERSION\tIN SYNC\tENTRIES\tLAST RECONCILE\tRESULT")
				for _, g := range st.Gateways {
					last := "never"
					if !g.LastReconcile.IsZero() {
						last = g.LastReconcile.Format(time.RFC3339)
					}
					res := g.LastResult
					if g.LastError != "" {
						res += ": " + g.LastError
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", g.Name, g.Address, g.State(), g.Version, yesNo(g.InSync), g.Entries, last, res)
				}
				tw.Flush()
				if len(st.Replicas) > 0 {
					fmt.Fprintln(w)
					tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "CONTROLLER\tADDRESS\tROLE\tTERM\tAPI\tSTORE\tVERSION\tSTREAMS\tREPORTED")
					for _, r := range st.Replicas {
						role, term := "standby", "-"
						if r.Leader {
							role, term = "leader", fmt.Sprint(r.Term)
						}
						api, store, version, streams, reported := replicaHealth(r, time.Now())
						if !r.Leader && r.Health != nil && r.Health.Standby != "" {
							role += " (" + r.Health.Standby + ")"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, or(r.Address, "-"), role, term, api, store, version, streams, reported)
					}
					tw.Flush()
				}
				if r := st.Rollout; r != nil {
					fmt.Fprintf(w, "\nrollout %s: %s, step %d of %d: %s\n", r.Name, r.State, r.Step, r.Total, r.Message)
				}
				if len(st.VNIs) == 0 {
					return
				}
				fmt.Fprintln(w)
				tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VNI\tTENANT\tSTATE\tPER VIP\tGRAY VMS\tRULES\tMIRRORS")
				for _, v := range st.VNIs {
					var per []string
					for _, p := range v.VIPs {
						per = append(per, p.VIP+"="+p.State)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.VNI, or(v.Tenant, "-"), v.State, or(strings.Join(per, ","), "-"),
						or(strings.Join(v.GrayVMs, ","), "-"), or(strings.Join(v.Rules, ","), "-"), or(strings.Join(v.Mirrors, ","), "-"))
				}
				tw.Flush()
			})
		},
	}
}

func (a *app) countersCmd() *cobra.Command {
	var kind, gateway string
	c := &cobra.Command{
		Use:   "counters [--gateway NAME] [--kind rule|vip|pool|backend|drop|foreign|mirror|mirror-backend]",
		Short: "Show the dataplane counters (VIPs, gray rules, backends, drop reasons)",
		Example: `  graygw counters
  graygw counters --kind rule
  graygw counters --gateway gw1 -j`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch kind {
			case "", "rule", "vip", "pool", "backend", "drop", "foreign", "mirror", "mirror-backend":
			default:
				return usagef("--kind %q: want rule, vip, pool, backend, drop, foreign, mirror or mirror-backend", kind)
			}
			cs, err := ask(a, graygwv1.ControllerClient.Counters, &graygwv1.CountersRequest{Gateway: gateway}, always(countersOf))
			if err != nil {
				return fmt.Errorf("counters: %w", err)
			}
			if kind != "" {
				var rows []CounterRow
				for _, r := range cs.Rows {
					if r.Kind == kind {
						rows = append(rows, r)
					}
				}
				cs = &Counters{Rows: rows, Errors: cs.Errors}
			}
			err = a.print(cs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "GATEWAY\tKIND\tNAME\tPACKETS\tBYTES\t")
				for _, r := range cs.Rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t\n", r.Gateway, r.Kind, r.Name, r.Packets, r.Bytes)
				}
				tw.Flush()
				for _, e := range cs.Errors {
					fmt.Fprintf(w, "unreadable: %s\n", e)
				}
			})
			if err == nil && len(cs.Errors) > 0 {
				err = fmt.Errorf("counters of %d gateway(s) could not be read: %s", len(cs.Errors), strings.Join(cs.Errors, "; "))
			}
			return err
		},
	}
	c.Flags().StringVar(&kind, "kind", "", "only counters of this kind: rule, vip, pool, backend, drop or foreign")
	c.Flags().StringVar(&gateway, "gateway", "", "only this gateway")
	return c
}

func (a *app) bgpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bgp",
		Short: "Show the BGP peers and which VIPs are announced through which gateway (and why not)",
		Long: `bgp shows the controller's BGP speaker: its peers, the gateways as the announce
decision sees them (P4Runtime primary, healthy, drained), and every VIP through
every gateway: announced, or withdrawn with the reasons (p4runtime-disconnected,
health-check-failed, drained, no-healthy-backend) and what lies behind them.
Exit 1 when the controller runs without BGP.`,
		Example: `  graygw bgp
  graygw bgp -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.bgpStatus()
			if err != nil {
				return fmt.Errorf("bgp: %w", err)
			}
			return a.print(st, func(w io.Writer) { printBGP(w, st, "") })
		},
	}
}

// bgpStatus reads the BGP speaker's state.
func (a *app) bgpStatus() (*BGPStatus, error) {
	return ask(a, graygwv1.ControllerClient.BGPStatus, &graygwv1.BGPStatusRequest{}, always(bgpStatusOf))
}

// printBGP writes the BGP status as tables; gateway, when set, keeps only
// that gateway's rows.
func printBGP(w io.Writer, st *BGPStatus, gateway string) {
	if st.ASN != 0 {
		fmt.Fprintf(w, "AS %d, router id %s, health check %s\n", st.ASN, st.RouterID, or(st.HealthCheck, "-"))
	}
	if st.Error != "" {
		fmt.Fprintf(w, "speaker: %s\n", st.Error)
	}
	if gateway == "" {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tAS\tSTATE\tUPTIME\tRECEIVED\tADVERTISED\tGRACEFUL RESTART")
		for _, p := range st.Peers {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Address, p.ASN, p.State, or(p.Uptime, "-"), p.Received, p.Advertised, yesNo(p.GracefulRestart))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(st.Gateways) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GATEWAY\tNEXT HOP\tP4RUNTIME\tHEALTHY\tDRAINED\tSTATE")
		for _, g := range st.Gateways {
			if gateway != "" && g.Name != gateway {
				continue
			}
			drained := "no"
			if g.Drained {
				drained = fmt.Sprintf("yes, by %s at %s", g.DrainedBy, g.DrainedAt.Format(time.RFC3339))
				if g.DrainReason != "" {
					drained += " (" + g.DrainReason + ")"
				}
			}
			conn := "primary"
			if !g.Connected {
				conn = "no"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.NextHop, conn, yesNo(g.Healthy), drained, g.Detail)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tPREFIX\tNEXT HOP\tGATEWAY\tANNOUNCED\tSINCE\tREASON")
	var why []BGPRoute
	for _, r := range st.Routes {
		if gateway != "" && r.Gateway != gateway {
			continue
		}
		since := "-"
		if !r.Since.IsZero() {
			since = r.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", or(r.VIP, "-"), r.Prefix, r.NextHop, or(r.Gateway, "-"), yesNo(r.Announced), since, or(r.Reason, "-"))
		if !r.Announced && r.Detail != "" {
			why = append(why, r)
		}
	}
	tw.Flush()
	if len(why) > 0 {
		fmt.Fprintln(w, "\nwhy not announced:")
		for _, r := range why {
			fmt.Fprintf(w, "  %s via %s (%s): %s\n", r.Prefix, r.NextHop, r.Gateway, r.Detail)
		}
	}
}

func (a *app) drainCmd(drain bool) *cobra.Command {
	var reason, actor string
	var dry bool
	name, short, long := "drain", "Withdraw every VIP path through a gateway (BGP), until undrain", `drain withdraws every VIP path announced through GATEWAY: the peers stop sending
VIP traffic to it (within milliseconds), while it keeps its tables and keeps
forwarding what still reaches it. The drain is kept in the controller's store:
it survives controller restarts until 'graygw undrain GATEWAY'. Draining a
drained gateway changes nothing. Exit 1 when the controller runs without BGP or
the intent has no such gateway.`
	example := `  graygw drain gw1 --dry-run
  graygw drain gw1 --reason "kernel upgrade"
  graygw bgp`
	if !drain {
		name, short, long = "undrain", "Announce a drained gateway's VIP paths again", `undrain clears a drain: the gateway's VIP paths are announced again, as soon as
nothing else holds them back (its P4Runtime session, its health check, the
pools' backends; 'graygw bgp' says which).`
		example = `  graygw undrain gw1 --dry-run
  graygw undrain gw1`
	}
	c := &cobra.Command{
		Use:     name + " GATEWAY",
		Short:   short,
		Long:    long,
		Example: example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("%s takes one gateway name (as 'graygw status' lists them), got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			gw := args[0]
			if actor == "" {
				actor = os.Getenv("USER")
			}
			if dry {
				return a.drainDryRun(name, gw, drain)
			}
			res := &DrainResult{Gateway: gw, Drained: drain}
			err := a.call(func(ctx context.Context, cl *apiClient) error {
				var resp *graygwv1.DrainGatewayResponse
				var err error
				if drain {
					resp, err = cl.DrainGateway(ctx, &graygwv1.DrainGatewayRequest{Gateway: gw, Reason: reason, Actor: actor})
				} else {
					resp, err = cl.UndrainGateway(ctx, &graygwv1.UndrainGatewayRequest{Gateway: gw, Actor: actor, Reason: reason})
				}
				res.Changed, res.BGP = resp.GetChanged(), bgpStatusOf(resp.GetBgp())
				return err
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, gw, err)
			}
			return a.print(res, func(w io.Writer) {
				switch {
				case !res.Changed && drain:
					fmt.Fprintf(w, "gateway %s was already drained\n", gw)
				case !res.Changed:
					fmt.Fprintf(w, "gateway %s was not drained\n", gw)
				case drain:
					fmt.Fprintf(w, "gateway %s drained: its VIP paths are withdrawn\n", gw)
				default:
					fmt.Fprintf(w, "gateway %s undrained\n", gw)
				}
				if res.BGP != nil {
					fmt.Fprintln(w)
					printBGP(w, res.BGP, gw)
				}
			})
		},
	}
	if drain {
		c.Flags().StringVar(&reason, "reason", "", "why, kept with the drain (shown by 'graygw bgp') and in the history")
	} else {
		c.Flags().StringVar(&reason, "reason", "", "why, kept in the history")
	}
	c.Flags().StringVar(&actor, "actor", "", "who drains, recorded with the drain (default $USER)")
	c.Flags().BoolVar(&dry, "dry-run", false, "show the VIP paths that would be withdrawn (drain) or announced again (undrain), change nothing")
	return c
}

// DrainPlan is what drain or undrain --dry-run reports: the paths through the
// gateway that would change, from the controller's BGP status.
type DrainPlan struct {
	DryRun  bool   `json:"dry_run" yaml:"dry_run"`
	Action  string `json:"action" yaml:"action"` // drain or undrain
	Gateway string `json:"gateway" yaml:"gateway"`
	// Drained is the gateway's drain state now.
	Drained bool `json:"drained" yaml:"drained"`
	// Changes is false when the gateway already is in the asked state.
	Changes bool `json:"changes" yaml:"changes"`
	// Withdraw (drain) are the announced paths that would be withdrawn;
	// Announce (undrain) the paths held back by the drain alone, which would
	// be announced again; Stay (undrain) the paths other reasons keep
	// withdrawn.
	Withdraw []BGPRoute `json:"withdraw,omitempty" yaml:"withdraw,omitempty"`
	Announce []BGPRoute `json:"announce,omitempty" yaml:"announce,omitempty"`
	Stay     []BGPRoute `json:"stay_withdrawn,omitempty" yaml:"stay_withdrawn,omitempty"`
	BGP      *BGPStatus `json:"bgp" yaml:"bgp"`
}

// drainDryRun answers drain/undrain --dry-run from the BGP status alone: it
// sends no change. An unknown gateway is an error (exit 1), as the change would be.
func (a *app) drainDryRun(action, gw string, drain bool) error {
	st, err := a.bgpStatus()
	if err != nil {
		return fmt.Errorf("%s %s --dry-run: %w", action, gw, err)
	}
	var g *BGPGateway
	for i := range st.Gateways {
		if st.Gateways[i].Name == gw {
			g = &st.Gateways[i]
		}
	}
	if g == nil {
		names := []string{}
		for _, x := range st.Gateways {
			names = append(names, x.Name)
		}
		return fmt.Errorf("%s %s --dry-run: the intent has no gateway %q (gateways: %s; 'graygw status' lists them)", action, gw, gw, strings.Join(names, ", "))
	}
	plan := &DrainPlan{DryRun: true, Action: action, Gateway: gw, Drained: g.Drained, Changes: g.Drained != drain, BGP: st}
	for _, r := range st.Routes {
		if r.Gateway != gw {
			continue
		}
		switch {
		case drain && r.Announced && plan.Changes:
			plan.Withdraw = append(plan.Withdraw, r)
		case !drain && !r.Announced && plan.Changes:
			if r.Reason == "drained" {
				plan.Announce = append(plan.Announce, r)
			} else {
				plan.Stay = append(plan.Stay, r)
			}
		}
	}
	return a.print(plan, func(w io.Writer) {
		path := func(r BGPRoute) string {
			return fmt.Sprintf("%s %s via %s", r.VIP, r.Prefix, r.NextHop)
		}
		switch {
		case !plan.Changes && drain:
			fmt.Fprintf(w, "dry run: gateway %s is already drained: nothing would change\n", gw)
		case !plan.Changes:
			fmt.Fprintf(w, "dry run: gateway %s is not drained: nothing would change\n", gw)
		case drain:
			fmt.Fprintf(w, "dry run: drain %s would withdraw %d VIP path(s); nothing changed\n", gw, len(plan.Withdraw))
			for _, r := range plan.Withdraw {
				fmt.Fprintf(w, "  withdraw  %s\n", path(r))
			}
		default:
			fmt.Fprintf(w, "dry run: undrain %s would announce %d VIP path(s) again; nothing changed\n", gw, len(plan.Announce))
			for _, r := range plan.Announce {
				fmt.Fprintf(w, "  announce  %s\n", path(r))
			}
			for _, r := range plan.Stay {
				fmt.Fprintf(w, "  stays withdrawn  %s (%s)\n", path(r), strings.TrimPrefix(strings.ReplaceAll(","+r.Reason, ",drained", ""), ","))
			}
		}
		fmt.Fprintln(w)
		printBGP(w, st, gw)
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// replicaHealth is a replica's health in the status table's words: its API,
// the store's latency, the intent version it holds (against the store's),
// its gateway streams, and how old the report is.
func replicaHealth(r Replica, now time.Time) (api, store, version, streams, reported string) {
	h := r.Health
	if h == nil {
		return "-", "-", "-", "-", "never"
	}
	api = "ok"
	if !h.APIServing {
		api = "down (" + lastCause(h.APIError) + ")"
	}
	store = h.StoreLatency
	if d, err := time.ParseDuration(h.StoreLatency); err == nil {
		store = d.Round(10 * time.Microsecond).String()
	}
	if h.StoreError != "" {
		store = "error (" + lastCause(h.StoreError) + ")"
	}
	version = fmt.Sprint(h.Version)
	if h.Version != h.StoreVersion {
		version = fmt.Sprintf("%d (store %d)", h.Version, h.StoreVersion)
	}
	switch {
	case h.Gateways == 0:
		streams = "none"
	case r.Leader:
		streams = fmt.Sprintf("%d/%d primary", h.StreamsPrimary, h.Gateways)
	default:
		streams = fmt.Sprintf("%d/%d standby", h.StreamsStandby, h.Gateways)
	}
	reported = now.Sub(h.Reported).Round(100*time.Millisecond).String() + " ago"
	return api, store, version, streams, reported
}

// lastCause is the innermost cause of an error message (after its last ": "),
// short enough for a table cell; -o json has the whole message.
func lastCause(msg string) string {
	msg = strings.TrimRight(msg, "\")\"")
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}
