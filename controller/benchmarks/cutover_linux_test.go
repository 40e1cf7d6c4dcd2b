//go:build linux

package benchmarks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/agent/xdp"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/stack"
)

// The cutover measurement (item 8.2) runs in topo's namespace lab:
//
//	hv: VM 192.168.1.5 (VNI 5001) --VXLAN--> gw: p1 [XDP, the agent's maps] p2 -> base, p3 -> gray
//
// The gateway is the real XDP program (probetest: loaded with pinned maps in a
// private directory, attached to p1) programmed only by graygw's agent server
// (agent/server over agent/xdp) on a loopback port; the controller is the real
// API service (api/service over controller/engine and a bbolt store) on a unix
// socket, called through gRPC. A sender in the hypervisor namespace sends a
// steady stream of UDP datagrams from the VM to its VPC router (the hypervisor's
// kernel encapsulates them towards the VIP); UDP sockets on the router address
// in the base and gray namespaces (the backends' kernels decapsulate) see which
// backend each datagram reached. Each trial calls Cutover (the VM to the gray
// pool) and measures the time to the first datagram received by the gray
// backend, then Rollback RULE and the time to the first datagram back at base.

const benchPort = 9999

// receiver records the datagrams of the stream that reach one backend.
type receiver struct {
	conn *net.UDPConn

	mu   sync.Mutex
	at   []time.Time // arrival times, in order
	seqs []uint64
	sig  chan struct{} // closed and replaced at each arrival
}

func listen(ns string, addr netip.AddrPort) (*receiver, error) {
	r := &receiver{sig: make(chan struct{})}
	err := lab.InNamespace(ns, func() error {
		var err error
		r.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, err
	}
	go r.run()
	return r, nil
}

func (r *receiver) run() {
	buf := make([]byte, 64)
	for {
		n, err := r.conn.Read(buf)
		now := time.Now()
		if err != nil {
			return
		}
		if n < 8 {
			continue
		}
		r.mu.Lock()
		r.at = append(r.at, now)
		r.seqs = append(r.seqs, binary.BigEndian.Uint64(buf))
		close(r.sig)
		r.sig = make(chan struct{})
		r.mu.Unlock()
	}
}

// firstAfter waits for the first datagram that arrived after t and returns its
// arrival time and sequence number.
func (r *receiver) firstAfter(ctx context.Context, t time.Time) (time.Time, uint64, error) {
	for {
		r.mu.Lock()
		i, _ := slices.BinarySearchFunc(r.at, t, func(a, b time.Time) int { return a.Compare(b) })
		for i < len(r.at) && !r.at[i].After(t) {
			i++
		}
		if i < len(r.at) {
			at, seq := r.at[i], r.seqs[i]
			r.mu.Unlock()
			return at, seq, nil
		}
		sig := r.sig
		r.mu.Unlock()
		select {
		case <-sig:
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		}
	}
}

// received returns the set of sequence numbers received so far.
func (r *receiver) received() map[uint64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[uint64]bool, len(r.seqs))
	for _, s := range r.seqs {
		m[s] = true
	}
	return m
}

// sender sends the VM's stream: datagrams of 8 bytes (a sequence number) every
// interval, until stopped or limit datagrams were sent.
type sender struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	sent  []time.Time // send time by sequence number
	stop  chan struct{}
	done  chan struct{}
	limit int
}

func dial(ns string, from, to netip.AddrPort, interval time.Duration, limit int) (*sender, error) {
	s := &sender{stop: make(chan struct{}), done: make(chan struct{}), limit: limit}
	err := lab.InNamespace(ns, func() error {
		var err error
		s.conn, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(from), net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		return nil, err
	}
	// No UDP checksum (0, valid for IPv4): the hypervisor's VXLAN device leaves
	// the inner checksum to offload (CHECKSUM_PARTIAL), which nothing completes
	// once the XDP program has redirected the frame between veths, so the
	// backends' kernels would drop every datagram (UdpInCsumErrors). ICMP and
	// real NICs are not affected.
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("SO_NO_CHECK: %w", serr)
	}
	go s.run(interval)
	return s, nil
}

func (s *sender) run(interval time.Duration) {
	defer close(s.done)
	// nanosleep on a thread of its own: the Go scheduler's timers wake about
	// every millisecond here, too coarse for the measurement.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts := unix.NsecToTimespec(interval.Nanoseconds())
	buf := make([]byte, 8)
	for seq := 0; seq < s.limit; seq++ {
		select {
		case <-s.stop:
			return
		default:
		}
		binary.BigEndian.PutUint64(buf, uint64(seq))
		// Recorded before the write: the datagram may reach a receiver before
		// this goroutine runs again.
		s.mu.Lock()
		s.sent = append(s.sent, time.Now())
		s.mu.Unlock()
		s.conn.Write(buf) // a lost datagram is counted by the receivers' absence
		unix.Nanosleep(&ts, nil)
	}
}

