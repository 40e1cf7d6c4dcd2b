// Package p4rtest is test support for the agent's packages: P4Runtime table
// entries built by P4Info name, test-vector states turned into P4Runtime
// writes, and a minimal P4Runtime client (arbitration, pipeline, write, read).
// It is meant for tests only (the agent's and the daemon's); the controller has
// its own P4Runtime client.
package p4rtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// Builder builds table entries by P4Info name; a bad name fails T.
type Builder struct {
	T    testing.TB
	Info *p4info.Info
}

// FM is a match field value: exact, or ternary when Mask is set.
type FM struct {
	Name        string
	Value, Mask []byte
}

// Exact is an exact match field with a canonical value.
func Exact(name string, v uint64) FM { return FM{Name: name, Value: p4info.EncodeUint(v)} }

// Tern is a ternary match field with canonical value and mask.
func Tern(name string, v, m uint64) FM {
	return FM{Name: name, Value: p4info.EncodeUint(v), Mask: p4info.EncodeUint(m)}
}

// Param is an action parameter value.
type Param struct {
	Name  string
	Value []byte
}

// P is a parameter with a canonical value.
func P(name string, v uint64) Param { return Param{name, p4info.EncodeUint(v)} }

// Addr6 is an IPv6 address (RFC 5952 text) as a canonical 128-bit byte
// string; a bad one fails t.
func Addr6(t testing.TB, s string) []byte {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		t.Fatalf("bad IPv6 %q", s)
	}
	b := a.As16()
	return p4info.Canonical(b[:])
}

// Table returns the named table.
func (b Builder) Table(name string) *p4info.Table {
	t, err := b.Info.Table(name)
	if err != nil {
		b.T.Fatal(err)
	}
	return t
}

// Action builds a direct action.
func (b Builder) Action(name string, params ...Param) *p4v1.TableAction {
	a, err := b.Info.Action(name)
	if err != nil {
		b.T.Fatal(err)
	}
	act := &p4v1.Action{ActionId: a.ID}
	for _, pr := range params {
		pp, err := a.Param(pr.Name)
		if err != nil {
			b.T.Fatal(err)
		}
		act.Params = append(act.Params, &p4v1.Action_Param{ParamId: pp.ID, Value: pr.Value})
	}
	return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: act}}
}

// Entry builds a TableEntry (no action when action is ""). Give fields in P4Info
// order to compare with what a server reads back.
func (b Builder) Entry(table string, prio int32, match []FM, action string, params ...Param) *p4v1.TableEntry {
	t := b.Table(table)
	te := &p4v1.TableEntry{TableId: t.ID, Priority: prio}
	for _, m := range match {
		f, err := t.Field(m.Name)
		if err != nil {
			b.T.Fatal(err)
		}
		x := &p4v1.FieldMatch{FieldId: f.ID}
		if m.Mask != nil {
			x.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: m.Value, Mask: m.Mask}}
		} else {
			x.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: m.Value}}
		}
		te.Match = append(te.Match, x)
	}
	if action != "" {
		te.Action = b.Action(action, params...)
	}
	return te
}

// VIP is a vip entry.
func (b Builder) VIP(addr uint32, id, pool uint64) *p4v1.TableEntry {
	return b.Entry(pipeline.TableVIP, 0, []FM{Exact(pipeline.MatchDstAddr.Name, uint64(addr))}, pipeline.ActionSetVIP,
		P(pipeline.ParamVIPID.Name, id), P(pipeline.ParamDefaultPool.Name, pool))
}

// Bucket is a backend_select entry.
func (b Builder) Bucket(pool, bucket, backend uint64) *p4v1.TableEntry {
	return b.Entry(pipeline.TableBackendSelect, 0, []FM{Exact(pipeline.MatchPoolID.Name, pool), Exact(pipeline.MatchBucket.Name, bucket)},
		pipeline.ActionSetBackend, P(pipeline.ParamBackendID.Name, backend))
}

// Backend is a backend entry with fixed MACs.
func (b Builder) Backend(id, port uint64, underlay uint32) *p4v1.TableEntry {
	return b.BackendMAC(id, port, 0x020000000101, 0x020000000b0b, underlay)
}

