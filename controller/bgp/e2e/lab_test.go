package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
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

// Environment variables a re-executed test binary reads.
const (
	envInner   = "GRAYGW_BGP_E2E_INNER"   // name of the test to run as the inner half
	envLab     = "GRAYGW_BGP_E2E_LAB"     // JSON labInfo
	envSpeaker = "GRAYGW_BGP_E2E_SPEAKER" // JSON speakerSpec: run a speaker child and nothing else
)

// labInfo is what the inner half of a test needs to know about the lab.
type labInfo struct {
	Dir      string `json:"dir"`
	BirdSock string `json:"birdSock"`
	GWNS     string `json:"gwNS"`
}

// peerLab is a gateway namespace and a peer namespace running BIRD.
type peerLab struct {
	labInfo
	l    *lab.Lab
	bird *exec.Cmd
}

// newPeerLab builds the namespaces and starts BIRD, or skips the test when it
// cannot (not root, no bird).
func newPeerLab(t *testing.T) *peerLab {
	t.Helper()
	for _, bin := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs BIRD 2 (%s not found: apt-get install bird2)", bin)
		}
	}
	l, err := lab.New("ggbgp")
	if errors.Is(err, lab.ErrNotRoot) {
		t.Skip("needs root: network namespaces and BGP on port 179")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	gw, err := l.NS("gw")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.NS("peer")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Veth(gw, "vgw", peer, "vpeer"); err != nil {
		t.Fatal(err)
	}
	if err := l.Script(gw, fmt.Sprintf(`
		ip addr add %s/24 dev vgw
		ip addr add %s/24 dev vgw
		ip addr add %s/24 dev vgw
		ip addr add %s/24 dev vgw`, gwAddr, gwEAddr, gw1Addr, gw2Addr)); err != nil {
		t.Fatal(err)
	}
	if err := l.Script(peer, fmt.Sprintf(`
		ip addr add %s/24 dev vpeer
		ip addr add %s/24 dev vpeer`, ibgpAddr, ebgpAddr)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &peerLab{l: l, labInfo: labInfo{Dir: dir, BirdSock: filepath.Join(dir, "bird.ctl"), GWNS: gw}}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(birdConf(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "bird.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	p.bird, err = l.Start(peer, logf, "bird", "-f", "-c", conf, "-s", p.BirdSock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "bird.log"))
			t.Logf("bird.log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.birdc("show status"); err == nil {
			break
		} else if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(dir, "bird.out"))
			t.Fatalf("BIRD did not come up: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// birdConf peers BIRD with the speaker twice: iBGP between ibgpAddr and
// gwAddr (so LOCAL_PREF is carried) and eBGP between ebgpAddr and gwEAddr.
// (BIRD locks a session by the neighbor's address, so two sessions need two
// addresses on each side.) Both import everything,
// export nothing, accept several paths per prefix (ADD-PATH receive) and help
// a restarting speaker (graceful restart on). Short timers keep the tests fast.
func birdConf(dir string) string {
	return fmt.Sprintf(`log "%s/bird.log" all;
router id %s;
debug protocols { states, events };

protocol device { scan time 1; }

template bgp speaker {
	graceful restart on;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	hold time 9;
}

protocol bgp gw_ibgp from speaker {
	local %s as %d;
	neighbor %s as %d;
	direct;
	ipv4 { import all; export none; add paths rx; gateway direct; };
}

protocol bgp gw_ebgp from speaker {
	local %s as %d;
	neighbor %s as %d;
	connect delay time 3;	# see TestControllerRestartKeepsRoutes
	ipv4 { import all; export none; add paths rx; };
}
`, dir, ibgpAddr, ibgpAddr, localAS, gwAddr, localAS, ebgpAddr, peerAS, gwEAddr, localAS)
}

// birdc runs one BIRD CLI command.
func (i labInfo) birdc(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", i.BirdSock}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// birdRoute is one route as `birdc show route all` prints it.
type birdRoute struct {
	Prefix    string
	Protocol  string
	NextHop   string   // BGP.next_hop
	Via       string   // the gateway BIRD resolved
	MED       string   // BGP.med, "" if absent
	LocalPref string   // BGP.local_pref
	ASPath    string   // BGP.as_path
	Community []string // BGP.community, e.g. "(65000,100)"
	Header    string   // the first line, as printed
}

var routeHeader = regexp.MustCompile(`^(\S+)?\s+unicast \[(\S+) `)

// routes returns BIRD's routes for prefix learned by protocol.
func (i labInfo) routes(prefix, protocol string) ([]birdRoute, error) {
	out, err := i.birdc("show route all " + prefix + " protocol " + protocol)
	if strings.Contains(out, "Network not found") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []birdRoute
	var cur *birdRoute
	lastPrefix := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := routeHeader.FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				lastPrefix = m[1]
			}
			rs = append(rs, birdRoute{Prefix: lastPrefix, Protocol: m[2], Header: strings.TrimSpace(line)})
			cur = &rs[len(rs)-1]
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.TrimSpace(line)
		k, v, _ := strings.Cut(f, ":")
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(f, "via "):
			cur.Via = strings.Fields(f)[1]
		case k == "BGP.next_hop":
			cur.NextHop = v
		case k == "BGP.med":
			cur.MED = v
		case k == "BGP.local_pref":
			cur.LocalPref = v
		case k == "BGP.as_path":
			cur.ASPath = v
		case k == "BGP.community":
			cur.Community = strings.Fields(v)
		}
	}
	return rs, nil
}

// nextHops returns the sorted next hops of BIRD's routes for prefix from
// protocol.
func (i labInfo) nextHops(prefix, protocol string) ([]string, error) {
	rs, err := i.routes(prefix, protocol)
	var hops []string
	for _, r := range rs {
		hops = append(hops, r.NextHop)
	}
	slices.Sort(hops)
	return hops, err
}

// grActive reports whether BIRD is helping protocol's neighbor through a
// graceful restart, that is holding its routes as stale. (BIRD 2.0 marks the
// routes stale internally but does not print the mark in show route.)
func (i labInfo) grActive(protocol string) (bool, error) {
	out, err := i.birdc("show protocols all " + protocol)
	return strings.Contains(out, "Neighbor graceful restart active"), err
}

// waitFor polls cond every 5ms until it holds or timeout passes, and returns
// how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > timeout {
			t.Fatalf("after %s: %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hopsAre is a waitFor condition: BIRD's next hops for prefix from protocol
// are exactly want (none when want is empty).
func (i labInfo) hopsAre(prefix, protocol string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		hops, err := i.nextHops(prefix, protocol)
		if err != nil {
			return false, err.Error()
		}
		return strings.Join(hops, ",") == strings.Join(want, ","), fmt.Sprint(hops)
	}
}

// runInside re-executes the current test inside the gateway namespace, where
// its inner half finds the lab in the environment. It fails unless the inner
// test passed.
func (p *peerLab) runInside(t *testing.T) {
	t.Helper()
	info, err := json.Marshal(p.labInfo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", p.GWNS, os.Args[0],
		"-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envInner+"="+t.Name(), envLab+"="+string(info))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", p.GWNS, out)
	if err != nil {
		t.Fatalf("inner test: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("inner test did not pass (skipped?)")
	}
}

// inner returns the lab when the current process is the inner half of t.
func inner(t *testing.T) (labInfo, bool) {
	if os.Getenv(envInner) != t.Name() {
		return labInfo{}, false
	}
	var info labInfo
	if err := json.Unmarshal([]byte(os.Getenv(envLab)), &info); err != nil {
		t.Fatalf("%s: %v", envLab, err)
	}
	return info, true
}
