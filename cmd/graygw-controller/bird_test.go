package main

// A BIRD 2 peer in a namespace pair, for the daemon's BGP tests (as in
// controller/bgp/e2e, cut down to one iBGP session):
//
//	gateway ns: vgw 10.179.0.1 (session), .11 (gw1's next hop), .12 (gw2's)
//	peer ns:    vpeer 10.179.0.2, BIRD (AS 65001, add paths rx, graceful restart on)
//
// With a backend (newBirdLabWithBackend), a third namespace holds the intent's
// backend base-1 for the health checks:
//
//	gateway ns: vgwbe 10.2.0.1/24
//	backend ns: vbe   10.2.0.11/24 (base-1's underlay address)
//
// With IPv6 (newBirdLab6), the same link also has unique local addresses
// (nodad), BIRD's session gets an ipv6 channel (MP-BGP over the IPv4 session),
// and the backend an IPv6 address too:
//
//	gateway ns: vgw fd00:179::11 (gw1's IPv6 next hop), ::12 (gw2's); vgwbe fd00:2::1/64
//	peer ns:    vpeer fd00:179::2
//	backend ns: vbe fd00:2::11/64 (base6-1's underlay address)
//
// The controller must run inside the gateway namespace (its speaker binds port
// 179 there), so a test re-executes itself under `ip netns exec`.

import (
	"fmt"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab/labtest"
)

const (
	birdGW   = "10.179.0.1"
	birdGW1  = "10.179.0.11"
	birdGW2  = "10.179.0.12"
	birdPeer = "10.179.0.2"
	birdAS   = 65001
	birdVIP  = "198.51.100.10"

	birdGW1v6     = "fd00:179::11"
	birdGW2v6     = "fd00:179::12"
	birdVIP6      = "2001:db8:100::10"
	backendAddr6  = "fd00:2::11"
	birdPeerAddr6 = "fd00:179::2"
)

// birdLab is what the inner half needs: BIRD's control socket and a directory.
type birdLab struct {
	Dir string `json:"dir"`
	// Sock is BIRD's control socket: b.Birdc, b.NextHops, ...
	birdlab.Sock `json:"birdSock"`
	GWNS         string `json:"gwNS"`
	// BackendNS is the backend's namespace (newBirdLabWithBackend).
	BackendNS string `json:"backendNS,omitempty"`
}

// newBirdLab builds the namespaces and starts BIRD, or skips.
func newBirdLab(t *testing.T) birdLab {
	t.Helper()
	return buildBirdLab(t, false, false)
}

// newBirdLabWithBackend is newBirdLab with a backend namespace.
func newBirdLabWithBackend(t *testing.T) birdLab {
	t.Helper()
	return buildBirdLab(t, true, false)
}

// newBirdLab6 is newBirdLabWithBackend with IPv6 too.
func newBirdLab6(t *testing.T) birdLab {
	t.Helper()
	return buildBirdLab(t, true, true)
}

// backendAddr is base-1's underlay address in twoGatewayIntent.
const backendAddr = "10.2.0.11"

