package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab/labtest"
)

// Addresses of the routed lab: gw -- rtr -- peer, so that the peer is two hops
// away and only an eBGP multihop session can reach it.
const (
	mhGwNet   = "10.179.10" // gw (.1 .4 .5 .6 .7 session addresses, .11 next hop) and rtr (.254)
	mhPeerNet = "10.179.11" // peer (.2 .3 .4 .5 .6 session addresses) and rtr (.254)
	mhSecret  = "s3cret-md5"
)

// newRoutedPeerLab builds gw -- rtr -- peer (rtr forwards) and starts BIRD in
// peer with five eBGP sessions towards five addresses of the speaker, all with
// "multihop 2": one with the right TCP MD5 password, one with a password the
// speaker does not know, one without password, one with GTSM ("ttl security
// on") and one without. It skips as newPeerLab does.
func newRoutedPeerLab(t *testing.T) *peerLab {
	t.Helper()
	birdlab.Require(t)
	l := labtest.New(t, "ggbgpmh", "network namespaces and BGP on port 179")
	ns := labtest.Namespaces(t, l, "gw", "rtr", "peer")
	gw, rtr, peer := ns[0], ns[1], ns[2]
	labtest.Link(t, l, gw, "vgw", rtr, "vr1")
	labtest.Link(t, l, rtr, "vr2", peer, "vpeer")
	labtest.Script(t, l, gw, addrScript("vgw", hostAddrs(mhGwNet, 1, 4, 5, 6, 7, 11))+fmt.Sprintf("ip route add %s.0/24 via %s.254", mhPeerNet, mhGwNet))
	labtest.Script(t, l, rtr, addrScript("vr1", hostAddrs(mhGwNet, 254))+addrScript("vr2", hostAddrs(mhPeerNet, 254))+"sysctl -qw net.ipv4.ip_forward=1")
	labtest.Script(t, l, peer, addrScript("vpeer", hostAddrs(mhPeerNet, 2, 3, 4, 5, 6))+fmt.Sprintf("ip route add %s.0/24 via %s.254", mhGwNet, mhPeerNet))
	return startPeer(t, l, gw, peer, fmt.Sprintf(`router id %[2]s.2;
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export none; }; }
protocol static { ipv4; route %[1]s.0/24 via %[2]s.254; }

template bgp mh {
	local as %[3]d;
	multihop 2;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	hold time 9;
	ipv4 { import all; export none; };
}
protocol bgp gw_md5 from mh { local %[2]s.2; neighbor %[1]s.1 as %[4]d; password "%[5]s"; }
protocol bgp gw_badmd5 from mh { local %[2]s.3; neighbor %[1]s.4 as %[4]d; password "not-%[5]s"; }
protocol bgp gw_nomh from mh { local %[2]s.4; neighbor %[1]s.5 as %[4]d; }
protocol bgp gw_gtsm from mh { local %[2]s.5; neighbor %[1]s.6 as %[4]d; ttl security on; }
protocol bgp gw_nogtsm from mh { local %[2]s.6; neighbor %[1]s.7 as %[4]d; }
`, mhGwNet, mhPeerNet, peerAS, localAS, mhSecret))
}

