package server

import (
	"bytes"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
)

// The graygw tables use only exact and ternary fields; the validation and
// canonical form are generic. This test covers LPM, range and optional on a
// synthetic table.
func genericTable(t *testing.T) *tableInfo {
	t.Helper()
	p := &p4configv1.P4Info{
		Tables: []*p4configv1.Table{{
			Preamble: &p4configv1.Preamble{Id: 0x02000100, Name: "t"},
			MatchFields: []*p4configv1.MatchField{
				{Id: 1, Name: "lpm", Bitwidth: 32, Match: &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_LPM}},
				{Id: 2, Name: "range", Bitwidth: 12, Match: &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_RANGE}},
				{Id: 3, Name: "opt", Bitwidth: 9, Match: &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_OPTIONAL}},
			},
			ActionRefs: []*p4configv1.ActionRef{{Id: 0x01000100}},
			Size:       8,
		}},
		Actions: []*p4configv1.Action{{Preamble: &p4configv1.Preamble{Id: 0x01000100, Name: "a"},
			Params: []*p4configv1.Action_Param{{Id: 1, Name: "x", Bitwidth: 48}}}},
	}
	info, err := p4info.New(p)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := info.TableByID(0x02000100)
	a, _ := info.ActionByID(0x01000100)
	return &tableInfo{Table: tb, actions: map[uint32]*p4info.Action{a.ID: a},
		paramIndex: map[uint32]map[uint32]int{a.ID: {1: 0}}, fieldIndex: map[uint32]int{1: 0, 2: 1, 3: 2}}
}

func lpm(v []byte, plen int32) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v, PrefixLen: plen}}}
}

func rng(lo, hi []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: 2, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: lo, High: hi}}}
}

func opt(v []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: 3, FieldMatchType: &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: v}}}
}

func TestGenericMatchKinds(t *testing.T) {
	tb := genericTable(t)
	act := &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: 0x01000100,
		Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{0x02, 0, 0, 0, 0, 1}}}}}}
	good := []*p4v1.TableEntry{
		{TableId: tb.ID, Priority: 1, Match: []*p4v1.FieldMatch{lpm([]byte{10, 0, 0, 0}, 8), rng([]byte{1}, []byte{0x0f, 0xff}), opt([]byte{1, 0xff})}},
		{TableId: tb.ID, Priority: 2, Match: []*p4v1.FieldMatch{lpm([]byte{10, 1, 2, 3}, 32)}},
		{TableId: tb.ID, Priority: 3, Match: []*p4v1.FieldMatch{rng([]byte{0}, []byte{0x0f, 0xfe})}},
		{TableId: tb.ID, Priority: 4},
	}
	for i, te := range good {
		te.Action = act
		e, uerr := parseMatch(tb, te)
		if uerr != nil {
			t.Fatalf("good entry %d: %v", i, uerr)
		}
		if e.action, e.params, uerr = parseAction(tb, te.Action); uerr != nil {
			t.Fatalf("good entry %d action: %v", i, uerr)
		}
		// Round trip through the stored form gives back the same message.
		back, err := decodeEntry(tb, e.key(), e.value())
		if err != nil {
			t.Fatalf("entry %d: decode: %v", i, err)
		}
		if !proto.Equal(back.proto(), te) {
			t.Errorf("entry %d: read back\n%v\nwant\n%v", i, back.proto(), te)
		}
	}
	bad := []struct {
		m    *p4v1.FieldMatch
		want string
	}{
		{lpm([]byte{10, 0, 0, 1}, 8), "past the /8 prefix"},
		{lpm([]byte{10, 0, 0, 0}, 0), "prefix_len 0"},
		{lpm([]byte{10, 0, 0, 0}, 33), "prefix_len 33"},
		{lpm([]byte{1, 10, 0, 0, 0}, 8), "33 significant bits"},
		{rng([]byte{5}, []byte{4}), "low 0x05 > high 0x04"},
		{rng([]byte{0}, []byte{0x0f, 0xff}), "full range"},
		{rng([]byte{0}, []byte{0x10, 0}), "13 significant bits"},
		{opt([]byte{2, 0}), "10 significant bits"},
		{opt(nil), "empty byte string"},
		{&p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{1}}}}, "EXACT match given for a LPM field"},
	}
	for _, c := range bad {
		_, uerr := parseMatch(tb, &p4v1.TableEntry{TableId: tb.ID, Priority: 1, Match: []*p4v1.FieldMatch{c.m}})
		if uerr == nil || !strings.Contains(uerr.msg, c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.m, uerr, c.want)
		}
	}
}

func TestMasked(t *testing.T) {
	cases := []struct {
		v, m []byte
		ok   bool
	}{
		{[]byte{1}, []byte{1}, true},
		{[]byte{2}, []byte{1}, false},
		{[]byte{1, 0}, []byte{0xff}, false},   // value longer than mask
		{[]byte{0xff}, []byte{1, 0xff}, true}, // mask longer than value
		{[]byte{0}, []byte{0}, true},
	}
	for _, c := range cases {
		if masked(c.v, c.m) != c.ok {
			t.Errorf("masked(%x, %x) = %v", c.v, c.m, !c.ok)
		}
	}
	if cmpUint([]byte{1, 0}, []byte{0xff}) <= 0 || cmpUint([]byte{3}, []byte{3}) != 0 || !bytes.Equal(p4info.Mask(12, 12), []byte{0x0f, 0xff}) {
		t.Error("cmpUint or Mask wrong")
	}
}

func TestDecodeEntryRejectsGarbage(t *testing.T) {
	tb := genericTable(t)
	for _, k := range []string{"", "abc", "\x09\x00\x00\x00\x01", "\x04\x01\x01\x00\x00\x00\x00\x01"} {
		if _, err := decodeEntry(tb, k, "\x80\x80\x80\x08\x00"); err == nil {
			t.Errorf("decodeEntry(%q) accepted", k)
		}
	}
}