// BackendMAC is a backend entry.
func (b Builder) BackendMAC(id, port, smac, dmac uint64, underlay uint32) *p4v1.TableEntry {
	return b.Entry(pipeline.TableBackend, 0, []FM{Exact(pipeline.MatchBackendID.Name, id)}, pipeline.ActionToBackend,
		P(pipeline.ParamPort.Name, port), P(pipeline.ParamSMAC.Name, smac), P(pipeline.ParamDMAC.Name, dmac), P(pipeline.ParamUnderlayIP.Name, uint64(underlay)))
}

// Rule is a gray_rules entry with set_pool.
func (b Builder) Rule(prio int32, match []FM, pool uint64) *p4v1.TableEntry {
	return b.Entry(pipeline.TableGrayRules, prio, match, pipeline.ActionSetPool, P(pipeline.ParamPoolID.Name, pool))
}

// Ent wraps a TableEntry in an Entity.
func Ent(te *p4v1.TableEntry) *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}
}

// Upd is an update of te.
func Upd(typ p4v1.Update_Type, te *p4v1.TableEntry) *p4v1.Update {
	return &p4v1.Update{Type: typ, Entity: Ent(te)}
}

// Ins, Mod and Del are INSERT, MODIFY and DELETE updates.
func Ins(te *p4v1.TableEntry) *p4v1.Update { return Upd(p4v1.Update_INSERT, te) }

// Mod is a MODIFY update.
func Mod(te *p4v1.TableEntry) *p4v1.Update { return Upd(p4v1.Update_MODIFY, te) }

// Del is a DELETE update.
func Del(te *p4v1.TableEntry) *p4v1.Update { return Upd(p4v1.Update_DELETE, te) }

// IP32 is an IPv4 address as a number.
func IP32(t testing.TB, s string) uint64 {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		t.Fatalf("bad IPv4 %q", s)
	}
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// MAC is "aa:bb:cc:dd:ee:ff" as a number.
func MAC(t testing.TB, s string) uint64 {
	var v uint64
	for i := 0; i+2 <= len(s); i += 3 {
		x, err := hex.DecodeString(s[i : i+2])
		if err != nil {
			t.Fatalf("bad MAC %q", s)
		}
		v = v<<8 | uint64(x[0])
	}
	return v
}

