package benchmarks

import (
	"context"
	"io"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
)

// BenchmarkTrace is graygw trace's cost on a gateway holding the full-size
// intent (63 pools x 4096 buckets, 10k gray rules: 268k entries, 16 VIPs),
// the Trace call made in process on the service, against the baseline of the
// same process reading every entry of the agent once over P4Runtime (what any
// look at the gateway's own tables pays): trace/read is the ratio
// (bench/trace.md).
//
//	go test ./controller/benchmarks -run '^$' -bench BenchmarkTrace -benchtime 5x
func BenchmarkTrace(b *testing.B) {
	ctx := context.Background()
	a := stack.StartAgent(b, stack.AgentConfig{})
	doc := filledDoc(b, Gateway(a.Addr), Full)
	c := stack.StartController(b, stack.Config{Engine: engine.Config{Interval: time.Hour},
		Service: service.Config{WaitTimeout: change.DefaultWaitTimeout}})
	ar, err := c.Service.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: string(doc),
		Options: waitOptions(10 * time.Minute)})
	if err != nil || !ar.GetResult().GetApplied() || ar.GetResult().GetWaitError() != "" {
		b.Fatalf("apply: %v %v", err, ar.GetResult())
	}
	conn := stack.Conn(b, a.Addr)
	rt := p4v1.NewP4RuntimeClient(conn)

	read := func() int {
		stream, err := rt.Read(ctx, &p4v1.ReadRequest{DeviceId: 1,
			Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				return n
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(resp.GetEntities())
		}
	}
	req := &graygwv1.TraceRequest{Vni: 100000, Src: "172.16.0.1", Dst: "172.16.0.2", Proto: 6, Sport: 40000, Dport: 443}
	// Each iteration reads once and traces once, back to back, so that the
	// ratio compares the two under the same load (the machine is shared).
	var readT, traceT time.Duration
	for b.Loop() {
		t0 := time.Now()
		n := read()
		t1 := time.Now()
		resp, err := c.Service.Trace(ctx, req)
		t2 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		g := resp.GetGateways()[0]
		if g.GetError() != "" || !g.GetInSync() || g.GetEntriesRead() != uint64(n) {
			b.Fatalf("trace: %v (read %d entries)", g, n)
		}
		readT += t1.Sub(t0)
		traceT += t2.Sub(t1)
		b.ReportMetric(float64(n), "entries")
	}
	b.ReportMetric(readT.Seconds()/float64(b.N), "read-s/op")
	b.ReportMetric(traceT.Seconds()/float64(b.N), "trace-s/op")
	b.ReportMetric(float64(traceT)/float64(readT), "trace/read")
}
