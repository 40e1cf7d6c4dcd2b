package bgp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graygw/graygw/internal/syncbuf"
)

// dualStackInput has an IPv4 and an IPv6 VIP served by two gateways, each with
// both next hops.
func dualStackInput() Input {
	in := twoGatewayInput()
	in.Gateways[0].NextHopV6 = netip.MustParseAddr("2001:db8:179::11")
	in.Gateways[1].NextHopV6 = netip.MustParseAddr("2001:db8:179::12")
	in.VIPs = append(in.VIPs, VIP{
		Address:    netip.MustParseAddr("2001:db8:100::10"),
		Pools:      []Pool{{Name: "base6", HealthyBackends: 1}},
		Attributes: Attributes{Communities: []string{"65000:600"}, MED: u32(60)},
	})
	return in
}

func TestDecideIPv6VIPUsesTheIPv6NextHop(t *testing.T) {
	in := dualStackInput()
	in.Gateways[1].Drained = true
	d, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range d.Announce {
		got = append(got, p.String())
	}
	want := []string{"198.51.100.10 via 10.0.0.11", "2001:db8:100::10 via 2001:db8:179::11"}
	if !slices.Equal(got, want) {
		t.Fatalf("announce %v, want %v", got, want)
	}
	if len(d.Withdraw) != 2 || d.Withdraw[1].String() != "2001:db8:100::10 via 2001:db8:179::12" ||
		!slices.Equal(d.Withdraw[1].Reasons, []Reason{ReasonDrained}) {
		t.Fatalf("withdraw %+v", d.Withdraw)
	}
	// The speaker's policy carries the IPv6 next hop too.
	p, err := PolicyFor(in, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if p.NextHopV6 != in.Gateways[0].NextHopV6 || len(p.VIPs) != 2 || p.Validate() != nil {
		t.Fatalf("policy %+v (%v)", p, p.Validate())
	}
}

func TestDecideRejectsBadIPv6Input(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Input)
		field string
	}{
		{"IPv6 VIP, gateway without an IPv6 next hop", func(in *Input) { in.Gateways[1].NextHopV6 = netip.Addr{} },
			`vips[1].address: IPv6 VIP 2001:db8:100::10 is served by gateway "gw2", which has no IPv6 next hop`},
		{"link-local next hop", func(in *Input) { in.Gateways[0].NextHopV6 = netip.MustParseAddr("fe80::1") }, "gateways[0].nextHopV6"},
		{"IPv4 in nextHopV6", func(in *Input) { in.Gateways[0].NextHopV6 = netip.MustParseAddr("10.0.0.11") }, "gateways[0].nextHopV6"},
		{"IPv4-mapped next hop", func(in *Input) { in.Gateways[0].NextHopV6 = netip.MustParseAddr("::ffff:10.0.0.11") }, "gateways[0].nextHopV6"},
		{"duplicate IPv6 next hop", func(in *Input) { in.Gateways[1].NextHopV6 = in.Gateways[0].NextHopV6 },
			"gateways[1].nextHopV6: 2001:db8:179::11 is already the next hop of gateways[0]"},
		{"multicast IPv6 VIP", func(in *Input) { in.VIPs[1].Address = netip.MustParseAddr("ff02::1") }, "vips[1].address"},
		{"IPv4-mapped VIP", func(in *Input) { in.VIPs[1].Address = netip.MustParseAddr("::ffff:198.51.100.11") }, "vips[1].address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := dualStackInput()
			tc.edit(&in)
			d, err := Decide(in)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want ErrInvalidInput naming %q", err, tc.field)
			}
			if len(d.Announce)+len(d.Withdraw) != 0 {
				t.Fatalf("bad input still produced a decision: %+v", d)
			}
		})
	}
	// A VIP served only by gateways that have an IPv6 next hop is fine.
	in := dualStackInput()
	in.Gateways[1].NextHopV6 = netip.Addr{}
	in.VIPs[1].Gateways = []string{"gw1"}
	if _, err := Decide(in); err != nil {
		t.Fatal(err)
	}
}

func TestNeighborFamilies(t *testing.T) {
	c := Config{ASN: 65001, RouterID: "10.0.0.1", Neighbors: []Neighbor{
		{Address: "10.0.0.2", ASN: 65001},
		{Address: "2001:db8::2", ASN: 65001},
		{Address: "10.0.0.3", ASN: 65100, Families: []Family{FamilyIPv4Unicast, FamilyIPv6Unicast}},
	}}.WithDefaults()
	for i, want := range [][]Family{{FamilyIPv4Unicast}, {FamilyIPv6Unicast}, {FamilyIPv4Unicast, FamilyIPv6Unicast}} {
		if !slices.Equal(c.Neighbors[i].Families, want) {
			t.Errorf("neighbors[%d].families = %v, want %v", i, c.Neighbors[i].Families, want)
		}
	}
	for _, tc := range []struct {
		fams  []Family
		field string
	}{
		{[]Family{"ipv6"}, `neighbors[0].families[0]: "ipv6": want ipv4-unicast or ipv6-unicast`},
		{[]Family{FamilyIPv6Unicast, FamilyIPv6Unicast}, "neighbors[0].families[1]: ipv6-unicast listed twice"},
	} {
		c := validConfig()
		c.Neighbors[0].Families = tc.fams
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("families %v: err = %v, want %q", tc.fams, err, tc.field)
		}
	}
}

