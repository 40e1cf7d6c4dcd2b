package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/internal/birdlab"
)

// TestBadNeighborConfig: a malformed neighbor is refused before anything
// starts, with the field named; a neighbor with the wrong AS is accepted by
// the config (it cannot be known locally) but never comes up, which Status and
// the log show, while the good session carries the VIP.
func TestBadNeighborConfig(t *testing.T) {
	bad := speakerConfig()
	bad.Neighbors[1].Address = "10.179.0"
	if _, err := bgp.New(bad); !errors.Is(err, bgp.ErrInvalidConfig) || !strings.Contains(err.Error(), `neighbors[1].address: "10.179.0" is not an IP address`) {
		t.Fatalf("malformed neighbor: %v", err)
	}
	bad = speakerConfig()
	bad.Neighbors = append(bad.Neighbors, bad.Neighbors[0])
	if _, err := bgp.New(bad); !errors.Is(err, bgp.ErrInvalidConfig) || !strings.Contains(err.Error(), "neighbors[2].address: 10.179.0.2 is already neighbors[0]") {
		t.Fatalf("duplicate neighbor: %v", err)
	}

	info, ok := inside(t, newPeerLab)
	if !ok {
		return
	}
	cfg := speakerConfig()
	cfg.Neighbors[1].ASN = 65200 // BIRD is AS 65100
	s, logs := startSpeaker(t, cfg, healthyInput())
	birdlab.WaitFor(t, 10*time.Second, "VIP over the good session", info.HopsAre(vip+"/32", "gw_ibgp", gw1Addr, gw2Addr))
	// Give the bad session a few attempts.
	birdlab.WaitFor(t, 10*time.Second, "the bad session to be refused", func() (bool, string) {
		return strings.Contains(logs.String(), "as number mismatch expected 65200, received 65100"), "no AS mismatch in the log yet"
	})
	st := status(t, s)
	for _, n := range st.Neighbors {
		switch n.Address {
		case ibgpAddr:
			if !n.Up {
				t.Errorf("good neighbor down: %+v", n)
			}
		case ebgpAddr:
			if n.Up || n.State == "established" || n.Advertised != 0 {
				t.Errorf("neighbor with the wrong AS: %+v", n)
			}
		}
	}
	if hops, _ := info.NextHops(vip+"/32", "gw_ebgp"); len(hops) != 0 {
		t.Errorf("BIRD learned %v over the misconfigured session", hops)
	}
	out, _ := info.Birdc("show protocols gw_ebgp")
	t.Logf("BIRD's view of the misconfigured session:\n%s", out)
}
