//go:build linux

package difftest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// The lab:
//
//	tester ns                 xdp ns                       bmv2 ns
//	x0..x3 ---veth--- p0..p3 [XDP on p1, agent]
//	b0..b3 ---veth-------------------------------------- p0..p3 [simple_switch_grpc]
//
// Gateway port N is pN on both targets; frames enter and leave on any port. One AF_PACKET socket in the tester namespace sees every
// frame the targets send; one in the xdp namespace sees the frames XDP passed
// to the kernel (nothing else reaches that kernel's taps: XDP_TX and redirects
// bypass them, and it has no address to send anything from).

// target is one dataplane under test, seen through P4Runtime.
type target struct {
	name string
	rt   p4v1.P4RuntimeClient
	sess *p4rtest.Client
	tx   *sender // the tester's ends of its ports
}

// testLab is the lab above: its namespaces, both targets, and the sockets
// that watch what they send.
type testLab struct {
	lab              *lab.Lab
	tester, xns, bns string
	info             *p4info.Info
	codec            *engine.Codec
	xdp, bmv2        *target
	rx               *receiver // tester namespace: every frame the targets send
	passed           *receiver // xdp namespace: frames passed to the kernel
	bmv2Log          string
}

// rxFrame is one received frame.
type rxFrame struct {
	target string // "xdp", "bmv2", or "kernel" for XDP_PASS
	port   int
	data   []byte
}

// moduleRoot is the directory of go.mod above the test's working directory.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = up
	}
}

// requirements returns simple_switch_grpc's path and the compiled program, or
// skips the test with one line saying what is missing.
func requirements(t *testing.T) (ssg, program string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP, AF_PACKET and BMv2 (run go test as root)")
	}
	ssg, err := exec.LookPath("simple_switch_grpc")
	if err != nil && os.Getenv("P4TOOLS") != "" {
		ssg, err = exec.LookPath(filepath.Join(os.Getenv("P4TOOLS"), "bin", "simple_switch_grpc"))
	}
	if err != nil {
		t.Skip("simple_switch_grpc (BMv2) not on PATH nor under $P4TOOLS/bin: eval \"$(bash scripts/p4tools.sh)\" first")
	}
	program = os.Getenv("GRAYGW_BMV2_JSON")
	if program == "" {
		program = filepath.Join(moduleRoot(t), "build", "p4", "graygw.json")
	}
	if _, err := os.Stat(program); err != nil {
		t.Skipf("no compiled v1model program at %s (make p4, or set GRAYGW_BMV2_JSON)", program)
	}
	return ssg, program
}

// newLab builds the lab, loads and attaches the XDP program, starts the agent
// and BMv2, pushes the pipeline to both and opens the sockets. The test's
// cleanup removes all of it: processes by PID, the namespaces with their
// links, the XDP program with its private maps.
// vectorLab is the lab of a vectors test (requirements, newLab) with a
// context that ends after timeout or with the test.
func vectorLab(t *testing.T, timeout time.Duration) (*testLab, context.Context) {
	ssg, program := requirements(t)
	tl := newLab(t, ssg, program)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return tl, ctx
}

// onBoth runs f as a subtest on the XDP target, then on the BMv2 one.
func (tl *testLab) onBoth(t *testing.T, f func(t *testing.T, tg *target)) {
	for _, tg := range []*target{tl.xdp, tl.bmv2} {
		t.Run(tg.name, func(t *testing.T) { f(t, tg) })
	}
}