// TestPasswordAndMultihop: the neighbor options an operator sets for a peer
// that is not on the gateway's link. Against BIRD two hops away (a router in
// between), with TCP MD5:
//   - multihopTTL 2 and the right password: established, the VIP learned with
//     the gateway's next hop;
//   - the same with a password BIRD does not share: never established;
//   - no multihop (eBGP TTL 1, expiring at the router): never established.
//
// Status tells the good session from the two bad ones.
func TestPasswordAndMultihop(t *testing.T) {
	info, ok := inside(t, newRoutedPeerLab)
	if !ok {
		return
	}
	n := func(addr, local string, ttl uint8, pw string) bgp.Neighbor {
		return bgp.Neighbor{Address: addr, ASN: peerAS, LocalAddress: local, MultihopTTL: ttl, Password: pw,
			ConnectRetry: time.Second, HoldTime: 9 * time.Second}
	}
	good, badPW, noMH := mhPeerNet+".2", mhPeerNet+".3", mhPeerNet+".4"
	cfg := bgp.Config{
		ASN:      localAS,
		RouterID: mhGwNet + ".1",
		Neighbors: []bgp.Neighbor{
			n(good, mhGwNet+".1", 2, mhSecret),
			n(badPW, mhGwNet+".4", 2, mhSecret),
			n(noMH, mhGwNet+".5", 0, ""),
		},
	}
	in := healthyInput()
	in.Gateways = in.Gateways[:1]
	in.Gateways[0].NextHop = netip.MustParseAddr(mhGwNet + ".11")
	s, _ := startSpeaker(t, cfg, in)
	birdlab.WaitFor(t, 15*time.Second, "the VIP over the multihop MD5 session", info.HopsAre(vip+"/32", "gw_md5", mhGwNet+".11"))
	rs, err := info.Routes(vip+"/32", "gw_md5")
	if err != nil || len(rs) != 1 {
		t.Fatalf("routes over gw_md5: %+v, %v", rs, err)
	}
	if rs[0].ASPath != fmt.Sprint(localAS) || rs[0].MED != "50" || strings.Join(rs[0].Community, " ") != "(65000,100) (65000,200)" {
		t.Errorf("attributes over the multihop session: %+v", rs[0])
	}
	// Give the two bad sessions several connect attempts (retry 1-2 s).
	time.Sleep(6 * time.Second)
	st := status(t, s)
	for _, nb := range st.Neighbors {
		switch nb.Address {
		case good:
			if !nb.Up || nb.Advertised != 1 {
				t.Errorf("multihop MD5 neighbor: %+v", nb)
			}
		case badPW, noMH:
			if nb.Up || nb.State == "established" || nb.Advertised != 0 {
				t.Errorf("neighbor %s (bad password / no multihop) came up: %+v", nb.Address, nb)
			}
		}
	}
	for _, proto := range []string{"gw_badmd5", "gw_nomh"} {
		if hops, _ := info.NextHops(vip+"/32", proto); len(hops) != 0 {
			t.Errorf("BIRD learned %v over %s", hops, proto)
		}
		out, _ := info.Birdc("show protocols " + proto)
		if !strings.Contains(out, proto) || strings.Contains(out, "Established") {
			t.Errorf("BIRD's %s:\n%s", proto, out)
		}
	}
}

// TestTTLSecurity: GTSM (neighbor ttlSecurity, RFC 5082) against BIRD two hops
// away. With BIRD's "ttl security on" both sides send TTL 255 and the session is
// established; a peer that sends an ordinary multihop TTL (2, arriving as 1)
// is below the 254 the speaker requires and never gets a session, which is what
// stops a host further away from spoofing or resetting it.
func TestTTLSecurity(t *testing.T) {
	info, ok := inside(t, newRoutedPeerLab)
	if !ok {
		return
	}
	gtsm, plain := mhPeerNet+".5", mhPeerNet+".6"
	n := func(addr, local string) bgp.Neighbor {
		return bgp.Neighbor{Address: addr, ASN: peerAS, LocalAddress: local, TTLSecurity: 2,
			ConnectRetry: time.Second, HoldTime: 9 * time.Second}
	}
	cfg := bgp.Config{ASN: localAS, RouterID: mhGwNet + ".1",
		Neighbors: []bgp.Neighbor{n(gtsm, mhGwNet+".6"), n(plain, mhGwNet+".7")}}
	in := healthyInput()
	in.Gateways = in.Gateways[:1]
	in.Gateways[0].NextHop = netip.MustParseAddr(mhGwNet + ".11")
	s, _ := startSpeaker(t, cfg, in)
	birdlab.WaitFor(t, 15*time.Second, "the VIP over the GTSM session", info.HopsAre(vip+"/32", "gw_gtsm", mhGwNet+".11"))
	time.Sleep(6 * time.Second) // several connect attempts of the session without GTSM
	st := status(t, s)
	for _, nb := range st.Neighbors {
		if nb.Address == plain && (nb.Up || nb.State == "established") {
			t.Errorf("a peer without GTSM got a session: %+v", nb)
		}
		if nb.Address == gtsm && !nb.Up {
			t.Errorf("the GTSM neighbor is down: %+v", nb)
		}
	}
	if hops, _ := info.NextHops(vip+"/32", "gw_nogtsm"); len(hops) != 0 {
		t.Errorf("BIRD learned %v over the session without GTSM", hops)
	}
}
