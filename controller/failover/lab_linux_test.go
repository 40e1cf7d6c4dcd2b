//go:build linux

package failover_test

// Health failover with real packets:
//
//	cl: c0 10.1.0.10 --- p1 [XDP] gw p2 10.2.1.1 --- b1 be1 10.2.1.11
//	                              p3 10.2.2.1 --- b2 be2 10.2.2.12
//	                              p4 10.2.3.1 --- b3 be3 10.2.3.13
//
// The client sends VXLAN frames of 120 flows to the VIP; the gateway spreads
// them over the pool's three backends, each behind its own link, and an
// AF_PACKET socket on each backend's end records which flows reach it. The
// controller's parts (engine, health checks, failover) run in the gateway's
// namespace, in the test's inner half. be2's link is cut: its flows must reach
// the others, and no other flow may move; the link comes back: exactly those
// flows return.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/failover"
	"github.com/graygw/graygw/controller/health"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
)

type labInfo struct {
	CL, GW string
	BE     [3]string
}

const (
	nFlows = 120
	magic  = 0x47474633 // "GGF3"
)

var (
	vip      = netip.MustParseAddr("10.255.0.1")
	clientIP = netip.MustParseAddr("10.1.0.10")
)

func beAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 2, byte(i + 1), byte(11 + i)}) }

func TestFailoverWithPackets(t *testing.T) {
	var info labInfo
	if labtest.Inner(t, &info) {
		failoverInner(t, info)
		return
	}
	if testing.Short() {
		t.Skip("-short: the failover lab runs for about 15 s")
	}
	l := labtest.New(t, "ggfo", "network namespaces, XDP, raw ICMP and AF_PACKET sockets")
	ns := labtest.Namespaces(t, l, "cl", "gw", "be1", "be2", "be3")
	info.CL, info.GW = ns[0], ns[1]
	copy(info.BE[:], ns[2:])
	labtest.Link(t, l, info.GW, "p1", info.CL, "c0")
	labtest.Script(t, l, info.CL, fmt.Sprintf("ip addr add %s/24 dev c0\nsysctl -qw net.ipv6.conf.all.disable_ipv6=1", clientIP))
	labtest.Script(t, l, info.GW, "ip addr add 10.1.0.1/24 dev p1\nsysctl -qw net.ipv6.conf.all.disable_ipv6=1")
	for i := range 3 {
		gwDev, beDev := fmt.Sprintf("p%d", i+2), fmt.Sprintf("b%d", i+1)
		labtest.Link(t, l, info.GW, gwDev, info.BE[i], beDev)
		a := beAddr(i).As4()
		labtest.Script(t, l, info.GW, fmt.Sprintf("ip addr add 10.2.%d.1/24 dev %s", a[2], gwDev))
		// GRO: XDP_REDIRECT into a veth needs a NAPI context at its peer.
		labtest.Script(t, l, info.BE[i], fmt.Sprintf("ip addr add %s/24 dev %s\nethtool -K %s gro on\nsysctl -qw net.ipv6.conf.all.disable_ipv6=1",
			beAddr(i), beDev, beDev))
	}
	labtest.RunInside(t, info.GW, 2*time.Minute, info)
}

