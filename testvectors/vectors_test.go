package testvectors

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

func TestCommittedVectorsAreUpToDate(t *testing.T) {
	for _, v := range []struct {
		name      string
		gen       func() (*File, error)
		committed []byte
	}{{"pipeline.json", Generate, JSON}, {"ipv6.json", GenerateIPv6, JSONIPv6}} {
		f, err := v.gen()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, v.committed) {
			t.Errorf("testvectors/%s is stale: run `make vectors` and commit it", v.name)
		}
	}
}

func TestCommittedVectorsReplayThroughModel(t *testing.T) {
	f, f6 := Both(t)
	if len(f.Cases) < 40 || len(f6.Cases) < 60 {
		t.Fatalf("only %d and %d cases", len(f.Cases), len(f6.Cases))
	}
	for name, s := range f6.States {
		if _, dup := f.States[name]; dup {
			t.Fatalf("state %s in both files", name)
		}
		f.States[name] = s
	}
	f.Cases = append(f.Cases, f6.Cases...)
	seen := map[string]bool{}
	for _, c := range f.Cases {
		if seen[c.Name] {
			t.Fatalf("duplicate case name %s", c.Name)
		}
		seen[c.Name] = true
		st := f.States[c.State]
		s, err := st.Model()
		if err != nil {
			t.Fatal(err)
		}
		frame, err := c.Frame()
		if err != nil {
			t.Fatal(err)
		}
		if got := ExpectFrom(model.ProcessPort(s, c.InPort, frame)); !reflect.DeepEqual(got, c.Expect) {
			t.Errorf("%s: model gives %+v, file says %+v", c.Name, got, c.Expect)
		}
	}
}

// The vectors must exercise every drop reason a P4 target can produce: the
// IPv4 ones in pipeline.json, the IPv6 ones in ipv6.json, which also covers
// the reasons an IPv6 frame shares with IPv4.
func TestVectorsCoverEveryReason(t *testing.T) {
	f, _ := Committed()
	f6, _ := IPv6()
	for _, v := range []struct {
		cases   []Case
		reasons []string
	}{
		{f.Cases, []string{"NONE", "ETH_TRUNCATED", "NOT_IPV4", "IPV4_TRUNCATED", "NOT_VIP", "IPV4_MALFORMED",
			"IPV4_FRAGMENT", "L4_TRUNCATED", "VXLAN_TRUNCATED", "VXLAN_BAD_FLAGS", "INNER_TRUNCATED", "INNER_NOT_IPV4",
			"INNER_IPV4_MALFORMED", "TTL_EXPIRED", "NO_BACKEND"}},
		{f6.Cases, []string{"NONE", "NOT_VIP", "IPV6_TRUNCATED", "IPV6_MALFORMED", "IPV6_EXTENSION", "L4_TRUNCATED",
			"VXLAN_TRUNCATED", "VXLAN_BAD_FLAGS", "INNER_TRUNCATED", "INNER_NOT_IPV4", "INNER_IPV4_MALFORMED",
			"INNER_IPV6_MALFORMED", "INNER_IPV6_EXTENSION", "TTL_EXPIRED", "NO_BACKEND", "BACKEND_FAMILY", "VLAN_NOT_ACCEPTED"}},
	} {
		seen := map[string]bool{}
		for _, c := range v.cases {
			seen[c.Expect.Reason] = true
		}
		for _, r := range v.reasons {
			if !seen[r] {
				t.Errorf("no vector for reason %s", r)
			}
		}
	}
}

// pipeline.json holds no IPv6: a target that does not implement IPv6 yet
// passes it. Every frame of it parses without an IPv6 header, outer or inner.
func TestPipelineJSONHasNoIPv6(t *testing.T) {
	f, _ := Committed()
	for _, c := range f.Cases {
		frame, _ := c.Frame()
		if p := model.Parse(frame); p.Outer6 || p.IPv6 || c.Expect.IPv6 || p.Reason >= pipeline.IPv6Truncated {
			t.Errorf("%s: an IPv6 case in pipeline.json (outer6 %v, flow6 %v, %v)", c.Name, p.Outer6, p.IPv6, p.Reason)
		}
	}
}

// A gray_rules entry converts field by field (each a value of its own, so a
// field read into another's place shows), and a field the table does not
// have is refused by name.
func TestRuleEntryModel(t *testing.T) {
	r := RuleEntry{Priority: 7, Action: "set_pool", Params: map[string]uint64{"pool_id": 2}, Match: map[string]Ternary{
		"vip_id": {3, 0xfff3}, "vni": {5001, 0xfffff1}, "tenant_id": {9, 0xff09},
		"inner_src": {ip32("10.0.0.5"), 0xffffff05}, "inner_dst": {ip32("192.168.1.1"), 0xffff0101},
		"inner_proto": {6, 0xf6}, "inner_sport": {1000, 0xfff0}, "inner_dport": {443, 0xffbb}}}
	g, err := r.Model()
	if err != nil {
		t.Fatal(err)
	}
	want := model.GrayRule{Priority: 7, VIPID: 3, VIPMask: 0xfff3, Action: model.SetPool, Pool: 2,
		Match: pipeline.FlowKey{VNI: 5001, Tenant: 9, Src: 0x0a000005, Dst: 0xc0a80101, Proto: 6, SPort: 1000, DPort: 443},
		Mask:  pipeline.FlowKey{VNI: 0xfffff1, Tenant: 0xff09, Src: 0xffffff05, Dst: 0xffff0101, Proto: 0xf6, SPort: 0xfff0, DPort: 0xffbb}}
	if g != want {
		t.Errorf("Model:\n got %+v\nwant %+v", g, want)
	}
	r.Match = map[string]Ternary{"vni": {5001, 0xffffff}, "inner_port": {80, 0xffff}}
	if _, err := r.Model(); err == nil || !strings.Contains(err.Error(), `"inner_port"`) {
		t.Errorf("an unknown match field: err %v, want one naming inner_port", err)
	}
}
