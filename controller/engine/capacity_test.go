package engine_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// startSmallAgent serves an agent whose P4Info declares the given table sizes
// (and enforces them: RESOURCE_EXHAUSTED past them), already running that
// P4Info under the engine's cookie, as a target provisioned with its own build
// is: the engine pushes nothing and learns the sizes from
// GetForwardingPipelineConfig.
func startSmallAgent(t *testing.T, sizes map[string]int64) *agent {
	t.Helper()
	info := stack.SizedP4Info(t, sizes)
	a := &agent{t: t, addr: "127.0.0.1:0", dp: dataplane.NewMemory(dataplane.Limits{}), dir: t.TempDir(), info: info}
	a.start()
	t.Cleanup(a.kill)
	stack.Provision(t, a.addr, info)
	return a
}

// gatewayStatus polls the engine until ok holds for gateway gw.
func gatewayStatus(t *testing.T, e *engine.Engine, gw string, ok func(engine.GatewayStatus) bool) engine.GatewayStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, st := range e.Status() {
			if st.Name == gw && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s: condition not reached; status %+v", gw, e.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func failed(st engine.GatewayStatus) bool { return st.LastResult == engine.ResultError }

// withRule adds a VM rule to the test intent.
func withRule(doc, src string) string {
	return doc + `  - name: vm-` + src + `
    match: {vip: vpc, vni: 5001, src: ` + src + `}
    pool: gray
`
}

// An intent that fits one gateway and not the other: the small one gets no
// write at all and an error naming the table, the sizes and what to do, and
// keeps it without retrying in a loop; the big one converges. The next intent
// change that fits brings the small one in.
func TestIntentTooBigForOneGatewayWritesNothingThere(t *testing.T) {
	big := startAgent(t, nil)
	small := startSmallAgent(t, map[string]int64{pipeline.TableGrayRules: 1})
	e := newEngine(t, store.NewMemory(), 10)
	addrs := []string{big.addr, small.addr}
	two := withRule(intentYAML(addrs, threeBackends()), "10.0.0.6")
	p := stack.Commit(t, e, load(t, two), 1)

	gatewayStatus(t, e, "gw1", func(st engine.GatewayStatus) bool { return st.InSync && st.Version == 1 })
	sameEntries(t, big.entries(t), desired(t, p.Result(), "gw1"))
	st := gatewayStatus(t, e, "gw2", failed)
	want := "gray_rules: intent version 1 needs 2 entries, gateway gw2 holds 1 (its P4Info size); remove rules or use a larger build"
	if st.LastError != want {
		t.Fatalf("gw2 error\n got %q\nwant %q", st.LastError, want)
	}
	if n := len(small.entries(t)); n != 0 || st.EntriesWritten != 0 || st.WriteErrors != 0 {
		t.Fatalf("gw2 holds %d entries, %d written, %d refused: want none", n, st.EntriesWritten, st.WriteErrors)
	}
	// Not retried in a loop (Retry is 50 ms in these tests).
	time.Sleep(400 * time.Millisecond)
	if again := gatewayStatus(t, e, "gw2", failed); again.Reconciles != st.Reconciles {
		t.Fatalf("gw2 retried %d times with nothing changed", again.Reconciles-st.Reconciles)
	}

	// The plan of the same intent says so too.
	p1, err := e.Prepare(load(t, two))
	if err != nil {
		t.Fatal(err)
	}
	for _, gp := range e.ChangePlan(p1) {
		if gp.Gateway == "gw1" && len(gp.Overflows) != 0 || gp.Gateway == "gw2" && (len(gp.Overflows) != 1 || gp.Overflows[0].Table != "gray_rules") {
			t.Fatalf("plan of %s: overflows %+v", gp.Gateway, gp.Overflows)
		}
	}

	// One rule fits: the next intent change brings gw2 to it.
	p2 := stack.Commit(t, e, load(t, intentYAML(addrs, threeBackends())), 2)
	stack.WaitVersion(t, e, 2)
	sameEntries(t, small.entries(t), desired(t, p2.Result(), "gw2"))
	sameEntries(t, big.entries(t), desired(t, p2.Result(), "gw1"))
}

// An incremental change that would overflow is refused whole: nothing is
// written, the target keeps the previous version, and the next change that
// fits is written incrementally from there.
func TestIncrementalOverflowWritesNothing(t *testing.T) {
	a := startSmallAgent(t, map[string]int64{pipeline.TableGrayRules: 1})
	e := newEngine(t, store.NewMemory(), 10)
	one := intentYAML([]string{a.addr}, threeBackends())
	p1 := stack.Commit(t, e, load(t, one), 1)
	st := stack.WaitVersion(t, e, 1)[0]
	reads, written := a.reads.Load(), st.EntriesWritten

	p2, err := e.Prepare(load(t, withRule(one, "10.0.0.6")))
	if err != nil {
		t.Fatal(err)
	}
	plan := e.ChangePlan(p2)
	if len(plan[0].Overflows) != 1 || !plan[0].Overflows[0].Refuse() || plan[0].Overflows[0].Need != 2 {
		t.Fatalf("change plan overflows %+v", plan[0].Overflows)
	}
	if err := e.Commit(p2, 2); err != nil {
		t.Fatal(err)
	}
	st = gatewayStatus(t, e, "gw1", func(st engine.GatewayStatus) bool { return failed(st) && st.Reconciles > 1 })
	if !strings.HasPrefix(st.LastError, "gray_rules: intent version 2 needs 2 entries, gateway gw1 holds 1") {
		t.Fatalf("error %q", st.LastError)
	}
	if st.EntriesWritten != written || st.WriteErrors != 0 || a.reads.Load() != reads {
		t.Fatalf("refused change wrote %d, refused %d, read %d times", st.EntriesWritten-written, st.WriteErrors, a.reads.Load()-reads)
	}
	sameEntries(t, a.entries(t), desired(t, p1.Result(), "gw1"))

	// A change that fits (the rule moved to the base pool): incremental from
	// version 1, one modify.
	reads = a.reads.Load()
	stack.Commit(t, e, load(t, strings.Replace(one, "    pool: gray\n", "    pool: base\n", 1)), 3)
	st = stack.WaitVersion(t, e, 3)[0]
	if st.LastWritten != 1 || a.reads.Load() != reads {
		t.Fatalf("after the refusal: wrote %d, read %d times; want an incremental pass of 1", st.LastWritten, a.reads.Load()-reads)
	}
}

// A pool flip holds both versions of the pool at once (make-before-break):
// the peak is counted, not only the final state.
func TestPoolFlipPeakIsCounted(t *testing.T) {
	// Two pools of 4096 buckets fit, three versions at once do not.
	a := startSmallAgent(t, map[string]int64{pipeline.TableBackendSelect: 2*pipeline.Buckets + 100})
	e := newEngine(t, store.NewMemory(), 10)
	one := intentYAML([]string{a.addr}, threeBackends())
	p1 := stack.Commit(t, e, load(t, one), 1)
	st := stack.WaitVersion(t, e, 1)[0]
	written := st.EntriesWritten

	p2, err := e.Prepare(load(t, strings.Replace(one, "weight: 1}\n", "weight: 3}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	ov := e.ChangePlan(p2)[0].Overflows
	if len(ov) != 1 || ov[0].Table != "backend_select" || ov[0].Need != 3*pipeline.Buckets || ov[0].Final != 2*pipeline.Buckets || !ov[0].Refuse() {
		t.Fatalf("overflows %+v", ov)
	}
	if err := e.Commit(p2, 2); err != nil {
		t.Fatal(err)
	}
	st = gatewayStatus(t, e, "gw1", func(st engine.GatewayStatus) bool { return failed(st) && st.Reconciles > 1 })
	want := "backend_select: the change needs 12288 entries at once (make-before-break: the new entries are written before the 4096 old ones are deleted; 8192 once done), gateway gw1 holds 8292 (its P4Info size); change fewer pools at once or use a larger build"
	if st.LastError != want {
		t.Fatalf("error\n got %q\nwant %q", st.LastError, want)
	}
	if st.EntriesWritten != written {
		t.Fatalf("refused flip wrote %d updates", st.EntriesWritten-written)
	}
	sameEntries(t, a.entries(t), desired(t, p1.Result(), "gw1"))

	// A full pass (Kick) reads back and refuses the same way.
	e.Kick()
	st = gatewayStatus(t, e, "gw1", func(s engine.GatewayStatus) bool { return s.Reconciles > st.Reconciles })
	if st.LastError != want {
		t.Fatalf("full pass: %q", st.LastError)
	}
	sameEntries(t, a.entries(t), desired(t, p1.Result(), "gw1"))
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// A gateway not reached since the engine started has no sizes learned from
// it: its plans are checked against the P4Info configured for it
// (Config.P4InfoFor, else Config.P4Info), managed or not, as a change plan or
// a dry run. An unknown size (0) or a P4Info that does not pass CheckP4Info
// is not checked.
func TestUnreachedGatewayCheckedAgainstConfiguredP4Info(t *testing.T) {
	addrs := []string{deadAddr(t), deadAddr(t)}
	one := intentYAML(addrs, threeBackends()) // one gray rule
	two := withRule(one, "10.0.0.6")
	want := "gray_rules: intent needs 2 entries, gateway gw2 holds 1 (the size in its configured P4Info; gateway not reached yet); remove rules or use a larger build"
	incompatible := tnaInfo(t, func(pi *p4configv1.P4Info) {
		tnaTable(pi, pipeline.TableGrayRules).Size = 1
		tnaTable(pi, pipeline.TableVNITenant).MatchFields[0].Bitwidth = 16
	})
	for _, tc := range []struct {
		name string
		base *p4info.Info      // Config.P4Info
		gw2  *p4info.Info      // P4InfoFor("gw2")
		want map[string]string // overflow by gateway
	}{
		{name: "P4InfoFor", base: stack.P4Info(t), gw2: stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: 1}),
			want: map[string]string{"gw2": want}},
		{name: "default P4Info", base: stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: 1}),
			want: map[string]string{"gw1": strings.Replace(want, "gw2", "gw1", 1), "gw2": want}},
		{name: "TNA P4InfoFor", base: stack.P4Info(t), gw2: tnaInfo(t, func(pi *p4configv1.P4Info) { tnaTable(pi, pipeline.TableGrayRules).Size = 1 }),
			want: map[string]string{"gw2": want}},
		{name: "unknown size", base: stack.P4Info(t), gw2: stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: 0})},
		{name: "incompatible", base: stack.P4Info(t), gw2: incompatible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.New(engine.Config{P4Info: tc.base, ElectionID: 10, Interval: time.Hour,
				Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				PlanTimeout: 200 * time.Millisecond, Store: store.NewMemory(), Logger: logger(t),
				P4InfoFor: func(gw string) *p4info.Info {
					if gw == "gw2" {
						return tc.gw2
					}
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close(context.Background()) })
			check := func(what string, gps []engine.GatewayPlan) {
				t.Helper()
				if len(gps) != 2 {
					t.Fatalf("%s: %d plans", what, len(gps))
				}
				for _, gp := range gps {
					var got []string
					for _, o := range gp.Overflows {
						if !o.Refuse() || o.Source != engine.SourceConfigured {
							t.Errorf("%s: %s: overflow %+v", what, gp.Gateway, o)
						}
						got = append(got, o.String())
					}
					if w := tc.want[gp.Gateway]; strings.Join(got, "; ") != w {
						t.Errorf("%s: %s: overflows\n got %q\nwant %q", what, gp.Gateway, got, w)
					}
				}
			}
			// Not managed yet.
			p, err := e.Prepare(load(t, two))
			if err != nil {
				t.Fatal(err)
			}
			check("not managed, change plan", e.ChangePlan(p))
			check("not managed, dry run", e.Plan(ctx(t), p))
			// Managed, never reached.
			stack.Commit(t, e, load(t, one), 1)
			p, err = e.Prepare(load(t, two))
			if err != nil {
				t.Fatal(err)
			}
			check("unreached, change plan", e.ChangePlan(p))
			check("unreached, dry run", e.Plan(ctx(t), p))
			for _, st := range e.Status() {
				if st.InSync || st.Reconciles > 0 && st.EntriesWritten > 0 {
					t.Fatalf("gateway %s reached: %+v", st.Name, st)
				}
			}
		})
	}
}

