package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// withdrawBudget is the most a withdrawal may take to reach BIRD's table.
const withdrawBudget = time.Second

// TestAnnounceToBIRD: the VIP reaches BIRD once per healthy gateway with the
// right next hop and attributes over iBGP and eBGP; a drain and a P4Runtime
// loss withdraw the path within withdrawBudget, and it comes back when the
// reason clears; Stop(withdraw) empties BIRD's table.
func TestAnnounceToBIRD(t *testing.T) {
	info, ok := inside(t, newPeerLab)
	if !ok {
		return
	}
	in := healthyInput()
	s, logs := startSpeaker(t, speakerConfig(), in)
	took := birdlab.WaitFor(t, 20*time.Second, "both sessions established", sessionsUp(s))
	t.Logf("sessions established after %s", took.Round(time.Millisecond))
	birdlab.WaitFor(t, 5*time.Second, "iBGP paths at BIRD", info.HopsAre(vip+"/32", "gw_ibgp", gw1Addr, gw2Addr))
	birdlab.WaitFor(t, 5*time.Second, "eBGP paths at BIRD", info.HopsAre(vip+"/32", "gw_ebgp", gw1Addr, gw2Addr))

	// Attributes as BIRD sees them.
	out, _ := info.Birdc("show route all " + vip + "/32")
	t.Logf("BIRD's table:\n%s", out)
	ibgp, err := info.Routes(vip+"/32", "gw_ibgp")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ibgp {
		if r.Via != r.NextHop || r.MED != "50" || r.LocalPref != "300" || r.ASPath != "" ||
			!slices.Equal(r.Community, []string{"(65000,100)", "(65000,200)"}) {
			t.Errorf("iBGP route: %+v", r)
		}
	}
	ebgp, err := info.Routes(vip+"/32", "gw_ebgp")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ebgp {
		// eBGP carries MED and communities, not LOCAL_PREF: BIRD shows its
		// own default (100) there, never our 300.
		if r.Via != r.NextHop || r.MED != "50" || r.LocalPref == "300" || r.ASPath != "65001" ||
			!slices.Equal(r.Community, []string{"(65000,100)", "(65000,200)"}) {
			t.Errorf("eBGP route: %+v", r)
		}
	}

	// Status and metrics.
	st := status(t, s)
	for _, n := range st.Neighbors {
		if !n.Up || n.State != "established" || n.Advertised != 2 || n.Received != 0 || !n.GracefulRestart {
			t.Errorf("neighbor status: %+v", n)
		}
	}
	if len(st.Announced) != 2 || len(st.Withdrawn) != 0 {
		t.Errorf("status: %+v", st)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP graygw_bgp_session_up 1 while the BGP session with the neighbor is established, 0 otherwise.
# TYPE graygw_bgp_session_up gauge
graygw_bgp_session_up{neighbor="10.179.0.2"} 1
graygw_bgp_session_up{neighbor="10.179.0.3"} 1
`), "graygw_bgp_session_up"); err != nil {
		t.Error(err)
	}

	// Drain gw1, lose gw2's P4Runtime, clear both; measure each change until
	// BIRD's table shows it on both sessions.
	withdrawRounds(t, "", 10, applyAndWait(t, s, &in, info.Sock, vip+"/32", "gw_ibgp", "gw_ebgp"), gw1Addr, gw2Addr)
	for _, line := range []string{
		"event=vipWithdrawn vip=198.51.100.10 nexthop=10.179.0.11 gateway=gw1 reason=drained",
		"event=vipWithdrawn vip=198.51.100.10 nexthop=10.179.0.12 gateway=gw2 reason=p4runtime-disconnected",
		"event=vipAnnounced vip=198.51.100.10 nexthop=10.179.0.11 gateway=gw1",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("speaker log lacks %q", line)
		}
	}

	// An intentional shutdown withdraws first, graceful restart or not.
	start := time.Now()
	if err := s.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	birdlab.WaitFor(t, 5*time.Second, "no iBGP path after Stop(withdraw)", info.HopsAre(vip+"/32", "gw_ibgp"))
	birdlab.WaitFor(t, 5*time.Second, "no eBGP path after Stop(withdraw)", info.HopsAre(vip+"/32", "gw_ebgp"))
	t.Logf("Stop(withdraw=true) to empty BIRD table: %s", time.Since(start).Round(time.Millisecond))
}

// applyAndWait returns withdrawRounds' apply: it edits in, has s apply it and
// waits until BIRD's next hops for prefix from each of protocols are the
// hops wanted; it returns how long that took.
func applyAndWait(t *testing.T, s *bgp.Speaker, in *bgp.Input, bird birdlab.Sock, prefix string, protocols ...string) func(what string, edit func(*bgp.Input), want ...string) time.Duration {
	return func(what string, edit func(*bgp.Input), want ...string) time.Duration {
		t.Helper()
		edit(in)
		start := time.Now()
		if _, err := s.Apply(context.Background(), *in); err != nil {
			t.Fatal(err)
		}
		for _, proto := range protocols {
			birdlab.WaitFor(t, 5*time.Second, what+" at BIRD ("+proto+")", bird.HopsAre(prefix, proto, want...))
		}
		return time.Since(start)
	}
}

// withdrawRounds runs rounds of: drain gw1 (only hop2 left), P4Runtime loss
// of gw2 (no path), both reasons cleared (hop1 and hop2 again), each through
// apply (which changes the input, reconciles and waits for BIRD's table);
// logs the figures (label first) and fails t for a withdrawal slower than
// withdrawBudget.
func withdrawRounds(t *testing.T, label string, rounds int, apply func(what string, edit func(*bgp.Input), want ...string) time.Duration, hop1, hop2 string) {
	t.Helper()
	var drains, losses, backs []time.Duration
	for range rounds {
		drains = append(drains, apply("drain gw1", func(in *bgp.Input) { in.Gateways[0].Drained = true }, hop2))
		losses = append(losses, apply("P4Runtime loss on gw2", func(in *bgp.Input) { in.Gateways[1].P4RuntimeConnected = false }))
		backs = append(backs, apply("reasons cleared", func(in *bgp.Input) {
			in.Gateways[0].Drained = false
			in.Gateways[1].P4RuntimeConnected = true
		}, hop1, hop2))
	}
	t.Logf("%swithdraw on drain, %d rounds: %s", label, rounds, summary(drains))
	t.Logf("%swithdraw on P4Runtime loss, %d rounds: %s", label, rounds, summary(losses))
	t.Logf("%sannounce again when the reasons clear, %d rounds: %s", label, rounds, summary(backs))
	for _, d := range append(drains, losses...) {
		if d > withdrawBudget {
			t.Errorf("a withdrawal took %s, budget %s", d, withdrawBudget)
		}
	}
}

// summary formats min / median / max.
func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return "min " + r(s[0]).String() + ", median " + r(s[len(s)/2]).String() + ", max " + r(s[len(s)-1]).String()
}
