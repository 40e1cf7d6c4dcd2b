package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/testvectors"
)

// cmdTables is the table-level group's session. It takes mastership of the
// gateway with an election id above every earlier one (the clock in ns: the
// controller, which only ever raises its id to one above the highest it saw,
// stays standby meanwhile and writes nothing), saves what the gateway holds,
// writes the vector state exactly (bucket b -> fill[b % len]), says "ready" on
// stdout, and waits for stdin to close (or a signal). A line "state NAME" on
// stdin meanwhile replaces the state held with vector state NAME (the diff
// only: the mirror state is the basic one with more rules) and says "ready"
// again. Then it deletes the vector entries and writes back what it saved,
// says "restored", and leaves; the controller takes over again and finds its
// entries in place.
func cmdTables(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tables", flag.ContinueOnError)
	addr := fs.String("p4rt", "127.0.0.1:9559", "the gateway's P4Runtime address")
	device := fs.Uint64("device-id", 1, "P4Runtime device id")
	vectors := fs.String("vectors", "testvectors/pipeline.json", "test vectors file")
	state := fs.String("state", "basic", "vector state to write")
	timeout := fs.Duration("timeout", 60*time.Second, "bound on each phase (take over, write, restore)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := testvectors.Load(*vectors)
	if err != nil {
		return err
	}
	st, ok := f.States[*state]
	if !ok {
		return fmt.Errorf("no state %q in %s", *state, *vectors)
	}
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		return err
	}
	codec := engine.NewCodec(info)
	tableEntries := func(st testvectors.State) ([]*p4v1.TableEntry, error) {
		entries, err := stateEntries(st)
		if err != nil {
			return nil, err
		}
		out := make([]*p4v1.TableEntry, 0, len(entries))
		for i := range entries {
			te, err := codec.ToP4(&entries[i])
			if err != nil {
				return nil, err
			}
			out = append(out, te)
		}
		return out, nil
	}
	want, err := tableEntries(st)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := p4rt.Dial(*addr, p4rt.Options{DeviceID: *device, ElectionID: uint64(time.Now().UnixNano()), Logger: log})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := c.WaitPrimary(ctx); err != nil {
		return err
	}
	saved, err := c.ReadTable(ctx, 0, false)
	if err != nil {
		return err
	}
	for _, te := range saved {
		te.CounterData = nil
	}
	if err := c.WritePhases(ctx, phases(info, saved, p4v1.Update_DELETE), 0); err != nil {
		return fmt.Errorf("clearing the gateway: %w", err)
	}
	if err := c.WritePhases(ctx, phases(info, want, p4v1.Update_INSERT), 0); err != nil {
		// Put the gateway back before failing.
		_ = c.WritePhases(ctx, phases(info, saved, p4v1.Update_INSERT), 0)
		return fmt.Errorf("writing state %s: %w", *state, err)
	}
	fmt.Fprintf(stdout, "ready: state %s, %d entries written, %d saved\n", *state, len(want), len(saved))
	if fl, ok := stdout.(*os.File); ok {
		_ = fl.Sync()
	}

	lines, done := make(chan string), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	order := reconcile.Order{}
	for _, name := range compile.TableOrder {
		if t, err := info.Table(name); err == nil {
			order = append(order, t.ID)
		}
	}
wait:
	for {
		select {
		case line := <-lines:
			name, ok := strings.CutPrefix(line, "state ")
			if !ok {
				fmt.Fprintf(stdout, "error: %q is not \"state NAME\"\n", line)
				continue
			}
			next, err := switchState(f, name, want, order, c, tableEntries, *timeout)
			if err != nil {
				fmt.Fprintf(stdout, "error: %v\n", err)
				continue
			}
			fmt.Fprintf(stdout, "ready: state %s, %d entries\n", name, len(next))
			want = next
		case <-done:
			break wait
		case <-sig:
			break wait
		}
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), *timeout)
	defer cancel2()
	if !c.IsPrimary() {
		return fmt.Errorf("lost mastership while holding state %s: the gateway was not restored", *state)
	}
	if err := c.WritePhases(ctx2, phases(info, want, p4v1.Update_DELETE), 0); err != nil {
		return fmt.Errorf("deleting state %s: %w", *state, err)
	}
	if err := c.WritePhases(ctx2, phases(info, saved, p4v1.Update_INSERT), 0); err != nil {
		return fmt.Errorf("restoring the gateway: %w", err)
	}
	fmt.Fprintf(stdout, "restored: %d entries\n", len(saved))
	return nil
}

// switchState writes the diff from the entries held (have) to vector state
// name's and returns the latter.
func switchState(f *testvectors.File, name string, have []*p4v1.TableEntry, order reconcile.Order, c *p4rt.Client,
	tableEntries func(testvectors.State) ([]*p4v1.TableEntry, error), timeout time.Duration) ([]*p4v1.TableEntry, error) {
	st, ok := f.States[name]
	if !ok {
		return nil, fmt.Errorf("no state %q in the vectors", name)
	}
	next, err := tableEntries(st)
	if err != nil {
		return nil, err
	}
	plan, err := reconcile.Diff(next, have, order)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.WritePhases(ctx, plan.Phases, 0); err != nil {
		return nil, fmt.Errorf("writing state %s: %w", name, err)
	}
	return next, nil
}

// phases groups entries into one update phase per table, in make-before-break
// order for inserts (compile.TableOrder) and the reverse for deletes.
func phases(info *p4info.Info, entries []*p4v1.TableEntry, op p4v1.Update_Type) [][]*p4v1.Update {
	order := slices.Clone(compile.TableOrder)
	if op == p4v1.Update_DELETE {
		slices.Reverse(order)
	}
	rank := map[uint32]int{}
	for i, name := range order {
		if t, err := info.Table(name); err == nil {
			rank[t.ID] = i
		}
	}
	out := make([][]*p4v1.Update, len(order)+1)
	for _, te := range entries {
		i, ok := rank[te.GetTableId()]
		if !ok {
			i = len(order)
		}
		out[i] = append(out[i], &p4v1.Update{Type: op, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
	}
	return slices.DeleteFunc(out, func(p []*p4v1.Update) bool { return len(p) == 0 })
}

// stateEntries is a vector state as table entries, exactly: backend_select
// bucket b of a pool -> fill[b % len(fill)] (testvectors.State.Model, then
// compile.FromModel).
func stateEntries(st testvectors.State) ([]compile.Entry, error) {
	m, err := st.Model()
	if err != nil {
		return nil, err
	}
	return compile.FromModel(m), nil
}
