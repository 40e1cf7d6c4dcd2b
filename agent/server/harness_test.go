package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/internal/stack"
)

const device = 1

// harness is an agent server on an in-memory gRPC connection over a Memory
// dataplane, with a real P4Runtime client.
type harness struct {
	t    *testing.T
	info *p4info.Info
	dp   dataplane.Dataplane
	mem  *dataplane.Memory
	dir  string
	gen  string
	// resetEIDs restarts with Config.ResetElectionIDs.
	resetEIDs bool

	srv  *server.Server
	gs   *grpc.Server
	lis  *bufconn.Listener
	conn *grpc.ClientConn
	c    p4v1.P4RuntimeClient
}

type option func(*harness, *server.Config)

func withDataplane(dp dataplane.Dataplane) option {
	return func(h *harness, _ *server.Config) { h.dp = dp }
}

func withStateDir(dir string) option {
	return func(h *harness, _ *server.Config) { h.dir = dir }
}

func withLimits(l dataplane.Limits) option {
	return func(h *harness, _ *server.Config) { h.mem = dataplane.NewMemory(l); h.dp = h.mem }
}

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, info: stack.P4Info(t), gen: "test"}
	h.mem = dataplane.NewMemory(dataplane.Limits{})
	h.dp = h.mem
	var cfg server.Config
	for _, o := range opts {
		o(h, &cfg)
	}
	h.startServer()
	t.Cleanup(h.stop)
	return h
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (h *harness) startServer() {
	h.t.Helper()
	srv, err := server.New(server.Config{DeviceID: device, P4Info: h.info, Dataplane: h.dp, StateDir: h.dir,
		Generation: h.gen, Logger: quietLogger(), ResetElectionIDs: h.resetEIDs})
	if err != nil {
		h.t.Fatalf("server.New: %v", err)
	}
	h.srv = srv
	h.lis = bufconn.Listen(1 << 20)
	h.gs = grpc.NewServer(srv.GRPCOptions()...)
	p4v1.RegisterP4RuntimeServer(h.gs, srv)
	go h.gs.Serve(h.lis)
	lis := h.lis
	conn, err := grpc.NewClient("passthrough:///agent",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.conn, h.c = conn, p4v1.NewP4RuntimeClient(conn)
}

func (h *harness) stop() {
	if h.gs == nil {
		return
	}
	h.conn.Close()
	h.gs.Stop()
	h.srv.Close()
	h.gs = nil
}

// restart stops the server and starts a new one over the same dataplane and
// state directory: the agent restart of docs/agent.md.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.startServer()
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// --- arbitration ---------------------------------------------------------------

type controller struct {
	t      *testing.T
	stream p4v1.P4Runtime_StreamChannelClient
	cancel context.CancelFunc
	role   string
	id     *p4v1.Uint128
	msgs   chan streamMsg
}

func eid(n uint64) *p4v1.Uint128 { return &p4v1.Uint128{Low: n} }

// connect opens a stream and sends an arbitration update (id nil: unset).
func (h *harness) connect(role string, id *p4v1.Uint128) *controller {
	h.t.Helper()
	c, cancel := context.WithCancel(context.Background())
	st, err := h.c.StreamChannel(c)
	if err != nil {
		h.t.Fatal(err)
	}
	ctl := &controller{t: h.t, stream: st, cancel: cancel, role: role, id: id}
	ctl.start()
	h.t.Cleanup(cancel)
	ctl.arbitrate(device, role, id)
	return ctl
}

func (c *controller) arbitrate(dev uint64, role string, id *p4v1.Uint128) {
	c.t.Helper()
	u := &p4v1.MasterArbitrationUpdate{DeviceId: dev, ElectionId: id}
	if role != "" {
		u.Role = &p4v1.Role{Name: role}
	}
	if err := c.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: u}}); err != nil {
		c.t.Fatal(err)
	}
}

