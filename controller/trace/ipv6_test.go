package trace

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/pipeline"
)

// world6 is the trace world with an IPv6 VIP and underlay, IPv6 rules, an
// IPv4 rule and a rule without an address.
func world6(t *testing.T) (*intent.Intent, *compile.Result) {
	t.Helper()
	d := intenttest.IPv6(intenttest.Small())
	d.Pools[1].HashFields = "[vni, src]"
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002]}"}
	d.Rules = []string{
		`{name: vm6, match: {vni: 5001, src: "2001:db8::5"}, pool: gray}`,
		`{name: net6, match: {vni: 5001, dst: "2001:db8:9::/48", proto: tcp, dport: 443}, pool: gray}`,
		"{name: vm4, match: {vni: 5001, src: 10.0.0.5}, pool: gray}",
		"{name: vpc, match: {vni: 5002}, pool: gray}",
	}
	return compiletest.Doc(t, d.YAML())
}

var vip6 = netip.MustParseAddr("2001:db8:ff::1")

// An IPv6 VM moved to gray: its flow is matched against gray_rules_v6 (the
// IPv6 rules and the rule without an address, never the IPv4 one), hashed on
// the 42-byte key masked to vni and src, and sent to a gray backend over
// IPv6; another IPv6 VM stays on base, and says why the VM rule missed it.
func TestExplainIPv6VM(t *testing.T) {
	in, res := world6(t)
	tb := tables(t, res.Gateways[0].Entries)
	if got := tb.VIPs(""); len(got) != 1 || got[0] != vip6 {
		t.Fatalf("VIPs %v", got)
	}
	if a, ok := tb.VIPAddress("vip1"); !ok || a != vip6 || tb.VIPName(vip6) != "vip1" {
		t.Fatalf("VIPAddress %v %v", a, ok)
	}
	q := &Query{VNI: 5001, Src: netip.MustParseAddr("2001:db8::5"), Dst: netip.MustParseAddr("2001:db8:1::1"), Proto: 6, SPort: 40000, DPort: 22}
	if err := q.Check(); err != nil {
		t.Fatal(err)
	}
	p := tb.Explain(q, vip6)
	if p.Verdict != "forward" || p.VIP != "vip1" || p.Rule != "vm6" || !strings.HasPrefix(p.Pool, "gray") || p.Tenant != "acme" {
		t.Fatalf("trace %+v", p)
	}
	// vni(3) tenant(2) src(16) dst(16) proto(1) sport(2) dport(2), masked to vni and src.
	want := "001389" + "0000" + "20010db8000000000000000000000005" + strings.Repeat("0", 32) + "00" + "0000" + "0000"
	if p.HashKey != want {
		t.Errorf("hash key %s, want %s", p.HashKey, want)
	}
	gray, _ := res.Pool("gray")
	if b := gray.Table.Backend(int(p.Bucket)); b != p.Backend {
		t.Errorf("backend %s, the gray pool's bucket %d holds %s", p.Backend, p.Bucket, b)
	}
	names := map[string]bool{}
	for _, r := range p.Rules {
		names[r.Name] = true
	}
	if names["vm4"] || !names["vm6"] || !names["net6"] {
		t.Errorf("rules listed %+v: want the gray_rules_v6 ones only", p.Rules)
	}
	if p.OtherRules != 1 { // vpc: another VNI
		t.Errorf("%d other rules", p.OtherRules)
	}
	if r := rule(t, p, "net6"); r.Matched || !strings.Contains(r.Why, "dst 2001:db8:1::1, rule wants 2001:db8:9::/48") ||
		!strings.Contains(r.Why, "dport 22, rule wants 443") {
		t.Errorf("net6: %+v", r)
	}
	underlay := map[string]string{}
	for _, b := range in.Backends {
		underlay[b.Name] = b.UnderlayIP.String()
	}
	if rw := p.Rewrite; rw == nil || rw.OuterDst != underlay[p.Backend] || rw.TTL != 63 || rw.DPort != pipeline.VXLANPort || rw.Port != 3 {
		t.Errorf("rewrite %+v, want the outer IPv6 destination %s", p.Rewrite, underlay[p.Backend])
	}

	other := *q
	other.Src = netip.MustParseAddr("2001:db8::6")
	p = tb.Explain(&other, vip6)
	if p.Rule != "" || !strings.HasPrefix(p.Pool, "base") {
		t.Fatalf("unmoved VM: %+v", p)
	}
	if r := rule(t, p, "vm6"); r.Matched || !strings.Contains(r.Why, "src 2001:db8::6, rule wants 2001:db8::5") {
		t.Errorf("vm6: %+v", r)
	}
	if o := tb.Decide(&other, vip6); o != p.Outcome() {
		t.Errorf("Decide %v, Explain %v", o, p.Outcome())
	}
}

// An IPv4 VM in VXLAN over IPv6 is matched against gray_rules; a plain IPv6
// flow reaches only an IPv6 VIP.
func TestExplainIPv4InIPv6AndPlain6(t *testing.T) {
	_, res := world6(t)
	tb := tables(t, res.Gateways[0].Entries)
	p := tb.Explain(tcp(5001, "10.0.0.5", "10.0.0.1", 40000, 22), vip6)
	if p.Verdict != "forward" || p.Rule != "vm4" {
		t.Fatalf("IPv4 in IPv6: %+v", p)
	}
	plain := &Query{Plain: true, Src: netip.MustParseAddr("2001:db8:77::9"), Proto: 6, SPort: 40000, DPort: 443}
	if !plain.Reaches(vip6) || plain.Reaches(netip.MustParseAddr("10.255.0.1")) {
		t.Error("Reaches")
	}
	p = tb.Explain(plain, vip6)
	if p.Verdict != "forward" || p.Rule != "" || p.Rewrite == nil || p.Rewrite.OuterSrc != "2001:db8:77::9" || p.Rewrite.DPort != 443 {
		t.Fatalf("plain IPv6: %+v %+v", p, p.Rewrite)
	}
}
