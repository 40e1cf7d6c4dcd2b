// Package benchmarks measures the controller end to end: how long the reconcile
// engine takes to bring a fresh P4Runtime agent to a full-size intent (63 pools of
// 4096 buckets and 10,000 gray rules), what a second pass and a controller restart
// cost, and, in a namespace lab with the real XDP gateway, how long a Cutover
// through the gRPC API takes to steer a VM's packets to the gray backend.
//
// The heavy measurements are tests gated behind GRAYGW_BENCH=1 (and root for the
// XDP dataplane and the lab), so `go test ./...` runs only the quick checks of the
// harness. scripts/bench.d/controller.sh runs everything and writes
// bench/controller.md; nothing asserts a time.
//
// This file builds the intents: Fill grows a document to a given number of pools,
// VIPs, tenants and gray rules with objects that never match the lab's traffic.
package benchmarks

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/graygw/graygw/controller/intent"
)

// Scale is the size of an intent built by Fill.
type Scale struct {
	// Pools is the total number of pools (at most intent.MaxPools = 63: the
	// backend_select table holds 64 pool versions and the intent keeps one free
	// so that any pool can always be rebuilt make-before-break).
	Pools int
	// BackendsPerPool is the number of backends of each added pool.
	BackendsPerPool int
	// VIPs is the total number of VIPs; each added VIP's default pool is one of
	// the first added pools (its "base" pools).
	VIPs int
	// Tenants and VNIsPerTenant size the vni_tenant table (added tenants only).
	Tenants, VNIsPerTenant int
	// Rules is the total number of gray rules. Added rules are VIP-scoped
	// (an added VIP each), 1 in 100 a whole VNI, 9 in 100 an inner /24, the rest
	// one VM (VNI + inner /32): three ternary masks, as a real deployment
	// dominated by VM cutovers would have.
	Rules int
	// DerivedPoolIDs leaves the added pools' ids to the intent (derived from their
	// names: base ids anywhere in 1-32767). Otherwise they get the lowest free
	// explicit ids, which keeps every pool_id below 64 on a fresh target.
	DerivedPoolIDs bool
}

// Full is the size the issue asks for: 63 pools x 4096 buckets and 10k rules.
var Full = Scale{Pools: intent.MaxPools, BackendsPerPool: 8, VIPs: 16, Tenants: 10, VNIsPerTenant: 10, Rules: 10000}

// Entries is the number of table entries an intent of this scale compiles to
// when Fill built all of it (an empty base document): backends, pool_hash,
// backend_select, vni_tenant, vip, gray_rules, and the gray_rules_v6 entries of
// its whole-VNI rules (1 in 100, rule 0 first), which fix no address and so
// are in both rule tables.
func (s Scale) Entries() int {
	vniRules := (s.Rules + 99) / 100
	return s.Pools*s.BackendsPerPool + s.Pools + s.Pools*4096 + s.Tenants*s.VNIsPerTenant + s.VIPs + s.Rules + vniRules
}

// Gateway returns a spec with one gateway (at p4rt, device 1, ports 1 and 2) and
// nothing else: Fill makes it a valid intent.
func Gateway(p4rt string) *intent.Spec {
	return &intent.Spec{Version: intent.SchemaVersion, Gateways: []intent.GatewaySpec{{
		Name: "gw1", P4Runtime: p4rt, DeviceID: 1, BGPNextHop: "10.1.0.1",
		Ports: map[int64]intent.PortSpec{
			1: {Interface: "p1", MAC: "02:00:00:00:01:01"},
			2: {Interface: "p2", MAC: "02:00:00:00:01:02"},
		},
	}}}
}