type streamMsg struct {
	m   *p4v1.StreamMessageResponse
	err error
}

// start begins reading the stream into c.msgs.
func (c *controller) start() {
	c.msgs = make(chan streamMsg, 64)
	go func() {
		for {
			m, err := c.stream.Recv()
			c.msgs <- streamMsg{m, err}
			if err != nil {
				return
			}
		}
	}()
}

// recv returns the next stream message or the stream's end status.
func (c *controller) recv() (*p4v1.StreamMessageResponse, error) {
	c.t.Helper()
	select {
	case r := <-c.msgs:
		return r.m, r.err
	case <-time.After(5 * time.Second):
		c.t.Fatal("no stream message within 5s")
		return nil, nil
	}
}

// expectArb reads the next message and checks it is an arbitration update with
// the given status code and election id (nil: unset).
func (c *controller) expectArb(code codes.Code, id *p4v1.Uint128) {
	c.t.Helper()
	m, err := c.recv()
	if err != nil {
		c.t.Fatalf("stream ended: %v", err)
	}
	a := m.GetArbitration()
	if a == nil {
		c.t.Fatalf("got %v, want an arbitration update", m)
	}
	if codes.Code(a.GetStatus().GetCode()) != code {
		c.t.Fatalf("arbitration status %v (%s), want %v", codes.Code(a.GetStatus().GetCode()), a.GetStatus().GetMessage(), code)
	}
	if !proto.Equal(a.GetElectionId(), id) {
		c.t.Fatalf("arbitration election_id %v, want %v", a.GetElectionId(), id)
	}
	if a.GetDeviceId() != device {
		c.t.Fatalf("arbitration device_id %d", a.GetDeviceId())
	}
}

// expectEnd checks that the stream ends with code.
func (c *controller) expectEnd(code codes.Code) {
	c.t.Helper()
	for {
		m, err := c.recv()
		if err == nil {
			if m.GetArbitration() != nil {
				continue
			}
			c.t.Fatalf("got %v, want the stream to end with %v", m, code)
		}
		if status.Code(err) != code {
			c.t.Fatalf("stream ended with %v, want %v", err, code)
		}
		return
	}
}

// expectQuiet checks that nothing arrives for a short while.
func (c *controller) expectQuiet() {
	c.t.Helper()
	select {
	case r := <-c.msgs:
		c.t.Fatalf("unexpected stream message %v (%v)", r.m, r.err)
	case <-time.After(100 * time.Millisecond):
	}
}

// primary connects a controller with election id 1 and waits for its OK.
func (h *harness) primary() *controller {
	h.t.Helper()
	c := h.connect("", eid(1))
	c.expectArb(codes.OK, eid(1))
	return c
}

// ready makes a primary and pushes the project's pipeline.
func (h *harness) ready() *controller {
	h.t.Helper()
	c := h.primary()
	h.setPipeline(c, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, h.info.P4Info(), 42)
	return c
}

func (h *harness) setPipelineErr(c *controller, action p4v1.SetForwardingPipelineConfigRequest_Action, info *p4configv1.P4Info, cookie uint64) error {
	req := &p4v1.SetForwardingPipelineConfigRequest{DeviceId: device, ElectionId: c.id, Action: action}
	if c.role != "" {
		req.Role = c.role
	}
	if info != nil {
		req.Config = &p4v1.ForwardingPipelineConfig{P4Info: info, P4DeviceConfig: []byte("xdp"),
			Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: cookie}}
	}
	_, err := h.c.SetForwardingPipelineConfig(ctx(h.t), req)
	return err
}

func (h *harness) setPipeline(c *controller, action p4v1.SetForwardingPipelineConfigRequest_Action, info *p4configv1.P4Info, cookie uint64) {
	h.t.Helper()
	if err := h.setPipelineErr(c, action, info, cookie); err != nil {
		h.t.Fatalf("SetForwardingPipelineConfig(%v): %v", action, err)
	}
}

