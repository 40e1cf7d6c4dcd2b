package main

import (
	"strings"
	"testing"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// An IPv6 VIP's route shows as its /128 in the BGP view, an IPv4 one as its
// /32.
func TestBGPViewIPv6Route(t *testing.T) {
	st := bgpStatusOf(&graygwv1.BGPStatusResponse{Announced: []*graygwv1.BGPPath{
		{Vip: "10.255.0.1", VipName: "v4", NextHop: "10.1.0.1", Gateway: "gw1"},
		{Vip: "2001:db8:ff::1", VipName: "v6", NextHop: "2001:db8:1::1", Gateway: "gw1"}}})
	var got []string
	for _, r := range st.Routes {
		got = append(got, r.Prefix)
	}
	if strings.Join(got, " ") != "10.255.0.1/32 2001:db8:ff::1/128" {
		t.Fatalf("routes %v", got)
	}
}
