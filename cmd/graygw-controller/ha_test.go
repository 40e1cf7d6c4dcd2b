package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/dataplane"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
)

// inSync reports whether the controller on sock answers (it leads) with
// every gateway in sync, and the first gateway's status.
func inSync(sock string, c graygwv1.ControllerClient) (*graygwv1.GatewayStatus, bool) {
	if _, err := os.Stat(sock); err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.Status(ctx, &graygwv1.StatusRequest{})
	if err != nil || len(st.GetGateways()) == 0 {
		return nil, false
	}
	for _, g := range st.GetGateways() {
		if !g.GetInSync() {
			return nil, false
		}
	}
	return st.GetGateways()[0], true
}

// haReplica writes the config of controller replica id (ha:, on the etcd
// endpoints under prefix, extra prepended: a probe: section say) in dir and
// returns its arguments and API socket.
func haReplica(t *testing.T, dir, id string, endpoints []string, prefix, extra, intentFile string) (args []string, sock string) {
	t.Helper()
	cfg := filepath.Join(dir, id+".yaml")
	text := fmt.Sprintf("%sstore:\n  etcd:\n    endpoints: [%s]\n    prefix: %s\nha: {id: %s, ttl: 2s}\n", extra, strings.Join(endpoints, ", "), prefix, id)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, id+".sock")
	return []string{"--config", cfg, "--listen-unix", sock, "--intent", intentFile, "--election-id", "7"}, sock
}

// replica is one controller process of an HA test.
type replica struct {
	args []string // its command line, to start it again
	sock string   // its API socket
	api  graygwv1.ControllerClient
	proc *child
}

// startHAPair starts replica a (on etcd endpoints epsA) and waits until it
// leads with its gateway in sync, then starts replica b (on epsB); both keep
// their state under prefix, with extra before their store: (haReplica). b
// may not stand by yet when it returns.
func startHAPair(t *testing.T, dir string, epsA, epsB []string, prefix, extra, intentFile string) (a, b *replica) {
	t.Helper()
	start := func(id string, eps []string) *replica {
		args, sock := haReplica(t, dir, id, eps, prefix, extra, intentFile)
		return &replica{args: args, sock: sock, api: stack.Dial(t, sock), proc: startChild(t, filepath.Join(dir, id+".log"), args...)}
	}
	a = start("a", epsA)
	waitLeads(t, a.sock, a.api, time.Now(), "first leader")
	return a, start("b", epsB)
}

// startHAPairOnEtcd starts a 3-member etcd cluster, an agent over a Memory
// dataplane and two replicas of a controller of it (startHAPair) on the
// cluster under prefix. It returns the cluster, the agent's address and the
// replicas.
func startHAPairOnEtcd(t *testing.T, prefix string) (cl *etcdlab.Cluster, addr string, a, b *replica) {
	t.Helper()
	cl = etcdlab.Start(t, 3, false)
	addr, intentFile := memoryGateway(t)
	a, b = startHAPair(t, t.TempDir(), cl.Endpoints(), cl.Endpoints(), prefix, "", intentFile)
	return cl, addr, a, b
}

