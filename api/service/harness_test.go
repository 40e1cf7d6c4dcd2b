package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/internal/stack"
)

func logger(t testing.TB) *slog.Logger { return stack.Logger(t) }

// startAgent serves the XDP agent's P4Runtime server over a Memory dataplane on
// a loopback port.
func startAgent(t *testing.T) (string, *dataplane.Memory) {
	t.Helper()
	a := stack.StartAgent(t, stack.AgentConfig{})
	return a.Addr, a.Memory
}

// controller is the service on a unix socket in a temporary directory, with a
// gRPC client on it.
type controller = stack.Controller

// ctlOpts vary startControllerWith.
type ctlOpts struct {
	dir   string // the store's and the socket's directory; "" = a new one
	bgp   *announce.Config
	probe *probe.Host
	// p4infoFor is the engine's Config.P4InfoFor (nil: none).
	p4infoFor func(gateway string) *p4info.Info
}

func startController(t *testing.T) *controller { return startControllerWith(t, ctlOpts{}) }

func startControllerWith(t *testing.T, o ctlOpts) *controller {
	t.Helper()
	return stack.StartController(t, stack.Config{Dir: o.dir, Engine: engine.Config{P4InfoFor: o.p4infoFor},
		Service: service.Config{BGP: o.bgp, Probe: o.probe}})
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
    vnis: [5001, 5002, 5003]
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
