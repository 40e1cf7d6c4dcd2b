package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/graygw/graygw/internal/checksum"
)

// Prober runs one check of a backend. It returns nil when the backend answered
// and an error saying what went wrong otherwise. ctx carries the check's
// timeout.
type Prober interface {
	Probe(ctx context.Context, addr netip.Addr) error
}

// ProberFunc is a function as a Prober.
type ProberFunc func(ctx context.Context, addr netip.Addr) error

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, addr netip.Addr) error { return f(ctx, addr) }

// ErrNoReply is wrapped by the error of a check nothing answered in time.
var ErrNoReply = errors.New("no reply")

// ICMP is the echo (ping) prober: ICMP echo to an IPv4 address, ICMPv6 echo
// (RFC 4443) to an IPv6 one. Each check opens its own raw socket (needs root
// or CAP_NET_RAW), sends one echo request and waits for the reply whose
// identifier and sequence number are its own: a raw socket sees every ICMP
// packet of the host (for ICMPv6, neighbor discovery too), other checks' and
// other programs' included.
type ICMP struct {
	id  uint16
	seq atomic.Uint32
}

// NewICMP returns an echo prober with a random identifier.
func NewICMP() *ICMP {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &ICMP{id: binary.BigEndian.Uint16(b[:])}
}

const (
	icmpEchoReply   = 0
	icmpUnreachable = 3
	icmpEcho        = 8

	icmp6Unreachable = 1
	icmp6Echo        = 128
	icmp6EchoReply   = 129
	protoICMPv6      = 58
	ipv6HeaderLen    = 40
)

// echoFamily is what differs between an ICMP and an ICMPv6 echo check.
type echoFamily struct {
	network, listen string
	request         byte
	// answer reads one message b (no IP header) from src: done when it is
	// the reply to (id, seq) or an error that quotes that request.
	answer func(b []byte, src, addr netip.Addr, id, seq uint16) (done bool, err error)
}

var (
	echo4 = echoFamily{network: "ip4:icmp", listen: "0.0.0.0", request: icmpEcho, answer: answer4}
	echo6 = echoFamily{network: "ip6:ipv6-icmp", listen: "::", request: icmp6Echo, answer: answer6}
)

// Probe implements Prober.
func (p *ICMP) Probe(ctx context.Context, addr netip.Addr) error {
	fam := echo4
	switch {
	case addr.Is4() || addr.Is4In6():
		addr = addr.Unmap()
	case addr.Is6() && addr.Zone() == "":
		fam = echo6
	default:
		return fmt.Errorf("echo: %s is not an IPv4 or IPv6 address", addr)
	}
	conn, err := net.ListenPacket(fam.network, fam.listen)
	if err != nil {
		return fmt.Errorf("echo: raw ICMP socket (needs root or CAP_NET_RAW): %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	seq := uint16(p.seq.Add(1))
	msg := make([]byte, 16)
	msg[0] = fam.request
	binary.BigEndian.PutUint16(msg[4:], p.id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], "graygw-h")
	if fam.request == icmpEcho {
		// The kernel fills in an ICMPv6 checksum (it covers the IPv6
		// pseudo-header, RFC 3542 section 3.1), never an ICMPv4 one.
		binary.BigEndian.PutUint16(msg[2:], checksum.Internet(msg))
	}
	start := time.Now()
	if _, err := conn.WriteTo(msg, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
		return fmt.Errorf("echo: send: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				return fmt.Errorf("echo: %w within %s", ErrNoReply, time.Since(start).Round(time.Millisecond))
			}
			return fmt.Errorf("echo: read: %w", err)
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if done, err := fam.answer(buf[:n], src.Unmap(), addr, p.id, seq); done {
			return err
		}
	}
}

// answer4 reads an ICMP message (the IPv4 header is already stripped).
func answer4(b []byte, src, addr netip.Addr, id, seq uint16) (bool, error) {
	if len(b) < 8 {
		return false, nil
	}
	switch b[0] {
	case icmpEchoReply:
		return src == addr && binary.BigEndian.Uint16(b[4:]) == id && binary.BigEndian.Uint16(b[6:]) == seq, nil
	case icmpUnreachable:
		// The error quotes our request: IPv4 header, then 8 bytes of it.
		q := b[8:]
		if len(q) < 20 {
			return false, nil
		}
		ihl := int(q[0]&0x0f) * 4
		if len(q) < ihl+8 || netip.AddrFrom4([4]byte(q[16:20])) != addr {
			return false, nil
		}
		e := q[ihl:]
		if e[0] == icmpEcho && binary.BigEndian.Uint16(e[4:]) == id && binary.BigEndian.Uint16(e[6:]) == seq {
			return true, fmt.Errorf("echo: destination unreachable (code %d) from %s", b[1], src)
		}
	}
	return false, nil
}

// answer6 reads an ICMPv6 message (the IPv6 header is already stripped).
func answer6(b []byte, src, addr netip.Addr, id, seq uint16) (bool, error) {
	if len(b) < 8 {
		return false, nil
	}
	switch b[0] {
	case icmp6EchoReply:
		return src == addr && binary.BigEndian.Uint16(b[4:]) == id && binary.BigEndian.Uint16(b[6:]) == seq, nil
	case icmp6Unreachable:
		// The error quotes as much of our request as fits: its IPv6 header
		// (next header ICMPv6: a check sends no extension header), then
		// the echo request.
		q := b[8:]
		if len(q) < ipv6HeaderLen+8 || q[6] != protoICMPv6 || netip.AddrFrom16([16]byte(q[24:40])) != addr {
			return false, nil
		}
		e := q[ipv6HeaderLen:]
		if e[0] == icmp6Echo && binary.BigEndian.Uint16(e[4:]) == id && binary.BigEndian.Uint16(e[6:]) == seq {
			return true, fmt.Errorf("echo: destination unreachable (code %d) from %s", b[1], src)
		}
	}
	return false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TCP is the connect prober: a check succeeds when a TCP connection to the
// backend's port, over IPv4 or IPv6 as the address is, is established (it is
// closed at once).
type TCP struct {
	Port uint16
}

// Probe implements Prober.
func (p TCP) Probe(ctx context.Context, addr netip.Addr) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, p.Port).String())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return fmt.Errorf("connect: %w within the timeout", ErrNoReply)
		}
		return fmt.Errorf("connect: %w", unwrapOp(err))
	}
	c.Close()
	return nil
}

// unwrapOp drops net.OpError's "dial tcp a:p:" prefix (the log line already
// names the backend).
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
