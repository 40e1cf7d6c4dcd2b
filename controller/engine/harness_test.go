package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// agent is the graygw XDP agent's P4Runtime server (package agent/server) over an
// in-memory dataplane, serving on a loopback TCP port: the real southbound the
// engine talks to.
type agent struct {
	t    *testing.T
	addr string
	dp   dataplane.Dataplane
	dir  string
	info *p4info.Info // the P4Info served; nil: the project's
	// wrap, when set, stands between the engine and the agent's P4Runtime
	// server (a target that is not the XDP agent, emulated over it).
	wrap func(p4v1.P4RuntimeServer) p4v1.P4RuntimeServer

	mu  sync.Mutex
	srv *server.Server
	gs  *grpc.Server

	reads atomic.Int64 // Read RPCs served
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("GRAYGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startAgent serves a new agent on a free loopback port. dp nil means a fresh
// Memory dataplane.
func startAgent(t *testing.T, dp dataplane.Dataplane) *agent {
	t.Helper()
	if dp == nil {
		dp = dataplane.NewMemory(dataplane.Limits{})
	}
	a := &agent{t: t, addr: "127.0.0.1:0", dp: dp, dir: t.TempDir()}
	a.start()
	t.Cleanup(a.kill)
	return a
}

func (a *agent) start() {
	a.t.Helper()
	info := a.info
	if info == nil {
		info = stack.P4Info(a.t)
	}
	srv, err := server.New(server.Config{DeviceID: 1, P4Info: info, Dataplane: a.dp, StateDir: a.dir,
		Generation: "test", Logger: logger(a.t)})
	if err != nil {
		a.t.Fatalf("agent: %v", err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // the port of a killed agent may take a moment to free
		lis, err = net.Listen("tcp", a.addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		a.t.Fatalf("agent listen: %v", err)
	}
	a.addr = lis.Addr().String()
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == "/p4.v1.P4Runtime/Read" {
				a.reads.Add(1)
			}
			return h(srv, ss)
		}))
	var rt p4v1.P4RuntimeServer = srv
	if a.wrap != nil {
		rt = a.wrap(srv)
	}
	p4v1.RegisterP4RuntimeServer(gs, rt)
	go gs.Serve(lis)
	a.mu.Lock()
	a.srv, a.gs = srv, gs
	a.mu.Unlock()
}

// kill stops serving at once (connections cut, RPCs cancelled), lets the write
// in flight land in the journal, and closes the server: a crash as far as the
// controller can tell.
func (a *agent) kill() {
	a.mu.Lock()
	srv, gs := a.srv, a.gs
	a.srv, a.gs = nil, nil
	a.mu.Unlock()
	if gs == nil {
		return
	}
	gs.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Drain(ctx)
	srv.Close()
}

// restart brings the agent back on the same address, over the same dataplane and
// journal.
func (a *agent) restart() {
	a.t.Helper()
	a.kill()
	a.start()
}

// entries reads every table entry of the agent with a plain P4Runtime client
// (no arbitration: reads are open to every controller).
func (a *agent) entries(t *testing.T) []*p4v1.TableEntry {
	t.Helper()
	var out []*p4v1.TableEntry
	for _, e := range a.read(t, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}) {
		out = append(out, engine.Canonicalize(e.GetTableEntry()))
	}
	return out
}

