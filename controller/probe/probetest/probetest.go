// Package probetest is a test helper: the topo lab (hypervisor, gateway, base and
// gray backends in network namespaces) with graygw's XDP dataplane attached to
// the gateway's hypervisor-facing port and programmed straight from compiled
// intents, so probe and rollout tests send real packets through a real gateway
// without an agent or a controller daemon.
//
// Everything it creates (namespaces, the pin directory, the XDP link) is removed
// by Close. It needs root; New returns an error wrapping lab.ErrNotRoot otherwise.
package probetest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netlink"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/topo"
)

// Names in the lab intent.
const (
	VIPName  = "vpc-router"
	BasePool = "base-router"
	GrayPool = "gray-router"
	Tenant   = "acme"

	// With a VPC over the IPv6 underlay (topo.VPC.Underlay6), the intent also
	// has an IPv6 VIP (topo.VIP6) whose pools have the backends' IPv6
	// underlay addresses.
	VIPName6  = "vpc-router6"
	BasePool6 = "base-router6"
	GrayPool6 = "gray-router6"
)

// Lab is a built topology with a programmed XDP gateway.
type Lab struct {
	Topo *topo.Topology
	// DP is the gateway's dataplane; Apply writes it.
	DP *bpf.Dataplane

	lab    *lab.Lab
	pinDir string
	state  *model.State
}

var seq atomic.Uint32

// New builds the topology with vpcs (topo.DefaultVPCs when nil), loads the XDP
// program with maps pinned in a private directory and attaches it to the
// gateway's port towards the hypervisor. Nothing is programmed until Apply.
func New(prefix string, vpcs []topo.VPC) (*Lab, error) {
	if vpcs == nil {
		vpcs = topo.DefaultVPCs
	}
	l, err := lab.New(prefix)
	if err != nil {
		return nil, err
	}
	tl := &Lab{lab: l, state: model.NewState()}
	if err := tl.build(vpcs); err != nil {
		return nil, errors.Join(err, tl.Close())
	}
	return tl, nil
}

func (tl *Lab) build(vpcs []topo.VPC) error {
	t, err := topo.Build(tl.lab, vpcs)
	if err != nil {
		return fmt.Errorf("probetest: topology: %w", err)
	}
	tl.Topo = t
	tl.pinDir = filepath.Join("/sys/fs/bpf", fmt.Sprintf("graygw-probetest-%d-%d", os.Getpid(), seq.Add(1)))
	tl.DP, err = bpf.Open(bpf.Options{PinDir: tl.pinDir})
	if err != nil {
		return fmt.Errorf("probetest: load XDP: %w", err)
	}
	return lab.InNamespace(t.GW, func() error {
		if _, err := tl.DP.Attach(t.Ports[topo.PortHV], bpf.AttachAuto); err != nil {
			return fmt.Errorf("probetest: attach: %w", err)
		}
		for port, dev := range t.Ports {
			l, err := netlink.LinkByName(dev)
			if err != nil {
				return err
			}
			if err := tl.DP.SetPort(port, l.Attrs().Index); err != nil {
				return fmt.Errorf("probetest: port %d: %w", port, err)
			}
		}
		return nil
	})
}

// Close detaches the program, removes the pins and deletes the namespaces.
func (tl *Lab) Close() error {
	var errs []error
	if tl.DP != nil {
		if tl.Topo != nil {
			_ = lab.InNamespace(tl.Topo.GW, func() error { return tl.DP.Detach(tl.Topo.Ports[topo.PortHV]) })
		}
		errs = append(errs, tl.DP.Unpin(), tl.DP.Close())
	}
	if tl.pinDir != "" {
		errs = append(errs, os.RemoveAll(tl.pinDir))
	}
	errs = append(errs, tl.lab.Close())
	return errors.Join(errs...)
}