// gray_rules_v6 is counted against its size in the gateway's P4Info like
// gray_rules: an intent with more IPv6 rules than it holds writes nothing
// and names the table; the IPv4 rules alone fit.
func TestIPv6RulesOverflowGrayRulesV6(t *testing.T) {
	small := startSmallAgent(t, map[string]int64{pipeline.TableGrayRulesV6: 1})
	e := newEngine(t, store.NewMemory(), 10)
	doc := intentYAML([]string{small.addr}, threeBackends())
	for _, vm := range []string{"2001:db8::5", "2001:db8::6"} {
		doc += "  - name: vm6-" + strings.ReplaceAll(vm, ":", "-") + "\n    match: {vip: vpc, vni: 5001, src: \"" + vm + "\"}\n    pool: gray\n"
	}
	stack.Commit(t, e, load(t, doc), 1)
	st := gatewayStatus(t, e, "gw1", failed)
	want := "gray_rules_v6: intent version 1 needs 2 entries, gateway gw1 holds 1 (its P4Info size); remove IPv6 rules or rules without an address (in both rule tables) or use a larger build"
	if st.LastError != want {
		t.Fatalf("error\n got %q\nwant %q", st.LastError, want)
	}
	if n := len(small.entries(t)); n != 0 {
		t.Fatalf("%d entries written", n)
	}
	p := stack.Commit(t, e, load(t, intentYAML([]string{small.addr}, threeBackends())), 2)
	stack.WaitVersion(t, e, 2)
	sameEntries(t, small.entries(t), desired(t, p.Result(), "gw1"))
}
