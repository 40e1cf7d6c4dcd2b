package health

// The echo check against a real backend address in a namespace pair:
//
//	chk ns: vchk 10.66.0.1/24 (the checker: this test, re-executed inside)
//	be ns:  vbe  10.66.0.2/24 (the backend: the kernel answers echo requests)

import (
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/syncbuf"
)

// TestICMPCheckInNamespace: the echo check sees a backend in another namespace
// up; with its address removed (echo requests go unanswered) it is down after
// fall intervals, and up after rise once the address is back; the same with
// its link set down and up.
func TestICMPCheckInNamespace(t *testing.T) {
	inCheckerLab(t, "gghc", "network namespaces and raw ICMP sockets", "10.66.0.1/24", "10.66.0.2/24", icmpInner)
}

// inCheckerLab runs inner, the test's inner half, in namespace chk of a lab
// (prefix; why says what it needs when it must skip) linked to namespace be:
// chk has chkAddr on vchk, be has beAddr on vbe (addr/len; an IPv6 one
// without duplicate detection, usable at once). inner gets be's name.
func inCheckerLab(t *testing.T, prefix, why, chkAddr, beAddr string, inner func(t *testing.T, beNS string)) {
	var beNS string
	if labtest.Inner(t, &beNS) {
		inner(t, beNS)
		return
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	l := labtest.New(t, prefix, why)
	ns := labtest.Namespaces(t, l, "chk", "be")
	chk, be := ns[0], ns[1]
	labtest.Link(t, l, chk, "vchk", be, "vbe")
	addr := func(a, dev string) string {
		if strings.Contains(a, ":") {
			return "ip addr add " + a + " dev " + dev + " nodad"
		}
		return "ip addr add " + a + " dev " + dev
	}
	labtest.Script(t, l, chk, addr(chkAddr, "vchk"))
	labtest.Script(t, l, be, addr(beAddr, "vbe"))
	labtest.RunInside(t, chk, 2*time.Minute, be)
}

func icmpInner(t *testing.T, beNS string) {
	const (
		interval   = 50 * time.Millisecond
		rise, fall = 2, 3
	)
	var logs syncbuf.Buffer
	c, err := New(Config{Interval: interval, Timeout: 40 * time.Millisecond, Rise: rise, Fall: fall},
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	backend := netip.MustParseAddr("10.66.0.2")
	c.SetTargets([]Target{{Addr: backend, Refs: []Ref{{Pool: "base", Backend: "be-1"}}}})
	waitState(t, c, backend, StateUp, 2*time.Second)

	// Budget: fall (rise) checks an interval apart, plus the first check's
	// wait for its slot and a timeout, plus slack for a busy machine.
	budget := func(n int) time.Duration { return time.Duration(n+1)*interval + time.Second }
	for _, step := range []struct {
		what       string
		down, up   []string
		lastReason string
	}{
		{"address removed", []string{"ip", "addr", "del", "10.66.0.2/24", "dev", "vbe"},
			[]string{"ip", "addr", "add", "10.66.0.2/24", "dev", "vbe"}, "echo: no reply within"},
		{"link down", []string{"ip", "link", "set", "vbe", "down"}, []string{"ip", "link", "set", "vbe", "up"}, "echo"},
	} {
		t0 := time.Now()
		labtest.Exec(t, beNS, step.down...)
		d := waitState(t, c, backend, StateDown, 10*time.Second)
		st, _ := c.Status(backend)
		t.Logf("%s: down after %s (fall %d x %s): %s", step.what, time.Since(t0).Round(time.Millisecond), fall, interval, st.Reason)
		if d > budget(fall) {
			t.Errorf("%s: down after %s, budget %s", step.what, d, budget(fall))
		}
		if !strings.HasPrefix(st.Reason, "3 echo requests failed in a row (last: "+step.lastReason) {
			t.Errorf("%s: reason %q", step.what, st.Reason)
		}
		t0 = time.Now()
		labtest.Exec(t, beNS, step.up...)
		d = waitState(t, c, backend, StateUp, 10*time.Second)
		st, _ = c.Status(backend)
		t.Logf("%s undone: up after %s (rise %d x %s): %s", step.what, d.Round(time.Millisecond), rise, interval, st.Reason)
		if d > budget(rise) {
			t.Errorf("%s undone: up after %s, budget %s", step.what, d, budget(rise))
		}
		if st.Reason != "2 echo requests succeeded in a row" {
			t.Errorf("%s undone: reason %q", step.what, st.Reason)
		}
	}
	t.Logf("checker log:\n%s", logs.String())
}
