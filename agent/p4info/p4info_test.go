package p4info_test

import (
	"errors"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

func project(t *testing.T) *p4info.Info {
	t.Helper()
	in, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatalf("Load(committed P4Info): %v", err)
	}
	return in
}

func TestProjectTables(t *testing.T) {
	in := project(t)
	cases := []struct {
		name     string
		size     int64
		fields   []string
		widths   []int32
		kind     p4configv1.MatchField_MatchType
		counter  string
		priority bool
	}{
		{pipeline.TableVIP, pipeline.VIPTableSize, []string{"dst_addr"}, []int32{32}, p4configv1.MatchField_EXACT, pipeline.DirectCounterVIP, false},
		{pipeline.TableVIPv6, pipeline.VIPv6TableSize, []string{"dst_addr"}, []int32{128}, p4configv1.MatchField_EXACT, pipeline.DirectCounterVIPv6, false},
		{pipeline.TableVNITenant, pipeline.VNITenantTableSize, []string{"vni"}, []int32{24}, p4configv1.MatchField_EXACT, "", false},
		{pipeline.TableGrayRules, pipeline.GrayRulesTableSize,
			[]string{"vip_id", "vni", "tenant_id", "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport"},
			[]int32{16, 24, 16, 32, 32, 8, 16, 16}, p4configv1.MatchField_TERNARY, pipeline.DirectCounterGrayRules, true},
		{pipeline.TableGrayRulesV6, pipeline.GrayRulesV6TableSize,
			[]string{"vip_id", "vni", "tenant_id", "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport"},
			[]int32{16, 24, 16, 128, 128, 8, 16, 16}, p4configv1.MatchField_TERNARY, pipeline.DirectCounterGrayRulesV6, true},
		{pipeline.TablePoolHash, pipeline.PoolHashTableSize, []string{"pool_id"}, []int32{16}, p4configv1.MatchField_EXACT, "", false},
		{pipeline.TableBackendSelect, pipeline.BackendSelectTableSize, []string{"pool_id", "bucket"}, []int32{16, 16}, p4configv1.MatchField_EXACT, "", false},
		{pipeline.TableBackend, pipeline.BackendTableSize, []string{"backend_id"}, []int32{16}, p4configv1.MatchField_EXACT, pipeline.DirectCounterBackend, false},
		{pipeline.TableVLANAccept, pipeline.VLANAcceptTableSize, []string{"ingress_port", "vid"}, []int32{9, 12}, p4configv1.MatchField_EXACT, "", false},
		{pipeline.TablePortVLAN, pipeline.PortVLANTableSize, []string{"egress_port"}, []int32{9}, p4configv1.MatchField_EXACT, "", false},
	}
	noAction, err := in.Action(pipeline.ActionNoAction)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		tbl, err := in.Table(c.name)
		if err != nil {
			t.Fatalf("Table(%q): %v", c.name, err)
		}
		if byID, ok := in.TableByID(tbl.ID); !ok || byID != tbl {
			t.Errorf("TableByID(%#x) does not return %s", tbl.ID, c.name)
		}
		if tbl.Size != c.size {
			t.Errorf("%s: size %d, want %d", c.name, tbl.Size, c.size)
		}
		if tbl.NeedsPriority() != c.priority {
			t.Errorf("%s: NeedsPriority %v", c.name, tbl.NeedsPriority())
		}
		if len(tbl.Fields) != len(c.fields) {
			t.Fatalf("%s: %d fields", c.name, len(tbl.Fields))
		}
		for i, f := range tbl.Fields {
			if f.Name != c.fields[i] || f.Bitwidth != c.widths[i] || f.MatchType != c.kind || f.ID != uint32(i+1) {
				t.Errorf("%s field %d = %+v", c.name, i, *f)
			}
			if g, err := tbl.Field(f.Name); err != nil || g != f {
				t.Errorf("%s: Field(%q) = %v, %v", c.name, f.Name, g, err)
			}
		}
		if tbl.ConstDefaultActionID != noAction.ID {
			t.Errorf("%s: const default action %#x, want NoAction", c.name, tbl.ConstDefaultActionID)
		}
		if ref, ok := tbl.ActionRef(noAction.ID); !ok || ref.Scope != p4configv1.ActionRef_DEFAULT_ONLY {
			t.Errorf("%s: NoAction ref %+v %v", c.name, ref, ok)
		}
		switch {
		case c.counter == "" && tbl.DirectCounter != nil:
			t.Errorf("%s: unexpected direct counter %s", c.name, tbl.DirectCounter.Name)
		case c.counter != "" && (tbl.DirectCounter == nil || tbl.DirectCounter.Name != c.counter || tbl.DirectCounter.TableID != tbl.ID):
			t.Errorf("%s: direct counter %+v, want %s", c.name, tbl.DirectCounter, c.counter)
		}
	}
	if len(in.Tables()) != len(cases) {
		t.Errorf("%d tables, want %d", len(in.Tables()), len(cases))
	}
}

