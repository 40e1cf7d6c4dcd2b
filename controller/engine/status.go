package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/pipeline"
)

// Status returns the status of every managed gateway, sorted by name.
func (e *Engine) Status() []GatewayStatus {
	e.mu.Lock()
	gws := e.gatewaysLocked()
	e.mu.Unlock()
	out := make([]GatewayStatus, 0, len(gws))
	for _, g := range gws {
		out = append(out, g.status())
	}
	return out
}

// Gateways returns the names of the managed gateways, sorted.
func (e *Engine) Gateways() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, g := range e.gatewaysLocked() {
		out = append(out, g.name)
	}
	return out
}

// Counter is a packets and bytes pair.
type Counter struct {
	Packets, Bytes uint64
}

func (c *Counter) add(d *p4v1.CounterData) {
	c.Packets += uint64(d.GetPacketCount())
	c.Bytes += uint64(d.GetByteCount())
}

// Counters are the counters of one gateway, read from the target and named
// through the current intent.
type Counters struct {
	Gateway string
	// Version is the intent version whose names label the counters.
	Version uint64
	// Time is when the counters were read.
	Time time.Time
	// Rules, VIPs and Backends are the direct counters of the gray_rules (and
	// gray_rules_v6: a rule without an address has an entry in each, summed),
	// vip (and vip_v6) and backend entries, by intent name.
	Rules, VIPs, Backends map[string]Counter
	// Pools sum the backend counters of each pool's members. A backend that
	// serves several pools counts in each of them: the pipeline has no per-pool
	// counter.
	Pools map[string]Counter
	// Drops is the drop_reasons counter by reason name (docs/pipeline.md §9); the
	// "not for us" reasons are included.
	Drops map[string]Counter
	// Foreign sums the direct counters of entries the intent does not name.
	Foreign Counter
	// Mirrors are the mirror copies made, by mirrored rule name
	// (mirror_counter), and MirrorBackends the copies sent, by backend name
	// (mirror_backend_counter), docs/pipeline.md §10. Only cells that moved;
	// empty for a gateway whose build predates the mirror.
	Mirrors, MirrorBackends map[string]Counter
	// Split divides each VIP's packets between the base and gray clusters
	// (see Split).
	Split map[string]map[intent.Cluster]Counter
}

// Counters reads the counters of gateway (reads are allowed to a standby
// controller too).
func (e *Engine) Counters(ctx context.Context, gateway string) (*Counters, error) {
	g, err := e.gateway(gateway)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	w, in := e.wants[gateway], e.in
	e.mu.Unlock()
	out := &Counters{Gateway: gateway, Time: time.Now(), Rules: map[string]Counter{}, VIPs: map[string]Counter{},
		Backends: map[string]Counter{}, Pools: map[string]Counter{}, Drops: map[string]Counter{},
		Mirrors: map[string]Counter{}, MirrorBackends: map[string]Counter{}}
	if w != nil {
		out.Version = w.version
	}
	info := e.codec.Info()
	for _, tc := range []struct {
		table, prefix string
		into          map[string]Counter
	}{
		{pipeline.TableGrayRules, "rule ", out.Rules},
		{pipeline.TableGrayRulesV6, "rule ", out.Rules}, // a rule's two entries add up
		{pipeline.TableVIP, "vip ", out.VIPs},
		{pipeline.TableVIPv6, "vip ", out.VIPs},
		{pipeline.TableBackend, "backend ", out.Backends},
	} {
		t, err := info.Table(tc.table)
		if err != nil && (tc.table == pipeline.TableGrayRulesV6 || tc.table == pipeline.TableVIPv6) {
			continue // a P4Info without IPv6
		}
		if err != nil {
			return nil, fmt.Errorf("engine: counters: %w", err)
		}
		ents, err := g.client.ReadTable(ctx, t.ID, true)
		if err != nil {
			return nil, fmt.Errorf("engine: counters of %s: %w", gateway, err)
		}
		for _, te := range ents {
			origin := ""
			if w != nil {
				origin, _ = w.origin(reconcile.Key(Canonicalize(te)))
			}
			name, ok := strings.CutPrefix(origin, tc.prefix)
			if !ok {
				out.Foreign.add(te.GetCounterData())
				continue
			}
			c := tc.into[name]
			c.add(te.GetCounterData())
			tc.into[name] = c
		}
	}
	if in != nil {
		for _, p := range in.Pools {
			var c Counter
			for _, m := range p.Members {
				b := out.Backends[m.Backend]
				c.Packets += b.Packets
				c.Bytes += b.Bytes
			}
			out.Pools[p.Name] = c
		}
		out.Split = Split(in, out.Rules, out.VIPs)
	}
	// By the gateway's own id: a Tofino build numbers its counters itself.
	gi, err := g.p4info()
	if err != nil {
		return nil, fmt.Errorf("engine: counters: %w", err)
	}
	dropsID, err := gatewayCounterID(gi, pipeline.CounterDropReasons)
	if err != nil {
		return nil, fmt.Errorf("engine: counters: %w", err)
	}
	cells, err := g.client.ReadCounter(ctx, dropsID)
	if err != nil {
		return nil, fmt.Errorf("engine: drop counters of %s: %w", gateway, err)
	}
	for _, ce := range cells {
		i := ce.GetIndex().GetIndex()
		if i <= 0 || i >= pipeline.NumReasons {
			continue // cell 0 (forwarded) is never counted
		}
		var c Counter
		c.add(ce.GetData())
		out.Drops[pipeline.Reason(i).String()] = c
	}
	if err := mirrorCounters(ctx, g, gi, in, out); err != nil {
		return nil, fmt.Errorf("engine: mirror counters of %s: %w", gateway, err)
	}
	return out, nil
}

// mirrorCounters reads mirror_counter and mirror_backend_counter into out,
// named through in: a cell is a mirrored rule's mirror id, a backend's id. A
// cell no name covers (a rule removed since) is left out.
func mirrorCounters(ctx context.Context, g *gateway, gi *p4info.Info, in *intent.Intent, out *Counters) error {
	if in == nil {
		return nil
	}
	rules, backends := map[int64]string{}, map[int64]string{}
	for _, r := range in.Rules {
		if r.Mirrored() {
			rules[int64(r.MirrorID)] = r.Name
		}
	}
	for _, b := range in.Backends {
		backends[int64(b.ID)] = b.Name
	}
	for _, m := range []struct {
		counter string
		names   map[int64]string
		into    map[string]Counter
	}{
		{pipeline.CounterMirror, rules, out.Mirrors},
		{pipeline.CounterMirrorBackend, backends, out.MirrorBackends},
	} {
		if len(m.names) == 0 || (m.counter == pipeline.CounterMirrorBackend && len(rules) == 0) {
			continue
		}
		id, err := gatewayCounterID(gi, m.counter)
		if err != nil {
			continue // a gateway without the mirror
		}
		cells, err := g.client.ReadCounter(ctx, id)
		if err != nil {
			return err
		}
		for _, ce := range cells {
			name, ok := m.names[ce.GetIndex().GetIndex()]
			if !ok || ce.GetData().GetPacketCount() == 0 {
				continue
			}
			var c Counter
			c.add(ce.GetData())
			m.into[name] = c
		}
	}
	return nil
}

// statusCode finds a gRPC status code in err's chain.
func statusCode(err error) (codes.Code, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok && s.Code() != codes.Unknown {
			return s.Code(), true
		}
	}
	return codes.Unknown, false
}
