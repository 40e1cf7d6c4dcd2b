package engine

import (
	"errors"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent/intenttest"
)

func TestCodecRoundTripsEveryCompiledEntry(t *testing.T) {
	_, res := compiletest.Doc(t, string(intenttest.Example(t)))
	c := NewCodec(p4infotest.Committed(t))
	for _, e := range res.Gateways[0].Entries {
		te, err := c.ToP4(&e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.FromP4(te)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Equal(&e) {
			t.Fatalf("round trip:\n %s\n %s", e.String(), back.String())
		}
		// A target may pad values and reorder fields and parameters: canonical
		// form makes it equal again.
		padded := proto.Clone(te).(*p4v1.TableEntry)
		for _, m := range padded.Match {
			if x := m.GetExact(); x != nil {
				x.Value = append([]byte{0, 0}, x.Value...)
			}
		}
		ps := padded.GetAction().GetAction().Params
		for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
			ps[i], ps[j] = ps[j], ps[i]
		}
		if !proto.Equal(Canonicalize(padded), te) {
			t.Fatalf("canonical form of a padded, reordered %s differs", e.String())
		}
	}
}

func TestCodecRefusesMalformedEntries(t *testing.T) {
	c := NewCodec(p4infotest.Committed(t))
	tt, _ := c.info.Table("GrayIngress.vni_tenant")
	act, _ := c.info.Action("GrayIngress.set_tenant")
	exact := func(v []byte) []*p4v1.FieldMatch {
		return []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}}
	}
	action := func(params ...*p4v1.Action_Param) *p4v1.TableAction {
		return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: act.ID, Params: params}}}
	}
	for name, te := range map[string]*p4v1.TableEntry{
		"unknown table":    {TableId: 0x02ffffff},
		"too wide":         {TableId: tt.ID, Match: exact([]byte{1, 0, 0, 0}), Action: action(&p4v1.Action_Param{ParamId: 1, Value: []byte{1}})},
		"empty value":      {TableId: tt.ID, Match: exact(nil), Action: action(&p4v1.Action_Param{ParamId: 1, Value: []byte{1}})},
		"no action":        {TableId: tt.ID, Match: exact([]byte{1})},
		"unknown action":   {TableId: tt.ID, Match: exact([]byte{1}), Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: 7}}}},
		"missing param":    {TableId: tt.ID, Match: exact([]byte{1}), Action: action()},
		"param too wide":   {TableId: tt.ID, Match: exact([]byte{1}), Action: action(&p4v1.Action_Param{ParamId: 1, Value: []byte{1, 0, 0}})},
		"wrong match kind": {TableId: tt.ID, Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: []byte{1}, PrefixLen: 8}}}}},
	} {
		if _, err := c.FromP4(te); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: %v, want ErrEntry", name, err)
		}
		_ = c.Describe(te) // never panics
		_ = Canonicalize(te)
	}
	for name, e := range map[string]*compile.Entry{
		"unknown table":  {Table: "GrayIngress.nope"},
		"unknown field":  {Table: "GrayIngress.vni_tenant", Match: []compile.Match{{Field: "x", Kind: compile.Exact, Value: []byte{1}}}},
		"too wide":       {Table: "GrayIngress.vni_tenant", Match: []compile.Match{{Field: "vni", Kind: compile.Exact, Value: []byte{1, 0, 0, 0}}}},
		"unknown action": {Table: "GrayIngress.vni_tenant", Action: "nope"},
		"unknown param": {Table: "GrayIngress.vni_tenant", Action: "GrayIngress.set_tenant",
			Params: []compile.Param{{Name: "x", Value: []byte{1}}}},
	} {
		if _, err := c.ToP4(e); !errors.Is(err, ErrEntry) {
			t.Errorf("ToP4 %s: %v, want ErrEntry", name, err)
		}
	}
}

func TestCookieIsSemantic(t *testing.T) {
	a := p4infotest.Committed(t)
	pi := a.P4Info()
	// The same P4Info through its binary encoding.
	b, err := p4info.New(p4infotest.ThroughBinary(t, pi))
	if err != nil {
		t.Fatal(err)
	}
	if Cookie(a, nil) != Cookie(b, nil) {
		t.Fatal("the same P4Info gives two cookies")
	}
	if Cookie(a, nil) == Cookie(a, []byte("bmv2.json")) {
		t.Fatal("the device config does not change the cookie")
	}
	// Documentation is not meaning.
	withDoc := proto.Clone(pi).(*p4configv1.P4Info)
	withDoc.Tables[0].Preamble.Annotations = append(withDoc.Tables[0].Preamble.Annotations, "@brief(\"docs\")")
	c, err := p4info.New(withDoc)
	if err != nil {
		t.Fatal(err)
	}
	if Cookie(a, nil) != Cookie(c, nil) {
		t.Fatal("an annotation changed the cookie")
	}
	// A size is.
	bigger := proto.Clone(pi).(*p4configv1.P4Info)
	bigger.Tables[0].Size++
	d, err := p4info.New(bigger)
	if err != nil {
		t.Fatal(err)
	}
	if Cookie(a, nil) == Cookie(d, nil) {
		t.Fatal("a table size change kept the cookie")
	}
}
