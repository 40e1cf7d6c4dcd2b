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

// ICMP is the echo (ping) prober. Each check opens its own raw ICMP socket
// (needs root or CAP_NET_RAW), sends one echo request and waits for the reply
// whose identifier and sequence number are its own: a raw socket sees every
// ICMP packet of the host, other checks' and other programs' included.
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
)

// Probe implements Prober.
func (p *ICMP) Probe(ctx context.Context, addr netip.Addr) error {
	if !addr.Is4() {
		return fmt.Errorf("echo: %s is not an IPv4 address", addr)
	}
	conn, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
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
	msg[0] = icmpEcho
	binary.BigEndian.PutUint16(msg[4:], p.id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], "graygw-h")
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
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
		b := buf[:n] // the IPv4 header is already stripped
		if len(b) < 8 {
			continue
		}
		switch b[0] {
		case icmpEchoReply:
			src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if src.Unmap() == addr && binary.BigEndian.Uint16(b[4:]) == p.id && binary.BigEndian.Uint16(b[6:]) == seq {
				return nil
			}
		case icmpUnreachable:
			// The error quotes our request: IPv4 header, then 8 bytes of it.
			q := b[8:]
			if len(q) < 20 {
				continue
			}
			ihl := int(q[0]&0x0f) * 4
			if len(q) < ihl+8 || netip.AddrFrom4([4]byte(q[16:20])) != addr {
				continue
			}
			e := q[ihl:]
			if e[0] == icmpEcho && binary.BigEndian.Uint16(e[4:]) == p.id && binary.BigEndian.Uint16(e[6:]) == seq {
				return fmt.Errorf("echo: destination unreachable (code %d) from %s", b[1], from)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// TCP is the connect prober: a check succeeds when a TCP connection to the
// backend's port is established (it is closed at once).
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
