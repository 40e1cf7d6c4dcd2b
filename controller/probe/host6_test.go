package probe

import (
	"net/netip"
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

// An intent with IPv4 and IPv6 VIPs has backends of both families: the
// prober of each VIP gets only its family's backends (New refuses the
// others), and the host's Source only when it is of the VIP's family.
func TestHostConfigPerFamily(t *testing.T) {
	in := &intent.Intent{Backends: []intent.Backend{
		{Name: "base-4", UnderlayIP: netip.MustParseAddr("10.2.0.11")},
		{Name: "base-6", UnderlayIP: netip.MustParseAddr("fd00:f2::11")},
	}}
	h := &Host{NetNS: "hv", Interface: "h0", Source: netip.MustParseAddr("10.1.0.10")}
	for _, c := range []struct {
		vip, src, backend string
	}{{"10.255.0.1", "10.1.0.10", "base-4"}, {"fd00:ff::1", "invalid IP", "base-6"}} {
		cfg := h.Config(in, netip.MustParseAddr(c.vip))
		if cfg.Source.String() != c.src || len(cfg.Backends) != 1 || cfg.Backends[0].Name != c.backend {
			t.Errorf("vip %s: source %v, backends %+v; want source %s, backend %s only", c.vip, cfg.Source, cfg.Backends, c.src, c.backend)
		}
	}
}
