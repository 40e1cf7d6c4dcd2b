package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
)

// Addresses inside the lab's namespaces (nothing outside them is touched).
const (
	gwAddr   = "10.179.0.1"  // the speaker's iBGP session address and router id
	gwEAddr  = "10.179.0.4"  // the speaker's eBGP session address
	gw1Addr  = "10.179.0.11" // next hop of gateway gw1
	gw2Addr  = "10.179.0.12" // next hop of gateway gw2
	ibgpAddr = "10.179.0.2"  // BIRD's iBGP session address (AS 65001, ours)
	ebgpAddr = "10.179.0.3"  // BIRD's eBGP session address (AS 65100)
	localAS  = 65001
	peerAS   = 65100
)

// envSpeaker makes a re-executed test binary run a speaker child (JSON
// speakerSpec) and nothing else.
const envSpeaker = "GRAYGW_BGP_E2E_SPEAKER"

// labInfo is what the inner half of a test needs to know about the lab.
type labInfo struct {
	Dir string `json:"dir"`
	// Sock is BIRD's control socket: info.Birdc, info.Routes, ...
	birdlab.Sock `json:"birdSock"`
	GWNS         string `json:"gwNS"`
}

// peerLab is a gateway namespace and a peer namespace running BIRD.
type peerLab struct {
	labInfo
	l    *lab.Lab
	bird *birdlab.BIRD
}

// newPeerLab builds the namespaces and starts BIRD, or skips the test when it
// cannot (not root, no bird).
func newPeerLab(t *testing.T) *peerLab {
	t.Helper()
	l, gw, peer := peerNamespaces(t, "ggbgp", []string{gwAddr + "/24", gwEAddr + "/24", gw1Addr + "/24", gw2Addr + "/24"},
		[]string{ibgpAddr + "/24", ebgpAddr + "/24"})
	return startPeer(t, l, gw, peer, birdConf())
}

// peerNamespaces builds the gateway and peer namespaces of a lab (prefix),
// joined by vgw - vpeer, with the addresses (addr/len) given for each side,
// or skips the test when it cannot (not root, no bird). IPv6 addresses skip
// duplicate detection (usable at once).
func peerNamespaces(t *testing.T, prefix string, gwAddrs, peerAddrs []string) (l *lab.Lab, gw, peer string) {
	t.Helper()
	birdlab.Require(t)
	l = labtest.New(t, prefix, "network namespaces and BGP on port 179")
	ns := labtest.Namespaces(t, l, "gw", "peer")
	gw, peer = ns[0], ns[1]
	labtest.Link(t, l, gw, "vgw", peer, "vpeer")
	labtest.Script(t, l, gw, addrScript("vgw", gwAddrs))
	labtest.Script(t, l, peer, addrScript("vpeer", peerAddrs))
	return l, gw, peer
}

// addrScript is the script that gives dev the addresses (addr/len) given;
// IPv6 ones skip duplicate detection (usable at once).
func addrScript(dev string, addrs []string) string {
	var script strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&script, "ip addr add %s dev %s", a, dev)
		if strings.Contains(a, ":") {
			script.WriteString(" nodad")
		}
		script.WriteString("\n")
	}
	return script.String()
}

// hostAddrs returns the /24 addresses net.host of hosts, net being the
// first three bytes ("10.179.10").
func hostAddrs(net string, hosts ...int) []string {
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		addrs[i] = fmt.Sprintf("%s.%d/24", net, h)
	}
	return addrs
}

// startPeer starts BIRD with conf in namespace peer of l, the speaker's side
// being namespace gw.
func startPeer(t *testing.T, l *lab.Lab, gw, peer, conf string) *peerLab {
	t.Helper()
	b := birdlab.Start(t, l, peer, conf)
	return &peerLab{l: l, bird: b, labInfo: labInfo{Dir: b.Dir, Sock: b.Sock, GWNS: gw}}
}

// speakerTemplate is the BIRD template of every session with the speaker:
// graceful restart on, short timers to keep the tests fast.
const speakerTemplate = `template bgp speaker {
	graceful restart on;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	hold time 9;
}`

// birdConf peers BIRD with the speaker twice: iBGP between ibgpAddr and
// gwAddr (so LOCAL_PREF is carried) and eBGP between ebgpAddr and gwEAddr.
// (BIRD locks a session by the neighbor's address, so two sessions need two
// addresses on each side.) Both import everything,
// export nothing, accept several paths per prefix (ADD-PATH receive) and help
// a restarting speaker (graceful restart on). Short timers keep the tests fast.
func birdConf() string {
	return fmt.Sprintf(`router id %s;

protocol device { scan time 1; }

%s
protocol bgp gw_ibgp from speaker {
	local %s as %d;
	neighbor %s as %d;
	direct;
	ipv4 { import all; export none; add paths rx; gateway direct; };
}

%s`, ibgpAddr, speakerTemplate, ibgpAddr, localAS, gwAddr, localAS, ebgpSession("ipv4"))
}

// ebgpSession is BIRD's eBGP session with the speaker, between ebgpAddr and
// gwEAddr, carrying the given channels. It dials 3s after a session drops, so
// that after a speaker's crash it comes up well after the iBGP one (see
// TestControllerRestartKeepsRoutes).
func ebgpSession(channels ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "protocol bgp gw_ebgp from speaker {\n\tlocal %s as %d;\n\tneighbor %s as %d;\n\tconnect delay time 3;\n", ebgpAddr, peerAS, gwEAddr, localAS)
	for _, c := range channels {
		fmt.Fprintf(&b, "\t%s { import all; export none; add paths rx; };\n", c)
	}
	b.WriteString("}\n")
	return b.String()
}

// runInside re-executes the current test inside the gateway namespace, where
// its inner half finds the lab with inner. It fails unless the inner test
// passed.
func (p *peerLab) runInside(t *testing.T) {
	t.Helper()
	labtest.RunInside(t, p.GWNS, 4*time.Minute, p.labInfo)
}

// inside returns the lab when the current process is the inner half of t;
// otherwise it builds the lab with build, runs t's inner half in it
// (runInside) and returns false: t has nothing left to do.
func inside(t *testing.T, build func(*testing.T) *peerLab) (labInfo, bool) {
	var info labInfo
	if labtest.Inner(t, &info) {
		return info, true
	}
	build(t).runInside(t)
	return info, false
}
