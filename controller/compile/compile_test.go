package compile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// world is the intent the behaviour tests start from: one VIP (testvectors.VIP1)
// on a base pool of four backends (b4 of weight 2), a gray pool of two, and no
// rules. Tests append gray rules.
var world = func() string {
	d := intenttest.Tenanted()
	d.Pools[0].Backends[3].Weight = 2
	return d.YAML()
}()

func load(t testing.TB, doc string) *intent.Intent {
	t.Helper()
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return in
}

func mustCompile(t testing.TB, in *intent.Intent, prev *Result) *Result {
	t.Helper()
	r, err := Compile(in, prev)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return r
}

// gw is a compiled intent loaded into the reference model, for one gateway.
type gw struct {
	in    *intent.Intent
	res   *Result
	state *model.State
}

func newGW(t testing.TB, in *intent.Intent, res *Result) *gw {
	t.Helper()
	st, err := ToModel(res.Gateways[0].Entries)
	if err != nil {
		t.Fatal(err)
	}
	return &gw{in: in, res: res, state: st}
}

// flow is a packet to VIP1 (overlay when vni != 0).
type flow struct {
	vni          uint32
	src, dst     string
	proto        uint8
	sport, dport uint16
}

func (f flow) frame() []byte {
	l4 := testpkt.L4{Proto: f.proto, SPort: f.sport, DPort: f.dport, Payload: []byte("graygw")}
	return testvectors.Overlay(testvectors.VIP1, f.vni, f.src, f.dst, l4)
}

// route returns the pool and backend names the model sends f to.
func (g *gw) route(t testing.TB, f flow) (pool, backend string) {
	t.Helper()
	r := model.Process(g.state, f.frame())
	if r.Verdict != model.Forward {
		t.Fatalf("%+v: %v %v", f, r.Verdict, r.Reason)
	}
	p, ok := g.res.PoolByID(r.Pool)
	if !ok {
		t.Fatalf("%+v: pool id %d unknown", f, r.Pool)
	}
	for _, b := range g.in.Backends {
		if b.ID == r.BackendID {
			// The rewrite must carry the backend's own addresses.
			want, _ := netip.ParseAddr(b.UnderlayIP.String())
			if got := netip.AddrFrom4([4]byte(r.Frame[30:34])); got != want {
				t.Fatalf("%+v: outer dst %s, backend %s is %s", f, got, b.Name, want)
			}
			return p.Name, b.Name
		}
	}
	t.Fatalf("%+v: backend id %d unknown", f, r.BackendID)
	return "", ""
}

// flows returns n random flows over the given VNIs, from 10.0.0.1-10.0.0.40.
func flows(seed uint64, n int, vnis ...uint32) []flow {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]flow, n)
	for i := range out {
		out[i] = flow{
			vni:   vnis[rng.IntN(len(vnis))],
			src:   fmt.Sprintf("10.0.0.%d", 1+rng.IntN(40)),
			dst:   fmt.Sprintf("192.168.%d.%d", rng.IntN(4), 1+rng.IntN(250)),
			proto: []uint8{testpkt.ProtoTCP, testpkt.ProtoUDP}[rng.IntN(2)],
			sport: uint16(1024 + rng.IntN(60000)), dport: []uint16{22, 53, 80, 443}[rng.IntN(4)],
		}
	}
	return out
}

// cutover compiles world, then world plus rules (with the first as prev), and
// checks every flow: selected ones go to the pool want returns (or anywhere when
// want returns ""), all others keep their backend.
func cutover(t *testing.T, rules string, fs []flow, want func(f flow) string) (selected int) {
	t.Helper()
	before := load(t, world)
	r0 := mustCompile(t, before, nil)
	after := load(t, world+"gray_rules:\n"+rules)
	r1 := mustCompile(t, after, r0)
	g0, g1 := newGW(t, before, r0), newGW(t, after, r1)
	for _, f := range fs {
		p0, b0 := g0.route(t, f)
		if p0 != "base" {
			t.Fatalf("%+v: before the rule, pool %s", f, p0)
		}
		p1, b1 := g1.route(t, f)
		switch w := want(f); w {
		case "":
			if b1 != b0 {
				t.Errorf("%+v is outside the rule but moved from %s to %s (%s)", f, b0, b1, p1)
			}
		default:
			selected++
			if p1 != w {
				t.Errorf("%+v: pool %s, want %s", f, p1, w)
			}
		}
	}
	return selected
}

