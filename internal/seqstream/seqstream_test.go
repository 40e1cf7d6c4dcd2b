package seqstream

import (
	"net/netip"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab/labtest"
)

// TestCountsExactly: a stream from one namespace to two others over veths.
// With both links up every datagram arrives once, each flow at its receiver;
// with one receiver's link down for a while, exactly the datagrams of that
// receiver's flows sent while it was down are lost, and the other flows lose
// nothing.
func TestCountsExactly(t *testing.T) {
	l := labtest.New(t, "ggsq", "network namespaces")
	ns := labtest.Namespaces(t, l, "src", "b", "c")
	src, b, c := ns[0], ns[1], ns[2]
	labtest.Link(t, l, src, "tb", b, "rb")
	labtest.Link(t, l, src, "tc", c, "rc")
	for _, s := range []struct{ ns, script string }{
		{src, "ip addr add 10.9.1.1/24 dev tb\nip addr add 10.9.2.1/24 dev tc"},
		{b, "ip addr add 10.9.1.2/24 dev rb"},
		{c, "ip addr add 10.9.2.2/24 dev rc"},
	} {
		if err := l.Script(s.ns, s.script); err != nil {
			t.Fatal(err)
		}
	}
	// The receivers' neighbours are permanent, so a link down loses datagrams
	// instead of failing their sends.
	for _, n := range []struct{ ns, dev, peerNS, peerDev, addr string }{{src, "tb", b, "rb", "10.9.1.2"}, {src, "tc", c, "rc", "10.9.2.2"}} {
		mac, err := l.MAC(n.peerNS, n.peerDev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Exec(n.ns, "ip", "neigh", "add", n.addr, "lladdr", mac, "dev", n.dev, "nud", "permanent"); err != nil {
			t.Fatal(err)
		}
	}
	a := netip.MustParseAddr
	flows := []Flow{{a("10.9.1.1"), 4001, a("10.9.1.2")}, {a("10.9.2.1"), 4002, a("10.9.2.2")}, {a("10.9.1.1"), 4003, a("10.9.1.2")}}
	s, err := Start(Config{SendNS: src, Receivers: map[string]string{"b": b, "c": c}, Flows: flows})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(0)
	if !s.WaitLast(0, 5*time.Second, func(i int) string { return map[bool]string{true: "c", false: "b"}[i == 1] }) {
		t.Fatalf("flows never arrived at their receivers: %v", s.Last())
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := l.Exec(b, "ip", "link", "set", "rb", "down"); err != nil {
		t.Fatal(err)
	}
	down := s.Mark()
	time.Sleep(300 * time.Millisecond)
	if _, err := l.Exec(b, "ip", "link", "set", "rb", "up"); err != nil {
		t.Fatal(err)
	}
	up := s.Mark()
	time.Sleep(300 * time.Millisecond)
	r := s.Stop(100 * time.Millisecond)
	t.Logf("%s; rb down from datagram %d to %d", r, down, up)
	if r.Sent < 300 || r.Duplicated != 0 || r.Foreign != 0 || len(r.SendErrors) != 0 {
		t.Fatalf("report: %s %v", r, r.SendErrors)
	}
	if len(r.Lost) == 0 {
		t.Fatal("nothing lost while rb was down: the stream does not count loss")
	}
	for _, q := range r.Lost {
		if q%3 == 1 {
			t.Errorf("datagram %d of flow 1 (to c, whose link stayed up) lost", q)
		}
		// The link state changes with `ip` in another process: a datagram
		// or two on either side of the marks may be in the window.
		if q+5 < down || q > up+5 {
			t.Errorf("datagram %d lost outside the window [%d, %d) rb was down", q, down, up)
		}
	}
	if r.PerReceiver["c"] == 0 || r.PerReceiver["b"] == 0 || r.Received+uint64(len(r.Lost)) != r.Sent {
		t.Errorf("report does not add up: %s", r)
	}
}
