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
// The controller must run inside the gateway namespace (its speaker binds port
// 179 there), so a test re-executes itself under `ip netns exec`.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
)

const (
	birdGW    = "10.179.0.1"
	birdGW1   = "10.179.0.11"
	birdGW2   = "10.179.0.12"
	birdPeer  = "10.179.0.2"
	birdAS    = 65001
	birdVIP   = "198.51.100.10"
	envInner  = "GRAYGW_CTL_E2E_INNER" // the test to run as the inner half
	envLabDir = "GRAYGW_CTL_E2E_LAB"   // JSON birdLab
)

// birdLab is what the inner half needs: BIRD's control socket and a directory.
type birdLab struct {
	Dir      string `json:"dir"`
	BirdSock string `json:"birdSock"`
	GWNS     string `json:"gwNS"`
	// BackendNS is the backend's namespace (newBirdLabWithBackend).
	BackendNS string `json:"backendNS,omitempty"`
}

// newBirdLab builds the namespaces and starts BIRD, or skips.
func newBirdLab(t *testing.T) birdLab {
	t.Helper()
	return buildBirdLab(t, false)
}

// newBirdLabWithBackend is newBirdLab with a backend namespace.
func newBirdLabWithBackend(t *testing.T) birdLab {
	t.Helper()
	return buildBirdLab(t, true)
}

// backendAddr is base-1's underlay address in twoGatewayIntent.
const backendAddr = "10.2.0.11"

func buildBirdLab(t *testing.T, backend bool) birdLab {
	t.Helper()
	for _, bin := range []string{"bird", "birdc", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs BIRD 2 and iproute2 (%s not found: apt-get install bird2)", bin)
		}
	}
	l, err := lab.New("ggctl")
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
	if err := l.Script(gw, fmt.Sprintf("ip addr add %s/24 dev vgw\nip addr add %s/24 dev vgw\nip addr add %s/24 dev vgw",
		birdGW, birdGW1, birdGW2)); err != nil {
		t.Fatal(err)
	}
	if err := l.Script(peer, fmt.Sprintf("ip addr add %s/24 dev vpeer", birdPeer)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := birdLab{Dir: dir, BirdSock: filepath.Join(dir, "bird.ctl"), GWNS: gw}
	if backend {
		if b.BackendNS, err = l.NS("be"); err != nil {
			t.Fatal(err)
		}
		if err := l.Veth(gw, "vgwbe", b.BackendNS, "vbe"); err != nil {
			t.Fatal(err)
		}
		if err := l.Script(gw, "ip addr add 10.2.0.1/24 dev vgwbe"); err != nil {
			t.Fatal(err)
		}
		if err := l.Script(b.BackendNS, "ip addr add "+backendAddr+"/24 dev vbe"); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`log "%s/bird.log" all;
router id %s;
debug protocols { states, events };
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
}
`, dir, birdPeer, birdPeer, birdAS, birdGW, birdAS)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "bird.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	if _, err := l.Start(peer, logf, "bird", "-f", "-c", conf, "-s", b.BirdSock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "bird.log"))
			t.Logf("bird.log:\n%s", out)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := b.birdc("show status"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("BIRD did not come up: %v", err)
		}
	}
	return b
}

func (b birdLab) birdc(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.BirdSock}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// nextHops returns the sorted BGP next hops BIRD holds for the VIP.
func (b birdLab) nextHops() ([]string, error) {
	out, err := b.birdc("show route all " + birdVIP + "/32 protocol gw_ibgp")
	if strings.Contains(out, "Network not found") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hops []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "BGP.next_hop:"); ok {
			hops = append(hops, strings.TrimSpace(v))
		}
	}
	slices.Sort(hops)
	return hops, nil
}

// waitHops polls BIRD every 5ms until its next hops for the VIP are want, and
// returns how long that took.
func (b birdLab) waitHops(t *testing.T, timeout time.Duration, what string, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		hops, err := b.nextHops()
		if err == nil && slices.Equal(hops, want) {
			return time.Since(start)
		}
		last = fmt.Sprint(hops, err)
		if time.Since(start) > timeout {
			t.Fatalf("%s: BIRD's next hops for %s after %s: %s, want %v", what, birdVIP, timeout, last, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inBackend runs a command in the backend's namespace.
func (b birdLab) inBackend(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", b.BackendNS}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v: %s", args, b.BackendNS, err, out)
	}
}

// grActive says BIRD holds our routes through a graceful restart.
func (b birdLab) grActive() bool {
	out, _ := b.birdc("show protocols all gw_ibgp")
	return strings.Contains(out, "Neighbor graceful restart active")
}

// runInside re-executes t inside the gateway namespace; it fails unless the
// inner half passed.
func (b birdLab) runInside(t *testing.T) {
	t.Helper()
	info, _ := json.Marshal(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", b.GWNS, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envInner+"="+t.Name(), envLabDir+"="+string(info))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", b.GWNS, out)
	if err != nil {
		t.Fatalf("inner test: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("inner test did not pass")
	}
}

// inner returns the lab when this process is the inner half of t.
func inner(t *testing.T) (birdLab, bool) {
	if os.Getenv(envInner) != t.Name() {
		return birdLab{}, false
	}
	var b birdLab
	if err := json.Unmarshal([]byte(os.Getenv(envLabDir)), &b); err != nil {
		t.Fatal(err)
	}
	return b, true
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
	return fmt.Sprintf(`version: 1
gateways:
  - name: gw1
    p4runtime: %s
    device_id: 1
    bgp_next_hop: %s
    ports:
      2: {interface: p2, mac: "02:00:00:00:01:02"}
  - name: gw2
    p4runtime: %s
    device_id: 1
    bgp_next_hop: %s
    ports:
      2: {interface: p2, mac: "02:00:00:00:02:02"}
vips:
  - {name: vip, id: 1, address: %s, default_pool: base}
pools:
  - name: base
    id: 1
    cluster: base
    backends:
      - {name: base-1, id: 11, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}
`, addr1, birdGW1, addr2, birdGW2, birdVIP)
}
