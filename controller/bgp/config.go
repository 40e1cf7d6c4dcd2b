package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the TCP port BGP listens on and dials when a port is not set.
const DefaultPort = 179

// Defaults applied by [Config.WithDefaults] to fields left at zero.
const (
	DefaultHoldTime       = 90 * time.Second
	DefaultConnectRetry   = 5 * time.Second
	DefaultRestartTime    = 120 * time.Second
	DefaultDeferralTime   = 30 * time.Second
	DefaultAddPathSendMax = 8
)

// maxRestartTime is the largest restart time the 12-bit field of the graceful
// restart capability can carry (RFC 4724 section 3).
const maxRestartTime = 4095 * time.Second

// ErrInvalidConfig is wrapped by every error [Config.Validate] returns, so a
// caller can tell a bad config from a failure to start.
var ErrInvalidConfig = errors.New("bgp: invalid config")

// Config is the speaker's configuration: who we are and whom we talk to.
type Config struct {
	// ASN is the local autonomous system number. 4-byte ASNs are allowed; 0 is
	// not an ASN.
	ASN uint32 `json:"asn" yaml:"asn"`
	// RouterID is the BGP identifier, an IPv4 address.
	RouterID string `json:"routerID" yaml:"routerID"`
	// ListenAddress is the address to accept sessions on. Empty means the
	// neighbors' LocalAddress values when every neighbor sets one (the sessions'
	// own addresses, nothing else), else every address (logged as a warning):
	// see ListenAddresses.
	ListenAddress string `json:"listenAddress,omitempty" yaml:"listenAddress,omitempty"`
	// ListenPort is the port to accept sessions on: 0 means [DefaultPort], -1
	// means do not listen and only dial out.
	ListenPort int32 `json:"listenPort,omitempty" yaml:"listenPort,omitempty"`
	// Neighbors are the BGP peers; each gets every announced path.
	Neighbors []Neighbor `json:"neighbors" yaml:"neighbors"`
	// GracefulRestart is advertised to every neighbor.
	GracefulRestart GracefulRestart `json:"gracefulRestart" yaml:"gracefulRestart"`
}

// Neighbor is one BGP peer. A neighbor whose ASN equals [Config.ASN] is iBGP
// (it receives LOCAL_PREF), any other is eBGP.
type Neighbor struct {
	// Address is the peer's IP address.
	Address string `json:"address" yaml:"address"`
	// ASN is the peer's autonomous system number.
	ASN uint32 `json:"asn" yaml:"asn"`
	// Port is the peer's TCP port; 0 means [DefaultPort].
	Port uint16 `json:"port,omitempty" yaml:"port,omitempty"`
	// LocalAddress is the source address of the session; empty lets the kernel
	// choose.
	LocalAddress string `json:"localAddress,omitempty" yaml:"localAddress,omitempty"`
	// Password enables TCP MD5 signatures (RFC 2385) with this key.
	Password string `json:"password,omitempty" yaml:"password,omitempty"`
	// MultihopTTL enables eBGP multihop with this TTL; 0 keeps eBGP sessions
	// single hop (TTL 1). Not allowed on an iBGP neighbor, which is never
	// limited to one hop.
	MultihopTTL uint8 `json:"multihopTTL,omitempty" yaml:"multihopTTL,omitempty"`
	// TTLSecurity enables GTSM (RFC 5082) with the peer this many hops away (1:
	// directly connected): packets are sent with TTL 255 and the session's
	// packets are accepted only with a TTL of at least 256-TTLSecurity, so a
	// host further away cannot spoof or reset the session. The peer must enable
	// it too (BIRD: "ttl security on", with "multihop N" past one hop). 0
	// disables it; it replaces MultihopTTL, which must then be 0.
	TTLSecurity uint8 `json:"ttlSecurity,omitempty" yaml:"ttlSecurity,omitempty"`
	// Passive waits for the peer to connect instead of dialling it.
	Passive bool `json:"passive,omitempty" yaml:"passive,omitempty"`
	// HoldTime is the proposed hold time; 0 means [DefaultHoldTime]. At least
	// 3s, whole seconds.
	HoldTime time.Duration `json:"holdTime,omitempty" yaml:"holdTime,omitempty"`
	// ConnectRetry is the pause between dial attempts; 0 means
	// [DefaultConnectRetry]. Whole seconds.
	ConnectRetry time.Duration `json:"connectRetry,omitempty" yaml:"connectRetry,omitempty"`
	// Families are the address families the session carries: FamilyIPv4Unicast
	// and/or FamilyIPv6Unicast (MP-BGP, RFC 4760: either family over either
	// transport). Empty means the family of Address: an IPv4 neighbor gets
	// the IPv4 VIPs, an IPv6 neighbor the IPv6 VIPs.
	Families []Family `json:"families,omitempty" yaml:"families,omitempty"`
	// AddPathSendMax is how many paths per VIP are sent to a peer that
	// negotiates ADD-PATH receive (RFC 7911); 0 means [DefaultAddPathSendMax].
	// A peer without ADD-PATH receives only the best path of each VIP, that is a
	// single gateway as next hop.
	AddPathSendMax uint8 `json:"addPathSendMax,omitempty" yaml:"addPathSendMax,omitempty"`
}