// IntentYAML is the lab's intent document: one VIP whose default pool is the
// base backend, a gray pool with the gray backend, and one tenant owning every
// VNI of the topology; with the tagged underlay (topo.VPC.Tagged) port 1
// accepts topo.HVVID and port 2 tags with topo.BaseVID. extraRules is appended verbatim under gray_rules (YAML
// list items, or "").
func (tl *Lab) IntentYAML(extraRules string) string {
	t := tl.Topo
	vnis := ""
	for i, v := range t.VPCs {
		if i > 0 {
			vnis += ", "
		}
		vnis += fmt.Sprint(v.VNI)
	}
	doc := fmt.Sprintf(`version: 1
gateways:
  - name: gw
    p4runtime: 127.0.0.1:9559
    device_id: 1
    bgp_next_hop: 10.1.0.1
    ports:
      %d: {interface: %s, mac: "%s"}
      %d: {interface: %s, mac: "%s"}
      %d: {interface: %s, mac: "%s"}
vips:
  - {name: %s, id: 1, address: %s, default_pool: %s}
pools:
  - name: %s
    id: 1
    cluster: base
    backends:
      - {name: base-1, id: 11, underlay_ip: %s, mac: "%s", port: %d}
  - name: %s
    id: 2
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {name: gray-1, id: 21, underlay_ip: %s, mac: "%s", port: %d}
tenants:
  - {name: %s, id: 7, vnis: [%s]}
`,
		topo.PortHV, t.Ports[topo.PortHV], t.PortMAC[topo.PortHV],
		topo.PortBase, t.Ports[topo.PortBase], t.PortMAC[topo.PortBase],
		topo.PortGray, t.Ports[topo.PortGray], t.PortMAC[topo.PortGray],
		VIPName, topo.VIP, BasePool,
		BasePool, topo.BaseAddr, t.BaseMAC, topo.PortBase,
		GrayPool, topo.GrayAddr, t.GrayMAC, topo.PortGray,
		Tenant, vnis)
	if slices.ContainsFunc(t.VPCs, func(v topo.VPC) bool { return v.Tagged }) {
		// The tagged underlay: port 1 serves the hypervisor's VID, port 2
		// tags what it sends base.
		for _, p := range []struct {
			port uint16
			vlan string
		}{{topo.PortHV, fmt.Sprintf("{accept: [%d]}", topo.HVVID)}, {topo.PortBase, fmt.Sprintf("{tag: %d}", topo.BaseVID)}} {
			mac := fmt.Sprintf("mac: \"%s\"}", t.PortMAC[p.port])
			doc = strings.Replace(doc, mac, fmt.Sprintf("mac: \"%s\", vlan: %s}", t.PortMAC[p.port], p.vlan), 1)
		}
	}
	if slices.ContainsFunc(t.VPCs, func(v topo.VPC) bool { return v.Underlay6 }) {
		doc = strings.Replace(doc, "    bgp_next_hop: 10.1.0.1\n", "    bgp_next_hop: 10.1.0.1\n    bgp_next_hop_v6: fd00:f1::1\n", 1)
		doc = strings.Replace(doc, "pools:\n", fmt.Sprintf("  - {name: %s, id: 2, address: %q, default_pool: %s}\npools:\n",
			VIPName6, topo.VIP6, BasePool6), 1)
		doc = strings.Replace(doc, "tenants:\n", fmt.Sprintf(`  - name: %s
    id: 3
    cluster: base
    backends:
      - {name: base6-1, id: 12, underlay_ip: %q, mac: "%s", port: %d}
  - name: %s
    id: 4
    cluster: gray
    hash_fields: [vni, src]
    backends:
      - {name: gray6-1, id: 22, underlay_ip: %q, mac: "%s", port: %d}
tenants:
`, BasePool6, topo.BaseAddr6, t.BaseMAC, topo.PortBase, GrayPool6, topo.GrayAddr6, t.GrayMAC, topo.PortGray), 1)
	}
	if extraRules != "" {
		doc += "gray_rules:\n" + extraRules
	}
	return doc
}

