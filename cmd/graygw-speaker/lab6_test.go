package main

import (
	"context"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/birdlab"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/topo"
)

// hops6Are is a WaitFor condition: BIRD's next hops for the IPv6 VIP's /128,
// over both sessions, are want.
func (s *speakerLab) hops6Are(want ...string) func() (bool, string) {
	return s.hopsForAre(topo.VIP6.String()+"/128", want...)
}

// TestSpeakersAnnounceIPv6VIPs: the speakers beside two real XDP gateways
// announce the intent's IPv6 VIP (read from their agents' vip_v6) as a /128
// with each gateway's bgp_next_hop_v6, MP-BGP over their IPv4 sessions,
// beside the IPv4 VIP; a drain (the controller's policy) withdraws both of a
// gateway's paths; with the controller killed, a gateway whose agent is
// killed loses both its paths, IPv6 too, while the other keeps them.
func TestSpeakersAnnounceIPv6VIPs(t *testing.T) {
	s := buildSpeakerLab6(t)
	s.startController()
	s.startSpeakers()
	took := birdlab.WaitFor(t, 60*time.Second, "both gateways announce the IPv6 VIP", s.hops6Are(gw1Hop6, gw2Hop6))
	birdlab.WaitFor(t, 5*time.Second, "both gateways announce the IPv4 VIP", s.hopsAre(gw1Hop, gw2Hop))
	t.Logf("both gateways' IPv6 paths at BIRD %s after the speakers started", took.Round(time.Millisecond))
	rs, err := s.bird.Sock.Routes(topo.VIP6.String()+"/128", "gw1")
	if err != nil || len(rs) != 1 || rs[0].Via != gw1Hop6 {
		t.Fatalf("gw1's IPv6 route at BIRD: %+v %v, want via %s on the link", rs, err, gw1Hop6)
	}

	api := stack.Dial(t, s.sock())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.DrainGateway(ctx, &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("drain gw1 -> its IPv6 path gone at BIRD after %s",
		birdlab.WaitFor(t, 5*time.Second, "gw1 drained (IPv6)", s.hops6Are(gw2Hop6)).Round(time.Millisecond))
	birdlab.WaitFor(t, 5*time.Second, "gw1 drained (IPv4)", s.hopsAre(gw2Hop))
	if _, err := api.UndrainGateway(ctx, &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	birdlab.WaitFor(t, 5*time.Second, "gw1 undrained", s.hops6Are(gw1Hop6, gw2Hop6))

	s.kill("controller")
	s.kill("agent-gw1")
	took = birdlab.WaitFor(t, 5*time.Second, "gw1's agent killed, no controller (IPv6)", s.hops6Are(gw2Hop6))
	birdlab.WaitFor(t, 5*time.Second, "gw1's agent killed, no controller (IPv4)", s.hopsAre(gw2Hop))
	t.Logf("gw1 agent SIGKILL, no controller -> gw1's IPv6 path gone at BIRD after %s", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("withdrawal after the agent loss took %s (interval 100ms)", took)
	}
}
