// Package intenttest writes the intent documents tests start from, as the
// YAML an operator writes: one gateway, one VIP, its pools, tenants and gray
// rules. A test takes Small or Router and changes only what it is about, so
// the worlds the packages' tests share are spelled once.
package intenttest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Example returns the documented example intent, docs/examples/intent.yaml.
func Example(t testing.TB) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "../../../docs/examples/intent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Doc is one intent document. Its YAML keeps a fixed layout (pools as block
// maps, backends as one flow map a line) that tests may splice into.
type Doc struct {
	Gateway string         // the gateway's name
	Agent   string         // the gateway's p4runtime address
	Ports   map[int]string // the gateway's ports: number to MAC (interface p<number>)
	NextHop string         // the gateway's bgp_next_hop; 10.1.0.1 when empty
	// NextHopV6 is the gateway's bgp_next_hop_v6; when empty, fd00:1::1 if
	// the VIP is IPv6, none otherwise.
	NextHopV6 string
	// More are further gateways, after the first.
	More  []Gateway
	VIP   VIP
	Pools []Pool
	// Tenants and Rules are one YAML map an item: a flow map, or a block
	// map whose later lines are indented four spaces.
	Tenants []string
	Rules   []string
}

// Gateway is one of a document's further gateways (Doc.More).
type Gateway struct {
	Name, Agent, NextHop string
	NextHopV6            string         // none when empty
	Ports                map[int]string // number to MAC (interface p<number>)
}

// VIP is the document's one VIP, on Address (10.255.0.1 when empty).
type VIP struct {
	Name, Pool, Address string
	ID                  int // 0: allocated by the controller
}

// Pool is one pool of backends.
type Pool struct {
	Name, Cluster string
	ID            int    // 0: allocated by the controller
	HashFields    string // a YAML list, e.g. "[vni, src]"; "" for the default
	// HealthFailover moves the traffic of an unhealthy backend to the others.
	HealthFailover bool
	Backends       []Backend
}

// Backend is one backend of a pool.
type Backend struct {
	Name       string
	ID         int // 0: allocated by the controller
	UnderlayIP string
	MAC        string
	Port       int
	Weight     int // 0: the default weight
}

// Small is the world of the compiler's and the intent package's tests: gw1 at
// 127.0.0.1:9559 with ports 2 and 3, VIP vip1 (10.255.0.1) on pool base (b1,
// b2 on port 2) and pool gray (g1, g2 on port 3), no tenants and no rules.
func Small() Doc {
	return Doc{
		Gateway: "gw1",
		Agent:   "127.0.0.1:9559",
		Ports:   map[int]string{2: "02:00:00:00:01:02", 3: "02:00:00:00:01:03"},
		VIP:     VIP{Name: "vip1", Pool: "base"},
		Pools: []Pool{
			{Name: "base", Cluster: "base", Backends: Backends("base", "b", 2, 2)},
			{Name: "gray", Cluster: "gray", Backends: Backends("gray", "g", 2, 3)},
		},
	}
}

// Tenanted is the world the compiler's and the tracer's behaviour tests start
// from: Small with four base backends (b1..b4 on port 2) and tenants acme
// (VNIs 5001, 5002) and globex (6001).
func Tenanted() Doc {
	d := Small()
	d.Pools[0].Backends = Backends("base", "b", 4, 2)
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}", "{name: globex, vnis: [6001]}"}
	return d
}

// Router is the world of the probe lab: gw at 127.0.0.1:9559 with ports 2 and
// 3, VIP vpc-router (id 1) on pool base-router (id 1: base-1, id 11, on port
// 2) and pool gray-router (id 2, hashing vni and src: gray-1, id 21, on port
// 3), no tenants and no rules.
func Router() Doc {
	return Doc{
		Gateway: "gw",
		Agent:   "127.0.0.1:9559",
		Ports:   map[int]string{2: "02:00:00:00:00:02", 3: "02:00:00:00:00:03"},
		VIP:     VIP{Name: "vpc-router", ID: 1, Pool: "base-router"},
		Pools: []Pool{
			{Name: "base-router", ID: 1, Cluster: "base", Backends: Numbered(Backends("base", "base-", 1, 2), 11)},
			{Name: "gray-router", ID: 2, Cluster: "gray", HashFields: "[vni, src]", Backends: Numbered(Backends("gray", "gray-", 1, 3), 21)},
		},
	}
}

// VPC is the world of the API and daemon tests: gw1 at agent with port 2,
// VIP vpc (id 1) on pool base (id 1: base-1, id 11) and pool gray (id 2:
// gray-1, id 21), every backend on port 2, no tenants and no rules.
func VPC(agent string) Doc {
	return Doc{
		Gateway: "gw1",
		Agent:   agent,
		Ports:   map[int]string{2: "02:00:00:00:01:02"},
		VIP:     VIP{Name: "vpc", ID: 1, Pool: "base"},
		Pools: []Pool{
			{Name: "base", ID: 1, Cluster: "base", Backends: Numbered(Backends("base", "base-", 1, 2), 11)},
			{Name: "gray", ID: 2, Cluster: "gray", Backends: Numbered(Backends("gray", "gray-", 1, 2), 21)},
		},
	}
}