// waitLeads waits until the replica on sock leads with its gateway in sync
// and returns how long that took from since.
func waitLeads(t *testing.T, sock string, c graygwv1.ControllerClient, since time.Time, what string) (time.Duration, *graygwv1.GatewayStatus) {
	t.Helper()
	for {
		if g, ok := inSync(sock, c); ok {
			return time.Since(since), g
		}
		if time.Since(since) > 30*time.Second {
			t.Fatalf("%s: the replica on %s never led with its gateway in sync", what, sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHALeaderFailover: two controller processes on one etcd store with ha:
// exactly one leads (the other serves nothing); SIGKILL of the leader elects
// the other within the lease and a margin, in sync without writing an entry,
// and accepting changes; the dead leader's P4Runtime election id (its term)
// is refused by the gateway: fencing by the gateway, not by good behaviour.
func TestHALeaderFailover(t *testing.T) {
	cl, addr, ra, rb := startHAPairOnEtcd(t, "/ha/")
	a, b := ra.proc, rb.proc
	var err error
	// b stands by: its API answers reads from the store and refuses changes
	// naming a and its address (trailer), for the CLI to follow.
	var got *graygwv1.GetResponse
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = rb.api.Get(context.Background(), &graygwv1.GetRequest{}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || got.GetVersion() != 1 {
		t.Fatalf("get from the standby: %v %v", got, err)
	}
	var md metadata.MD
	_, err = rb.api.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: got.GetIntentYaml()}, grpc.Trailer(&md))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "the leader is a") ||
		len(md.Get("graygw-leader")) != 1 || md.Get("graygw-leader")[0] != "unix://"+ra.sock {
		t.Fatalf("apply on the standby: %v (trailer %v), want UNAVAILABLE naming a at unix://%s", err, md, ra.sock)
	}
	if _, err := rb.api.Status(context.Background(), &graygwv1.StatusRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("status on the standby: %v, want UNAVAILABLE (it holds no sessions)", err)
	}
	// A warm standby traces itself, over the entries its standby session
	// reads back (reads need no mastership), once it follows the intent.
	var tr *graygwv1.TraceResponse
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tr, err = rb.api.Trace(context.Background(), &graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Open: []string{"dst", "proto", "sport", "dport"}})
		if err == nil && len(tr.GetGateways()) == 1 && tr.GetGateways()[0].GetInSync() || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(tr.GetGateways()) != 1 || len(tr.GetGateways()[0].GetVips()) != 1 ||
		tr.GetGateways()[0].GetVips()[0].GetBackend() != "gray-1" || !tr.GetGateways()[0].GetInSync() {
		t.Fatalf("trace on the warm standby: %v %v", tr, err)
	}
	// The leader's status lists both replicas, itself first with its term.
	sa, err := ra.api.Status(context.Background(), &graygwv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := sa.GetReplicas(); len(rs) != 2 || rs[0].GetId() != "a" || !rs[0].GetLeader() || rs[0].GetTerm() == 0 ||
		rs[0].GetAddress() != "unix://"+ra.sock || rs[1].GetId() != "b" || rs[1].GetLeader() {
		t.Fatalf("replicas in a's status: %v", rs)
	}
	etc := etcdlab.Client(t, cl.Endpoints()...)
	termA, ok, err := leader.Current(context.Background(), etc, "/ha/leader/")
	if err != nil || !ok || termA.Leader != "a" || termA.Address != "unix://"+ra.sock {
		t.Fatalf("leader: %+v %v %v, want a", termA, ok, err)
	}

	killed := time.Now()
	a.cmd.Process.Kill()
	took, g := waitLeads(t, rb.sock, rb.api, killed, "after the kill")
	t.Logf("leader a SIGKILLed: b leads, in sync, API up after %s (lease 2s)", took.Round(time.Millisecond))
	if took > 6*time.Second {
		t.Errorf("failover took %s, lease 2s", took)
	}
	if g.GetEntriesWritten() != 0 || g.GetVersion() != 1 {
		t.Errorf("new leader's gateway status %v: want version 1 and nothing written (the gateway held the intent)", g)
	}
	termB, _, _ := leader.Current(context.Background(), etc, "/ha/leader/")
	if termB.Leader != "b" || termB.Number <= termA.Number {
		t.Fatalf("term after the failover %+v, want b above %d", termB, termA.Number)
	}
	// The dead replica is gone from the status (its lease ran out).
	sb, err := rb.api.Status(context.Background(), &graygwv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := sb.GetReplicas(); len(rs) != 1 || rs[0].GetId() != "b" || !rs[0].GetLeader() || rs[0].GetTerm() != termB.Number {
		t.Fatalf("replicas in b's status after the failover: %v", rs)
	}
	cur, err := rb.api.Get(context.Background(), &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rb.api.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: cur.GetIntentYaml() + "\n# after the failover\n",
		Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}})
	if err != nil || !resp.GetResult().GetApplied() || resp.GetResult().GetVersion() != 2 {
		t.Fatalf("apply on the new leader: %v %v", resp, err)
	}

	// Fencing: a session with the deposed leader's election id (high bits:
	// its term) is told by the gateway that it is not primary, and the
	// gateway refuses its write.
	conn := stack.Conn(t, addr)
	rt := p4v1.NewP4RuntimeClient(conn)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	stream, err := rt.StreamChannel(sctx)
	if err != nil {
		t.Fatal(err)
	}
	eid := &p4v1.Uint128{High: termA.ElectionID(), Low: 7}
	if err := stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
		Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: 1, ElectionId: eid}}}); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if code := codes.Code(msg.GetArbitration().GetStatus().GetCode()); code == codes.OK {
		t.Fatalf("the gateway made the deposed leader's id %v primary", eid)
	}
	_, err = rt.Write(sctx, &p4v1.WriteRequest{DeviceId: 1, ElectionId: eid, Updates: []*p4v1.Update{{Type: p4v1.Update_DELETE,
		Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: 0x02000001}}}}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the deposed leader's write: %v, want PERMISSION_DENIED from the gateway", err)
	}
	t.Logf("deposed leader (term %d) at the gateway: arbitration %s, write %v", termA.Number,
		codes.Code(msg.GetArbitration().GetStatus().GetCode()), status.Code(err))

	if code := b.term(t); code != 0 {
		t.Errorf("b exit %d after SIGTERM", code)
	}
	if _, ok, _ := leader.Current(context.Background(), etc, "/ha/leader/"); ok {
		t.Error("b still leads after a clean exit (it should resign)")
	}
}