// Family is a BGP address family (AFI/SAFI) a session carries, by its
// OpenConfig name.
type Family string

// The families a neighbor may carry.
const (
	FamilyIPv4Unicast Family = "ipv4-unicast"
	FamilyIPv6Unicast Family = "ipv6-unicast"
)

// carries reports whether a neighbor of c carries family f (defaults
// applied).
func (c Config) carries(f Family) bool {
	for _, n := range c.Neighbors {
		if slices.Contains(n.Families, f) {
			return true
		}
	}
	return false
}

// GracefulRestart configures BGP graceful restart (RFC 4724) as a restarting
// speaker: while the controller is down for less than RestartTime, peers keep
// the VIPs (marked stale) and keep forwarding to the gateways.
type GracefulRestart struct {
	// Enabled advertises the graceful restart capability.
	Enabled bool `json:"enabled" yaml:"enabled"`
	// RestartTime is how long a peer keeps our routes after the session drops;
	// 0 means [DefaultRestartTime]. Whole seconds, at most 4095s.
	RestartTime time.Duration `json:"restartTime,omitempty" yaml:"restartTime,omitempty"`
	// DeferralTime bounds how long a restarted speaker waits for the peers'
	// End-of-RIB before sending its routes anyway; 0 means
	// [DefaultDeferralTime]. Must be shorter than RestartTime.
	DeferralTime time.Duration `json:"deferralTime,omitempty" yaml:"deferralTime,omitempty"`
}

