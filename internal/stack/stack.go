// Package stack starts graygw's controller stack for a test: the XDP agent's
// P4Runtime server over a dataplane (a Memory one unless the test gives one,
// e.g. xdp.New over a lab's XDP program) on a loopback port, and the
// controller (a store, the engine and the API service on a unix socket, with a
// client). Everything it starts is stopped at the test's cleanup.
package stack

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/controller/store"
)

// P4Info returns the committed P4Info.
func P4Info(t testing.TB) *p4info.Info {
	t.Helper()
	return p4infotest.Committed(t)
}

// Entries decodes table entries read from a gateway into the compiler's
// entries, with the committed P4Info's codec; it fails t on an entry the
// codec refuses.
func Entries(t testing.TB, tes []*p4v1.TableEntry) []compile.Entry {
	t.Helper()
	codec := engine.NewCodec(P4Info(t))
	out := make([]compile.Entry, 0, len(tes))
	for _, te := range tes {
		e, err := codec.FromP4(te)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// Logger discards, unless GRAYGW_TEST_LOG is set: then it logs at debug to
// stderr, each line naming the test.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("GRAYGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// AgentConfig configures StartAgent; every field may be left zero.
type AgentConfig struct {
	// Server is the agent's configuration. Zero fields get: DeviceID 1, the
	// committed P4Info, a new Memory dataplane, Logger(t).
	Server server.Config
	// Addr is the address to listen on ("127.0.0.1:0" when empty).
	Addr string
	// ServerOptions are the agent's gRPC server options (interceptors,
	// message sizes).
	ServerOptions []grpc.ServerOption
}

// Agent is a running agent.
type Agent struct {
	// Addr is the agent's P4Runtime address.
	Addr string
	// Memory is the dataplane when the config gave none.
	Memory *dataplane.Memory

	t   testing.TB
	cfg AgentConfig
	mu  sync.Mutex
	gs  *grpc.Server
	srv *server.Server
}

// StartAgent serves the agent's P4Runtime server on a loopback port.
func StartAgent(t testing.TB, cfg AgentConfig) *Agent {
	t.Helper()
	if cfg.Server.DeviceID == 0 {
		cfg.Server.DeviceID = 1
	}
	if cfg.Server.P4Info == nil {
		cfg.Server.P4Info = P4Info(t)
	}
	if cfg.Server.Logger == nil {
		cfg.Server.Logger = Logger(t)
	}
	a := &Agent{t: t, Addr: cfg.Addr}
	if a.Addr == "" {
		a.Addr = "127.0.0.1:0"
	}
	if cfg.Server.Dataplane == nil {
		a.Memory = dataplane.NewMemory(dataplane.Limits{})
		cfg.Server.Dataplane = a.Memory
	}
	a.cfg = cfg
	a.Start()
	t.Cleanup(a.Stop)
	return a
}

// Start starts the agent again after Stop, on the same address and over the
// same dataplane (the gateway comes back).
func (a *Agent) Start() {
	a.t.Helper()
	srv, err := server.New(a.cfg.Server)
	if err != nil {
		a.t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if lis, err = net.Listen("tcp", a.Addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		srv.Close()
		a.t.Fatal(err)
	}
	a.Addr = lis.Addr().String()
	gs := grpc.NewServer(a.cfg.ServerOptions...)
	p4v1.RegisterP4RuntimeServer(gs, srv)
	go gs.Serve(lis)
	a.mu.Lock()
	a.gs, a.srv = gs, srv
	a.mu.Unlock()
}

// Server returns the agent's P4Runtime server (nil while stopped): a test
// writes to it in process, with the controller's election id, to change the
// gateway's tables behind the controller's back.
func (a *Agent) Server() *server.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.srv
}

// Stop stops the agent (the gateway is lost); the dataplane is kept.
func (a *Agent) Stop() {
	a.mu.Lock()
	gs, srv := a.gs, a.srv
	a.gs, a.srv = nil, nil
	a.mu.Unlock()
	if gs != nil {
		gs.Stop()
		srv.Close()
	}
}

// Config configures StartController; every field may be left zero.
type Config struct {
	// Dir holds the store and the socket (a new temporary directory when
	// empty).
	Dir string
	// Store is the controller's store (a bbolt file in Dir, without fsync,
	// when nil). The controller closes it when it stops.
	Store store.Store
	// Engine is the engine's configuration. Zero fields get: the committed
	// P4Info, ElectionID 10, Interval 1h (passes only on changes), Retry
	// 50ms, backoff 20-200ms, the store, Logger(t).
	Engine engine.Config
	// Service is the service's configuration; Store, Engine and Logger are
	// filled in, WaitTimeout is 30s when zero.
	Service service.Config
}

// Controller is a running controller.
type Controller struct {
	Service *service.Service
	Engine  *engine.Engine
	Store   store.Store
	// Socket is the API's unix socket path; Client a client on it.
	Socket string
	Client graygwv1.ControllerClient
	// Stop drains the service, stops serving (and BGP, withdrawing), and
	// closes the engine and the store. Idempotent; also run at cleanup.
	Stop func()
}

// StartController starts the controller on a unix socket in cfg.Dir.
func StartController(t testing.TB, cfg Config) *Controller {
	t.Helper()
	dir := cfg.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	log := Logger(t)
	st := cfg.Store
	if st == nil {
		var err error
		if st, err = store.OpenBolt(filepath.Join(dir, "graygw.db"), store.BoltOptions{NoSync: true}); err != nil {
			t.Fatal(err)
		}
	}
	ec := cfg.Engine
	if ec.P4Info == nil {
		ec.P4Info = P4Info(t)
	}
	if ec.ElectionID == 0 {
		ec.ElectionID = 10
	}
	if ec.Interval == 0 {
		ec.Interval = time.Hour
	}
	if ec.Retry == 0 {
		ec.Retry = 50 * time.Millisecond
	}
	if ec.MinBackoff == 0 {
		ec.MinBackoff = 20 * time.Millisecond
	}
	if ec.MaxBackoff == 0 {
		ec.MaxBackoff = 200 * time.Millisecond
	}
	if ec.Store == nil {
		ec.Store = st
	}
	if ec.Logger == nil {
		ec.Logger = log
	}
	eng, err := engine.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Service
	sc.Store, sc.Engine = st, eng
	if sc.Logger == nil {
		sc.Logger = log
	}
	if sc.WaitTimeout == 0 {
		sc.WaitTimeout = 30 * time.Second
	}
	svc, err := service.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	lis, err := service.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := svc.NewServer(service.UnixCredentials())
	go gs.Serve(lis)
	conn, err := dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			conn.Close()
			svc.Drain()
			if sc.BGP != nil {
				svc.StopBGP(context.Background(), true)
			}
			gs.Stop()
			eng.Close(context.Background())
			st.Close()
		})
	}
	t.Cleanup(stop)
	return &Controller{Service: svc, Engine: eng, Store: st, Socket: sock, Client: graygwv1.NewControllerClient(conn), Stop: stop}
}

