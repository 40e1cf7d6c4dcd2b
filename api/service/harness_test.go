package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/p4src"
)

func projectInfo(t testing.TB) *p4info.Info {
	t.Helper()
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("GRAYGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startAgent serves the XDP agent's P4Runtime server over a Memory dataplane on
// a loopback port.
func startAgent(t *testing.T) (string, *dataplane.Memory) {
	t.Helper()
	mem := dataplane.NewMemory(dataplane.Limits{})
	srv, err := server.New(server.Config{DeviceID: 1, P4Info: projectInfo(t), Dataplane: mem, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	p4v1.RegisterP4RuntimeServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(func() { gs.Stop(); srv.Close() })
	return lis.Addr().String(), mem
}

// controller is the service on a unix socket in a temporary directory, with a
// gRPC client on it.
type controller struct {
	svc    *service.Service
	eng    *engine.Engine
	store  store.Store
	socket string
	c      graygwv1.ControllerClient
	stop   func() // stops serving and closes the engine and the store (idempotent)
}

// ctlOpts vary startControllerWith.
type ctlOpts struct {
	dir   string // the store's and the socket's directory; "" = a new one
	bgp   *announce.Config
	probe *service.ProbeHost
	// p4infoFor is the engine's Config.P4InfoFor (nil: none).
	p4infoFor func(gateway string) *p4info.Info
}

func startController(t *testing.T) *controller { return startControllerWith(t, ctlOpts{}) }

func startControllerWith(t *testing.T, o ctlOpts) *controller {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.OpenBolt(filepath.Join(dir, "graygw.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{P4Info: projectInfo(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Store: st, Logger: logger(t), P4InfoFor: o.p4infoFor})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: st, Engine: eng, Logger: logger(t), WaitTimeout: 30 * time.Second,
		BGP: o.bgp, Probe: o.probe})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	lis, err := service.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := svc.NewServer(service.UnixCredentials())
	go gs.Serve(lis)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			conn.Close()
			svc.Drain()
			if o.bgp != nil {
				svc.StopBGP(context.Background(), true)
			}
			gs.Stop()
			eng.Close(context.Background())
			st.Close()
		})
	}
	t.Cleanup(stop)
	return &controller{svc: svc, eng: eng, store: st, socket: sock, c: graygwv1.NewControllerClient(conn), stop: stop}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// intentYAML is the test intent: one gateway at addr, a VIP, a base and a gray
// pool, a tenant with two VNIs and a VM rule.
func intentYAML(addr string) string {
	return fmt.Sprintf(`# graygw test intent
version: 1
gateways:
  - name: gw1
    p4runtime: %s   # the agent under test
    device_id: 1
    bgp_next_hop: 10.1.0.1
    ports:
      1: {interface: p1, mac: "02:00:00:00:01:01"}
      2: {interface: p2, mac: "02:00:00:00:01:02"}
vips:
  - name: vpc
    id: 1
    address: 10.255.0.1
    default_pool: base
pools:
  - name: base
    id: 1
    cluster: base
    backends:
      - {name: base-1, id: 11, underlay_ip: 10.2.0.11, mac: "02:00:00:00:20:11", port: 2}
      - {name: base-2, id: 12, underlay_ip: 10.2.0.12, mac: "02:00:00:00:20:12", port: 2}
  - name: gray
    id: 2
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {name: gray-1, id: 21, underlay_ip: 10.3.0.21, mac: "02:00:00:00:30:21", port: 2}
tenants:
  - name: acme
    id: 7
    vnis: [5001, 5002]
gray_rules:
  # the first VM moved
  - name: vm-10.0.0.5
    match: {vip: vpc, vni: 5001, src: 10.0.0.5}
    pool: gray
`, addr)
}

func opts(actor string) *graygwv1.ChangeOptions {
	return &graygwv1.ChangeOptions{Actor: actor, Wait: true}
}
