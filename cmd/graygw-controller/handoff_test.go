package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/internal/stack"
)

// TestHandoffKeepsTheSocketAcrossServers: a client of the standby API whose
// call is made while the standby server has stopped and the leader's is not
// serving yet is answered by the leader's server (a fail-fast call: before,
// the socket was closed and bound again, the call failed UNAVAILABLE and gRPC
// waited its 1 s reconnect backoff; and a call racing the server's Stop failed
// "error reading from server: EOF"). The socket file stays until Close.
func TestHandoffKeepsTheSocketAcrossServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	lis, err := service.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandoff(lis)
	serve := func(st healthpb.HealthCheckResponse_ServingStatus) *grpc.Server {
		gs := grpc.NewServer()
		hs := health.NewServer()
		hs.SetServingStatus("", st)
		healthpb.RegisterHealthServer(gs, hs)
		go gs.Serve(h.listener())
		return gs
	}
	standby := serve(healthpb.HealthCheckResponse_NOT_SERVING)
	conn := stack.Conn(t, "unix://"+path)
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("standby: %v %v", r, err)
	}

	standby.GracefulStop() // as handOver does, waited for here
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the socket is gone once the standby server stopped: %v", err)
	}
	answered := make(chan error, 1)
	var got healthpb.HealthCheckResponse_ServingStatus
	go func() {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}) // fail fast: no WaitForReady
		got = r.GetStatus()
		answered <- err
	}()
	time.Sleep(300 * time.Millisecond) // the handover: nobody serves
	leader := serve(healthpb.HealthCheckResponse_SERVING)
	defer leader.Stop()
	if err := <-answered; err != nil || got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("a call made in the handover: %v %v, want the leader's SERVING", got, err)
	}

	leader.Stop()
	h.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket file after Close: %v", err)
	}
}
