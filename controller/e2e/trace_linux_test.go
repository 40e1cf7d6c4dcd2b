//go:build linux

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/trace"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
)

// traceIntent is the lab's intent with four base backends, a gray pool of
// two hashed on (vni, src), and four gray rules: two VMs, the DNS of a
// prefix of VMs (more specific than a VM: it wins), a prefix of VMs.
func (tl *testLab) traceIntent(t *testing.T) *intent.Intent {
	t.Helper()
	return compiletest.Load(t, tl.traceIntentYAML())
}

// traceIntentYAML is traceIntent's document; its gray_rules come last.
func (tl *testLab) traceIntentYAML() string {
	doc := tl.intentYAML([]int{11, 12, 13, 14})
	gray := "  - name: gray\n    id: 2\n    cluster: gray\n    hash_fields: [vni, src]\n    backends:\n"
	for _, id := range []int{21, 22} {
		gray += fmt.Sprintf("      - {name: be-%d, id: %d, underlay_ip: %s, mac: %q, port: %d}\n", id, id, backendIP(id), tl.b0MAC, portBe)
	}
	doc = strings.Replace(doc, "tenants:\n", gray+"tenants:\n", 1) + `gray_rules:
  - {name: vm-10, match: {vip: vpc, vni: 5001, src: 192.168.1.10}, pool: gray}
  - {name: vm-11, match: {vip: vpc, vni: 5001, src: 192.168.1.11}, pool: gray}
  - {name: dns-0-28, match: {vip: vpc, vni: 5001, src: 192.168.1.0/28, proto: udp, dport: 53}, pool: gray}
  - {name: vms-96, match: {vip: vpc, vni: 5001, src: 192.168.1.96/28}, pool: gray}
`
	return doc
}

func traceQuery(f flow) *trace.Query {
	return &trace.Query{VNI: vni, Src: f.src, Dst: f.dst, Proto: f.proto, SPort: f.sport, DPort: f.dport, VIP: "vpc"}
}

// TestTraceMatchesThePackets is graygw trace against the dataplane (XDP, and
// BMv2 when present) programmed by the engine: for 400 flows the backend,
// outer destination and MAC the trace computes from the entries read back
// are those each flow's frame really reaches; then one bucket repointed on
// the gateway behind the controller's back is flagged (the entry named, the
// gateway disagreeing with the intent), and the trace follows the gateway's
// tables, as the packet does.
func TestTraceMatchesThePackets(t *testing.T) { forEachTarget(t, testTraceMatchesThePackets) }

