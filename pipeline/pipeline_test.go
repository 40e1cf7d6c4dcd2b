package pipeline_test

import (
	"testing"

	"github.com/graygw/graygw/pipeline"
)

func TestSample(t *testing.T) {
	for n, want := range map[int]uint16{0: 0xffff, 1: 0xffff, 2: 0x7fff, 10: 6552, 65536: 0, 1 << 20: 0} {
		if got := pipeline.Sample(n); got != want {
			t.Errorf("Sample(%d) = %d, want %d", n, got, want)
		}
	}
}