func TestProjectActionsAndCounters(t *testing.T) {
	in := project(t)
	a, err := in.Action(pipeline.ActionToBackend)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		width int32
	}{{"port", 9}, {"smac", 48}, {"dmac", 48}, {"underlay_ip", 32}}
	for i, w := range want {
		p := a.Params[i]
		if p.Name != w.name || p.Bitwidth != w.width || p.ID != uint32(i+1) {
			t.Errorf("to_backend param %d = %+v", i, *p)
		}
		if q, ok := a.ParamByID(p.ID); !ok || q != p {
			t.Errorf("ParamByID(%d)", p.ID)
		}
	}
	if _, err := a.Param("nope"); !errors.Is(err, p4info.ErrNotFound) {
		t.Errorf("Param(nope) = %v, want ErrNotFound", err)
	}
	alias, err := in.Action("to_backend")
	if err != nil || alias != a {
		t.Errorf("Action(alias) = %v, %v", alias, err)
	}
	c, err := in.Counter(pipeline.CounterDropReasons)
	if err != nil || c.Size != pipeline.NumReasons || c.Unit != p4configv1.CounterSpec_BOTH {
		t.Errorf("Counter(drop_reasons) = %+v, %v", c, err)
	}
	if _, err := in.Table("GrayIngress.nope"); !errors.Is(err, p4info.ErrNotFound) {
		t.Errorf("Table(nope) = %v, want ErrNotFound", err)
	}
	if _, ok := in.TableByID(a.ID); ok {
		t.Error("TableByID(an action id) found a table")
	}
	a6, err := in.Action(pipeline.ActionToBackendV6)
	if err != nil || len(a6.Params) != 4 || a6.Params[3].Name != "underlay_ip" || a6.Params[3].Bitwidth != 128 {
		t.Errorf("Action(to_backend_v6) = %+v, %v", a6, err)
	}
	if len(in.DirectCounters()) != 5 || len(in.Counters()) != 3 || len(in.Actions()) != 15 {
		t.Errorf("counts: %d direct counters, %d counters, %d actions", len(in.DirectCounters()), len(in.Counters()), len(in.Actions()))
	}
}

// tableNamed is p's table of that name.
func tableNamed(p *p4configv1.P4Info, name string) *p4configv1.Table {
	for _, tb := range p.Tables {
		if tb.Preamble.Name == name {
			return tb
		}
	}
	panic("no table " + name)
}