func testTraceMatchesThePackets(t *testing.T, tg target) {
	tl := newLab(t, "gge2t", tg)
	e := tl.newEngineOnTempStore(t)
	apply(t, e, tl.traceIntent(t), 1)
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	fs := flows(400)
	rb, err := e.ReadBack(c, "gw")
	if err != nil {
		t.Fatal(err)
	}
	g, err := trace.FromReadBack(rb, traceQuery(fs[0]))
	if err != nil {
		t.Fatal(err)
	}
	// 192.168.1.10's DNS: both its VM rule and the DNS rule match; the more
	// specific DNS rule has the higher priority.
	if !g.InSync || g.Drift != nil || len(g.VIPs) != 1 || !g.VIPs[0].AgreesWithIntent || g.VIPs[0].Rule != "dns-0-28" {
		t.Fatalf("trace of %+v: %+v", fs[0], g)
	}
	rs := g.VIPs[0].Rules
	vm10 := slices.IndexFunc(rs, func(r trace.RuleCheck) bool { return r.Name == "vm-10" })
	if len(rs) != 4 || rs[0].Name != "dns-0-28" || vm10 < 0 || !rs[vm10].Matched || !strings.HasPrefix(rs[vm10].Why, "matches, but dns-0-28") {
		t.Fatalf("rules of %+v: %+v", fs[0], rs)
	}
	have, err := trace.Load(rb.Have)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]trace.Path, len(fs))
	for i, f := range fs {
		paths[i] = have.Explain(traceQuery(f), vip)
		if paths[i].Verdict != "forward" || paths[i].Rewrite == nil {
			t.Fatalf("flow %d %+v traced as %+v", i, f, paths[i])
		}
	}

	check := func(round uint64, fs []flow, paths []trace.Path) map[string]int {
		t.Helper()
		got := tl.sendRound(t, fs, round)
		if len(got) != len(fs) {
			t.Fatalf("round %d: %d of %d flows arrived", round, len(got), len(fs))
		}
		per := map[string]int{}
		wrong := 0
		for _, a := range got {
			p := paths[a.index]
			if a.backend.String() != p.Rewrite.OuterDst || a.dmac != p.Rewrite.DstMAC || a.flow != fs[a.index] {
				if wrong++; wrong <= 5 {
					t.Errorf("round %d: flow %d reached %s (MAC %s), the trace says %s %s (MAC %s)", round, a.index, a.backend, a.dmac,
						p.Backend, p.Rewrite.OuterDst, p.Rewrite.DstMAC)
				}
			}
			per[or(p.Rule, "default")+" -> "+p.Backend]++
		}
		if wrong > 0 {
			t.Fatalf("round %d: %d of %d flows reached another backend than the trace gives", round, wrong, len(fs))
		}
		return per
	}
	per := check(1, fs, paths)
	t.Logf("%s: %d flows, each where the trace said; by rule and backend: %v", tg, len(fs), per)
	rules, backends := map[string]bool{}, map[string]bool{}
	for k := range per {
		rule, be, _ := strings.Cut(k, " -> ")
		rules[rule], backends[be] = true, true
	}
	for _, r := range []string{"vm-11", "dns-0-28", "vms-96", "default"} {
		if !rules[r] {
			t.Errorf("no flow decided by %s: %v", r, per)
		}
	}
	if len(backends) != 6 {
		t.Errorf("the flows reached %d backends, want all 6: %v", len(backends), per)
	}

	// Behind the controller's back: a default-pool flow's bucket repointed
	// to another base backend, written with the engine's own election id
	// (the engine's session sees nothing; its periodic pass is an hour off).
	k := slices.IndexFunc(paths, func(p trace.Path) bool { return p.Rule == "" })
	was := paths[k]
	now := uint16(11)
	if was.BackendID == now {
		now = 12
	}
	i := slices.IndexFunc(rb.Have, func(en compile.Entry) bool {
		if en.Table != pipeline.TableBackendSelect {
			return false
		}
		pm, _ := en.Field(pipeline.MatchPoolID.Name)
		bm, _ := en.Field(pipeline.MatchBucket.Name)
		return uint16(compile.Uint(pm.Value)) == was.PoolID && uint16(compile.Uint(bm.Value)) == was.Bucket
	})
	if i < 0 {
		t.Fatalf("no backend_select entry for pool %d bucket %d", was.PoolID, was.Bucket)
	}
	en := rb.Have[i]
	en.Params = []compile.Param{{Name: en.Params[0].Name, Bits: en.Params[0].Bits, Value: []byte{byte(now >> 8), byte(now)}}}
	te, err := engine.NewCodec(stack.P4Info(t)).ToP4(&en)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tl.agent.srv.Write(c, &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 10},
		Updates: []*p4v1.Update{{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}}}); err != nil {
		t.Fatalf("write behind the controller's back: %v", err)
	}

	rb, err = e.ReadBack(c, "gw")
	if err != nil {
		t.Fatal(err)
	}
	g, err = trace.FromReadBack(rb, traceQuery(fs[k]))
	if err != nil {
		t.Fatal(err)
	}
	v := g.VIPs[0]
	want := fmt.Sprintf("be-%d", now)
	if g.InSync || g.Drift == nil || g.Drift.DifferCount != 1 || g.Drift.MissingCount+g.Drift.ExtraCount != 0 ||
		!strings.HasPrefix(g.Drift.Differ[0], "pool base v") || v.Backend != want || v.Intent.Backend != was.Backend || v.AgreesWithIntent {
		t.Fatalf("after the change behind the controller's back: drift %+v, path backend %s (intent %s, agrees %v); want the entry flagged, %s read back, %s wanted",
			g.Drift, v.Backend, v.Intent.Backend, v.AgreesWithIntent, want, was.Backend)
	}
	check(2, []flow{fs[k]}, []trace.Path{v.Path})
	t.Logf("%s: bucket %d of pool %d repointed behind the controller's back: flagged (%s); the trace and the packet both reach %s",
		tg, was.Bucket, was.PoolID, g.Drift.Differ[0], v.Backend)
}

