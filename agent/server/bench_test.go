package server_test

import (
	"testing"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
)

// The P4Runtime benchmarks over the Memory dataplane (the XDP ones are in
// agent/xdp): a real gRPC client on loopback TCP, the journal on. Results and
// commands: bench/agent.md.

func BenchmarkWrite(b *testing.B) {
	p4rtest.BenchWriteTables(b, func(b *testing.B) *p4rtest.Agent {
		return p4rtest.Serve(b, dataplane.NewMemory(dataplane.Limits{}), b.TempDir())
	})
}

func BenchmarkReadAll250k(b *testing.B) {
	a := p4rtest.Serve(b, dataplane.NewMemory(dataplane.Limits{}), b.TempDir())
	p4rtest.BenchReadAll(b, a, 250000)
}
