package server_test

import (
	"fmt"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/pipeline"
)

// The P4Runtime benchmarks over the Memory dataplane (the XDP ones are in
// agent/xdp): a real gRPC client on loopback TCP, the journal on. Results and
// commands: bench/agent.md.

func BenchmarkWrite(b *testing.B) {
	for _, tb := range []struct {
		name     string
		entry    func(p4rtest.Builder, int) *p4v1.TableEntry
		capacity int
	}{
		{"backend_select", p4rtest.SelectEntry, 62 * pipeline.Buckets},
		{"gray_rules", p4rtest.RuleEntry, pipeline.GrayRulesTableSize},
	} {
		for _, batch := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", tb.name, batch), func(b *testing.B) {
				a := p4rtest.Serve(b, dataplane.NewMemory(dataplane.Limits{}), b.TempDir())
				p4rtest.BenchWrites(b, a, tb.entry, tb.capacity/batch*batch, batch)
			})
		}
	}
}

func BenchmarkReadAll250k(b *testing.B) {
	a := p4rtest.Serve(b, dataplane.NewMemory(dataplane.Limits{}), b.TempDir())
	p4rtest.BenchReadAll(b, a, 250000)
}
