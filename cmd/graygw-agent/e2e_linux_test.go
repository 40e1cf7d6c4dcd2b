//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	nslab "github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/syncbuf"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// The end-to-end tests run the real daemon binary in a network namespace and
// send real frames through it:
//
//	client ns: c0 ──veth── g0 ┐ gateway ns: graygw-agent (XDP native on g0, g1, g2)
//	base ns:   b0 ──veth── g1 ┤   port 1 = g0, port 2 = g1, port 3 = g2
//	gray ns:   y0 ──veth── g2 ┘
//
// They need root, bpffs, iproute2 and nsenter; they skip with a message otherwise.
// (nsenter, not ip netns exec, starts the daemon: the latter remounts /sys and
// hides /sys/fs/bpf.)

func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end: needs root (network namespaces, XDP); run go test as root")
	}
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &fs); err != nil || fs.Type != unix.BPF_FS_MAGIC {
		t.Skip("end-to-end: no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("end-to-end: needs %s (iproute2, util-linux)", tool)
		}
	}
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lab is the topology above.
type lab struct {
	t                 *testing.T
	prefix            string
	cl, gw, base, gry string // namespace names
	pins, state, sock string
	bin               string
}

func newLab(t *testing.T) *lab {
	skipUnlessE2E(t)
	p := fmt.Sprintf("ggw%d", os.Getpid()%100000)
	l := &lab{t: t, prefix: p, cl: p + "-cl", gw: p + "-gw", base: p + "-be", gry: p + "-gy",
		pins: filepath.Join("/sys/fs/bpf", p+"-e2e"), state: t.TempDir(), sock: filepath.Join(t.TempDir(), "p4rt.sock"),
		bin: filepath.Join(t.TempDir(), "graygw-agent")}
	sh(t, "go", "build", "-o", l.bin, ".")
	for _, ns := range []string{l.cl, l.gw, l.base, l.gry} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	}
	t.Cleanup(func() { os.RemoveAll(l.pins) })
	for _, v := range [][4]string{{l.cl, "c0", l.gw, "g0"}, {l.base, "b0", l.gw, "g1"}, {l.gry, "y0", l.gw, "g2"}} {
		sh(t, "ip", "-n", v[0], "link", "add", v[1], "type", "veth", "peer", "name", v[3], "netns", v[2])
		sh(t, "ip", "-n", v[0], "link", "set", v[1], "up")
		sh(t, "ip", "-n", v[2], "link", "set", v[3], "up")
	}
	// Native XDP_REDIRECT into a veth needs an XDP program on the peer.
	l.passProg(l.base, "b0")
	l.passProg(l.gry, "y0")
	return l
}

func (l *lab) mac(ns, ifname string) uint64 {
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(sh(l.t, "ip", "-n", ns, "-j", "link", "show", ifname)), &links); err != nil || len(links) != 1 {
		l.t.Fatalf("mac of %s/%s: %v", ns, ifname, err)
	}
	return p4rtest.MAC(l.t, links[0].Address)
}

// inNS runs f on an OS thread inside the named namespace.
func (l *lab) inNS(name string, f func() error) {
	l.t.Helper()
	if err := nslab.InNamespace(name, f); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) passProg(ns, ifname string) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { prog.Close() })
	l.inNS(ns, func() error {
		ifc, err := netInterfaceIndex(ifname)
		if err != nil {
			return err
		}
		lk, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc, Flags: link.XDPDriverMode})
		if err == nil {
			l.t.Cleanup(func() { lk.Close() })
		}
		return err
	})
}

// agentProc is a running daemon.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	exited chan error
}