// Fill adds pools, VIPs, tenants and rules to s until it has sc's totals. Added
// objects are named bench-*, their addresses are in 10.200.0.0/16 (backends),
// 10.254.0.0/16 (VIPs), VNIs from 100000 and inner sources in 172.16.0.0/12 and
// 100.64.0.0/10, so they never select the traffic of topo's lab. Added backends
// are reached through the gateway's lowest port number.
func Fill(s *intent.Spec, sc Scale) error {
	if len(s.Gateways) == 0 {
		return fmt.Errorf("benchmarks: the spec has no gateway")
	}
	var port int64 = -1
	for n := range s.Gateways[0].Ports {
		if port < 0 || n < port {
			port = n
		}
	}
	i64 := func(v int) *int64 { n := int64(v); return &n }

	usedPool := map[int64]bool{}
	for _, p := range s.Pools {
		if p.ID != nil {
			usedPool[*p.ID] = true
		} else {
			usedPool[int64(intent.DerivedID(intent.KindPool, p.Name, intent.MaxPoolID))] = true
		}
	}
	nextPoolID := int64(1)
	var added []string
	for n := 0; len(s.Pools) < sc.Pools; n++ {
		p := intent.PoolSpec{Name: fmt.Sprintf("bench-pool-%02d", n), Cluster: "gray", HashFields: []string{"vni", "src"}}
		if n < sc.VIPs {
			p.Cluster, p.HashFields = "base", nil
		}
		if !sc.DerivedPoolIDs {
			for usedPool[nextPoolID] {
				nextPoolID++
			}
			p.ID = i64(int(nextPoolID))
			usedPool[nextPoolID] = true
		}
		for b := range sc.BackendsPerPool {
			k := n*sc.BackendsPerPool + b
			p.Backends = append(p.Backends, intent.BackendSpec{
				Name:       fmt.Sprintf("bench-be-%d", k),
				ID:         i64(1000 + k),
				UnderlayIP: netip.AddrFrom4([4]byte{10, 200, byte(k >> 8), byte(k)}).String(),
				MAC:        fmt.Sprintf("02:00:c8:00:%02x:%02x", byte(k>>8), byte(k)),
				Port:       port,
			})
		}
		s.Pools = append(s.Pools, p)
		added = append(added, p.Name)
	}
	if len(added) == 0 {
		return fmt.Errorf("benchmarks: no pool added (the spec has %d, the scale %d)", len(s.Pools), sc.Pools)
	}

	var vips []string
	for n := 0; len(s.VIPs) < sc.VIPs; n++ {
		v := intent.VIPSpec{Name: fmt.Sprintf("bench-vip-%02d", n), ID: i64(100 + n),
			Address: netip.AddrFrom4([4]byte{10, 254, byte(n >> 8), byte(n)}).String(), DefaultPool: added[n%len(added)]}
		s.VIPs = append(s.VIPs, v)
		vips = append(vips, v.Name)
	}
	// Gray pools for the rules: the added pools that are no VIP's default, or
	// every added pool when there are none.
	gray := slices.Clone(added)
	if len(added) > len(vips) {
		gray = added[len(vips):]
	}

	var vnis []int64
	for n := range sc.Tenants {
		t := intent.TenantSpec{Name: fmt.Sprintf("bench-tenant-%d", n), ID: i64(1000 + n)}
		for k := range sc.VNIsPerTenant {
			vni := int64(100000 + n*sc.VNIsPerTenant + k)
			t.VNIs = append(t.VNIs, vni)
			vnis = append(vnis, vni)
		}
		s.Tenants = append(s.Tenants, t)
	}
	if len(vnis) == 0 {
		vnis = []int64{100000}
	}

	if len(vips) == 0 && len(s.GrayRules) < sc.Rules {
		return fmt.Errorf("benchmarks: rules need an added VIP (the spec already has %d)", len(s.VIPs))
	}
	for n := 0; len(s.GrayRules) < sc.Rules; n++ {
		vni := vnis[n%len(vnis)]
		r := intent.RuleSpec{Pool: gray[n%len(gray)]}
		r.Match.VIP = vips[n%len(vips)]
		r.Match.VNI = &vni
		switch {
		case n%100 == 0: // the whole VNI of that VIP (distinct per rule: n/100 < vips x vnis)
			vni := vnis[(n/100)%len(vnis)]
			r.Match.VIP = vips[(n/100/len(vnis))%len(vips)]
			r.Match.VNI = &vni
			r.Name = fmt.Sprintf("bench-vni-%d", n)
		case n%100 < 10: // an inner /24
			r.Match.Src = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(n>>8)&63, byte(n), 0}), 24).String()
			r.Name = fmt.Sprintf("bench-prefix-%d", n)
		default: // one VM
			r.Match.Src = netip.AddrFrom4([4]byte{172, 16 + byte(n>>16), byte(n >> 8), byte(n)}).String()
			r.Name = fmt.Sprintf("bench-vm-%d", n)
		}
		s.GrayRules = append(s.GrayRules, r)
	}
	return nil
}