func newLab(t *testing.T, ssg, program string) *testLab {
	l, err := lab.New("gdt")
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLab{lab: l}
	var cleanups []func()
	t.Cleanup(func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []struct {
		name string
		dst  *string
	}{{"t", &tl.tester}, {"x", &tl.xns}, {"b", &tl.bns}} {
		*ns.dst, err = l.NS(ns.name)
		must(err)
		// No IPv6 chatter (router solicitations, MLD) on any port.
		_, err = l.Exec(*ns.dst, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		must(err)
	}
	for p := range Ports {
		must(l.Veth(tl.xns, fmt.Sprintf("p%d", p), tl.tester, fmt.Sprintf("x%d", p)))
		must(l.Veth(tl.bns, fmt.Sprintf("p%d", p), tl.tester, fmt.Sprintf("b%d", p)))
	}
	must(xdpPass(tl.tester))

	tl.info = stack.P4Info(t)
	tl.codec = engine.NewCodec(tl.info)

	// XDP: the program on p0..p3, ports 0..3 bound to them, the agent's
	// P4Runtime server in this process on loopback.
	d, err := bpf.Open(bpf.Options{NoPin: true})
	if err != nil {
		t.Fatalf("load XDP: %v", err)
	}
	cleanups = append(cleanups, func() {
		_ = lab.InNamespace(tl.xns, func() error {
			for p := range Ports {
				_ = d.Detach(fmt.Sprintf("p%d", p))
			}
			return nil
		})
		d.Close()
	})
	must(lab.InNamespace(tl.xns, func() error {
		for p := range uint16(Ports) {
			if _, err := d.Attach(fmt.Sprintf("p%d", p), bpf.AttachNative); err != nil {
				return err
			}
			link, err := netlink.LinkByName(fmt.Sprintf("p%d", p))
			if err != nil {
				return err
			}
			if err := d.SetPort(p, link.Attrs().Index); err != nil {
				return err
			}
		}
		return nil
	}))
	agent := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{P4Info: tl.info, Dataplane: xdp.New(d)}})

	// BMv2 in its namespace, its P4Runtime server on that namespace's loopback:
	// the client's sockets are opened there too.
	logf, err := os.CreateTemp("", "graygw-difftest-bmv2-*.log")
	must(err)
	tl.bmv2Log = logf.Name()
	cleanups = append(cleanups, func() {
		logf.Close()
		if t.Failed() {
			t.Logf("BMv2's output is kept in %s", tl.bmv2Log)
		} else {
			os.Remove(tl.bmv2Log)
		}
	})
	args := []string{ssg, "--no-p4", "--device-id", "1"}
	for p := range Ports {
		args = append(args, "-i", fmt.Sprintf("%d@p%d", p, p))
	}
	args = append(args, "--", "--grpc-server-addr", "127.0.0.1:9559")
	if _, err := l.Start(tl.bns, logf, args...); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err2 error
	if tl.xdp, err2 = connect(ctx, t, "xdp", agent.Addr); err2 == nil {
		tl.bmv2, err2 = connectIn(ctx, t, tl.bns, "bmv2", "127.0.0.1:9559")
	}
	if err2 != nil {
		out, _ := os.ReadFile(tl.bmv2Log)
		t.Fatalf("%v\n%s", err2, out)
	}
	json, err := os.ReadFile(program)
	must(err)
	must(tl.xdp.setPipeline(ctx, tl.info, nil))
	must(tl.bmv2.setPipeline(ctx, tl.info, json))

	ports := map[int]rxPort{}
	must(lab.InNamespace(tl.tester, func() error {
		for p := range Ports {
			for _, side := range []string{"x", "b"} {
				ifc, err := net.InterfaceByName(fmt.Sprintf("%s%d", side, p))
				if err != nil {
					return err
				}
				ports[ifc.Index] = rxPort{map[string]string{"x": "xdp", "b": "bmv2"}[side], p}
			}
		}
		return nil
	}))
	tl.rx, err = listen(tl.tester, ports, nil)
	must(err)
	cleanups = append(cleanups, tl.rx.close)
	kports := map[int]rxPort{}
	must(lab.InNamespace(tl.xns, func() error {
		for p := range Ports {
			ifc, err := net.InterfaceByName(fmt.Sprintf("p%d", p))
			if err != nil {
				return err
			}
			kports[ifc.Index] = rxPort{"kernel", p}
		}
		return nil
	}))
	tl.passed, err = listen(tl.xns, kports, mirrorPrefixed)
	must(err)
	cleanups = append(cleanups, tl.passed.close)
	if tl.xdp.tx, err = newSender(tl.tester, "x"); err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, tl.xdp.tx.close)
	if tl.bmv2.tx, err = newSender(tl.tester, "b"); err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, tl.bmv2.tx.close)
	return tl
}

