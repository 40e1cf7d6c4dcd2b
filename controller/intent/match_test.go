package intent

import (
	"net/netip"
	"testing"
)

// A selector is written as the document writes it.
func TestMatchString(t *testing.T) {
	for _, c := range []struct {
		m    Match
		want string
	}{
		{Match{}, "any"},
		{Match{VIP: "vpc", HasVNI: true, VNI: 5001, Src: netip.MustParsePrefix("10.0.0.5/32")}, "vip=vpc vni=5001 src=10.0.0.5"},
		{Match{Tenant: "acme", Dst: netip.MustParsePrefix("10.9.0.0/16"), HasProto: true, Proto: 6, HasSPort: true, SPort: 1,
			HasDPort: true, DPort: 443}, "tenant=acme dst=10.9.0.0/16 proto=6 sport=1 dport=443"},
	} {
		if got := c.m.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.m, got, c.want)
		}
	}
}
