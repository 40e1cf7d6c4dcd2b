package health

// The IPv6 checks against a real backend address in a namespace pair (unique
// local addresses, nodad so they are usable at once):
//
//	chk ns: vchk fd00:66::1/64 (the checker: this test, re-executed inside)
//	be ns:  vbe  fd00:66::2/64 (the backend: the kernel answers ICMPv6 echo;
//	        a TCP listener on port 8080 opened in its namespace)

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/syncbuf"
)

const backend6 = "fd00:66::2"

// TestIPv6ChecksInNamespace: the ICMPv6 echo check sees an IPv6 backend up,
// down after fall intervals once its address is removed, up after rise once
// it is back; the TCP check over IPv6 sees it up while it listens, down once
// the listener is closed (connection refused), up again when it listens.
func TestIPv6ChecksInNamespace(t *testing.T) {
	inCheckerLab(t, "gghc6", "network namespaces and raw ICMPv6 sockets", "fd00:66::1/64", backend6+"/64", ipv6Inner)
}

func ipv6Inner(t *testing.T, beNS string) {
	const (
		interval   = 50 * time.Millisecond
		rise, fall = 2, 3
	)
	budget := func(n int) time.Duration { return time.Duration(n+1)*interval + time.Second }
	backend := netip.MustParseAddr(backend6)
	checker := func(t *testing.T, cfg Config) (*Checker, *syncbuf.Buffer) {
		var logs syncbuf.Buffer
		cfg.Interval, cfg.Timeout, cfg.Rise, cfg.Fall = interval, 40*time.Millisecond, rise, fall
		c, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		c.SetTargets([]Target{{Addr: backend, Refs: []Ref{{Pool: "base6", Backend: "be-1"}}}})
		return c, &logs
	}
	// step runs do, waits for down, then runs undo and waits for up.
	step := func(t *testing.T, c *Checker, what, reasonDown, reasonUp string, do, undo func()) {
		t.Helper()
		t0 := time.Now()
		do()
		d := waitState(t, c, backend, StateDown, 10*time.Second)
		st, _ := c.Status(backend)
		t.Logf("%s: down after %s (fall %d x %s): %s", what, time.Since(t0).Round(time.Millisecond), fall, interval, st.Reason)
		if d > budget(fall) {
			t.Errorf("%s: down after %s, budget %s", what, d, budget(fall))
		}
		if !strings.HasPrefix(st.Reason, reasonDown) {
			t.Errorf("%s: reason %q, want %q...", what, st.Reason, reasonDown)
		}
		t0 = time.Now()
		undo()
		d = waitState(t, c, backend, StateUp, 10*time.Second)
		st, _ = c.Status(backend)
		t.Logf("%s undone: up after %s (rise %d x %s): %s", what, d.Round(time.Millisecond), rise, interval, st.Reason)
		if d > budget(rise) {
			t.Errorf("%s undone: up after %s, budget %s", what, d, budget(rise))
		}
		if st.Reason != reasonUp {
			t.Errorf("%s undone: reason %q", what, st.Reason)
		}
	}

	t.Run("icmpv6", func(t *testing.T) {
		c, _ := checker(t, Config{})
		waitState(t, c, backend, StateUp, 2*time.Second)
		step(t, c, "address removed", "3 echo requests failed in a row (last: echo: no reply within", "2 echo requests succeeded in a row",
			func() { labtest.Exec(t, beNS, "ip", "addr", "del", backend6+"/64", "dev", "vbe") },
			func() { labtest.Exec(t, beNS, "ip", "addr", "add", backend6+"/64", "dev", "vbe", "nodad") })
	})

	t.Run("tcp", func(t *testing.T) {
		listen := func() net.Listener {
			ln, err := lab.ServeTCP(beNS, "["+backend6+"]:8080")
			if err != nil {
				t.Fatal(err)
			}
			return ln
		}
		ln := listen()
		c, _ := checker(t, Config{Mode: ModeTCP, Port: 8080})
		waitState(t, c, backend, StateUp, 2*time.Second)
		step(t, c, "listener closed", "3 TCP connects to port 8080 failed in a row (last: connect: connect: connection refused",
			"2 TCP connects to port 8080 succeeded in a row",
			func() { ln.Close() }, func() { ln = listen() })
		ln.Close()
	})
}

// TestAnswer6: an ICMPv6 echo check takes its own reply, ends early on a
// destination unreachable that quotes its own request, and ignores the rest
// (another check's reply, neighbor discovery, another request's error,
// truncated messages).
func TestAnswer6(t *testing.T) {
	addr := netip.MustParseAddr("fd00:66::2")
	other := netip.MustParseAddr("fd00:66::3")
	echo := func(typ byte, id, seq uint16) []byte {
		b := make([]byte, 16)
		b[0] = typ
		b[4], b[5], b[6], b[7] = byte(id>>8), byte(id), byte(seq>>8), byte(seq)
		return b
	}
	unreachable := func(dst netip.Addr, id, seq uint16) []byte {
		b := make([]byte, 8+ipv6HeaderLen)
		b[0], b[1] = icmp6Unreachable, 3
		q := b[8:]
		q[0], q[6] = 0x60, protoICMPv6
		d := dst.As16()
		copy(q[24:40], d[:])
		return append(b, echo(icmp6Echo, id, seq)...)
	}
	for _, tc := range []struct {
		name    string
		msg     []byte
		src     netip.Addr
		done    bool
		errText string
	}{
		{"our reply", echo(icmp6EchoReply, 7, 9), addr, true, ""},
		{"another check's reply", echo(icmp6EchoReply, 7, 8), addr, false, ""},
		{"reply from another address", echo(icmp6EchoReply, 7, 9), other, false, ""},
		{"neighbor solicitation", echo(135, 7, 9), addr, false, ""},
		{"unreachable quoting our request", unreachable(addr, 7, 9), other, true, "destination unreachable (code 3) from fd00:66::3"},
		{"unreachable quoting another request", unreachable(addr, 7, 10), other, false, ""},
		{"unreachable for another address", unreachable(other, 7, 9), other, false, ""},
		{"truncated unreachable", unreachable(addr, 7, 9)[:50], other, false, ""},
		{"truncated", []byte{icmp6EchoReply, 0, 0}, addr, false, ""},
	} {
		done, err := answer6(tc.msg, tc.src, addr, 7, 9)
		if done != tc.done || (err == nil) != (tc.errText == "") || (err != nil && !strings.Contains(err.Error(), tc.errText)) {
			t.Errorf("%s: done %v, err %v", tc.name, done, err)
		}
	}
}