// read reads every entity that matches want from the agent, on a connection of
// its own (no arbitration: reads are open to any client).
func (a *agent) read(t *testing.T, want *p4v1.Entity) []*p4v1.Entity {
	t.Helper()
	conn := stack.Conn(t, a.addr)
	defer conn.Close()
	out, err := p4rtest.Read(ctx(t), p4v1.NewP4RuntimeClient(conn), 1, want)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return out
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// pool describes the base pool of the test intent: backend name -> weight.
type backendSpec struct {
	name   string
	id     int
	weight int
	mac    string
}

// intentYAML is a small intent with one gateway per address: a VIP, a base pool
// with the given backends, a gray pool, a tenant and a VM rule.
func intentYAML(addrs []string, base []backendSpec) string {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n")
	for i, a := range addrs {
		fmt.Fprintf(&b, `  - name: gw%d
    p4runtime: %s
    device_id: 1
    bgp_next_hop: 10.1.0.%d
    ports:
      1: {interface: p1, mac: "02:00:00:00:0%d:01"}
      2: {interface: p2, mac: "02:00:00:00:0%d:02"}
`, i+1, a, i+1, i+1, i+1)
	}
	b.WriteString(`vips:
  - name: vpc
    id: 1
    address: 10.255.0.1
    default_pool: base
pools:
  - name: base
    id: 1
    cluster: base
    backends:
`)
	for _, be := range base {
		mac := be.mac
		if mac == "" {
			mac = fmt.Sprintf("02:00:00:00:20:%02x", be.id)
		}
		fmt.Fprintf(&b, "      - {name: %s, id: %d, underlay_ip: 10.2.0.%d, mac: %q, port: 2, weight: %d}\n",
			be.name, be.id, be.id, mac, be.weight)
	}
	b.WriteString(`  - name: gray
    id: 2
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {name: gray-1, id: 21, underlay_ip: 10.3.0.21, mac: "02:00:00:00:30:21", port: 2}
tenants:
  - name: acme
    id: 7
    vnis: [5001]
gray_rules:
  - name: vm-10.0.0.5
    match: {vip: vpc, vni: 5001, src: 10.0.0.5}
    pool: gray
`)
	return b.String()
}

func threeBackends() []backendSpec {
	return []backendSpec{{"base-1", 11, 1, ""}, {"base-2", 12, 1, ""}, {"base-3", 13, 1, ""}}
}

// threeBackendsApplied starts an agent and an engine (election id 10) that
// commits the intent of three backends at the agent as version 1 and waits
// until the gateway holds it; it returns them, the prepared version and the
// gateway's status.
func threeBackendsApplied(t *testing.T) (*agent, *engine.Engine, *engine.Prepared, engine.GatewayStatus) {
	t.Helper()
	a := startAgent(t, nil)
	e := newEngine(t, nil, 10)
	p := stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	return a, e, p, stack.WaitVersion(t, e, 1)[0]
}

func load(t *testing.T, yaml string) *intent.Intent {
	t.Helper()
	return compiletest.Load(t, yaml)
}

type counting struct {
	mu       sync.Mutex
	written  map[string]int
	failures int
}

func (c *counting) Reconciled(gw string, _ time.Duration, n int, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written == nil {
		c.written = map[string]int{}
	}
	c.written[gw] += n
}

func (c *counting) WriteFailed(string, codes.Code, int) {}

// newEngine starts an engine with short timers.
func newEngine(t *testing.T, st store.Store, election uint64) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: election, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Store: st, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// desired converts the compiled entries of gateway gw to canonical P4Runtime entries.
func desired(t *testing.T, res *compile.Result, gw string) []*p4v1.TableEntry {
	t.Helper()
	codec := engine.NewCodec(stack.P4Info(t))
	g, ok := res.Gateway(gw)
	if !ok {
		t.Fatalf("no gateway %s in the result", gw)
	}
	var out []*p4v1.TableEntry
	for i := range g.Entries {
		te, err := codec.ToP4(&g.Entries[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, te)
	}
	return out
}

// sameEntries reports the differences between two entry sets, compared byte for byte.
func sameEntries(t *testing.T, got, want []*p4v1.TableEntry) {
	t.Helper()
	set := func(l []*p4v1.TableEntry) map[string]bool {
		m := map[string]bool{}
		for _, te := range l {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(engine.Canonicalize(te))
			if err != nil {
				t.Fatal(err)
			}
			m[string(b)] = true
		}
		return m
	}
	g, w := set(got), set(want)
	missing, extra := 0, 0
	for k := range w {
		if !g[k] {
			missing++
		}
	}
	for k := range g {
		if !w[k] {
			extra++
		}
	}
	if missing+extra > 0 || len(got) != len(want) {
		t.Fatalf("target holds %d entries, want %d: %d missing, %d extra", len(got), len(want), missing, extra)
	}
}
