package main

import (
	"fmt"
	"io"
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
		Short: "Show the BGP peers and which VIPs are announced (and why not)",
		Example: `  graygw bgp
  graygw bgp -j`,
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
			return a.print(st, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PEER\tAS\tSTATE\tUPTIME\tRECEIVED\tADVERTISED")
				for _, p := range st.Peers {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\n", p.Address, p.ASN, p.State, p.Uptime, p.Received, p.Advertised)
				}
				tw.Flush()
				fmt.Fprintln(w)
				tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VIP\tNEXT HOP\tANNOUNCED\tREASON")
				for _, r := range st.Routes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Prefix, r.NextHop, yesNo(r.Announced), r.Reason)
				}
				tw.Flush()
			})
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
