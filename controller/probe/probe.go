// Package probe checks, with real packets, that the VMs of a VPC reach their VPC
// router through the gray gateway and are answered by the cluster they should be
// on.
//
// A probe is a VXLAN-encapsulated ICMP echo request sent from a probe host (in
// the lab, the hypervisor's namespace) through an AF_PACKET socket: outer
// destination the VIP, VNI the VM's VPC, inner source the VM's address (so the
// gateway classifies it exactly like the VM's own traffic, split hash included),
// inner destination the VPC router. The backend that gets it decapsulates it and
// answers straight back to the hypervisor with VXLAN; the reply's outer source is
// that backend's underlay address, which tells which backend, hence which cluster,
// served the VM. A target may instead probe a TCP port (a SYN, answered by a
// SYN-ACK, or by a reset: refused) or a UDP port (a datagram, echoed) of its
// destination, from a source port fixed per target: one flow of the VM's. Each
// target gets a Result: ok, lost, refused, or wrong backend (with who
// answered), and its round-trip times.
//
// Probes are bounded: a count, an interval and a timeout per run (Options), and
// they are sent only to the configured VIP.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/controller/intent"
)

var (
	// ErrConfig: a Config or Options value is missing or out of range.
	ErrConfig = errors.New("probe: bad configuration")
	// ErrTarget: a target that cannot be probed (not an IP address, VNI wider
	// than 24 bits, unknown VNI or VM in the inventory...).
	ErrTarget = errors.New("probe: bad target")
	// ErrSocket: the probe host's socket could not be opened or used.
	ErrSocket = errors.New("probe: socket")
	// ErrNoRoute: the gateway's tables would not forward a probe (expectations
	// computed from compiled tables).
	ErrNoRoute = errors.New("probe: the tables do not forward the probe")
	// ErrClosed: the Prober was closed.
	ErrClosed = errors.New("probe: closed")
)

// Limits of Options and of one run.
const (
	MaxCount    = 100
	MaxTargets  = 1024
	MinInterval = time.Millisecond
	MaxInterval = 10 * time.Second
	MinTimeout  = 10 * time.Millisecond
	MaxTimeout  = 30 * time.Second
)

// Defaults of Options.
const (
	DefaultCount    = 3
	DefaultInterval = 100 * time.Millisecond
	DefaultTimeout  = time.Second
)

// Status is the verdict on one target.
type Status string

// Statuses.
const (
	// StatusOK: enough replies came back, all from a backend of the expected
	// cluster (and pool, when one is expected).
	StatusOK Status = "ok"
	// StatusLost: more replies than Options.MaxLoss never came back.
	StatusLost Status = "lost"
	// StatusWrongBackend: at least one reply came from a backend outside the
	// expected cluster or pool, or from an address that is no known backend.
	StatusWrongBackend Status = "wrong-backend"
	// StatusRefused: the expected backend answered a TCP probe with a reset,
	// or a UDP probe with an ICMP port unreachable: it is there, but nothing
	// serves the port.
	StatusRefused Status = "refused"
)

// Proto is what a probe checks, through the gateway, on the target's
// destination.
type Proto string

// Probe protocols.
const (
	// ProtoICMP (or empty): an echo request, answered by an echo reply.
	ProtoICMP Proto = "icmp"
	// ProtoTCP: a connection to Port: a SYN, answered by a SYN-ACK (ok) or
	// a reset (refused); an answered connection is reset at once.
	ProtoTCP Proto = "tcp"
	// ProtoUDP: a datagram to Port, answered by the same payload from that
	// port (a UDP echo service).
	ProtoUDP Proto = "udp"
)

// Backend is a server that may answer probes, known by its underlay address.
type Backend struct {
	Name     string         `json:"name" yaml:"name"`
	Underlay netip.Addr     `json:"underlay" yaml:"underlay"`
	Cluster  intent.Cluster `json:"cluster" yaml:"cluster"`
	// Pools are the pools the backend is a member of.
	Pools []string `json:"pools,omitempty" yaml:"pools,omitempty"`
}

