//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
)

// The lab:
//
//	cl: c0 (10.1.0.10) ---veth--- p1 [XDP or BMv2] gw p2 ---veth--- b0 (be)
//
// The client injects VXLAN frames to the VIP on c0 with AF_PACKET; the
// gateway (the XDP program on p1, or simple_switch_grpc with ports 1 and 2 on
// p1 and p2: bmv2_linux_test.go) picks a backend of the pool and sends the
// rewritten frame out of p2. Every backend of the intent is an underlay address behind port 2
// with b0's MAC; b0 holds none of them (its kernel drops what it gets), and an
// AF_PACKET socket on b0 records each frame: the outer destination (the
// backend) and the inner flow and payload. No VXLAN device exists anywhere, so
// no kernel decapsulation, GRO or checksum offload is involved.

var (
	vip       = netip.MustParseAddr("10.255.0.1")
	clientIP  = netip.MustParseAddr("10.1.0.10")
	routerMAC = testpkt.MAC("02:00:00:00:10:fe")
	vmMAC     = testpkt.MAC("02:00:00:00:10:01")
)

const (
	vni       = 5001
	portCl    = 1
	portBe    = 2
	magic     = 0x47474532 // "GGE2": the payload of every test frame starts with it
	payloadSz = 16         // magic, flow index, sequence number
)

// backendIP is the underlay address of backend id (11 -> 10.2.0.11).
func backendIP(id int) netip.Addr { return netip.AddrFrom4([4]byte{10, 2, 0, byte(id)}) }

type testLab struct {
	lab        *lab.Lab
	target     target
	cl, gw, be string
	p1MAC      [6]byte
	p2MAC      string
	b0MAC      string
	c0MAC      [6]byte
	dp         *bpf.Dataplane // XDP only
	bmv2       bmv2Tools      // BMv2 only

	// agent is the gateway's P4Runtime server as the controller sees it: the
	// XDP agent, or the proxy in front of simple_switch_grpc; both count RPCs.
	agent *agent
	tx    *sender
	rx    *receiver
}

