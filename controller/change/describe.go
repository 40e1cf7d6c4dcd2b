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
	section := func(kind string, items []string) {
		if len(items) > 0 {
			parts = append(parts, kind+" "+strings.Join(items, " "))
		}
	}
	section("rules", changed(old.Rules, nu.Rules, func(r *intent.Rule) string { return r.Name },
		func(a, b *intent.Rule) bool {
			return a.Match == b.Match && a.Key == b.Key && a.Priority == b.Priority && a.Pool == b.Pool && a.Percent == b.Percent
		}))
	section("pools", changed(old.Pools, nu.Pools, func(p *intent.Pool) string { return p.Name },
		func(a, b *intent.Pool) bool {
			return a.ID == b.ID && a.Cluster == b.Cluster && a.Hash == b.Hash && slices.Equal(a.Members, b.Members)
		}))
	section("backends", changed(old.Backends, nu.Backends, func(b *intent.Backend) string { return b.Name },
		func(a, b *intent.Backend) bool { return *a == *b }))
	section("vips", changed(old.VIPs, nu.VIPs, func(v *intent.VIP) string { return v.Name },
		func(a, b *intent.VIP) bool { return *a == *b }))
	section("tenants", changed(old.Tenants, nu.Tenants, func(t *intent.Tenant) string { return t.Name },
		func(a, b *intent.Tenant) bool { return a.ID == b.ID && slices.Equal(a.VNIs, b.VNIs) }))
	section("gateways", changed(old.Gateways, nu.Gateways, func(g *intent.Gateway) string { return g.Name },
		func(a, b *intent.Gateway) bool {
			return a.P4Runtime == b.P4Runtime && a.DeviceID == b.DeviceID && a.BGPNextHop == b.BGPNextHop &&
				a.BGPNextHopV6 == b.BGPNextHopV6 && slices.EqualFunc(a.Ports, b.Ports, intent.Port.Equal)
		}))
	if len(parts) == 0 {
		return "no change to what the gateways do"
	}
	return strings.Join(parts, "; ")
}

// changed lists by name what differs between the entities of one kind of
// two intents, in nu's order then old's: +name added, ~name changed (same
// is false), -name removed.
func changed[E any](old, nu []E, name func(*E) string, same func(a, b *E) bool) []string {
	index := func(es []E) map[string]*E {
		m := make(map[string]*E, len(es))
		for i := range es {
			if _, dup := m[name(&es[i])]; !dup {
				m[name(&es[i])] = &es[i]
			}
		}
		return m
	}
	was, is := index(old), index(nu)
	var items []string
	for i := range nu {
		n := name(&nu[i])
		switch a, ok := was[n]; {
		case !ok:
			items = append(items, "+"+n)
		case !same(a, is[n]):
			items = append(items, "~"+n)
		}
	}
	for i := range old {
		if n := name(&old[i]); is[n] == nil {
			items = append(items, "-"+n)
		}
	}
	return items
}
