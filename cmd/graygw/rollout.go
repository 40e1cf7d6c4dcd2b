package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

func (a *app) rolloutCmd() *cobra.Command {
	c := &cobra.Command{
		Args:  cobra.ArbitraryArgs,
		Use:   "rollout",
		Short: "Run an automated rollout: VM by VM, then VPC by VPC, probing after each step",
		Long: `rollout moves the VPCs of a plan (docs/rollout.md) to the gray pool step by step:
in each VPC the first VMs one at a time, then the rest of the VPC, then the next
VPC. After every step the controller probes the plan's VMs with real packets; a
failed probe rolls that step back and stops the rollout (exit 4).

'rollout status' exits 0 while the rollout is running, paused or completed, and 4
when it failed or was aborted, so a script can poll it.`,
		Example: `  graygw rollout start -f plan.yaml --dry-run --offline   # list the steps
  graygw rollout start -f plan.yaml --wait
  graygw rollout status --follow
  graygw rollout pause
  graygw rollout resume
  graygw rollout abort`,
	}
	c.AddCommand(a.rolloutStartCmd(), a.rolloutStatusCmd(),
		a.rolloutActionCmd("pause", "Stop after the current step (its probes included)",
			"the rollout stays paused until 'rollout resume' or 'rollout abort'", graygwv1.ControllerClient.RolloutPause),
		a.rolloutActionCmd("resume", "Continue a paused rollout, or retry the failed step of a failed one",
			"a rollout interrupted by a controller restart resumes by re-checking the step it was in", graygwv1.ControllerClient.RolloutResume),
		a.rolloutActionCmd("abort", "Stop and roll back every step the rollout applied",
			"the plan's traffic returns to where it was before the rollout; use --wait to see it finish", graygwv1.ControllerClient.RolloutAbort))
	for _, s := range c.Commands() {
		s.Args = noArgs
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q: want start, status, pause, resume or abort", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	return c
}

func (a *app) rolloutStartCmd() *cobra.Command {
	var file string
	var dry, offline, wait bool
	var intentFile string
	c := &cobra.Command{
		Use:   "start -f PLAN",
		Short: "Start a rollout plan",
		Long: `start checks the plan here (every problem listed by field path, exit 3), then asks
the controller to start it: the controller dry-runs every step (an unknown VNI,
VIP or pool, or an overlap with another rule, refuses the whole plan: exit 3) and
probes every VM where it is now before moving anything (exit 4 when that fails).
--dry-run stops after those checks; with --offline it only checks the plan here
and lists its steps. A VPC of the plan may give only its VNI: its VMs and router
then come from the inventory (vpcs) of the intent in force (--offline: of the
--intent file).`,
		Example: `  graygw rollout start -f plan.yaml --dry-run --offline
  graygw rollout start -f plan.yaml --dry-run
  graygw rollout start -f plan.yaml --wait`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, spec, err := loadPlan(file)
			if err != nil {
				return err
			}
			if offline {
				if !dry {
					return usagef("--offline needs --dry-run: running a rollout needs the controller")
				}
				// VPCs that leave out their VMs take them from --intent.
				var in *intent.Intent
				if intentFile != "" {
					if _, in, err = loadIntent(intentFile); err != nil {
						return err
					}
				}
				plan, err := spec.ValidateWith(in)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				return a.print(plan.Steps, func(w io.Writer) { printSteps(w, plan) })
			}
			// The controller fills in what the plan's VPCs leave out from the
			// intent in force; everything else is checked here first.
			if _, err := spec.ValidatePartial(); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := a.callCtx()
			resp, err := cl.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: string(data), DryRun: dry, Actor: os.Getenv("USER")})
			cancel()
			var p *rollout.Progress
			if err == nil {
				p, err = progressOf(resp)
			}
			var pe *precheckError
			if errors.As(err, &pe) && len(pe.results) > 0 {
				if perr := a.print(pe.results, func(w io.Writer) {
					fmt.Fprintln(w, "precheck: the plan's VMs probed before any change; nothing was changed")
					printProbeTable(w, pe.results)
				}); perr != nil {
					return perr
				}
			}
			if err != nil {
				return fmt.Errorf("rollout start: %w", err)
			}
			if wait && !dry {
				return a.follow(cl, p)
			}
			return a.printProgress(p)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "rollout plan (YAML); - for standard input")
	c.Flags().BoolVar(&dry, "dry-run", false, "check the plan (and with the controller: dry-run every step and probe), change nothing")
	c.Flags().BoolVar(&offline, "offline", false, "with --dry-run: check the plan locally and list its steps, without the controller")
	c.Flags().BoolVar(&wait, "wait", false, "follow the progress until the rollout completes, fails or pauses")
	c.Flags().StringVar(&intentFile, "intent", "", "with --offline: the intent whose inventory (vpcs) gives the VMs and router a plan's VPC leaves out")
	return c
}

