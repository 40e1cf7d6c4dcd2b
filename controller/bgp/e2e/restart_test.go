package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/lab"
)

// TestControllerRestartKeepsRoutes: a speaker that dies without withdrawing
// (SIGKILL: no NOTIFICATION, the kernel just closes the TCP sessions) leaves
// its routes at BIRD, marked stale, for the restart time; a new speaker
// refreshes them, and the one path the new speaker no longer announces goes
// at its End-of-RIB. The path announced throughout never leaves BIRD's table.
// An intentional shutdown (SIGTERM: Stop with withdraw) then withdraws all.
//
// The eBGP session is made to come up about 2s after the iBGP one (the
// speaker is passive on it and BIRD waits 3s before dialling). By then GoBGP
// has finished its restart on the iBGP session and cleared the restart bits on
// every neighbor; the speaker's restart guard puts them back, which the test
// checks in the OPEN BIRD received (Forwarding State bit for IPv4).
func TestControllerRestartKeepsRoutes(t *testing.T) {
	p := newPeerLab(t)
	prefix := vip + "/32"
	a := p.startSpeakerChild(t, "speaker-a", healthyInput())
	birdlab.WaitFor(t, 20*time.Second, "first speaker's paths at BIRD", p.HopsAre(prefix, "gw_ibgp", gw1Addr, gw2Addr))
	birdlab.WaitFor(t, 5*time.Second, "first speaker's paths at BIRD (eBGP)", p.HopsAre(prefix, "gw_ebgp", gw1Addr, gw2Addr))
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		out, _ := p.Birdc("show protocols all " + proto)
		if _, theirs, _ := strings.Cut(out, "Neighbor capabilities"); !strings.Contains(theirs, "Graceful restart") {
			t.Fatalf("%s: the speaker did not advertise graceful restart:\n%s", proto, out)
		}
	}

	// The crash.
	if err := lab.Stop(a, syscall.SIGKILL, 2*time.Second); err == nil {
		t.Log("speaker exited cleanly; want it killed")
	}
	killed := time.Now()
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		birdlab.WaitFor(t, 5*time.Second, "BIRD to hold the paths as stale ("+proto+")", p.heldStale(prefix, proto, gw1Addr, gw2Addr))
	}
	out, _ := p.Birdc("show protocols all gw_ibgp")
	routes, _ := p.Birdc("show route " + prefix)
	t.Logf("BIRD after the crash:\n%s\n%s", out, routes)
	// Still there well after BIRD noticed and retried the session.
	time.Sleep(3 * time.Second)
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		if ok, state := p.heldStale(prefix, proto, gw1Addr, gw2Addr)(); !ok {
			t.Fatalf("%s 3s after the crash: %s", proto, state)
		}
	}

	// The restart: gw1 was drained meanwhile, gw2 is still healthy.
	in := healthyInput()
	in.Gateways[0].Drained = true
	started := time.Now()
	b := p.startSpeakerChild(t, "speaker-b", in)
	gap := map[string][]string{}
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		birdlab.WaitFor(t, 20*time.Second, "refreshed paths, graceful restart over ("+proto+")", p.refreshed(prefix, proto, gw2Addr, gap))
	}
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		// The new speaker's OPEN carried the Forwarding State bit for IPv4:
		// that is what made BIRD keep the stale routes until our End-of-RIB.
		out, _ := p.Birdc("show protocols all " + proto)
		_, theirs, _ := strings.Cut(out, "Neighbor capabilities")
		gr, _, _ := strings.Cut(theirs, "4-octet AS numbers")
		if !strings.Contains(gr, "AF preserved: ipv4") {
			t.Errorf("%s: the new speaker's OPEN lacks the Forwarding State bit:\n%s", proto, out)
		}
	}
	if len(gap) > 0 {
		t.Errorf("the path through gw2 left BIRD's table during the restart: %v", gap)
	}
	routes, _ = p.Birdc("show route all " + prefix)
	t.Logf("speaker down for %s; BIRD refreshed %s after the new speaker started:\n%s",
		started.Sub(killed).Round(time.Millisecond), time.Since(started).Round(time.Millisecond), routes)
	birdLog, _ := os.ReadFile(filepath.Join(p.Dir, "bird.log"))
	var grLines []string
	for _, line := range strings.Split(string(birdLog), "\n") {
		if strings.Contains(strings.ToLower(line), "graceful restart") || strings.Contains(line, "established") {
			grLines = append(grLines, line)
		}
	}
	t.Logf("BIRD's log of the restart:\n%s", strings.Join(grLines, "\n"))
	for _, proto := range []string{"gw_ibgp", "gw_ebgp"} {
		if !strings.Contains(string(birdLog), proto+": Neighbor graceful restart done") {
			t.Errorf("%s: BIRD did not log the end of the graceful restart", proto)
		}
	}

	// An intentional shutdown withdraws, graceful restart or not.
	stop := time.Now()
	if err := lab.Stop(b, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("speaker shutdown: %v", err)
	}
	birdlab.WaitFor(t, 5*time.Second, "no path after the shutdown (iBGP)", p.HopsAre(prefix, "gw_ibgp"))
	birdlab.WaitFor(t, 5*time.Second, "no path after the shutdown (eBGP)", p.HopsAre(prefix, "gw_ebgp"))
	t.Logf("SIGTERM (Stop with withdraw) to empty BIRD table: %s", time.Since(stop).Round(time.Millisecond))
}

