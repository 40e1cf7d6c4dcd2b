package service_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent/intenttest"
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
	d := intenttest.VPC(addr)
	d.Ports[1] = "02:00:00:00:01:01"
	d.Pools[0].Backends = intenttest.Numbered(intenttest.Backends("base", "base-", 2, 2), 11)
	d.Pools[1].HashFields = "[vni, src]"
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001, 5002, 5003]}"}
	// The rule as a block map, as the service writes the ones it adds.
	d.Rules = []string{"name: vm-10.0.0.5\n    match: {vip: vpc, vni: 5001, src: 10.0.0.5}\n    pool: gray"}
	// The comments every edit must keep (TestCutoverEveryScope).
	doc := "# graygw test intent\n" + d.YAML()
	doc = strings.Replace(doc, "p4runtime: "+addr+"\n", "p4runtime: "+addr+"   # the agent under test\n", 1)
	return strings.Replace(doc, "gray_rules:\n", "gray_rules:\n  # the first VM moved\n", 1)
}

func opts(actor string) *graygwv1.ChangeOptions {
	return &graygwv1.ChangeOptions{Actor: actor, Wait: true}
}