// newLab builds the namespaces and the gateway on target tg, and opens the
// sockets. XDP: the program loaded with private maps (nothing is pinned),
// attached to p1, and the agent served in the test process. BMv2:
// simple_switch_grpc started without a program in the gateway namespace (the
// controller pushes it), behind a counting proxy; the subtest skips with one
// line when the switch or the compiled program is missing. Everything is
// removed at the end of the test.
func newLab(t *testing.T, prefix string, tg target) *testLab {
	t.Helper()
	var tools bmv2Tools
	if tg == targetBMv2 {
		var err error
		if tools, err = findBMv2(); err != nil {
			t.Skip(skipLine(err))
		}
		prefix += "b"
	}
	l, err := lab.New(prefix)
	if errors.Is(err, lab.ErrNotRoot) {
		t.Skip("needs root: network namespaces, XDP, AF_PACKET (run the e2e tests as root)")
	}
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLab{lab: l, target: tg, bmv2: tools}
	t.Cleanup(func() {
		if tl.rx != nil {
			tl.rx.close()
		}
		if tl.tx != nil {
			tl.tx.close()
		}
		if tl.agent != nil {
			tl.agent.stop()
		}
		if tl.dp != nil {
			_ = lab.InNamespace(tl.gw, func() error { return tl.dp.Detach("p1") })
			tl.dp.Close()
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ns := labtest.Namespaces(t, l, "cl", "gw", "be")
	tl.cl, tl.gw, tl.be = ns[0], ns[1], ns[2]
	labtest.Link(t, l, tl.gw, "p1", tl.cl, "c0")
	labtest.Link(t, l, tl.gw, "p2", tl.be, "b0")
	for _, ns := range []string{tl.cl, tl.gw, tl.be} {
		// No router solicitations or DAD frames in the captures.
		if _, err := l.Exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"); err != nil {
			t.Fatal(err)
		}
	}
	labtest.Script(t, l, tl.cl, "ip addr add "+clientIP.String()+"/24 dev c0")
	// GRO gives the veth a NAPI context, which XDP_REDIRECT into its peer needs.
	labtest.Script(t, l, tl.be, "ethtool -K b0 gro on")
	mac := func(ns, dev string) string {
		m, err := l.MAC(ns, dev)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tl.p1MAC, tl.p2MAC = testpkt.MAC(mac(tl.gw, "p1")), mac(tl.gw, "p2")
	tl.b0MAC, tl.c0MAC = mac(tl.be, "b0"), testpkt.MAC(mac(tl.cl, "c0"))

	if tg == targetBMv2 {
		tl.agent = tl.startBMv2(t, tools)
	} else {
		tl.attachXDP(t)
	}
	if tl.rx, err = capture(tl.be, "b0"); err != nil {
		t.Fatal(err)
	}
	if tl.tx, err = newSender(tl.cl, "c0"); err != nil {
		t.Fatal(err)
	}
	return tl
}

// attachXDP loads the XDP program with private maps, attaches it to p1, binds
// ports 1 and 2 and serves the agent over it.
func (tl *testLab) attachXDP(t *testing.T) {
	t.Helper()
	var err error
	tl.dp, err = bpf.Open(bpf.Options{NoPin: true})
	if err != nil {
		t.Fatalf("load XDP: %v", err)
	}
	err = lab.InNamespace(tl.gw, func() error {
		if _, err := tl.dp.Attach("p1", bpf.AttachAuto); err != nil {
			return err
		}
		for port, dev := range map[uint16]string{portCl: "p1", portBe: "p2"} {
			link, err := netlink.LinkByName(dev)
			if err != nil {
				return err
			}
			if err := tl.dp.SetPort(port, link.Attrs().Index); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	tl.agent = serveAgent(t, tl.dp)
}

// intentYAML is the lab's intent: one VIP whose default pool "base" holds the
// backends with the given ids (underlay 10.2.0.<id>, all behind port 2).
func (tl *testLab) intentYAML(ids []int) string {
	var backends []intenttest.Backend
	for _, id := range ids {
		backends = append(backends, intenttest.Backend{Name: fmt.Sprintf("be-%d", id), ID: id, UnderlayIP: backendIP(id).String(), MAC: tl.b0MAC, Port: portBe})
	}
	return intenttest.Doc{
		Gateway: "gw",
		Agent:   tl.agent.addr,
		Ports:   map[int]string{portCl: net.HardwareAddr(tl.p1MAC[:]).String(), portBe: tl.p2MAC},
		VIP:     intenttest.VIP{Name: "vpc", ID: 1, Pool: "base", Address: vip.String()},
		Pools:   []intenttest.Pool{{Name: "base", ID: 1, Cluster: "base", Backends: backends}},
		Tenants: []string{"{name: acme, id: 7, vnis: [5001]}"},
	}.YAML()
}

func (tl *testLab) load(t *testing.T, ids []int) *intent.Intent {
	t.Helper()
	return compiletest.Load(t, tl.intentYAML(ids))
}

// ---------------------------------------------------------------------------
// Flows and frames.

type flow struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

// flows returns n distinct inner flows of VNI 5001 to the VPC router, half UDP,
// half TCP, from 100 VMs.
func flows(n int) []flow {
	out := make([]flow, n)
	for i := range out {
		f := flow{src: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i%100)}), dst: netip.MustParseAddr("192.168.1.1"),
			proto: testpkt.ProtoUDP, sport: uint16(20000 + i), dport: 53}
		if i%2 == 1 {
			f.proto, f.dport = testpkt.ProtoTCP, 80
		}
		out[i] = f
	}
	return out
}

// frame is flow i's VXLAN frame from the client to the VIP carrying seq.
func (tl *testLab) frame(f flow, i int, seq uint64) []byte {
	pl := make([]byte, payloadSz)
	binary.BigEndian.PutUint32(pl, magic)
	binary.BigEndian.PutUint32(pl[4:], uint32(i))
	binary.BigEndian.PutUint64(pl[8:], seq)
	eth, l4 := testpkt.Eth{Dst: routerMAC, Src: vmMAC}, testpkt.L4{Proto: f.proto, SPort: f.sport, DPort: f.dport, Payload: pl}
	var inner []byte
	if f.src.Is6() {
		inner = testpkt.Inner6(eth, testpkt.IP6{Src: f.src, Dst: f.dst}, l4)
	} else {
		inner = testpkt.Inner(eth, testpkt.IP{Src: f.src, Dst: f.dst}, l4)
	}
	return testpkt.VXLAN(testpkt.Eth{Dst: tl.p1MAC, Src: tl.c0MAC}, testpkt.IP{Src: clientIP, Dst: vip},
		uint16(49152+i%16384), vni, inner)
}

// arrival is one test frame seen on b0.
type arrival struct {
	backend netip.Addr // outer destination: the backend the gateway picked
	dmac    string
	flow    flow
	index   int
	seq     uint64
}

// parse reads a frame captured on b0; ok is false for anything but a test frame.
func parse(b []byte) (a arrival, ok bool) {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return a, false
	}
	a.dmac = net.HardwareAddr(b[0:6]).String()
	o := b[14:]
	ihl := int(o[0]&0x0f) * 4
	if o[9] != testpkt.ProtoUDP || len(o) < ihl+8+8+14+20 {
		return a, false
	}
	a.backend = netip.AddrFrom4([4]byte(o[16:20]))
	u := o[ihl:]
	if binary.BigEndian.Uint16(u[2:]) != 4789 {
		return a, false
	}
	in := u[8+8+14:]
	var l4 []byte
	switch binary.BigEndian.Uint16(u[8+8+12:]) { // the inner frame's type
	case 0x0800:
		iihl := int(in[0]&0x0f) * 4
		if len(in) < iihl+8 {
			return a, false
		}
		a.flow = flow{src: netip.AddrFrom4([4]byte(in[12:16])), dst: netip.AddrFrom4([4]byte(in[16:20])), proto: in[9]}
		l4 = in[iihl:]
	case 0x86dd:
		if len(in) < 40+8 {
			return a, false
		}
		a.flow = flow{src: netip.AddrFrom16([16]byte(in[8:24])), dst: netip.AddrFrom16([16]byte(in[24:40])), proto: in[6]}
		l4 = in[40:]
	default:
		return a, false
	}
	a.flow.sport, a.flow.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	hl := 8
	if a.flow.proto == testpkt.ProtoTCP {
		if len(l4) < 20 {
			return a, false
		}
		hl = int(l4[12]>>4) * 4
	}
	if len(l4) < hl+payloadSz {
		return a, false
	}
	pl := l4[hl:]
	if binary.BigEndian.Uint32(pl) != magic {
		return a, false
	}
	a.index, a.seq = int(binary.BigEndian.Uint32(pl[4:])), binary.BigEndian.Uint64(pl[8:])
	return a, true
}

// ---------------------------------------------------------------------------
// AF_PACKET sockets, opened inside a namespace.

// sender injects frames on an interface.
type sender struct {
	fd      int
	ifindex int
	mu      sync.Mutex
}

func newSender(ns, dev string) (*sender, error) {
	fd, ifindex, err := lab.PacketSocket(ns, dev, 0) // protocol 0: receives nothing
	if err != nil {
		return nil, fmt.Errorf("sender on %s: %w", dev, err)
	}
	return &sender{fd: fd, ifindex: ifindex}, nil
}

func (s *sender) send(frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lab.SendFrame(s.fd, s.ifindex, frame)
}

func (s *sender) close() { unix.Close(s.fd) }

// receiver records every test frame received on an interface.
type receiver struct {
	fd   int
	done chan struct{}
	stop atomic.Bool
	n    atomic.Int64 // test frames recorded since the last take

	mu  sync.Mutex
	got []arrival
}

func capture(ns, dev string) (*receiver, error) {
	fd, _, err := lab.PacketSocket(ns, dev, unix.ETH_P_ALL)
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", dev, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
		unix.Close(fd)
		return nil, err
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	r := &receiver{fd: fd, done: make(chan struct{})}
	go r.run()
	return r, nil
}

func (r *receiver) run() {
	defer close(r.done)
	buf := make([]byte, 2048)
	for {
		if r.stop.Load() {
			return
		}
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		a, ok := parse(buf[:n])
		if !ok {
			continue
		}
		r.mu.Lock()
		r.got = append(r.got, a)
		r.mu.Unlock()
		r.n.Add(1)
	}
}

// take returns the frames recorded since the last take and forgets them.
func (r *receiver) take() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	r.n.Store(0)
	return got
}

// settle waits until want frames were recorded, or until none arrived for
// quiet (in-flight frames have drained; the count is then checked by the
// caller), bounded by max.
func (r *receiver) settle(want int64, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, lastAt := r.n.Load(), time.Now()
	for time.Now().Before(deadline) {
		n := r.n.Load()
		if n >= want {
			// A duplicate would come right after: give it a moment.
			time.Sleep(20 * time.Millisecond)
			return
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > quiet {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *receiver) close() {
	r.stop.Store(true) // seen within the receive timeout, 50 ms
	<-r.done
	unix.Close(r.fd)
}

// sendRound sends one frame of every flow with sequence number seq, at most
// window frames ahead of what b0 has seen (veth rings hold 256 frames; BMv2
// holds less, docs/bmv2.md), and returns what arrived.
func (tl *testLab) sendRound(t *testing.T, fs []flow, seq uint64) []arrival {
	t.Helper()
	tl.rx.take()
	window := int64(64)
	if tl.target == targetBMv2 {
		// simple_switch drops frames beyond about 32 in flight (a burst of
		// 33 loses one): stay well under.
		window = 16
	}
	for i, f := range fs {
		for deadline := time.Now().Add(time.Second); int64(i)-tl.rx.n.Load() >= window && time.Now().Before(deadline); {
			time.Sleep(200 * time.Microsecond)
		}
		if err := tl.tx.send(tl.frame(f, i, seq)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	tl.rx.settle(int64(len(fs)), 500*time.Millisecond, 5*time.Second)
	return tl.rx.take()
}

// ---------------------------------------------------------------------------
// The agent: a P4Runtime server on a loopback port, counting what it serves.
// For XDP the agent's server over the dataplane; for BMv2 a proxy to
// simple_switch_grpc.

type agent struct {
	addr  string
	close func() // the server behind gs; nil for none
	gs    *grpc.Server
	// srv is the P4Runtime server gs serves: a test writes to it in process,
	// with the controller's election id, behind the controller's back.
	srv p4v1.P4RuntimeServer

	updates   atomic.Int64 // updates in Write RPCs served
	pipelines atomic.Int64 // SetForwardingPipelineConfig RPCs served
	reads     atomic.Int64 // Read RPCs served
}

func logger() *slog.Logger {
	if os.Getenv("GRAYGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func serveAgent(t *testing.T, d *bpf.Dataplane) *agent {
	t.Helper()
	srv, err := server.New(server.Config{DeviceID: 1, P4Info: stack.P4Info(t), Dataplane: xdp.New(d),
		StateDir: t.TempDir(), Generation: "e2e", Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	return serveP4RT(t, srv, func() { srv.Close() })
}

// serveP4RT serves srv on a loopback port with interceptors counting the
// updates, pipeline pushes and reads it serves; closeSrv (optional) runs after
// the gRPC server stops.
func serveP4RT(t *testing.T, srv p4v1.P4RuntimeServer, closeSrv func()) *agent {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{addr: lis.Addr().String(), close: closeSrv, srv: srv}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		switch r := req.(type) {
		case *p4v1.WriteRequest:
			a.updates.Add(int64(len(r.GetUpdates())))
		case *p4v1.SetForwardingPipelineConfigRequest:
			a.pipelines.Add(1)
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod == "/p4.v1.P4Runtime/Read" {
			a.reads.Add(1)
		}
		return h(srv, ss)
	}
	a.gs = grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.UnaryInterceptor(unary), grpc.StreamInterceptor(stream))
	p4v1.RegisterP4RuntimeServer(a.gs, srv)
	go a.gs.Serve(lis)
	return a
}

func (a *agent) stop() {
	a.gs.Stop()
	if a.close != nil {
		a.close()
	}
}

// readEntries reads every table entry the agent holds with a plain P4Runtime
// Read (no arbitration needed).
func (a *agent) readEntries(t *testing.T) []*p4v1.TableEntry {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p4rtest.ReadTables(c, a.addr)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return out
}

// installed reads every table entry the agent holds (a plain P4Runtime Read:
// no arbitration needed) and loads them into the reference model: what the
// gateway decides, from what it holds, not from the controller's view.
func (a *agent) installed(t *testing.T) *model.State {
	t.Helper()
	st, err := compile.ToModel(stack.Entries(t, a.readEntries(t)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// startStream sends one datagram a millisecond, datagram seq as flow
// seq % len(fs), until stop is called (stop is idempotent; it fails the test if
// a send failed). next is the sequence number of the next datagram, so
// next.Load() marks points in the stream and, after stop, counts what was sent.
// The caller takes the receiver's frames just before (rx.n then counts this
// stream's arrivals). On BMv2 the stream keeps at most 16 datagrams in flight,
// as sendRound does: simple_switch loses frames beyond about 32 in flight, which
// a loaded machine reaches whenever it leaves BMv2 unscheduled for 30 ms. The
// wait gives up after 100 ms, so a dataplane that stops forwarding (what the
// restart tests look for) still loses the datagrams sent meanwhile.
func (tl *testLab) startStream(t *testing.T, fs []flow) (next *atomic.Uint64, stop func()) {
	next = new(atomic.Uint64)
	quit, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			seq := next.Load()
			if tl.target == targetBMv2 {
				for deadline := time.Now().Add(100 * time.Millisecond); int64(seq)-tl.rx.n.Load() >= 16 && time.Now().Before(deadline); {
					time.Sleep(200 * time.Microsecond)
				}
			}
			i := int(seq % uint64(len(fs)))
			if err := tl.tx.send(tl.frame(fs[i], i, seq)); err != nil {
				done <- err
				return
			}
			next.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	stopped := false
	return next, func() {
		if !stopped {
			stopped = true
			close(quit)
			if err := <-done; err != nil {
				t.Fatalf("stream: %v", err)
			}
		}
	}
}

// endStream waits for a stopped stream's last datagrams (up to 5 s, done
// after 500 ms without one), takes them and tallies them (tallyStream). next
// is startStream's; it returns how many datagrams were sent and received.
func (tl *testLab) endStream(t *testing.T, next *atomic.Uint64, fs []flow, want []netip.Addr) (sent uint64, got []arrival, lost, dup int) {
	t.Helper()
	sent = next.Load()
	tl.rx.settle(int64(sent), 500*time.Millisecond, 5*time.Second)
	got = tl.rx.take()
	lost, dup = tallyStream(t, got, sent, fs, want)
	return sent, got, lost, dup
}

// tallyStream checks a stream's arrivals: datagram seq was sent as flow
// seq % len(fs), so each must arrive as that flow at want[flow], the backend
// the tables pick. It returns how many of the sent datagrams never arrived and
// how many arrived more than once.
func tallyStream(t *testing.T, got []arrival, sent uint64, fs []flow, want []netip.Addr) (lost, dup int) {
	t.Helper()
	seen := make([]int, sent)
	for _, a := range got {
		if a.seq >= sent {
			t.Fatalf("datagram %d arrived, only %d were sent", a.seq, sent)
		}
		seen[a.seq]++
		i := int(a.seq % uint64(len(fs)))
		if a.index != i || a.flow != fs[i] {
			t.Fatalf("datagram %d arrived as flow %d %+v, sent as flow %d %+v", a.seq, a.index, a.flow, i, fs[i])
		}
		if a.backend != want[i] {
			t.Fatalf("datagram %d (flow %d) reached %v, the tables pick %v", a.seq, i, a.backend, want[i])
		}
	}
	for _, n := range seen {
		switch {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	return lost, dup
}

// countDistinct is the number of distinct addresses in as.
func countDistinct(as []netip.Addr) int {
	m := map[netip.Addr]bool{}
	for _, a := range as {
		m[a] = true
	}
	return len(m)
}

// ---------------------------------------------------------------------------
// The controller: the engine over a bbolt store.

func openStore(t *testing.T, path string) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(path, store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newEngine is the controller's engine over st, configured for the lab's
// target (BMv2: the compiled program as the gateway's device config).
func (tl *testLab) newEngine(t *testing.T, st store.Store) *engine.Engine {
	t.Helper()
	return tl.newEngineWith(t, st, nil)
}

// newEngineOnTempStore is newEngine over a new store in a temporary
// directory, closed when t ends.
func (tl *testLab) newEngineOnTempStore(t *testing.T) *engine.Engine {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "controller.db"))
	t.Cleanup(func() { st.Close() })
	return tl.newEngine(t, st)
}

// newEngineWith is newEngine with the config changed by mod first (nil: none).
func (tl *testLab) newEngineWith(t *testing.T, st store.Store, mod func(*engine.Config)) *engine.Engine {
	t.Helper()
	var devcfg []byte
	if tl.target == targetBMv2 {
		var err error
		if devcfg, err = os.ReadFile(tl.bmv2.program); err != nil {
			t.Fatal(err)
		}
	}
	cfg := engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Store: st, Logger: logger(), DeviceConfig: func(string) []byte { return devcfg }}
	if mod != nil {
		mod(&cfg)
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// apply prepares and commits in as version v and waits until the gateway holds it.
func apply(t *testing.T, e *engine.Engine, in *intent.Intent, v uint64) (*engine.Prepared, engine.GatewayStatus) {
	t.Helper()
	p := stack.Commit(t, e, in, v)
	return p, stack.WaitVersion(t, e, v)[0]
}
