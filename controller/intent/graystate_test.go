package intent

import (
	"testing"
)

// A VNI whose one VM is gray is partly gray (the VM listed); a VNI moved whole
// is fully gray, until a VM is pinned back to base; a VNI no rule touches is
// base.
func TestGrayStates(t *testing.T) {
	load := func(extra string) []VNIState {
		t.Helper()
		in, err := Load([]byte(base + extra))
		if err != nil {
			t.Fatal(err)
		}
		return in.GrayStates()
	}
	st := load("  - {name: other, match: {vni: 6001}, pool: base}\n")
	if len(st) != 3 || st[0].VNI != 5001 || st[1].VNI != 5002 || st[2].VNI != 6001 {
		t.Fatalf("VNIs %+v", st)
	}
	if s := st[0]; s.State != PartlyGray || s.Tenant != "acme" || len(s.VIPs[0].GrayVMs) != 1 || s.VIPs[0].GrayVMs[0] != "10.0.0.5" {
		t.Errorf("5001: %+v", s)
	}
	if s := st[1]; s.State != FullyGray || len(s.VIPs[0].Selectors) != 1 || s.VIPs[0].Selectors[0].Name != "vpc" {
		t.Errorf("5002: %+v", s)
	}
	if s := st[2]; s.State != Base || s.Tenant != "" {
		t.Errorf("6001: %+v", s)
	}
	st = load("  - {name: pin, match: {vni: 5002, src: 10.0.1.9}, pool: base}\n")
	if s := st[1]; s.State != PartlyGray || s.VIPs[0].Selectors[0].Name != "pin" {
		t.Errorf("5002 with a VM pinned to base: %+v", s)
	}
}