func TestVMCutoverMovesOnlyThatVM(t *testing.T) {
	n := cutover(t, `
  - name: vm
    match: {vip: vip1, vni: 5001, src: 10.0.0.5}
    pool: gray
`, flows(1, 3000, 5001, 5002, 6001), func(f flow) string {
		if f.vni == 5001 && f.src == "10.0.0.5" {
			return "gray"
		}
		return ""
	})
	if n < 10 {
		t.Fatalf("only %d flows of the VM", n)
	}
}

func TestVNICutoverMovesTheVNI(t *testing.T) {
	n := cutover(t, `
  - name: vpc
    match: {vni: 5002}
    pool: gray
`, flows(2, 2000, 5001, 5002, 6001), func(f flow) string {
		if f.vni == 5002 {
			return "gray"
		}
		return ""
	})
	if n < 500 {
		t.Fatalf("only %d flows of the VNI", n)
	}
}

func TestTenantCutoverMovesItsVNIs(t *testing.T) {
	cutover(t, `
  - name: acme
    match: {tenant: acme}
    pool: gray
`, flows(3, 1000, 5001, 5002, 6001, 7000), func(f flow) string {
		if f.vni == 5001 || f.vni == 5002 {
			return "gray"
		}
		return ""
	})
}

func TestFlowCutoverMovesOneFlow(t *testing.T) {
	one := flow{vni: 5001, src: "10.0.0.5", dst: "192.168.1.1", proto: testpkt.ProtoTCP, sport: 33000, dport: 80}
	fs := append(flows(4, 1000, 5001), one)
	// The same VM's other flows, differing in one field each.
	for _, g := range []flow{
		{5001, "10.0.0.5", "192.168.1.1", testpkt.ProtoTCP, 33001, 80},
		{5001, "10.0.0.5", "192.168.1.1", testpkt.ProtoTCP, 33000, 81},
		{5001, "10.0.0.5", "192.168.1.2", testpkt.ProtoTCP, 33000, 80},
		{5001, "10.0.0.5", "192.168.1.1", testpkt.ProtoUDP, 33000, 80},
		{5002, "10.0.0.5", "192.168.1.1", testpkt.ProtoTCP, 33000, 80},
		{5001, "10.0.0.6", "192.168.1.1", testpkt.ProtoTCP, 33000, 80},
	} {
		fs = append(fs, g)
	}
	n := cutover(t, `
  - name: one-flow
    match: {vni: 5001, src: 10.0.0.5, dst: 192.168.1.1, proto: tcp, sport: 33000, dport: 80}
    pool: gray
`, fs, func(f flow) string {
		if f == one {
			return "gray"
		}
		return ""
	})
	if n != 1 {
		t.Fatalf("%d flows selected, want 1", n)
	}
}

