package engine

import "github.com/graygw/graygw/controller/intent"

// AllVIPs is the VIP name a traffic split carries when the intent has several
// VIPs and gray rules that name none: those rules may match any VIP's
// packets, so the split is computed over all the VIPs together (validation
// allows such rules only when every VIP serves the same default pool). With
// one VIP, its name is kept.
const AllVIPs = "*"

// Split divides each VIP's packets between the clusters (base, gray) from the
// counters of one read: a gray rule's packets go to its pool's cluster, the
// rest of the VIP's packets to its default pool's cluster. Packets a later
// table drops (NO_BACKEND, TTL_EXPIRED) count where they were sent.
//
// The result is keyed by VIP name (AllVIPs when a rule names no VIP and there
// are several), then by cluster. Counters read at different instants (the rules before the VIPs)
// can make the default share of one read smaller than the previous read's: a
// caller exporting counters keeps them monotonic itself.
func Split(in *intent.Intent, rules, vips map[string]Counter) map[string]map[intent.Cluster]Counter {
	if in == nil {
		return nil
	}
	cluster := map[string]intent.Cluster{}
	for _, p := range in.Pools {
		cluster[p.Name] = p.Cluster
	}
	group := func(vip string) string { return vip }
	for _, r := range in.Rules {
		if r.Match.VIP == "" {
			all := AllVIPs
			if len(in.VIPs) == 1 {
				all = in.VIPs[0].Name // it can only have matched that one
			}
			group = func(string) string { return all }
			break
		}
	}
	out := map[string]map[intent.Cluster]Counter{}
	at := func(vip string) map[intent.Cluster]Counter {
		m := out[vip]
		if m == nil {
			m = map[intent.Cluster]Counter{intent.ClusterBase: {}, intent.ClusterGray: {}}
			out[vip] = m
		}
		return m
	}
	// Everything a VIP received starts in its default pool's cluster; each
	// rule's packets then move to the rule's pool's cluster.
	for _, v := range in.VIPs {
		m := at(group(v.Name))
		c := m[cluster[v.DefaultPool]]
		c.Packets += vips[v.Name].Packets
		c.Bytes += vips[v.Name].Bytes
		m[cluster[v.DefaultPool]] = c
	}
	for _, r := range in.Rules {
		g := group(r.Match.VIP)
		def := intent.ClusterBase
		if r.Match.VIP != "" {
			def = cluster[defaultPool(in, r.Match.VIP)]
		} else if len(in.VIPs) > 0 {
			def = cluster[in.VIPs[0].DefaultPool] // all VIPs share it
		}
		to := cluster[r.Pool]
		if to == def {
			continue
		}
		m := at(g)
		n := rules[r.Name]
		from := m[def]
		from.Packets -= min(from.Packets, n.Packets)
		from.Bytes -= min(from.Bytes, n.Bytes)
		m[def] = from
		t := m[to]
		t.Packets += n.Packets
		t.Bytes += n.Bytes
		m[to] = t
	}
	return out
}

func defaultPool(in *intent.Intent, vip string) string {
	for _, v := range in.VIPs {
		if v.Name == vip {
			return v.DefaultPool
		}
	}
	return ""
}