func (s *sender) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.conn.Close()
}

// sentBetween returns the sequence numbers sent in [a, b].
func (s *sender) sentBetween(a, b time.Time) (first, last uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, _ := slices.BinarySearchFunc(s.sent, a, func(x, y time.Time) int { return x.Compare(y) })
	hi, _ := slices.BinarySearchFunc(s.sent, b, func(x, y time.Time) int { return x.Compare(y) })
	if hi <= lo {
		return 0, 0, false
	}
	return uint64(lo), uint64(hi - 1), true
}

// gap returns the median interval between sends.
func (s *sender) gap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g samples
	for i := 1; i < len(s.sent); i++ {
		g = append(g, s.sent[i].Sub(s.sent[i-1]))
	}
	return g.median()
}

func (s *sender) sendTime(seq uint64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[seq]
}

// switchTrial is one Cutover or Rollback.
type switchTrial struct {
	call, first time.Duration // call returned (it waits for the gateway); first datagram at the new backend
	segs        map[string]time.Duration
	reads       int // Read RPCs served by the agent during the switch (read-backs)
	lost        int // datagrams sent from the call to 20 ms after the first one that reached no backend
	transit     time.Duration
}

// segments of a switch, in order, from the timeline. The API validates and
// compiles the change ("change validated"), plans it against the current
// desired entries ("change planned"), commits it to the store and hands it to
// the engine, whose pass ("writing plan") writes the difference; the
// dataplane call is the agent's map update.
var segNames = []string{
	"API: request, intent edit, validate + compile",
	"API: change plan (desired against desired) + summary",
	"store commit of the version (bbolt, fsync)",
	"engine commit + trigger + pass diff",
	"P4Runtime write to the map update",
	"map update (dataplane call)",
	"map update to first datagram seen",
}

func segments(evs []event, t0, first time.Time, dpCall string) (map[string]time.Duration, int, error) {
	validated, ok1 := find(evs, "ctl", "change validated", t0)
	commit, ok2 := find(evs, "store", "Commit", t0)
	if !ok1 || !ok2 {
		return nil, 0, fmt.Errorf("missing API events (validated %v, commit %v)", ok1, ok2)
	}
	plan, ok3 := find(evs, "ctl", "writing plan", commit.end)
	dp, ok4 := find(evs, "dp", dpCall, commit.end)
	if !ok3 || !ok4 {
		return nil, 0, fmt.Errorf("missing pass events (plan %v, %s %v)", ok3, dpCall, ok4)
	}
	reads := 0
	for _, e := range evs {
		if e.src == "rpc" && e.msg == "Read" && !e.at.After(first) {
			reads++
		}
	}
	return map[string]time.Duration{
		segNames[0]: validated.at.Sub(t0),
		segNames[1]: commit.at.Sub(validated.at),
		segNames[2]: commit.end.Sub(commit.at),
		segNames[3]: plan.at.Sub(commit.end),
		segNames[4]: dp.at.Sub(plan.at),
		segNames[5]: dp.end.Sub(dp.at),
		segNames[6]: first.Sub(dp.end),
	}, reads, nil
}

type cutoverVariant struct {
	name     string
	fill     bool // grow the lab intent to Full
	trials   int
	interval time.Duration // between the VM's datagrams
}

type cutoverResult struct {
	v             cutoverVariant
	entries       int
	apply         time.Duration // the first Apply (wait) to in sync
	gap           time.Duration // median interval between datagrams: the resolution
	cut, back     []switchTrial
	sent, lostAll int
}