// A 25% split moves about a quarter of the VMs, each VM whole: every flow of a VM
// is on the same side, the side its split hash says.
func TestPercentSplitMovesWholeVMs(t *testing.T) {
	in := load(t, world+`gray_rules:
  - name: quarter
    match: {vni: 5001}
    percent: 25
    pool: gray
`)
	res := mustCompile(t, in, nil)
	g := newGW(t, in, res)
	rng := rand.New(rand.NewPCG(5, 5))
	const vms = 2000
	gray := 0
	for i := 0; i < vms; i++ {
		src := fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256)
		side := ""
		for j := 0; j < 8; j++ {
			f := flow{5001, src, fmt.Sprintf("192.168.0.%d", 1+rng.IntN(250)), testpkt.ProtoTCP, uint16(1024 + rng.IntN(60000)), 443}
			p, _ := g.route(t, f)
			if side == "" {
				side = p
			} else if p != side {
				t.Fatalf("VM %s split across %s and %s", src, side, p)
			}
		}
		a := netip.MustParseAddr(src).As4()
		wantGray := pipeline.SplitHash(5001, uint32(a[0])<<24|uint32(a[1])<<16|uint32(a[2])<<8|uint32(a[3])) < 16384
		if (side == "gray") != wantGray {
			t.Fatalf("VM %s on %s, split hash says gray=%v", src, side, wantGray)
		}
		if side == "gray" {
			gray++
		}
	}
	if share := float64(gray) / vms; share < 0.22 || share > 0.28 {
		t.Fatalf("%.1f%% of VMs moved, want about 25%%", 100*share)
	}
	// Other VNIs are untouched by the split.
	for _, f := range flows(6, 200, 5002, 6001) {
		if p, _ := g.route(t, f); p != "base" {
			t.Fatalf("%+v outside the split went to %s", f, p)
		}
	}
}

func TestHundredPercentIsSetPool(t *testing.T) {
	in := load(t, world+`gray_rules:
  - {name: all, match: {vni: 5001}, percent: 100, pool: gray}
  - {name: some, match: {vni: 5002}, percent: 12.5, pool: gray}
`)
	res := mustCompile(t, in, nil)
	var actions []string
	for _, e := range res.Gateways[0].Entries {
		if e.Table == pipeline.TableGrayRules {
			actions = append(actions, e.Origin+" "+e.Action)
			if e.Action == pipeline.ActionSplitPool {
				if th, _ := e.Param("threshold"); Uint(th.Value) != 8192 {
					t.Errorf("12.5%% threshold %d, want 8192", Uint(th.Value))
				}
			}
		}
	}
	want := []string{"rule all " + pipeline.ActionSetPool, "rule some " + pipeline.ActionSplitPool}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("actions %v, want %v", actions, want)
	}
}