// TestHANeedsEtcd: ha: without an etcd store is refused by field.
func TestHANeedsEtcd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("store: x.db\nha: {ttl: 1500ms}\n"), 0o600)
	var out strings.Builder
	if code := run([]string{"--config", path}, &out, &out, nil, nil); code != 2 ||
		!strings.Contains(out.String(), "ha: needs store: {etcd: ...}") || !strings.Contains(out.String(), "ha.ttl: 1.5s") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}

// largeIntent is intentText's gateway with pools pools of two backends each,
// one VIP and one gray rule per pool: pools x 4096 backend_select entries.
func largeIntent(addr string, pools int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ngateways:\n  - name: gw1\n    p4runtime: %s\n    device_id: 1\n    bgp_next_hop: 10.1.0.1\n"+
		"    ports:\n      2: {interface: p2, mac: \"02:00:00:00:01:02\"}\n"+
		"vips:\n  - {name: vpc, id: 1, address: 10.255.0.1, default_pool: p1}\npools:\n", addr)
	for i := 1; i <= pools; i++ {
		cluster := "gray"
		if i == 1 {
			cluster = "base"
		}
		fmt.Fprintf(&b, "  - name: p%d\n    id: %d\n    cluster: %s\n    backends:\n", i, i, cluster)
		for j := 0; j < 2; j++ {
			fmt.Fprintf(&b, "      - {name: b%d-%d, id: %d, underlay_ip: 10.%d.%d.%d, mac: \"02:00:00:00:%02x:%02x\", port: 2}\n",
				i, j, i*10+j, 2+j, i/256, i%256+1, i, j)
		}
	}
	b.WriteString("gray_rules:\n")
	for i := 2; i <= pools; i++ {
		fmt.Fprintf(&b, "  - name: r%d\n    match: {vip: vpc, vni: 5001, src: 10.0.%d.5}\n    pool: p%d\n", i, i, i)
	}
	return b.String()
}

// midWrite is a dataplane whose bucket writes, once armed, let after more
// through and hold the next until opened (reached is closed when the first is
// held): a leader killed in the middle of writing a change, or (armed at 0)
// a write in flight that does not end.
type midWrite struct {
	dataplane.Dataplane
	mu      sync.Mutex
	armed   bool
	n, cap  int
	reached chan struct{}
	release chan struct{}
	opened  sync.Once
}

func (m *midWrite) SetBuckets(pool, first uint16, backends []uint16) error {
	m.hold()
	return m.Dataplane.SetBuckets(pool, first, backends)
}

func (m *midWrite) SetBucket(pool, bucket, backend uint16) error {
	m.hold()
	return m.Dataplane.SetBucket(pool, bucket, backend)
}

func (m *midWrite) arm(after int) {
	m.mu.Lock()
	m.armed, m.cap = true, after
	m.mu.Unlock()
}

func (m *midWrite) hold() {
	m.mu.Lock()
	if !m.armed {
		m.mu.Unlock()
		return
	}
	m.n++
	n := m.n
	m.mu.Unlock()
	if n == m.cap+1 {
		close(m.reached)
	}
	if n > m.cap {
		<-m.release
	}
}

func (m *midWrite) open() { m.opened.Do(func() { close(m.release) }) }

