// Package seqstream is the traffic generator of graygw's failover tests: a
// steady stream of UDP datagrams with sequence numbers, sent from VM addresses
// in one network namespace (the lab's hypervisor: its kernel VXLAN devices
// encapsulate them towards the gateway's VIP) and counted where they arrive
// (receivers in the backends' namespaces). Because every datagram carries its
// flow and its sequence number, loss, duplication and reordering are exact
// counts, not estimates, and marks taken during the stream (a kill, a
// takeover) say how many datagrams were sent in each window.
//
// The stream is sent as the kernel sends a VM's traffic (UDP sockets bound to
// the VMs' inner addresses), not as crafted frames: what a tenant sees is what
// the stream measures.
package seqstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/graygw/graygw/internal/lab"
)

// magic starts every datagram's payload ("GGSQ"), so a receiver counts only
// the stream's own datagrams.
const magic = 0x47475351

// payloadLen is magic (4), flow index (4), sequence number (8).
const payloadLen = 16

// Flow is one flow of the stream: datagrams from Src:SrcPort (an address
// present in the sending namespace) to Dst at the stream's port.
type Flow struct {
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
}

func (f Flow) String() string { return fmt.Sprintf("%s:%d->%s", f.Src, f.SrcPort, f.Dst) }

// Config is a stream.
type Config struct {
	// SendNS is the namespace the datagrams are sent from ("" for the
	// process's own).
	SendNS string
	// Receivers maps a receiver's name (a backend's, say) to the namespace it
	// listens in, on every address, at Port.
	Receivers map[string]string
	// Flows are sent in turn: datagram n belongs to Flows[n % len(Flows)].
	Flows []Flow
	// Port is the destination port (default 7777).
	Port uint16
	// Interval is the time between two datagrams (default 1ms): the rate.
	Interval time.Duration
}

// arrival is one datagram received.
type arrival struct {
	seq      uint64
	flow     int
	receiver string
}

// Stream is a running stream. Its methods are safe for concurrent use.
type Stream struct {
	cfg   Config
	next  atomic.Uint64 // sequence number of the next datagram
	start time.Time

	txs     []*net.UDPConn
	rxs     map[string]*net.UDPConn
	recvd   atomic.Int64
	mu      sync.Mutex
	arrived []arrival
	sendErr []string

	quit   chan struct{}
	sender chan struct{}
	readWG sync.WaitGroup
	once   sync.Once
	report Report
}

// Start opens the receivers, then the senders, and starts sending. Stop ends
// the stream and releases everything; a Start that fails releases what it
// opened.
func Start(cfg Config) (*Stream, error) {
	if len(cfg.Flows) == 0 || len(cfg.Receivers) == 0 {
		return nil, errors.New("seqstream: a stream needs flows and receivers")
	}
	if cfg.Port == 0 {
		cfg.Port = 7777
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Millisecond
	}
	s := &Stream{cfg: cfg, rxs: map[string]*net.UDPConn{}, quit: make(chan struct{}), sender: make(chan struct{})}
	if err := s.open(); err != nil {
		s.closeAll()
		return nil, err
	}
	for name, c := range s.rxs {
		s.readWG.Add(1)
		go s.read(name, c)
	}
	s.start = time.Now()
	go s.send()
	return s, nil
}

// inNS runs f inside ns, or here when ns is "".
func inNS(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	return lab.InNamespace(ns, f)
}

func (s *Stream) open() error {
	for name, ns := range s.cfg.Receivers {
		err := inNS(ns, func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: int(s.cfg.Port)})
			if err != nil {
				return err
			}
			// A large buffer: a receiver that the scheduler leaves aside for a
			// while must not turn into loss the gateway did not cause.
			_ = c.SetReadBuffer(8 << 20)
			s.rxs[name] = c
			return nil
		})
		if err != nil {
			return fmt.Errorf("seqstream: receiver %s in %q: %w", name, ns, err)
		}
	}
	return inNS(s.cfg.SendNS, func() error {
		for _, f := range s.cfg.Flows {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.Src, f.SrcPort)),
				net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.Dst, s.cfg.Port)))
			if err != nil {
				return fmt.Errorf("seqstream: flow %s: %w", f, err)
			}
			s.txs = append(s.txs, c)
		}
		return nil
	})
}

func (s *Stream) closeAll() {
	for _, c := range s.txs {
		c.Close()
	}
	for _, c := range s.rxs {
		c.Close()
	}
}

func (s *Stream) send() {
	defer close(s.sender)
	buf := make([]byte, payloadLen)
	binary.BigEndian.PutUint32(buf, magic)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		seq := s.next.Load()
		i := int(seq % uint64(len(s.txs)))
		binary.BigEndian.PutUint32(buf[4:], uint32(i))
		binary.BigEndian.PutUint64(buf[8:], seq)
		if _, err := s.txs[i].Write(buf); err != nil {
			// Not sent, so not counted: the report names the errors (a
			// neighbour or a route missing on the sending side is the lab's
			// fault, not the gateway's).
			s.mu.Lock()
			s.sendErr = append(s.sendErr, fmt.Sprintf("datagram %d (flow %s): %v", seq, s.cfg.Flows[i], err))
			s.mu.Unlock()
			continue
		}
		s.next.Add(1)
	}
}