func buildBirdLab(t *testing.T, backend, ipv6 bool) birdLab {
	t.Helper()
	birdlab.Require(t, "ip")
	l := labtest.New(t, "ggctl", "network namespaces and BGP on port 179")
	ns := labtest.Namespaces(t, l, "gw", "peer")
	gw, peer := ns[0], ns[1]
	labtest.Link(t, l, gw, "vgw", peer, "vpeer")
	labtest.Script(t, l, gw, fmt.Sprintf("ip addr add %s/24 dev vgw\nip addr add %s/24 dev vgw\nip addr add %s/24 dev vgw",
		birdGW, birdGW1, birdGW2))
	labtest.Script(t, l, peer, fmt.Sprintf("ip addr add %s/24 dev vpeer", birdPeer))
	channel6 := ""
	if ipv6 {
		labtest.Script(t, l, gw, fmt.Sprintf("ip addr add %s/64 dev vgw nodad\nip addr add %s/64 dev vgw nodad", birdGW1v6, birdGW2v6))
		labtest.Script(t, l, peer, fmt.Sprintf("ip addr add %s/64 dev vpeer nodad", birdPeerAddr6))
		channel6 = "ipv6 { import all; export none; add paths rx; gateway direct; };"
	}
	var b birdLab
	b.GWNS = gw
	if backend {
		b.BackendNS = labtest.Namespaces(t, l, "be")[0]
		labtest.Link(t, l, gw, "vgwbe", b.BackendNS, "vbe")
		labtest.Script(t, l, gw, "ip addr add 10.2.0.1/24 dev vgwbe")
		labtest.Script(t, l, b.BackendNS, "ip addr add "+backendAddr+"/24 dev vbe")
		if ipv6 {
			labtest.Script(t, l, gw, "ip addr add fd00:2::1/64 dev vgwbe nodad")
			labtest.Script(t, l, b.BackendNS, "ip addr add "+backendAddr6+"/64 dev vbe nodad")
		}
	}
	bird := birdlab.Start(t, l, peer, fmt.Sprintf(`router id %s;
protocol device { scan time 1; }
protocol bgp gw_ibgp {
	local %s as %d;
	neighbor %s as %d;
	direct;
	graceful restart on;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	hold time 9;
	ipv4 { import all; export none; add paths rx; gateway direct; };
	%s
}
`, birdPeer, birdPeer, birdAS, birdGW, birdAS, channel6))
	b.Dir, b.Sock = bird.Dir, bird.Sock
	return b
}

// nextHops returns the sorted BGP next hops BIRD holds for the VIP.
func (b birdLab) nextHops() ([]string, error) {
	return b.NextHops(birdVIP+"/32", "gw_ibgp")
}

// waitHops polls BIRD every 5ms until its next hops for the VIP are want, and
// returns how long that took.
func (b birdLab) waitHops(t *testing.T, timeout time.Duration, what string, want ...string) time.Duration {
	t.Helper()
	return birdlab.WaitFor(t, timeout, fmt.Sprintf("%s: BIRD's next hops for %s, want %v", what, birdVIP, want),
		b.HopsAre(birdVIP+"/32", "gw_ibgp", want...))
}

// inBackend runs a command in the backend's namespace.
func (b birdLab) inBackend(t *testing.T, args ...string) {
	t.Helper()
	labtest.Exec(t, b.BackendNS, args...)
}

// grActive says BIRD holds our routes through a graceful restart.
func (b birdLab) grActive() bool {
	gr, _ := b.GRActive("gw_ibgp")
	return gr
}

// runInside re-executes t inside the gateway namespace; it fails unless the
// inner half passed.
func (b birdLab) runInside(t *testing.T) {
	t.Helper()
	labtest.RunInside(t, b.GWNS, 5*time.Minute, b)
}

// insideBirdLab is the lab of a test's inner half (ok), or, in its outer
// half, builds the lab with build and runs the test inside it (not ok: the
// outer half is done).
func insideBirdLab(t *testing.T, build func(*testing.T) birdLab) (b birdLab, ok bool) {
	if labtest.Inner(t, &b) {
		return b, true
	}
	build(t).runInside(t)
	return b, false
}

// bgpSection is the controller's bgp: config toward the BIRD peer.
func bgpSection() string {
	return fmt.Sprintf(`bgp:
  asn: %d
  routerID: %s
  listenAddress: %s
  gracefulRestart: {enabled: true, restartTime: 120s, deferralTime: 10s}
  neighbors:
    - {address: %s, asn: %d, localAddress: %s, connectRetry: 1s, holdTime: 9s}
  vips:
    vip: {communities: ["65000:100"], med: 50}
  startWait: 10s
`, birdAS, birdGW, birdGW, birdPeer, birdAS, birdGW)
}

// twoGatewayIntent is an intent with gateways gw1 and gw2 (next hops .11 and
// .12) at the agents addr1 and addr2, and the VIP.
func twoGatewayIntent(addr1, addr2 string) string {
	d := intenttest.VPC(addr1)
	d.NextHop = birdGW1
	d.More = []intenttest.Gateway{{Name: "gw2", Agent: addr2, NextHop: birdGW2, Ports: map[int]string{2: "02:00:00:00:02:02"}}}
	d.VIP = intenttest.VIP{Name: "vip", ID: 1, Address: birdVIP, Pool: "base"}
	d.Pools = d.Pools[:1]
	return d.YAML()
}