// connect opens a P4Runtime session with the server at addr and becomes its
// primary, retrying while the server starts. The test's cleanup closes it.
func connect(ctx context.Context, t *testing.T, name, addr string, opts ...grpc.DialOption) (*target, error) {
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	rt := p4v1.NewP4RuntimeClient(conn)
	for {
		sess, err := p4rtest.Connect(ctx, rt, 1, 1)
		if err == nil {
			t.Cleanup(sess.Close)
			return &target{name: name, rt: rt, sess: sess}, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: P4Runtime at %s: %w", name, addr, err)
		}
		time.Sleep(100 * time.Millisecond) // BMv2 still starting
	}
}

// connectIn is connect to a server listening in namespace ns: the client's
// sockets are opened there.
func connectIn(ctx context.Context, t *testing.T, ns, name, addr string) (*target, error) {
	return connect(ctx, t, name, addr, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		var c net.Conn
		err := lab.InNamespace(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", a)
			return err
		})
		return c, err
	}))
}

// setPipeline pushes the P4Info and the target's device config (BMv2's JSON;
// nil for the agent) with VERIFY_AND_COMMIT.
func (tg *target) setPipeline(ctx context.Context, info *p4info.Info, cfg []byte) error {
	_, err := tg.rt.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: 1, ElectionId: tg.sess.Election, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: info.P4Info(), P4DeviceConfig: cfg,
			Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: 1}}})
	if err != nil {
		return fmt.Errorf("%s: set pipeline: %w", tg.name, err)
	}
	return nil
}

// xdpPass attaches a two-instruction XDP_PASS program to every veth of ns. A
// veth delivers what an XDP program sends into it (XDP_TX, redirects) only
// when its peer runs NAPI, which an XDP program turns on; it also turns GRO
// off, which would otherwise merge consecutive TCP segments the test must see
// one by one.
func xdpPass(ns string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		return fmt.Errorf("xdp-pass: %w", err)
	}
	defer prog.Close() // the attachments keep it
	return lab.InNamespace(ns, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Type() != "veth" {
				continue
			}
			if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), nl.XDP_FLAGS_DRV_MODE); err != nil {
				return fmt.Errorf("xdp-pass on %s: %w", l.Attrs().Name, err)
			}
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// AF_PACKET sockets.

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sender injects frames into a target's ports from the tester's ends
// (prefix0..prefix3).
type sender struct {
	fd      int
	ifindex [Ports]int
}

func newSender(ns, prefix string) (*sender, error) {
	s := &sender{fd: -1}
	err := lab.InNamespace(ns, func() (err error) {
		for p := range Ports {
			ifc, err := net.InterfaceByName(fmt.Sprintf("%s%d", prefix, p))
			if err != nil {
				return err
			}
			s.ifindex[p] = ifc.Index
		}
		s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: receives nothing
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sender on %s0..%d: %w", prefix, Ports-1, err)
	}
	return s, nil
}

// send puts frame into the target's port.
func (s *sender) send(port int, frame []byte) error {
	for {
		err := unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex[port], Halen: 6})
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		return err
	}
}

func (s *sender) close() { unix.Close(s.fd) }

type rxPort struct {
	target string
	port   int
}

// receiver records every frame received (not sent) on the given interfaces
// of its namespace, with its VLAN tag put back where the kernel took it out.
type receiver struct {
	fd    int
	ports map[int]rxPort
	done  chan struct{}
	stop  chan struct{}

	// skip, if set, leaves out the frames it is true for.
	skip func([]byte) bool

	mu  sync.Mutex
	got []rxFrame
}

// mirrorPrefixed reports whether frame is one the XDP program passed up with
// its mirror prefix for the tc program (docs/xdp.md, "Mirror"): the served
// frame's Ethernet header (to a backend's MAC, 02:00:00:be:.. in these
// states), then mirror_meta, whose first byte (0xa?) never starts an IPv4
// header. The kernel's taps see it before tc ingress turns it into the served
// frame and the copy; it is not a frame passed to the kernel.
func mirrorPrefixed(frame []byte) bool {
	return len(frame) > 14 && bytes.HasPrefix(frame, []byte{2, 0, 0, 0xbe}) && frame[14]>>4 == 0xa
}

