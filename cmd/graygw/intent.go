package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intentdiff"
)

func (a *app) applyCmd() *cobra.Command {
	var file string
	var offline bool
	var cf changeFlags
	c := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the intent (VIPs, pools, backends, tenants, gray rules)",
		Long: `apply validates the intent document (docs/intent.md) and makes it the intent in
force; the controller then writes the difference to every gateway, make before
break. The document is validated here first: every problem is listed by field
path and nothing is sent (exit 3).

--dry-run shows the table entries that would change without applying anything;
--wait returns only once every gateway holds the new version. --offline (with
--dry-run) does not contact the controller: it validates and compiles the
document locally and lists the entries it compiles to.`,
		Example: `  graygw apply -f intent.yaml --dry-run
  graygw apply -f intent.yaml --wait
  graygw apply -f intent.yaml --dry-run --offline -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, in, err := loadIntent(file)
			if err != nil {
				return err
			}
			if offline {
				if !cf.dry {
					return usagef("--offline needs --dry-run: applying needs the controller")
				}
				cs, err := offlineDiff(nil, in)
				if err != nil {
					return err
				}
				return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
			}
			req := &graygwv1.ApplyRequest{IntentYaml: string(data), Options: cf.options()}
			cs, err := ask(a, graygwv1.ControllerClient.Apply, req, func(resp *graygwv1.ApplyResponse) (*ChangeSet, error) {
				return changeSetOf(resp.GetResult(), cf.dry)
			})
			if err != nil {
				return fmt.Errorf("apply %s: %w", file, err)
			}
			return a.printChange(cs, "")
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "intent document (YAML); - for standard input")
	cf.add(c)
	c.Flags().BoolVar(&offline, "offline", false, "with --dry-run: validate and compile locally, without the controller")
	return c
}

func (a *app) diffCmd() *cobra.Command {
	var file, from string
	var to uint64
	c := &cobra.Command{
		Use:   "diff [-f FILE [--from OLD]] | --from N [--to M]",
		Short: "Show the table entries a new intent would change",
		Long: `diff compares the intent document with what the gateways hold (through the
controller) and lists the entries that would be inserted, modified or deleted.
Without -f it shows the drift: what the gateways hold that differs from the
intent in force. With --from it runs offline: both documents are validated and compiled locally
(the new one from the old one's tables, as the controller would) and compared.
With --from N (a version number) and no -f it compares two stored intent
versions object by object (gateways, VIPs, pools, members, backends, tenants,
rules, VPCs): version N with version M (--to; the current one by default).`,
		Example: `  graygw diff -f intent.yaml
  graygw diff                          # drift of the gateways from the intent
  graygw diff -f new.yaml --from old.yaml
  graygw diff --from 3 --to 5          # what changed between stored versions 3 and 5`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n, err := strconv.ParseUint(from, 10, 64); err == nil && file == "" {
				return a.versionDiff(n, to)
			}
			if cmd.Flags().Changed("to") {
				return usagef("--to compares stored versions: give --from a version number, and no -f")
			}
			var data []byte
			var in *intent.Intent
			if file != "" {
				var err error
				if data, in, err = loadIntent(file); err != nil {
					return err
				}
			} else if from != "" {
				return usagef("--from needs -f: the new document to compare with it")
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
			cs, err := ask(a, graygwv1.ControllerClient.Diff, &graygwv1.DiffRequest{IntentYaml: string(data)}, diffOf)
			if err != nil {
				return fmt.Errorf("diff: %w", err)
			}
			return a.print(cs, func(w io.Writer) { printChanges(w, cs, "") })
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "intent document (YAML); - for standard input")
	c.Flags().StringVar(&from, "from", "", "compare offline with this intent document instead of the gateways; or a stored version number (with --to)")
	c.Flags().Uint64Var(&to, "to", 0, "with --from N: the stored version to compare version N with (0: the current one)")
	return c
}

