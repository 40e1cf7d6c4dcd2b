package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
)

func (a *app) applyCmd() *cobra.Command {
	var file string
	var dry, offline bool
	c := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the intent (VIPs, pools, backends, tenants, gray rules)",
		Long: `apply validates the intent document (docs/intent.md) and makes it the intent in
force; the controller then writes the difference to every gateway, make before
break. The document is validated here first: every problem is listed by field
path and nothing is sent (exit 3).

--dry-run shows the table entries that would change without applying anything.
--offline (with --dry-run) does not contact the controller: it validates and
compiles the document locally and lists the entries it compiles to.`,
		Example: `  graygw apply -f intent.yaml --dry-run
  graygw apply -f intent.yaml
  graygw apply -f intent.yaml --dry-run --offline -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, in, err := loadIntent(file)
			if err != nil {
				return err
			}
			if offline {
				if !dry {
					return usagef("--offline needs --dry-run: applying needs the controller")
				}
				cs, err := offlineDiff(nil, in)
				if err != nil {
					return err
				}
				return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Apply(ctx, data, dry)
			if err != nil {
				return fmt.Errorf("apply %s: %w", file, err)
			}
			return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "intent document (YAML); - for standard input")
	c.Flags().BoolVar(&dry, "dry-run", false, "show what would change, change nothing")
	c.Flags().BoolVar(&offline, "offline", false, "with --dry-run: validate and compile locally, without the controller")
	return c
}

func (a *app) diffCmd() *cobra.Command {
	var file, from string
	c := &cobra.Command{
		Use:   "diff -f FILE [--from OLD]",
		Short: "Show the table entries a new intent would change",
		Long: `diff compares the intent document with what the gateways hold (through the
controller) and lists the entries that would be inserted, modified or deleted.
With --from it runs offline: both documents are validated and compiled locally
(the new one from the old one's tables, as the controller would) and compared.`,
		Example: `  graygw diff -f intent.yaml
  graygw diff -f new.yaml --from old.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, in, err := loadIntent(file)
			if err != nil {
				return err
			}
			if from != "" {
				_, old, err := loadIntent(from)
				if err != nil {
					return err
				}
				cs, err := offlineDiff(old, in)
				if err != nil {
					return err
				}
				return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			cs, err := cl.Diff(ctx, data)
			if err != nil {
				return fmt.Errorf("diff %s: %w", file, err)
			}
			return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "intent document (YAML); - for standard input")
	c.Flags().StringVar(&from, "from", "", "compare offline with this intent document instead of the gateways")
	return c
}

func (a *app) getCmd() *cobra.Command {
	var rules bool
	c := &cobra.Command{
		Use:   "get [--rules]",
		Short: "Show the intent in force, or its gray rules",
		Example: `  graygw get                 # the intent document in force, with its version
  graygw get --rules         # every gray rule, cutovers included
  graygw get -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			defer cancel()
			if rules {
				rs, err := cl.Rules(ctx)
				if err != nil {
					return fmt.Errorf("get rules: %w", err)
				}
				return a.print(rs, func(w io.Writer) { printRules(w, rs) })
			}
			doc, err := cl.Get(ctx)
			if err != nil {
				return fmt.Errorf("get: %w", err)
			}
			return a.print(doc, func(w io.Writer) {
				fmt.Fprintf(w, "# intent version %d, %s by %s\n%s", doc.Version, doc.Time.Format("2006-01-02 15:04:05Z07:00"), doc.Actor, doc.YAML)
			})
		},
	}
	c.Flags().BoolVar(&rules, "rules", false, "list the gray rules instead of the document")
	return c
}

// loadIntent reads and validates an intent document. Problems wrap
// intent.Errors (exit 3).
func loadIntent(path string) ([]byte, *intent.Intent, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	in, err := intent.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, in, nil
}

// offlineDiff compiles old (nil: nothing installed) and new, new from old's
// tables, and compares their entries gateway by gateway.
func offlineDiff(old, in *intent.Intent) (*ChangeSet, error) {
	var prev *compile.Result
	if old != nil {
		r, err := compile.Compile(old, nil)
		if err != nil {
			return nil, fmt.Errorf("compile --from: %w", err)
		}
		prev = r
	}
	res, err := compile.Compile(in, prev)
	if err != nil {
		return nil, fmt.Errorf("compile: %w: %w", errRefused, err)
	}
	cs := &ChangeSet{DryRun: true, Changes: []EntryChange{}}
	for _, g := range res.Gateways {
		have := map[string]compile.Entry{}
		if prev != nil {
			if pg, ok := prev.Gateway(g.Name); ok {
				for _, e := range pg.Entries {
					have[e.Key()] = e
				}
			}
		}
		for _, e := range g.Entries {
			o, ok := have[e.Key()]
			switch {
			case !ok:
				cs.Changes = append(cs.Changes, change(g.Name, "insert", e))
			case !o.Equal(&e):
				cs.Changes = append(cs.Changes, change(g.Name, "modify", e))
			}
			delete(have, e.Key())
		}
		var gone []compile.Entry
		for _, e := range have {
			gone = append(gone, e)
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].Key() < gone[j].Key() })
		for _, e := range gone {
			cs.Changes = append(cs.Changes, change(g.Name, "delete", e))
		}
	}
	return cs, nil
}

func change(gw, op string, e compile.Entry) EntryChange {
	return EntryChange{Gateway: gw, Op: op, Table: shortTable(e.Table), Entry: e.String(), Origin: e.Origin}
}

func shortTable(t string) string {
	const p = "GrayIngress."
	if len(t) > len(p) && t[:len(p)] == p {
		return t[len(p):]
	}
	return t
}

// printChanges writes a change set as a summary line and a table.
func printChanges(w io.Writer, cs *ChangeSet, head string) {
	if head != "" {
		fmt.Fprintln(w, head)
	}
	counts := map[string]int{}
	for _, c := range cs.Changes {
		counts[c.Op]++
	}
	state := "applied"
	if cs.DryRun {
		state = "dry run, nothing applied"
	}
	ver := ""
	if cs.Version != 0 {
		ver = fmt.Sprintf(", intent version %d", cs.Version)
	}
	fmt.Fprintf(w, "%d inserts, %d modifies, %d deletes (%s%s)\n", counts["insert"], counts["modify"], counts["delete"], state, ver)
	if len(cs.Changes) == 0 {
		return
	}
	// Bucket entries come by the thousand: one line per gateway, op and pool
	// (-o json or yaml lists each).
	type bucketKey struct{ gw, op, origin string }
	buckets := map[bucketKey]int{}
	var order []bucketKey
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tOP\tTABLE\tORIGIN\tENTRY")
	for _, c := range cs.Changes {
		if c.Table == "backend_select" {
			k := bucketKey{c.Gateway, c.Op, c.Origin}
			if buckets[k] == 0 {
				order = append(order, k)
			}
			buckets[k]++
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Gateway, c.Op, c.Table, c.Origin, c.Entry)
	}
	for _, k := range order {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d buckets\n", k.gw, k.op, "backend_select", k.origin, buckets[k])
	}
	tw.Flush()
}

func printRules(w io.Writer, rules []Rule) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMATCH\tPOOL\tPERCENT\tPRIORITY\tSOURCE")
	for _, r := range rules {
		src := "intent"
		if r.Cutover {
			src = "cutover"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%d\t%s\n", r.Name, r.Match, r.Pool, r.Percent, r.Priority, src)
	}
	tw.Flush()
}