// TestTraceMatchesThePacketsIPv6 is TestTraceMatchesThePackets for inner IPv6
// flows in VXLAN to the lab's VIP: gray_rules_v6 (two IPv6 VM rules, an IPv6
// prefix, and the VNI's IPv4 rules absent from it), the 42-byte key, and for
// each of 200 flows the backend and MAC the trace computes from the entries
// read back are those its frame reaches.
func TestTraceMatchesThePacketsIPv6(t *testing.T) { forEachTarget(t, testTraceMatchesThePacketsIPv6) }

func testTraceMatchesThePacketsIPv6(t *testing.T, tg target) {
	tl := newLab(t, "gge2t6", tg)
	e := tl.newEngineOnTempStore(t)
	in := compiletest.Load(t, tl.traceIntentYAML()+`  - {name: vm6-10, match: {vip: vpc, vni: 5001, src: "fd00:1::10"}, pool: gray}
  - {name: vm6-11, match: {vip: vpc, vni: 5001, src: "fd00:1::11"}, pool: gray}
  - {name: vms6-60, match: {vip: vpc, vni: 5001, src: "fd00:1::60/124"}, pool: gray}
`)
	apply(t, e, in, 1)
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rb, err := e.ReadBack(c, "gw")
	if err != nil {
		t.Fatal(err)
	}
	if !rb.InSync() {
		t.Fatalf("the gateway's entries differ from the intent's: %d missing, %d differ, %d extra", len(rb.Missing), len(rb.Differ), len(rb.Extra))
	}
	have, err := trace.Load(rb.Have)
	if err != nil {
		t.Fatal(err)
	}
	fs := make([]flow, 200)
	for i := range fs {
		src := netip.AddrFrom16([16]byte{0xfd, 0, 0, 1, 15: byte(0x10 + i%100)})
		fs[i] = flow{src: src, dst: netip.MustParseAddr("fd00:1::1"), proto: testpkt.ProtoUDP, sport: uint16(20000 + i), dport: 53}
		if i%2 == 1 {
			fs[i].proto, fs[i].dport = testpkt.ProtoTCP, 80
		}
	}
	paths := make([]trace.Path, len(fs))
	per := map[string]int{}
	for i, f := range fs {
		paths[i] = have.Explain(traceQuery(f), vip)
		if paths[i].Verdict != "forward" || paths[i].Rewrite == nil || len(paths[i].HashKey) != 2*pipeline.HashKey6Len {
			t.Fatalf("flow %d %+v traced as %+v", i, f, paths[i])
		}
		per[or(paths[i].Rule, "default")+" -> "+paths[i].Backend]++
	}
	got := tl.sendRound(t, fs, 1)
	if len(got) != len(fs) {
		t.Fatalf("%d of %d flows arrived", len(got), len(fs))
	}
	wrong := 0
	for _, a := range got {
		p := paths[a.index]
		if a.backend.String() != p.Rewrite.OuterDst || a.dmac != p.Rewrite.DstMAC || a.flow != fs[a.index] {
			if wrong++; wrong <= 5 {
				t.Errorf("flow %d reached %s (MAC %s), the trace says %s %s (MAC %s)", a.index, a.backend, a.dmac, p.Backend, p.Rewrite.OuterDst, p.Rewrite.DstMAC)
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d of %d IPv6 flows reached another backend than the trace gives", wrong, len(fs))
	}
	t.Logf("%s: %d IPv6 flows, each where the trace said; by rule and backend: %v", tg, len(fs), per)
	for _, r := range []string{"vm6-11", "vms6-60", "default"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(per)), func(k string) bool { return strings.HasPrefix(k, r+" -> ") }) {
			t.Errorf("no flow decided by %s: %v", r, per)
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
