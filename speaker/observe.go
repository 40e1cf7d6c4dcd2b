package speaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/pipeline"
)

// DataplaneConfig says where the local dataplane is and what "forwarding"
// means for it.
type DataplaneConfig struct {
	// P4Runtime is the local target's address: the graygw-agent, BMv2's
	// simple_switch_grpc, or a Tofino's switchd, on the same machine.
	P4Runtime string `yaml:"p4runtime"`
	// DeviceID is the target's P4Runtime device id.
	DeviceID uint64 `yaml:"deviceID"`
	// Interfaces must be up (administratively and with carrier) for the
	// gateway to count as forwarding. Empty: no interface is checked (a
	// Tofino's front panel ports are not Linux interfaces).
	Interfaces []string `yaml:"interfaces"`
	// XDP: every interface in Interfaces must also have an XDP program
	// attached (the graygw-agent's).
	XDP bool `yaml:"xdp"`
	// Timeout bounds one observation's reads (default 500ms): a target that
	// does not answer within it is not forwarding as far as BGP is concerned.
	Timeout time.Duration `yaml:"timeout"`
	// SlowGrace is how long a target that answers nothing (each read timing
	// out) still counts as serving what it last served (default 1s): a CPU
	// spike on the gateway must not withdraw its paths. A target that refuses
	// the connection, or answers with an error, counts as down at once.
	SlowGrace time.Duration `yaml:"slowGrace"`
	// TLS secures the P4Runtime connection; nil is plaintext (loopback).
	TLS credentials.TransportCredentials `yaml:"-"`
}

// Observation is what the speaker sees of its own dataplane at one moment.
type Observation struct {
	// Time is when it was made.
	Time time.Time `json:"time"`
	// Reachable: the P4Runtime target answered the reads.
	Reachable bool `json:"reachable"`
	// Forwarding: every configured interface is up (with XDP attached when
	// required).
	Forwarding bool `json:"forwarding"`
	// Problems say in words what is wrong (empty when nothing is).
	Problems []string `json:"problems,omitempty"`
	// Served are the VIPs of the vip table whose default pool has a backend:
	// a packet to them is forwarded, not dropped.
	Served map[netip.Addr]bool `json:"served"`
	// NotServed says, for VIPs in the vip table that are not served, why.
	NotServed map[netip.Addr]string `json:"notServed,omitempty"`
	// VIPv6Error: the target has a vip_v6 table but did not answer its read;
	// no IPv6 VIP counts as served meanwhile (the IPv4 ones still do).
	VIPv6Error string `json:"vipV6Error,omitempty"`
}

// ids are the P4Info ids the observer reads, resolved by name from the
// target's own P4Info (so a Tofino build's "pipe." names work too).
type ids struct {
	vip, vipDst, setVIP, vipDefaultPool uint32
	vip6, vip6Dst                       uint32 // 0: the program has no vip_v6
	setVIP6, vip6DefaultPool            uint32 // set_vip_v6, vip_v6's own action
	bs, bsPool, bsBucket                uint32
	backend, backendID                  uint32
}

// Observer reads the local dataplane. It is not safe for concurrent use.
type Observer struct {
	cfg  DataplaneConfig
	conn *grpc.ClientConn
	rt   p4v1.P4RuntimeClient
	ids  *ids
	// last is the last good read; slowSince when reads began timing out.
	last      *Observation
	slowSince time.Time
}

