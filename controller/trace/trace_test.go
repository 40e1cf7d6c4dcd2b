package trace

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

var world = func() string {
	d := intenttest.Tenanted()
	d.Pools[1].HashFields = "[vni, src]"
	d.Rules = []string{
		"{name: vm, match: {vni: 5001, src: 10.0.0.5}, pool: gray}",
		"{name: vpc, match: {vni: 5002}, pool: gray}",
		"{name: pct, match: {vni: 6001}, percent: 25, pool: gray}",
		"{name: web, match: {dst: 10.9.0.0/16, proto: tcp, dport: 443}, pool: gray}",
	}
	return d.YAML()
}()

var vip = netip.MustParseAddr("10.255.0.1")

func compiled(t *testing.T) (*intent.Intent, *compile.Result) {
	t.Helper()
	return compiletest.Doc(t, world)
}

func tables(t *testing.T, entries []compile.Entry) *Tables {
	t.Helper()
	tb, err := Load(entries)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func tcp(vni uint32, src, dst string, sport, dport uint16) *Query {
	return &Query{VNI: vni, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: 6, SPort: sport, DPort: dport}
}

// expected is the backend the intent's own Maglev table gives the flow:
// computed from the compiled pool (not through the model), so the trace is
// checked against an independent derivation.
func expected(t *testing.T, in *intent.Intent, res *compile.Result, pool string, key pipeline.FlowKey) (bucket uint16, backend string) {
	t.Helper()
	p, ok := res.Pool(pool)
	if !ok {
		t.Fatalf("no pool %s", pool)
	}
	bucket = key.And(p.Hash).Bucket()
	id := p.Buckets[bucket]
	for _, b := range in.Backends {
		if b.ID == id {
			return bucket, b.Name
		}
	}
	t.Fatalf("backend id %d not in the intent", id)
	return 0, ""
}

func key(in *intent.Intent, vni uint32, src, dst string, proto uint8, sport, dport uint16) pipeline.FlowKey {
	var tenant uint16
	for _, tn := range in.Tenants {
		if slices.Contains(tn.VNIs, vni) {
			tenant = tn.ID
		}
	}
	a, b := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	return pipeline.FlowKey{VNI: vni, Tenant: tenant, Src: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]),
		Dst: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), Proto: proto, SPort: sport, DPort: dport}
}