func (s *Stream) read(name string, c *net.UDPConn) {
	defer s.readWG.Done()
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		if n != payloadLen || binary.BigEndian.Uint32(buf) != magic {
			continue
		}
		a := arrival{flow: int(binary.BigEndian.Uint32(buf[4:])), seq: binary.BigEndian.Uint64(buf[8:]), receiver: name}
		s.mu.Lock()
		s.arrived = append(s.arrived, a)
		s.mu.Unlock()
		s.recvd.Add(1)
	}
}

// Mark is the sequence number of the next datagram: datagrams [m1, m2) were
// sent between two marks.
func (s *Stream) Mark() uint64 { return s.next.Load() }

// Received is how many of the stream's datagrams have arrived so far.
func (s *Stream) Received() int64 { return s.recvd.Load() }

// Last returns, for each flow, the receiver of the flow's latest datagram
// received so far ("" when none): where the gateway sends the flow now.
func (s *Stream) Last() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.cfg.Flows))
	best := make([]uint64, len(s.cfg.Flows))
	for _, a := range s.arrived {
		if a.flow < len(out) && (out[a.flow] == "" || a.seq > best[a.flow]) {
			out[a.flow], best[a.flow] = a.receiver, a.seq
		}
	}
	return out
}

// WaitLast waits up to timeout until every flow's latest datagram arrived at
// want(flow index) after sequence number from, and says whether it did.
func (s *Stream) WaitLast(from uint64, timeout time.Duration, want func(i int) string) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		ok := make([]bool, len(s.cfg.Flows))
		best := make([]uint64, len(s.cfg.Flows))
		for _, a := range s.arrived {
			if a.flow < len(ok) && a.seq >= from && a.seq >= best[a.flow] {
				best[a.flow], ok[a.flow] = a.seq, a.receiver == want(a.flow)
			}
		}
		s.mu.Unlock()
		if !slices.Contains(ok, false) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Report is what a stream measured.
type Report struct {
	// Sent is how many datagrams were sent, Received how many of them
	// arrived (duplicates counted once), over Duration at Rate a second.
	Sent, Received uint64
	Duration       time.Duration
	Rate           float64
	// Lost are the sequence numbers sent and never received; Duplicated
	// counts datagrams received more than once; Reordered counts arrivals at
	// a receiver older than an earlier arrival of the same flow there.
	Lost       []uint64
	Duplicated int
	Reordered  int
	// Foreign counts arrivals with a flow or sequence number the stream never
	// sent (a corrupted datagram).
	Foreign int
	// PerReceiver is how many datagrams each receiver got.
	PerReceiver map[string]uint64
	// SendErrors are the sends that failed (not counted in Sent).
	SendErrors []string
}

// String is the report in one line, for a test's log.
func (r Report) String() string {
	names := make([]string, 0, len(r.PerReceiver))
	for n := range r.PerReceiver {
		names = append(names, n)
	}
	sort.Strings(names)
	var per []string
	for _, n := range names {
		per = append(per, fmt.Sprintf("%s %d", n, r.PerReceiver[n]))
	}
	return fmt.Sprintf("%d datagrams sent in %s (%.0f/s), %d received (%s), %d lost, %d duplicated, %d reordered, %d foreign, %d send errors",
		r.Sent, r.Duration.Round(time.Millisecond), r.Rate, r.Received, strings.Join(per, ", "), len(r.Lost), r.Duplicated,
		r.Reordered, r.Foreign, len(r.SendErrors))
}

// LostBetween counts the lost datagrams with sequence numbers in [from, to).
func (r Report) LostBetween(from, to uint64) int {
	n := 0
	for _, q := range r.Lost {
		if q >= from && q < to {
			n++
		}
	}
	return n
}

// Stop stops sending, waits for the datagrams still in flight (until none
// arrived for settle, at most 10 settles), closes every socket and reports.
// Calling it again returns the same report.
func (s *Stream) Stop(settle time.Duration) Report {
	s.once.Do(func() {
		close(s.quit)
		<-s.sender
		dur := time.Since(s.start)
		sent := s.next.Load()
		last := s.recvd.Load()
		for i := 0; i < 10 && uint64(last) < sent; i++ {
			time.Sleep(settle)
			n := s.recvd.Load()
			if n == last {
				break
			}
			last = n
		}
		s.closeAll()
		s.readWG.Wait()
		s.report = s.tally(sent, dur)
	})
	return s.report
}

func (s *Stream) tally(sent uint64, dur time.Duration) Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Report{Sent: sent, Duration: dur, PerReceiver: map[string]uint64{}, SendErrors: s.sendErr}
	if dur > 0 {
		r.Rate = float64(sent) / dur.Seconds()
	}
	seen := make([]uint16, sent)
	type key struct {
		receiver string
		flow     int
	}
	newest := map[key]uint64{}
	for _, a := range s.arrived {
		if a.seq >= sent || a.flow != int(a.seq%uint64(len(s.cfg.Flows))) {
			r.Foreign++
			continue
		}
		r.PerReceiver[a.receiver]++
		if seen[a.seq]++; seen[a.seq] == 2 {
			r.Duplicated++
		}
		k := key{a.receiver, a.flow}
		if n, ok := newest[k]; ok && a.seq < n {
			r.Reordered++
		} else {
			newest[k] = a.seq
		}
	}
	for q, n := range seen {
		if n == 0 {
			r.Lost = append(r.Lost, uint64(q))
		} else {
			r.Received++
		}
	}
	return r
}