// NewObserver connects (lazily, as gRPC does) to the local target.
func NewObserver(cfg DataplaneConfig) (*Observer, error) {
	if cfg.P4Runtime == "" {
		return nil, errors.New("speaker: dataplane.p4runtime: empty")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.SlowGrace <= 0 {
		cfg.SlowGrace = time.Second
	}
	creds := cfg.TLS
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(cfg.P4Runtime, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("speaker: dataplane %s: %w", cfg.P4Runtime, err)
	}
	return &Observer{cfg: cfg, conn: conn, rt: p4v1.NewP4RuntimeClient(conn)}, nil
}

// Close closes the connection.
func (o *Observer) Close() error { return o.conn.Close() }

// Observe reads the dataplane now. It reads only (no stream, no arbitration):
// the controller stays the only writer.
func (o *Observer) Observe(ctx context.Context) Observation {
	obs := Observation{Time: time.Now(), Forwarding: true, Served: map[netip.Addr]bool{}}
	for _, name := range o.cfg.Interfaces {
		if p := linkProblem(name, o.cfg.XDP); p != "" {
			obs.Forwarding = false
			obs.Problems = append(obs.Problems, p)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	err := o.readTables(ctx, &obs)
	if err == nil {
		obs.Reachable = true
		o.last, o.slowSince = &obs, time.Time{}
		return obs
	}
	slow := status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded)
	if slow && o.last != nil {
		if o.slowSince.IsZero() {
			o.slowSince = obs.Time
		}
		if obs.Time.Sub(o.slowSince) < o.cfg.SlowGrace {
			// Slow, not gone (yet): keep what it last served.
			obs.Reachable, obs.Served, obs.NotServed = true, o.last.Served, o.last.NotServed
			obs.Problems = append(obs.Problems, fmt.Sprintf("dataplane %s: slow: no answer within %s (tolerated for %s)",
				o.cfg.P4Runtime, o.cfg.Timeout, o.cfg.SlowGrace))
			return obs
		}
	}
	o.ids = nil // the target may have restarted with another pipeline
	o.last = nil
	obs.Problems = append(obs.Problems, fmt.Sprintf("dataplane %s: %v", o.cfg.P4Runtime, err))
	obs.Served = map[netip.Addr]bool{}
	obs.NotServed = nil
	return obs
}

// linkProblem says what is wrong with interface name, or "".
func linkProblem(name string, wantXDP bool) string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Sprintf("interface %s: %v", name, err)
	}
	a := l.Attrs()
	switch {
	case a.Flags&net.FlagUp == 0:
		return fmt.Sprintf("interface %s is administratively down", name)
	case a.OperState != netlink.OperUp && a.OperState != netlink.OperUnknown:
		return fmt.Sprintf("interface %s is %s", name, a.OperState)
	case a.RawFlags&0x10000 == 0: // IFF_LOWER_UP: carrier
		return fmt.Sprintf("interface %s has no carrier", name)
	case wantXDP && (a.Xdp == nil || !a.Xdp.Attached):
		return fmt.Sprintf("interface %s has no XDP program attached", name)
	}
	return ""
}