// versionDiff prints what differs between stored intent versions from and to
// (0: the current one), object by object.
func (a *app) versionDiff(from, to uint64) error {
	if from == 0 {
		return usagef("--from 0: versions are numbered from 1")
	}
	var da, db *IntentDoc
	var ia, ib *intent.Intent
	err := a.call(func(ctx context.Context, cl *apiClient) error {
		load := func(v uint64) (*IntentDoc, *intent.Intent, error) {
			resp, err := cl.Get(ctx, &graygwv1.GetRequest{Version: v})
			if err != nil {
				return nil, nil, fmt.Errorf("get version %d: %w", v, err)
			}
			doc := intentDocOf(resp)
			in, err := intent.Load([]byte(doc.YAML))
			if err != nil {
				return nil, nil, fmt.Errorf("intent version %d does not validate here (is this graygw older than the controller?): %w", doc.Version, err)
			}
			return doc, in, nil
		}
		var err error
		if da, ia, err = load(from); err != nil {
			return err
		}
		db, ib, err = load(to)
		return err
	})
	if err != nil {
		return err
	}
	res := VersionDiff{From: da.Version, To: db.Version, Differences: intentdiff.Compare(ia, ib)}
	if res.Differences == nil {
		res.Differences = []intentdiff.Difference{}
	}
	return a.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "intent version %d -> %d: %d differences\n", res.From, res.To, len(res.Differences))
		if len(res.Differences) == 0 {
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAME\tOP\tDETAILS")
		for _, d := range res.Differences {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Kind, d.Name, d.Op, strings.Join(d.Details, "; "))
		}
		tw.Flush()
	})
}

// VersionDiff is what differs between two stored intent versions.
type VersionDiff struct {
	From        uint64                  `json:"from"`
	To          uint64                  `json:"to"`
	Differences []intentdiff.Difference `json:"differences"`
}

// getKinds are the objects 'graygw get KIND' lists from the intent in force.
var getKinds = []string{"vips", "pools", "backends", "tenants", "rules", "gateways"}

