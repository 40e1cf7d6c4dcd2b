package service_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
)

// TestSpeakerPolicyStream: with speakers on the gateways, the controller
// streams each gateway's policy: at once, again at a drain and an undrain (and
// only then), and with the controller's view of the gateway left out: a
// gateway whose agent the controller lost keeps its VIP allowed.
func TestSpeakerPolicyStream(t *testing.T) {
	a := startStoppableAgent(t)
	c := startControllerWith(t, ctlOpts{bgp: &announce.Config{Speaker: announce.NewGatewaySpeakers(), StartWait: time.Second,
		VIPs: map[string]bgp.Attributes{"vpc": {Communities: []string{"65000:100"}, MED: u32(50)}}}})
	if _, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(a.Addr), Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Service.StartBGP(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stream, err := c.Client.WatchSpeakerPolicy(ctx(t), &graygwv1.WatchSpeakerPolicyRequest{Gateway: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	recv := func(what string) *graygwv1.SpeakerPolicy {
		t.Helper()
		p, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return p
	}
	p := recv("first policy")
	if p.GetGateway() != "gw1" || p.GetNextHop() != "10.1.0.1" || p.GetDrained() || len(p.GetVips()) != 1 || p.GetIntentVersion() == 0 {
		t.Fatalf("first policy: %v", p)
	}
	v := p.GetVips()[0]
	if v.GetName() != "vpc" || v.GetAddress() != "10.255.0.1" || v.GetMed() != 50 ||
		!slices.Equal(v.GetCommunities(), []string{"65000:100"}) || len(v.GetWithdraw()) != 0 {
		t.Fatalf("VIP: %v", v)
	}

	if _, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if p := recv("after the drain"); !p.GetDrained() {
		t.Fatalf("after the drain: %v", p)
	}
	// The controller loses the agent: nothing to send (its view is no part of
	// the policy); the undrain is the next message.
	a.Stop()
	time.Sleep(300 * time.Millisecond)
	if _, err := c.Client.UndrainGateway(ctx(t), &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if p := recv("after the undrain"); p.GetDrained() || len(p.GetVips()) != 1 || len(p.GetVips()[0].GetWithdraw()) != 0 {
		t.Fatalf("after the undrain, with the agent lost: %v", p)
	}

	nf, err := c.Client.WatchSpeakerPolicy(ctx(t), &graygwv1.WatchSpeakerPolicyRequest{Gateway: "gw9"})
	if err == nil {
		_, err = nf.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown gateway: %v, want NotFound", err)
	}

	// A controller that speaks BGP itself has no policy to stream.
	c2 := startControllerWith(t, ctlOpts{bgp: bgpConfig(newSpeaker(t))})
	s2, err := c2.Client.WatchSpeakerPolicy(ctx(t), &graygwv1.WatchSpeakerPolicyRequest{Gateway: "gw1"})
	if err == nil {
		_, err = s2.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("controller speaker: %v, want FailedPrecondition", err)
	}
}