// --- writes and reads ----------------------------------------------------------

func (c *controller) writeReq(updates ...*p4v1.Update) *p4v1.WriteRequest {
	return &p4v1.WriteRequest{DeviceId: device, Role: c.role, ElectionId: c.id, Updates: updates}
}

func (h *harness) write(c *controller, updates ...*p4v1.Update) error {
	_, err := h.c.Write(ctx(h.t), c.writeReq(updates...))
	return err
}

func (h *harness) mustWrite(c *controller, updates ...*p4v1.Update) {
	h.t.Helper()
	if err := h.write(c, updates...); err != nil {
		h.t.Fatalf("Write: %v (details %v)", err, p4Errors(err))
	}
}

// p4Errors decodes the per-update errors of a batch status.
func p4Errors(err error) []*p4v1.Error { return p4rtest.P4Errors(err) }

// updateCodes writes updates in one batch and returns each update's code.
func (h *harness) updateCodes(c *controller, updates ...*p4v1.Update) []codes.Code {
	h.t.Helper()
	err := h.write(c, updates...)
	out := make([]codes.Code, len(updates))
	if err == nil {
		return out
	}
	if status.Code(err) != codes.Unknown {
		h.t.Fatalf("batch status %v, want UNKNOWN with details", err)
	}
	pes := p4Errors(err)
	if len(pes) != len(updates) {
		h.t.Fatalf("%d p4.Errors for %d updates", len(pes), len(updates))
	}
	for i, pe := range pes {
		out[i] = codes.Code(pe.GetCanonicalCode())
		if out[i] == codes.OK && (pe.GetMessage() != "" || pe.GetSpace() != "") {
			h.t.Errorf("OK p4.Error %d carries %v", i, pe)
		}
		if out[i] != codes.OK && pe.GetMessage() == "" {
			h.t.Errorf("p4.Error %d (%v) has no message", i, out[i])
		}
	}
	return out
}

// updateErr writes one update and returns its p4.Error (nil when OK).
func (h *harness) updateErr(c *controller, u *p4v1.Update) *p4v1.Error {
	h.t.Helper()
	err := h.write(c, u)
	if err == nil {
		return nil
	}
	pes := p4Errors(err)
	if status.Code(err) != codes.Unknown || len(pes) != 1 {
		h.t.Fatalf("write status %v with %d details, want UNKNOWN with 1", err, len(pes))
	}
	return pes[0]
}

func (h *harness) readErr(entities ...*p4v1.Entity) ([]*p4v1.Entity, error) {
	return p4rtest.Read(ctx(h.t), h.c, device, entities...)
}

// wantEntries fails t unless the agent holds exactly n table entries; what
// says when, or which.
func (h *harness) wantEntries(t *testing.T, n int, what string) {
	t.Helper()
	if got := len(h.read(ent(&p4v1.TableEntry{}))); got != n {
		t.Fatalf("%s: %d table entries, want %d", what, got, n)
	}
}

func (h *harness) read(entities ...*p4v1.Entity) []*p4v1.Entity {
	h.t.Helper()
	out, err := h.readErr(entities...)
	if err != nil {
		h.t.Fatalf("Read: %v (details %v)", err, p4Errors(err))
	}
	return out
}

// --- entry builders (by P4Info name): agent/p4rtest -------------------

type (
	builder = p4rtest.Builder
	fm      = p4rtest.FM
	param   = p4rtest.Param
)

var (
	exact = p4rtest.Exact
	tern  = p4rtest.Tern
	p     = p4rtest.P
	ent   = p4rtest.Ent
	ins   = p4rtest.Ins
	mod   = p4rtest.Mod
	del   = p4rtest.Del
)

func (h *harness) b() builder { return builder{T: h.t, Info: h.info} }

func clone[T proto.Message](m T) T { return proto.Clone(m).(T) }