func (a *app) getCmd() *cobra.Command {
	var rules bool
	var version uint64
	c := &cobra.Command{
		Use:   "get [vips|pools|backends|tenants|rules|gateways] [--version N]",
		Short: "Show the intent in force (or an older version), or one kind of its objects: VIPs, pools, backends, tenants, gray rules",
		Long: `get shows the intent document in force (docs/intent.md), with its version, or,
given a kind, a table of those objects of it: vips (address, default pool),
pools (cluster, hash fields, backends with weights), backends (underlay
address, MAC, port, pools), tenants (VNIs), rules (every gray rule, cutovers
and rollout steps included, with tier and priority) or gateways. --version N
reads an older version. -o json|yaml prints the same for scripts.`,
		Example: `  graygw get                 # the intent document in force, with its version
  graygw get vips
  graygw get pools
  graygw get backends -o json
  graygw get tenants
  graygw get rules           # every gray rule, cutovers included, with its priority (= --rules)
  graygw get --version 12    # an older version`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || len(args) == 1 && !slices.Contains(getKinds, args[0]) {
				return usagef("graygw get takes at most one kind (%s), got %q", strings.Join(getKinds, ", "), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := ""
			if len(args) == 1 {
				kind = args[0]
			}
			if rules {
				if kind != "" && kind != "rules" {
					return usagef("--rules with %q: pick one kind", kind)
				}
				kind = "rules"
			}
			doc, err := ask(a, graygwv1.ControllerClient.Get, &graygwv1.GetRequest{Version: version}, always(intentDocOf))
			if err != nil {
				return fmt.Errorf("get: %w", err)
			}
			switch kind {
			case "":
				return a.print(doc, func(w io.Writer) {
					fmt.Fprintf(w, "# intent version %d (current %d), %s by %s\n%s", doc.Version, doc.CurrentVersion,
						doc.Time.Format("2006-01-02 15:04:05Z07:00"), doc.Actor, doc.YAML)
				})
			case "rules":
				rs, err := rulesOf(doc)
				if err != nil {
					return err
				}
				return a.print(rs, func(w io.Writer) { printRules(w, rs) })
			}
			in, err := intent.Load([]byte(doc.YAML))
			if err != nil {
				return fmt.Errorf("the controller's intent version %d does not validate here (is this graygw older than the controller?): %w", doc.Version, err)
			}
			return a.printObjects(kind, in)
		},
	}
	c.Flags().BoolVar(&rules, "rules", false, "list the gray rules instead of the document (same as 'get rules')")
	c.Flags().Uint64Var(&version, "version", 0, "an older intent version (0: the one in force)")
	return c
}

// Objects of the intent, as 'graygw get KIND' prints them.
type (
	VIPRow struct {
		Name        string `json:"name" yaml:"name"`
		ID          uint16 `json:"id" yaml:"id"`
		Address     string `json:"address" yaml:"address"`
		DefaultPool string `json:"default_pool" yaml:"default_pool"`
	}
	PoolMemberRow struct {
		Backend string `json:"backend" yaml:"backend"`
		Weight  uint32 `json:"weight" yaml:"weight"`
	}
	PoolRow struct {
		Name       string          `json:"name" yaml:"name"`
		ID         uint16          `json:"id" yaml:"id"`
		Cluster    string          `json:"cluster" yaml:"cluster"`
		HashFields []string        `json:"hash_fields" yaml:"hash_fields"`
		Backends   []PoolMemberRow `json:"backends" yaml:"backends"`
	}
	BackendRow struct {
		Name       string   `json:"name" yaml:"name"`
		ID         uint16   `json:"id" yaml:"id"`
		UnderlayIP string   `json:"underlay_ip" yaml:"underlay_ip"`
		MAC        string   `json:"mac" yaml:"mac"`
		Port       uint16   `json:"port" yaml:"port"`
		Pools      []string `json:"pools" yaml:"pools"`
	}
	TenantRow struct {
		Name string   `json:"name" yaml:"name"`
		ID   uint16   `json:"id" yaml:"id"`
		VNIs []uint32 `json:"vnis" yaml:"vnis"`
	}
	GatewayRow struct {
		Name       string `json:"name" yaml:"name"`
		P4Runtime  string `json:"p4runtime" yaml:"p4runtime"`
		DeviceID   uint64 `json:"device_id" yaml:"device_id"`
		BGPNextHop string `json:"bgp_next_hop,omitempty" yaml:"bgp_next_hop,omitempty"`
		Ports      int    `json:"ports" yaml:"ports"`
	}
)

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

func (a *app) printObjects(kind string, in *intent.Intent) error {
	tw := func(w io.Writer, header string, rows func(io.Writer)) {
		t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(t, header)
		rows(t)
		t.Flush()
	}
	join := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ",")
	}
	switch kind {
	case "vips":
		rows := []VIPRow{}
		for _, v := range in.VIPs {
			rows = append(rows, VIPRow{v.Name, v.ID, v.Address.String(), v.DefaultPool})
		}
		return a.print(rows, func(w io.Writer) {
			tw(w, "NAME\tID\tADDRESS\tDEFAULT POOL", func(t io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(t, "%s\t%d\t%s\t%s\n", r.Name, r.ID, r.Address, r.DefaultPool)
				}
			})
		})
	case "pools":
		rows := []PoolRow{}
		for _, p := range in.Pools {
			r := PoolRow{Name: p.Name, ID: p.ID, Cluster: string(p.Cluster), HashFields: p.Hash.Names(), Backends: []PoolMemberRow{}}
			for _, m := range p.Members {
				r.Backends = append(r.Backends, PoolMemberRow{m.Backend, m.Weight})
			}
			rows = append(rows, r)
		}
		return a.print(rows, func(w io.Writer) {
			tw(w, "NAME\tID\tCLUSTER\tHASH FIELDS\tBACKENDS (WEIGHT)", func(t io.Writer) {
				for _, r := range rows {
					var ms []string
					for _, m := range r.Backends {
						ms = append(ms, fmt.Sprintf("%s(%d)", m.Backend, m.Weight))
					}
					fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\n", r.Name, r.ID, r.Cluster, join(r.HashFields), join(ms))
				}
			})
		})
	case "backends":
		pools := map[string][]string{}
		for _, p := range in.Pools {
			for _, m := range p.Members {
				pools[m.Backend] = append(pools[m.Backend], p.Name)
			}
		}
		rows := []BackendRow{}
		for _, b := range in.Backends {
			rows = append(rows, BackendRow{b.Name, b.ID, b.UnderlayIP.String(), macString(b.MAC), b.Port, append([]string{}, pools[b.Name]...)})
		}
		return a.print(rows, func(w io.Writer) {
			tw(w, "NAME\tID\tUNDERLAY IP\tMAC\tPORT\tPOOLS", func(t io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%d\t%s\n", r.Name, r.ID, r.UnderlayIP, r.MAC, r.Port, join(r.Pools))
				}
			})
		})
	case "tenants":
		rows := []TenantRow{}
		for _, tn := range in.Tenants {
			rows = append(rows, TenantRow{tn.Name, tn.ID, append([]uint32{}, tn.VNIs...)})
		}
		return a.print(rows, func(w io.Writer) {
			tw(w, "NAME\tID\tVNIS", func(t io.Writer) {
				for _, r := range rows {
					var vs []string
					for _, v := range r.VNIs {
						vs = append(vs, fmt.Sprint(v))
					}
					fmt.Fprintf(t, "%s\t%d\t%s\n", r.Name, r.ID, join(vs))
				}
			})
		})
	default: // gateways
		rows := []GatewayRow{}
		for _, g := range in.Gateways {
			nh := ""
			if g.BGPNextHop.IsValid() {
				nh = g.BGPNextHop.String()
			}
			rows = append(rows, GatewayRow{g.Name, g.P4Runtime, g.DeviceID, nh, len(g.Ports)})
		}
		return a.print(rows, func(w io.Writer) {
			tw(w, "NAME\tP4RUNTIME\tDEVICE ID\tBGP NEXT HOP\tPORTS", func(t io.Writer) {
				for _, r := range rows {
					fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%d\n", r.Name, r.P4Runtime, r.DeviceID, or(r.BGPNextHop, "-"), r.Ports)
				}
			})
		})
	}
}

