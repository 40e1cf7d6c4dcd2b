package difftest

import (
	"testing"

	"github.com/graygw/graygw/pipeline"
)

// Diff names every cell that differs, on either side, once, in key order
// within each counter, and nothing when the counts agree.
func TestCountsDiff(t *testing.T) {
	got, want := NewCounts(), NewCounts()
	if d := got.Diff(want); d != "" {
		t.Fatalf("empty counts differ: %q", d)
	}
	got.Drops[pipeline.IPv4Truncated] = Cell{1, 60}
	want.Drops[pipeline.NotIPv4] = Cell{2, 120}
	got.Direct["vip/b"], want.Direct["vip/b"] = Cell{1, 100}, Cell{1, 100}
	want.Direct["vip/a"] = Cell{3, 300}
	got.Mirror[2] = Cell{1, 1}
	want.MirrorBackend[7] = Cell{1, 2}
	wantDiff := "" +
		"\n  drop_reasons[" + pipeline.NotIPv4.String() + "]: got 0 packets 0 bytes, want 2 packets 120 bytes" +
		"\n  drop_reasons[" + pipeline.IPv4Truncated.String() + "]: got 1 packets 60 bytes, want 0 packets 0 bytes" +
		"\n  vip/a: got 0 packets 0 bytes, want 3 packets 300 bytes" +
		"\n  mirror_counter[2]: got 1 packets 1 bytes, want 0 packets 0 bytes" +
		"\n  mirror_backend_counter[7]: got 0 packets 0 bytes, want 1 packets 2 bytes"
	if d := got.Diff(want); d != wantDiff {
		t.Errorf("Diff:\n%s\nwant\n%s", d, wantDiff)
	}
}