// VPCs returns the topology's VPCs as probe inventory. A dual-stack VPC
// (topo.VPC.IPv6) lists its VMs' IPv6 addresses after the IPv4 ones and the
// router's IPv6 address as a second destination: each VM is probed towards
// its family's router.
func (tl *Lab) VPCs() []probe.VPC {
	var out []probe.VPC
	for _, v := range tl.Topo.VPCs {
		pv := probe.VPC{VNI: v.VNI, Router: v.RouterAddr(), RouterMAC: topo.RouterMAC}
		for _, h := range v.VMs {
			pv.VMs = append(pv.VMs, v.VMAddr(h))
		}
		if v.IPv6 {
			pv.Dests = []netip.Addr{v.RouterAddr(), v.RouterAddr6()}
			for _, h := range v.VMs {
				pv.VMs = append(pv.VMs, v.VMAddr6(h))
			}
		}
		out = append(out, pv)
	}
	return out
}

// ProberConfig is the probe configuration of the lab: probes leave from the
// hypervisor's namespace, from its VTEP address, towards the VIP.
func (tl *Lab) ProberConfig(in *intent.Intent) probe.Config {
	return probe.Config{
		VIP:        topo.VIP,
		NetNS:      tl.Topo.HV,
		Interface:  "h0",
		Source:     topo.HVAddr,
		GatewayMAC: tl.Topo.PortMAC[topo.PortHV],
		RouterMAC:  topo.RouterMAC,
		Backends:   probe.BackendsFromIntent(in),
	}
}

// ProberConfig6 is ProberConfig towards the IPv6 VIP (topo.VIP6), from the
// hypervisor's IPv6 underlay address: the prober of the VPCs over the IPv6
// underlay.
func (tl *Lab) ProberConfig6(in *intent.Intent) probe.Config {
	c := tl.ProberConfig(in)
	c.VIP, c.Source = topo.VIP6, topo.HVAddr6
	return c
}

// SetBackendVNI brings the VXLAN device of vni up or down on the base
// (gray=false) or gray backend: a down device silently drops what it gets, as a
// broken backend would.
func (tl *Lab) SetBackendVNI(gray bool, vni uint32, up bool) error {
	ns := tl.Topo.Base
	if gray {
		ns = tl.Topo.Gray
	}
	state := "down"
	if up {
		state = "up"
	}
	if _, err := tl.lab.Exec(ns, "ip", "link", "set", fmt.Sprintf("vx%d", vni), state); err != nil {
		return fmt.Errorf("probetest: set vx%d %s: %w", vni, state, err)
	}
	return nil
}

// ApplyYAML loads and compiles the intent doc and applies its first gateway's
// entries (Apply), returning the intent and what it compiled to.
func (tl *Lab) ApplyYAML(doc string) (*intent.Intent, *compile.Result, error) {
	in, err := intent.Load([]byte(doc))
	if err != nil {
		return nil, nil, err
	}
	res, err := compile.Compile(in, nil)
	if err != nil {
		return nil, nil, err
	}
	return in, res, tl.Apply(res)
}