// listen captures the frames entering ports' interfaces in ns, but those
// skip (if not nil) is true for.
func listen(ns string, ports map[int]rxPort, skip func([]byte) bool) (*receiver, error) {
	r := &receiver{fd: -1, ports: ports, skip: skip, done: make(chan struct{}), stop: make(chan struct{})}
	err := lab.InNamespace(ns, func() (err error) {
		r.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)})
	})
	if err == nil {
		err = unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	}
	if err == nil {
		err = unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	}
	if err == nil {
		tv := unix.NsecToTimeval((20 * time.Millisecond).Nanoseconds())
		err = unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err != nil {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		return nil, fmt.Errorf("capture in %s: %w", ns, err)
	}
	go r.run()
	return r, nil
}

func (r *receiver) run() {
	defer close(r.done)
	buf, oob := make([]byte, 4096), make([]byte, 256)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(r.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p, ok := r.ports[ll.Ifindex]
		if !ok {
			continue
		}
		if r.skip != nil && r.skip(buf[:n]) {
			continue
		}
		frame := append([]byte(nil), buf[:n]...)
		if tag, ok := vlanTag(oob[:oobn]); ok && len(frame) >= 12 {
			frame = append(frame[:12:12], append(tag[:], frame[12:]...)...)
		}
		r.mu.Lock()
		r.got = append(r.got, rxFrame{target: p.target, port: p.port, data: frame})
		r.mu.Unlock()
	}
}

// vlanTag returns the 802.1Q tag the kernel stripped from a frame, from its
// PACKET_AUXDATA.
func vlanTag(oob []byte) ([4]byte, bool) {
	var tag [4]byte
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return tag, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 /* struct tpacket_auxdata */ {
			continue
		}
		status := binary.NativeEndian.Uint32(m.Data[0:])
		tci := binary.NativeEndian.Uint16(m.Data[16:])
		tpid := binary.NativeEndian.Uint16(m.Data[18:])
		if status&unix.TP_STATUS_VLAN_VALID == 0 {
			return tag, false
		}
		if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
			tpid = 0x8100
		}
		binary.BigEndian.PutUint16(tag[0:], tpid)
		binary.BigEndian.PutUint16(tag[2:], tci)
		return tag, true
	}
	return tag, false
}

// count returns how many frames each target has sent since the last take.
func (r *receiver) count() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, f := range r.got {
		n[f.target]++
	}
	return n
}

// take returns the frames received since the last take and forgets them.
func (r *receiver) take() []rxFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

func (r *receiver) close() {
	close(r.stop)
	<-r.done
	unix.Close(r.fd)
}

// ---------------------------------------------------------------------------
// P4Runtime.