func (a *app) rolloutStatusCmd() *cobra.Command {
	var follow bool
	c := &cobra.Command{
		Use:   "status [--follow]",
		Short: "Show the rollout's progress: step N of M, current VNI, probe results",
		Example: `  graygw rollout status
  graygw rollout status --follow
  graygw rollout status -o yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			p, err := rolloutStatus(cl, a.callCtx)
			if err != nil {
				return fmt.Errorf("rollout status: %w", err)
			}
			if follow {
				return a.follow(cl, p)
			}
			return a.printProgress(p)
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "w", false, "keep printing progress until the rollout stops")
	return c
}

// rolloutAction is one of the API's rollout actions (pause, resume, abort).
type rolloutAction func(graygwv1.ControllerClient, context.Context, *graygwv1.RolloutActionRequest, ...grpc.CallOption) (*graygwv1.RolloutResponse, error)

func (a *app) rolloutActionCmd(name, short, long string, act rolloutAction) *cobra.Command {
	var wait, dry bool
	c := &cobra.Command{
		Use:   name,
		Short: short,
		Long: short + ": " + long + ".\n\n--dry-run reads the rollout's progress and says what " + name +
			" would do (or why the controller would refuse it: exit 3), changing nothing.",
		Example: "  graygw rollout " + name + " --dry-run\n  graygw rollout " + name,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dry && wait {
				return usagef("--dry-run and --wait: a dry run changes nothing to wait for")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			if dry {
				p, err := rolloutStatus(cl, a.callCtx)
				if err != nil {
					return fmt.Errorf("rollout %s --dry-run: %w", name, err)
				}
				return a.printActionPlan(rolloutActionPlan(name, p))
			}
			ctx, cancel := a.callCtx()
			resp, err := act(cl, ctx, &graygwv1.RolloutActionRequest{Actor: os.Getenv("USER")})
			cancel()
			var p *rollout.Progress
			if err == nil {
				p, err = progressOf(resp)
			}
			if err != nil {
				return fmt.Errorf("rollout %s: %w", name, err)
			}
			if wait {
				return a.follow(cl, p)
			}
			return a.printProgress(p)
		},
	}
	c.Flags().BoolVar(&wait, "wait", false, "follow the progress until the rollout stops")
	c.Flags().BoolVar(&dry, "dry-run", false, "say what the action would do to the current rollout, change nothing")
	return c
}

// ActionPlan is what rollout pause, resume or abort --dry-run reports.
type ActionPlan struct {
	DryRun bool   `json:"dry_run" yaml:"dry_run"`
	Action string `json:"action" yaml:"action"`
	Plan   string `json:"plan" yaml:"plan"`
	State  string `json:"state" yaml:"state"`
	// Refused says why the controller would refuse the action (exit 3);
	// empty when it would take it.
	Refused string `json:"refused,omitempty" yaml:"refused,omitempty"`
	// Changes is false when the action would change nothing (pausing a
	// paused rollout).
	Changes bool   `json:"changes" yaml:"changes"`
	Effect  string `json:"effect" yaml:"effect"`
	// RollBack (abort) are the steps whose rules would be removed, newest first.
	RollBack []rollout.StepRecord `json:"roll_back,omitempty" yaml:"roll_back,omitempty"`
}

// rolloutActionPlan mirrors the state checks of rollout.Runner's Pause, Resume
// and Abort on a progress read from the controller.
func rolloutActionPlan(action string, p *rollout.Progress) *ActionPlan {
	ap := &ActionPlan{DryRun: true, Action: action, Plan: p.Plan.Name, State: string(p.State)}
	cur := func() string {
		if p.Step >= 1 && p.Step <= len(p.Steps) {
			return fmt.Sprintf("step %d of %d (%s)", p.Step, p.Total, p.Steps[p.Step-1].Step)
		}
		return fmt.Sprintf("step %d of %d", p.Step, p.Total)
	}
	switch action {
	case "pause":
		switch p.State {
		case rollout.StatePaused:
			ap.Effect = "already paused at " + cur() + ": nothing would change"
		case rollout.StateRunning:
			ap.Changes = true
			ap.Effect = "would pause after " + cur() + " and its probes; later steps wait for resume"
		default:
			ap.Refused = fmt.Sprintf("%q is %s: only a running rollout pauses", p.Plan.Name, p.State)
		}
	case "resume":
		switch p.State {
		case rollout.StatePaused:
			ap.Changes = true
			ap.Effect = "would continue after " + cur()
			if p.Step >= 1 && p.Step <= len(p.Steps) && p.Steps[p.Step-1].State != rollout.StepDone {
				ap.Effect = "would redo " + cur() + " (interrupted while " + string(p.Steps[p.Step-1].State) + ") and go on"
			}
		case rollout.StateFailed:
			ap.Changes = true
			ap.Effect = "would retry the failed " + cur() + " and go on"
		default:
			ap.Refused = fmt.Sprintf("%q is %s: only a paused or failed rollout resumes", p.Plan.Name, p.State)
		}
	case "abort":
		switch p.State {
		case rollout.StateAborted, rollout.StateCompleted:
			ap.Refused = fmt.Sprintf("%q is %s (to undo a completed rollout, roll back its rules: graygw rollback --rule NAME)", p.Plan.Name, p.State)
		default:
			ap.Changes = true
			for i := len(p.Steps) - 1; i >= 0; i-- {
				switch p.Steps[i].State {
				case rollout.StepDone, rollout.StepProbing, rollout.StepApplying:
					ap.RollBack = append(ap.RollBack, p.Steps[i])
				}
			}
			ap.Effect = fmt.Sprintf("would stop the rollout and roll back %d step(s), newest first, then probe", len(ap.RollBack))
		}
	}
	return ap
}

func (a *app) printActionPlan(ap *ActionPlan) error {
	if err := a.print(ap, func(w io.Writer) {
		if ap.Refused != "" {
			return // the error says it
		}
		fmt.Fprintf(w, "dry run: rollout %s of %s (%s) %s; nothing changed\n", ap.Action, ap.Plan, ap.State, ap.Effect)
		for _, r := range ap.RollBack {
			rule := r.Rule
			if rule == "" {
				rule = r.Step.Rule
			}
			fmt.Fprintf(w, "  roll back step %d  %s  rule %s\n", r.Step.Index, r.Step, rule)
		}
	}); err != nil {
		return err
	}
	if ap.Refused != "" {
		return fmt.Errorf("rollout %s --dry-run: %w: %s", ap.Action, errRefused, ap.Refused)
	}
	return nil
}

// follow prints every progress update until the rollout stops; a failed or
// aborted rollout is an error wrapping errProbeFailed (exit 4).
func (a *app) follow(cl *apiClient, first *rollout.Progress) error {
	var last *rollout.Progress
	show := func(p *rollout.Progress) error {
		if p.Updated.Equal(last.Updated) && p.State == last.State && p.Message == last.Message {
			return nil // the watch starts with the progress already shown
		}
		last = p
		if a.output == "table" {
			fmt.Fprintf(a.stdout, "%s  %s  step %d/%d  vni %d  %s\n", p.Updated.Format("15:04:05"), p.State, p.Step, p.Total, p.VNI, p.Message)
			return nil
		}
		return json.NewEncoder(a.stdout).Encode(p) // one object per line
	}
	last = &rollout.Progress{}
	if err := show(first); err != nil {
		return err
	}
	if !first.State.Finished() && first.State != rollout.StatePaused {
		if err := watch(a.ctx, cl, show); err != nil {
			return fmt.Errorf("rollout watch: %w", err)
		}
	}
	if a.output == "table" {
		fmt.Fprintln(a.stdout)
		printProgressTable(a.stdout, last)
	}
	return progressErr(last)
}

func (a *app) printProgress(p *rollout.Progress) error {
	if err := a.print(p, func(w io.Writer) { printProgressTable(w, p) }); err != nil {
		return err
	}
	return progressErr(p)
}

// progressErr is the error (exit 4) of a failed or aborted rollout.
func progressErr(p *rollout.Progress) error {
	switch p.State {
	case rollout.StateFailed:
		return fmt.Errorf("rollout %s failed at step %d of %d: %s: %w", p.Plan.Name, p.Step, p.Total, p.Error, errProbeFailed)
	case rollout.StateAborted:
		return fmt.Errorf("rollout %s was aborted: %w", p.Plan.Name, errProbeFailed)
	}
	return nil
}

func printProgressTable(w io.Writer, p *rollout.Progress) {
	if p.State == rollout.StateDryRun {
		fmt.Fprintf(w, "rollout %s: dry run, %d steps to pool %s\n%s\n", p.Plan.Name, p.Total, p.Plan.Pool, p.Message)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tKIND\tVNI\tVM\tRULE")
		for _, s := range p.Steps {
			vm := "-"
			if s.Step.Kind == rollout.StepVM {
				vm = s.Step.VM.String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", s.Step.Index, s.Step.Kind, s.Step.VNI, vm, s.Step.Rule)
		}
		tw.Flush()
		fmt.Fprintln(w, "\nprecheck:")
		printProbeTable(w, p.Precheck)
		return
	}
	fmt.Fprintf(w, "rollout %s: %s, step %d of %d", p.Plan.Name, p.State, p.Step, p.Total)
	if p.VNI != 0 {
		fmt.Fprintf(w, " (vni %d)", p.VNI)
	}
	fmt.Fprintf(w, ", pool %s\n", p.Plan.Pool)
	if p.Message != "" {
		fmt.Fprintf(w, "%s\n", p.Message)
	}
	if p.Error != "" && p.Error != p.Message {
		fmt.Fprintf(w, "error: %s\n", p.Error)
	}
	// The GATES column only for a plan with gates.
	gated := false
	for _, s := range p.Steps {
		gated = gated || len(s.Gates) > 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if gated {
		fmt.Fprintln(tw, "STEP\tKIND\tVNI\tVM\tRULE\tSTATE\tPROBES\tGATES\tFINISHED")
	} else {
		fmt.Fprintln(tw, "STEP\tKIND\tVNI\tVM\tRULE\tSTATE\tPROBES\tFINISHED")
	}
	for _, s := range p.Steps {
		vm := "-"
		if s.Step.Kind == rollout.StepVM {
			vm = s.Step.VM.String()
		}
		fin := ""
		if !s.Finished.IsZero() {
			fin = s.Finished.Format("15:04:05")
		}
		cells := []any{s.Step.Index, s.Step.Kind, s.Step.VNI, vm, or(s.Rule, s.Step.Rule), s.State, probeSummary(s.Probes)}
		if gated {
			cells = append(cells, gateSummary(s.Gates))
		}
		cells = append(cells, fin)
		fmt.Fprintf(tw, strings.Repeat("%v\t", len(cells)-1)+"%v\n", cells...)
	}
	tw.Flush()
	for _, s := range p.Steps {
		if bad := probe.Failed(s.Probes); len(bad) > 0 {
			fmt.Fprintf(w, "\nstep %d probes that failed:\n", s.Step.Index)
			printProbeTable(w, bad)
		}
		for _, g := range s.Gates {
			if !g.OK {
				fmt.Fprintf(w, "\nstep %d gate %s failed: %s\n", s.Step.Index, g.Gate, g.Detail)
			}
		}
	}
}

// gateSummary is a step's gates in a cell: "2/2 ok", or the failed ones.
func gateSummary(gs []rollout.GateResult) string {
	if len(gs) == 0 {
		return "-"
	}
	var bad []string
	for _, g := range gs {
		if !g.OK {
			bad = append(bad, g.Gate+" failed")
		}
	}
	if len(bad) > 0 {
		return strings.Join(bad, ",")
	}
	return fmt.Sprintf("%d/%d ok", len(gs), len(gs))
}

func printSteps(w io.Writer, plan *rollout.Plan) {
	fmt.Fprintf(w, "plan %s: %d steps to pool %s (plan is valid; nothing was sent)\n", plan.Name, len(plan.Steps), plan.Pool)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tKIND\tVNI\tVM\tRULE")
	for _, s := range plan.Steps {
		vm := "-"
		if s.Kind == rollout.StepVM {
			vm = s.VM.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", s.Index, s.Kind, s.VNI, vm, s.Rule)
	}
	tw.Flush()
}

func probeSummary(rs []probe.Result) string {
	if len(rs) == 0 {
		return "-"
	}
	ok := len(rs) - len(probe.Failed(rs))
	return fmt.Sprintf("%d/%d ok", ok, len(rs))
}

func printProbeTable(w io.Writer, rs []probe.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VNI\tVM\tROUTER\tSTATUS\tRECEIVED\tANSWERED BY\tEXPECTED\tRTT MIN/AVG/MAX\tREASON")
	for _, r := range rs {
		exp := string(r.Target.ExpectCluster)
		if r.Target.ExpectPool != "" {
			exp = r.Target.ExpectPool
		}
		rtt := "-"
		if r.Received > 0 {
			rtt = fmt.Sprintf("%s/%s/%s", ms(r.RTTMin), ms(r.RTTAvg), ms(r.RTTMax))
		}
		dest := r.Target.Router.String()
		if r.Target.Port != 0 { // a TCP or UDP probe: which port
			dest += fmt.Sprintf(" %s/%d", r.Target.Proto, r.Target.Port)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", r.Target.VNI, r.Target.VM, dest, r.Status,
			r.Received, r.Sent, or(r.AnsweredBy(), "-"), or(exp, "any"), rtt, r.Reason)
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// rolloutStatus reads the current rollout's progress within one call's time.
func rolloutStatus(cl *apiClient, callCtx func() (context.Context, context.CancelFunc)) (*rollout.Progress, error) {
	ctx, cancel := callCtx()
	defer cancel()
	resp, err := cl.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
	if err != nil {
		return nil, err
	}
	return progressOf(resp)
}

// watch calls fn with every progress update until the rollout stops
// (finished or paused), fn returns an error, or ctx ends.
func watch(ctx context.Context, cl *apiClient, fn func(*rollout.Progress) error) error {
	s, err := cl.RolloutWatch(ctx, &graygwv1.RolloutWatchRequest{})
	if err != nil {
		return err
	}
	for {
		pp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := convert.ProgressFrom(pp)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// loadPlan reads and parses (without validating) a rollout plan. Problems
// wrap rollout.ErrPlan.
func loadPlan(path string) ([]byte, *rollout.PlanSpec, error) { return load(path, rollout.ParsePlan) }
