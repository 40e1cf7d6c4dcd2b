package main

import (
	"fmt"
	"path/filepath"

	"github.com/graygw/graygw/topo"
)

// MetricsAddr is where the demo's controller serves /metrics, inside the
// gateway's namespace.
const MetricsAddr = "127.0.0.1:9464"

// controllerConfig is the controller's config file for the lab: the store and API
// under the demo directory, metrics on the gateway namespace's loopback, BGP
// towards BIRD on the hypervisor, ICMP health checks of the backends, and the
// hypervisor as the probe host (it sends VXLAN pings to the VIP like any VTEP).
func (d *demo) controllerConfig(intent string) string {
	return fmt.Sprintf(`# graygw demo controller
store: %[1]s
intent: %[2]s
election_id: 10
interval: 10s
listen:
  unix: %[3]s
metrics: %[10]s
log: {level: info, format: text}
health: {enabled: true, interval: 1s}
bgp:
  asn: %[4]d
  routerID: %[5]s
  listenAddress: %[5]s
  gracefulRestart: {enabled: true, restartTime: 120s}
  neighbors:
    - {address: %[6]s, asn: %[7]d, holdTime: 9s}
  vips:
    vpc-router: {communities: ["%[7]d:100"]}
  healthCheck: reconciled
probe:
  netns: %[8]s
  interface: h0
  source: %[6]s
  router_mac: %[9]s
`, filepath.Join(d.dir, "controller.db"), intent, d.sock(), gatewayASN, gatewayIP, topo.HVAddr, peerASN,
		d.t.HV, topo.RouterMAC, MetricsAddr)
}
