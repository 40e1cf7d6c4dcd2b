package intent

import (
	"fmt"
	"net/netip"
	"strings"
)

// String writes a resolved selector in the document's terms, one key=value a
// field ("vip=vpc vni=5001 src=10.0.0.5"; a single address without /32);
// "any" when it selects everything.
func (m Match) String() string {
	var p []string
	if m.VIP != "" {
		p = append(p, "vip="+m.VIP)
	}
	if m.HasVNI {
		p = append(p, fmt.Sprintf("vni=%d", m.VNI))
	}
	if m.Tenant != "" {
		p = append(p, "tenant="+m.Tenant)
	}
	if m.Src.IsValid() {
		p = append(p, "src="+prefixString(m.Src))
	}
	if m.Dst.IsValid() {
		p = append(p, "dst="+prefixString(m.Dst))
	}
	if m.HasProto {
		p = append(p, fmt.Sprintf("proto=%d", m.Proto))
	}
	if m.HasSPort {
		p = append(p, fmt.Sprintf("sport=%d", m.SPort))
	}
	if m.HasDPort {
		p = append(p, fmt.Sprintf("dport=%d", m.DPort))
	}
	if len(p) == 0 {
		return "any"
	}
	return strings.Join(p, " ")
}

// prefixString writes a single address as the address, else the prefix.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
