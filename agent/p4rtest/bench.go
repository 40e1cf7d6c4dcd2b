package p4rtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// Agent is an agent server on a loopback TCP port with a connected primary
// that has pushed the pipeline: what the benchmarks measure through.
type Agent struct {
	Server *server.Server
	Client p4v1.P4RuntimeClient
	Ctl    *Client
	Info   *p4info.Info
	// Addr is the server's host:port, for other clients (readers).
	Addr string
}

// Serve starts an Agent over dp, with its journal in stateDir ("" for none).
func Serve(tb testing.TB, dp dataplane.Dataplane, stateDir string) *Agent {
	tb.Helper()
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{P4Info: info, Dataplane: dp, StateDir: stateDir, Generation: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	p4v1.RegisterP4RuntimeServer(gs, srv)
	go gs.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		tb.Fatal(err)
	}
	c := p4v1.NewP4RuntimeClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl, err := Connect(ctx, c, server.DefaultDeviceID, 1)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ctl.SetPipeline(ctx, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, info.P4Info(), 1); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctl.Close()
		conn.Close()
		gs.Stop()
		srv.Close()
	})
	return &Agent{Server: srv, Client: c, Ctl: ctl, Info: info, Addr: lis.Addr().String()}
}

// SelectEntry is the i-th backend_select entry of a dense fill: pool i/4096,
// bucket i%4096. 250k entries use pools 0..61: 62 pools owning buckets, within
// XDP's 64 at once (any pool ids; dataplane.XDPLimits).
func SelectEntry(b Builder, i int) *p4v1.TableEntry {
	return b.Bucket(uint64(i/pipeline.Buckets), uint64(i%pipeline.Buckets), uint64(1+i%4000))
}

// RuleEntry is the i-th gray rule: one VM (vni + inner source) each, all with
// the same mask (so the XDP tuple-space search keeps one mask).
func RuleEntry(b Builder, i int) *p4v1.TableEntry {
	return b.Rule(int32(1+i%1000), []FM{Tern(pipeline.MatchVNI.Name, uint64(1+i/65536), 0xffffff), Tern(pipeline.MatchInnerSrc.Name, uint64(0x0a000000+i%65536), 0xffffffff)}, 2)
}

// BenchWriteTables runs BenchWrites on backend_select and gray_rules, in
// batches of 1, 100 and 1000 updates, each on an agent newAgent starts; the
// sub-benchmarks are named TABLE/batch=N.
func BenchWriteTables(b *testing.B, newAgent func(*testing.B) *Agent) {
	for _, tb := range []struct {
		name     string
		entry    func(Builder, int) *p4v1.TableEntry
		capacity int
	}{
		{"backend_select", SelectEntry, 62 * pipeline.Buckets},
		{"gray_rules", RuleEntry, pipeline.GrayRulesTableSize},
	} {
		for _, batch := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", tb.name, batch), func(b *testing.B) {
				BenchWrites(b, newAgent(b), tb.entry, tb.capacity/batch*batch, batch)
			})
		}
	}
}

// BenchWrites measures INSERT throughput in batches of batch entries built by
// entry; capacity bounds how many are inserted before they are deleted again
// (outside the timer). It reports entries/s.
func BenchWrites(b *testing.B, a *Agent, entry func(Builder, int) *p4v1.TableEntry, capacity, batch int) {
	bl := Builder{T: b, Info: a.Info}
	nBatches := capacity / batch
	batches := make([][]*p4v1.Update, nBatches)
	for k := range batches {
		for i := k * batch; i < (k+1)*batch; i++ {
			batches[k] = append(batches[k], Ins(entry(bl, i)))
		}
	}
	ctx := context.Background()
	clear := func(upto int) {
		for k := 0; k < upto; k += max(1, 1000/batch) {
			var dels []*p4v1.Update
			for j := k; j < min(upto, k+max(1, 1000/batch)); j++ {
				for _, u := range batches[j] {
					dels = append(dels, Del(u.GetEntity().GetTableEntry()))
				}
			}
			if err := a.Ctl.Write(ctx, dels...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	next := 0
	for i := 0; i < b.N; i++ {
		if next == nBatches {
			b.StopTimer()
			clear(next)
			next = 0
			b.StartTimer()
		}
		if err := a.Ctl.Write(ctx, batches[next]...); err != nil {
			b.Fatalf("batch %d: %v %v", next, err, P4Errors(err))
		}
		next++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
	clear(next)
}

// BenchReadAll fills n backend_select entries (untimed) and measures a wildcard
// Read of every entry, reporting the entries read per op.
func BenchReadAll(b *testing.B, a *Agent, n int) {
	bl := Builder{T: b, Info: a.Info}
	ctx := context.Background()
	for k := 0; k < n; k += 10000 {
		var ups []*p4v1.Update
		for i := k; i < min(n, k+10000); i++ {
			ups = append(ups, Ins(SelectEntry(bl, i)))
		}
		if err := a.Ctl.Write(ctx, ups...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		es, err := Read(ctx, a.Client, server.DefaultDeviceID, Ent(&p4v1.TableEntry{}))
		if err != nil {
			b.Fatal(err)
		}
		if len(es) != n {
			b.Fatalf("read %d entries, want %d", len(es), n)
		}
	}
	b.ReportMetric(float64(n), "entries")
}