// TestInProcessStopWithoutWithdraw documents why a restart must not call Stop:
// GoBGP closes the sessions with a Cease NOTIFICATION, and BIRD 2.0 (no RFC
// 8538) flushes the routes at once instead of keeping them stale.
func TestInProcessStopWithoutWithdraw(t *testing.T) {
	info, ok := inside(t, newPeerLab)
	if !ok {
		return
	}
	prefix := vip + "/32"
	s, _ := startSpeaker(t, speakerConfig(), healthyInput())
	birdlab.WaitFor(t, 20*time.Second, "both sessions established", sessionsUp(s))
	birdlab.WaitFor(t, 5*time.Second, "paths at BIRD", info.HopsAre(prefix, "gw_ibgp", gw1Addr, gw2Addr))
	start := time.Now()
	if err := s.Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	took := birdlab.WaitFor(t, 5*time.Second, "BIRD to flush after the NOTIFICATION", info.HopsAre(prefix, "gw_ibgp"))
	out, _ := info.Birdc("show protocols all gw_ibgp")
	t.Logf("BIRD flushed %s after Stop(withdraw=false):\n%s", took.Round(time.Millisecond), out)
	_ = start
}

// heldStale is a birdlab.WaitFor condition: BIRD is in graceful restart for protocol
// and still has exactly the next hops want for prefix.
func (p *peerLab) heldStale(prefix, protocol string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		hops, err := p.NextHops(prefix, protocol)
		if err != nil {
			return false, err.Error()
		}
		gr, err := p.GRActive(protocol)
		if err != nil {
			return false, err.Error()
		}
		return gr && slices.Equal(hops, want), fmt.Sprintf("%v graceful restart active=%v", hops, gr)
	}
}

// refreshed is a birdlab.WaitFor condition: BIRD's graceful restart for
// protocol is over and kept is its one next hop for prefix. A poll that finds
// kept missing records the hops it saw in gap[protocol]: the path kept must
// never leave BIRD's table.
func (p *peerLab) refreshed(prefix, protocol, kept string, gap map[string][]string) func() (bool, string) {
	return func() (bool, string) {
		hops, err := p.NextHops(prefix, protocol)
		if err != nil {
			return false, err.Error()
		}
		if !slices.Contains(hops, kept) {
			gap[protocol] = hops
		}
		gr, err := p.GRActive(protocol)
		if err != nil {
			return false, err.Error()
		}
		return !gr && slices.Equal(hops, []string{kept}), fmt.Sprintf("%v graceful restart active=%v", hops, gr)
	}
}
