package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab"
)

// IPv6 addresses inside the lab's namespaces (unique local, nothing outside
// them is touched).
const (
	gwAddr6   = "fd00:179::1"  // the speaker's IPv6 iBGP session address
	gw1Addr6  = "fd00:179::11" // IPv6 next hop of gateway gw1
	gw2Addr6  = "fd00:179::12" // IPv6 next hop of gateway gw2
	ibgpAddr6 = "fd00:179::2"  // BIRD's IPv6 iBGP session address
	vip6      = "2001:db8:100::10"
)

// TestAnnounceIPv6ToBIRD: an IPv6 VIP reaches BIRD as a /128 once per healthy
// gateway, with the gateway's IPv6 next hop and the VIP's attributes, both
// ways an operator would carry it: over an IPv6 iBGP session (the IPv6 unicast
// family only, the default of an IPv6 neighbor) and by MP-BGP over the IPv4
// eBGP session (families ipv4-unicast and ipv6-unicast), beside the IPv4 VIP.
// A drain and a P4Runtime loss withdraw it, it comes back when they clear,
// and Stop(withdraw) empties BIRD's IPv6 table.
func TestAnnounceIPv6ToBIRD(t *testing.T) {
	info, ok := inside(t, newPeerLab6)
	if !ok {
		return
	}
	cfg, in := dualStack()
	s, logs := startSpeaker(t, cfg, in)
	took := birdlab.WaitFor(t, 20*time.Second, "both sessions established", sessionsUp(s))
	t.Logf("sessions established after %s", took.Round(time.Millisecond))
	const p6 = vip6 + "/128"
	birdlab.WaitFor(t, 5*time.Second, "IPv6 paths at BIRD (IPv6 iBGP)", info.HopsAre(p6, "gw_ibgp6", gw1Addr6, gw2Addr6))
	birdlab.WaitFor(t, 5*time.Second, "IPv6 paths at BIRD (MP-BGP over IPv4 eBGP)", info.HopsAre(p6, "gw_ebgp", gw1Addr6, gw2Addr6))
	birdlab.WaitFor(t, 5*time.Second, "IPv4 paths at BIRD (eBGP)", info.HopsAre(vip+"/32", "gw_ebgp", gw1Addr, gw2Addr))
	if hops, _ := info.NextHops(vip+"/32", "gw_ibgp6"); len(hops) != 0 {
		t.Errorf("the IPv6-only session carried the IPv4 VIP: %v", hops)
	}

	out, _ := info.Birdc("show route all " + p6)
	t.Logf("BIRD's IPv6 table:\n%s", out)
	for _, proto := range []string{"gw_ibgp6", "gw_ebgp"} {
		rs, err := info.Routes(p6, proto)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			// BIRD resolves the next hop on the link (via = next hop);
			// eBGP carries no LOCAL_PREF and prepends our AS.
			ibgp := proto == "gw_ibgp6"
			if r.Via != r.NextHop || r.MED != "60" || (r.LocalPref == "400") != ibgp || (r.ASPath == "65001") == ibgp ||
				!slices.Equal(r.Community, []string{"(65000,600)"}) {
				t.Errorf("%s route: %+v", proto, r)
			}
		}
	}
	st := status(t, s)
	for _, n := range st.Neighbors {
		want := uint64(2) // the IPv6 session: the IPv6 VIP's two paths
		if n.Address == ebgpAddr {
			want = 4 // both VIPs
		}
		if !n.Up || n.Advertised != want || !n.GracefulRestart {
			t.Errorf("neighbor status: %+v, want %d advertised", n, want)
		}
	}

	withdrawRounds(t, "IPv6 ", 5, applyAndWait(t, s, &in, info.Sock, p6, "gw_ibgp6", "gw_ebgp"), gw1Addr6, gw2Addr6)
	if line := "event=vipWithdrawn vip=2001:db8:100::10 nexthop=fd00:179::11 gateway=gw1 reason=drained"; !strings.Contains(logs.String(), line) {
		t.Errorf("speaker log lacks %q", line)
	}

	start := time.Now()
	if err := s.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	birdlab.WaitFor(t, 5*time.Second, "no IPv6 path after Stop(withdraw)", info.HopsAre(p6, "gw_ibgp6"))
	birdlab.WaitFor(t, 5*time.Second, "no MP-BGP IPv6 path after Stop(withdraw)", info.HopsAre(p6, "gw_ebgp"))
	t.Logf("Stop(withdraw=true) to empty BIRD IPv6 table: %s", time.Since(start).Round(time.Millisecond))
}

