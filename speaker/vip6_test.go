package speaker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/pipeline"
)

// TestVIPEntryDecodesBothFamilies: a vip entry's dst_addr is 32 bits, a
// vip_v6 entry's 128, each in P4Runtime's canonical bytes (leading zeros
// left out, or padded); a value wider than the table's field, or another
// action (set_vip on vip_v6, set_vip_v6 on vip), is no VIP.
func TestVIPEntryDecodesBothFamilies(t *testing.T) {
	id := &ids{vipDst: 1, vip6Dst: 1, setVIP: 7, vipDefaultPool: 1, setVIP6: 9, vip6DefaultPool: 1}
	entry := func(value []byte, action uint32) *p4v1.TableEntry {
		return &p4v1.TableEntry{
			Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: value}}}},
			Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: action,
				Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{3}}}}}},
		}
	}
	v6 := netip.MustParseAddr("2001:db8:ff::1").As16()
	low6 := netip.MustParseAddr("::1:2").As16() // canonical: 3 bytes
	for _, tc := range []struct {
		name  string
		value []byte
		size  int
		want  string
	}{
		{"IPv4", []byte{10, 255, 0, 1}, 4, "10.255.0.1"},
		{"IPv4 canonical", []byte{1, 2, 3}, 4, "0.1.2.3"},
		{"IPv6", v6[:], 16, "2001:db8:ff::1"},
		{"IPv6 canonical", []byte{1, 0, 2}, 16, "::1:2"},
		{"IPv6 padded", append([]byte{0, 0}, low6[:]...), 16, "::1:2"},
		{"too wide for vip", []byte{1, 10, 255, 0, 1}, 4, ""},
		{"too wide for vip_v6", append([]byte{1}, v6[:]...), 16, ""},
	} {
		dst, action := id.vipDst, id.setVIP
		if tc.size == 16 {
			dst, action = id.vip6Dst, id.setVIP6
		}
		addr, pool, ok := vipEntry(entry(tc.value, action), dst, tc.size, action, 1)
		if tc.want == "" {
			if ok {
				t.Errorf("%s: decoded %v", tc.name, addr)
			}
			continue
		}
		if !ok || addr.String() != tc.want || pool != 3 {
			t.Errorf("%s: %v pool %d ok %v, want %s pool 3", tc.name, addr, pool, ok, tc.want)
		}
	}
	if _, _, ok := vipEntry(entry(v6[:], id.setVIP), id.vip6Dst, 16, id.setVIP6, id.vip6DefaultPool); ok {
		t.Error("a vip_v6 entry of set_vip was taken for a VIP")
	}
	if _, _, ok := vipEntry(entry([]byte{10, 0, 0, 1}, id.setVIP6), id.vipDst, 4, id.setVIP, id.vipDefaultPool); ok {
		t.Error("a vip entry of set_vip_v6 was taken for a VIP")
	}
}

// TestSpeakerAnnouncesTheIPv6VIPsItServes: against a real agent server with
// the IPv6 tables, an IPv6 VIP in vip_v6 whose default pool has a backend is
// served, and the speaker's decision announces it through the policy's IPv6
// next hop; one whose pool has no backend is withdrawn (no-healthy-backend).
func TestSpeakerAnnouncesTheIPv6VIPsItServes(t *testing.T) {
	a := p4rtest.Serve(t, dataplane.NewMemory(dataplane.Limits{}), "")
	b := p4rtest.Builder{T: t, Info: a.Info}
	vip6a, vip6b := netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2")
	entry := func(vip netip.Addr, id, pool uint64) *p4v1.TableEntry {
		return b.Entry(pipeline.TableVIPv6, 0, []p4rtest.FM{{Name: pipeline.MatchDstAddr.Name, Value: p4rtest.Addr6(t, vip.String())}},
			pipeline.ActionSetVIPv6, p4rtest.P(pipeline.ParamVIPID.Name, id), p4rtest.P(pipeline.ParamDefaultPool.Name, pool))
	}
	ctx := context.Background()
	if err := a.Ctl.Write(ctx,
		p4rtest.Ins(b.VIP(ip4(vip1), 1, 1)),
		p4rtest.Ins(entry(vip6a, 2, 1)), // served: pool 1 -> backend 11
		p4rtest.Ins(entry(vip6b, 3, 2)), // pool 2 has no bucket
		p4rtest.Ins(b.Bucket(1, 0, 11)),
		p4rtest.Ins(b.Backend(11, 2, 0x0a02000b))); err != nil {
		t.Fatal(err)
	}
	o := newObserver(t, DataplaneConfig{P4Runtime: a.Addr, DeviceID: 1})
	obs := o.Observe(ctx)
	if !obs.Reachable || !obs.Served[vip1] || !obs.Served[vip6a] || obs.Served[vip6b] || obs.VIPv6Error != "" {
		t.Fatalf("observation %+v: want %v and %v served, not %v", obs, vip1, vip6a, vip6b)
	}
	if !strings.Contains(obs.NotServed[vip6b], "default pool 2 has no backend") {
		t.Errorf("not served: %v", obs.NotServed)
	}
	policy := &bgp.Policy{Gateway: "gw1", NextHop: netip.MustParseAddr("10.179.0.11"), NextHopV6: netip.MustParseAddr("fd00:179::11"),
		VIPs: []bgp.PolicyVIP{{Name: "v4", Address: vip1}, {Name: "v6a", Address: vip6a}, {Name: "v6b", Address: vip6b}}}
	d, err := bgp.Decide(Input(policy, obs))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range d.Announce {
		got = append(got, p.String())
	}
	if want := []string{vip1.String() + " via 10.179.0.11", "2001:db8:ff::1 via fd00:179::11"}; !slices.Equal(got, want) {
		t.Errorf("announced %v, want %v", got, want)
	}
	if len(d.Withdraw) != 1 || d.Withdraw[0].VIP != vip6b || !slices.Equal(d.Withdraw[0].Reasons, []bgp.Reason{bgp.ReasonNoHealthyBackend}) {
		t.Errorf("withdrawn %+v", d.Withdraw)
	}
}

// TestPolicyFromProtoCarriesTheIPv6NextHop: the controller's policy message
// carries the gateway's IPv6 next hop; a policy with an IPv6 VIP and none, or
// a bad one, is refused whole.
func TestPolicyFromProtoCarriesTheIPv6NextHop(t *testing.T) {
	msg := &graygwv1.SpeakerPolicy{Gateway: "gw1", NextHop: "10.1.0.1", NextHopV6: "fd00:f1::1",
		Vips: []*graygwv1.SpeakerVIP{{Name: "v4", Address: "10.255.0.1"}, {Name: "v6", Address: "fd00:ff::1"}}}
	p, err := policyFromProto(msg)
	if err != nil || p.NextHopV6 != netip.MustParseAddr("fd00:f1::1") || len(p.VIPs) != 2 {
		t.Fatalf("policy %+v, %v", p, err)
	}
	for _, hop := range []string{"", "fd00:f1::1%eth0x", "10.1.0.9"} {
		msg.NextHopV6 = hop
		if _, err := policyFromProto(msg); err == nil {
			t.Errorf("next_hop_v6 %q with an IPv6 VIP: accepted", hop)
		}
	}
}