// readTables fills obs.Served from the vip, backend_select and backend tables:
// a VIP is served when it is in the vip table, bucket 0 of its default pool
// has a backend (Maglev fills every bucket of a pool that has one), and that
// backend is in the backend table.
func (o *Observer) readTables(ctx context.Context, obs *Observation) error {
	if o.ids == nil {
		id, err := o.resolve(ctx)
		if err != nil {
			return err
		}
		o.ids = id
	}
	id := o.ids
	vips, err := o.read(ctx, &p4v1.TableEntry{TableId: id.vip})
	if err != nil {
		return err
	}
	pools := map[netip.Addr]uint64{}
	for _, te := range vips {
		addr, pool, ok := vipEntry(te, id.vipDst, 4, id.setVIP, id.vipDefaultPool)
		if ok {
			pools[addr] = pool
		}
	}
	if id.vip6 != 0 {
		vips, err := o.read(ctx, &p4v1.TableEntry{TableId: id.vip6})
		if err != nil {
			// A target that lists vip_v6 but cannot read it yet withdraws
			// its IPv6 VIPs, not its IPv4 ones.
			obs.VIPv6Error = err.Error()
		}
		for _, te := range vips {
			if addr, pool, ok := vipEntry(te, id.vip6Dst, 16, id.setVIP6, id.vip6DefaultPool); ok {
				pools[addr] = pool
			}
		}
	}
	var q []*p4v1.TableEntry
	var order []uint64
	for _, pool := range pools {
		if !slices.Contains(order, pool) {
			order = append(order, pool)
			q = append(q, &p4v1.TableEntry{TableId: id.bs, Match: []*p4v1.FieldMatch{
				exact(id.bsPool, pool), exact(id.bsBucket, 0)}})
		}
	}
	backendOf := map[uint64]uint64{}
	if len(q) > 0 {
		got, err := o.read(ctx, q...)
		if err != nil {
			return err
		}
		for _, te := range got {
			pool, ok1 := matchUint(te, id.bsPool)
			be, ok2 := firstParam(te)
			if ok1 && ok2 {
				backendOf[pool] = be
			}
		}
	}
	q = q[:0]
	for _, be := range backendOf {
		q = append(q, &p4v1.TableEntry{TableId: id.backend, Match: []*p4v1.FieldMatch{exact(id.backendID, be)}})
	}
	backends := map[uint64]bool{}
	if len(q) > 0 {
		got, err := o.read(ctx, q...)
		if err != nil {
			return err
		}
		for _, te := range got {
			if be, ok := matchUint(te, id.backendID); ok {
				backends[be] = true
			}
		}
	}
	for addr, pool := range pools {
		be, ok := backendOf[pool]
		switch {
		case !ok:
			obs.noteNotServed(addr, fmt.Sprintf("default pool %d has no backend (bucket 0 empty)", pool))
		case !backends[be]:
			obs.noteNotServed(addr, fmt.Sprintf("default pool %d: backend %d is not in the backend table", pool, be))
		default:
			obs.Served[addr] = true
		}
	}
	return nil
}

func (obs *Observation) noteNotServed(addr netip.Addr, why string) {
	if obs.NotServed == nil {
		obs.NotServed = map[netip.Addr]string{}
	}
	obs.NotServed[addr] = why
}

func (o *Observer) read(ctx context.Context, entries ...*p4v1.TableEntry) ([]*p4v1.TableEntry, error) {
	req := &p4v1.ReadRequest{DeviceId: o.cfg.DeviceID}
	for _, te := range entries {
		req.Entities = append(req.Entities, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}})
	}
	stream, err := o.rt.Read(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var out []*p4v1.TableEntry
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		for _, e := range resp.GetEntities() {
			if te := e.GetTableEntry(); te != nil {
				out = append(out, te)
			}
		}
	}
}

