package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// cmdTables is the table-level group's session. It takes mastership of the
// gateway with an election id above every earlier one (the clock in ns: the
// controller, which only ever raises its id to one above the highest it saw,
// stays standby meanwhile and writes nothing), saves what the gateway holds,
// writes the vector state exactly (bucket b -> fill[b % len]), says "ready" on
// stdout, and waits for stdin to close (or a signal). Then it deletes the vector
// entries and writes back what it saved, says "restored", and leaves; the
// controller takes over again and finds its entries in place.
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
	entries, err := stateEntries(st)
	if err != nil {
		return err
	}
	want := make([]*p4v1.TableEntry, 0, len(entries))
	for i := range entries {
		te, err := codec.ToP4(&entries[i])
		if err != nil {
			return err
		}
		want = append(want, te)
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

	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(stdin))
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
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
// bucket b of a pool -> fill[b % len(fill)].
func stateEntries(st testvectors.State) ([]compile.Entry, error) {
	var out []compile.Entry
	ip := func(s string) (uint64, error) {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, fmt.Errorf("bad IPv4 address %q", s)
		}
		b := a.As4()
		return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]), nil
	}
	mac := func(s string) (uint64, error) {
		var b [6]byte
		if _, err := fmt.Sscanf(s, "%02x:%02x:%02x:%02x:%02x:%02x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]); err != nil {
			return 0, fmt.Errorf("bad MAC %q", s)
		}
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return v, nil
	}
	for _, v := range st.VIP {
		a, err := ip(v.DstAddr)
		if err != nil {
			return nil, err
		}
		out = append(out, compile.Entry{Table: pipeline.TableVIP, Match: []compile.Match{exactM("dst_addr", 32, a)},
			Action: pipeline.ActionSetVIP, Params: []compile.Param{param("vip_id", 16, uint64(v.VIPID)), param("default_pool", 16, uint64(v.DefaultPool))}})
	}
	for _, t := range st.VNITenant {
		out = append(out, compile.Entry{Table: pipeline.TableVNITenant, Match: []compile.Match{exactM("vni", pipeline.VNIBits, uint64(t.VNI))},
			Action: pipeline.ActionSetTenant, Params: []compile.Param{param("tenant_id", 16, uint64(t.TenantID))}})
	}
	for i, r := range st.GrayRules {
		e := compile.Entry{Table: pipeline.TableGrayRules, Priority: r.Priority}
		for _, f := range []struct {
			name string
			bits int
		}{{"vip_id", 16}, {"vni", pipeline.VNIBits}, {"tenant_id", 16}, {"inner_src", 32}, {"inner_dst", 32},
			{"inner_proto", 8}, {"inner_sport", 16}, {"inner_dport", 16}} {
			if t, ok := r.Match[f.name]; ok && t.Mask != 0 {
				e.Match = append(e.Match, compile.Match{Field: f.name, Kind: compile.Ternary, Bits: f.bits,
					Value: be(t.Value&t.Mask, f.bits), Mask: be(t.Mask, f.bits)})
			}
		}
		switch r.Action {
		case "set_pool":
			e.Action, e.Params = pipeline.ActionSetPool, []compile.Param{param("pool_id", 16, r.Params["pool_id"])}
		case "split_pool":
			e.Action, e.Params = pipeline.ActionSplitPool, []compile.Param{param("pool_gray", 16, r.Params["pool_gray"]),
				param("threshold", 16, r.Params["threshold"])}
		default:
			return nil, fmt.Errorf("gray_rules[%d]: unknown action %q", i, r.Action)
		}
		out = append(out, e)
	}
	for _, p := range st.PoolHash {
		out = append(out, compile.Entry{Table: pipeline.TablePoolHash, Match: []compile.Match{exactM("pool_id", 16, uint64(p.PoolID))},
			Action: pipeline.ActionSetHashMask, Params: []compile.Param{
				param("vni_mask", 24, uint64(p.VNIMask)), param("tenant_mask", 16, uint64(p.TenantMask)),
				param("src_mask", 32, uint64(p.SrcMask)), param("dst_mask", 32, uint64(p.DstMask)),
				param("proto_mask", 8, uint64(p.ProtoMask)), param("sport_mask", 16, uint64(p.SPortMask)),
				param("dport_mask", 16, uint64(p.DPortMask))}})
	}
	for _, s := range st.BackendSelect {
		for b := 0; b < pipeline.Buckets && len(s.Fill) > 0; b++ {
			out = append(out, compile.Entry{Table: pipeline.TableBackendSelect,
				Match:  []compile.Match{exactM("pool_id", 16, uint64(s.PoolID)), exactM("bucket", 16, uint64(b))},
				Action: pipeline.ActionSetBackend, Params: []compile.Param{param("backend_id", 16, uint64(s.Fill[b%len(s.Fill)]))}})
		}
	}
	for _, b := range st.Backend {
		u, err := ip(b.UnderlayIP)
		if err != nil {
			return nil, err
		}
		smac, err := mac(b.SMAC)
		if err != nil {
			return nil, err
		}
		dmac, err := mac(b.DMAC)
		if err != nil {
			return nil, err
		}
		out = append(out, compile.Entry{Table: pipeline.TableBackend, Match: []compile.Match{exactM("backend_id", 16, uint64(b.BackendID))},
			Action: pipeline.ActionToBackend, Params: []compile.Param{param("port", pipeline.PortIDBits, uint64(b.Port)),
				param("smac", 48, smac), param("dmac", 48, dmac), param("underlay_ip", 32, u)}})
	}
	return out, nil
}

func be(v uint64, bits int) []byte {
	n := (bits + 7) / 8
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func exactM(field string, bits int, v uint64) compile.Match {
	return compile.Match{Field: field, Kind: compile.Exact, Bits: bits, Value: be(v, bits)}
}

func param(name string, bits int, v uint64) compile.Param {
	return compile.Param{Name: name, Bits: bits, Value: be(v, bits)}
}