func TestNewRejectsMalformed(t *testing.T) {
	base, err := p4info.Parse(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(p *p4configv1.P4Info){
		"duplicate table id": func(p *p4configv1.P4Info) { p.Tables[1].Preamble.Id = p.Tables[0].Preamble.Id },
		"action id reused by table": func(p *p4configv1.P4Info) {
			p.Tables[0].Preamble.Id = p.Actions[0].Preamble.Id
		},
		"zero id":             func(p *p4configv1.P4Info) { p.Actions[1].Preamble.Id = 0 },
		"duplicate name":      func(p *p4configv1.P4Info) { p.Tables[1].Preamble.Name = p.Tables[0].Preamble.Name },
		"zero bitwidth":       func(p *p4configv1.P4Info) { p.Tables[0].MatchFields[0].Bitwidth = 0 },
		"duplicate field id":  func(p *p4configv1.P4Info) { tableNamed(p, pipeline.TableGrayRules).MatchFields[1].Id = 1 },
		"dangling action ref": func(p *p4configv1.P4Info) { p.Tables[0].ActionRefs[0].Id = 0x01000099 },
		"dangling counter":    func(p *p4configv1.P4Info) { p.DirectCounters[0].DirectTableId = 0x02000099 },
		"bad const default":   func(p *p4configv1.P4Info) { p.Tables[0].ConstDefaultActionId = 0x01000002 },
		"zero counter size":   func(p *p4configv1.P4Info) { p.Counters[0].Size = 0 },
		"duplicate param":     func(p *p4configv1.P4Info) { p.Actions[1].Params[1].Id = 1 },
	}
	for name, mutate := range cases {
		p := proto.Clone(base).(*p4configv1.P4Info)
		mutate(p)
		if _, err := p4info.New(p); !errors.Is(err, p4info.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := p4info.New(nil); !errors.Is(err, p4info.ErrInvalid) {
		t.Errorf("New(nil) = %v", err)
	}
	if _, err := p4info.Load([]byte("tables { preamble { id: ")); !errors.Is(err, p4info.ErrInvalid) {
		t.Errorf("Load(garbage) = %v", err)
	}
}

func TestDiff(t *testing.T) {
	base, err := p4info.Parse(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	// Binary round trip: same pipeline.
	if d := p4info.Diff(base, p4infotest.ThroughBinary(t, base)); d != nil {
		t.Errorf("binary round trip differs: %v", d)
	}

	same := map[string]func(p *p4configv1.P4Info){
		"tables reordered": func(p *p4configv1.P4Info) { p.Tables[0], p.Tables[5] = p.Tables[5], p.Tables[0] },
		"fields reordered": func(p *p4configv1.P4Info) {
			f := tableNamed(p, pipeline.TableGrayRules).MatchFields
			f[0], f[7] = f[7], f[0]
		},
		"doc added": func(p *p4configv1.P4Info) { p.Tables[0].Preamble.Doc = &p4configv1.Documentation{Brief: "x"} },
		"annotation added": func(p *p4configv1.P4Info) {
			p.Actions[0].Preamble.Annotations = append(p.Actions[0].Preamble.Annotations, "@x")
		},
		"pkg_info changed": func(p *p4configv1.P4Info) { p.PkgInfo = &p4configv1.PkgInfo{Name: "other", Arch: "psa"} },
	}
	for name, mutate := range same {
		p := proto.Clone(base).(*p4configv1.P4Info)
		mutate(p)
		if d := p4info.Diff(base, p); d != nil {
			t.Errorf("%s: Diff = %v, want none", name, d)
		}
		if !p4info.Equal(base, p) {
			t.Errorf("%s: not Equal", name)
		}
	}

	differ := map[string]struct {
		mutate func(p *p4configv1.P4Info)
		want   string
	}{
		"size": {func(p *p4configv1.P4Info) { p.Tables[0].Size = 2048 }, "table GrayIngress.vip: size 2048, want 1024"},
		"bitwidth": {func(p *p4configv1.P4Info) { tableNamed(p, pipeline.TableVNITenant).MatchFields[0].Bitwidth = 32 },
			"table GrayIngress.vni_tenant: match fields"},
		"match kind": {func(p *p4configv1.P4Info) {
			p.Tables[0].MatchFields[0].Match = &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_LPM}
		}, "GrayIngress.vip: match fields"},
		"renamed": {func(p *p4configv1.P4Info) { p.Tables[0].Preamble.Name = "X.vip" }, `is named "X.vip"`},
		"missing": {func(p *p4configv1.P4Info) { p.Tables = p.Tables[1:] }, "table GrayIngress.vip (id 0x2000001) is missing"},
		"extra meter": {func(p *p4configv1.P4Info) {
			p.Meters = append(p.Meters, &p4configv1.Meter{Preamble: &p4configv1.Preamble{Id: 0x15000001, Name: "m"}})
		}, "unexpected meter m"},
		"param width": {func(p *p4configv1.P4Info) { p.Actions[8].Params[0].Bitwidth = 16 }, "action GrayIngress.to_backend differs"},
		"scope":       {func(p *p4configv1.P4Info) { p.Tables[0].ActionRefs[1].Scope = 0 }, "action refs differ"},
		"counter":     {func(p *p4configv1.P4Info) { p.Counters[0].Size = 17 }, "counter GrayIngress.drop_reasons differs"},
		"no const default": {func(p *p4configv1.P4Info) { p.Tables[3].ConstDefaultActionId = 0 },
			"const default action 0x0"},
	}
	for name, c := range differ {
		p := proto.Clone(base).(*p4configv1.P4Info)
		c.mutate(p)
		d := p4info.Diff(base, p)
		if !strings.Contains(strings.Join(d, "\n"), c.want) {
			t.Errorf("%s: Diff = %q, want a line containing %q", name, d, c.want)
		}
		if p4info.Equal(base, p) {
			t.Errorf("%s: Equal", name)
		}
	}
}

// A bf-p4c P4Info names everything under "pipe."; trimmed, it indexes under the
// v1model names with the same ids, and the original is left alone.
func TestTrimNamePrefix(t *testing.T) {
	base := project(t)
	pi := proto.Clone(base.P4Info()).(*p4configv1.P4Info)
	for _, tb := range pi.GetTables() {
		tb.Preamble.Name = p4info.TNAPrefix + tb.GetPreamble().GetName()
	}
	for _, a := range pi.GetActions() {
		a.Preamble.Name = p4info.TNAPrefix + a.GetPreamble().GetName()
	}
	for _, c := range pi.GetDirectCounters() {
		c.Preamble.Name = p4info.TNAPrefix + c.GetPreamble().GetName()
	}
	if _, err := p4info.New(pi); err != nil {
		t.Fatalf("prefixed P4Info: %v", err)
	}
	trimmed := p4info.TrimNamePrefix(pi, p4info.TNAPrefix)
	if d := p4info.Diff(base.P4Info(), trimmed); d != nil {
		t.Fatalf("trimmed P4Info differs from the project's: %v", d)
	}
	if !strings.HasPrefix(pi.GetTables()[0].GetPreamble().GetName(), p4info.TNAPrefix) {
		t.Fatal("TrimNamePrefix changed its argument")
	}
	if p4info.TrimNamePrefix(nil, p4info.TNAPrefix) != nil {
		t.Fatal("TrimNamePrefix(nil) is not nil")
	}
}
