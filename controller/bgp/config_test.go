package bgp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		ASN:      65001,
		RouterID: "10.0.0.1",
		Neighbors: []Neighbor{
			{Address: "10.0.0.2", ASN: 65001},
			{Address: "10.0.0.3", ASN: 65100, MultihopTTL: 2, Password: "s3cret"},
		},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 120 * time.Second},
	}
}

func TestValidConfig(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := validConfig().WithDefaults()
	if c.ListenPort != DefaultPort || c.Neighbors[0].Port != DefaultPort || c.Neighbors[0].HoldTime != DefaultHoldTime ||
		c.GracefulRestart.DeferralTime != DefaultDeferralTime || c.Neighbors[1].AddPathSendMax != DefaultAddPathSendMax {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

// TestBadConfigNamesTheField: every bad field is reported, by its path.
func TestBadConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"asn 0", func(c *Config) { c.ASN = 0 }, "asn: 0 is not an AS number"},
		{"router id not an address", func(c *Config) { c.RouterID = "router-1" }, `routerID: "router-1" is not an IPv4 address`},
		{"router id IPv6", func(c *Config) { c.RouterID = "2001:db8::1" }, "routerID"},
		{"router id zero", func(c *Config) { c.RouterID = "0.0.0.0" }, "routerID"},
		{"listen address", func(c *Config) { c.ListenAddress = "any" }, "listenAddress"},
		{"listen port", func(c *Config) { c.ListenPort = 70000 }, "listenPort"},
		{"no neighbor", func(c *Config) { c.Neighbors = nil }, "neighbors: no neighbor"},
		{"neighbor address", func(c *Config) { c.Neighbors[1].Address = "10.0.0" }, `neighbors[1].address: "10.0.0" is not an IP address`},
		{"neighbor multicast", func(c *Config) { c.Neighbors[1].Address = "224.0.0.5" }, "neighbors[1].address"},
		{"duplicate neighbor", func(c *Config) { c.Neighbors[1].Address = "10.0.0.2" }, "neighbors[1].address: 10.0.0.2 is already neighbors[0]"},
		{"neighbor asn", func(c *Config) { c.Neighbors[0].ASN = 0 }, "neighbors[0].asn"},
		{"multihop on iBGP", func(c *Config) { c.Neighbors[0].MultihopTTL = 3 }, "neighbors[0].multihopTTL"},
		{"GTSM past 254 hops", func(c *Config) { c.Neighbors[1].TTLSecurity = 255 }, "neighbors[1].ttlSecurity: 255 hops"},
		{"GTSM with multihop", func(c *Config) { c.Neighbors[1].TTLSecurity, c.Neighbors[1].MultihopTTL = 2, 2 }, "neighbors[1].ttlSecurity"},
		{"hold time", func(c *Config) { c.Neighbors[0].HoldTime = time.Second }, "neighbors[0].holdTime"},
		{"connect retry", func(c *Config) { c.Neighbors[0].ConnectRetry = 1500 * time.Millisecond }, "neighbors[0].connectRetry"},
		{"local address", func(c *Config) { c.Neighbors[0].LocalAddress = "eth0" }, "neighbors[0].localAddress"},
		{"password", func(c *Config) { c.Neighbors[0].Password = strings.Repeat("x", 81) }, "neighbors[0].password"},
		{"restart time", func(c *Config) { c.GracefulRestart.RestartTime = 5000 * time.Second }, "gracefulRestart.restartTime"},
		{"deferral", func(c *Config) { c.GracefulRestart.DeferralTime = 200 * time.Second }, "gracefulRestart.deferralTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %q, want it to name %q", err, tc.field)
			}
			if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New accepted the bad config: %v", err)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validConfig()
	c.ASN = 0
	c.Neighbors[0].Address = "nope"
	c.Neighbors[1].ASN = 0
	err := c.Validate()
	for _, f := range []string{"asn:", "neighbors[0].address", "neighbors[1].asn"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%q missing from %q", f, err)
		}
	}
}

func TestParseCommunity(t *testing.T) {
	for in, want := range map[string]Community{
		"65000:100":    65000<<16 | 100,
		"0:0":          0,
		"65535:65535":  0xffffffff,
		"no-export":    0xFFFFFF01,
		"NO-ADVERTISE": 0xFFFFFF02,
	} {
		got, err := ParseCommunity(in)
		if err != nil || got != want {
			t.Errorf("ParseCommunity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "65000", "65000:", ":100", "65536:1", "1:65536", "-1:2", "a:b", "1:2:3"} {
		if _, err := ParseCommunity(in); err == nil {
			t.Errorf("ParseCommunity(%q) accepted", in)
		}
	}
	if s := Community(65000<<16 | 100).String(); s != "65000:100" {
		t.Errorf("String() = %q", s)
	}
}

// TestListenAddresses: the speaker accepts sessions on the configured address;
// without one, on the neighbors' own session addresses when every neighbor has
// one; only else on every address (nil).
func TestListenAddresses(t *testing.T) {
	c := Config{Neighbors: []Neighbor{{Address: "10.0.0.2", LocalAddress: "10.0.0.1"}, {Address: "10.0.1.2", LocalAddress: "10.0.1.1"},
		{Address: "10.0.1.3", LocalAddress: "10.0.1.1"}}}
	if got := c.ListenAddresses(); strings.Join(got, ",") != "10.0.0.1,10.0.1.1" {
		t.Errorf("from the neighbors: %v", got)
	}
	c.ListenAddress = "10.0.0.9"
	if got := c.ListenAddresses(); strings.Join(got, ",") != "10.0.0.9" {
		t.Errorf("configured: %v", got)
	}
	c.ListenAddress = ""
	c.Neighbors[2].LocalAddress = ""
	if got := c.ListenAddresses(); got != nil {
		t.Errorf("a neighbor without localAddress: %v, want nil (every address)", got)
	}
}