// write sends each phase as one WriteRequest.
func (tg *target) write(ctx context.Context, phases [][]*p4v1.Update) error {
	for i, ph := range phases {
		if err := tg.sess.Write(ctx, ph...); err != nil {
			var msgs []string
			for _, e := range p4rtest.P4Errors(err) {
				if e.GetCanonicalCode() != 0 {
					msgs = append(msgs, e.GetMessage())
				}
			}
			return fmt.Errorf("%s: write phase %d of %d: %w %s", tg.name, i+1, len(phases), err, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// counters reads drop_reasons and the direct counters of vip, vip_v6,
// gray_rules, gray_rules_v6 and backend and, when k is not nil, the mirror_counter cells of k's mirror ids
// and the mirror_backend_counter cells of k's backends.
func (tl *testLab) counters(ctx context.Context, tg *target, k *Keys) (Counts, error) {
	c := NewCounts()
	dr, err := tl.info.Counter(pipeline.CounterDropReasons)
	if err != nil {
		return c, err
	}
	ents := []*p4v1.Entity{{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: dr.ID}}}}
	for _, name := range []string{pipeline.TableVIP, pipeline.TableVIPv6, pipeline.TableGrayRules, pipeline.TableGrayRulesV6, pipeline.TableBackend} {
		tb, err := tl.info.Table(name)
		if err != nil {
			return c, err
		}
		ents = append(ents, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: tb.ID, CounterData: &p4v1.CounterData{}}}})
	}
	mc, err := tl.info.Counter(pipeline.CounterMirror)
	if err != nil {
		return c, err
	}
	mbc, err := tl.info.Counter(pipeline.CounterMirrorBackend)
	if err != nil {
		return c, err
	}
	cell := func(id uint32, index uint16) *p4v1.Entity {
		return &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
			CounterId: id, Index: &p4v1.Index{Index: int64(index)}}}}
	}
	if k != nil {
		for _, id := range k.MirrorIDs {
			ents = append(ents, cell(mc.ID, id))
		}
		for _, id := range slices.Sorted(maps.Keys(k.Backend)) {
			ents = append(ents, cell(mbc.ID, id))
		}
	}
	got, err := p4rtest.Read(ctx, tg.rt, 1, ents...)
	if err != nil {
		return c, fmt.Errorf("%s: read counters: %w", tg.name, err)
	}
	for _, e := range got {
		if ce := e.GetCounterEntry(); ce != nil {
			if d := ce.GetData(); d.GetPacketCount() != 0 || d.GetByteCount() != 0 {
				x, i := Cell{uint64(d.GetPacketCount()), uint64(d.GetByteCount())}, ce.GetIndex().GetIndex()
				switch ce.GetCounterId() {
				case mc.ID:
					c.Mirror[uint16(i)] = x
				case mbc.ID:
					c.MirrorBackend[uint16(i)] = x
				default:
					c.Drops[pipeline.Reason(i)] = x
				}
			}
			continue
		}
		te := e.GetTableEntry()
		if d := te.GetCounterData(); d.GetPacketCount() != 0 || d.GetByteCount() != 0 {
			ce, err := tl.codec.FromP4(te)
			if err != nil {
				return c, fmt.Errorf("%s: read counters: %w", tg.name, err)
			}
			c.Direct[ce.Key()] = Cell{uint64(d.GetPacketCount()), uint64(d.GetByteCount())}
		}
	}
	return c, nil
}

// holds describes how the entries tg reads back differ from ents, "" when
// they are the same entries with the same actions.
func (tl *testLab) holds(ctx context.Context, tg *target, ents []compile.Entry) string {
	got, err := p4rtest.Read(ctx, tg.rt, 1, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}})
	if err != nil {
		return err.Error()
	}
	want := map[string]bool{}
	for _, e := range ents {
		want[e.String()] = true
	}
	var out strings.Builder
	for _, e := range got {
		ce, err := tl.codec.FromP4(e.GetTableEntry())
		if err != nil {
			return err.Error()
		}
		if !want[ce.String()] {
			fmt.Fprintf(&out, "\n  unexpected %s", ce.String())
		}
		delete(want, ce.String())
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		fmt.Fprintf(&out, "\n  missing %s", k)
	}
	return out.String()
}

// sub returns a - b, cell by cell (cells that did not move left out).
func sub(a, b Counts) Counts {
	out := NewCounts()
	for k, x := range a.Drops {
		if y := b.Drops[k]; x != y {
			out.Drops[k] = Cell{x.Packets - y.Packets, x.Bytes - y.Bytes}
		}
	}
	for k, x := range a.Direct {
		if y := b.Direct[k]; x != y {
			out.Direct[k] = Cell{x.Packets - y.Packets, x.Bytes - y.Bytes}
		}
	}
	for _, m := range [][3]map[uint16]Cell{{out.Mirror, a.Mirror, b.Mirror}, {out.MirrorBackend, a.MirrorBackend, b.MirrorBackend}} {
		for k, x := range m[1] {
			if y := m[2][k]; x != y {
				m[0][k] = Cell{x.Packets - y.Packets, x.Bytes - y.Bytes}
			}
		}
	}
	return out
}

// sent is how many mirror copies c counts as sent.
func (c Counts) sent() (n uint64) {
	for _, x := range c.MirrorBackend {
		n += x.Packets
	}
	return n
}

func (c Counts) dropped() (n uint64) {
	for _, x := range c.Drops {
		n += x.Packets
	}
	return n
}