// StateUpdates turns a test-vector state into P4Runtime inserts, gray rules in
// the state's order.
func StateUpdates(t testing.TB, b Builder, st testvectors.State) []*p4v1.Update {
	var ups []*p4v1.Update
	for _, v := range st.VIP {
		ups = append(ups, Ins(b.VIP(uint32(IP32(t, v.DstAddr)), uint64(v.VIPID), uint64(v.DefaultPool))))
	}
	for _, v := range st.VIPv6 {
		ups = append(ups, Ins(b.Entry(pipeline.TableVIPv6, 0, []FM{{Name: pipeline.MatchDstAddr6.Name, Value: Addr6(t, v.DstAddr)}},
			pipeline.ActionSetVIPv6, P(pipeline.ParamVIPID.Name, uint64(v.VIPID)), P(pipeline.ParamDefaultPool.Name, uint64(v.DefaultPool)))))
	}
	for _, v := range st.VNITenant {
		ups = append(ups, Ins(b.Entry(pipeline.TableVNITenant, 0, []FM{Exact(pipeline.MatchVNI.Name, uint64(v.VNI))}, pipeline.ActionSetTenant,
			P(pipeline.ParamTenantID.Name, uint64(v.TenantID)))))
	}
	for _, r := range st.GrayRules {
		var m []FM
		for _, name := range pipeline.Names(pipeline.GrayRulesMatch...) {
			if x, ok := r.Match[name]; ok {
				m = append(m, Tern(name, x.Value, x.Mask))
			}
		}
		var params []Param
		switch r.Action {
		case "set_pool":
			params = []Param{P(pipeline.ParamPoolID.Name, r.Params[pipeline.ParamPoolID.Name])}
		case "split_pool":
			params = []Param{P(pipeline.ParamPoolGray.Name, r.Params[pipeline.ParamPoolGray.Name]), P(pipeline.ParamThreshold.Name, r.Params[pipeline.ParamThreshold.Name])}
		case "set_pool_mirror":
			for _, f := range []pipeline.Field{pipeline.ParamPoolID, pipeline.ParamMirrorPool, pipeline.ParamSample, pipeline.ParamMirrorID} {
				params = append(params, P(f.Name, r.Params[f.Name]))
			}
		}
		ups = append(ups, Ins(b.Entry(pipeline.TableGrayRules, r.Priority, m, "GrayIngress."+r.Action, params...)))
	}
	for _, r := range st.GrayRulesV6 {
		var m []FM
		for _, f := range pipeline.GrayRulesV6Match {
			if x, ok := r.Match[f.Name]; ok {
				m = append(m, Tern(f.Name, x.Value, x.Mask))
			} else if x, ok := r.Match6[f.Name]; ok {
				m = append(m, FM{Name: f.Name, Value: Addr6(t, x.Value), Mask: Addr6(t, x.Mask)})
			}
		}
		params := []Param{P(pipeline.ParamPoolID.Name, r.Params[pipeline.ParamPoolID.Name])}
		if r.Action == "split_pool_v6" {
			params = []Param{P(pipeline.ParamPoolGray.Name, r.Params[pipeline.ParamPoolGray.Name]), P(pipeline.ParamThreshold.Name, r.Params[pipeline.ParamThreshold.Name])}
		}
		ups = append(ups, Ins(b.Entry(pipeline.TableGrayRulesV6, r.Priority, m, "GrayIngress."+r.Action, params...)))
	}
	for _, ph := range st.PoolHash {
		ups = append(ups, Ins(b.Entry(pipeline.TablePoolHash, 0, []FM{Exact(pipeline.MatchPoolID.Name, uint64(ph.PoolID))}, pipeline.ActionSetHashMask,
			P(pipeline.ParamVNIMask.Name, uint64(ph.VNIMask)), P(pipeline.ParamTenantMask.Name, uint64(ph.TenantMask)), P(pipeline.ParamSrcMask.Name, uint64(ph.SrcMask)),
			P(pipeline.ParamDstMask.Name, uint64(ph.DstMask)), P(pipeline.ParamProtoMask.Name, uint64(ph.ProtoMask)), P(pipeline.ParamSPortMask.Name, uint64(ph.SPortMask)),
			P(pipeline.ParamDPortMask.Name, uint64(ph.DPortMask)))))
	}
	for _, be := range st.Backend {
		if a, err := netip.ParseAddr(be.UnderlayIP); err == nil && a.Is6() {
			ups = append(ups, Ins(b.Entry(pipeline.TableBackend, 0, []FM{Exact(pipeline.MatchBackendID.Name, uint64(be.BackendID))},
				pipeline.ActionToBackendV6, P(pipeline.ParamPort.Name, uint64(be.Port)), P(pipeline.ParamSMAC.Name, MAC(t, be.SMAC)),
				P(pipeline.ParamDMAC.Name, MAC(t, be.DMAC)), Param{pipeline.ParamUnderlayIP6.Name, Addr6(t, be.UnderlayIP)})))
			continue
		}
		ups = append(ups, Ins(b.BackendMAC(uint64(be.BackendID), uint64(be.Port), MAC(t, be.SMAC), MAC(t, be.DMAC),
			uint32(IP32(t, be.UnderlayIP)))))
	}
	for _, f := range st.BackendSelect {
		for bk := 0; bk < pipeline.Buckets && len(f.Fill) > 0; bk++ {
			ups = append(ups, Ins(b.Bucket(uint64(f.PoolID), uint64(bk), uint64(f.Fill[bk%len(f.Fill)]))))
		}
	}
	for _, v := range st.VLANAccept {
		ups = append(ups, Ins(b.Entry(pipeline.TableVLANAccept, 0, []FM{Exact(pipeline.MatchIngressPort.Name, uint64(v.IngressPort)),
			Exact(pipeline.MatchVID.Name, uint64(v.VID))}, pipeline.ActionAcceptVLAN)))
	}
	for _, v := range st.PortVLAN {
		ups = append(ups, Ins(b.Entry(pipeline.TablePortVLAN, 0, []FM{Exact(pipeline.MatchEgressPort.Name, uint64(v.EgressPort))},
			pipeline.ActionSetPortVLAN, P(pipeline.ParamVID.Name, uint64(v.VID)))))
	}
	return ups
}

