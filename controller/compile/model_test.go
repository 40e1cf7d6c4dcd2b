package compile

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"testing"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// FromModel is the inverse of ToModel: the entries a compiled intent holds
// come back from their model state entry for entry (rules in order, the other
// tables as sets), and every vector state goes round trip unchanged.
func TestFromModelInvertsToModel(t *testing.T) {
	res := mustCompile(t, load(t, world+`gray_rules:
  - {name: vm, match: {vni: 5001, src: 10.0.0.5}, pool: gray}
  - {name: vpc, match: {vni: 5002}, pool: gray}
  - {name: pct, match: {vni: 6001}, percent: 25, pool: gray}
  - {name: web, match: {dst: 10.9.0.0/16, proto: tcp, dport: 443}, pool: gray}
`), nil)
	entries := res.Gateways[0].Entries
	st, err := ToModel(entries)
	if err != nil {
		t.Fatal(err)
	}
	back := FromModel(st)
	key := func(es []Entry) map[string]string {
		m := map[string]string{}
		for i := range es {
			e := es[i]
			e.Origin = ""
			m[e.Key()] = e.String()
		}
		return m
	}
	if got, want := key(back), key(entries); !reflect.DeepEqual(got, want) {
		t.Fatalf("FromModel(ToModel(entries)) differs: %d entries, want %d", len(got), len(want))
	}
	var rules, backRules []string
	for _, e := range entries {
		if e.Table == pipeline.TableGrayRules {
			rules = append(rules, e.Key())
		}
	}
	for _, e := range back {
		if e.Table == pipeline.TableGrayRules {
			backRules = append(backRules, e.Key())
		}
	}
	if len(rules) != 4 || !reflect.DeepEqual(rules, backRules) {
		t.Fatalf("gray rules out of order:\n%v\nwant\n%v", backRules, rules)
	}
	f, f6 := testvectors.Both(t)
	maps.Copy(f.States, f6.States)
	for name, vs := range f.States {
		want, err := vs.Model()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ToModel(FromModel(want))
		if err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		// The model keeps a rule's value unmasked; the entry masks it.
		for i := range want.GrayRules {
			r := &want.GrayRules[i]
			r.VIPID &= r.VIPMask
			r.Match = r.Match.And(r.Mask)
		}
		for i := range want.GrayRulesV6 {
			r := &want.GrayRulesV6[i]
			r.VIPID &= r.VIPMask
			r.Match = r.Match.And(r.Mask)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("state %s: round trip changed it", name)
		}
	}
}

// The IPv6 tables load into the model's: vip_v6 by its 128-bit address,
// gray_rules_v6 in order with 128-bit ternary addresses, to_backend_v6 as an
// IPv6 underlay; entries of the wrong shape are refused, naming the field.
func TestToModelIPv6Tables(t *testing.T) {
	st := model.NewState()
	vip := netip.MustParseAddr("2001:db8:ff::1").As16()
	st.VIPsV6[vip] = model.VIP{ID: 3, DefaultPool: 11}
	st.GrayRulesV6 = []model.GrayRuleV6{
		{Priority: 9, Match: pipeline.FlowKey6{VNI: 5001, Src: netip.MustParseAddr("2001:db8::5").As16()},
			Mask: pipeline.FlowKey6{VNI: pipeline.MaxVNI, Src: pipeline.AllOnes6.Src}, Action: model.SetPool, Pool: 12},
		{Priority: 3, VIPID: 3, VIPMask: 0xffff, Match: pipeline.FlowKey6{Dst: netip.MustParseAddr("2001:db8:99::").As16(), DPort: 443},
			Mask: pipeline.FlowKey6{Dst: netip.MustParseAddr("ffff:ffff:ffff::").As16(), DPort: 0xffff}, Action: model.SplitPool, Pool: 12, Threshold: 100},
	}
	st.Backends[31] = model.Backend{Port: 2, SMAC: [6]byte{2, 0, 0, 0, 1, 1}, DMAC: [6]byte{2, 0, 0, 0, 0x1f, 0x1f},
		IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:2::31").As16()}
	st.Backends[11] = model.Backend{Port: 1, UnderlayIP: 0x0a02000b}
	entries := FromModel(st)
	tables := map[string]int{}
	for _, e := range entries {
		tables[e.Table]++
	}
	if tables[pipeline.TableVIPv6] != 1 || tables[pipeline.TableGrayRulesV6] != 2 || tables[pipeline.TableBackend] != 2 {
		t.Fatalf("entries by table %v", tables)
	}
	got, err := ToModel(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, st)
	}
	// The second rule's key: no src (wildcard), a 16-byte dst value and mask.
	for _, e := range entries {
		if e.Table != pipeline.TableGrayRulesV6 || e.Priority != 3 {
			continue
		}
		if _, ok := e.Field(pipeline.MatchInnerSrc6.Name); ok {
			t.Error("a wildcard inner_src was written")
		}
		if m, ok := e.Field(pipeline.MatchInnerDst6.Name); !ok || len(m.Value) != 16 || len(m.Mask) != 16 || m.Mask[6] != 0 || m.Mask[5] != 0xff {
			t.Errorf("inner_dst %+v", m)
		}
	}

	bad := func(mod func(e *Entry)) error {
		es := FromModel(st)
		for i := range es {
			if es[i].Table == pipeline.TableGrayRulesV6 || es[i].Table == pipeline.TableVIPv6 || (es[i].Table == pipeline.TableBackend && es[i].Action == pipeline.ActionToBackendV6) {
				mod(&es[i])
			}
		}
		_, err := ToModel(es)
		return err
	}
	for name, mod := range map[string]func(e *Entry){
		"a 4-byte address": func(e *Entry) {
			for i := range e.Match {
				if e.Match[i].Bits == 128 {
					e.Match[i].Value = e.Match[i].Value[:4]
				}
			}
			for i := range e.Params {
				if e.Params[i].Bits == 128 {
					e.Params[i].Value = e.Params[i].Value[:4]
				}
			}
		},
		"a mirror on gray_rules_v6": func(e *Entry) {
			if e.Table == pipeline.TableGrayRulesV6 {
				e.Action = pipeline.ActionSetPoolMirror
			}
		},
	} {
		if err := bad(mod); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: %v, want ErrEntry", name, err)
		}
	}
}
