package benchmarks

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Gating: the heavy measurements run only with GRAYGW_BENCH=1; their results go
// to the test log and, with GRAYGW_BENCH_OUT=DIR, as markdown fragments to DIR
// (scripts/bench.d/controller.sh assembles bench/controller.md from them).

func benchEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("GRAYGW_BENCH") != "1" {
		t.Skip("benchmark: set GRAYGW_BENCH=1 (scripts/bench.d/controller.sh)")
	}
}

// envInt reads a positive integer from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// writeFragment writes a markdown fragment of the report to GRAYGW_BENCH_OUT.
func writeFragment(t *testing.T, name, text string) {
	t.Helper()
	t.Log("\n" + text)
	dir := os.Getenv("GRAYGW_BENCH_OUT")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// timeline: every log record of the controller (debug level and up), the
// agent's RPCs and, when detail is on, the rule and VIP calls into the
// dataplane, with their times. The breakdowns are read from it.

type event struct {
	at, end time.Time // end is zero for log records
	src     string    // "ctl" (controller logs), "rpc" (agent RPCs), "dp" (dataplane calls), "store"
	msg     string
	n       int // updates of a Write
	attrs   string
}

type timeline struct {
	mu sync.Mutex
	ev []event
	// echo, when set (GRAYGW_TEST_LOG), receives the controller's logs as text.
	echo slog.Handler
}

func newTimeline() *timeline {
	tl := &timeline{}
	if os.Getenv("GRAYGW_TEST_LOG") != "" {
		tl.echo = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return tl
}

func (tl *timeline) add(e event) {
	tl.mu.Lock()
	tl.ev = append(tl.ev, e)
	tl.mu.Unlock()
}

// after returns the events that started at or after t, in time order.
func (tl *timeline) after(t time.Time) []event {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []event
	for _, e := range tl.ev {
		if !e.at.Before(t) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b event) int { return a.at.Compare(b.at) })
	return out
}

// find returns the first event of src whose message is msg among evs, starting
// at or after t.
func find(evs []event, src, msg string, t time.Time) (event, bool) {
	for _, e := range evs {
		if e.src == src && e.msg == msg && !e.at.Before(t) {
			return e, true
		}
	}
	return event{}, false
}

func (tl *timeline) logger() *slog.Logger { return slog.New(&tlHandler{tl: tl}) }

type tlHandler struct {
	tl    *timeline
	attrs []slog.Attr
	echo  slog.Handler
}

func (h *tlHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tlHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	for _, a := range h.attrs {
		fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
		return true
	})
	h.tl.add(event{at: r.Time, src: "ctl", msg: r.Message, attrs: strings.TrimSpace(b.String())})
	if h.echo != nil {
		return h.echo.Handle(ctx, r)
	} else if h.tl.echo != nil {
		return h.tl.echo.WithAttrs(h.attrs).Handle(ctx, r)
	}
	return nil
}

