package main

import (
	"fmt"
	"io"
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
				fmt.Fprintf(w, "intent version %d\n", st.IntentVersion)
				if st.Rollout != "" {
					fmt.Fprintf(w, "rollout: %s\n", st.Rollout)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GATEWAY\tADDRESS\tSTATE\tENTRIES\tIN SYNC\tLAST RECONCILE\tERROR")
				for _, g := range st.Gateways {
					last := "never"
					if !g.LastReconcile.IsZero() {
						last = g.LastReconcile.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.Name, g.Address, g.State, g.Entries, yesNo(g.InSync), last, g.Error)
				}
				tw.Flush()
			})
		},
	}
}

func (a *app) countersCmd() *cobra.Command {
	var kind string
	c := &cobra.Command{
		Use:   "counters [--kind vip|rule|backend|drop]",
		Short: "Show the dataplane counters (VIPs, gray rules, backends, drop reasons)",
		Example: `  graygw counters
  graygw counters --kind rule
  graygw counters -j`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch kind {
			case "", "vip", "rule", "backend", "drop":
			default:
				return usagef("--kind %q: want vip, rule, backend or drop", kind)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Counters(ctx)
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
				cs = &Counters{Rows: rows}
			}
			return a.print(cs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintln(tw, "GATEWAY\tKIND\tNAME\tPACKETS\tBYTES\t")
				for _, r := range cs.Rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t\n", r.Gateway, r.Kind, r.Name, r.Packets, r.Bytes)
				}
				tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&kind, "kind", "", "only counters of this kind: vip, rule, backend or drop")
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