func (a *app) historyCmd() *cobra.Command {
	var limit int
	var jsonl, follow bool
	var every time.Duration
	c := &cobra.Command{
		Use:   "history [--limit N] [--jsonl] [--follow]",
		Short: "List the changes and records (drains, failovers, rollout decisions), newest first",
		Long: `history lists the committed changes (apply, cutover, rollback...) and the
records that made no intent version (drain, undrain, health failover decisions,
rollout decisions: steps passed or failed with their gates, rollbacks, pauses,
resumes), newest first, each with its actor and, for records, the reason;
VERSIONS is "3->4" for a change and "@4" for a record made while version 4 was
in force. --jsonl writes them oldest first, one JSON object a line (for a SIEM
or a log pipeline; a record has "record": true); --follow then keeps writing
each new entry as it is stored (polling every --every), until interrupted.`,
		Example: `  graygw history
  graygw history --limit 5 -o yaml
  graygw history --limit 10000 --jsonl > audit.jsonl
  graygw history --jsonl --follow | my-log-shipper`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return usagef("--limit %d: want 1 to 10000", limit)
			}
			if every < 100*time.Millisecond {
				return usagef("--every %v: want at least 100ms", every)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			list := func(n int) ([]Event, error) {
				ctx, cancel := a.callCtx()
				defer cancel()
				resp, err := cl.History(ctx, &graygwv1.HistoryRequest{Limit: uint32(n)})
				if err != nil {
					return nil, fmt.Errorf("history: %w", err)
				}
				return eventsOf(resp), nil
			}
			evs, err := list(limit)
			if err != nil {
				return err
			}
			if !jsonl && !follow {
				return a.print(evs, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tOPERATION\tVERSIONS\tSUMMARY")
					for _, e := range evs {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), e.Actor, e.Operation, e.versions(), e.text())
					}
					tw.Flush()
				})
			}
			// Oldest first, as a stream: JSON lines, or table rows under one header.
			enc := json.NewEncoder(a.stdout)
			write := func(e Event) error {
				if jsonl {
					return enc.Encode(e)
				}
				_, err := fmt.Fprintf(a.stdout, "%d  %s  %s  %s  %s  %s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), e.Actor, e.Operation, e.versions(), e.text())
				return err
			}
			if !jsonl {
				fmt.Fprintln(a.stdout, "SEQ  TIME  ACTOR  OPERATION  VERSIONS  SUMMARY")
			}
			var last uint64
			for i := len(evs) - 1; i >= 0; i-- {
				if err := write(evs[i]); err != nil {
					return err
				}
				last = max(last, evs[i].Seq)
			}
			if !follow {
				return nil
			}
			const batch = 1000
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-a.ctx.Done():
					return nil // interrupted: the stream ends cleanly
				case <-t.C:
				}
				evs, err := list(batch)
				if err != nil {
					if a.ctx.Err() != nil {
						return nil
					}
					return err
				}
				var fresh []Event
				for _, e := range evs {
					if e.Seq > last {
						fresh = append(fresh, e)
					}
				}
				if len(fresh) == batch && fresh[len(fresh)-1].Seq > last+1 {
					fmt.Fprintf(a.stderr, "graygw: history: more than %d changes in %v: events %d to %d not written\n",
						batch, every, last+1, fresh[len(fresh)-1].Seq-1)
				}
				for i := len(fresh) - 1; i >= 0; i-- {
					if err := write(fresh[i]); err != nil {
						return err
					}
					last = fresh[i].Seq
				}
			}
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "how many changes to list (with --follow: to write before following)")
	c.Flags().BoolVar(&jsonl, "jsonl", false, "write the changes oldest first, one JSON object a line")
	c.Flags().BoolVar(&follow, "follow", false, "keep writing new changes as they are committed")
	c.Flags().DurationVar(&every, "every", time.Second, "with --follow: how often to ask the controller")
	return c
}

