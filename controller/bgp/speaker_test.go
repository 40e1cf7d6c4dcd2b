package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	apipb "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/graygw/graygw/internal/syncbuf"
)

// testConfig has one passive neighbor that never connects: enough to exercise
// the RIB without a peer.
func testConfig() Config {
	return Config{
		ASN:        65001,
		RouterID:   "192.0.2.1",
		ListenPort: -1,
		Neighbors:  []Neighbor{{Address: "127.0.0.1", ASN: 65001, Passive: true}},
		GracefulRestart: GracefulRestart{
			Enabled:     true,
			RestartTime: 120 * time.Second,
		},
	}
}

func u32(v uint32) *uint32 { return &v }

func twoGatewayInput() Input {
	return Input{
		Gateways: []Gateway{
			{Name: "gw1", NextHop: netip.MustParseAddr("10.0.0.11"), P4RuntimeConnected: true, HealthCheckOK: true},
			{Name: "gw2", NextHop: netip.MustParseAddr("10.0.0.12"), P4RuntimeConnected: true, HealthCheckOK: true},
		},
		VIPs: []VIP{{
			Address:    netip.MustParseAddr("198.51.100.10"),
			Pools:      []Pool{{Name: "base", HealthyBackends: 2}},
			Attributes: Attributes{Communities: []string{"65000:100", "65000:200"}, MED: u32(50), LocalPref: u32(300)},
		}},
	}
}

// ribPath is a path as GoBGP's global RIB holds it.
type ribPath struct {
	prefix, nexthop string
	communities     []uint32
	med, localPref  uint32
}

func listRIB(t *testing.T, s *Speaker) []ribPath {
	t.Helper()
	return listFamily(t, s, ipv4Unicast)
}

// listFamily is listRIB of one family; an IPv6 path's next hop is read from
// its MP_REACH_NLRI.
func listFamily(t *testing.T, s *Speaker, family *apipb.Family) []ribPath {
	t.Helper()
	var out []ribPath
	err := s.bgp.ListPath(context.Background(), &apipb.ListPathRequest{TableType: apipb.TableType_GLOBAL, Family: family},
		func(d *apipb.Destination) {
			for _, p := range d.Paths {
				rp := ribPath{prefix: d.Prefix}
				for _, a := range p.Pattrs {
					m, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
					if err != nil {
						t.Fatal(err)
					}
					switch a := m.(type) {
					case *apipb.NextHopAttribute:
						rp.nexthop = a.NextHop
					case *apipb.MpReachNLRIAttribute:
						rp.nexthop = strings.Join(a.NextHops, ",")
					case *apipb.CommunitiesAttribute:
						rp.communities = a.Communities
					case *apipb.MultiExitDiscAttribute:
						rp.med = a.Med
					case *apipb.LocalPrefAttribute:
						rp.localPref = a.LocalPref
					}
				}
				out = append(out, rp)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b ribPath) int { return strings.Compare(a.prefix+a.nexthop, b.prefix+b.nexthop) })
	return out
}

func startSpeaker(t *testing.T, in Input) (*Speaker, *syncbuf.Buffer) {
	t.Helper()
	return startSpeakerWith(t, testConfig(), in)
}

func TestSpeakerAnnouncesOnePathPerNextHop(t *testing.T) {
	s, logs := startSpeaker(t, twoGatewayInput())
	got := listRIB(t, s)
	want := []ribPath{
		{"198.51.100.10/32", "10.0.0.11", []uint32{65000<<16 | 100, 65000<<16 | 200}, 50, 300},
		{"198.51.100.10/32", "10.0.0.12", []uint32{65000<<16 | 100, 65000<<16 | 200}, 50, 300},
	}
	if !slices.EqualFunc(got, want, ribEqual) {
		t.Fatalf("RIB:\n got %+v\nwant %+v", got, want)
	}
	for _, nh := range []string{"10.0.0.11", "10.0.0.12"} {
		if !strings.Contains(logs.String(), "event=vipAnnounced vip=198.51.100.10 nexthop="+nh) {
			t.Errorf("no vipAnnounced log for %s:\n%s", nh, logs)
		}
	}
}

func ribEqual(a, b ribPath) bool {
	return a.prefix == b.prefix && a.nexthop == b.nexthop && slices.Equal(a.communities, b.communities) &&
		a.med == b.med && a.localPref == b.localPref
}

func TestSpeakerWithdrawsByReasonAndAnnouncesAgain(t *testing.T) {
	in := twoGatewayInput()
	s, logs := startSpeaker(t, in)
	// apply has s apply in and fails t unless its RIB then holds n paths.
	apply := func(what string, n int) {
		t.Helper()
		if _, err := s.Apply(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if got := listRIB(t, s); len(got) != n {
			t.Fatalf("RIB after %s: %+v", what, got)
		}
	}

	in.Gateways[0].Drained = true
	in.Gateways[1].P4RuntimeConnected = false
	apply("drain and P4Runtime loss", 0)
	for _, line := range []string{
		"event=vipWithdrawn vip=198.51.100.10 nexthop=10.0.0.11 gateway=gw1 reason=drained",
		"event=vipWithdrawn vip=198.51.100.10 nexthop=10.0.0.12 gateway=gw2 reason=p4runtime-disconnected",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, logs)
		}
	}
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Announced) != 0 || len(st.Withdrawn) != 2 ||
		!slices.Equal(st.Withdrawn[0].Reasons, []Reason{ReasonDrained}) ||
		!slices.Equal(st.Withdrawn[1].Reasons, []Reason{ReasonP4RuntimeDisconnected}) {
		t.Fatalf("status: %+v", st)
	}

	// The reasons clear: announced again, and the identifiers are reused.
	in.Gateways[0].Drained = false
	in.Gateways[1].P4RuntimeConnected = true
	apply("the reasons cleared", 2)
	if n := len(s.ids[netip.MustParseAddr("198.51.100.10")]); n != 2 {
		t.Fatalf("%d identifiers in use, want 2", n)
	}
}

