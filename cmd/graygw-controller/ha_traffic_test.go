package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4rtest"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/internal/seqstream"
	"github.com/graygw/graygw/internal/stack"
)

// The failover tests' traffic: a stream of UDP datagrams with sequence
// numbers from every VM of the rollout lab (two source ports each) to its VPC
// router, encapsulated by the hypervisor's kernel, through the gateway's XDP
// program, counted at the base and gray backends. One datagram a millisecond
// over 12 flows.

// startLabStream starts the stream and waits until every flow arrives at
// base (the lab's intent sends every VM there). It is stopped at the end of
// the test if the test does not stop it.
func startLabStream(t *testing.T, rl *rolloutLab) *seqstream.Stream {
	t.Helper()
	var flows []seqstream.Flow
	for _, v := range rl.l.Topo.VPCs {
		// The VMs' checksums in software: the XDP program redirects the frame,
		// and a checksum left to offload would never be filled in.
		if _, err := rl.l.Topo.Lab.Exec(rl.l.Topo.HV, "ethtool", "-K", fmt.Sprintf("vx%d", v.VNI), "tx", "off"); err != nil {
			t.Fatal(err)
		}
		for _, vm := range v.VMs {
			for _, port := range []uint16{40001, 40002} {
				flows = append(flows, seqstream.Flow{Src: v.VMAddr(vm), SrcPort: port, Dst: v.RouterAddr()})
			}
		}
	}
	s, err := seqstream.Start(seqstream.Config{SendNS: rl.l.Topo.HV, Flows: flows,
		Receivers: map[string]string{"base": rl.l.Topo.Base, "gray": rl.l.Topo.Gray}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(0) })
	if !s.WaitLast(0, 10*time.Second, func(int) string { return "base" }) {
		t.Fatalf("the stream never reached base through the gateway: %v", s.Last())
	}
	return s
}

// stopLabStream stops the stream and fails t unless every datagram arrived
// exactly once.
func stopLabStream(t *testing.T, s *seqstream.Stream, what string) seqstream.Report {
	t.Helper()
	r := s.Stop(200 * time.Millisecond)
	t.Logf("stream through the gateway, %s: %s", what, r)
	if len(r.Lost) > 0 || r.Duplicated > 0 || r.Foreign > 0 || len(r.SendErrors) > 0 {
		first := r.Lost[:min(len(r.Lost), 10)]
		t.Errorf("stream %s: %d lost (first %v), %d duplicated, %d foreign, send errors %v", what, len(r.Lost), first,
			r.Duplicated, r.Foreign, r.SendErrors[:min(len(r.SendErrors), 3)])
	}
	return r
}

// gatewayHolds reads every table entry the gateway at addr holds (P4Runtime
// Read) and returns which of versions it holds exactly: the compile of that
// version's intent (read from the controller c), its pools taken from the
// gateway's own tables as a restarted controller takes them (compile.Recover:
// the buckets Maglev rebuilds gave), entry for entry. It fails t, naming the
// first differences, when the gateway holds none of them: a half-applied
// change.
func gatewayHolds(t *testing.T, addr string, c graygwv1.ControllerClient, versions ...uint64) uint64 {
	t.Helper()
	codec := engine.NewCodec(stack.P4Info(t))
	read := readTables(t, addr)
	held := stack.Entries(t, read)
	got := map[string]bool{}
	for _, te := range read {
		got[string(canonicalBytes(t, te))] = true
	}
	var diffs []string
	for _, v := range versions {
		doc, err := c.Get(context.Background(), &graygwv1.GetRequest{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		in, err := intent.Load([]byte(doc.GetIntentYaml()))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		prev, err := compile.Recover(in, held)
		if err != nil {
			t.Fatal(err)
		}
		res, err := compile.Compile(in, prev)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("version %d does not compile over the gateway's pools: %v", v, err))
			continue
		}
		want := map[string]string{}
		for _, g := range res.Gateways {
			for i := range g.Entries {
				te, err := codec.ToP4(&g.Entries[i])
				if err != nil {
					t.Fatal(err)
				}
				want[string(canonicalBytes(t, te))] = g.Entries[i].String()
			}
		}
		var missing, extra []string
		for k, s := range want {
			if !got[k] {
				missing = append(missing, s)
			}
		}
		for _, te := range read {
			if _, ok := want[string(canonicalBytes(t, te))]; !ok {
				extra = append(extra, codec.Describe(te))
			}
		}
		if len(missing) == 0 && len(extra) == 0 {
			return v
		}
		slices.Sort(missing)
		slices.Sort(extra)
		diffs = append(diffs, fmt.Sprintf("version %d: %d entries missing (first %v), %d not in it (first %v)", v,
			len(missing), missing[:min(3, len(missing))], len(extra), extra[:min(3, len(extra))]))
	}
	t.Fatalf("the gateway's %d entries are none of versions %v (a half-applied change): %v", len(read), versions, diffs)
	return 0
}

// canonicalBytes is te in canonical form (engine.Canonicalize), marshalled
// deterministically: equal bytes, equal entries.
func canonicalBytes(t *testing.T, te *p4v1.TableEntry) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(engine.Canonicalize(te))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readTables reads every table entry of device 1 at addr.
func readTables(t *testing.T, addr string) []*p4v1.TableEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := p4rtest.ReadTables(ctx, addr)
	if err != nil {
		t.Fatalf("read the gateway's tables: %v", err)
	}
	return out
}
