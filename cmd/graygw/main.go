// Command graygw is the operator CLI of the graygw gray-release gateway: it
// applies and diffs the intent, moves traffic to the gray cluster (per VNI, per
// VM, per prefix, per flow, or a sticky percentage) and back, runs automated
// rollouts, probes VMs through the gateway, shows status, counters and BGP, and
// drains gateways out of BGP.
// It talks to the controller's API (docs/cli.md).
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 validation refused, 4 probe or rollout
// failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/rollout"
)

// Exit codes a script can rely on.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitUsage   = 2
	ExitRefused = 3
	ExitFailed  = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, dial)
	stop()
	os.Exit(code)
}

// usageError marks a command line that cannot be right (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return usageError{err} }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var ie *intent.Errors
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ie), errors.Is(err, rollout.ErrPlan), errors.Is(err, errRefused), errors.Is(err, rollout.ErrRefused):
		return ExitRefused
	case errors.Is(err, errProbeFailed), errors.Is(err, rollout.ErrProbeFailed):
		return ExitFailed
	}
	return ExitError
}

// app is one invocation: its output and how it reaches the controller.
type app struct {
	stdout, stderr io.Writer
	dialer         func(dialOptions) (*apiClient, error)
	dial           dialOptions
	output         string
	json           bool
	ctx            context.Context
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, dialer func(dialOptions) (*apiClient, error)) int {
	a := &app{stdout: stdout, stderr: stderr, dialer: dialer, ctx: ctx}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") || err != nil && strings.HasPrefix(err.Error(), "unknown shorthand") {
		err = usageErr(err)
	}
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "graygw: %v\n", err)
		if code == ExitUsage {
			fmt.Fprintln(stderr, "Run 'graygw --help' (or 'graygw COMMAND --help') for usage.")
		}
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "graygw",
		Short: "Operate the graygw gray-release gateway",
		Long: `graygw moves cloud-network traffic between a base and a gray cluster through the
gray gateway, in small reversible steps, by talking to the graygw controller.

Output is a table by default; -o json or -o yaml (or -j) for scripts.
Every command that changes something takes --dry-run.

Exit codes: 0 ok, 1 error (controller unreachable...), 2 usage, 3 refused by
validation (bad intent, plan or cutover), 4 probe or rollout failed.`,
		Example: `  graygw apply -f intent.yaml --dry-run
  graygw cutover --vm 5001/192.168.1.5 --pool gray-router
  graygw probe --vm 5001/192.168.1.5 --router 192.168.1.1
  graygw rollout start -f plan.yaml --wait
  graygw rollback --step
  graygw bgp
  graygw drain gw1 --reason maintenance`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch a.output {
			case "table", "json", "yaml":
			default:
				return usagef("-o %q: want table, json or yaml", a.output)
			}
			if a.json {
				a.output = "json"
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.dial.Address, "controller", envOr("GRAYGW_CONTROLLER", DefaultController), "controller API: unix:///path or host:port (tcp needs --tls-*) [$GRAYGW_CONTROLLER]")
	pf.StringVar(&a.dial.TLSCert, "tls-cert", "", "client certificate (PEM) for tcp")
	pf.StringVar(&a.dial.TLSKey, "tls-key", "", "client key (PEM) for tcp")
	pf.StringVar(&a.dial.TLSCA, "tls-ca", "", "CA bundle (PEM) that signed the controller's certificate")
	positiveDurationVar(pf, &a.dial.Timeout, "timeout", 30*time.Second, "give up on the controller after this long")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	pf.BoolVarP(&a.json, "json", "j", false, "same as -o json")
	root.AddCommand(a.applyCmd(), a.diffCmd(), a.getCmd(), a.historyCmd(), a.cutoverCmd(), a.mirrorCmd(), a.rollbackCmd(),
		a.statusCmd(), a.countersCmd(), a.bgpCmd(), a.drainCmd(true), a.drainCmd(false), a.rolloutCmd(), a.probeCmd(), a.traceCmd())
	for _, c := range root.Commands() {
		if c.Args == nil {
			c.Args = noArgs
		}
	}
	return root
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usagef("%s takes no arguments, got %q (flags start with --)", cmd.CommandPath(), args)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// client dials the controller.
func (a *app) client() (*apiClient, error) {
	return a.dialer(a.dial)
}

// call dials the controller and runs fn with a context bounded by --timeout.
func (a *app) call(fn func(ctx context.Context, cl *apiClient) error) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := a.callCtx()
	defer cancel()
	return fn(ctx, cl)
}

// callCtx bounds one call to the controller by --timeout.
func (a *app) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.dial.Timeout)
}

// print writes v as JSON or YAML, or calls table for the table format.
func (a *app) print(v any, table func(w io.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		enc := yaml.NewEncoder(a.stdout)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("yaml output: %w", err)
		}
		return enc.Close()
	}
	table(a.stdout)
	return nil
}

// readFile reads -f (or stdin for "-").
func readFile(path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("-f is required: the file to read (- for standard input)")
	}
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// load reads -f (readFile) and parses it; a parse error names the file.
func load[T any](path string, parse func([]byte) (T, error)) ([]byte, T, error) {
	var zero T
	data, err := readFile(path)
	if err != nil {
		return nil, zero, err
	}
	v, err := parse(data)
	if err != nil {
		return nil, zero, fmt.Errorf("%s: %w", path, err)
	}
	return data, v, nil
}

// changed reports whether a flag was set on the command line.
func changed(fs *pflag.FlagSet, name string) bool { return fs.Changed(name) }
