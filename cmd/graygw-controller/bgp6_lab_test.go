package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/birdlab"
)

// dualStackIntent is twoGatewayIntent with each gateway's bgp_next_hop_v6,
// and an IPv6 VIP whose pool base6 has one backend, base6-1, at backendAddr6.
func dualStackIntent(addr1, addr2 string) string {
	doc := twoGatewayIntent(addr1, addr2)
	doc = strings.Replace(doc, "    bgp_next_hop: "+birdGW1+"\n", "    bgp_next_hop: "+birdGW1+"\n    bgp_next_hop_v6: "+birdGW1v6+"\n", 1)
	doc = strings.Replace(doc, "    bgp_next_hop: "+birdGW2+"\n", "    bgp_next_hop: "+birdGW2+"\n    bgp_next_hop_v6: "+birdGW2v6+"\n", 1)
	doc = strings.Replace(doc, "pools:\n", "  - {name: vip6, id: 2, address: \""+birdVIP6+"\", default_pool: base6}\npools:\n", 1)
	return doc + `  - name: base6
    id: 2
    cluster: base
    backends:
      - {name: base6-1, id: 12, underlay_ip: "` + backendAddr6 + `", mac: "02:00:00:00:20:12", port: 2}
`
}

// TestDaemonAnnouncesIPv6VIPToBIRD: the controller daemon announces an IPv6
// VIP of its intent as a /128 in the IPv6 unicast family, MP-BGP over the
// IPv4 session (neighbor families ipv4-unicast and ipv6-unicast), through
// both gateways' bgp_next_hop_v6, beside the IPv4 VIP; a drain withdraws
// both of a gateway's paths; with ICMPv6 health checks, the IPv6 backend's
// address removed withdraws the IPv6 VIP only (no-healthy-backend, with the
// backend's reason), and its return announces it again; the first signal
// withdraws everything.
func TestDaemonAnnouncesIPv6VIPToBIRD(t *testing.T) {
	b, ok := insideBirdLab(t, newBirdLab6)
	if !ok {
		return
	}
	a1, a2 := startStoppableAgent(t), startStoppableAgent(t)
	dir := t.TempDir()
	cfg := strings.Replace(bgpSection(), "holdTime: 9s}", "holdTime: 9s, families: [ipv4-unicast, ipv6-unicast]}", 1)
	cfg = strings.Replace(cfg, "  vips:\n", "  vips:\n    vip6: {communities: [\"65000:600\"]}\n", 1)
	cfg += "health: {enabled: true, interval: 100ms, timeout: 80ms, rise: 2, fall: 3}\n"
	cfgPath, inPath := filepath.Join(dir, "controller.yaml"), filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, []byte(dualStackIntent(a1.Addr, a2.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := startController(t, "--config", cfgPath, "--store", filepath.Join(dir, "c.db"), "--listen-unix", filepath.Join(dir, "c.sock"),
		"--intent", inPath, "--election-id", "5")
	const p6 = birdVIP6 + "/128"
	hops6 := func(what string, want ...string) time.Duration {
		t.Helper()
		return birdlab.WaitFor(t, 10*time.Second, what+": BIRD's next hops for "+p6, b.HopsAre(p6, "gw_ibgp", want...))
	}
	b.waitHops(t, 30*time.Second, "IPv4 VIP announced at start", birdGW1, birdGW2)
	hops6("IPv6 VIP announced at start", birdGW1v6, birdGW2v6)
	t.Logf("controller start -> both VIPs' paths at BIRD: %s", time.Since(start).Round(time.Millisecond))
	routes, _ := b.Routes(p6, "gw_ibgp")
	for _, rt := range routes {
		if rt.Via != rt.NextHop || !slices.Equal(rt.Community, []string{"(65000,600)"}) {
			t.Errorf("IPv6 route at BIRD: %+v", rt)
		}
	}
	c := r.client(t)
	st, err := c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNeighbors()) != 1 || st.GetNeighbors()[0].GetAdvertised() != 4 || len(st.GetAnnounced()) != 4 {
		t.Fatalf("BGP status: %v", st)
	}

	t0 := time.Now()
	if _, err := c.DrainGateway(context.Background(), &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	hops6("drain gw1", birdGW2v6)
	b.waitHops(t, 10*time.Second, "drain gw1", birdGW2)
	t.Logf("drain gw1: both its paths gone at BIRD after %s", time.Since(t0).Round(100*time.Microsecond))
	if _, err := c.UndrainGateway(context.Background(), &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	hops6("undrain gw1", birdGW1v6, birdGW2v6)

	// The IPv6 backend stops answering ICMPv6 echo: the IPv6 VIP goes, the
	// IPv4 one (its backend answers) stays.
	t0 = time.Now()
	b.inBackend(t, "ip", "-6", "addr", "del", backendAddr6+"/64", "dev", "vbe")
	hops6("IPv6 backend's address removed")
	t.Logf("IPv6 backend down -> IPv6 VIP withdrawn at BIRD after %s (ICMPv6, fall 3 x 100ms)", time.Since(t0).Round(time.Millisecond))
	if hops, _ := b.nextHops(); len(hops) != 2 {
		t.Errorf("the IPv4 VIP lost paths with the IPv6 backend: %v", hops)
	}
	st, _ = c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if w := st.GetWithdrawn(); len(w) != 2 || len(st.GetAnnounced()) != 2 {
		t.Fatalf("BGP status with the IPv6 backend down: %v", st)
	}
	for _, w := range st.GetWithdrawn() {
		if !slices.Equal(w.GetReasons(), []string{"no-healthy-backend"}) || !strings.Contains(w.GetDetail(), "base6-1 ("+backendAddr6+") down since") ||
			!strings.Contains(w.GetDetail(), "echo requests failed in a row") {
			t.Errorf("withdrawn path: %v", w)
		}
	}
	t0 = time.Now()
	b.inBackend(t, "ip", "-6", "addr", "add", backendAddr6+"/64", "dev", "vbe", "nodad")
	hops6("IPv6 backend's address back", birdGW1v6, birdGW2v6)
	t.Logf("IPv6 backend up -> IPv6 VIP announced again after %s (rise 2 x 100ms)", time.Since(t0).Round(time.Millisecond))
	if logs := r.logs.String(); !strings.Contains(logs, `msg="vip withdrawn" event=vipWithdrawn vip=2001:db8:100::10 nexthop=fd00:179::11 gateway=gw1 reason=no-healthy-backend`) {
		t.Errorf("log lacks the IPv6 VIP's withdrawal:\n%s", grepLines(logs, "vip "))
	}

	r.stop(t, 0)
	hops6("withdrawn at exit")
	b.waitHops(t, 5*time.Second, "withdrawn at exit")
}