// Apply makes the dataplane hold exactly the entries of the first gateway of
// res, make-before-break: backends, pool hashes and buckets first, then tenants
// and VIPs, then rules (inserted or modified before obsolete ones are deleted),
// then what is no longer used.
func (tl *Lab) Apply(res *compile.Result) error {
	if len(res.Gateways) == 0 {
		return errors.New("probetest: no gateway in the compiled result")
	}
	st, err := compile.ToModel(res.Gateways[0].Entries)
	if err != nil {
		return err
	}
	d, old := tl.DP, tl.state
	for id, b := range st.Backends {
		if ob, ok := old.Backends[id]; !ok || ob != b {
			if err := d.SetBackendEntry(id, b); err != nil {
				return fmt.Errorf("probetest: backend %d: %w", id, err)
			}
		}
	}
	for pool, m := range st.PoolHash {
		if om, ok := old.PoolHash[pool]; !ok || om != m {
			if err := d.SetPoolHash(pool, m); err != nil {
				return fmt.Errorf("probetest: pool_hash %d: %w", pool, err)
			}
		}
	}
	for pool, ids := range buckets(st) {
		if oids, ok := buckets(old)[pool]; !ok || !equal(oids, ids) {
			// Any 16-bit pool id: the XDP program maps pool ids to slots
			// (pool_slot), up to bpf.MaxPools pools with buckets at once
			// (one more is bpf.ErrFull).
			if err := d.SetBuckets(pool, 0, ids); err != nil {
				return fmt.Errorf("probetest: backend_select %d: %w", pool, err)
			}
		}
	}
	for vni, ten := range st.Tenants {
		if err := d.SetTenant(vni, ten); err != nil {
			return fmt.Errorf("probetest: vni_tenant %d: %w", vni, err)
		}
	}
	for a, v := range st.VIPs {
		if err := d.SetVIP(addr(a), v); err != nil {
			return fmt.Errorf("probetest: vip %v: %w", addr(a), err)
		}
	}
	for a, v := range st.VIPsV6 {
		if err := d.SetVIP(netip.AddrFrom16(a), v); err != nil {
			return fmt.Errorf("probetest: vip_v6 %v: %w", netip.AddrFrom16(a), err)
		}
	}
	v6 := ruleTable[model.GrayRuleV6]{"gray_rules_v6", model.RuleIDV6, d.InsertRuleV6, d.ModifyRuleV6, d.DeleteRuleV6}
	if err := v6.apply(old.GrayRulesV6, st.GrayRulesV6); err != nil {
		return err
	}
	v4 := ruleTable[model.GrayRule]{"rule", model.RuleID, d.InsertRule, d.ModifyRule, d.DeleteRule}
	if err := v4.apply(old.GrayRules, st.GrayRules); err != nil {
		return err
	}
	for a := range old.VIPs {
		if _, ok := st.VIPs[a]; !ok {
			if err := d.DeleteVIP(addr(a)); err != nil {
				return err
			}
		}
	}
	for a := range old.VIPsV6 {
		if _, ok := st.VIPsV6[a]; !ok {
			if err := d.DeleteVIP(netip.AddrFrom16(a)); err != nil {
				return err
			}
		}
	}
	for vni := range old.Tenants {
		if _, ok := st.Tenants[vni]; !ok {
			if err := d.DeleteTenant(vni); err != nil {
				return err
			}
		}
	}
	newBuckets := buckets(st)
	for pool := range buckets(old) {
		if _, ok := newBuckets[pool]; !ok {
			if err := d.ClearPool(pool); err != nil {
				return err
			}
		}
	}
	for pool := range old.PoolHash {
		if _, ok := st.PoolHash[pool]; !ok {
			if err := d.DeletePoolHash(pool); err != nil {
				return err
			}
		}
	}
	for id := range old.Backends {
		if _, ok := st.Backends[id]; !ok {
			if err := d.DeleteBackendEntry(id); err != nil {
				return err
			}
		}
	}
	tl.state = st
	return nil
}

// ruleTable is how Apply writes one gray rule table (gray_rules or
// gray_rules_v6) of the lab's dataplane.
type ruleTable[R comparable] struct {
	name                string // in errors
	id                  func(R) R
	insert, modify, del func(R) error
}

// apply makes the table hold want instead of old: inserted or modified
// first, obsolete ones deleted after.
func (t ruleTable[R]) apply(old, want []R) error {
	was := map[R]R{}
	for _, r := range old {
		was[t.id(r)] = r
	}
	keep := map[R]bool{}
	for _, r := range want {
		id := t.id(r)
		keep[id] = true
		var err error
		switch o, ok := was[id]; {
		case !ok:
			err = t.insert(r)
		case o != r:
			err = t.modify(r)
		}
		if err != nil {
			return fmt.Errorf("probetest: %s %+v: %w", t.name, r, err)
		}
	}
	for id, r := range was {
		if !keep[id] {
			if err := t.del(r); err != nil {
				return fmt.Errorf("probetest: delete %s %+v: %w", t.name, id, err)
			}
		}
	}
	return nil
}

func buckets(st *model.State) map[uint16][]uint16 {
	out := map[uint16][]uint16{}
	for k, id := range st.BackendSelect {
		ids, ok := out[k.Pool]
		if !ok {
			ids = make([]uint16, pipeline.Buckets)
			out[k.Pool] = ids
		}
		ids[k.Bucket] = id
	}
	return out
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
