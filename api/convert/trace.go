package convert

import (
	"fmt"
	"net/netip"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/trace"
)

// TraceQuery converts a flow to trace to the API (gateway "" for all).
func TraceQuery(q *trace.Query, gateway string) *graygwv1.TraceRequest {
	return &graygwv1.TraceRequest{Vni: q.VNI, Plain: q.Plain, Src: addr(q.Src), Dst: addr(q.Dst), Proto: uint32(q.Proto),
		Sport: uint32(q.SPort), Dport: uint32(q.DPort), Open: q.Open, Vip: q.VIP, Gateway: gateway, AllRules: q.AllRules}
}

// TraceQueryFrom converts a flow to trace from the API and checks it
// (errors wrap trace.ErrQuery).
func TraceQueryFrom(r *graygwv1.TraceRequest) (*trace.Query, error) {
	src, err := netip.ParseAddr(r.GetSrc())
	if err != nil {
		return nil, fmt.Errorf("%w: src %q: want an IPv4 or IPv6 address", trace.ErrQuery, r.GetSrc())
	}
	q := &trace.Query{Plain: r.GetPlain(), VNI: r.GetVni(), Src: src, Open: r.GetOpen(), VIP: r.GetVip(), AllRules: r.GetAllRules()}
	if r.GetDst() != "" {
		if q.Dst, err = netip.ParseAddr(r.GetDst()); err != nil {
			return nil, fmt.Errorf("%w: dst %q: want an IPv4 or IPv6 address", trace.ErrQuery, r.GetDst())
		}
	}
	if r.GetProto() > 255 || r.GetSport() > 65535 || r.GetDport() > 65535 {
		return nil, fmt.Errorf("%w: proto %d, ports %d and %d: want a protocol number up to 255 and ports up to 65535",
			trace.ErrQuery, r.GetProto(), r.GetSport(), r.GetDport())
	}
	q.Proto, q.SPort, q.DPort = uint8(r.GetProto()), uint16(r.GetSport()), uint16(r.GetDport())
	if err := q.Check(); err != nil {
		return nil, err
	}
	return q, nil
}

// GatewayTrace converts a gateway's trace to the API.
func GatewayTrace(g *trace.Gateway) *graygwv1.GatewayTrace {
	out := &graygwv1.GatewayTrace{Gateway: g.Gateway, Error: g.Error, IntentVersion: g.IntentVersion, EntriesRead: uint64(g.EntriesRead),
		InSync: g.InSync}
	if d := g.Drift; d != nil {
		out.Drift = &graygwv1.TraceDrift{Missing: d.Missing, MissingCount: uint64(d.MissingCount), Differ: d.Differ,
			DifferCount: uint64(d.DifferCount), Extra: d.Extra, ExtraCount: uint64(d.ExtraCount)}
	}
	for _, v := range g.VIPs {
		p := &graygwv1.TracePath{Vip: v.VIP, Address: v.Address, VipId: uint32(v.VIPID), Verdict: v.Verdict, Reason: v.Reason,
			Tenant: v.Tenant, TenantId: uint32(v.TenantID), Rule: v.Rule, Pool: v.Pool, PoolId: uint32(v.PoolID),
			HashFields: v.HashFields, HashKey: v.HashKey, Crc32: v.CRC, Bucket: uint32(v.Bucket), Backend: v.Backend,
			BackendId: uint32(v.BackendID), Notes: v.Notes, AgreesWithIntent: v.AgreesWithIntent, OtherRules: uint32(v.OtherRules),
			Intent: &graygwv1.TraceOutcome{Verdict: v.Intent.Verdict, Reason: v.Intent.Reason, Rule: v.Intent.Rule,
				Pool: v.Intent.Pool, Backend: v.Intent.Backend}}
		if v.SplitHash != nil {
			p.HasSplitHash, p.SplitHash = true, uint32(*v.SplitHash)
		}
		for _, r := range v.Rules {
			p.Rules = append(p.Rules, &graygwv1.TraceRule{Name: r.Name, Priority: r.Priority, Action: r.Action, Pool: r.Pool,
				Matched: r.Matched, Decided: r.Decided, Why: r.Why, Mismatch: r.Mismatch})
		}
		if rw := v.Rewrite; rw != nil {
			p.Rewrite = &graygwv1.TraceRewrite{Port: uint32(rw.Port), SrcMac: rw.SrcMAC, DstMac: rw.DstMAC, OuterSrc: rw.OuterSrc,
				OuterDst: rw.OuterDst, Sport: uint32(rw.SPort), Dport: uint32(rw.DPort), Ttl: uint32(rw.TTL)}
		}
		if m := v.Mirror; m != nil {
			p.Mirror = &graygwv1.TraceMirror{Sampled: m.Sampled, Pool: m.Pool, Bucket: uint32(m.Bucket), Backend: m.Backend,
				BackendId: uint32(m.BackendID)}
		}
		out.Vips = append(out.Vips, p)
	}
	return out
}

