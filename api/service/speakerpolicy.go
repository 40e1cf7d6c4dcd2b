package service

// WatchSpeakerPolicy: the policy of each gateway's speaker
// (controller/bgp/announce.GatewaySpeakers), streamed.

import (
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
)

// speakerPolicyPoll bounds how long a stream waits without a wake-up before it
// re-reads the policy (the intent or a drain may change before the BGP loop
// has started).
const speakerPolicyPoll = time.Second

// WatchSpeakerPolicy implements graygwv1.ControllerServer.
func (s *Service) WatchSpeakerPolicy(req *graygwv1.WatchSpeakerPolicyRequest, srv graygwv1.Controller_WatchSpeakerPolicyServer) error {
	if s.bgp == nil {
		return status.Error(codes.FailedPrecondition, "this controller runs without BGP: speakers on the gateways need a bgp: section with announceFrom: gateways")
	}
	pub, ok := s.bgp.GatewaySpeakers()
	if !ok {
		return status.Error(codes.FailedPrecondition,
			"this controller announces the VIPs itself: speakers on the gateways need bgp.announceFrom: gateways in its config")
	}
	ctx := srv.Context()
	var sent *bgp.Policy
	for {
		wake, engineWake := pub.Changed(), s.cfg.Engine.Changed()
		_, version := s.cfg.Engine.Intent()
		p, err := s.bgp.Policy(req.GetGateway())
		switch {
		case errors.Is(err, bgp.ErrUnknownGateway):
			return status.Errorf(codes.NotFound, "gateway %q: the intent (version %d) names no such gateway", req.GetGateway(), version)
		case err != nil:
			return status.Errorf(codes.Internal, "policy of gateway %s: %v", req.GetGateway(), err)
		}
		if sent == nil || !sent.Equal(p) {
			if err := srv.Send(speakerPolicyProto(p, version)); err != nil {
				return err
			}
			sent = &p
		}
		select {
		case <-wake:
		case <-engineWake:
		case <-time.After(speakerPolicyPoll):
		case <-ctx.Done():
			return nil
		case <-s.stopped:
			return status.Error(codes.Unavailable, "the controller is shutting down")
		}
	}
}

func speakerPolicyProto(p bgp.Policy, version uint64) *graygwv1.SpeakerPolicy {
	out := &graygwv1.SpeakerPolicy{Gateway: p.Gateway, NextHop: p.NextHop.String(), Drained: p.Drained, IntentVersion: version}
	if p.NextHopV6.IsValid() {
		out.NextHopV6 = p.NextHopV6.String()
	}
	for _, v := range p.VIPs {
		sv := &graygwv1.SpeakerVIP{Name: v.Name, Address: v.Address.String(), Communities: v.Attributes.Communities,
			Med: v.Attributes.MED, LocalPref: v.Attributes.LocalPref}
		for _, r := range v.Withdraw {
			sv.Withdraw = append(sv.Withdraw, string(r))
		}
		out.Vips = append(out.Vips, sv)
	}
	return out
}