func TestMoreSpecificRuleWins(t *testing.T) {
	in := load(t, world+`gray_rules:
  - name: tenant-to-gray
    match: {tenant: acme}
    pool: gray
  - name: vpc-back-to-base
    match: {vni: 5002}
    pool: base
  - name: vm-to-gray
    match: {vni: 5002, src: 10.0.0.7}
    pool: gray
  - name: subnet-to-base
    match: {vni: 5001, src: 10.0.0.0/29}
    pool: base
  - name: flow-to-base
    match: {vni: 5002, src: 10.0.0.7, proto: tcp, dport: 22}
    pool: base
`)
	g := newGW(t, in, mustCompile(t, in, nil))
	for _, c := range []struct {
		f    flow
		want string
	}{
		{flow{5001, "10.0.0.20", "192.168.0.1", testpkt.ProtoTCP, 1000, 80}, "gray"}, // tenant
		{flow{5001, "10.0.0.3", "192.168.0.1", testpkt.ProtoTCP, 1000, 80}, "base"},  // prefix beats tenant
		{flow{5002, "10.0.0.20", "192.168.0.1", testpkt.ProtoTCP, 1000, 80}, "base"}, // vni beats tenant
		{flow{5002, "10.0.0.7", "192.168.0.1", testpkt.ProtoTCP, 1000, 80}, "gray"},  // vm beats vni
		{flow{5002, "10.0.0.7", "192.168.0.1", testpkt.ProtoTCP, 1000, 22}, "base"},  // flow beats vm
		{flow{5002, "10.0.0.7", "192.168.0.1", testpkt.ProtoUDP, 1000, 22}, "gray"},  // not that flow
		{flow{6001, "10.0.0.7", "192.168.0.1", testpkt.ProtoTCP, 1000, 22}, "base"},  // other tenant: default
	} {
		if p, _ := g.route(t, c.f); p != c.want {
			t.Errorf("%+v: %s, want %s", c.f, p, c.want)
		}
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	data := intenttest.Example(t)
	dump := func(r *Result) string {
		var b strings.Builder
		for _, g := range r.Gateways {
			for _, e := range g.Entries {
				b.WriteString(g.Name + " " + e.String() + " # " + e.Origin + "\n")
			}
		}
		return b.String()
	}
	first := mustCompile(t, load(t, string(data)), nil)
	for i := 0; i < 5; i++ {
		again := mustCompile(t, load(t, string(data)), nil)
		if !reflect.DeepEqual(first.Gateways, again.Gateways) || dump(first) != dump(again) {
			t.Fatal("two compilations of the same intent differ")
		}
	}
	// Compiling again over what is installed changes nothing.
	same := mustCompile(t, load(t, string(data)), first)
	if dump(same) != dump(first) {
		t.Fatal("recompiling over the installed result changed entries")
	}
}

func TestExampleEntries(t *testing.T) {
	data := intenttest.Example(t)
	in := load(t, string(data))
	res := mustCompile(t, in, nil)
	if len(res.Gateways) != 2 {
		t.Fatalf("%d gateways", len(res.Gateways))
	}
	count := map[string]int{}
	for _, e := range res.Gateways[0].Entries {
		count[e.Table]++
	}
	want := map[string]int{
		pipeline.TableVIP: 2, pipeline.TableVNITenant: 3, pipeline.TableGrayRules: 6,
		pipeline.TablePoolHash: 4, pipeline.TableBackendSelect: 4 * pipeline.Buckets, pipeline.TableBackend: 4,
		pipeline.TableGrayRulesV6: 3, // the rules without an address are in both tables
	}
	if !reflect.DeepEqual(count, want) {
		t.Fatalf("entries per table %v, want %v", count, want)
	}
	// The gateways' entries differ exactly in to_backend's smac.
	a, b := res.Gateways[0].Entries, res.Gateways[1].Entries
	withoutSMAC := func(e Entry) Entry {
		var ps []Param
		for _, p := range e.Params {
			if p.Name != "smac" {
				ps = append(ps, p)
			}
		}
		e.Params = ps
		return e
	}
	smacs := 0
	for i := range a {
		if a[i].Equal(&b[i]) {
			continue
		}
		x, y := withoutSMAC(a[i]), withoutSMAC(b[i])
		if a[i].Table != pipeline.TableBackend || !x.Equal(&y) {
			t.Fatalf("gateways differ beyond smac:\n%s\n%s", a[i].String(), b[i].String())
		}
		smacs++
	}
	if smacs != 4 {
		t.Fatalf("%d backend entries differ in smac, want 4", smacs)
	}
	// Entries are in make-before-break table order.
	last := -1
	for _, e := range a {
		if r := tableRank(e.Table); r < last {
			t.Fatalf("%s after a later table", e.Table)
		} else {
			last = r
		}
	}
	// A drained backend keeps its entry but owns no bucket.
	p, _ := res.Pool("gray-router")
	if c := p.Table.Counts(); c["gray-2"] != 0 || c["gray-1"] != pipeline.Buckets {
		t.Fatalf("gray-router buckets %v", c)
	}
	// Weights 2:1 in base-router.
	p, _ = res.Pool("base-router")
	if c := p.Table.Counts(); c["base-1"] < 2*c["base-2"]-2 || c["base-1"] > 2*c["base-2"]+2 {
		t.Fatalf("base-router buckets %v, want 2:1", c)
	}
	// Plain traffic to the second VIP reaches its default pool.
	st, err := ToModel(a)
	if err != nil {
		t.Fatal(err)
	}
	r := model.Process(st, testvectors.PlainTo(netip.MustParseAddr("10.255.0.2"), testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 1234, DPort: 80}))
	if pool, _ := res.PoolByID(r.Pool); r.Verdict != model.Forward || pool.Name != "base-nat" {
		t.Fatalf("plain to nat: %v %v pool %d", r.Verdict, r.Reason, r.Pool)
	}
}