// TestControllerRestartKeepsIPv6Routes: graceful restart holds the IPv6
// VIP's /128 too. A speaker SIGKILLed leaves both paths at BIRD, stale, on the
// IPv6 session and on the MP-BGP one; a new speaker (gw1 drained meanwhile)
// refreshes them with the Forwarding State bit for IPv6 in its OPEN, the path
// through gw2 never leaving BIRD's table, and gw1's going at the End-of-RIB.
// The eBGP session comes up about 2s after the IPv6 one, as in
// TestControllerRestartKeepsRoutes: sessions that come up within milliseconds
// of each other can miss the bits (docs/bgp.md, "Residual race").
func TestControllerRestartKeepsIPv6Routes(t *testing.T) {
	p := newPeerLab6(t)
	cfg, in := dualStack()
	const prefix = vip6 + "/128"
	protos := []string{"gw_ibgp6", "gw_ebgp"}
	a := p.startSpeakerChildWith(t, "speaker-a", cfg, in)
	for _, proto := range protos {
		birdlab.WaitFor(t, 20*time.Second, "first speaker's IPv6 paths at BIRD ("+proto+")", p.HopsAre(prefix, proto, gw1Addr6, gw2Addr6))
	}
	if err := lab.Stop(a, syscall.SIGKILL, 2*time.Second); err == nil {
		t.Log("speaker exited cleanly; want it killed")
	}
	killed := time.Now()
	for _, proto := range protos {
		birdlab.WaitFor(t, 5*time.Second, "BIRD to hold the IPv6 paths as stale ("+proto+")", p.heldStale(prefix, proto, gw1Addr6, gw2Addr6))
	}
	time.Sleep(2 * time.Second)
	for _, proto := range protos {
		if ok, state := p.heldStale(prefix, proto, gw1Addr6, gw2Addr6)(); !ok {
			t.Fatalf("%s 2s after the crash: %s", proto, state)
		}
	}

	in.Gateways[0].Drained = true
	started := time.Now()
	b := p.startSpeakerChildWith(t, "speaker-b", cfg, in)
	gap := map[string][]string{}
	for _, proto := range protos {
		birdlab.WaitFor(t, 20*time.Second, "refreshed IPv6 paths, graceful restart over ("+proto+")", p.refreshed(prefix, proto, gw2Addr6, gap))
		out, _ := p.Birdc("show protocols all " + proto)
		_, theirs, _ := strings.Cut(out, "Neighbor capabilities")
		_, preserved, _ := strings.Cut(theirs, "AF preserved:")
		if preserved, _, _ = strings.Cut(preserved, "\n"); !strings.Contains(preserved, "ipv6") {
			t.Errorf("%s: the new speaker's OPEN lacks the IPv6 Forwarding State bit (AF preserved:%s):\n%s", proto, preserved, out)
		} else {
			t.Logf("%s: AF preserved:%s", proto, preserved)
		}
	}
	if len(gap) > 0 {
		t.Errorf("the IPv6 path through gw2 left BIRD's table during the restart: %v", gap)
	}
	t.Logf("speaker down for %s; BIRD refreshed the IPv6 paths %s after the new speaker started",
		started.Sub(killed).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if err := lab.Stop(b, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("speaker shutdown: %v", err)
	}
	for _, proto := range protos {
		birdlab.WaitFor(t, 5*time.Second, "no IPv6 path after the shutdown ("+proto+")", p.HopsAre(prefix, proto))
	}
}

// TestIPv4VIPOverAnIPv6Session: an IPv6 neighbor given both families
// carries the IPv4 VIP too, with its IPv4 next hops (BIRD offers both
// channels on that session; TestAnnounceIPv6ToBIRD's default, IPv6 only, gets
// no IPv4 route there).
func TestIPv4VIPOverAnIPv6Session(t *testing.T) {
	info, ok := inside(t, newPeerLab6)
	if !ok {
		return
	}
	cfg, in := dualStack()
	cfg.Neighbors = cfg.Neighbors[:1]
	cfg.Neighbors[0].Families = []bgp.Family{bgp.FamilyIPv4Unicast, bgp.FamilyIPv6Unicast}
	s, _ := startSpeaker(t, cfg, in)
	birdlab.WaitFor(t, 20*time.Second, "the IPv6 session established", sessionsUp(s))
	birdlab.WaitFor(t, 5*time.Second, "IPv4 paths over the IPv6 session", info.HopsAre(vip+"/32", "gw_ibgp6", gw1Addr, gw2Addr))
	birdlab.WaitFor(t, 5*time.Second, "IPv6 paths over the IPv6 session", info.HopsAre(vip6+"/128", "gw_ibgp6", gw1Addr6, gw2Addr6))
	rs, err := info.Routes(vip+"/32", "gw_ibgp6")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Via != r.NextHop {
			t.Errorf("IPv4 route over the IPv6 session not resolved on the link: %+v", r)
		}
	}
}

