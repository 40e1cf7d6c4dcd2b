package server

import (
	"errors"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/pipeline"
)

// Every table of the schema has one binding, with direct counter methods
// exactly when the table has a direct counter.
func TestBindingsCoverTheSchema(t *testing.T) {
	bound := map[string]*binding{}
	for _, b := range bindings {
		if bound[b.schema.Name] != nil {
			t.Errorf("table %s bound twice", b.schema.Name)
		}
		bound[b.schema.Name] = b
	}
	for _, tb := range pipeline.Tables {
		b := bound[tb.Name]
		switch {
		case b == nil:
			t.Errorf("table %s has no binding", tb.Name)
		case (tb.DirectCounter != "") != (b.counter != nil && b.setCounter != nil):
			t.Errorf("table %s: direct counter %q, binding has counter methods: %v", tb.Name, tb.DirectCounter, b.counter != nil)
		}
	}
	if len(bound) != len(pipeline.Tables) {
		t.Errorf("%d bindings, %d tables in the schema", len(bound), len(pipeline.Tables))
	}
}

// A P4Info that differs from the schema in a table's shape is refused with
// ErrPipeline naming the difference, before anything is bound.
func TestNewSchemaRefusesAnotherShape(t *testing.T) {
	base := p4infotest.Committed(t).P4Info()
	field := func(p *p4configv1.P4Info, table, name string) *p4configv1.MatchField {
		for _, tb := range p.Tables {
			if tb.Preamble.Name == table {
				for _, f := range tb.MatchFields {
					if f.Name == name {
						return f
					}
				}
			}
		}
		t.Fatalf("no field %s.%s", table, name)
		return nil
	}
	action := func(p *p4configv1.P4Info, name string) *p4configv1.Action {
		for _, a := range p.Actions {
			if a.Preamble.Name == name {
				return a
			}
		}
		t.Fatalf("no action %s", name)
		return nil
	}
	for _, tc := range []struct {
		name   string
		change func(p *p4configv1.P4Info)
		want   string
	}{
		{"field renamed", func(p *p4configv1.P4Info) { field(p, pipeline.TableVIP, "dst_addr").Name = "dst" },
			"match field 1 is dst"},
		{"field wider", func(p *p4configv1.P4Info) { field(p, pipeline.TableBackendSelect, "bucket").Bitwidth = 32 },
			"match field 2 is bucket (EXACT, bit<32>), want bucket (EXACT, bit<16>)"},
		{"field kind", func(p *p4configv1.P4Info) {
			field(p, pipeline.TableGrayRules, "inner_src").Match = &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_LPM}
		}, "match field 4 is inner_src (LPM"},
		{"param wider", func(p *p4configv1.P4Info) { action(p, pipeline.ActionToBackend).Params[3].Bitwidth = 128 },
			"param 4 is underlay_ip (bit<128>), want underlay_ip (bit<32>)"},
		{"param missing", func(p *p4configv1.P4Info) {
			a := action(p, pipeline.ActionSplitPool)
			a.Params = a.Params[:1]
		}, "action " + pipeline.ActionSplitPool + ": 1 params"},
		{"action not listed", func(p *p4configv1.P4Info) {
			for _, tb := range p.Tables {
				if tb.Preamble.Name == pipeline.TablePortVLAN {
					tb.ActionRefs = tb.ActionRefs[len(tb.ActionRefs)-1:]
				}
			}
		}, "does not list action " + pipeline.ActionSetPortVLAN},
		{"direct counter gone", func(p *p4configv1.P4Info) {
			for _, tb := range p.Tables {
				if tb.Preamble.Name == pipeline.TableBackend {
					tb.DirectResourceIds = nil
				}
			}
			var keep []*p4configv1.DirectCounter
			for _, c := range p.DirectCounters {
				if c.Preamble.Name != pipeline.DirectCounterBackend {
					keep = append(keep, c)
				}
			}
			p.DirectCounters = keep
		}, `direct counter "", want "` + pipeline.DirectCounterBackend},
		{"drop_reasons size", func(p *p4configv1.P4Info) {
			for _, c := range p.Counters {
				if c.Preamble.Name == pipeline.CounterDropReasons {
					c.Size = 3
				}
			}
		}, "size 3, want"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proto.Clone(base).(*p4configv1.P4Info)
			tc.change(p)
			info, err := p4info.New(p)
			if err != nil {
				t.Fatalf("p4info.New: %v", err)
			}
			_, err = newSchema(info)
			if !errors.Is(err, ErrPipeline) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newSchema = %v, want ErrPipeline naming %q", err, tc.want)
			}
		})
	}
	if _, err := newSchema(p4infotest.Committed(t)); err != nil {
		t.Fatalf("the committed P4Info: %v", err)
	}
}
