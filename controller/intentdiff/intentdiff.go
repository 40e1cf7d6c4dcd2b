// Package intentdiff compares two intents object by object: which gateways,
// VIPs, pools, pool members, backends, tenants, gray rules and VPCs were added,
// removed or changed, and how, in words. `graygw diff --from N --to M` prints
// it for two stored versions.
package intentdiff

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/graygw/graygw/controller/intent"
)

// Op is what happened to an object.
type Op string

// Ops.
const (
	Added   Op = "added"
	Removed Op = "removed"
	Changed Op = "changed"
)

// Difference is one object that differs.
type Difference struct {
	// Kind is the object's kind: gateway, vip, pool, member, backend, tenant,
	// rule, vpc.
	Kind string `json:"kind"`
	// Name names it ("pool/backend" for a member, the VNI for a VPC).
	Name string `json:"name"`
	Op   Op     `json:"op"`
	// Details say what changed ("weight 1 -> 0"), or describe an added or
	// removed object.
	Details []string `json:"details,omitempty"`
}

func (d Difference) String() string {
	s := fmt.Sprintf("%s %s %s", d.Kind, d.Name, d.Op)
	if len(d.Details) > 0 {
		s += ": " + strings.Join(d.Details, "; ")
	}
	return s
}

// Compare returns what differs from a to b, by kind in the order above, then
// by name. Either may be nil (no intent).
func Compare(a, b *intent.Intent) []Difference {
	if a == nil {
		a = &intent.Intent{}
	}
	if b == nil {
		b = &intent.Intent{}
	}
	var out []Difference
	out = append(out, compare("gateway", a.Gateways, b.Gateways, func(g intent.Gateway) string { return g.Name }, gatewayFields)...)
	out = append(out, compare("vip", a.VIPs, b.VIPs, func(v intent.VIP) string { return v.Name }, vipFields)...)
	out = append(out, compare("pool", a.Pools, b.Pools, func(p intent.Pool) string { return p.Name }, poolFields)...)
	out = append(out, compare("member", members(a), members(b), func(m member) string { return m.pool + "/" + m.Backend }, memberFields)...)
	out = append(out, compare("backend", a.Backends, b.Backends, func(x intent.Backend) string { return x.Name }, backendFields)...)
	out = append(out, compare("tenant", a.Tenants, b.Tenants, func(x intent.Tenant) string { return x.Name }, tenantFields)...)
	out = append(out, compare("rule", a.Rules, b.Rules, func(r intent.Rule) string { return r.Name }, ruleFields)...)
	out = append(out, compare("vpc", a.VPCs, b.VPCs, func(v intent.VPC) string { return fmt.Sprint(v.VNI) }, vpcFields)...)
	return out
}

// field is one named attribute of an object, as text.
type field struct{ name, value string }

// compare matches objects by name and compares their fields.
func compare[T any](kind string, a, b []T, name func(T) string, fields func(T) []field) []Difference {
	am, bm := map[string]T{}, map[string]T{}
	var names []string
	for _, x := range a {
		am[name(x)] = x
		names = append(names, name(x))
	}
	for _, x := range b {
		if _, ok := am[name(x)]; !ok {
			names = append(names, name(x))
		}
		bm[name(x)] = x
	}
	slices.Sort(names)
	var out []Difference
	for _, n := range names {
		x, inA := am[n]
		y, inB := bm[n]
		switch {
		case !inB:
			out = append(out, Difference{Kind: kind, Name: n, Op: Removed, Details: describe(fields(x))})
		case !inA:
			out = append(out, Difference{Kind: kind, Name: n, Op: Added, Details: describe(fields(y))})
		default:
			fx, fy := fields(x), fields(y)
			var details []string
			for i := range fx {
				if fx[i].value != fy[i].value {
					details = append(details, fmt.Sprintf("%s %s -> %s", fx[i].name, show(fx[i].value), show(fy[i].value)))
				}
			}
			if len(details) > 0 {
				out = append(out, Difference{Kind: kind, Name: n, Op: Changed, Details: details})
			}
		}
	}
	return out
}

func describe(fs []field) []string {
	var out []string
	for _, f := range fs {
		if f.value != "" {
			out = append(out, f.name+" "+f.value)
		}
	}
	return out
}

func show(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func gatewayFields(g intent.Gateway) []field {
	var ports []string
	for _, p := range g.Ports {
		ports = append(ports, fmt.Sprintf("%d=%s/%s", p.Number, p.Interface, net.HardwareAddr(p.MAC[:])))
	}
	return []field{{"p4runtime", g.P4Runtime}, {"device_id", fmt.Sprint(g.DeviceID)},
		{"bgp_next_hop", g.BGPNextHop.String()}, {"bgp_next_hop_v6", addrOrEmpty(g.BGPNextHopV6)}, {"ports", strings.Join(ports, ",")}}
}

// addrOrEmpty is "" for the zero Addr (a field not set), not "invalid IP".
func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func vipFields(v intent.VIP) []field {
	return []field{{"id", fmt.Sprint(v.ID)}, {"address", v.Address.String()}, {"default_pool", v.DefaultPool}}
}

func poolFields(p intent.Pool) []field {
	return []field{{"id", fmt.Sprint(p.ID)}, {"cluster", string(p.Cluster)},
		{"hash_fields", strings.Join(p.Hash.Names(), ",")}, {"health_failover", fmt.Sprint(p.HealthFailover)}}
}

type member struct {
	pool string
	intent.Member
}

func members(in *intent.Intent) []member {
	var out []member
	for _, p := range in.Pools {
		for _, m := range p.Members {
			out = append(out, member{p.Name, m})
		}
	}
	return out
}

func memberFields(m member) []field { return []field{{"weight", fmt.Sprint(m.Weight)}} }

func backendFields(b intent.Backend) []field {
	return []field{{"id", fmt.Sprint(b.ID)}, {"underlay_ip", b.UnderlayIP.String()},
		{"mac", net.HardwareAddr(b.MAC[:]).String()}, {"port", fmt.Sprint(b.Port)}}
}

func tenantFields(t intent.Tenant) []field {
	return []field{{"id", fmt.Sprint(t.ID)}, {"vnis", strings.Trim(fmt.Sprint(t.VNIs), "[]")}}
}

func ruleFields(r intent.Rule) []field {
	pct := ""
	if r.Percent != 100 {
		pct = fmt.Sprintf("%g%%", r.Percent)
	}
	return []field{{"match", r.Match.String()}, {"pool", r.Pool}, {"percent", pct}, {"priority", fmt.Sprint(r.Priority)}}
}

func vpcFields(v intent.VPC) []field {
	var vms, routes, cidrs []string
	for _, m := range v.VMs {
		vms = append(vms, m.Address.String())
	}
	for _, r := range v.Routes {
		routes = append(routes, r.Prefix.String())
	}
	for _, c := range v.CIDRs {
		cidrs = append(cidrs, c.String())
	}
	return []field{{"tenant", v.Tenant}, {"cidrs", strings.Join(cidrs, ",")}, {"routes", strings.Join(routes, ",")},
		{"vms", strings.Join(vms, ",")}}
}
