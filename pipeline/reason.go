package pipeline

import "fmt"

// Reason says why a packet was not forwarded. Its value is the index of the
// drop_reasons counter cell that counts it. Reason 0 (None) means forwarded.
type Reason uint8

// The reasons, in the numbering shared by all dataplanes (docs/pipeline.md §9).
const (
	None               Reason = 0
	EthTruncated       Reason = 1
	NotIPv4            Reason = 2 // not for us
	IPv4Truncated      Reason = 3
	NotVIP             Reason = 4 // not for us
	IPv4Malformed      Reason = 5
	IPv4Fragment       Reason = 6
	L4Truncated        Reason = 7
	VXLANTruncated     Reason = 8
	VXLANBadFlags      Reason = 9
	InnerTruncated     Reason = 10
	InnerNotIPv4       Reason = 11
	InnerIPv4Malformed Reason = 12
	TTLExpired         Reason = 13
	NoBackend          Reason = 14
	PortDown           Reason = 15 // XDP only
	// VLANNotAccepted: a VIP's frame with an 802.1Q tag whose VID its ingress
	// port does not accept (vlan_accept miss; docs/pipeline.md §1).
	VLANNotAccepted Reason = 16
	// IPv6 (docs/pipeline.md §1; issue 19).
	IPv6Truncated      Reason = 17
	IPv6Malformed      Reason = 18
	IPv6Extension      Reason = 19 // an outer extension header (fragments too)
	InnerIPv6Malformed Reason = 20
	InnerIPv6Extension Reason = 21 // hop-by-hop, routing, AH, destination options
	BackendFamily      Reason = 22 // the backend's underlay family is not the frame's
)

// NumReasons is the size of the drop_reasons counter array. Cells 23 to 31
// are spare (named REASON_n): the array grew to 32 at once for IPv6 so the
// next reasons need no counter resize, no P4Info change and no pin migration.
const NumReasons = 32

var reasonNames = [...]string{
	"NONE", "ETH_TRUNCATED", "NOT_IPV4", "IPV4_TRUNCATED", "NOT_VIP",
	"IPV4_MALFORMED", "IPV4_FRAGMENT", "L4_TRUNCATED", "VXLAN_TRUNCATED",
	"VXLAN_BAD_FLAGS", "INNER_TRUNCATED", "INNER_NOT_IPV4", "INNER_IPV4_MALFORMED",
	"TTL_EXPIRED", "NO_BACKEND", "PORT_DOWN", "VLAN_NOT_ACCEPTED",
	"IPV6_TRUNCATED", "IPV6_MALFORMED", "IPV6_EXTENSION", "INNER_IPV6_MALFORMED",
	"INNER_IPV6_EXTENSION", "BACKEND_FAMILY",
}

// String returns the reason's name as written in docs/pipeline.md; a spare
// cell's is REASON_n.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("REASON_%d", uint8(r))
}

// NotForUs reports whether the packet is simply not addressed to the gateway
// (XDP passes it to the kernel) rather than being dropped as broken.
func (r Reason) NotForUs() bool { return r == NotIPv4 || r == NotVIP }

// ParseReason returns the Reason with the given name (String's: a spare
// cell's REASON_n too).
func ParseReason(name string) (Reason, error) {
	for i, n := range reasonNames {
		if n == name {
			return Reason(i), nil
		}
	}
	for r := Reason(len(reasonNames)); r < NumReasons; r++ {
		if r.String() == name {
			return r, nil
		}
	}
	return 0, fmt.Errorf("pipeline: unknown drop reason %q", name)
}
