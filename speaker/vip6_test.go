package speaker

import (
	"net/netip"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// TestVIPEntryDecodesBothFamilies: a vip entry's dst_addr is 32 bits, a
// vip_v6 entry's 128, each in P4Runtime's canonical bytes (leading zeros
// left out, or padded); a value wider than the table's field, or another
// action, is no VIP.
func TestVIPEntryDecodesBothFamilies(t *testing.T) {
	id := &ids{vipDst: 1, vip6Dst: 1, setVIP: 7, vipDefaultPool: 1}
	entry := func(value []byte, action uint32) *p4v1.TableEntry {
		return &p4v1.TableEntry{
			Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: value}}}},
			Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: action,
				Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{3}}}}}},
		}
	}
	v6 := netip.MustParseAddr("2001:db8:ff::1").As16()
	low6 := netip.MustParseAddr("::1:2").As16() // canonical: 3 bytes
	for _, tc := range []struct {
		name  string
		value []byte
		size  int
		want  string
	}{
		{"IPv4", []byte{10, 255, 0, 1}, 4, "10.255.0.1"},
		{"IPv4 canonical", []byte{1, 2, 3}, 4, "0.1.2.3"},
		{"IPv6", v6[:], 16, "2001:db8:ff::1"},
		{"IPv6 canonical", []byte{1, 0, 2}, 16, "::1:2"},
		{"IPv6 padded", append([]byte{0, 0}, low6[:]...), 16, "::1:2"},
		{"too wide for vip", []byte{1, 10, 255, 0, 1}, 4, ""},
		{"too wide for vip_v6", append([]byte{1}, v6[:]...), 16, ""},
	} {
		dst := id.vipDst
		if tc.size == 16 {
			dst = id.vip6Dst
		}
		addr, pool, ok := id.vipEntry(entry(tc.value, 7), dst, tc.size)
		if tc.want == "" {
			if ok {
				t.Errorf("%s: decoded %v", tc.name, addr)
			}
			continue
		}
		if !ok || addr.String() != tc.want || pool != 3 {
			t.Errorf("%s: %v pool %d ok %v, want %s pool 3", tc.name, addr, pool, ok, tc.want)
		}
	}
	if _, _, ok := id.vipEntry(entry(v6[:], 8), id.vip6Dst, 16); ok {
		t.Error("an entry of another action was taken for a VIP")
	}
}
