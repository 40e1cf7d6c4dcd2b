package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// tnaInfo is the project's P4Info as bf-p4c names it (every name under "pipe.",
// as in a TNA build) with gray_rules sized as on Tofino 1 (8192), after edit
// changes the copy further (nil: no change).
func tnaInfo(t *testing.T, edit func(*p4configv1.P4Info)) *p4info.Info {
	t.Helper()
	pi := proto.Clone(stack.P4Info(t).P4Info()).(*p4configv1.P4Info)
	pi.PkgInfo.Arch = "tna"
	pre := func(p *p4configv1.Preamble) { p.Name = p4info.TNAPrefix + p.GetName() }
	for _, tb := range pi.GetTables() {
		pre(tb.GetPreamble())
		if tb.GetPreamble().GetName() == p4info.TNAPrefix+pipeline.TableGrayRules {
			tb.Size = 8192
		}
	}
	for _, a := range pi.GetActions() {
		if a.GetPreamble().GetName() != "NoAction" { // p4c's own, unprefixed
			pre(a.GetPreamble())
		}
	}
	for _, c := range pi.GetCounters() {
		pre(c.GetPreamble())
	}
	for _, c := range pi.GetDirectCounters() {
		pre(c.GetPreamble())
	}
	if edit != nil {
		edit(pi)
	}
	info, err := p4info.New(pi)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// realTNAInfo is the P4Info bf-p4c emits for the Tofino 1 build
// (p4src/tna/graygw_tna.p4info.txtpb, checked against the compiler by make p4).
func realTNAInfo(t *testing.T) *p4info.Info {
	t.Helper()
	info, err := p4info.Load(p4src.TNAP4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func tnaTable(pi *p4configv1.P4Info, name string) *p4configv1.Table {
	for _, tb := range pi.GetTables() {
		if tb.GetPreamble().GetName() == p4info.TNAPrefix+name {
			return tb
		}
	}
	panic("no table " + name)
}

func TestCheckP4Info(t *testing.T) {
	base := stack.P4Info(t)
	if err := engine.CheckP4Info(base, base); err != nil {
		t.Fatalf("the project's P4Info against itself: %v", err)
	}
	real := realTNAInfo(t)
	if err := engine.CheckP4Info(base, real); err != nil {
		t.Fatalf("the P4Info bf-p4c emits for Tofino 1 refused: %v", err)
	}
	// What that P4Info really differs in, so the check above means something.
	if a, b := mustCounter(t, base, pipeline.CounterDropReasons).ID, mustCounter(t, real, pipeline.CounterDropReasons).ID; a == b {
		t.Fatalf("drop_reasons has the pinned id %#x in the Tofino build too: bf-p4c honours @id now; tighten CheckP4Info", a)
	}
	if g, _ := real.Table(pipeline.TableGrayRules); g.Size >= 16384 {
		t.Fatalf("the Tofino 1 build's gray_rules holds %d", g.Size)
	}
	// Its IPv6 tables take the IPv6 actions, by the pinned ids: the one
	// P4Info shape of both targets (docs/p4-targets.md "IPv6").
	for table, action := range map[string]string{pipeline.TableVIPv6: pipeline.ActionSetVIPv6,
		pipeline.TableGrayRulesV6: pipeline.ActionSplitPoolV6} {
		want, err := base.Action(action)
		if err != nil {
			t.Fatal(err)
		}
		if v6, err := real.Table(table); err != nil {
			t.Fatalf("the Tofino 1 build has no %s: %v", table, err)
		} else if _, ok := v6.ActionRef(want.ID); !ok {
			t.Fatalf("the Tofino 1 build's %s does not take %s (%#x)", table, action, want.ID)
		}
	}
	tna := tnaInfo(t, nil)
	if err := engine.CheckP4Info(base, tna); err != nil {
		t.Fatalf("pipe.-prefixed copy with gray_rules 8192 refused: %v", err)
	}
	if g, _ := tna.Table(p4info.TNAPrefix + pipeline.TableGrayRules); g.Size != 8192 {
		t.Fatalf("gray_rules size %d", g.Size)
	}

	// A build older than IPv6 (issue 19) takes the IPv4 entries.
	noIPv6 := tnaInfo(t, func(pi *p4configv1.P4Info) {
		v6 := map[string]bool{}
		for _, n := range []string{pipeline.TableVIPv6, pipeline.TableGrayRulesV6, pipeline.ActionToBackendV6,
			pipeline.ActionSetVIPv6, pipeline.ActionSetPoolV6, pipeline.ActionSplitPoolV6,
			pipeline.DirectCounterVIPv6, pipeline.DirectCounterGrayRulesV6} {
			v6[p4info.TNAPrefix+n] = true
		}
		pi.Tables = slices.DeleteFunc(pi.Tables, func(tb *p4configv1.Table) bool { return v6[tb.GetPreamble().GetName()] })
		pi.DirectCounters = slices.DeleteFunc(pi.DirectCounters, func(c *p4configv1.DirectCounter) bool { return v6[c.GetPreamble().GetName()] })
		var toV6 uint32
		pi.Actions = slices.DeleteFunc(pi.Actions, func(a *p4configv1.Action) bool {
			if a.GetPreamble().GetName() == p4info.TNAPrefix+pipeline.ActionToBackendV6 {
				toV6 = a.GetPreamble().GetId()
			}
			return v6[a.GetPreamble().GetName()]
		})
		b := tnaTable(pi, pipeline.TableBackend)
		b.ActionRefs = slices.DeleteFunc(b.ActionRefs, func(r *p4configv1.ActionRef) bool { return r.GetId() == toV6 })
	})
	if _, err := noIPv6.Table(p4info.TNAPrefix + pipeline.TableVIPv6); err == nil {
		t.Fatal("the copy without IPv6 still has vip_v6")
	}
	if err := engine.CheckP4Info(base, noIPv6); err != nil {
		t.Fatalf("a build without IPv6 refused: %v", err)
	}

	cases := []struct {
		name string
		edit func(*p4configv1.P4Info)
		want string
	}{
		{"table id", func(pi *p4configv1.P4Info) { tnaTable(pi, pipeline.TableVNITenant).Preamble.Id += 0x100 },
			"table GrayIngress.vni_tenant has id 0x2000102, want 0x2000002"},
		{"field bitwidth", func(pi *p4configv1.P4Info) { tnaTable(pi, pipeline.TableVNITenant).MatchFields[0].Bitwidth = 16 },
			"table GrayIngress.vni_tenant: match field vni is 16 bits, want 24"},
		{"match kind", func(pi *p4configv1.P4Info) {
			tnaTable(pi, pipeline.TableGrayRules).MatchFields[0].Match = &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_EXACT}
		}, "table GrayIngress.gray_rules: match field vip_id is EXACT, want TERNARY"},
		{"missing table", func(pi *p4configv1.P4Info) {
			var keep []*p4configv1.Table
			for _, tb := range pi.GetTables() {
				if tb.GetPreamble().GetName() != p4info.TNAPrefix+pipeline.TableVNITenant {
					keep = append(keep, tb)
				}
			}
			pi.Tables = keep
		}, "table GrayIngress.vni_tenant is missing"},
		{"counter unit", func(pi *p4configv1.P4Info) {
			pi.Counters[0].Spec.Unit = p4configv1.CounterSpec_PACKETS
		}, "counter GrayIngress.drop_reasons counts PACKETS, want BOTH"},
		{"missing counter", func(pi *p4configv1.P4Info) { pi.Counters = nil },
			"counter GrayIngress.drop_reasons is missing"},
		// A build of the shape before the IPv6 actions (vip_v6 with set_vip):
		// the engine's vip_v6 entries would be refused, so the gateway is.
		{"vip_v6 without set_vip_v6", func(pi *p4configv1.P4Info) {
			var setVIP, setVIPv6 uint32
			for _, a := range pi.GetActions() {
				switch a.GetPreamble().GetName() {
				case p4info.TNAPrefix + pipeline.ActionSetVIP:
					setVIP = a.GetPreamble().GetId()
				case p4info.TNAPrefix + pipeline.ActionSetVIPv6:
					setVIPv6 = a.GetPreamble().GetId()
				}
			}
			for _, r := range tnaTable(pi, pipeline.TableVIPv6).ActionRefs {
				if r.GetId() == setVIPv6 {
					r.Id = setVIP
				}
			}
		}, "table GrayIngress.vip_v6 does not allow action GrayIngress.set_vip_v6"},
		{"param bitwidth", func(pi *p4configv1.P4Info) {
			for _, a := range pi.GetActions() {
				if a.GetPreamble().GetName() == p4info.TNAPrefix+pipeline.ActionSetTenant {
					a.Params[0].Bitwidth++
				}
			}
		}, "action GrayIngress.set_tenant: parameter tenant_id is 17 bits, want 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := engine.CheckP4Info(base, tnaInfo(t, c.edit))
			if !errors.Is(err, engine.ErrIncompatibleP4Info) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func mustCounter(t *testing.T, info *p4info.Info, name string) *p4info.Counter {
	t.Helper()
	c, err := info.Counter(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
