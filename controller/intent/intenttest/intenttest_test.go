package intenttest_test

import (
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
)

// TestWorldsLoad: both worlds are valid intents as they stand, and say what
// their godoc says.
func TestWorldsLoad(t *testing.T) {
	for name, d := range map[string]intenttest.Doc{"small": intenttest.Small(), "router": intenttest.Router(), "vpc": intenttest.VPC("127.0.0.1:9559")} {
		s, err := intent.Parse([]byte(d.YAML()))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, d.YAML())
		}
		if _, err := intent.Load([]byte(d.YAML())); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(s.Gateways) != 1 || len(s.VIPs) != 1 || len(s.Pools) != 2 || len(s.GrayRules) != 0 {
			t.Errorf("%s: %d gateways, %d VIPs, %d pools, %d rules; want 1, 1, 2, 0", name, len(s.Gateways), len(s.VIPs), len(s.Pools), len(s.GrayRules))
		}
	}
}

// TestExampleLoads: Example finds the documented example, and it is valid.
func TestExampleLoads(t *testing.T) {
	if _, err := intent.Load(intenttest.Example(t)); err != nil {
		t.Fatal(err)
	}
}
