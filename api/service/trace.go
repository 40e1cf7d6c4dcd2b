package service

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/trace"
)

// Trace implements graygwv1.ControllerServer: each gateway's entries are
// read back over P4Runtime and the flow traced over them (controller/trace).
func (s *Service) Trace(ctx context.Context, req *graygwv1.TraceRequest) (*graygwv1.TraceResponse, error) {
	q, err := convert.TraceQueryFrom(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	names := s.cfg.Engine.Gateways()
	if gw := req.GetGateway(); gw != "" {
		if !slices.Contains(names, gw) {
			return nil, status.Errorf(codes.NotFound, "no gateway %q in the current intent", gw)
		}
		names = []string{gw}
	}
	if len(names) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "no intent in force: no gateway to trace through")
	}
	out := &graygwv1.TraceResponse{}
	unknownVIP := 0
	for _, n := range names {
		g, err := s.traceGateway(ctx, n, q)
		if errors.Is(err, trace.ErrQuery) {
			unknownVIP++
		}
		if err != nil {
			g = trace.Gateway{Gateway: n, Error: err.Error()}
		}
		out.Gateways = append(out.Gateways, convert.GatewayTrace(&g))
	}
	if unknownVIP == len(names) {
		return nil, status.Errorf(codes.NotFound, "no VIP named %q on any gateway (graygw get lists the intent's VIPs)", q.VIP)
	}
	return out, nil
}

func (s *Service) traceGateway(ctx context.Context, name string, q *trace.Query) (trace.Gateway, error) {
	rb, err := s.cfg.Engine.ReadBack(ctx, name)
	if err != nil {
		return trace.Gateway{}, err
	}
	return trace.FromReadBack(rb, q)
}