func runCutover(t *testing.T, v cutoverVariant, prefix string) *cutoverResult {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l, err := probetest.New(prefix, nil)
	if errors.Is(err, lab.ErrNotRoot) {
		t.Skip("needs root: network namespaces, XDP")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	tl := newTimeline()
	a := serveAgent(t, xdp.New(l.DP), tl)
	a.dp.detail = true

	spec, err := intent.Parse([]byte(l.IntentYAML("")))
	if err != nil {
		t.Fatal(err)
	}
	spec.Gateways[0].P4Runtime = a.addr
	doc := specDoc(t, spec)
	if v.fill {
		doc = filledDoc(t, spec, Full)
	}

	// The controller: store, engine, API service on a unix socket.
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "controller.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctl := stack.StartController(t, stack.Config{Dir: dir, Store: timedStore{Store: st, tl: tl},
		Engine:  engine.Config{Interval: 10 * time.Minute, Logger: tl.logger()},
		Service: service.Config{Logger: tl.logger(), WaitTimeout: change.DefaultWaitTimeout}})
	c, eng := ctl.Client, ctl.Engine
	opts := func() *graygwv1.ChangeOptions { return waitOptions(5 * time.Minute) }

	res := &cutoverResult{v: v}
	start := time.Now()
	ar, err := c.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: string(doc), Options: opts()})
	res.apply = time.Since(start)
	if err != nil || !ar.GetResult().GetApplied() || ar.GetResult().GetWaitError() != "" {
		t.Fatalf("apply: %v %v", err, ar.GetResult())
	}
	res.entries = eng.Status()[0].Entries

	// The stream: VM 192.168.1.5 of VNI 5001 to its router.
	vpc := l.Topo.VPCs[0]
	dst := netip.AddrPortFrom(vpc.RouterAddr(), benchPort)
	grayRx, err := listen(l.Topo.Gray, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer grayRx.conn.Close()
	baseRx, err := listen(l.Topo.Base, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer baseRx.conn.Close()
	// At most 10 minutes of stream at the interval, and 1M datagrams.
	limit := min(int(10*time.Minute/v.interval), 1_000_000)
	tx, err := dial(l.Topo.HV, netip.AddrPortFrom(vpc.VMAddr(5), 40000), dst, v.interval, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.close()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	_, _, err = baseRx.firstAfter(wctx, start)
	wcancel()
	if err != nil {
		t.Fatalf("the VM's stream does not reach the base backend: %v", err)
	}

	trial := func(rx, other *receiver, dpCall string, call func() error) switchTrial {
		t.Helper()
		time.Sleep(100 * time.Millisecond) // the stream settles on the other backend
		runtime.GC()
		t0 := time.Now()
		if err := call(); err != nil {
			t.Fatal(err)
		}
		tr := switchTrial{call: time.Since(t0)}
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		first, seq, err := rx.firstAfter(wctx, t0)
		wcancel()
		if err != nil {
			t.Fatalf("no datagram at the new backend: %v", err)
		}
		tr.first = first.Sub(t0)
		tr.transit = first.Sub(tx.sendTime(seq))
		if tr.segs, tr.reads, err = segments(tl.after(t0), t0, first, dpCall); err != nil {
			t.Fatal(err)
		}
		// Loss over the switch: everything sent from the call to 20 ms after the
		// first datagram steered, given 100 ms to arrive.
		time.Sleep(120 * time.Millisecond)
		if lo, hi, ok := tx.sentBetween(t0, first.Add(20*time.Millisecond)); ok {
			got, got2 := rx.received(), other.received()
			for s := lo; s <= hi; s++ {
				if !got[s] && !got2[s] {
					tr.lost++
				}
			}
		}
		return tr
	}
	for range v.trials {
		var rule string
		res.cut = append(res.cut, trial(grayRx, baseRx, "InsertRule", func() error {
			r, err := c.Cutover(ctx, &graygwv1.CutoverRequest{
				Scope: &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: vpc.VNI, Src: vpc.VMAddr(5).String()}},
				Vip:   probetest.VIPName, Pool: probetest.GrayPool, Options: opts()})
			if err != nil {
				return err
			}
			if !r.GetResult().GetApplied() || r.GetResult().GetWaitError() != "" {
				return fmt.Errorf("cutover not applied: %v", r.GetResult())
			}
			rule = r.GetRule()
			return nil
		}))
		res.back = append(res.back, trial(baseRx, grayRx, "DeleteRule", func() error {
			r, err := c.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: rule, Options: opts()})
			if err != nil {
				return err
			}
			if !r.GetResult().GetApplied() || r.GetResult().GetWaitError() != "" {
				return fmt.Errorf("rollback not applied: %v", r.GetResult())
			}
			return nil
		}))
	}
	tx.close()
	time.Sleep(100 * time.Millisecond)
	res.gap = tx.gap()
	got, got2 := grayRx.received(), baseRx.received()
	res.sent = len(tx.sent)
	for s := range uint64(res.sent) {
		if !got[s] && !got2[s] {
			res.lostAll++
		}
	}
	return res
}