func failoverInner(t *testing.T, info labInfo) {
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The gateway: XDP on p1, ports 1-4, the agent over it.
	dp, err := bpf.Open(bpf.Options{NoPin: true})
	if err != nil {
		t.Fatalf("load XDP: %v", err)
	}
	defer dp.Close()
	if _, err := dp.Attach("p1", bpf.AttachAuto); err != nil {
		t.Fatal(err)
	}
	defer dp.Detach("p1")
	macs := map[string]string{}
	for port, dev := range []string{"", "p1", "p2", "p3", "p4"} {
		if dev == "" {
			continue
		}
		link, err := netlink.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := dp.SetPort(uint16(port), link.Attrs().Index); err != nil {
			t.Fatal(err)
		}
		macs[dev] = link.Attrs().HardwareAddr.String()
	}
	xagent := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{DeviceID: 1, P4Info: stack.P4Info(t), Dataplane: xdp.New(dp),
		StateDir: t.TempDir(), Logger: log}})

	beMAC := func(i int) string {
		var m string
		err := lab.InNamespace(info.BE[i], func() error {
			l, err := netlink.LinkByName(fmt.Sprintf("b%d", i+1))
			if err == nil {
				m = l.Attrs().HardwareAddr.String()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var backends []intenttest.Backend
	for i := range 3 {
		backends = append(backends, intenttest.Backend{Name: fmt.Sprintf("be%d", i+1), ID: 11 + i, UnderlayIP: beAddr(i).String(), MAC: beMAC(i), Port: i + 2})
	}
	doc := intenttest.Doc{
		Gateway: "gw",
		Agent:   xagent.Addr,
		Ports:   map[int]string{1: macs["p1"], 2: macs["p2"], 3: macs["p3"], 4: macs["p4"]},
		VIP:     intenttest.VIP{Name: "vpc", ID: 1, Pool: "base", Address: vip.String()},
		Pools:   []intenttest.Pool{{Name: "base", ID: 1, Cluster: "base", HealthFailover: true, Backends: backends}},
		Tenants: []string{"{name: acme, id: 7, vnis: [5001]}"},
	}.YAML()
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatalf("intent: %v\n%s", err, doc)
	}
	eng, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	stack.Commit(t, eng, in, 1)
	stack.WaitVersion(t, eng, 1)

	// Health checks every 100 ms (down after 3 failures, up after 2
	// successes) and failover with a 300 ms hold-down.
	checker, err := health.New(health.Config{Interval: 100 * time.Millisecond, Timeout: 80 * time.Millisecond, Rise: 2, Fall: 3},
		health.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	go checker.Follow(ctx, eng)
	var evMu sync.Mutex
	var events []failover.Event
	hist, err := store.OpenBolt(filepath.Join(t.TempDir(), "controller.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	foDone := make(chan struct{})
	go func() {
		defer close(foDone)
		failover.Run(ctx, failover.Options{Config: failover.Config{HoldDown: 300 * time.Millisecond}, Down: func() map[netip.Addr]bool {
			down := map[netip.Addr]bool{}
			for _, st := range checker.Statuses() {
				if !st.Up() {
					down[st.Addr] = true
				}
			}
			return down
		}, Target: eng, Logger: log, History: hist, OnEvent: func(e failover.Event) { evMu.Lock(); events = append(events, e); evMu.Unlock() }})
	}()
	defer func() { cancel(); <-foDone }()

	// Traffic: every flow every 25 ms; each arrival recorded.
	tx, err := newSender(info.CL, "c0", macs["p1"])
	if err != nil {
		t.Fatal(err)
	}
	defer tx.close()
	rec := &recorder{}
	for i := range 3 {
		rx, err := capture(info.BE[i], fmt.Sprintf("b%d", i+1), i, rec)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.close()
	}
	go func() {
		for seq := uint64(0); ctx.Err() == nil; seq++ {
			for f := range nFlows {
				_ = tx.send(f, seq)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()

	// Baseline: every flow on one backend, all three used.
	time.Sleep(time.Second)
	base := rec.owners(time.Time{})
	if len(base) != nFlows {
		t.Fatalf("%d of %d flows arrived before the cut", len(base), nFlows)
	}
	var onBE2 []int
	used := map[int]int{}
	for f, b := range base {
		used[b]++
		if b == 1 {
			onBE2 = append(onBE2, f)
		}
	}
	if len(used) != 3 {
		t.Fatalf("flows per backend %v: want all three used", used)
	}

	// Cut be2's link.
	cut := time.Now()
	run(t, "ip", "-n", info.BE[1], "link", "set", "b2", "down")
	moved := waitFlows(t, rec, cut, onBE2, func(b int) bool { return b != 1 }, "reach another backend after be2's link was cut", func() {
		t.Logf("health %+v; arrivals since the cut by backend %v", checker.Statuses(), rec.count(cut))
	})
	t.Logf("be2's link cut: its %d flows reached be1/be3 within %v (checks 100 ms x fall 3, hold-down 300 ms)", len(onBE2), moved)
	// Detection (3 missed checks, 0.3-0.4 s) + hold-down (0.3 s) + the
	// pool's new version written: about 1 s; 5 s leaves room for a loaded CI.
	if moved > 5*time.Second {
		t.Errorf("failover took %v, want under 5 s", moved)
	}

	// Link back: exactly be2's flows return.
	up := time.Now()
	run(t, "ip", "-n", info.BE[1], "link", "set", "b2", "up")
	back := waitFlows(t, rec, up, onBE2, func(b int) bool { return b == 1 }, "return to be2 after its link came back", func() {
		evMu.Lock()
		t.Logf("events %v; health %+v; arrivals since up by backend %v", events, checker.Statuses(), rec.count(up))
		evMu.Unlock()
	})
	t.Logf("be2's link back: its %d flows back on it within %v (rise 2, hold-down 300 ms)", len(onBE2), back)
	if back > 5*time.Second {
		t.Errorf("restoration took %v, want under 5 s", back)
	}
	time.Sleep(300 * time.Millisecond)
	final := rec.owners(time.Now().Add(-200 * time.Millisecond))
	for f, b := range base {
		if final[f] != b {
			t.Errorf("flow %d on backend %d at the end, was on %d", f, final[f]+1, b+1)
		}
	}
	// No flow of be1 or be3 ever reached another backend.
	for _, a := range rec.all() {
		if base[a.flow] != 1 && a.backend != base[a.flow] {
			t.Fatalf("flow %d of be%d reached be%d at %v", a.flow, base[a.flow]+1, a.backend+1, a.at.Sub(cut))
		}
	}
	evMu.Lock()
	defer evMu.Unlock()
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, fmt.Sprintf("%s %s", e.Kind, e.Backend))
	}
	if fmt.Sprint(kinds) != "[excluded be2 restored be2]" {
		t.Errorf("failover events %v", kinds)
	}
	// Both decisions are records of the controller's history, with why.
	var recs []string
	for deadline := time.Now().Add(5 * time.Second); len(recs) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h, err := hist.History(context.Background(), store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		recs = nil
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Record && h[i].Actor == failover.HistoryActor && strings.HasPrefix(h[i].Reason, map[bool]string{true: "down for", false: "up for"}[len(recs) == 0]) {
				recs = append(recs, h[i].Operation+" "+h[i].Summary)
			}
		}
	}
	if fmt.Sprint(recs) != "[failover-excluded pool base backend be2 excluded failover-restored pool base backend be2 restored]" {
		t.Errorf("history records %v", recs)
	}
}

// waitFlows waits until every flow of fs has arrived, after since, only where
// ok says, and returns how long after since the last of them first did.
func waitFlows(t *testing.T, rec *recorder, since time.Time, fs []int, ok func(int) bool, what string, diag func()) time.Duration {
	t.Helper()
	deadline := since.Add(20 * time.Second)
	for {
		var last time.Duration
		all := true
		for _, f := range fs {
			at, seen := rec.firstAt(f, since, ok)
			if !seen {
				all = false
				break
			}
			last = max(last, at.Sub(since))
		}
		if all {
			return last
		}
		if time.Now().After(deadline) {
			diag()
			t.Fatalf("be2's flows did not %s within 20 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// ---------------------------------------------------------------------------
// Arrivals.

type arrival struct {
	flow, backend int
	at            time.Time
}

type recorder struct {
	mu  sync.Mutex
	got []arrival
}

func (r *recorder) add(a arrival) { r.mu.Lock(); r.got = append(r.got, a); r.mu.Unlock() }

func (r *recorder) all() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.got...)
}

// count returns the arrivals after since by backend.
func (r *recorder) count(since time.Time) map[int]int {
	out := map[int]int{}
	for _, a := range r.all() {
		if a.at.After(since) {
			out[a.backend]++
		}
	}
	return out
}

// owners returns the backend each flow last arrived at, after since.
func (r *recorder) owners(since time.Time) map[int]int {
	out := map[int]int{}
	for _, a := range r.all() {
		if a.at.After(since) {
			out[a.flow] = a.backend
		}
	}
	return out
}

// firstAt returns when flow f first arrived after since at a backend ok
// accepts.
func (r *recorder) firstAt(f int, since time.Time, ok func(int) bool) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.got {
		if a.flow == f && a.at.After(since) && ok(a.backend) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// ---------------------------------------------------------------------------
// AF_PACKET sockets, opened in a namespace.

type sender struct {
	fd, ifindex int
	dmac, smac  [6]byte
}

func newSender(ns, dev, gwMAC string) (*sender, error) {
	fd, ifindex, err := lab.PacketSocket(ns, dev, 0)
	if err != nil {
		return nil, err
	}
	s := &sender{fd: fd, ifindex: ifindex, dmac: testpkt.MAC(gwMAC)}
	err = lab.InNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err == nil {
			s.smac = [6]byte(ifc.HardwareAddr)
		}
		return err
	})
	return s, err
}

// send sends flow f's frame: VNI 5001, inner UDP from 192.168.1.(10+f%100),
// source port 20000+f, the flow number in the payload.
func (s *sender) send(f int, seq uint64) error {
	pl := make([]byte, 16)
	binary.BigEndian.PutUint32(pl, magic)
	binary.BigEndian.PutUint32(pl[4:], uint32(f))
	binary.BigEndian.PutUint64(pl[8:], seq)
	inner := testpkt.Inner(testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:10:fe"), Src: testpkt.MAC("02:00:00:00:10:01")},
		testpkt.IP{Src: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + f%100)}), Dst: netip.MustParseAddr("192.168.1.1")},
		testpkt.L4{Proto: testpkt.ProtoUDP, SPort: uint16(20000 + f), DPort: 53, Payload: pl})
	frame := testpkt.VXLAN(testpkt.Eth{Dst: s.dmac, Src: s.smac}, testpkt.IP{Src: clientIP, Dst: vip}, uint16(49152+f), 5001, inner)
	return lab.SendFrame(s.fd, s.ifindex, frame)
}

func (s *sender) close() { unix.Close(s.fd) }

type receiver struct {
	fd   int
	done chan struct{}
	stop chan struct{}
}

func capture(ns, dev string, backend int, rec *recorder) (*receiver, error) {
	fd, _, err := lab.PacketSocket(ns, dev, unix.ETH_P_ALL)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	r := &receiver{fd: fd, done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			// ENETDOWN: the link was cut (the socket works again once it is up).
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENETDOWN) {
				continue
			}
			if err != nil {
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if f, ok := parse(buf[:n]); ok {
				rec.add(arrival{flow: f, backend: backend, at: time.Now()})
			}
		}
	}()
	return r, nil
}

func (r *receiver) close() { close(r.stop); <-r.done; unix.Close(r.fd) }

// parse returns the flow number of a test frame (outer IPv4 UDP 4789, inner
// UDP with the magic payload).
func parse(b []byte) (int, bool) {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return 0, false
	}
	o := b[14:]
	ihl := int(o[0]&0x0f) * 4
	if o[9] != testpkt.ProtoUDP || len(o) < ihl+8+8+14+20+8+16 {
		return 0, false
	}
	u := o[ihl:]
	if binary.BigEndian.Uint16(u[2:]) != 4789 {
		return 0, false
	}
	in := u[8+8+14:]
	iihl := int(in[0]&0x0f) * 4
	if in[9] != testpkt.ProtoUDP || len(in) < iihl+8+16 {
		return 0, false
	}
	pl := in[iihl+8:]
	if binary.BigEndian.Uint32(pl) != magic {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(pl[4:])), true
}