// ListenAddresses are the addresses the speaker accepts sessions on:
// ListenAddress when set; else the neighbors' LocalAddress values when every
// neighbor has one; else nil, meaning every address.
func (c Config) ListenAddresses() []string {
	if c.ListenAddress != "" {
		return []string{c.ListenAddress}
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range c.Neighbors {
		if n.LocalAddress == "" {
			return nil
		}
		if !seen[n.LocalAddress] {
			seen[n.LocalAddress] = true
			out = append(out, n.LocalAddress)
		}
	}
	return out
}

// WithDefaults returns a copy of c with every zero optional field set to its
// default. It does not validate.
func (c Config) WithDefaults() Config {
	out := c
	if out.ListenPort == 0 {
		out.ListenPort = DefaultPort
	}
	out.Neighbors = make([]Neighbor, len(c.Neighbors))
	for i, n := range c.Neighbors {
		if n.Port == 0 {
			n.Port = DefaultPort
		}
		if n.HoldTime == 0 {
			n.HoldTime = DefaultHoldTime
		}
		if n.ConnectRetry == 0 {
			n.ConnectRetry = DefaultConnectRetry
		}
		if n.AddPathSendMax == 0 {
			n.AddPathSendMax = DefaultAddPathSendMax
		}
		if len(n.Families) == 0 {
			if a, err := netip.ParseAddr(n.Address); err == nil && a.Unmap().Is6() {
				n.Families = []Family{FamilyIPv6Unicast}
			} else {
				n.Families = []Family{FamilyIPv4Unicast}
			}
		} else {
			n.Families = slices.Clone(n.Families)
		}
		out.Neighbors[i] = n
	}
	if out.GracefulRestart.RestartTime == 0 {
		out.GracefulRestart.RestartTime = DefaultRestartTime
	}
	if out.GracefulRestart.DeferralTime == 0 {
		out.GracefulRestart.DeferralTime = DefaultDeferralTime
	}
	return out
}

// Validate checks c (defaults applied first) and returns every problem found,
// each naming its field, for example `neighbors[1].address: "10.0.0" is not an
// IP address`. The error wraps [ErrInvalidConfig].
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.ASN == 0 {
		bad("asn", "0 is not an AS number")
	}
	if id, err := netip.ParseAddr(c.RouterID); err != nil || !id.Is4() {
		bad("routerID", "%q is not an IPv4 address", c.RouterID)
	} else if id.IsUnspecified() {
		bad("routerID", "%q: the router id must not be 0.0.0.0", c.RouterID)
	}
	if c.ListenAddress != "" {
		if _, err := netip.ParseAddr(c.ListenAddress); err != nil {
			bad("listenAddress", "%q is not an IP address", c.ListenAddress)
		}
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		bad("listenPort", "%d is not a port (use -1 not to listen)", c.ListenPort)
	}
	if len(c.Neighbors) == 0 {
		bad("neighbors", "no neighbor: nothing to announce to")
	}
	seen := map[netip.Addr]int{}
	for i, n := range c.Neighbors {
		f := fmt.Sprintf("neighbors[%d]", i)
		addr, err := netip.ParseAddr(n.Address)
		switch {
		case err != nil:
			bad(f+".address", "%q is not an IP address", n.Address)
		case addr.Zone() != "":
			bad(f+".address", "%q: zoned addresses are not supported", n.Address)
		case addr.IsUnspecified() || addr.IsMulticast():
			bad(f+".address", "%q is not a unicast address", n.Address)
		default:
			addr = addr.Unmap()
			if j, dup := seen[addr]; dup {
				bad(f+".address", "%s is already neighbors[%d]", addr, j)
			} else {
				seen[addr] = i
			}
		}
		if n.ASN == 0 {
			bad(f+".asn", "0 is not an AS number")
		}
		if n.LocalAddress != "" {
			if _, err := netip.ParseAddr(n.LocalAddress); err != nil {
				bad(f+".localAddress", "%q is not an IP address", n.LocalAddress)
			}
		}
		if n.MultihopTTL != 0 && n.ASN == c.ASN {
			bad(f+".multihopTTL", "multihop applies to eBGP only; this neighbor is iBGP (asn %d)", n.ASN)
		}
		if n.TTLSecurity > 254 {
			bad(f+".ttlSecurity", "%d hops: at most 254", n.TTLSecurity)
		}
		if n.TTLSecurity != 0 && n.MultihopTTL != 0 {
			bad(f+".ttlSecurity", "GTSM sends with TTL 255 and replaces multihopTTL: set one of them")
		}
		if n.HoldTime < 3*time.Second || n.HoldTime > 65535*time.Second || n.HoldTime%time.Second != 0 {
			bad(f+".holdTime", "%s: want whole seconds between 3s and 65535s", n.HoldTime)
		}
		if n.ConnectRetry < time.Second || n.ConnectRetry%time.Second != 0 {
			bad(f+".connectRetry", "%s: want whole seconds, at least 1s", n.ConnectRetry)
		}
		if len(n.Password) > 80 {
			bad(f+".password", "%d bytes: TCP MD5 keys are at most 80", len(n.Password))
		}
		for j, fam := range n.Families {
			switch {
			case fam != FamilyIPv4Unicast && fam != FamilyIPv6Unicast:
				bad(fmt.Sprintf("%s.families[%d]", f, j), "%q: want %s or %s", fam, FamilyIPv4Unicast, FamilyIPv6Unicast)
			case slices.Index(n.Families, fam) < j:
				bad(fmt.Sprintf("%s.families[%d]", f, j), "%s listed twice", fam)
			}
		}
	}
	gr := c.GracefulRestart
	if gr.RestartTime < time.Second || gr.RestartTime > maxRestartTime || gr.RestartTime%time.Second != 0 {
		bad("gracefulRestart.restartTime", "%s: want whole seconds between 1s and 4095s", gr.RestartTime)
	}
	if gr.DeferralTime < time.Second || gr.DeferralTime%time.Second != 0 {
		bad("gracefulRestart.deferralTime", "%s: want whole seconds, at least 1s", gr.DeferralTime)
	} else if gr.Enabled && gr.DeferralTime >= gr.RestartTime {
		bad("gracefulRestart.deferralTime", "%s must be shorter than restartTime %s, or peers drop our routes before we resend them", gr.DeferralTime, gr.RestartTime)
	}
	return errors.Join(errs...)
}

// Community is a standard BGP community (RFC 1997), shown as "ASN:value".
type Community uint32

// ParseCommunity parses the standard "65000:100" form (two 16-bit numbers) or
// one of the well-known names no-export, no-advertise, no-export-subconfed,
// blackhole.
func ParseCommunity(s string) (Community, error) {
	switch strings.ToLower(s) {
	case "no-export":
		return 0xFFFFFF01, nil
	case "no-advertise":
		return 0xFFFFFF02, nil
	case "no-export-subconfed":
		return 0xFFFFFF03, nil
	case "blackhole":
		return 0xFFFF029A, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want ASN:value, e.g. 65000:100", s)
	}
	a, err := strconv.ParseUint(hi, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: ASN part: %w", s, err)
	}
	v, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: value part: %w", s, err)
	}
	return Community(a<<16 | v), nil
}

// String returns the "ASN:value" form.
func (c Community) String() string {
	return fmt.Sprintf("%d:%d", uint32(c)>>16, uint32(c)&0xffff)
}