// rulesOf lists the gray rules of an intent document, resolved (tier and
// priority) by the same validation the controller runs.
func rulesOf(doc *IntentDoc) ([]Rule, error) {
	in, err := intent.Load([]byte(doc.YAML))
	if err != nil {
		return nil, fmt.Errorf("the controller's intent version %d does not validate here (is this graygw older than the controller?): %w", doc.Version, err)
	}
	rules := []Rule{}
	for _, r := range in.Rules {
		rules = append(rules, Rule{Name: r.Name, Tier: r.Tier.String(), Match: r.Match.String(), Pool: r.Pool, Percent: r.Percent, Priority: r.Priority})
	}
	return rules, nil
}

// loadIntent reads and validates an intent document. Problems wrap
// intent.Errors (exit 3).
func loadIntent(path string) ([]byte, *intent.Intent, error) { return load(path, intent.Load) }

// offlineDiff compiles old (nil: nothing installed) and new, new from old's
// tables as the controller would, and compares their entries gateway by gateway.
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
	cs := &ChangeSet{DryRun: true, Plans: []GatewayPlan{}}
	for _, g := range res.Gateways {
		have := map[string]compile.Entry{}
		if prev != nil {
			if pg, ok := prev.Gateway(g.Name); ok {
				for _, e := range pg.Entries {
					have[e.Key()] = e
				}
			}
		}
		gp := GatewayPlan{Gateway: g.Name, Note: "offline: compiled here, against the --from document", Groups: []ChangeGroup{}}
		add := func(op string, e compile.Entry) {
			gp.Changes = append(gp.Changes, EntryChange{Op: op, Table: shortTable(e.Table), Entry: e.String(), Origin: e.Origin})
		}
		for _, e := range g.Entries {
			o, ok := have[e.Key()]
			switch {
			case !ok:
				add("insert", e)
			case !o.Equal(&e):
				add("modify", e)
			}
			delete(have, e.Key())
		}
		var gone []compile.Entry
		for _, e := range have {
			gone = append(gone, e)
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].Key() < gone[j].Key() })
		for _, e := range gone {
			add("delete", e)
		}
		idx := map[ChangeGroup]int{}
		for _, c := range gp.Changes {
			switch c.Op {
			case "insert":
				gp.Inserts++
			case "modify":
				gp.Modifies++
			case "delete":
				gp.Deletes++
			}
			k := ChangeGroup{Op: c.Op, Table: c.Table, Origin: c.Origin}
			if i, ok := idx[k]; ok {
				gp.Groups[i].Count++
				continue
			}
			idx[k] = len(gp.Groups)
			k.Count = 1
			gp.Groups = append(gp.Groups, k)
		}
		cs.Plans = append(cs.Plans, gp)
	}
	return cs, nil
}

