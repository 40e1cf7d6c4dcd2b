package speaker

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/store"
)

// policyLeader is a controller that leads: it sends one policy and holds
// the stream open.
type policyLeader struct {
	graygwv1.UnimplementedControllerServer
	calls chan string
}

func (l *policyLeader) WatchSpeakerPolicy(req *graygwv1.WatchSpeakerPolicyRequest, srv graygwv1.Controller_WatchSpeakerPolicyServer) error {
	l.calls <- req.GetGateway()
	if err := srv.Send(&graygwv1.SpeakerPolicy{Gateway: req.GetGateway(), NextHop: "10.1.0.1", IntentVersion: 4,
		Vips: []*graygwv1.SpeakerVIP{{Name: "vpc", Address: "10.255.0.1"}}}); err != nil {
		return err
	}
	<-srv.Context().Done()
	return nil
}

// serveUnix serves gs on a new unix socket and returns its address.
func serveUnix(t *testing.T, gs *grpc.Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return "unix://" + sock
}

// TestPolicyStreamFollowsTheLeader: a speaker given only a standby
// controller replica's address gets its policy from the leader the standby
// names (as the CLI follows it).
func TestPolicyStreamFollowsTheLeader(t *testing.T) {
	lead := &policyLeader{calls: make(chan string, 4)}
	gs := grpc.NewServer()
	graygwv1.RegisterControllerServer(gs, lead)
	leaderAddr := serveUnix(t, gs)
	sb := service.NewStandby(store.NewMemory(), func(context.Context) (string, uint64, string, bool) {
		return "ctl-1", 3, leaderAddr, true
	}, nil)
	standbyAddr := serveUnix(t, sb.NewServer(service.UnixCredentials()))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type policy struct {
		p       bgp.Policy
		version uint64
		from    string
	}
	got := make(chan policy, 1)
	go ControllerConfig{Addresses: []string{standbyAddr}}.watchOne(ctx, standbyAddr, "gw1", func(p bgp.Policy, v uint64, from string) {
		got <- policy{p, v, from}
	})
	select {
	case p := <-got:
		if p.from != leaderAddr || p.version != 4 || p.p.Gateway != "gw1" || len(p.p.VIPs) != 1 {
			t.Fatalf("policy %+v, want gw1's from the leader %s at version 4", p, leaderAddr)
		}
	case <-ctx.Done():
		t.Fatal("no policy through the standby")
	}
	if gw := <-lead.calls; gw != "gw1" {
		t.Fatalf("the leader was asked for %q", gw)
	}
}