// P4Errors decodes the per-update (or per-request) errors of a batch status.
func P4Errors(err error) []*p4v1.Error {
	st, _ := status.FromError(err)
	var out []*p4v1.Error
	for _, d := range st.Details() {
		if pe, ok := d.(*p4v1.Error); ok {
			out = append(out, pe)
		}
	}
	return out
}

// Client is a P4Runtime client that arbitrated for the default role.
type Client struct {
	C        p4v1.P4RuntimeClient
	Device   uint64
	Election *p4v1.Uint128
	stream   p4v1.P4Runtime_StreamChannelClient
	cancel   context.CancelFunc
}

// Connect opens a stream, sends an arbitration update with election id and
// waits for the answer; it fails unless the client became primary.
func Connect(ctx context.Context, c p4v1.P4RuntimeClient, device, election uint64) (*Client, error) {
	sctx, cancel := context.WithCancel(context.Background())
	st, err := c.StreamChannel(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	id := &p4v1.Uint128{Low: election}
	if err := st.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
		Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: device, ElectionId: id}}}); err != nil {
		cancel()
		return nil, err
	}
	type res struct {
		m   *p4v1.StreamMessageResponse
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := st.Recv()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		if code := codes.Code(r.m.GetArbitration().GetStatus().GetCode()); code != codes.OK {
			cancel()
			return nil, fmt.Errorf("arbitration: %v %s", code, r.m.GetArbitration().GetStatus().GetMessage())
		}
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	return &Client{C: c, Device: device, Election: id, stream: st, cancel: cancel}, nil
}

// Close ends the stream.
func (c *Client) Close() { c.cancel() }

// SetPipeline sends a SetForwardingPipelineConfig.
func (c *Client) SetPipeline(ctx context.Context, action p4v1.SetForwardingPipelineConfigRequest_Action, info *p4configv1.P4Info, cookie uint64) error {
	_, err := c.C.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: c.Device, ElectionId: c.Election, Action: action,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: info, Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: cookie}}})
	return err
}

// Write sends one batch.
func (c *Client) Write(ctx context.Context, updates ...*p4v1.Update) error {
	_, err := c.C.Write(ctx, &p4v1.WriteRequest{DeviceId: c.Device, ElectionId: c.Election, Updates: updates})
	return err
}

// SameEntities fails t unless got and want hold the same entities, in any
// order (compared by their deterministic encoding).
func SameEntities(t testing.TB, got, want []*p4v1.Entity) {
	t.Helper()
	key := func(e *p4v1.Entity) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	sortByKey := func(es []*p4v1.Entity) []*p4v1.Entity {
		es = slices.Clone(es)
		slices.SortFunc(es, func(a, b *p4v1.Entity) int { return strings.Compare(key(a), key(b)) })
		return es
	}
	g, w := sortByKey(got), sortByKey(want)
	if len(g) != len(w) {
		t.Fatalf("read %d entities, want %d\ngot:  %v\nwant: %v", len(g), len(w), g, w)
	}
	for i := range g {
		if !proto.Equal(g[i], w[i]) {
			t.Fatalf("entity differs:\ngot:  %v\nwant: %v", g[i], w[i])
		}
	}
}

// ReadTables reads every table entry of device 1 of the P4Runtime server at
// addr on a connection of its own, without arbitration (reads are open to any
// client), as a controller's read-back does.
func ReadTables(ctx context.Context, addr string) ([]*p4v1.TableEntry, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	es, err := Read(ctx, p4v1.NewP4RuntimeClient(conn), 1, Ent(&p4v1.TableEntry{}))
	out := make([]*p4v1.TableEntry, len(es))
	for i, e := range es {
		out[i] = e.GetTableEntry()
	}
	return out, err
}

// Read reads entities until the end of the stream.
func Read(ctx context.Context, c p4v1.P4RuntimeClient, device uint64, entities ...*p4v1.Entity) ([]*p4v1.Entity, error) {
	st, err := c.Read(ctx, &p4v1.ReadRequest{DeviceId: device, Entities: entities})
	if err != nil {
		return nil, err
	}
	var out []*p4v1.Entity
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r.GetEntities()...)
	}
}