func shortTable(t string) string {
	const p = "GrayIngress."
	if len(t) > len(p) && t[:len(p)] == p {
		return t[len(p):]
	}
	return t
}

// printChange prints a change set and turns a wait that ended early into an
// error (exit 1): the change is stored but not yet on every gateway.
func (a *app) printChange(cs *ChangeSet, head string) error {
	if err := a.print(cs, func(w io.Writer) { printChanges(w, cs, head) }); err != nil {
		return err
	}
	if cs.WaitError != "" {
		return fmt.Errorf("version %d stored, but not every gateway holds it yet: %s ('graygw status' shows which)", cs.Version, cs.WaitError)
	}
	return nil
}

// printChanges writes a change set: what happened, then per gateway the
// counts and the groups of updates (by operation, table and intent object).
func printChanges(w io.Writer, cs *ChangeSet, head string) {
	if head != "" {
		fmt.Fprintln(w, head)
	}
	switch {
	case cs.Unchanged:
		fmt.Fprintf(w, "nothing to change (intent version %d)\n", cs.Version)
	case cs.DryRun:
		fmt.Fprintln(w, "dry run: nothing applied")
	case cs.Applied:
		fmt.Fprintf(w, "applied as intent version %d\n", cs.Version)
	}
	if cs.Summary != "" {
		fmt.Fprintln(w, cs.Summary)
	}
	if cs.WaitError != "" {
		fmt.Fprintf(w, "wait: %s\n", cs.WaitError)
	}
	for _, p := range cs.Plans {
		fmt.Fprintf(w, "\n%s: %d inserts, %d modifies, %d deletes", p.Gateway, p.Inserts, p.Modifies, p.Deletes)
		if p.Foreign > 0 {
			fmt.Fprintf(w, " (%d foreign entries removed)", p.Foreign)
		}
		if p.Note != "" {
			fmt.Fprintf(w, " [%s]", p.Note)
		}
		fmt.Fprintln(w)
		if len(p.Groups) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  OP\tTABLE\tORIGIN\tENTRIES")
		for _, g := range p.Groups {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", g.Op, shortTable(g.Table), g.Origin, g.Count)
		}
		tw.Flush()
	}
}

func printRules(w io.Writer, rules []Rule) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTIER\tPRIORITY\tMATCH\tPOOL\tPERCENT")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%g\n", r.Name, r.Tier, r.Priority, r.Match, r.Pool, r.Percent)
	}
	tw.Flush()
}

// changeFlags are the flags of every command that changes something.
type changeFlags struct {
	dry, wait   bool
	waitTimeout time.Duration
	actor       string
}

func (f *changeFlags) add(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.dry, "dry-run", false, "validate and show what would change, change nothing")
	fl.BoolVar(&f.wait, "wait", false, "return once every gateway holds the new version")
	positiveDurationVar(fl, &f.waitTimeout, "wait-timeout", 60*time.Second, "give up waiting after this long")
	fl.StringVar(&f.actor, "actor", "", "who makes the change, for the history (default $USER)")
}

// options are the API's options of the change the flags describe.
func (f *changeFlags) options() *graygwv1.ChangeOptions {
	o := &graygwv1.ChangeOptions{Actor: f.actor, DryRun: f.dry, Wait: f.wait}
	if o.Actor == "" {
		o.Actor = os.Getenv("USER")
	}
	if f.waitTimeout > 0 {
		o.WaitTimeout = durationpb.New(f.waitTimeout)
	}
	return o
}
