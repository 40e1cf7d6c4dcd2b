package p4rt_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// agent runs the real graygw P4Runtime server (in-memory dataplane) on a loopback
// TCP port, so the client is tested over real gRPC.
type agent struct {
	addr string
	gs   *grpc.Server
	srv  *server.Server
}

func startAgent(t *testing.T, addr string) *agent {
	t.Helper()
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{P4Info: info, Dataplane: dataplane.NewMemory(dataplane.Limits{})})
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // a restarted agent takes its old port back
		if lis, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	p4v1.RegisterP4RuntimeServer(gs, srv)
	go gs.Serve(lis)
	a := &agent{addr: lis.Addr().String(), gs: gs, srv: srv}
	t.Cleanup(a.stop)
	return a
}

func (a *agent) stop() {
	a.gs.Stop()
	a.srv.Close()
}

func dial(t *testing.T, addr string, election uint64) *p4rt.Client {
	t.Helper()
	c, err := p4rt.Dial(addr, p4rt.Options{DeviceID: 1, ElectionID: election, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func info(t *testing.T) *p4info.Info {
	in, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// tenantInsert builds an INSERT of vni_tenant vni -> tenant.
// primaryWithPipeline starts an agent and a client, primary, that pushed
// the pipeline (cookie 1).
func primaryWithPipeline(t *testing.T) (*p4rt.Client, *p4info.Info) {
	t.Helper()
	a := startAgent(t, "127.0.0.1:0")
	c := dial(t, a.addr, 10)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	in := info(t)
	if _, err := c.EnsurePipeline(ctx(t), in.P4Info(), nil, 1); err != nil {
		t.Fatal(err)
	}
	return c, in
}

func tenantInsert(t *testing.T, in *p4info.Info, vni, tenant uint64) *p4v1.Update {
	b := p4rtest.Builder{T: t, Info: in}
	return p4rtest.Ins(b.Entry(pipeline.TableVNITenant, 0, []p4rtest.FM{p4rtest.Exact(pipeline.MatchVNI.Name, vni)},
		pipeline.ActionSetTenant, p4rtest.P(pipeline.ParamTenantID.Name, tenant)))
}

func TestPipelinePushedOnlyWhenCookieDiffers(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	c := dial(t, a.addr, 10)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	in := info(t)
	pushed, err := c.EnsurePipeline(ctx(t), in.P4Info(), nil, 42)
	if err != nil || !pushed {
		t.Fatalf("first push: pushed=%v err=%v", pushed, err)
	}
	pushed, err = c.EnsurePipeline(ctx(t), in.P4Info(), nil, 42)
	if err != nil || pushed {
		t.Fatalf("same cookie: pushed=%v err=%v", pushed, err)
	}
	if cookie, ok, err := c.Cookie(ctx(t)); err != nil || !ok || cookie != 42 {
		t.Fatalf("cookie = %d %v %v", cookie, ok, err)
	}
}

func TestWriteReportsEachFailedUpdate(t *testing.T) {
	c, in := primaryWithPipeline(t)
	ups := []*p4v1.Update{tenantInsert(t, in, 5001, 7), tenantInsert(t, in, 5002, 8), tenantInsert(t, in, 5001, 9)}
	err := c.Write(ctx(t), ups, 0)
	var we *p4rt.WriteError
	if !errors.As(err, &we) || len(we.Failed) != 1 || we.Failed[0].Index != 2 || we.Failed[0].Code != codes.AlreadyExists {
		t.Fatalf("duplicate insert: %v", err)
	}
	// The other two were applied (CONTINUE_ON_ERROR) and read back.
	tb, _ := in.Table(pipeline.TableVNITenant)
	got, err := c.ReadTable(ctx(t), tb.ID, false)
	if err != nil || len(got) != 2 {
		t.Fatalf("read back %d entries, %v", len(got), err)
	}
	// Batches of one give the failure the same index.
	err = c.Write(ctx(t), ups, 1)
	if !errors.As(err, &we) || len(we.Failed) != 3 || we.Failed[2].Index != 2 || !p4rt.IsCode(err, codes.AlreadyExists) {
		t.Fatalf("batch 1: %v", err)
	}
}

func TestStandbyUntilPrimaryLeaves(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	high := dial(t, a.addr, 20)
	if err := high.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	low := dial(t, a.addr, 10)
	deadline := time.Now().Add(2 * time.Second)
	for !low.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !low.Connected() || low.IsPrimary() {
		t.Fatalf("low election id: connected=%v primary=%v, want a connected backup", low.Connected(), low.IsPrimary())
	}
	in := info(t)
	if err := low.Write(ctx(t), []*p4v1.Update{tenantInsert(t, in, 1, 1)}, 0); !errors.Is(err, p4rt.ErrNotPrimary) {
		t.Fatalf("backup write: %v, want ErrNotPrimary", err)
	}
	high.Close()
	if err := low.WaitPrimary(ctx(t)); err != nil {
		t.Fatalf("backup did not take over: %v", err)
	}
	// The old primary coming back with its old id does not take mastership back.
	again := dial(t, a.addr, 20)
	deadline = time.Now().Add(2 * time.Second)
	for !again.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if again.IsPrimary() || !low.IsPrimary() {
		t.Fatalf("returning controller: primary=%v, taken-over one primary=%v", again.IsPrimary(), low.IsPrimary())
	}
}

func TestReconnectsAfterAgentRestart(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	c := dial(t, a.addr, 10)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	changed := c.Changes()
	a.stop()
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no state change after the agent stopped")
	}
	if c.IsPrimary() {
		t.Fatal("still primary with the agent gone")
	}
	startAgent(t, a.addr)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
}

func TestNewCookieKeepsEntriesOfACompatiblePipeline(t *testing.T) {
	c, in := primaryWithPipeline(t)
	if err := c.Write(ctx(t), []*p4v1.Update{tenantInsert(t, in, 5001, 7)}, 0); err != nil {
		t.Fatal(err)
	}
	if pushed, err := c.EnsurePipeline(ctx(t), in.P4Info(), nil, 2); err != nil || !pushed {
		t.Fatalf("new cookie: pushed=%v err=%v", pushed, err)
	}
	tb, _ := in.Table(pipeline.TableVNITenant)
	got, err := c.ReadTable(ctx(t), tb.ID, false)
	if err != nil || len(got) != 1 {
		t.Fatalf("after re-push with a new cookie: %d entries, %v; want the entry kept", len(got), err)
	}
}

func TestPipelineReturnsTheP4InfoTheTargetRuns(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	c := dial(t, a.addr, 10)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, _, ok, err := c.Pipeline(ctx(t)); err != nil || ok || got != nil {
		t.Fatalf("before any push: info=%v ok=%v err=%v", got != nil, ok, err)
	}
	in := info(t)
	if _, err := c.EnsurePipeline(ctx(t), in.P4Info(), nil, 42); err != nil {
		t.Fatal(err)
	}
	got, cookie, ok, err := c.Pipeline(ctx(t))
	if err != nil || !ok || cookie != 42 || got == nil {
		t.Fatalf("Pipeline = info %v cookie %d ok %v err %v", got != nil, cookie, ok, err)
	}
	tb, err := in.Table(pipeline.TableGrayRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range got.GetTables() {
		if pt.GetPreamble().GetId() == tb.ID && pt.GetSize() != tb.Size {
			t.Fatalf("gray_rules size %d, want %d", pt.GetSize(), tb.Size)
		}
	}
}

// TestWarmStandbyTakesOverOnlyWhenRaised: an HA follower's standby session
// stays a connected backup, does not take over when the leader goes (no id
// raised on a vacancy), and becomes primary on the stream it has when its
// election id is set to the new leader's (a reconnect would wait out the 5 s
// backoff).
func TestWarmStandbyTakesOverOnlyWhenRaised(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	lead, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionIDHigh: 5, ElectionID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := lead.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	in := info(t)
	if _, err := lead.EnsurePipeline(ctx(t), in.P4Info(), nil, 1); err != nil {
		t.Fatal(err)
	}
	sb, err := p4rt.Dial(a.addr, p4rt.Options{DeviceID: 1, ElectionID: 99, Standby: true, MinBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for deadline := time.Now().Add(2 * time.Second); !sb.Connected() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !sb.Connected() || sb.IsPrimary() || !sb.Standby() {
		t.Fatalf("standby: connected=%v primary=%v standby=%v, want a connected standby backup", sb.Connected(), sb.IsPrimary(), sb.Standby())
	}
	lead.Close()
	time.Sleep(300 * time.Millisecond)
	if sb.IsPrimary() {
		t.Fatal("the standby took over a vacancy on its own")
	}
	sb.SetElectionID(6, 7)
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sb.WaitPrimary(wctx); err != nil {
		t.Fatalf("raised standby: %v", err)
	}
	if sb.Standby() {
		t.Fatal("still standby after SetElectionID")
	}
	if err := sb.Write(ctx(t), []*p4v1.Update{tenantInsert(t, in, 1, 1)}, 0); err != nil {
		t.Fatalf("write as the new leader: %v", err)
	}
}