// BackendsFromIntent lists the backends of in with their cluster and pools. A
// backend that is a member of pools of both clusters takes the cluster of the
// first pool that lists it (pools sorted by name); intent validation does not
// forbid that, but probes then cannot tell base from gray by that backend.
func BackendsFromIntent(in *intent.Intent) []Backend {
	var out []Backend
	for _, b := range in.Backends {
		be := Backend{Name: b.Name, Underlay: b.UnderlayIP}
		for _, p := range in.Pools {
			for _, m := range p.Members {
				if m.Backend == b.Name {
					if be.Cluster == "" {
						be.Cluster = p.Cluster
					}
					be.Pools = append(be.Pools, p.Name)
				}
			}
		}
		out = append(out, be)
	}
	return out
}

// Target is one address to check: VM VM of VPC VNI pinging its router.
type Target struct {
	VNI uint32 `json:"vni" yaml:"vni"`
	// VM is the inner source: the VM's own address, so that the gateway
	// classifies the probe like the VM's traffic.
	VM netip.Addr `json:"vm" yaml:"vm"`
	// Router is the inner destination: the VPC router address the backends answer.
	Router netip.Addr `json:"router" yaml:"router"`
	// RouterMAC is the inner destination MAC; empty = Config.RouterMAC.
	RouterMAC string `json:"router_mac,omitempty" yaml:"router_mac,omitempty"`
	// ExpectCluster is the cluster that should answer; empty = any known backend.
	ExpectCluster intent.Cluster `json:"expect_cluster,omitempty" yaml:"expect_cluster,omitempty"`
	// ExpectPool, when set, narrows the expectation to that pool's members.
	ExpectPool string `json:"expect_pool,omitempty" yaml:"expect_pool,omitempty"`
	// Proto is the probe's protocol (empty: ICMP echo); Port the TCP or UDP
	// destination port on Router (0 for ICMP).
	Proto Proto  `json:"proto,omitempty" yaml:"proto,omitempty"`
	Port  uint16 `json:"port,omitempty" yaml:"port,omitempty"`
}

// String returns "vni/vm", and " tcp/PORT" or " udp/PORT" for those probes.
func (t Target) String() string {
	if t.Proto == ProtoTCP || t.Proto == ProtoUDP {
		return fmt.Sprintf("%d/%s %s/%d", t.VNI, t.VM, t.Proto, t.Port)
	}
	return fmt.Sprintf("%d/%s", t.VNI, t.VM)
}

// proto is t's protocol, ICMP when empty.
func (t Target) proto() Proto {
	if t.Proto == "" {
		return ProtoICMP
	}
	return t.Proto
}

// Answer counts the replies one underlay address sent for a target.
type Answer struct {
	Underlay netip.Addr `json:"underlay" yaml:"underlay"`
	// Backend and Cluster are empty when the address is no known backend.
	Backend string         `json:"backend,omitempty" yaml:"backend,omitempty"`
	Cluster intent.Cluster `json:"cluster,omitempty" yaml:"cluster,omitempty"`
	Replies int            `json:"replies" yaml:"replies"`
	// Expected says whether this backend may answer the target.
	Expected bool `json:"expected" yaml:"expected"`
}

