package pipeline_test

import (
	"slices"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// The schema is the committed P4Info of each P4 target, field for field:
// every table's match fields (name, width, kind, order), its actions (bar
// NoAction) and their parameters, its size and direct counter; and the P4Info
// has no other table. The Tofino 1 build may size a table down, never up.
func TestSchemaIsTheP4Info(t *testing.T) {
	t.Run("v1model", func(t *testing.T) { checkSchema(t, p4src.P4InfoText, false) })
	t.Run("tna", func(t *testing.T) { checkSchema(t, p4src.TNAP4InfoText, true) })
	if _, ok := pipeline.TableSchema(pipeline.TableBackend); !ok {
		t.Error("TableSchema(backend) not found")
	}
	if _, ok := pipeline.TableSchema("GrayIngress.nope"); ok {
		t.Error("TableSchema found a table that does not exist")
	}
}

func checkSchema(t *testing.T, text []byte, smaller bool) {
	info, err := p4info.Load(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Tables()) != len(pipeline.Tables) {
		t.Errorf("the P4Info has %d tables, the schema %d", len(info.Tables()), len(pipeline.Tables))
	}
	kind := map[pipeline.MatchKind]p4configv1.MatchField_MatchType{pipeline.Exact: p4configv1.MatchField_EXACT,
		pipeline.Ternary: p4configv1.MatchField_TERNARY}
	for _, s := range pipeline.Tables {
		tb, err := info.Table(s.Name)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		switch {
		case smaller && (tb.Size <= 0 || tb.Size > int64(s.Size)):
			t.Errorf("%s: size %d in the P4Info, want 1..%d (a Tofino size, docs/p4-targets.md)", s.Name, tb.Size, s.Size)
		case !smaller && tb.Size != int64(s.Size):
			t.Errorf("%s: size %d in the P4Info, %d in the schema", s.Name, tb.Size, s.Size)
		}
		var fields []pipeline.Field
		for _, f := range tb.Fields {
			fields = append(fields, pipeline.Field{Name: f.Name, Bits: int(f.Bitwidth)})
			if f.MatchType != kind[s.Kind] {
				t.Errorf("%s: field %s matches %v, want %v", s.Name, f.Name, f.MatchType, kind[s.Kind])
			}
		}
		if !slices.Equal(fields, s.Match) {
			t.Errorf("%s: match fields %v in the P4Info, %v in the schema", s.Name, fields, s.Match)
		}
		var actions []pipeline.Action
		for _, ref := range tb.Actions {
			a, _ := info.ActionByID(ref.ID)
			if a.Name == pipeline.ActionNoAction {
				continue
			}
			act := pipeline.Action{Name: a.Name}
			for _, p := range a.Params {
				act.Params = append(act.Params, pipeline.Field{Name: p.Name, Bits: int(p.Bitwidth)})
			}
			actions = append(actions, act)
		}
		if !slices.EqualFunc(actions, s.Actions, func(a, b pipeline.Action) bool {
			return a.Name == b.Name && slices.Equal(a.Params, b.Params)
		}) {
			t.Errorf("%s: actions %v in the P4Info, %v in the schema", s.Name, actions, s.Actions)
		}
		dc := ""
		if tb.DirectCounter != nil {
			dc = tb.DirectCounter.Name
		}
		if dc != s.DirectCounter {
			t.Errorf("%s: direct counter %q in the P4Info, %q in the schema", s.Name, dc, s.DirectCounter)
		}
	}
}
