package server_test

import (
	"bytes"
	"context"
	"math"
	"net"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// otherConn is a second client connection to the harness's server: another
// process, as far as the server can tell.
func (h *harness) otherConn() p4v1.P4RuntimeClient {
	h.t.Helper()
	lis := h.lis
	conn, err := grpc.NewClient("passthrough:///agent",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return p4v1.NewP4RuntimeClient(conn)
}

// TestPrimaryIDQuotedFromAnotherConnectionRefused: the backup that
// learned the primary's election id from an arbitration update and wrote with
// it. Writes and pipeline changes are accepted only on the connection holding the
// primary stream.
func TestPrimaryIDQuotedFromAnotherConnectionRefused(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	rogue := h.otherConn()
	// The rogue is a backup that was told the primary's id.
	st, err := rogue.StreamChannel(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: &p4v1.MasterArbitrationUpdate{
		DeviceId: device}}}) // no election id: a backup
	m, err := st.Recv()
	if err != nil || m.GetArbitration().GetStatus().GetCode() != int32(codes.AlreadyExists) {
		t.Fatalf("rogue arbitration: %v, %v", m, err)
	}
	learned := m.GetArbitration().GetElectionId()
	if !proto.Equal(learned, a.id) {
		t.Fatalf("arbitration update told %v, primary is %v", learned, a.id)
	}
	req := &p4v1.WriteRequest{DeviceId: device, ElectionId: learned, Updates: []*p4v1.Update{ins(h.b().VIP(7, 1, 1))}}
	if _, err := rogue.Write(ctx(t), req); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write quoting the primary's id from another connection = %v, want PERMISSION_DENIED", err)
	}
	if _, err := rogue.SetForwardingPipelineConfig(ctx(t), &p4v1.SetForwardingPipelineConfigRequest{DeviceId: device,
		ElectionId: learned, Action: actCommit, Config: &p4v1.ForwardingPipelineConfig{P4Info: h.info.P4Info()}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("pipeline change quoting the primary's id from another connection = %v, want PERMISSION_DENIED", err)
	}
	h.wantEntries(t, 0, "after the rogue's writes")
	h.mustWrite(a, ins(h.b().VIP(7, 1, 1))) // the primary's own connection still writes
}

// TestPipelineConfigLimits: the rows: an 8 MiB device config and a P4Info
// with a duplicated table are refused by VERIFY_AND_COMMIT, and nothing changes.
func TestPipelineConfigLimits(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	h.mustWrite(a, ins(h.b().VIP(7, 1, 1)))
	dup := clone(h.info.P4Info())
	dup.Tables = append(dup.Tables, clone(dup.Tables[0]))
	req := func(cfg *p4v1.ForwardingPipelineConfig) *p4v1.SetForwardingPipelineConfigRequest {
		return &p4v1.SetForwardingPipelineConfigRequest{DeviceId: device, ElectionId: a.id, Action: actCommit, Config: cfg}
	}
	if _, err := h.c.SetForwardingPipelineConfig(ctx(t), req(&p4v1.ForwardingPipelineConfig{P4Info: dup})); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("duplicated table: %v, want INVALID_ARGUMENT", err)
	}
	big := bytes.Repeat([]byte{1}, 8<<20)
	if _, err := h.c.SetForwardingPipelineConfig(ctx(t), req(&p4v1.ForwardingPipelineConfig{P4Info: h.info.P4Info(), P4DeviceConfig: big})); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("8 MiB device config: %v, want RESOURCE_EXHAUSTED", err)
	}
	h.wantEntries(t, 1, "after a refused VERIFY_AND_COMMIT")
}

// TestMessageSizeLimit: the limit holds the largest legitimate batch (every
// entry of the biggest table, the widest entries, with metadata) and refuses a
// request past it before reading it (the 200 MiB Write).
func TestMessageSizeLimit(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	limit := h.srv.MaxMessageSize()
	b := h.b()
	// backend_select holds 262144 entries: a batch of all of them, each with
	// 64 bytes of metadata, fits.
	u := ins(b.Bucket(4000, 4095, 4095))
	u.GetEntity().GetTableEntry().Metadata = bytes.Repeat([]byte{1}, 64)
	if full := 262144 * (proto.Size(u) + 4); full > limit {
		t.Fatalf("a full backend_select batch is %d bytes, over the limit %d", full, limit)
	}
	t.Logf("message size limit: %d bytes", limit)
	over := ins(b.VIP(9, 1, 1))
	over.GetEntity().GetTableEntry().Metadata = make([]byte, limit)
	if _, err := h.c.Write(ctx(t), a.writeReq(over)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("write over the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
}

// TestResetElectionIDs: the rogue took election id 2^128-1, journaled, so
// no controller could ever be primary again, across agent restarts. A restart
// with ResetElectionIDs (graygw-agent --reset-election-ids) forgets it and keeps
// the entries.
func TestResetElectionIDs(t *testing.T) {
	h := newHarness(t, withStateDir(t.TempDir()))
	a := h.ready()
	h.mustWrite(a, ins(h.b().VIP(7, 1, 1)))
	max := &p4v1.Uint128{High: math.MaxUint64, Low: math.MaxUint64}
	rogue := h.connect("", max)
	rogue.expectArb(codes.OK, max)
	h.restart()
	c := h.connect("", eid(10))
	c.expectArb(codes.NotFound, max) // nobody can go above it
	h.resetEIDs = true
	h.restart()
	c = h.connect("", eid(10))
	c.expectArb(codes.OK, eid(10))
	h.wantEntries(t, 1, "after the reset (the one written)")
	h.resetEIDs = false
	h.restart() // the reset is journaled: 10 stays the highest
	c = h.connect("", eid(10))
	c.expectArb(codes.OK, eid(10))
}
