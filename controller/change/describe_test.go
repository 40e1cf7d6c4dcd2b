package change

import (
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

// The change summary names, kind by kind, what was added (+), changed (~)
// and removed (-), and says so when nothing the gateways do changed.
func TestDescribeChange(t *testing.T) {
	old := &intent.Intent{
		Rules:    []intent.Rule{{Name: "a", Priority: 1}, {Name: "b", Priority: 2}, {Name: "c", Priority: 3}},
		Pools:    []intent.Pool{{Name: "base", ID: 1}, {Name: "gray", ID: 2}},
		Backends: []intent.Backend{{Name: "be1"}},
		Tenants:  []intent.Tenant{{Name: "t", ID: 1, VNIs: []uint32{5001}}},
	}
	nu := &intent.Intent{
		Rules:    []intent.Rule{{Name: "b", Priority: 20}, {Name: "c", Priority: 3}, {Name: "d", Priority: 4}},
		Pools:    []intent.Pool{{Name: "base", ID: 1}, {Name: "gray", ID: 2}},
		Backends: []intent.Backend{{Name: "be1"}},
		Tenants:  []intent.Tenant{{Name: "t", ID: 1, VNIs: []uint32{5001, 5002}}},
	}
	if got, want := describeChange(old, nu), "rules ~b +d -a; tenants ~t"; got != want {
		t.Errorf("describeChange = %q, want %q", got, want)
	}
	if got, want := describeChange(old, old), "no change to what the gateways do"; got != want {
		t.Errorf("describeChange(same) = %q, want %q", got, want)
	}
	if got, want := describeChange(nil, nu), "first intent: 0 gateways, 0 VIPs, 2 pools, 1 tenants, 3 rules"; got != want {
		t.Errorf("describeChange(nil) = %q, want %q", got, want)
	}
}
