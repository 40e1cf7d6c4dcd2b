package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graygw/graygw/topo"
)

// The BGP side of the lab: BIRD on the hypervisor (its top-of-rack router, as far
// as the demo goes) peers with the controller's GoBGP speaker on the gateway and
// installs the VIP route into the hypervisor's kernel.
const (
	peerASN    = 65000
	gatewayASN = 65001
	gatewayIP  = "10.1.0.1" // gateway port p1: BGP session and next hop
)

const birdConf = `# graygw demo: the hypervisor's router, learning the VIPs from the gateway.
router id %[1]s;
log "%[2]s" all;
protocol device {}
protocol kernel {
	ipv4 { import none; export all; };
}
protocol bgp graygw {
	local %[1]s as %[3]d;
	neighbor %[4]s as %[5]d;
	graceful restart on;
	ipv4 { import all; export none; };
}
`

// startBIRD starts BIRD in the hypervisor namespace and returns its control socket.
func (d *demo) startBIRD() (string, error) {
	conf := filepath.Join(d.dir, "bird.conf")
	sock := filepath.Join(d.dir, "bird.ctl")
	text := fmt.Sprintf(birdConf, topo.HVAddr, filepath.Join(d.dir, "bird.log"), peerASN, gatewayIP, gatewayASN)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", err
	}
	if out, err := d.l.Exec(d.t.HV, "bird", "-p", "-c", conf); err != nil {
		return "", fmt.Errorf("bird.conf: %s", out)
	}
	logf, err := d.logFile("bird-stderr")
	if err != nil {
		return "", err
	}
	if _, err := d.l.Start(d.t.HV, logf, "bird", "-f", "-c", conf, "-s", sock); err != nil {
		return "", err
	}
	return sock, nil
}

// birdRoute returns BIRD's view of the VIP route, or an error while it has none.
func (d *demo) birdRoute(sock string) (string, error) {
	out, err := d.l.Exec(d.t.HV, "birdc", "-s", sock, "show", "route", "for", topo.VIP.String(), "all")
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, topo.VIP.String()+"/32") {
		return "", fmt.Errorf("no route yet:\n%s", out)
	}
	return out, nil
}

// waitBGP waits until the hypervisor's kernel routes the VIP via the gateway.
func (d *demo) waitBGP(ctx context.Context, sock string) (string, error) {
	var route string
	err := waitFor(ctx, 60*time.Second, "VIP route learned by BGP", func() error {
		var err error
		if route, err = d.birdRoute(sock); err != nil {
			return err
		}
		out, err := d.l.Exec(d.t.HV, "ip", "route", "get", topo.VIP.String())
		if err != nil || !strings.Contains(out, "via "+gatewayIP) {
			return fmt.Errorf("kernel route: %s %v", out, err)
		}
		return nil
	})
	return route, err
}