// dualStack is the speaker config and input of the IPv6 tests: the IPv6 iBGP
// session and MP-BGP over the IPv4 eBGP one, the IPv4 VIP and the IPv6 VIP
// (with attributes) through gw1 and gw2.
func dualStack() (bgp.Config, bgp.Input) {
	cfg := speakerConfig()
	cfg.Neighbors[0].Address, cfg.Neighbors[0].LocalAddress = ibgpAddr6, gwAddr6
	cfg.Neighbors[1].Families = []bgp.Family{bgp.FamilyIPv4Unicast, bgp.FamilyIPv6Unicast}
	in := healthyInput()
	in.Gateways[0].NextHopV6 = netip.MustParseAddr(gw1Addr6)
	in.Gateways[1].NextHopV6 = netip.MustParseAddr(gw2Addr6)
	in.VIPs = append(in.VIPs, bgp.VIP{Address: netip.MustParseAddr(vip6), Pools: []bgp.Pool{{Name: "base6", HealthyBackends: 1}},
		Attributes: bgp.Attributes{Communities: []string{"65000:600"}, MED: u32(60), LocalPref: u32(400)}})
	return cfg, in
}

// newPeerLab6 is newPeerLab with IPv6 too: unique local addresses on the
// same link (nodad: usable at once), and BIRD peering over an IPv6 iBGP
// session and, MP-BGP, over the IPv4 eBGP session.
func newPeerLab6(t *testing.T) *peerLab {
	t.Helper()
	l, gw, peer := peerNamespaces(t, "ggbgp6",
		[]string{gwAddr + "/24", gwEAddr + "/24", gw1Addr + "/24", gw2Addr + "/24", gwAddr6 + "/64", gw1Addr6 + "/64", gw2Addr6 + "/64"},
		[]string{ebgpAddr + "/24", ibgpAddr6 + "/64"})
	return startPeer(t, l, gw, peer, fmt.Sprintf(`router id %s;

protocol device { scan time 1; }
protocol direct { ipv6; interface "vpeer"; }

%s
protocol bgp gw_ibgp6 from speaker {
	local %s as %d;
	neighbor %s as %d;
	direct;
	ipv4 { import all; export none; add paths rx; gateway direct; };
	ipv6 { import all; export none; add paths rx; gateway direct; };
}

%s`, ebgpAddr, speakerTemplate, ibgpAddr6, localAS, gwAddr6, localAS, ebgpSession("ipv4", "ipv6")))
}