func rule(t *testing.T, p Path, name string) RuleCheck {
	t.Helper()
	for _, r := range p.Rules {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("rule %s not in the trace: %+v", name, p.Rules)
	return RuleCheck{}
}

// A moved VM: the VM rule decides, the gray pool hashes on vni and src only
// (the key bytes show it), and the backend is the one the gray pool's bucket
// holds; every other rule says why it did not match.
func TestExplainMovedVM(t *testing.T) {
	in, res := compiled(t)
	tb := tables(t, res.Gateways[0].Entries)
	p := tb.Explain(tcp(5001, "10.0.0.5", "10.0.0.1", 40000, 22), vip)
	k := key(in, 5001, "10.0.0.5", "10.0.0.1", 6, 40000, 22)
	bucket, backend := expected(t, in, res, "gray", k)
	if p.Verdict != "forward" || p.VIP != "vip1" || p.Tenant != "acme" || p.Rule != "vm" || !strings.HasPrefix(p.Pool, "gray") ||
		p.Bucket != bucket || p.Backend != backend {
		t.Fatalf("trace %+v; want rule vm, pool gray, bucket %d, backend %s", p, bucket, backend)
	}
	// vni(3) tenant(2) src(4) dst(4) proto(1) sport(2) dport(2), masked to vni and src.
	if want := "001389" + "0000" + "0a000005" + "00000000" + "00" + "0000" + "0000"; p.HashKey != want {
		t.Errorf("hash key %s, want %s", p.HashKey, want)
	}
	if !slices.Equal(p.HashFields, []string{"vni", "src"}) {
		t.Errorf("hash fields %v", p.HashFields)
	}
	if r := rule(t, p, "vm"); !r.Matched || !r.Decided {
		t.Errorf("vm: %+v", r)
	}
	// Other VPCs' rules are counted, and listed with AllRules.
	if p.OtherRules != 2 || len(p.Rules) != 2 {
		t.Errorf("%d rules listed, %d others; want vm and web listed, vpc and pct counted", len(p.Rules), p.OtherRules)
	}
	q := tcp(5001, "10.0.0.5", "10.0.0.1", 40000, 22)
	q.AllRules = true
	all := tb.Explain(q, vip)
	if r := rule(t, all, "vpc"); r.Matched || !strings.Contains(r.Why, "vni 5001, rule wants 5002") || all.OtherRules != 0 || len(all.Rules) != 4 {
		t.Errorf("vpc: %+v", r)
	}
	if r := rule(t, p, "web"); r.Matched || !strings.Contains(r.Why, "dst 10.0.0.1, rule wants 10.9.0.0/16") ||
		!strings.Contains(r.Why, "dport 22, rule wants 443") {
		t.Errorf("web: %+v", r)
	}
	for i := 1; i < len(p.Rules); i++ {
		if p.Rules[i].Priority > p.Rules[i-1].Priority {
			t.Fatalf("rules not by priority: %+v", p.Rules)
		}
	}
	rw := p.Rewrite
	if rw == nil || rw.Port != 3 || rw.OuterDst != map[string]string{"g1": "10.3.0.21", "g2": "10.3.0.22"}[backend] ||
		rw.SrcMAC != "02:00:00:00:01:03" || rw.DPort != pipeline.VXLANPort || rw.TTL != 63 {
		t.Errorf("rewrite %+v", rw)
	}
}

// An unmoved flow: no rule, the VIP's default pool, the full 18-byte key, and
// the bucket and backend of the base pool's table.
func TestExplainDefaultPool(t *testing.T) {
	in, res := compiled(t)
	tb := tables(t, res.Gateways[0].Entries)
	for i := range 50 {
		sport := uint16(30000 + i)
		p := tb.Explain(tcp(5001, "10.0.0.6", "10.0.0.1", sport, 80), vip)
		k := key(in, 5001, "10.0.0.6", "10.0.0.1", 6, sport, 80)
		bucket, backend := expected(t, in, res, "base", k)
		b := k.Bytes()
		if p.Rule != "" || !strings.HasPrefix(p.Pool, "base") || p.Bucket != bucket || p.Backend != backend || p.HashKey != hex.EncodeToString(b[:]) {
			t.Fatalf("sport %d: %+v; want base, bucket %d, backend %s", sport, p, bucket, backend)
		}
		for _, r := range p.Rules {
			if r.Matched {
				t.Fatalf("rule %s matched: %+v", r.Name, r)
			}
		}
		if o := tb.Decide(tcp(5001, "10.0.0.6", "10.0.0.1", sport, 80), vip); o != p.Outcome() {
			t.Fatalf("Decide %+v, Explain %+v", o, p.Outcome())
		}
	}
}

// Two matching rules: the higher priority decides, the other says it lost to
// it; a percentage rule says on which side of its threshold the VM is.
func TestExplainPriorityAndSplit(t *testing.T) {
	_, res := compiled(t)
	tb := tables(t, res.Gateways[0].Entries)
	p := tb.Explain(tcp(5001, "10.0.0.5", "10.9.1.1", 40000, 443), vip)
	vm, web := rule(t, p, "vm"), rule(t, p, "web")
	if !vm.Matched || !web.Matched || vm.Decided == web.Decided {
		t.Fatalf("vm %+v, web %+v", vm, web)
	}
	winner, loser := vm, web
	if web.Decided {
		winner, loser = web, vm
	}
	if p.Rule != winner.Name || winner.Priority < loser.Priority || !strings.Contains(loser.Why, "matches, but "+winner.Name) {
		t.Errorf("winner %+v, loser %+v", winner, loser)
	}

	moved, stayed := 0, 0
	for h := range 64 {
		src := netip.AddrFrom4([4]byte{10, 1, 0, byte(h + 1)}).String()
		p := tb.Explain(tcp(6001, src, "10.0.0.1", 1000, 80), vip)
		if o := tb.Decide(tcp(6001, src, "10.0.0.1", 1000, 80), vip); o != p.Outcome() {
			t.Fatalf("%s: Decide %+v, Explain %+v", src, o, p.Outcome())
		}
		r := rule(t, p, "pct")
		if !r.Decided || p.SplitHash == nil {
			t.Fatalf("%s: %+v", src, p)
		}
		switch {
		case strings.HasPrefix(p.Pool, "gray") && strings.Contains(r.Why, "moves to gray"):
			moved++
		case strings.HasPrefix(p.Pool, "base") && strings.Contains(r.Why, "stays on the default pool"):
			stayed++
		default:
			t.Fatalf("%s: pool %s, why %q", src, p.Pool, r.Why)
		}
	}
	if moved == 0 || stayed == 0 {
		t.Errorf("25%% split over 64 VMs: %d moved, %d stayed", moved, stayed)
	}
}

// Fields the query leaves open are traced as 0 and the explanation says so
// where it depends on them.
func TestExplainOpenFields(t *testing.T) {
	_, res := compiled(t)
	tb := tables(t, res.Gateways[0].Entries)
	q := &Query{VNI: 5001, Src: netip.MustParseAddr("10.0.0.6"), Open: []string{FieldDst, FieldProto, FieldSPort, FieldDPort}}
	p := tb.Explain(q, vip)
	if r := rule(t, p, "web"); !strings.Contains(r.Why, "(dport not given: traced as 0)") {
		t.Errorf("web: %q", r.Why)
	}
	if len(p.Notes) == 0 || !strings.Contains(strings.Join(p.Notes, "\n"), "hashes on dst, proto, sport, dport, not given") {
		t.Errorf("notes %q", p.Notes)
	}
	// The gray pool hashes on vni and src only: a moved VM needs nothing more.
	q.Src = netip.MustParseAddr("10.0.0.5")
	if p := tb.Explain(q, vip); p.Rule != "vm" || len(p.Notes) != 0 {
		t.Errorf("moved VM: rule %q, notes %q", p.Rule, p.Notes)
	}
}

func TestExplainDrops(t *testing.T) {
	_, res := compiled(t)
	entries := res.Gateways[0].Entries
	tb := tables(t, entries)
	if p := tb.Explain(tcp(5001, "10.0.0.6", "10.0.0.1", 1, 2), netip.MustParseAddr("10.255.0.9")); p.Verdict != "pass" || p.Reason != "NOT_VIP" {
		t.Errorf("unknown VIP: %+v", p)
	}
	// Without the base pool's buckets: NO_BACKEND, and the trace says which.
	base, _ := res.Pool("base")
	var kept []compile.Entry
	for _, e := range entries {
		if m, ok := e.Field(pipeline.MatchPoolID.Name); ok && e.Table == pipeline.TableBackendSelect && uint16(compile.Uint(m.Value)) == base.ID {
			continue
		}
		kept = append(kept, e)
	}
	p := tables(t, kept).Explain(tcp(5001, "10.0.0.6", "10.0.0.1", 1, 2), vip)
	if p.Verdict != "drop" || p.Reason != "NO_BACKEND" || p.Rewrite != nil || !strings.Contains(strings.Join(p.Notes, " "), "no backend_select entry") {
		t.Errorf("no buckets: %+v", p)
	}
}

// A gateway whose tables were changed: the drift names the entry, the path
// follows the gateway's own tables, and it disagrees with the intent's.
func TestFromReadBackFlagsDrift(t *testing.T) {
	in, res := compiled(t)
	want := res.Gateways[0].Entries
	q := tcp(5001, "10.0.0.6", "10.0.0.1", 40000, 80)
	bucket, backend := expected(t, in, res, "base", key(in, 5001, "10.0.0.6", "10.0.0.1", 6, 40000, 80))
	rb := &engine.ReadBack{Gateway: "gw1", Version: 3, Want: want, Have: slices.Clone(want)}
	g, err := FromReadBack(rb, q)
	if err != nil {
		t.Fatal(err)
	}
	if !g.InSync || g.Drift != nil || len(g.VIPs) != 1 || !g.VIPs[0].AgreesWithIntent || g.VIPs[0].Backend != backend {
		t.Fatalf("in sync: %+v", g)
	}

	// The flow's bucket repointed to another backend behind the controller's back.
	other := map[string]string{"b1": "b2", "b2": "b1", "b3": "b1", "b4": "b1"}[backend]
	var otherID uint16
	for _, b := range in.Backends {
		if b.Name == other {
			otherID = b.ID
		}
	}
	base, _ := res.Pool("base")
	for i, e := range rb.Have {
		if e.Table != pipeline.TableBackendSelect {
			continue
		}
		pm, _ := e.Field(pipeline.MatchPoolID.Name)
		bm, _ := e.Field(pipeline.MatchBucket.Name)
		if uint16(compile.Uint(pm.Value)) == base.ID && uint16(compile.Uint(bm.Value)) == bucket {
			e.Params = []compile.Param{{Name: e.Params[0].Name, Bits: e.Params[0].Bits, Value: []byte{byte(otherID >> 8), byte(otherID)}}}
			rb.Have[i], rb.Differ = e, []compile.Entry{e}
		}
	}
	if len(rb.Differ) != 1 {
		t.Fatal("bucket entry not found")
	}
	g, err = FromReadBack(rb, q)
	if err != nil {
		t.Fatal(err)
	}
	v := g.VIPs[0]
	if g.InSync || g.Drift == nil || g.Drift.DifferCount != 1 || !strings.HasPrefix(g.Drift.Differ[0], "pool base v") ||
		!strings.Contains(g.Drift.Differ[0], "the intent wants") {
		t.Fatalf("drift %+v", g.Drift)
	}
	if v.Backend != other || v.Intent.Backend != backend || v.AgreesWithIntent {
		t.Fatalf("path backend %s (intent %s, agrees %v), want %s read back and %s wanted", v.Backend, v.Intent.Backend, v.AgreesWithIntent, other, backend)
	}
}

func TestQueryCheck(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.5")
	for _, q := range []Query{
		{},
		{Src: netip.MustParseAddr("::ffff:10.0.0.5")},
		{Src: src, Dst: netip.MustParseAddr("2001:db8::1")},
		{Src: src, VNI: 1 << 24},
		{Src: src, Plain: true, VNI: 5},
		{Src: src, Proto: 1, SPort: 5},
		{Src: src, Plain: true, Proto: 17, DPort: 4789},
		{Src: src, Open: []string{"vni"}},
	} {
		if err := q.Check(); !errors.Is(err, ErrQuery) {
			t.Errorf("%+v: %v", q, err)
		}
	}
	if err := (&Query{Src: src, VNI: 5001, Proto: 6, DPort: 22}).Check(); err != nil {
		t.Error(err)
	}
}

// A mirror rule: the flow is served by the rule's pool, and a sampled VM's
// copy goes to the mirror pool's backend for the same key.
func TestExplainMirror(t *testing.T) {
	doc, _, _ := strings.Cut(world, "gray_rules:")
	in, res := compiletest.Doc(t, doc+"gray_rules:\n  - {name: shadow, match: {vni: 5002}, pool: base, mirror: {pool: gray, rate: 4}}\n")
	tb := tables(t, res.Gateways[0].Entries)
	sampled := 0
	for h := range 64 {
		src := netip.AddrFrom4([4]byte{10, 2, 0, byte(h + 1)}).String()
		p := tb.Explain(tcp(5002, src, "10.0.0.1", 1000, 80), vip)
		k := key(in, 5002, src, "10.0.0.1", 6, 1000, 80)
		_, served := expected(t, in, res, "base", k)
		if p.Rule != "shadow" || p.Pool != "base" || p.Backend != served || p.Mirror == nil || p.Mirror.Pool != "gray" || p.SplitHash == nil {
			t.Fatalf("%s: %+v", src, p)
		}
		if p.Mirror.Sampled {
			sampled++
			if bucket, copyTo := expected(t, in, res, "gray", k); p.Mirror.Backend != copyTo || p.Mirror.Bucket != bucket {
				t.Fatalf("%s: copy to %s bucket %d, want %s bucket %d", src, p.Mirror.Backend, p.Mirror.Bucket, copyTo, bucket)
			}
		}
	}
	if sampled == 0 || sampled == 64 {
		t.Errorf("1 in 4 VMs mirrored: %d of 64 sampled", sampled)
	}
}

// Plain (non-VXLAN) traffic: the flow is the outer header, its destination
// the VIP; the rewrite keeps the client's address and ports.
func TestExplainPlain(t *testing.T) {
	in, res := compiled(t)
	tb := tables(t, res.Gateways[0].Entries)
	q := &Query{Plain: true, Src: netip.MustParseAddr("203.0.113.9"), Proto: 6, SPort: 40000, DPort: 443}
	if err := q.Check(); err != nil {
		t.Fatal(err)
	}
	p := tb.Explain(q, vip)
	bucket, backend := expected(t, in, res, "base", key(in, 0, "203.0.113.9", "10.255.0.1", 6, 40000, 443))
	rw := p.Rewrite
	if p.Verdict != "forward" || p.Rule != "" || p.Bucket != bucket || p.Backend != backend || p.Tenant != "" || len(p.Notes) != 0 ||
		rw == nil || rw.OuterSrc != "203.0.113.9" || rw.SPort != 40000 || rw.DPort != 443 {
		t.Fatalf("plain: %+v (rewrite %+v); want bucket %d backend %s", p, rw, bucket, backend)
	}
	if r := rule(t, p, "web"); r.Matched || !strings.Contains(r.Why, "dst 10.255.0.1, rule wants 10.9.0.0/16") {
		t.Errorf("web: %+v", r)
	}
}

// A gray rule written behind the controller's back: it decides on the
// gateway, named by its priority as nothing in the intent names it, and the
// drift lists it as extra.
func TestFromReadBackForeignRule(t *testing.T) {
	in, res := compiled(t)
	want := res.Gateways[0].Entries
	gray, _ := res.Pool("gray")
	foreign := model.GrayRule{Priority: 9000, VIPMask: 0, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI},
		Action: model.SetPool, Pool: gray.ID}
	fst := model.NewState()
	fst.GrayRules = []model.GrayRule{foreign}
	extra := compile.FromModel(fst)[0]
	rb := &engine.ReadBack{Gateway: "gw1", Have: append(slices.Clone(want), extra), Want: want, Extra: []compile.Entry{extra}}
	g, err := FromReadBack(rb, tcp(5001, "10.0.0.6", "10.0.0.1", 1, 80))
	if err != nil {
		t.Fatal(err)
	}
	v := g.VIPs[0]
	_, backend := expected(t, in, res, "gray", key(in, 5001, "10.0.0.6", "10.0.0.1", 6, 1, 80))
	if g.InSync || g.Drift.ExtraCount != 1 || !strings.HasPrefix(g.Drift.Extra[0], "(not in the intent) ") ||
		v.Rule != "rule@prio-9000" || v.Pool != "gray" || v.Backend != backend || v.Intent.Rule != "" || v.Intent.Pool != "base" || v.AgreesWithIntent {
		t.Fatalf("drift %+v, path %+v", g.Drift, v)
	}
}
