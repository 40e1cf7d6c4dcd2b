package compile

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
)

// ipv6Seed is an IPv6 VIP and underlay with rules of both families and
// without an address.
var ipv6Seed = func() string {
	d := intenttest.IPv6(intenttest.Small())
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}"}
	d.Rules = []string{
		`{name: vm6, match: {vni: 5001, src: "2001:db8::5"}, pool: gray}`,
		`{name: net6, match: {vni: 5001, dst: "2001:db8:1::/64", proto: tcp, dport: 443}, percent: 30, pool: gray}`,
		"{name: vm4, match: {vni: 5001, src: 10.0.0.5}, pool: gray}",
		"{name: vpc, match: {vni: 5002}, pool: gray}",
	}
	return d.YAML()
}()

var problemClasses = []error{
	intent.ErrSyntax, intent.ErrUnknownField, intent.ErrRequired, intent.ErrRange, intent.ErrAddress,
	intent.ErrUnknownRef, intent.ErrDuplicate, intent.ErrConflict, intent.ErrNoWeight, intent.ErrOverlap,
	intent.ErrCapacity,
}

// FuzzIntent feeds documents to the loader and validator: they never panic; a
// refused document yields only classified problems and no intent; an accepted one
// round-trips through Marshal, compiles, compiles the same again (also over its
// own result and over the pools recovered from its entries), and loads into the
// reference model. Its inventory (vpcs:, which compiles to no entry) holds what
// the validator promises (checkInventory), and the intent without its vpcs
// section compiles to the same entries. The seed corpus is in
// testdata/fuzz/FuzzIntent (inventory seeds: inventory_*).
func FuzzIntent(f *testing.F) {
	f.Add([]byte(world))
	f.Add([]byte(withRules))
	f.Add([]byte(withRules + inventorySeed))
	f.Add([]byte(ipv6Seed))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := intent.Load(data)
		if err != nil {
			if in != nil {
				t.Fatal("an intent came back with an error")
			}
			var es *intent.Errors
			if !errors.As(err, &es) || len(es.Problems) == 0 {
				t.Fatalf("not a list of problems: %T %v", err, err)
			}
			for _, p := range es.Problems {
				known := false
				for _, c := range problemClasses {
					known = known || errors.Is(p, c)
				}
				if !known || p.Msg == "" {
					t.Fatalf("unclassified problem %q", p.Error())
				}
			}
			return
		}
		spec, err := intent.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := intent.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := intent.Parse(out)
		if err != nil || !reflect.DeepEqual(spec, again) {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		r1, err := Compile(in, nil)
		if err != nil {
			t.Fatalf("a valid intent does not compile: %v", err)
		}
		r2, err := Compile(in, nil)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r2.Gateways) {
			t.Fatalf("compilation is not deterministic (%v)", err)
		}
		r3, err := Compile(in, r1)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r3.Gateways) {
			t.Fatalf("recompiling over the installed result changed it (%v)", err)
		}
		for _, g := range r1.Gateways {
			if _, err := ToModel(g.Entries); err != nil {
				t.Fatalf("gateway %s: %v", g.Name, err)
			}
		}
		checkInventory(t, in)
		if len(spec.VPCs) > 0 {
			bare := *spec
			bare.VPCs = nil
			doc, err := intent.Marshal(&bare)
			if err != nil {
				t.Fatal(err)
			}
			inBare, err := intent.Load(doc)
			if err != nil {
				t.Fatalf("the intent without its inventory is refused: %v", err)
			}
			if rb, err := Compile(inBare, nil); err != nil || !reflect.DeepEqual(r1.Gateways, rb.Gateways) {
				t.Fatalf("the inventory changed the compiled entries (%v)", err)
			}
		}
		rec, err := Recover(in, r1.Gateways[0].Entries)
		if err != nil {
			t.Fatalf("recover: %v", err)
		}
		r4, err := Compile(in, rec)
		if err != nil || !reflect.DeepEqual(r1.Gateways, r4.Gateways) {
			t.Fatalf("recompiling over the recovered pools changed the result (%v)", err)
		}
	})
}

const inventorySeed = `vpcs:
  - vni: 5001
    cidrs: [10.0.0.0/16]
    router_mac: "02:00:00:00:10:fe"
    routes:
      - {prefix: 0.0.0.0/0, next_hop: 10.0.0.1}
      - {prefix: 10.96.0.0/16}
    vms: [{address: 10.0.0.5, name: web-1}, {address: 10.0.0.6, mac: "02:00:00:00:00:06"}]
  - vni: 6001
    routes: [{prefix: 192.168.9.0/31}]
    vms: [{address: 192.168.1.5}]
`

// checkInventory asserts what an accepted inventory promises: VPCs sorted by
// VNI, each VNI a tenant's and found by Intent.VPC; at least one route and one
// VM; VMs unique global unicast addresses (IPv4 or IPv6) with a route of their
// family, none a route's probe destination, inside the cidrs when there are some.
func checkInventory(t *testing.T, in *intent.Intent) {
	t.Helper()
	owner := map[uint32]string{}
	for _, tn := range in.Tenants {
		for _, v := range tn.VNIs {
			owner[v] = tn.Name
		}
	}
	for i, v := range in.VPCs {
		if i > 0 && in.VPCs[i-1].VNI >= v.VNI {
			t.Fatalf("vpcs not sorted by VNI or duplicate: %d then %d", in.VPCs[i-1].VNI, v.VNI)
		}
		if got, ok := in.VPC(v.VNI); !ok || got.VNI != v.VNI {
			t.Fatalf("VPC(%d) not found", v.VNI)
		}
		if owner[v.VNI] == "" || owner[v.VNI] != v.Tenant {
			t.Fatalf("VPC %d: tenant %q, owner %q", v.VNI, v.Tenant, owner[v.VNI])
		}
		if len(v.Routes) == 0 || len(v.VMs) == 0 {
			t.Fatalf("VPC %d: %d routes, %d VMs", v.VNI, len(v.Routes), len(v.VMs))
		}
		dests := map[netip.Addr]bool{}
		for _, r := range v.Routes {
			if r.Prefix.Addr().Is4In6() || r.Prefix.Masked() != r.Prefix || r.Dest().Is4() != r.Prefix.Addr().Is4() {
				t.Fatalf("VPC %d: route %v (dest %v)", v.VNI, r.Prefix, r.Dest())
			}
			dests[r.Dest()] = true
		}
		seen := map[netip.Addr]bool{}
		for _, m := range v.VMs {
			a := m.Address
			// A VM has a route of its family (it is probed towards those).
			family := slices.ContainsFunc(v.Routes, func(r intent.Route) bool { return r.Prefix.Addr().Is4() == a.Is4() })
			if a.Is4In6() || !a.IsGlobalUnicast() || seen[a] || dests[a] || !family {
				t.Fatalf("VPC %d: VM %v", v.VNI, a)
			}
			seen[a] = true
			if len(v.CIDRs) > 0 && !slices.ContainsFunc(v.CIDRs, func(p netip.Prefix) bool { return p.Contains(a) }) {
				t.Fatalf("VPC %d: VM %v outside %v", v.VNI, a, v.CIDRs)
			}
		}
	}
}
