package server

import (
	"bytes"
	"context"
	"math"
	"sync/atomic"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"
)

// MaxDeviceConfig bounds p4_device_config in SetForwardingPipelineConfig. The
// agent keeps it opaque and journals it; the XDP dataplane uses none. A BMv2 JSON
// of the graygw program is well under it.
const MaxDeviceConfig = 4 << 20

// metadataAllowance is the metadata and controller metadata allowed per entry in
// the size bound (graygw's controller sets none).
const metadataAllowance = 64

// entryBound is the encoded size of the largest Update of table t: every match
// field at full width (value and mask, or both range ends), the widest action with
// every parameter at full width, the highest priority and metadataAllowance bytes
// of metadata.
func entryBound(t *tableInfo) int {
	full := func(bits int32) []byte { return bytes.Repeat([]byte{0xff}, int(bits+7)/8) }
	te := &p4v1.TableEntry{TableId: t.ID, Priority: math.MaxInt32, ControllerMetadata: math.MaxUint64,
		Metadata: make([]byte, metadataAllowance)}
	for _, f := range t.Fields {
		v := full(f.Bitwidth)
		fm := &p4v1.FieldMatch{FieldId: f.ID}
		switch f.MatchType {
		case p4configv1.MatchField_LPM:
			fm.FieldMatchType = &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v, PrefixLen: f.Bitwidth}}
		case p4configv1.MatchField_TERNARY:
			fm.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v, Mask: v}}
		case p4configv1.MatchField_RANGE:
			fm.FieldMatchType = &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: v, High: v}}
		default:
			fm.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}
		}
		te.Match = append(te.Match, fm)
	}
	widest := 0
	for _, a := range t.actions {
		act := &p4v1.Action{ActionId: a.ID}
		for _, p := range a.Params {
			act.Params = append(act.Params, &p4v1.Action_Param{ParamId: p.ID, Value: full(p.Bitwidth)})
		}
		widest = max(widest, proto.Size(act))
	}
	u := &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	// The action nests in TableAction in TableEntry: a few bytes of tags and
	// lengths on top of the action itself; 16 covers them. The Update nests in
	// the WriteRequest with a tag and a length: 8 more.
	return proto.Size(u) + widest + 16 + 8
}

// MaxMessageSize is the largest request the server needs to accept, computed from
// the P4Info: a Write holding every entry of every table at its size, or a
// pipeline config (the P4Info and a device config up to MaxDeviceConfig), plus
// 1 MiB. Anything larger is refused by gRPC before it is read
// (RESOURCE_EXHAUSTED), so one request cannot grow the agent without bound.
func (s *Server) MaxMessageSize() int {
	write := 0
	for _, t := range s.schema.order {
		write += int(t.Size) * entryBound(t)
	}
	pipe := proto.Size(s.schema.info.P4Info()) + MaxDeviceConfig
	return max(write, pipe) + 1<<20
}

// GRPCOptions are the options a gRPC server serving s should have: the message
// size limit, and the connection tagging that lets Write and
// SetForwardingPipelineConfig tell the primary's connection from another one.
func (s *Server) GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(s.MaxMessageSize()), grpc.StatsHandler(connTagger{})}
}

// conn identifies one client connection (one HTTP/2 transport).
type conn struct{ id uint64 }

type connKey struct{}

var connSeq atomic.Uint64

// connOf returns the connection an RPC arrived on, nil when the server was not
// built with GRPCOptions.
func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// connTagger tags every accepted connection with a conn; gRPC derives each
// RPC's context from its connection's.
type connTagger struct{}

func (connTagger) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, &conn{id: connSeq.Add(1)})
}
func (connTagger) HandleConn(context.Context, stats.ConnStats) {}
func (connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}
func (connTagger) HandleRPC(context.Context, stats.RPCStats) {}
