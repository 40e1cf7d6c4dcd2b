package change

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graygw/graygw/controller/intent"
)

// describeChange summarizes, by name, what differs between two intents.
func describeChange(old, nu *intent.Intent) string {
	if old == nil {
		return fmt.Sprintf("first intent: %d gateways, %d VIPs, %d pools, %d tenants, %d rules",
			len(nu.Gateways), len(nu.VIPs), len(nu.Pools), len(nu.Tenants), len(nu.Rules))
	}
	var parts []string
	section := func(kind string, oldNames, newNames []string, same func(name string) bool) {
		var items []string
		for _, n := range newNames {
			switch {
			case !slices.Contains(oldNames, n):
				items = append(items, "+"+n)
			case !same(n):
				items = append(items, "~"+n)
			}
		}
		for _, n := range oldNames {
			if !slices.Contains(newNames, n) {
				items = append(items, "-"+n)
			}
		}
		if len(items) > 0 {
			parts = append(parts, kind+" "+strings.Join(items, " "))
		}
	}
	names := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	rule := func(in *intent.Intent, name string) *intent.Rule {
		for i := range in.Rules {
			if in.Rules[i].Name == name {
				return &in.Rules[i]
			}
		}
		return nil
	}
	section("rules", names(len(old.Rules), func(i int) string { return old.Rules[i].Name }),
		names(len(nu.Rules), func(i int) string { return nu.Rules[i].Name }),
		func(n string) bool {
			a, b := rule(old, n), rule(nu, n)
			return a.Match == b.Match && a.Key == b.Key && a.Priority == b.Priority && a.Pool == b.Pool && a.Percent == b.Percent
		})
	section("pools", names(len(old.Pools), func(i int) string { return old.Pools[i].Name }),
		names(len(nu.Pools), func(i int) string { return nu.Pools[i].Name }),
		func(n string) bool {
			a, _ := old.Pool(n)
			b, _ := nu.Pool(n)
			return a.ID == b.ID && a.Cluster == b.Cluster && a.Hash == b.Hash && slices.Equal(a.Members, b.Members)
		})
	section("backends", names(len(old.Backends), func(i int) string { return old.Backends[i].Name }),
		names(len(nu.Backends), func(i int) string { return nu.Backends[i].Name }),
		func(n string) bool {
			a, _ := old.Backend(n)
			b, _ := nu.Backend(n)
			return *a == *b
		})
	section("vips", names(len(old.VIPs), func(i int) string { return old.VIPs[i].Name }),
		names(len(nu.VIPs), func(i int) string { return nu.VIPs[i].Name }),
		func(n string) bool {
			a, _ := old.VIP(n)
			b, _ := nu.VIP(n)
			return *a == *b
		})
	tenant := func(in *intent.Intent, name string) *intent.Tenant {
		for i := range in.Tenants {
			if in.Tenants[i].Name == name {
				return &in.Tenants[i]
			}
		}
		return nil
	}
	section("tenants", names(len(old.Tenants), func(i int) string { return old.Tenants[i].Name }),
		names(len(nu.Tenants), func(i int) string { return nu.Tenants[i].Name }),
		func(n string) bool {
			a, b := tenant(old, n), tenant(nu, n)
			return a.ID == b.ID && slices.Equal(a.VNIs, b.VNIs)
		})
	section("gateways", names(len(old.Gateways), func(i int) string { return old.Gateways[i].Name }),
		names(len(nu.Gateways), func(i int) string { return nu.Gateways[i].Name }),
		func(n string) bool {
			a, _ := old.Gateway(n)
			b, _ := nu.Gateway(n)
			return a.P4Runtime == b.P4Runtime && a.DeviceID == b.DeviceID && a.BGPNextHop == b.BGPNextHop && a.BGPNextHopV6 == b.BGPNextHopV6 && slices.EqualFunc(a.Ports, b.Ports, intent.Port.Equal)
		})
	if len(parts) == 0 {
		return "no change to what the gateways do"
	}
	return strings.Join(parts, "; ")
}