// TestBenchCutover is item 8.2: time from an API cutover call to the first
// packet steered, in the namespace lab with the XDP gateway; with the lab's
// small intent, and with the lab's intent grown to the full size.
func TestBenchCutover(t *testing.T) {
	benchEnabled(t)
	// One datagram a millisecond: the resolution is well below what is measured,
	// and a faster stream takes CPU from the controller on a small machine.
	interval := time.Millisecond
	if s := os.Getenv("GRAYGW_BENCH_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("GRAYGW_BENCH_INTERVAL=%q: want a duration", s)
		}
		interval = d
	}
	variants := []cutoverVariant{
		{name: "lab intent", trials: envInt(t, "GRAYGW_BENCH_CUTOVERS", 10), interval: interval},
		{name: "lab intent + 63 pools, 10k rules", fill: true, trials: envInt(t, "GRAYGW_BENCH_CUTOVERS_FULL", 3), interval: interval},
	}
	var results []*cutoverResult
	for i, v := range variants {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := runCutover(t, v, fmt.Sprintf("ggb%d", i))
			for i := range r.cut {
				t.Logf("%s: trial %d: cutover first datagram at gray %v (call %v), rollback first at base %v (call %v)",
					v.name, i+1, r.cut[i].first, r.cut[i].call, r.back[i].first, r.back[i].call)
			}
			results = append(results, r)
		})
	}
	if len(results) > 0 {
		writeFragment(t, "cutover", renderCutover(results))
	}
}

func renderCutover(rs []*cutoverResult) string {
	var b strings.Builder
	var heads []string
	for _, r := range rs {
		heads = append(heads, fmt.Sprintf("%s: Cutover", r.v.name), fmt.Sprintf("%s: Rollback RULE", r.v.name))
	}
	fmt.Fprintf(&b, "| | %s |\n|---|%s\n", strings.Join(heads, " | "), strings.Repeat("---:|", len(heads)))
	row := func(label string, cell func(r *cutoverResult, ts []switchTrial) string) {
		var cells []string
		for _, r := range rs {
			cells = append(cells, cell(r, r.cut), cell(r, r.back))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	pick := func(ts []switchTrial, f func(switchTrial) time.Duration) samples {
		var s samples
		for _, tr := range ts {
			s = append(s, f(tr))
		}
		return s
	}
	row("entries on the gateway; trials", func(r *cutoverResult, ts []switchTrial) string {
		return fmt.Sprintf("%s; %d", thousands(r.entries), len(ts))
	})
	row("**call to first datagram at the new backend**", func(r *cutoverResult, ts []switchTrial) string {
		return "**" + pick(ts, func(t switchTrial) time.Duration { return t.first }).mmm() + "**"
	})
	row("call returned (wait: gateway in sync)", func(r *cutoverResult, ts []switchTrial) string {
		return pick(ts, func(t switchTrial) time.Duration { return t.call }).mmm()
	})
	for _, name := range segNames {
		row("&nbsp;&nbsp;"+name, func(r *cutoverResult, ts []switchTrial) string {
			return pick(ts, func(t switchTrial) time.Duration { return t.segs[name] }).mmm()
		})
	}
	row("read-backs of the gateway during the switch (all trials)", func(r *cutoverResult, ts []switchTrial) string {
		n := 0
		for _, t := range ts {
			n += t.reads
		}
		return fmt.Sprint(n)
	})
	row("first datagram's own transit (sent to received)", func(r *cutoverResult, ts []switchTrial) string {
		return pick(ts, func(t switchTrial) time.Duration { return t.transit }).mmm()
	})
	row("datagrams lost over the switch (all trials)", func(r *cutoverResult, ts []switchTrial) string {
		n := 0
		for _, t := range ts {
			n += t.lost
		}
		return fmt.Sprint(n)
	})
	fmt.Fprintf(&b, "\nMedian (min-max) over the trials.\n\n")
	for _, r := range rs {
		for _, side := range []struct {
			name string
			ts   []switchTrial
		}{{"Cutover", r.cut}, {"Rollback", r.back}} {
			// Sums per trial, then their medians.
			sum := func(names ...string) time.Duration {
				return pick(side.ts, func(t switchTrial) time.Duration {
					var d time.Duration
					for _, n := range names {
						d += t.segs[n]
					}
					return d
				}).median()
			}
			total := pick(side.ts, func(t switchTrial) time.Duration { return t.first }).median()
			api := sum(segNames[0], segNames[1])
			ctl := sum(segNames[:4]...)
			tail := sum(segNames[4:]...)
			fmt.Fprintf(&b, "* %s, %s: the API's edit, validation, compilation and plan take %s of the %s median (%.0f%%); "+
				"everything before the P4Runtime write %s; the write, the map update and the datagram's way %s (medians of the per-trial sums).\n",
				r.v.name, side.name, dur(api), dur(total), 100*float64(api)/float64(total), dur(ctl), dur(tail))
		}
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "* %s: the first Apply of the intent to the empty gateway (through the API, wait) took %s; the VM sent a datagram every %s (median, the "+
			"resolution of the measurement), %s in all, %d of them reached no backend.\n",
			r.v.name, dur(r.apply), dur(r.gap), thousands(r.sent), r.lostAll)
	}
	return b.String()
}
