package intent

import (
	"errors"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent/intenttest"
)

// TestFractionsAreRefused: the rows. An integer field given a fraction
// is refused naming its path, never rounded (vni: 5001.7 ran as 5001, weight: 1.5
// as 1, weight: 0.9 was refused as "0"); whole numbers written as floats are
// refused too, out-of-range integers keep their range errors.
func TestFractionsAreRefused(t *testing.T) {
	base := intenttest.Example(t)
	for _, c := range []struct {
		name, old, new, path string
		class                error
	}{
		{"rule vni 5001.7", "match: {vip: vpc-router, vni: 5001, src: 10.0.0.5}", "match: {vip: vpc-router, vni: 5001.7, src: 10.0.0.5}", "gray_rules[0].match.vni", ErrRange},
		{"weight 1.5", "weight: 2 ", "weight: 1.5 ", "pools[0].backends[0].weight", ErrRange},
		{"weight 0.9", "weight: 2 ", "weight: 0.9 ", "pools[0].backends[0].weight", ErrRange},
		{"tenant vni 5002.0", "vnis: [5001, 5002]", "vnis: [5001, 5002.0]", "tenants[0].vnis[1]", ErrRange},
		{"device id 1e3", "device_id: 1                 #", "device_id: 1e3 #", "gateways[0].device_id", ErrRange},
		{"dport 22.5", "dport: 22}", "dport: 22.5}", "gray_rules[3].match.dport", ErrRange},
		{"vni past 24 bits", "vnis: [6001]", "vnis: [16777216]", "tenants[1].vnis[0]", ErrRange},
		{"negative device id", "device_id: 1                 #", "device_id: -1 #", "gateways[0].device_id", ErrSyntax},
	} {
		if !strings.Contains(string(base), c.old) {
			t.Fatalf("%s: %q not in the example", c.name, c.old)
		}
		doc := strings.Replace(string(base), c.old, c.new, 1)
		_, err := Load([]byte(doc))
		var es *Errors
		if !errors.As(err, &es) {
			t.Fatalf("%s: Load = %v, want problems", c.name, err)
		}
		found := false
		for _, p := range es.Problems {
			if p.Path == c.path && errors.Is(p, c.class) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %v; want a %v problem at %s", c.name, err, c.class, c.path)
		}
	}
	// A float field stays a float.
	if _, err := Load(base); err != nil {
		t.Fatalf("the example: %v", err)
	}
}