// start runs the daemon in the gateway namespace and waits until it serves.
func (l *lab) start() *agentProc {
	l.t.Helper()
	a := &agentProc{stderr: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	a.cmd = exec.Command("nsenter", "--net=/run/netns/"+l.gw, l.bin, "--port", "1=g0", "--port", "2=g1", "--port", "3=g2",
		"--xdp-mode", "native", "--pin-dir", l.pins, "--state-dir", l.state, "--addr", "unix://"+l.sock)
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	l.t.Cleanup(func() { a.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-a.exited:
			l.t.Fatalf("agent exited: %v\n%s", err, a.stderr)
		default:
		}
		if strings.Contains(a.stderr.String(), "serving P4Runtime") {
			return a
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("agent not serving after 20s:\n%s", a.stderr)
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("agent exit: %v\n%s", err, a.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not exit after SIGTERM\n%s", a.stderr)
	}
}

// packetSock is an AF_PACKET socket bound to one interface of a namespace.
type packetSock struct {
	fd, ifindex int
}

func (l *lab) packetSock(ns, ifname string) *packetSock {
	var s packetSock
	l.inNS(ns, func() error {
		var err error
		if s.ifindex, err = netInterfaceIndex(ifname); err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		s.fd = fd
		l.t.Cleanup(func() { unix.Close(fd) })
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.ifindex})
	})
	return &s
}

func (s *packetSock) send(frame []byte) error {
	return unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

const (
	vni        = 5001
	poolBase   = 1
	poolGray   = 2
	beBase     = 11
	beGray     = 21
	seqMagic   = "graygw-seq"
	seqPayload = 8 + len(seqMagic)
)

var (
	underBase = netip.MustParseAddr("10.2.0.11")
	underGray = netip.MustParseAddr("10.3.0.21")
	vmA       = "10.0.0.5" // moved to gray by the rule
	vmB       = "10.0.0.6"
)

// frame is a VXLAN frame from vm to the VIP carrying seq in its payload.
func frame(vm string, seq uint64) []byte {
	payload := binary.BigEndian.AppendUint64(nil, seq)
	payload = append(payload, seqMagic...)
	return testvectors.Overlay(testvectors.VIP1, vni, vm, "192.168.1.1",
		testpkt.L4{Proto: testpkt.ProtoTCP, SPort: uint16(10000 + seq%50000), DPort: 443, Payload: payload})
}

// receiver collects the sequence numbers arriving at one backend, checking
// each frame was rewritten for that backend.
type receiver struct {
	mu   sync.Mutex
	seqs map[uint64]int
	bad  []string
	stop chan struct{}
	done chan struct{}
}

func (l *lab) receive(ns, ifname string, underlay netip.Addr) *receiver {
	s := l.packetSock(ns, ifname)
	r := &receiver{seqs: map[uint64]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(s.fd, buf, 0)
			if err != nil {
				continue // timeout
			}
			f := buf[:n]
			i := bytes.Index(f, []byte(seqMagic))
			if i < 8 || n < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
				continue
			}
			seq := binary.BigEndian.Uint64(f[i-8:])
			r.mu.Lock()
			if dst := netip.AddrFrom4([4]byte(f[30:34])); dst != underlay {
				r.bad = append(r.bad, fmt.Sprintf("seq %d: outer dst %v, want %v", seq, dst, underlay))
			} else if f[22] != 63 || testpkt.Checksum(f[14:34]) != 0 {
				r.bad = append(r.bad, fmt.Sprintf("seq %d: TTL %d or IPv4 checksum wrong", seq, f[22]))
			}
			r.seqs[seq]++
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *receiver) close() {
	close(r.stop)
	<-r.done
}

// waitFor waits until every seq in want arrived (or 3s passed).
func (r *receiver) waitFor(want []uint64) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		all := true
		for _, s := range want {
			if r.seqs[s] == 0 {
				all = false
				break
			}
		}
		r.mu.Unlock()
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// check reports missing, duplicated or unexpected seqs.
func (r *receiver) check(t *testing.T, name string, want map[uint64]bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Errorf("%s: %s", name, b)
	}
	missing, extra, dup := 0, 0, 0
	for s := range want {
		if r.seqs[s] == 0 {
			missing++
		}
	}
	for s, n := range r.seqs {
		if !want[s] {
			extra++
		}
		if n > 1 {
			dup++
		}
	}
	if missing+extra+dup > 0 {
		t.Errorf("%s: %d of %d frames missing, %d unexpected, %d duplicated", name, missing, len(want), extra, dup)
	}
}

func (l *lab) connect(ctx context.Context, election uint64) (*p4rtest.Client, p4v1.P4RuntimeClient) {
	l.t.Helper()
	c := dialUnix(l.t, l.sock, nil)
	ctl, err := p4rtest.Connect(ctx, c, 1, election)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(ctl.Close)
	return ctl, c
}

// TestEndToEndRestartUnderTraffic: the agent programs the gateway over
// P4Runtime, a gray rule moves one VM to the gray backend and only it, counters
// count the traffic, and stopping and starting the agent while frames flow
// loses none of them; after the restart a Read returns what was written.
func TestEndToEndRestartUnderTraffic(t *testing.T) {
	l := newLab(t)
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	b := p4rtest.Builder{T: t, Info: info}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	agent := l.start()
	ctl, c := l.connect(ctx, 10)
	if err := ctl.SetPipeline(ctx, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, info.P4Info(), 0xe2e); err != nil {
		t.Fatal(err)
	}
	gwMAC1, gwMAC2 := l.mac(l.gw, "g1"), l.mac(l.gw, "g2")
	ups := []*p4v1.Update{
		p4rtest.Ins(b.BackendMAC(beBase, 2, gwMAC1, l.mac(l.base, "b0"), uint32(p4rtest.IP32(t, underBase.String())))),
		p4rtest.Ins(b.BackendMAC(beGray, 3, gwMAC2, l.mac(l.gry, "y0"), uint32(p4rtest.IP32(t, underGray.String())))),
	}
	for bk := 0; bk < pipeline.Buckets; bk++ {
		ups = append(ups, p4rtest.Ins(b.Bucket(poolBase, uint64(bk), beBase)), p4rtest.Ins(b.Bucket(poolGray, uint64(bk), beGray)))
	}
	ups = append(ups,
		p4rtest.Ins(b.Entry(pipeline.TableVNITenant, 0, []p4rtest.FM{p4rtest.Exact("vni", vni)}, pipeline.ActionSetTenant, p4rtest.P("tenant_id", 7))),
		p4rtest.Ins(b.VIP(uint32(p4rtest.IP32(t, testvectors.VIP1.String())), 1, poolBase)))
	if err := ctl.Write(ctx, ups...); err != nil {
		t.Fatalf("programming the gateway: %v %v", err, p4rtest.P4Errors(err))
	}

	client := l.packetSock(l.cl, "c0")
	base := l.receive(l.base, "b0", underBase)
	gray := l.receive(l.gry, "y0", underGray)
	defer base.close()
	defer gray.close()
	wantBase, wantGray := map[uint64]bool{}, map[uint64]bool{}
	seq := uint64(0)
	send := func(vm string, toGray bool) {
		seq++
		if err := client.send(frame(vm, seq)); err != nil {
			t.Fatalf("send: %v", err)
		}
		if toGray {
			wantGray[seq] = true
		} else {
			wantBase[seq] = true
		}
	}
	keys := func(m map[uint64]bool) []uint64 {
		var out []uint64
		for k := range m {
			out = append(out, k)
		}
		return out
	}

	// 1. No rule: both VMs on the base backend.
	for i := 0; i < 50; i++ {
		send(vmA, false)
		send(vmB, false)
	}
	base.waitFor(keys(wantBase))
	base.check(t, "base before the rule", wantBase)

	// 2. A gray rule for VM A: A moves, B stays.
	rule := b.Rule(100, []p4rtest.FM{p4rtest.Tern("vni", vni, 0xffffff), p4rtest.Tern("inner_src", p4rtest.IP32(t, vmA), 0xffffffff)}, poolGray)
	if err := ctl.Write(ctx, p4rtest.Ins(rule)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		send(vmA, true)
		send(vmB, false)
	}
	base.waitFor(keys(wantBase))
	gray.waitFor(keys(wantGray))
	base.check(t, "base after the rule", wantBase)
	gray.check(t, "gray after the rule", wantGray)

	// Counters over P4Runtime follow the traffic.
	direct := func(te *p4v1.TableEntry) int64 {
		es, err := p4rtest.Read(ctx, c, 1, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{
			TableEntry: &p4v1.TableEntry{TableId: te.TableId, Match: te.Match, Priority: te.Priority}}}})
		if err != nil || len(es) != 1 {
			t.Fatalf("direct counter read: %v %v", es, err)
		}
		return es[0].GetDirectCounterEntry().GetData().GetPacketCount()
	}
	if n := direct(rule); n != 50 {
		t.Errorf("gray rule counter %d, want 50", n)
	}
	if n := direct(b.Backend(beGray, 0, 0)); n != 50 {
		t.Errorf("gray backend counter %d, want 50", n)
	}
	if n := direct(b.Backend(beBase, 0, 0)); n != 150 {
		t.Errorf("base backend counter %d, want 150", n)
	}
	before, err := p4rtest.Read(ctx, c, 1, p4rtest.Ent(&p4v1.TableEntry{}))
	if err != nil {
		t.Fatal(err)
	}

	// 3. Restart the agent while frames flow.
	var wg sync.WaitGroup
	stopSending := make(chan struct{})
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSending:
				return
			case <-tick.C:
			}
			vm, toGray := vmB, false
			if seq%2 == 0 {
				vm, toGray = vmA, true
			}
			seq++
			if err := client.send(frame(vm, seq)); err != nil {
				sendErr = err
				return
			}
			if toGray {
				wantGray[seq] = true
			} else {
				wantBase[seq] = true
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	ctl.Close()
	agent.stop(t)
	time.Sleep(300 * time.Millisecond) // no agent at all for a while
	agent = l.start()
	time.Sleep(300 * time.Millisecond)
	close(stopSending)
	wg.Wait()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	if !strings.Contains(agent.stderr.String(), "replaced_running_program=true") {
		t.Errorf("the restarted agent did not swap into the pinned links:\n%s", agent.stderr)
	}
	base.waitFor(keys(wantBase))
	gray.waitFor(keys(wantGray))
	base.check(t, "base across the restart", wantBase)
	gray.check(t, "gray across the restart", wantGray)
	t.Logf("%d frames sent, the agent restarted in between", seq)

	// The restarted agent answers Read with what was written, and a new
	// primary (the highest election id is remembered) can write.
	ctl2, c2 := l.connect(ctx, 10)
	after, err := p4rtest.Read(ctx, c2, 1, p4rtest.Ent(&p4v1.TableEntry{}))
	if err != nil {
		t.Fatal(err)
	}
	p4rtest.SameEntities(t, after, before)
	if err := ctl2.Write(ctx, p4rtest.Del(rule)); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	ctl2.Close()
	agent.stop(t)
}

// netInterfaceIndex looks ifname up in the calling thread's namespace.
func netInterfaceIndex(ifname string) (int, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, err
	}
	return ifc.Index, nil
}
