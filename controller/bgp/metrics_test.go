package bgp

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsReadAtScrapeTime(t *testing.T) {
	in := twoGatewayInput()
	s, _ := startSpeaker(t, in)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())

	want := func(announced int, drained, p4rt int) string {
		return `
# HELP graygw_bgp_session_up 1 while the BGP session with the neighbor is established, 0 otherwise.
# TYPE graygw_bgp_session_up gauge
graygw_bgp_session_up{neighbor="127.0.0.1"} 0
# HELP graygw_bgp_vips_announced (VIP, next hop) paths announced.
# TYPE graygw_bgp_vips_announced gauge
graygw_bgp_vips_announced ` + itoa(announced) + `
# HELP graygw_bgp_vips_withdrawn (VIP, gateway) paths not announced, by reason; a path with several reasons counts once under each.
# TYPE graygw_bgp_vips_withdrawn gauge
graygw_bgp_vips_withdrawn{reason="drained"} ` + itoa(drained) + `
graygw_bgp_vips_withdrawn{reason="health-check-failed"} 0
graygw_bgp_vips_withdrawn{reason="no-healthy-backend"} 0
graygw_bgp_vips_withdrawn{reason="p4runtime-disconnected"} ` + itoa(p4rt) + `
`
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(2, 0, 0))); err != nil {
		t.Fatal(err)
	}
	in.Gateways[0].Drained = true
	in.Gateways[0].P4RuntimeConnected = false
	if _, err := s.Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(1, 1, 1))); err != nil {
		t.Fatal(err)
	}
	// A stopped speaker still scrapes: sessions down, nothing announced.
	if err := s.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(0, 1, 1))); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
