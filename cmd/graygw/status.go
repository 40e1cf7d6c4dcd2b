package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the gateways, their sync state and the current rollout",
		Example: `  graygw status
  graygw status -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			st, err := cl.Status(ctx)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			// The rollout, when the controller has one (older controllers,
			// or none yet: nothing to show).
			if p, err := cl.RolloutStatus(ctx); err == nil && p != nil {
				st.Rollout = &RolloutSummary{Name: p.Plan.Name, State: string(p.State), Step: p.Step, Total: p.Total, Message: p.Message}
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
				if r := st.Rollout; r != nil {
					fmt.Fprintf(w, "\nrollout %s: %s, step %d of %d: %s\n", r.Name, r.State, r.Step, r.Total, r.Message)
				}
				if len(st.VNIs) == 0 {
					return
				}
				fmt.Fprintln(w)
				tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VNI\tTENANT\tSTATE\tPER VIP\tGRAY VMS\tRULES")
				for _, v := range st.VNIs {
					var per []string
					for _, p := range v.VIPs {
						per = append(per, p.VIP+"="+p.State)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.VNI, or(v.Tenant, "-"), v.State, or(strings.Join(per, ","), "-"),
						or(strings.Join(v.GrayVMs, ","), "-"), or(strings.Join(v.Rules, ","), "-"))
				}
				tw.Flush()
			})
		},
	}
}

func (a *app) countersCmd() *cobra.Command {
	var kind, gateway string
	c := &cobra.Command{
		Use:   "counters [--gateway NAME] [--kind rule|vip|pool|backend|drop|foreign]",
		Short: "Show the dataplane counters (VIPs, gray rules, backends, drop reasons)",
		Example: `  graygw counters
  graygw counters --kind rule
  graygw counters --gateway gw1 -j`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch kind {
			case "", "rule", "vip", "pool", "backend", "drop", "foreign":
			default:
				return usagef("--kind %q: want rule, vip, pool, backend, drop or foreign", kind)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Counters(ctx, gateway)
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
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			st, err := cl.BGP(ctx)
			if err != nil {
				return fmt.Errorf("bgp: %w", err)
			}
			return a.print(st, func(w io.Writer) { printBGP(w, st, "") })
		},
	}
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
	name, short, long := "drain", "Withdraw every VIP path through a gateway (BGP), until undrain", `drain withdraws every VIP path announced through GATEWAY: the peers stop sending
VIP traffic to it (within milliseconds), while it keeps its tables and keeps
forwarding what still reaches it. The drain is kept in the controller's store:
it survives controller restarts until 'graygw undrain GATEWAY'. Draining a
drained gateway changes nothing. Exit 1 when the controller runs without BGP or
the intent has no such gateway.`
	example := `  graygw drain gw1 --reason "kernel upgrade"
  graygw bgp`
	if !drain {
		name, short, long = "undrain", "Announce a drained gateway's VIP paths again", `undrain clears a drain: the gateway's VIP paths are announced again, as soon as
nothing else holds them back (its P4Runtime session, its health check, the
pools' backends; 'graygw bgp' says which).`
		example = `  graygw undrain gw1`
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
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			var res *DrainResult
			if drain {
				res, err = cl.Drain(ctx, gw, reason, actor)
			} else {
				res, err = cl.Undrain(ctx, gw, actor)
			}
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
		c.Flags().StringVar(&reason, "reason", "", "why, kept with the drain (shown by 'graygw bgp')")
	}
	c.Flags().StringVar(&actor, "actor", "", "who drains, recorded with the drain (default $USER)")
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