// Dial connects to a controller's API on the unix socket sock (a daemon's, a
// replica's or StartController's), with messages up to 64 MiB both ways; the
// connection is closed at the test's cleanup.
func Dial(t testing.TB, sock string) graygwv1.ControllerClient {
	t.Helper()
	conn, err := dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return graygwv1.NewControllerClient(conn)
}

// Conn is an insecure client connection to target (host:port, or
// unix://path) that takes messages up to 256 MiB (a gateway's whole tables
// in one read). It is closed when t ends; a caller that dials often closes
// it sooner.
func Conn(t testing.TB, target string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dial(sock string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
}

// Commit prepares in on e and commits it as version v; an error fails the
// test.
func Commit(t testing.TB, e *engine.Engine, in *intent.Intent, v uint64) *engine.Prepared {
	t.Helper()
	p, err := e.Prepare(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitVersion waits up to 30 s for every gateway of e to hold version v and
// returns their status.
func WaitVersion(t testing.TB, e *engine.Engine, v uint64) []engine.GatewayStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := e.WaitVersion(ctx, v)
	if err != nil {
		t.Fatalf("%v; status %+v", err, st)
	}
	return st
}

// ServeStandby serves a standby replica's API on a unix socket until the test
// ends and returns the socket's path.
func ServeStandby(t testing.TB, sb *service.Standby) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "standby.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := sb.NewServer(service.UnixCredentials())
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return sock
}

// SizedP4Info is the committed P4Info with the given tables' sizes changed: a
// smaller build of the same pipeline (Tofino 1's gray_rules). A name that is
// no table of the pipeline fails the test.
func SizedP4Info(t testing.TB, sizes map[string]int64) *p4info.Info {
	t.Helper()
	pi := proto.Clone(P4Info(t).P4Info()).(*p4configv1.P4Info)
	left := maps.Clone(sizes)
	for _, tb := range pi.GetTables() {
		if s, ok := left[tb.GetPreamble().GetName()]; ok {
			tb.Size = s
			delete(left, tb.GetPreamble().GetName())
		}
	}
	if len(left) > 0 {
		t.Fatalf("no such tables: %v", left)
	}
	info, err := p4info.New(pi)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// Provision makes the agent at addr run info under the engine's cookie for
// the committed P4Info, as a target provisioned with its own build is: an
// engine that connects then pushes nothing and learns info's table sizes from
// GetForwardingPipelineConfig.
func Provision(t testing.TB, addr string, info *p4info.Info) {
	t.Helper()
	c, err := p4rt.Dial(addr, p4rt.Options{DeviceID: 1, ElectionID: 1, Logger: Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsurePipeline(ctx, info.P4Info(), nil, engine.Cookie(P4Info(t), nil)); err != nil {
		t.Fatal(err)
	}
}
