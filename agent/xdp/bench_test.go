//go:build linux

package xdp_test

import (
	"fmt"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/pipeline"
)

// The P4Runtime benchmarks over the real XDP maps (root): a gRPC client on
// loopback TCP, the journal on. Results and commands: bench/agent.md.

func openBench(b *testing.B) *xdp.Dataplane {
	d := openBPF(b, bpf.Options{NoPin: true})
	b.Cleanup(func() { d.Close() })
	return xdp.New(d)
}

func BenchmarkWriteXDP(b *testing.B) {
	skipBenchUnlessRoot(b)
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
				a := p4rtest.Serve(b, openBench(b), b.TempDir())
				p4rtest.BenchWrites(b, a, tb.entry, tb.capacity/batch*batch, batch)
			})
		}
	}
}

func BenchmarkReadAll250kXDP(b *testing.B) {
	skipBenchUnlessRoot(b)
	a := p4rtest.Serve(b, openBench(b), b.TempDir())
	p4rtest.BenchReadAll(b, a, 250000)
}