// resolve reads the target's P4Info and finds the ids by name.
func (o *Observer) resolve(ctx context.Context) (*ids, error) {
	resp, err := o.rt.GetForwardingPipelineConfig(ctx, &p4v1.GetForwardingPipelineConfigRequest{
		DeviceId: o.cfg.DeviceID, ResponseType: p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE})
	if err != nil {
		return nil, fmt.Errorf("get pipeline: %w", err)
	}
	info := resp.GetConfig().GetP4Info()
	if info == nil {
		return nil, errors.New("no pipeline yet (no P4Info)")
	}
	var id ids
	var errs []error
	table := func(name string, fields ...string) (uint32, []uint32) {
		for _, t := range info.GetTables() {
			if named(t.GetPreamble(), name) {
				out := make([]uint32, len(fields))
				for i, f := range fields {
					for _, mf := range t.GetMatchFields() {
						if mf.GetName() == f {
							out[i] = mf.GetId()
						}
					}
					if out[i] == 0 {
						errs = append(errs, fmt.Errorf("table %s has no match field %s", name, f))
					}
				}
				return t.GetPreamble().GetId(), out
			}
		}
		errs = append(errs, fmt.Errorf("P4Info has no table %s", name))
		return 0, make([]uint32, len(fields))
	}
	var f []uint32
	id.vip, f = table(pipeline.TableVIP, "dst_addr")
	id.vipDst = f[0]
	// vip_v6 (issue 19) is optional: a program without it serves no IPv6
	// VIP, and a speaker then withdraws every one (no-healthy-backend).
	for _, t := range info.GetTables() {
		if named(t.GetPreamble(), pipeline.TableVIPv6) {
			for _, mf := range t.GetMatchFields() {
				if mf.GetName() == "dst_addr" {
					id.vip6, id.vip6Dst = t.GetPreamble().GetId(), mf.GetId()
				}
			}
			if id.vip6 == 0 {
				errs = append(errs, fmt.Errorf("table %s has no match field dst_addr", pipeline.TableVIPv6))
			}
		}
	}
	id.bs, f = table(pipeline.TableBackendSelect, "pool_id", "bucket")
	id.bsPool, id.bsBucket = f[0], f[1]
	id.backend, f = table(pipeline.TableBackend, "backend_id")
	id.backendID = f[0]
	action := func(name string) (uint32, uint32) {
		for _, a := range info.GetActions() {
			if named(a.GetPreamble(), name) {
				for _, p := range a.GetParams() {
					if p.GetName() == pipeline.ParamDefaultPool.Name {
						return a.GetPreamble().GetId(), p.GetId()
					}
				}
			}
		}
		errs = append(errs, fmt.Errorf("P4Info has no action %s(%s)", name, pipeline.ParamDefaultPool.Name))
		return 0, 0
	}
	id.setVIP, id.vipDefaultPool = action(pipeline.ActionSetVIP)
	if id.vip6 != 0 {
		id.setVIP6, id.vip6DefaultPool = action(pipeline.ActionSetVIPv6)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &id, nil
}

// named matches a P4Info name with or without a Tofino build's "pipe." prefix.
func named(p *p4configv1.Preamble, name string) bool {
	return p.GetName() == name || strings.HasSuffix(p.GetName(), "."+name)
}

// vipEntry decodes a vip (size 4, field dst, action set_vip) or vip_v6 (size
// 16, set_vip_v6) entry: the VIP and its default pool (param pool of action
// setVIP). An exact value is P4Runtime's canonical bytes: big-endian, leading
// zero bytes left out.
func vipEntry(te *p4v1.TableEntry, dst uint32, size int, setVIP, pool uint32) (netip.Addr, uint64, bool) {
	var addr netip.Addr
	for _, m := range te.GetMatch() {
		if m.GetFieldId() == dst {
			v := bytes.TrimLeft(m.GetExact().GetValue(), "\x00")
			if len(v) > size {
				return netip.Addr{}, 0, false
			}
			var b [16]byte
			copy(b[16-len(v):], v)
			addr = netip.AddrFrom16(b)
			if size == 4 {
				addr = netip.AddrFrom4([4]byte(b[12:]))
			}
		}
	}
	act := te.GetAction().GetAction()
	if !addr.IsValid() || act.GetActionId() != setVIP {
		return netip.Addr{}, 0, false
	}
	for _, p := range act.GetParams() {
		if p.GetParamId() == pool {
			v, err := p4info.DecodeUint(p.GetValue())
			return addr, v, err == nil
		}
	}
	return netip.Addr{}, 0, false
}

func exact(field uint32, v uint64) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: field, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: p4info.EncodeUint(v)}}}
}

func matchUint(te *p4v1.TableEntry, field uint32) (uint64, bool) {
	for _, m := range te.GetMatch() {
		if m.GetFieldId() == field {
			v, err := p4info.DecodeUint(m.GetExact().GetValue())
			return v, err == nil
		}
	}
	return 0, false
}

// firstParam is the only parameter of a set_backend action.
func firstParam(te *p4v1.TableEntry) (uint64, bool) {
	ps := te.GetAction().GetAction().GetParams()
	if len(ps) != 1 {
		return 0, false
	}
	v, err := p4info.DecodeUint(ps[0].GetValue())
	return v, err == nil
}