func (h *tlHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tlHandler{tl: h.tl, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *tlHandler) WithGroup(string) slog.Handler { return h }

// ---------------------------------------------------------------------------
// timedDP wraps a dataplane: total time and count per kind of call, and an
// event per rule and VIP call when detail is set.

type timedDP struct {
	dataplane.Dataplane
	tl     *timeline
	detail bool

	mu    sync.Mutex
	calls int
	busy  time.Duration
}

func (d *timedDP) time(name string, start time.Time) {
	end := time.Now()
	d.mu.Lock()
	d.calls++
	d.busy += end.Sub(start)
	d.mu.Unlock()
	if d.detail && name != "" {
		d.tl.add(event{at: start, end: end, src: "dp", msg: name})
	}
}

// totals returns and resets the calls and the time spent in the dataplane.
func (d *timedDP) totals() (int, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, b := d.calls, d.busy
	d.calls, d.busy = 0, 0
	return n, b
}

func (d *timedDP) SetVIP(a uint32, v model.VIP) error {
	defer d.time("SetVIP", time.Now())
	return d.Dataplane.SetVIP(a, v)
}

func (d *timedDP) DeleteVIP(a uint32) error {
	defer d.time("DeleteVIP", time.Now())
	return d.Dataplane.DeleteVIP(a)
}

func (d *timedDP) InsertRule(r model.GrayRule) error {
	defer d.time("InsertRule", time.Now())
	return d.Dataplane.InsertRule(r)
}

func (d *timedDP) ModifyRule(r model.GrayRule) error {
	defer d.time("ModifyRule", time.Now())
	return d.Dataplane.ModifyRule(r)
}

func (d *timedDP) DeleteRule(r model.GrayRule) error {
	defer d.time("DeleteRule", time.Now())
	return d.Dataplane.DeleteRule(r)
}

func (d *timedDP) SetTenant(vni uint32, tenant uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.SetTenant(vni, tenant)
}

func (d *timedDP) SetPoolHash(pool uint16, m pipeline.FlowKey) error {
	defer d.time("", time.Now())
	return d.Dataplane.SetPoolHash(pool, m)
}

func (d *timedDP) SetBucket(pool, bucket, backend uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.SetBucket(pool, bucket, backend)
}

func (d *timedDP) SetBuckets(pool, first uint16, backends []uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.SetBuckets(pool, first, backends)
}

func (d *timedDP) SetBackendEntry(id uint16, b model.Backend) error {
	defer d.time("", time.Now())
	return d.Dataplane.SetBackendEntry(id, b)
}

func (d *timedDP) DeleteTenant(vni uint32) error {
	defer d.time("", time.Now())
	return d.Dataplane.DeleteTenant(vni)
}

func (d *timedDP) DeletePoolHash(pool uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.DeletePoolHash(pool)
}

func (d *timedDP) DeleteBucket(pool, bucket uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.DeleteBucket(pool, bucket)
}

func (d *timedDP) DeleteBackendEntry(id uint16) error {
	defer d.time("", time.Now())
	return d.Dataplane.DeleteBackendEntry(id)
}

// List and the counter writers: the agent uses them when the target has them.
func (d *timedDP) List() (dataplane.Listing, error) {
	if l, ok := d.Dataplane.(dataplane.Lister); ok {
		return l.List()
	}
	return dataplane.Listing{}, fmt.Errorf("benchmarks: %T cannot list", d.Dataplane)
}

// setCounter sets a counter through the dataplane's CounterWriter.
func (d *timedDP) setCounter(set func(dataplane.CounterWriter) error) error {
	if c, ok := d.Dataplane.(dataplane.CounterWriter); ok {
		return set(c)
	}
	return fmt.Errorf("benchmarks: %T cannot set counters", d.Dataplane)
}

func (d *timedDP) SetDropCounter(r pipeline.Reason, c dataplane.Counter) error {
	return d.setCounter(func(w dataplane.CounterWriter) error { return w.SetDropCounter(r, c) })
}

func (d *timedDP) SetVIPCounter(a uint32, c dataplane.Counter) error {
	return d.setCounter(func(w dataplane.CounterWriter) error { return w.SetVIPCounter(a, c) })
}

func (d *timedDP) SetRuleCounter(r model.GrayRule, c dataplane.Counter) error {
	return d.setCounter(func(w dataplane.CounterWriter) error { return w.SetRuleCounter(r, c) })
}

func (d *timedDP) SetBackendCounter(id uint16, c dataplane.Counter) error {
	return d.setCounter(func(w dataplane.CounterWriter) error { return w.SetBackendCounter(id, c) })
}

// ---------------------------------------------------------------------------
// timedStore records the store's writes in the timeline: the commit of an intent
// version (msg "store Commit") and key/value puts ("store Put <ns>").

type timedStore struct {
	store.Store
	tl *timeline
}

func (s timedStore) Commit(ctx context.Context, c store.Change) (*store.Version, *store.Event, error) {
	start := time.Now()
	v, ev, err := s.Store.Commit(ctx, c)
	s.tl.add(event{at: start, end: time.Now(), src: "store", msg: "Commit", n: len(c.Intent)})
	return v, ev, err
}

func (s timedStore) Put(ctx context.Context, ns, key string, value []byte) error {
	start := time.Now()
	err := s.Store.Put(ctx, ns, key, value)
	s.tl.add(event{at: start, end: time.Now(), src: "store", msg: "Put " + ns, n: len(value)})
	return err
}

// ---------------------------------------------------------------------------
// The agent: graygw's P4Runtime server (agent/server) over a dataplane, served
// on a loopback port with the daemon's gRPC limits and its journal on, every
// Read and Write recorded in the timeline.

type agentProc struct {
	*stack.Agent
	addr string
	dp   *timedDP
}

func serveAgent(t testing.TB, dp dataplane.Dataplane, tl *timeline) *agentProc {
	t.Helper()
	td := &timedDP{Dataplane: dp, tl: tl}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		n := 0
		if w, ok := req.(*p4v1.WriteRequest); ok {
			n = len(w.GetUpdates())
		}
		tl.add(event{at: start, end: time.Now(), src: "rpc", msg: shortMethod(info.FullMethod), n: n})
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		if info.FullMethod != "/p4.v1.P4Runtime/StreamChannel" {
			tl.add(event{at: start, end: time.Now(), src: "rpc", msg: shortMethod(info.FullMethod)})
		}
		return err
	}
	ag := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: td, StateDir: t.TempDir(), Generation: "bench"},
		ServerOptions: []grpc.ServerOption{grpc.MaxRecvMsgSize(256 << 20), grpc.UnaryInterceptor(unary), grpc.StreamInterceptor(stream)}})
	return &agentProc{Agent: ag, addr: ag.Addr, dp: td}
}

func (a *agentProc) stop() { a.Stop() }

func shortMethod(m string) string { return m[strings.LastIndex(m, "/")+1:] }

// ---------------------------------------------------------------------------
// Statistics and formatting.

type samples []time.Duration

func (s samples) sorted() samples {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func (s samples) median() time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// mmm is "median (min-max)", or the one value.
func (s samples) mmm() string {
	if len(s) == 0 {
		return "n/a"
	}
	c := s.sorted()
	if len(c) == 1 {
		return dur(c[0])
	}
	return fmt.Sprintf("%s (%s-%s)", dur(s.median()), dur(c[0]), dur(c[len(c)-1]))
}

// dur formats a duration with 3 significant digits in ms or s.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// thousands formats n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return thousands(int(float64(n)/d.Seconds())) + "/s"
}

// filledDoc fills spec to sc and returns its document.
func filledDoc(t testing.TB, spec *intent.Spec, sc Scale) []byte {
	t.Helper()
	if err := Fill(spec, sc); err != nil {
		t.Fatal(err)
	}
	return specDoc(t, spec)
}

// specDoc returns spec's document.
func specDoc(t testing.TB, spec *intent.Spec) []byte {
	t.Helper()
	doc, err := intent.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// waitOptions are the options of a benchmark's change: wait up to d for the
// gateways to hold it.
func waitOptions(d time.Duration) *graygwv1.ChangeOptions {
	return &graygwv1.ChangeOptions{Actor: "bench", Wait: true, WaitTimeout: durationpb.New(d)}
}