// GatewayTraceFrom converts a gateway's trace from the API.
func GatewayTraceFrom(g *graygwv1.GatewayTrace) trace.Gateway {
	out := trace.Gateway{Gateway: g.GetGateway(), Error: g.GetError(), IntentVersion: g.GetIntentVersion(),
		EntriesRead: int(g.GetEntriesRead()), InSync: g.GetInSync(), VIPs: []trace.VIPPath{}}
	if d := g.GetDrift(); d != nil {
		out.Drift = &trace.Drift{Missing: d.GetMissing(), MissingCount: int(d.GetMissingCount()), Differ: d.GetDiffer(),
			DifferCount: int(d.GetDifferCount()), Extra: d.GetExtra(), ExtraCount: int(d.GetExtraCount())}
	}
	for _, p := range g.GetVips() {
		v := trace.VIPPath{Path: trace.Path{VIP: p.GetVip(), Address: p.GetAddress(), VIPID: uint16(p.GetVipId()),
			Verdict: p.GetVerdict(), Reason: p.GetReason(), Tenant: p.GetTenant(), TenantID: uint16(p.GetTenantId()),
			Rules: []trace.RuleCheck{}, Rule: p.GetRule(), Pool: p.GetPool(), PoolID: uint16(p.GetPoolId()), HashFields: p.GetHashFields(),
			HashKey: p.GetHashKey(), CRC: p.GetCrc32(), Bucket: uint16(p.GetBucket()), Backend: p.GetBackend(),
			BackendID: uint16(p.GetBackendId()), Notes: p.GetNotes(), OtherRules: int(p.GetOtherRules())},
			AgreesWithIntent: p.GetAgreesWithIntent()}
		if i := p.GetIntent(); i != nil {
			v.Intent = trace.Outcome{Verdict: i.GetVerdict(), Reason: i.GetReason(), Rule: i.GetRule(), Pool: i.GetPool(), Backend: i.GetBackend()}
		}
		if p.GetHasSplitHash() {
			h := uint16(p.GetSplitHash())
			v.SplitHash = &h
		}
		for _, r := range p.GetRules() {
			v.Rules = append(v.Rules, trace.RuleCheck{Name: r.GetName(), Priority: r.GetPriority(), Action: r.GetAction(), Pool: r.GetPool(),
				Matched: r.GetMatched(), Decided: r.GetDecided(), Why: r.GetWhy(), Mismatch: r.GetMismatch()})
		}
		if rw := p.GetRewrite(); rw != nil {
			v.Rewrite = &trace.Rewrite{Port: uint16(rw.GetPort()), SrcMAC: rw.GetSrcMac(), DstMAC: rw.GetDstMac(), OuterSrc: rw.GetOuterSrc(),
				OuterDst: rw.GetOuterDst(), SPort: uint16(rw.GetSport()), DPort: uint16(rw.GetDport()), TTL: uint8(rw.GetTtl())}
		}
		if m := p.GetMirror(); m != nil {
			v.Mirror = &trace.Mirror{Sampled: m.GetSampled(), Pool: m.GetPool(), Bucket: uint16(m.GetBucket()), Backend: m.GetBackend(),
				BackendID: uint16(m.GetBackendId())}
		}
		out.VIPs = append(out.VIPs, v)
	}
	return out
}