// TestSpeakerAnnouncesIPv6VIPAsSlash128: an IPv6 VIP goes into the IPv6
// unicast RIB as a /128 per gateway, with the gateway's IPv6 next hop and the
// VIP's attributes, beside the IPv4 VIP; a drain withdraws it, an undrain
// brings it back.
func TestSpeakerAnnouncesIPv6VIPAsSlash128(t *testing.T) {
	cfg := testConfig()
	cfg.Neighbors[0].Families = []Family{FamilyIPv4Unicast, FamilyIPv6Unicast}
	in := dualStackInput()
	s, logs := startSpeakerWith(t, cfg, in)
	got := listFamily(t, s, ipv6Unicast)
	attrs := []uint32{65000<<16 | 600}
	want := []ribPath{
		{"2001:db8:100::10/128", "2001:db8:179::11", attrs, 60, 0},
		{"2001:db8:100::10/128", "2001:db8:179::12", attrs, 60, 0},
	}
	if !slices.EqualFunc(got, want, ribEqual) {
		t.Fatalf("IPv6 RIB:\n got %+v\nwant %+v", got, want)
	}
	if v4 := listRIB(t, s); len(v4) != 2 || v4[0].prefix != "198.51.100.10/32" {
		t.Fatalf("IPv4 RIB: %+v", v4)
	}

	in.Gateways[0].Drained = true
	if _, err := s.Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := listFamily(t, s, ipv6Unicast); len(got) != 1 || got[0].nexthop != "2001:db8:179::12" {
		t.Fatalf("IPv6 RIB after draining gw1: %+v", got)
	}
	if !strings.Contains(logs.String(), "event=vipWithdrawn vip=2001:db8:100::10 nexthop=2001:db8:179::11 gateway=gw1 reason=drained") {
		t.Errorf("no IPv6 withdrawal logged:\n%s", logs)
	}
	in.Gateways[0].Drained = false
	if _, err := s.Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := listFamily(t, s, ipv6Unicast); len(got) != 2 {
		t.Fatalf("IPv6 RIB after undrain: %+v", got)
	}
	if err := s.Stop(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

// TestSpeakerWithoutIPv6NeighborSaysSo: with no neighbor carrying IPv6
// unicast, an IPv6 VIP's paths stay out of the RIB and show as withdrawn
// (no-neighbor-for-family) in the status, the log and the metrics; the IPv4
// VIP is announced as ever.
func TestSpeakerWithoutIPv6NeighborSaysSo(t *testing.T) {
	s, logs := startSpeakerWith(t, testConfig(), dualStackInput())
	if got := listFamily(t, s, ipv6Unicast); len(got) != 0 {
		t.Fatalf("IPv6 RIB: %+v", got)
	}
	if got := listRIB(t, s); len(got) != 2 {
		t.Fatalf("IPv4 RIB: %+v", got)
	}
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Announced) != 2 || len(st.Withdrawn) != 2 || !slices.Equal(st.Withdrawn[0].Reasons, []Reason{ReasonNoNeighbor}) {
		t.Fatalf("status: %+v", st)
	}
	if !strings.Contains(logs.String(), "event=vipNotAnnounced vip=2001:db8:100::10 nexthop=2001:db8:179::11 gateway=gw1 reason=no-neighbor-for-family") {
		t.Errorf("log:\n%s", logs)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP graygw_bgp_vips_withdrawn (VIP, gateway) paths not announced, by reason; a path with several reasons counts once under each.
# TYPE graygw_bgp_vips_withdrawn gauge
graygw_bgp_vips_withdrawn{reason="drained"} 0
graygw_bgp_vips_withdrawn{reason="health-check-failed"} 0
graygw_bgp_vips_withdrawn{reason="no-healthy-backend"} 0
graygw_bgp_vips_withdrawn{reason="no-neighbor-for-family"} 2
graygw_bgp_vips_withdrawn{reason="p4runtime-disconnected"} 0
`), MetricVIPsWithdrawn); err != nil {
		t.Error(err)
	}
}

func startSpeakerWith(t *testing.T, cfg Config, in Input) (*Speaker, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	s, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), false) })
	return s, logs
}
