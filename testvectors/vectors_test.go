package testvectors

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/graygw/graygw/model"
)

func TestCommittedVectorsAreUpToDate(t *testing.T) {
	f, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, JSON) {
		t.Fatal("testvectors/pipeline.json is stale: run `make vectors` and commit it")
	}
}

func TestCommittedVectorsReplayThroughModel(t *testing.T) {
	f, err := Committed()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 40 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
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

// The vectors must exercise every drop reason a P4 target can produce.
func TestVectorsCoverEveryReason(t *testing.T) {
	f, _ := Committed()
	seen := map[string]bool{}
	for _, c := range f.Cases {
		seen[c.Expect.Reason] = true
	}
	for _, r := range []string{"NONE", "ETH_TRUNCATED", "NOT_IPV4", "IPV4_TRUNCATED", "NOT_VIP", "IPV4_MALFORMED",
		"IPV4_FRAGMENT", "L4_TRUNCATED", "VXLAN_TRUNCATED", "VXLAN_BAD_FLAGS", "INNER_TRUNCATED", "INNER_NOT_IPV4",
		"INNER_IPV4_MALFORMED", "TTL_EXPIRED", "NO_BACKEND"} {
		if !seen[r] {
			t.Errorf("no vector for reason %s", r)
		}
	}
}
