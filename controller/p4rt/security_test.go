package p4rt_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math"
	"net"
	"path/filepath"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/internal/testpki"
)

// rogue arbitrates on its own connection with the given election id and stays
// until the returned function is called.
func rogue(t *testing.T, addr string, id *p4v1.Uint128) func() {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	st, err := p4v1.NewP4RuntimeClient(conn).StreamChannel(sctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: &p4v1.MasterArbitrationUpdate{
		DeviceId: 1, ElectionId: id}}})
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	leave := func() { cancel(); conn.Close() }
	t.Cleanup(leave)
	return leave
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRoguePrimaryReportedAndElectionIDNeverWraps: the rogue client
// with election id 2^128-1. The displaced controller knows at once, from the
// arbitration update (Rival, an Error log), not at its next pass; when the rogue
// leaves it cannot go above 2^128-1 and says so, instead of wrapping its id to 0.
func TestRoguePrimaryReportedAndElectionIDNeverWraps(t *testing.T) {
	a := startAgent(t, "127.0.0.1:0")
	c := dial(t, a.addr, 10)
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if id, n := c.Rival(); id != nil || n != 0 {
		t.Fatalf("rival before any: %v, %d", id, n)
	}
	max := &p4v1.Uint128{High: math.MaxUint64, Low: math.MaxUint64}
	leave := rogue(t, a.addr, max)
	eventually(t, "the displaced controller sees the rival", func() bool {
		id, n := c.Rival()
		return !c.IsPrimary() && n == 1 && id.GetHigh() == math.MaxUint64 && id.GetLow() == math.MaxUint64
	})
	leave()
	eventually(t, "the controller reports the exhausted election id", c.ElectionExhausted)
	if c.IsPrimary() {
		t.Fatal("primary above 2^128-1")
	}
	if id, _ := c.Rival(); id != nil {
		t.Fatalf("rival still reported after it left: %v", id)
	}
}

// TestUnixSocketWithMutualTLS: the client reaches an agent on a unix socket
// (unix:///path) with mutual TLS, becomes primary and writes.
func TestUnixSocketWithMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir)
	cert := func(name string, usage x509.ExtKeyUsage) tls.Certificate { return ca.Cert(t, name, usage) }
	pool := ca.Pool

	srv, err := server.New(server.Config{P4Info: info(t), Dataplane: dataplane.NewMemory(dataplane.Limits{})})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(srv.GRPCOptions(), grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert("agent", x509.ExtKeyUsageServerAuth)},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13})))
	gs := grpc.NewServer(opts...)
	p4v1.RegisterP4RuntimeServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "agent", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{cert("controller", x509.ExtKeyUsageClientAuth)}})
	c, err := p4rt.Dial("unix://"+sock, p4rt.Options{DeviceID: 1, ElectionID: 5, TLS: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitPrimary(ctx(t)); err != nil {
		t.Fatal(err)
	}
	in := info(t)
	if _, err := c.EnsurePipeline(ctx(t), in.P4Info(), nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx(t), []*p4v1.Update{tenantInsert(t, in, 7, 1)}, 0); err != nil {
		t.Fatalf("write over unix+mTLS: %v", err)
	}
}