// Backends returns n backends of a pool of cluster ("base" or "gray"), named
// prefix1..prefixN, on port: a base pool's at 10.2.0.11 and up (MAC
// 02:00:00:00:20:11 and up), a gray pool's at 10.3.0.21 and up (MAC
// 02:00:00:00:30:21 and up).
func Backends(cluster, prefix string, n, port int) []Backend {
	net, first := 2, 11
	if cluster == "gray" {
		net, first = 3, 21
	}
	bs := make([]Backend, n)
	for i := range bs {
		host := first + i
		bs[i] = Backend{
			Name:       fmt.Sprintf("%s%d", prefix, i+1),
			UnderlayIP: fmt.Sprintf("10.%d.0.%d", net, host),
			MAC:        fmt.Sprintf("02:00:00:00:%d0:%d", net, host),
			Port:       port,
		}
	}
	return bs
}

// IPv6 returns d with an IPv6 VIP and underlay: the VIP at 2001:db8:ff::1
// (or its Address, when one is given), each backend's 10.N.0.H underlay at
// 2001:db8:N::H, and (in YAML) the gateway's bgp_next_hop_v6 fd00:1::1.
// Rules and tenants are kept as they are.
func IPv6(d Doc) Doc {
	if d.VIP.Address == "" {
		d.VIP.Address = "2001:db8:ff::1"
	}
	pools := make([]Pool, len(d.Pools))
	for i, p := range d.Pools {
		p.Backends = slices.Clone(p.Backends)
		for j, be := range p.Backends {
			var n, h int
			if _, err := fmt.Sscanf(be.UnderlayIP, "10.%d.0.%d", &n, &h); err == nil {
				p.Backends[j].UnderlayIP = fmt.Sprintf("2001:db8:%d::%d", n, h)
			}
		}
		pools[i] = p
	}
	d.Pools = pools
	return d
}

// Numbered gives bs the IDs first and up, and returns it.
func Numbered(bs []Backend, first int) []Backend {
	for i := range bs {
		bs[i].ID = first + i
	}
	return bs
}

// YAML is the document as text; a test may append keys that d leaves out
// (gray_rules: when d has no Rules).
func (d Doc) YAML() string {
	var b strings.Builder
	b.WriteString("version: 1\ngateways:\n")
	hop := d.NextHop
	if hop == "" {
		hop = "10.1.0.1"
	}
	hop6 := d.NextHopV6
	if hop6 == "" && strings.Contains(d.VIP.Address, ":") {
		hop6 = "fd00:1::1" // an IPv6 VIP is announced with it
	}
	gateway(&b, Gateway{Name: d.Gateway, Agent: d.Agent, NextHop: hop, NextHopV6: hop6, Ports: d.Ports})
	for _, g := range d.More {
		gateway(&b, g)
	}
	addr := d.VIP.Address
	if addr == "" {
		addr = "10.255.0.1"
	}
	fmt.Fprintf(&b, "vips:\n  - {name: %s%s, address: %s, default_pool: %s}\npools:\n", d.VIP.Name, id(d.VIP.ID), addr, d.VIP.Pool)
	for _, p := range d.Pools {
		fmt.Fprintf(&b, "  - name: %s\n", p.Name)
		if p.ID != 0 {
			fmt.Fprintf(&b, "    id: %d\n", p.ID)
		}
		fmt.Fprintf(&b, "    cluster: %s\n", p.Cluster)
		if p.HashFields != "" {
			fmt.Fprintf(&b, "    hash_fields: %s\n", p.HashFields)
		}
		if p.HealthFailover {
			b.WriteString("    health_failover: true\n")
		}
		b.WriteString("    backends:\n")
		for _, be := range p.Backends {
			fmt.Fprintf(&b, "      - {name: %s%s, underlay_ip: %s, mac: %q, port: %d", be.Name, id(be.ID), be.UnderlayIP, be.MAC, be.Port)
			if be.Weight != 0 {
				fmt.Fprintf(&b, ", weight: %d", be.Weight)
			}
			b.WriteString("}\n")
		}
	}
	list(&b, "tenants", d.Tenants)
	list(&b, "gray_rules", d.Rules)
	return b.String()
}

// gateway writes g as an item of gateways:.
func gateway(b *strings.Builder, g Gateway) {
	fmt.Fprintf(b, "  - name: %s\n    p4runtime: %s\n    device_id: 1\n    bgp_next_hop: %s\n", g.Name, g.Agent, g.NextHop)
	if g.NextHopV6 != "" {
		fmt.Fprintf(b, "    bgp_next_hop_v6: %s\n", g.NextHopV6)
	}
	b.WriteString("    ports:\n")
	for port := range 256 {
		if mac, ok := g.Ports[port]; ok {
			fmt.Fprintf(b, "      %d: {interface: p%d, mac: %q}\n", port, port, mac)
		}
	}
}

// id is the ", id: n" of a flow map, or nothing for 0.
func id(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", id: %d", n)
}

// list writes key and its items; nothing when empty.
func list(b *strings.Builder, key string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n", key)
	for _, it := range items {
		fmt.Fprintf(b, "  - %s\n", it)
	}
}
