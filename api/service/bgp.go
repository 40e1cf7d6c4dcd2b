package service

// BGP: the announcements and drains are controller/bgp/announce's; here they
// are mapped onto the API.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/engine"
)

// StartBGP starts the BGP speaker (announce.Announcer.Start).
func (s *Service) StartBGP(ctx context.Context) error {
	if s.bgp == nil {
		return fmt.Errorf("%w: no BGP configured", ErrConfig)
	}
	return s.bgp.Start(ctx)
}

// StopBGP stops re-deciding, and with withdraw stops the speaker after
// withdrawing every path (announce.Announcer.Stop).
func (s *Service) StopBGP(ctx context.Context, withdraw bool) error {
	if s.bgp == nil {
		return nil
	}
	return s.bgp.Stop(ctx, withdraw)
}

var errNoBGP = status.Error(codes.Unimplemented,
	"this controller runs without BGP (give its config file a bgp: section to announce the VIPs)")

// BGPStatus implements graygwv1.ControllerServer.
func (s *Service) BGPStatus(ctx context.Context, _ *graygwv1.BGPStatusRequest) (*graygwv1.BGPStatusResponse, error) {
	if s.bgp == nil {
		return nil, errNoBGP
	}
	return s.bgpStatus(ctx), nil
}

// bgpStatus reads the speaker and explains its paths.
func (s *Service) bgpStatus(ctx context.Context) *graygwv1.BGPStatusResponse {
	cfg := s.bgp.Config()
	sp, err := cfg.Speaker.Status(ctx)
	out := &graygwv1.BGPStatusResponse{Asn: sp.ASN, RouterId: sp.RouterID, HealthCheck: cfg.HealthCheck}
	if err != nil {
		out.Error = err.Error()
		started, stopped := s.bgp.State()
		switch {
		case errors.Is(err, bgp.ErrNotStarted) && !started && !stopped:
			out.Error = fmt.Sprintf("the BGP speaker is not started yet: it waits (at most %s) for the gateways' P4Runtime sessions before its first decision", cfg.StartWait)
		case errors.Is(err, bgp.ErrStopped) || stopped:
			out.Error = "the BGP speaker is stopped (the controller is shutting down)"
		}
	}
	slices.SortFunc(sp.Neighbors, func(a, b bgp.NeighborStatus) int { return strings.Compare(a.Address, b.Address) })
	for _, n := range sp.Neighbors {
		out.Neighbors = append(out.Neighbors, &graygwv1.BGPNeighbor{Address: n.Address, Asn: n.ASN, State: n.State, Up: n.Up,
			Uptime: durationpb.New(n.Uptime), Received: n.Received, Accepted: n.Accepted, Advertised: n.Advertised,
			GracefulRestart: n.GracefulRestart})
	}

	in, _ := s.cfg.Engine.Intent()
	st := statusByName(s.cfg.Engine.Status())
	drains := s.bgp.Drains()
	vipName := map[netip.Addr]string{}
	gwDetail := map[string]string{}
	if in != nil {
		for _, v := range in.VIPs {
			vipName[v.Address] = v.Name
		}
		for _, g := range in.Gateways {
			gs := st[g.Name]
			d, drained := drains[g.Name]
			bg := &graygwv1.BGPGateway{Name: g.Name, NextHop: g.BGPNextHop.String(), P4RuntimeConnected: gs.Connected && gs.Primary,
				Healthy: s.bgp.Healthy(gs), Drained: drained, Detail: announce.GatewayDetail(g.Name, gs, cfg.HealthCheck)}
			if drained {
				bg.DrainedBy, bg.DrainedAt, bg.DrainReason = d.Actor, timestamppb.New(d.Time), d.Reason
			}
			gwDetail[g.Name] = bg.Detail
			out.Gateways = append(out.Gateways, bg)
		}
	}
	for _, a := range sp.Announced {
		p := bgpPath(a.Path.PathKey, vipName[a.VIP], a.Gateway, a.Attributes, a.Since)
		p.Detail = fmt.Sprintf("announced: gateway %s %s, not drained; %s", a.Gateway, gwDetail[a.Gateway], s.bgp.PoolDetail(in, vipName[a.VIP]))
		out.Announced = append(out.Announced, p)
	}
	for _, w := range sp.Withdrawn {
		p := bgpPath(w.PathKey, vipName[w.VIP], w.Gateway, cfg.VIPs[vipName[w.VIP]], w.Since)
		var why []string
		for _, r := range w.Reasons {
			p.Reasons = append(p.Reasons, string(r))
			switch r {
			case bgp.ReasonP4RuntimeDisconnected, bgp.ReasonHealthCheckFailed:
				why = append(why, string(r)+": "+gwDetail[w.Gateway])
			case bgp.ReasonDrained:
				d := drains[w.Gateway]
				why = append(why, fmt.Sprintf("drained by %s at %s%s", d.Actor, d.Time.Format(time.RFC3339), reasonSuffix(d.Reason)))
			case bgp.ReasonNoHealthyBackend:
				why = append(why, "no-healthy-backend: "+s.bgp.PoolDetail(in, vipName[w.VIP]))
			default:
				why = append(why, string(r))
			}
		}
		p.Detail = strings.Join(why, "; ")
		out.Withdrawn = append(out.Withdrawn, p)
	}
	return out
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func bgpPath(k bgp.PathKey, name, gateway string, a bgp.Attributes, since time.Time) *graygwv1.BGPPath {
	p := &graygwv1.BGPPath{Vip: k.VIP.String(), VipName: name, NextHop: k.NextHop.String(), Gateway: gateway,
		Communities: a.Communities, Med: a.MED, LocalPref: a.LocalPref}
	if !since.IsZero() {
		p.Since = timestamppb.New(since)
	}
	return p
}

func statusByName(sts []engine.GatewayStatus) map[string]engine.GatewayStatus {
	m := make(map[string]engine.GatewayStatus, len(sts))
	for _, st := range sts {
		m[st.Name] = st
	}
	return m
}

// DrainGateway implements graygwv1.ControllerServer.
func (s *Service) DrainGateway(ctx context.Context, req *graygwv1.DrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return s.setDrain(ctx, req.GetGateway(), true, req.GetActor(), req.GetReason())
}

// UndrainGateway implements graygwv1.ControllerServer.
func (s *Service) UndrainGateway(ctx context.Context, req *graygwv1.UndrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return s.setDrain(ctx, req.GetGateway(), false, req.GetActor(), req.GetReason())
}

func (s *Service) setDrain(ctx context.Context, name string, drain bool, actor, reason string) (*graygwv1.DrainGatewayResponse, error) {
	if s.bgp == nil {
		return nil, errNoBGP
	}
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "gateway: required (a gateway name of the intent)")
	}
	changed, err := s.bgp.SetDrain(ctx, name, drain, actorOf(ctx, actor), reason)
	switch {
	case errors.Is(err, announce.ErrStopped):
		return nil, status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, announce.ErrUnknownGateway):
		return nil, status.Error(codes.NotFound, err.Error())
	case errors.Is(err, announce.ErrSpeaker):
		return nil, status.Error(codes.Internal, err.Error())
	case err != nil:
		return nil, storeError(err)
	}
	return &graygwv1.DrainGatewayResponse{Changed: changed, Bgp: s.bgpStatus(ctx)}, nil
}