func TestSpeakerChangesAttributesInPlace(t *testing.T) {
	in := twoGatewayInput()
	s, logs := startSpeaker(t, in)
	in.VIPs[0].Attributes = Attributes{Communities: []string{"65000:999"}}
	if _, err := s.Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := listRIB(t, s)
	if len(got) != 2 || !slices.Equal(got[0].communities, []uint32{65000<<16 | 999}) || got[0].med != 0 || got[0].localPref != 0 {
		t.Fatalf("RIB after the attribute change: %+v", got)
	}
	if strings.Count(logs.String(), "event=vipUpdated") != 2 || strings.Contains(logs.String(), "event=vipWithdrawn") {
		t.Fatalf("want two vipUpdated and no withdrawal:\n%s", logs)
	}
}

func TestSpeakerWithdrawsRemovedVIP(t *testing.T) {
	in := twoGatewayInput()
	s, logs := startSpeaker(t, in)
	in.VIPs = nil
	if _, err := s.Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := listRIB(t, s); len(got) != 0 {
		t.Fatalf("RIB: %+v", got)
	}
	if !strings.Contains(logs.String(), "reason=removed") {
		t.Fatalf("no reason=removed:\n%s", logs)
	}
}

func TestSpeakerRejectsBadInputWithoutChange(t *testing.T) {
	in := twoGatewayInput()
	s, _ := startSpeaker(t, in)
	in.VIPs[0].Attributes.Communities = []string{"65000:100000"}
	in.Gateways[0].Drained = true
	_, err := s.Apply(context.Background(), in)
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "vips[0].attributes.communities[0]") {
		t.Fatalf("err = %v", err)
	}
	if got := listRIB(t, s); len(got) != 2 {
		t.Fatalf("bad input changed the RIB: %+v", got)
	}
}

func TestSpeakerLifecycleErrors(t *testing.T) {
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Reconcile(ctx, Decision{}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Reconcile before Start: %v", err)
	}
	if _, err := s.Status(ctx); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Status before Start: %v", err)
	}
	if err := s.Start(ctx, Decision{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Reconcile(ctx, Decision{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Reconcile after Stop: %v", err)
	}
	if err := s.Start(ctx, Decision{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
}