// TestHAFailoverDuringALargeApply: the leader is SIGKILLed in the middle of
// writing a large change to the gateway (40 pools, 160k entries); the other
// replica takes over and brings the gateway to the committed version whole:
// the change is never left half written.
func TestHAFailoverDuringALargeApply(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes some 160k entries")
	}
	cl := etcdlab.Start(t, 3, false)
	g := &midWrite{Dataplane: dataplane.NewMemory(dataplane.Limits{}), reached: make(chan struct{}), release: make(chan struct{})}
	defer g.open()
	addr := startAgent(t, g)
	dir := t.TempDir()
	intentFile := writeIntent(t, addr)
	ra, rb := startHAPair(t, dir, cl.Endpoints(), cl.Endpoints(), "/big/", "", intentFile)
	a := ra.proc

	const pools, after = 40, 10
	g.arm(after)
	resp, err := ra.api.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: largeIntent(addr, pools), Options: &graygwv1.ChangeOptions{Actor: "t"}})
	if err != nil || !resp.GetResult().GetApplied() {
		t.Fatalf("large apply: %v %v", resp, err)
	}
	start := time.Now()
	select {
	case <-g.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader never wrote the change")
	}
	killed := time.Now()
	a.cmd.Process.Kill()
	g.open() // the dead leader's write in flight ends; the new leader's go through
	t.Logf("leader SIGKILLed %s into the apply, its bucket write %d held", killed.Sub(start).Round(time.Millisecond), after+1)

	var gs *graygwv1.GatewayStatus
	for ok := false; !ok; time.Sleep(20 * time.Millisecond) {
		gs, ok = inSync(rb.sock, rb.api)
		if ok && gs.GetVersion() != 2 {
			ok = false
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatal("the new leader never brought the gateway to version 2")
		}
	}
	t.Logf("new leader in sync at version 2 %s after the kill, having written %d entries",
		time.Since(killed).Round(time.Millisecond), gs.GetEntriesWritten())

	// The gateway holds version 2 whole: every pool's 4096 buckets.
	conn := stack.Conn(t, addr)
	rs, err := p4v1.NewP4RuntimeClient(conn).Read(context.Background(), &p4v1.ReadRequest{DeviceId: 1, Entities: []*p4v1.Entity{
		{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: 0x02000005}}}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		r, err := rs.Recv()
		if err != nil {
			break
		}
		n += len(r.GetEntities())
	}
	if n != pools*4096 {
		t.Errorf("the gateway holds %d backend_select entries, want %d (version 2 whole)", n, pools*4096)
	}
}

// cutProxy forwards TCP to one address until cut: then it refuses new
// connections and closes the open ones (a replica partitioned from etcd).
type cutProxy struct {
	lis   net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func startCutProxy(t *testing.T, to string) *cutProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: lis, to: to}
	t.Cleanup(p.Cut)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			p.mu.Lock()
			if err != nil || p.cut {
				p.mu.Unlock()
				c.Close()
				if up != nil {
					up.Close()
				}
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.lis.Addr().String() }

// proxiesTo starts a cutProxy to each etcd endpoint and returns them and the
// URLs to reach the endpoints through them.
func proxiesTo(t *testing.T, endpoints []string) ([]*cutProxy, []string) {
	t.Helper()
	var proxies []*cutProxy
	var urls []string
	for _, e := range endpoints {
		p := startCutProxy(t, strings.TrimPrefix(e, "http://"))
		proxies = append(proxies, p)
		urls = append(urls, p.URL())
	}
	return proxies, urls
}

// partition cuts every proxy (the leader's only way to etcd) and waits for
// leader c to stop: it must exit with a failure before its 2s lease could run
// out. It returns when the cut was made.
func partition(t *testing.T, proxies []*cutProxy, c *child) time.Time {
	t.Helper()
	cut := time.Now()
	for _, p := range proxies {
		p.Cut()
	}
	select {
	case code := <-c.exit:
		took := time.Since(cut)
		t.Logf("leader partitioned from etcd: it exited %d, %s after the cut (lease 2s)", code, took.Round(time.Millisecond))
		if code == 0 || took >= 2*time.Second {
			t.Errorf("the partitioned leader exited %d %s after the cut: want a failure before its 2s lease could run out", code, took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the partitioned leader did not stop")
	}
	return cut
}

// Cut partitions: no new connection, the open ones closed.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.lis.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestHALeaderPartitionedFromEtcd: the leader loses etcd (its connections
// cut) while it still reaches the gateway: it stops and exits before its
// lease could run out at the server, the other replica is elected and in
// sync, and the gateway would refuse the old leader's election id.
func TestHALeaderPartitionedFromEtcd(t *testing.T) {
	cl := etcdlab.Start(t, 3, false)
	_, intentFile := memoryGateway(t)
	dir := t.TempDir()
	proxies, viaProxy := proxiesTo(t, cl.Endpoints())
	ra, rb := startHAPair(t, dir, viaProxy, cl.Endpoints(), "/part/", "", intentFile)
	a := ra.proc
	time.Sleep(500 * time.Millisecond) // b campaigning

	cut := partition(t, proxies, a)
	took, _ := waitLeads(t, rb.sock, stack.Dial(t, rb.sock), cut, "after the cut")
	t.Logf("replica b leads and is in sync %s after the cut", took.Round(time.Millisecond))
}
