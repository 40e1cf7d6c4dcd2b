package intent

import (
	"testing"

	"github.com/graygw/graygw/pipeline"
)

// A pool's hash fields become the pool_hash mask: all-ones on exactly the
// fields named, zero on the others.
func TestHashFieldsMask(t *testing.T) {
	one := map[string]pipeline.FlowKey{
		"vni": {VNI: pipeline.MaxVNI}, "tenant": {Tenant: 0xffff},
		"src": {Src: 0xffffffff}, "dst": {Dst: 0xffffffff}, "proto": {Proto: 0xff},
		"sport": {SPort: 0xffff}, "dport": {DPort: 0xffff},
	}
	for name, want := range one {
		f, ok := ParseHashField(name)
		if !ok {
			t.Fatalf("ParseHashField(%q) failed", name)
		}
		if got := f.Mask(); got != want {
			t.Errorf("%s: Mask = %+v, want %+v", name, got, want)
		}
	}
	if got := HashAll.Mask(); got != pipeline.AllOnes {
		t.Errorf("HashAll.Mask = %+v, want AllOnes %+v", got, pipeline.AllOnes)
	}
	if got, want := (HashSrc | HashDPort).Mask(), (pipeline.FlowKey{Src: 0xffffffff, DPort: 0xffff}); got != want {
		t.Errorf("src,dport: Mask = %+v, want %+v", got, want)
	}
	if got := HashFields(0).Mask(); got != (pipeline.FlowKey{}) {
		t.Errorf("no field: Mask = %+v, want zero", got)
	}
}