// Result is the outcome of probing one target.
type Result struct {
	Target Target `json:"target" yaml:"target"`
	Status Status `json:"status" yaml:"status"`
	Sent   int    `json:"sent" yaml:"sent"`
	// Received counts the requests answered at least once.
	Received int `json:"received" yaml:"received"`
	// Answers are sorted by underlay address.
	Answers []Answer `json:"answers,omitempty" yaml:"answers,omitempty"`
	// Round-trip times of the answered requests (zero when none was).
	RTTMin time.Duration `json:"rtt_min" yaml:"rtt_min"`
	RTTAvg time.Duration `json:"rtt_avg" yaml:"rtt_avg"`
	RTTMax time.Duration `json:"rtt_max" yaml:"rtt_max"`
	// Reason says in words why the status is not ok ("" when it is).
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// AnsweredBy returns the names (or addresses, for unknown ones) of the backends
// that answered, comma-separated.
func (r *Result) AnsweredBy() string {
	var s string
	for i, a := range r.Answers {
		if i > 0 {
			s += ","
		}
		if a.Backend != "" {
			s += a.Backend
		} else {
			s += a.Underlay.String()
		}
	}
	return s
}

// Failed returns the results of rs whose status is not StatusOK, in order.
func Failed(rs []Result) []Result {
	var bad []Result
	for _, r := range rs {
		if r.Status != StatusOK {
			bad = append(bad, r)
		}
	}
	return bad
}

// Options bound one probe run. Zero values take the defaults.
type Options struct {
	// Count is the number of echo requests per target (1-MaxCount, default 3).
	Count int `json:"count,omitempty" yaml:"count,omitempty"`
	// Interval separates the rounds (one request per target each); default 100ms.
	Interval time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout is how long to wait for replies after the last request; default 1s.
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MaxLoss is the number of unanswered requests per target still counted ok
	// (0 to Count-1, default 0).
	MaxLoss int `json:"max_loss,omitempty" yaml:"max_loss,omitempty"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Count == 0 {
		o.Count = DefaultCount
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Validate checks o (after defaults) against the limits.
func (o Options) Validate() error {
	switch {
	case o.Count < 1 || o.Count > MaxCount:
		return fmt.Errorf("%w: count %d: want 1 to %d", ErrConfig, o.Count, MaxCount)
	case o.Interval < MinInterval || o.Interval > MaxInterval:
		return fmt.Errorf("%w: interval %v: want %v to %v", ErrConfig, o.Interval, MinInterval, MaxInterval)
	case o.Timeout < MinTimeout || o.Timeout > MaxTimeout:
		return fmt.Errorf("%w: timeout %v: want %v to %v", ErrConfig, o.Timeout, MinTimeout, MaxTimeout)
	case o.MaxLoss < 0 || o.MaxLoss >= o.Count:
		return fmt.Errorf("%w: max_loss %d: want 0 to count-1 (%d)", ErrConfig, o.MaxLoss, o.Count-1)
	}
	return nil
}

// Config says where probes leave from and who may answer them.
type Config struct {
	// VIP is the only outer destination probes are ever sent to.
	VIP netip.Addr
	// NetNS is the probe host's network namespace: a name under /var/run/netns
	// or a path; empty = the caller's namespace.
	NetNS string
	// Interface is the probe host's interface towards the gateway; empty = the
	// interface of the route to the VIP.
	Interface string
	// Source is the outer source address, of the VIP's family; invalid = the
	// interface's first address of that family (not link-local). Backends answer the hypervisor VTEP, so it should be that address.
	Source netip.Addr
	// GatewayMAC is the outer destination MAC (the next hop towards the VIP);
	// empty = looked up in the neighbour table of the probe host.
	GatewayMAC string
	// RouterMAC is the default inner destination MAC, the VPC router's (the
	// backends' VXLAN devices only take frames for their own MAC).
	RouterMAC string
	// Backends are the servers that may answer, by underlay address.
	Backends []Backend
}

// Prober sends probes from one probe host. Run may be called many times; runs
// are serialised. Close releases the socket.
type Prober struct {
	cfg       Config
	backends  map[netip.Addr]Backend
	routerMAC [6]byte

	mu      sync.Mutex // serialises runs and guards closed
	closed  bool
	fd      int
	ifindex int
	srcMAC  [6]byte
	gwMAC   [6]byte
	source  netip.Addr
	ident   uint16
	ipID    uint16
}

// New opens the probe host's AF_PACKET socket (inside Config.NetNS) and
// resolves the addresses Config leaves out. It needs CAP_NET_RAW (and
// CAP_SYS_ADMIN to enter another namespace).
func New(cfg Config) (*Prober, error) {
	if !plainAddr(cfg.VIP) {
		return nil, fmt.Errorf("%w: vip %v: want an IPv4 or IPv6 address", ErrConfig, cfg.VIP)
	}
	if cfg.Source.IsValid() && (!plainAddr(cfg.Source) || cfg.Source.Is6() != cfg.VIP.Is6()) {
		return nil, fmt.Errorf("%w: source %v: want an address of the VIP's family (%v)", ErrConfig, cfg.Source, cfg.VIP)
	}
	p := &Prober{cfg: cfg, backends: map[netip.Addr]Backend{}, fd: -1}
	for _, b := range cfg.Backends {
		if !plainAddr(b.Underlay) {
			return nil, fmt.Errorf("%w: backend %q: underlay %v is not an IP address", ErrConfig, b.Name, b.Underlay)
		}
		if b.Underlay.Is6() != cfg.VIP.Is6() {
			// The backends answer over the underlay of the VIP's family
			// (intent validation: a backend's family is its VIP's); the
			// other VIPs' backends cannot answer these probes.
			continue
		}
		p.backends[b.Underlay] = b
	}
	if cfg.RouterMAC != "" {
		m, err := parseMAC(cfg.RouterMAC)
		if err != nil {
			return nil, fmt.Errorf("%w: router_mac: %w", ErrConfig, err)
		}
		p.routerMAC = m
	}
	if err := p.open(); err != nil {
		return nil, err
	}
	// The identifier tells this prober's replies from anyone else's pings.
	p.ident = uint16(time.Now().UnixNano()>>10) ^ uint16(unix.Getpid())
	return p, nil
}

// Close releases the socket. Runs after Close fail with ErrClosed.
func (p *Prober) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return unix.Close(p.fd)
}

// Source returns the outer source address probes are sent from.
func (p *Prober) Source() netip.Addr { return p.source }

// Run probes every target Count times and returns one Result per target, in
// order. It returns an error only when it could not probe at all (bad input,
// socket failure, ctx cancelled before anything was sent); unanswered probes are
// results, not errors.
func (p *Prober) Run(ctx context.Context, targets []Target, o Options) ([]Result, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, nil
	}
	if len(targets) > MaxTargets || len(targets)*o.Count > 0xffff {
		return nil, fmt.Errorf("%w: %d targets x %d probes: at most %d targets and 65535 probes a run", ErrConfig, len(targets), o.Count, MaxTargets)
	}
	innerMACs := make([][6]byte, len(targets))
	for i, t := range targets {
		m, err := p.checkTarget(t)
		if err != nil {
			return nil, err
		}
		innerMACs[i] = m
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	p.ident++
	ident := p.ident
	p.drain()

	n := len(targets)
	rec := &record{
		sent:    make([]time.Time, n*o.Count),
		rtt:     make([]time.Duration, n*o.Count),
		answers: make([]map[netip.Addr]int, n),
		refused: make([]int, n),
	}
	for i := range rec.answers {
		rec.answers[i] = map[netip.Addr]int{}
	}
	done := make(chan struct{})
	recvDone := make(chan error, 1)
	go func() { recvDone <- p.receive(ident, targets, innerMACs, rec, done) }()

	sendErr := p.send(ctx, ident, targets, innerMACs, o, rec)
	if sendErr == nil {
		deadline := time.NewTimer(o.Timeout)
		tick := time.NewTicker(5 * time.Millisecond)
	wait:
		for !rec.complete() {
			select {
			case <-ctx.Done():
				break wait
			case <-deadline.C:
				break wait
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
	}
	close(done)
	recvErr := <-recvDone
	if sendErr != nil {
		return nil, sendErr
	}
	if recvErr != nil {
		return nil, recvErr
	}
	return p.results(targets, o, rec), nil
}

// checkTarget validates t and returns its inner destination MAC.
func (p *Prober) checkTarget(t Target) ([6]byte, error) {
	var m [6]byte
	switch {
	case t.VNI > 0xffffff:
		return m, fmt.Errorf("%w: %v: VNI wider than 24 bits", ErrTarget, t)
	case !plainAddr(t.VM):
		return m, fmt.Errorf("%w: vni %d: vm %v is not an IPv4 or IPv6 address", ErrTarget, t.VNI, t.VM)
	case !plainAddr(t.Router) || t.Router.Is6() != t.VM.Is6():
		return m, fmt.Errorf("%w: %v: router %v is not an address of the VM's family", ErrTarget, t, t.Router)
	}
	switch t.proto() {
	case ProtoICMP:
		if t.Port != 0 {
			return m, fmt.Errorf("%w: %v: port %d with an ICMP probe (give proto tcp or udp)", ErrTarget, t, t.Port)
		}
	case ProtoTCP, ProtoUDP:
		if t.Port == 0 {
			return m, fmt.Errorf("%w: %v: a %s probe needs a port (1-65535)", ErrTarget, t, t.Proto)
		}
	default:
		return m, fmt.Errorf("%w: %v: proto %q: want icmp, tcp or udp", ErrTarget, t, t.Proto)
	}
	if t.RouterMAC == "" {
		if p.routerMAC == ([6]byte{}) {
			return m, fmt.Errorf("%w: %v: no router MAC (set the target's or the prober's)", ErrTarget, t)
		}
		return p.routerMAC, nil
	}
	m, err := parseMAC(t.RouterMAC)
	if err != nil {
		return m, fmt.Errorf("%w: %v: router_mac: %w", ErrTarget, t, err)
	}
	return m, nil
}

// record is what one run saw; mu guards it (sender and receiver share it).
type record struct {
	mu       sync.Mutex
	sent     []time.Time     // by probe index (round*n + target)
	rtt      []time.Duration // > 0 once answered
	answers  []map[netip.Addr]int
	refused  []int // TCP resets, by target
	pending  int   // sent and not yet answered
	finished bool
}

func (r *record) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished && r.pending == 0
}

// seq numbers probes from 1: probe index i travels as seq i+1.
func (p *Prober) send(ctx context.Context, ident uint16, targets []Target, macs [][6]byte, o Options, rec *record) error {
	n := len(targets)
	for round := 0; round < o.Count; round++ {
		if round > 0 {
			t := time.NewTimer(o.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				rec.mu.Lock()
				rec.finished = true
				rec.mu.Unlock()
				return nil // what was sent is reported; the rest counts as not sent
			case <-t.C:
			}
		}
		for i, tg := range targets {
			idx := round*n + i
			p.ipID++
			frame := buildEcho(p.probeFrame(tg, macs[i], p.ipID, ident, uint16(idx+1)))
			rec.mu.Lock()
			rec.sent[idx] = time.Now()
			rec.pending++
			rec.mu.Unlock()
			if err := unix.Sendto(p.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: p.ifindex, Halen: 6}); err != nil {
				return fmt.Errorf("%w: send to %v for %v: %w", ErrSocket, p.cfg.VIP, tg, err)
			}
		}
	}
	rec.mu.Lock()
	rec.finished = true
	rec.mu.Unlock()
	return nil
}

// probeFrame describes the probe of tg with the given IP id, run and sequence.
func (p *Prober) probeFrame(tg Target, mac [6]byte, ipID, ident, seq uint16) *echo {
	return &echo{
		outerSrcMAC: p.srcMAC, outerDstMAC: p.gwMAC,
		outerSrc: p.source, outerDst: p.cfg.VIP,
		sport: entropyPort(tg.VNI, tg.VM), ipID: ipID, vni: tg.VNI,
		innerSrcMAC: p.srcMAC, innerDstMAC: mac,
		innerSrc: tg.VM, innerDst: tg.Router,
		ident: ident, seq: seq,
		proto: tg.proto(), port: tg.Port, innerSport: innerPort(tg.VNI, tg.VM, tg.proto(), tg.Port),
	}
}

// reset closes the half-open connection a SYN-ACK answered, as a client
// that gives up would, so the backend does not keep it (nor retransmit).
func (p *Prober) reset(tg Target, mac [6]byte, r reply) {
	e := p.probeFrame(tg, mac, 0, r.ident, r.seq)
	e.tcpFlags, e.tcpSeq, e.tcpAck = tcpRST|tcpACK, tcpISN(r.ident, r.seq)+1, r.tcpSeq+1
	_ = unix.Sendto(p.fd, buildEcho(e), 0, &unix.SockaddrLinklayer{Ifindex: p.ifindex, Halen: 6})
}

// plainAddr reports whether a is an IPv4 address or an IPv6 one that is not
// IPv4-mapped and has no zone: what a probe header can carry.
func plainAddr(a netip.Addr) bool { return a.Is4() || (a.Is6() && !a.Is4In6() && a.Zone() == "") }

// entropyPort gives each VM its own outer source port, as a VTEP does, so ECMP
// in front of several gateways spreads probes like the VMs' traffic.
func entropyPort(vni uint32, vm netip.Addr) uint16 {
	h := vni*2654435761 ^ addrWord(vm)
	h ^= h >> 15
	return 49152 + uint16(h%16384)
}

// receive records the replies of this run until done is closed.
func (p *Prober) receive(ident uint16, targets []Target, macs [][6]byte, rec *record, done <-chan struct{}) error {
	buf := make([]byte, 2048)
	n := len(targets)
	for {
		select {
		case <-done:
			return nil
		default:
		}
		m, from, err := unix.Recvfrom(p.fd, buf, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("%w: receive: %w", ErrSocket, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		r, ok := parseReply(buf[:m])
		if !ok || (r.ident != ident && !r.anyRun) || r.seq == 0 || int(r.seq) > len(rec.sent) {
			continue
		}
		idx := int(r.seq) - 1
		tg := targets[idx%n]
		if r.vni != tg.VNI || r.vm != tg.VM || r.routerSrc != tg.Router || r.proto != tg.proto() {
			continue
		}
		if r.proto != ProtoICMP && (r.port != tg.Port || r.vmPort != innerPort(tg.VNI, tg.VM, tg.proto(), tg.Port)) {
			continue
		}
		rec.mu.Lock()
		first := false
		if !rec.sent[idx].IsZero() {
			rec.answers[idx%n][r.outerSrc]++
			if rec.rtt[idx] == 0 {
				rec.rtt[idx] = max(now.Sub(rec.sent[idx]), time.Nanosecond)
				rec.pending--
				first = true
				if r.refused {
					rec.refused[idx%n]++
				}
			}
		}
		rec.mu.Unlock()
		if first && r.proto == ProtoTCP && !r.refused {
			p.reset(tg, macs[idx%n], r)
		}
	}
}

// results turns the record into one Result per target.
func (p *Prober) results(targets []Target, o Options, rec *record) []Result {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := len(targets)
	out := make([]Result, n)
	for i, tg := range targets {
		r := Result{Target: tg}
		var sum time.Duration
		for round := 0; round < o.Count; round++ {
			idx := round*n + i
			if rec.sent[idx].IsZero() {
				continue
			}
			r.Sent++
			if d := rec.rtt[idx]; d > 0 {
				r.Received++
				sum += d
				if r.RTTMin == 0 || d < r.RTTMin {
					r.RTTMin = d
				}
				r.RTTMax = max(r.RTTMax, d)
			}
		}
		if r.Received > 0 {
			r.RTTAvg = sum / time.Duration(r.Received)
		}
		var wrong []string
		for addr, cnt := range rec.answers[i] {
			a := Answer{Underlay: addr, Replies: cnt}
			if b, ok := p.backends[addr]; ok {
				a.Backend, a.Cluster = b.Name, b.Cluster
			}
			a.Expected = expected(tg, a, p.backends[addr])
			if !a.Expected {
				wrong = append(wrong, describe(a))
			}
			r.Answers = append(r.Answers, a)
		}
		sort.Slice(r.Answers, func(a, b int) bool { return r.Answers[a].Underlay.Less(r.Answers[b].Underlay) })
		sort.Strings(wrong)
		switch {
		case len(wrong) > 0:
			r.Status = StatusWrongBackend
			r.Reason = fmt.Sprintf("answered by %s; expected %s", join(wrong), expectation(tg))
		case i < len(rec.refused) && rec.refused[i] > 0 && tg.Proto == ProtoUDP:
			r.Status = StatusRefused
			r.Reason = fmt.Sprintf("%d of %d datagrams to port %d refused (ICMP port unreachable) by %s", rec.refused[i], r.Sent, tg.Port, r.AnsweredBy())
		case i < len(rec.refused) && rec.refused[i] > 0:
			r.Status = StatusRefused
			r.Reason = fmt.Sprintf("%d of %d connections to port %d refused (TCP reset) by %s", rec.refused[i], r.Sent, tg.Port, r.AnsweredBy())
		case r.Sent-r.Received > o.MaxLoss || r.Received == 0:
			r.Status = StatusLost
			r.Reason = fmt.Sprintf("%d of %d requests unanswered", r.Sent-r.Received, r.Sent)
		default:
			r.Status = StatusOK
		}
		out[i] = r
	}
	return out
}

func expected(t Target, a Answer, b Backend) bool {
	if a.Backend == "" {
		return false // not a backend we know: never right
	}
	if t.ExpectCluster != "" && a.Cluster != t.ExpectCluster {
		return false
	}
	if t.ExpectPool != "" && !slices.Contains(b.Pools, t.ExpectPool) {
		return false
	}
	return true
}

func describe(a Answer) string {
	if a.Backend == "" {
		return fmt.Sprintf("%v (no known backend)", a.Underlay)
	}
	return fmt.Sprintf("%s %v (%s)", a.Backend, a.Underlay, a.Cluster)
}

func expectation(t Target) string {
	switch {
	case t.ExpectPool != "" && t.ExpectCluster != "":
		return fmt.Sprintf("pool %s (%s)", t.ExpectPool, t.ExpectCluster)
	case t.ExpectPool != "":
		return "pool " + t.ExpectPool
	case t.ExpectCluster != "":
		return string(t.ExpectCluster) + " cluster"
	}
	return "a known backend"
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// drain discards what is queued on the socket (late replies of an earlier run).
func (p *Prober) drain() {
	buf := make([]byte, 2048)
	for {
		if _, _, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return m, fmt.Errorf("%q is not a 48-bit MAC address", s)
	}
	copy(m[:], hw)
	return m, nil
}
