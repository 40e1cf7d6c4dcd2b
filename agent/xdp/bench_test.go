//go:build linux

package xdp_test

import (
	"testing"

	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
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
	p4rtest.BenchWriteTables(b, func(b *testing.B) *p4rtest.Agent { return p4rtest.Serve(b, openBench(b), b.TempDir()) })
}

func BenchmarkReadAll250kXDP(b *testing.B) {
	skipBenchUnlessRoot(b)
	a := p4rtest.Serve(b, openBench(b), b.TempDir())
	p4rtest.BenchReadAll(b, a, 250000)
}
