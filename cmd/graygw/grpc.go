package main

// The gRPC client of the controller's API (api/graygw/v1).

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// errUnsupported: the controller's API cannot express this (a cutover by
// tenant).
var errUnsupported = errors.New("the controller API (api/graygw/v1) has no call for this")

// dialAPI connects to the controller: the unix socket without TLS (the server
// authenticates the peer's uid), or tcp with mutual TLS.
func dialAPI(o dialOptions) (Client, error) {
	conn, err := connect(o, true)
	if err != nil {
		return nil, err
	}
	return &grpcClient{conn: conn, c: graygwv1.NewControllerClient(conn), addr: o.Address}, nil
}

// connect opens the connection to o.Address; with follow, a call a standby
// replica refuses naming the leader (docs/ha.md) is sent to the leader once.
func connect(o dialOptions, follow bool) (*grpc.ClientConn, error) {
	network, addr, err := o.target()
	if err != nil {
		return nil, usageErr(err)
	}
	var target string
	var creds credentials.TransportCredentials
	if network == "unix" {
		if _, err := os.Stat(addr); err != nil {
			return nil, fmt.Errorf("controller socket %s: %w (is graygw-controller running? --controller picks another address)", addr, err)
		}
		target, creds = "unix://"+addr, insecure.NewCredentials()
	} else {
		cfg, err := clientTLS(o)
		if err != nil {
			return nil, err
		}
		target, creds = addr, credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if follow {
		opts = append(opts, grpc.WithUnaryInterceptor(followLeader(o)))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", o.Address, err)
	}
	return conn, nil
}

// leaderTrailer is api/service.LeaderTrailer (not imported: the CLI does not
// link the controller).
const leaderTrailer = "graygw-leader"

// followLeader retries, once, at the leader's address a call that a standby
// controller replica refused with that address in its leaderTrailer trailer. The same credentials are used (the replicas share them).
func followLeader(o dialOptions) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var md metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&md))...)
		leaders := md.Get(leaderTrailer)
		if status.Code(err) != codes.Unavailable || len(leaders) == 0 || leaders[0] == o.Address {
			return err
		}
		lo := o
		lo.Address = leaders[0]
		conn, cerr := connect(lo, false)
		if cerr != nil {
			return fmt.Errorf("%w (following the leader at %s: %v)", err, leaders[0], cerr)
		}
		defer conn.Close()
		return conn.Invoke(ctx, method, req, reply, opts...)
	}
}

func clientTLS(o dialOptions) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(o.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", o.TLSCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

type grpcClient struct {
	conn *grpc.ClientConn
	c    graygwv1.ControllerClient
	addr string
}

func (g *grpcClient) Close() error { return g.conn.Close() }

// callErr turns a gRPC error into one that says what to do, wrapping the
// sentinel that picks the exit code.
func (g *grpcClient) callErr(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", errRefused, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("controller %s unavailable (not running, draining, or its store without a quorum: retry): %s", g.addr, st.Message())
	case codes.Aborted:
		return fmt.Errorf("%s (another change got in first: run the command again)", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("controller %s did not answer in time (--timeout): %s", g.addr, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("controller %s cannot do this: %s", g.addr, st.Message())
	case codes.NotFound:
		return fmt.Errorf("controller %s: %s", g.addr, st.Message())
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("controller %s refused this client (%s): check --tls-cert/--tls-key, or the socket's permissions", g.addr, st.Message())
	}
	return fmt.Errorf("controller %s: %s: %s", g.addr, st.Code(), st.Message())
}

func changeOptions(o ChangeOpts) *graygwv1.ChangeOptions {
	co := &graygwv1.ChangeOptions{Actor: o.Actor, DryRun: o.DryRun, Wait: o.Wait}
	if o.WaitTimeout > 0 {
		co.WaitTimeout = durationpb.New(o.WaitTimeout)
	}
	return co
}

// problemsErr is the error of a refused change: every problem, by path.
func problemsErr(ps []*graygwv1.Problem) error {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n  ")
		if p.GetPath() != "" {
			b.WriteString(p.GetPath() + ": ")
		}
		b.WriteString(p.GetMessage())
		if p.GetClass() != "" {
			b.WriteString(" [" + p.GetClass() + "]")
		}
	}
	return fmt.Errorf("%w:%s", errRefused, b.String())
}

func changeSet(r *graygwv1.ChangeResult, dry bool) (*ChangeSet, error) {
	if len(r.GetProblems()) > 0 {
		return nil, problemsErr(r.GetProblems())
	}
	return &ChangeSet{DryRun: dry, Applied: r.GetApplied(), Unchanged: r.GetUnchanged(), Version: r.GetVersion(),
		Summary: r.GetSummary(), Plans: plans(r.GetPlans()), WaitError: r.GetWaitError()}, nil
}

func plans(ps []*graygwv1.GatewayPlan) []GatewayPlan {
	out := []GatewayPlan{}
	for _, p := range ps {
		gp := GatewayPlan{Gateway: p.GetGateway(), Reachable: p.GetReachable(), Note: p.GetNote(),
			Inserts: int(p.GetInserts()), Modifies: int(p.GetModifies()), Deletes: int(p.GetDeletes()),
			Foreign: int(p.GetForeign()), Truncated: p.GetTruncated(), Groups: []ChangeGroup{}}
		for _, g := range p.GetGroups() {
			gp.Groups = append(gp.Groups, ChangeGroup{Op: strings.ToLower(g.GetOp()), Table: g.GetTable(), Origin: g.GetOrigin(), Count: int(g.GetCount())})
		}
		for _, c := range p.GetChanges() {
			gp.Changes = append(gp.Changes, EntryChange{Op: strings.ToLower(c.GetOp()), Table: shortTable(c.GetTable()), Origin: c.GetOrigin(), Entry: c.GetEntry()})
		}
		out = append(out, gp)
	}
	return out
}

func (g *grpcClient) Apply(ctx context.Context, doc []byte, o ChangeOpts) (*ChangeSet, error) {
	resp, err := g.c.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: string(doc), Options: changeOptions(o)})
	if err != nil {
		return nil, g.callErr(err)
	}
	return changeSet(resp.GetResult(), o.DryRun)
}

func (g *grpcClient) Diff(ctx context.Context, doc []byte) (*ChangeSet, error) {
	resp, err := g.c.Diff(ctx, &graygwv1.DiffRequest{IntentYaml: string(doc)})
	if err != nil {
		return nil, g.callErr(err)
	}
	if len(resp.GetProblems()) > 0 {
		return nil, problemsErr(resp.GetProblems())
	}
	return &ChangeSet{DryRun: true, Version: resp.GetBaseVersion(), Summary: resp.GetSummary(), Plans: plans(resp.GetPlans())}, nil
}

func (g *grpcClient) Get(ctx context.Context, version uint64) (*IntentDoc, error) {
	resp, err := g.c.Get(ctx, &graygwv1.GetRequest{Version: version})
	if err != nil {
		return nil, g.callErr(err)
	}
	return &IntentDoc{Version: resp.GetVersion(), CurrentVersion: resp.GetCurrentVersion(), Actor: resp.GetActor(),
		Time: resp.GetTime().AsTime(), YAML: resp.GetIntentYaml()}, nil
}

// cutoverRequest maps a scope onto the API's scopes (VNI, VM, prefix, flow,
// percent of a VNI).
func cutoverRequest(sc rollout.Scope, pool string) (*graygwv1.CutoverRequest, error) {
	m := sc.Match
	req := &graygwv1.CutoverRequest{Vip: m.VIP, Pool: pool, Rule: sc.Name}
	if m.Tenant != "" {
		return nil, fmt.Errorf("%w: a cutover by tenant", errUnsupported)
	}
	var vni *uint32
	if m.VNI != nil {
		v := uint32(*m.VNI)
		vni = &v
	}
	isAddr := func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Is4() }
	asPrefix := func(s string) string {
		if isAddr(s) {
			return s + "/32"
		}
		return s
	}
	flow := m.Proto != "" || m.SPort != nil || m.DPort != nil
	switch {
	case sc.Percent > 0 && sc.Percent < 100:
		if vni == nil || m.Src != "" || m.Dst != "" || flow {
			return nil, usagef("--percent splits the VMs of one VNI: give --vni alone")
		}
		req.Scope = &graygwv1.CutoverRequest_Percent{Percent: &graygwv1.PercentScope{Vni: *vni, Percent: sc.Percent}}
	case flow:
		if !isAddr(m.Src) || !isAddr(m.Dst) {
			return nil, usagef("the controller takes a flow with both addresses: PROTO/SRC[:SPORT]/DST[:DPORT] (a port may be * or left out; use --prefix for address ranges)")
		}
		f := &graygwv1.FlowScope{Vni: vni, Src: m.Src, Dst: m.Dst, Proto: m.Proto}
		if m.SPort != nil {
			f.Sport = uint32(*m.SPort)
		}
		if m.DPort != nil {
			f.Dport = uint32(*m.DPort)
		}
		req.Scope = &graygwv1.CutoverRequest_Flow{Flow: f}
	case vni != nil && m.Src != "" && isAddr(m.Src) && m.Dst == "":
		req.Scope = &graygwv1.CutoverRequest_Vm{Vm: &graygwv1.VMScope{Vni: *vni, Src: m.Src}}
	case m.Src != "" || m.Dst != "":
		p := &graygwv1.PrefixScope{Vni: vni}
		if m.Src != "" {
			p.Src = asPrefix(m.Src)
		}
		if m.Dst != "" {
			p.Dst = asPrefix(m.Dst)
		}
		req.Scope = &graygwv1.CutoverRequest_Prefix{Prefix: p}
	case vni != nil:
		req.Scope = &graygwv1.CutoverRequest_Vni{Vni: &graygwv1.VNIScope{Vni: *vni}}
	default:
		return nil, usagef("nothing selected")
	}
	return req, nil
}

func (g *grpcClient) Cutover(ctx context.Context, sc rollout.Scope, pool string, o ChangeOpts) (*ChangeSet, error) {
	req, err := cutoverRequest(sc, pool)
	if err != nil {
		return nil, err
	}
	req.Options = changeOptions(o)
	resp, err := g.c.Cutover(ctx, req)
	if err != nil {
		return nil, g.callErr(err)
	}
	cs, err := changeSet(resp.GetResult(), o.DryRun)
	if err != nil {
		return nil, err
	}
	cs.Rules = []string{resp.GetRule()}
	return cs, nil
}

func (g *grpcClient) Mirror(ctx context.Context, sc rollout.Scope, pool string, rate uint32, o ChangeOpts) (*ChangeSet, error) {
	req, err := cutoverRequest(sc, "")
	if err != nil {
		return nil, err
	}
	req.Mirror = &graygwv1.MirrorSpec{Pool: pool, Rate: rate}
	req.Options = changeOptions(o)
	resp, err := g.c.Cutover(ctx, req)
	if err != nil {
		return nil, g.callErr(err)
	}
	cs, err := changeSet(resp.GetResult(), o.DryRun)
	if err != nil {
		return nil, err
	}
	cs.Rules = []string{resp.GetRule()}
	return cs, nil
}

func (g *grpcClient) Rollback(ctx context.Context, r RollbackRequest, o ChangeOpts) (*ChangeSet, error) {
	req := &graygwv1.RollbackRequest{Options: changeOptions(o)}
	switch {
	case r.Step:
		req.Mode = graygwv1.RollbackRequest_STEP
	case r.All:
		req.Mode = graygwv1.RollbackRequest_ALL
	case r.Mirrors:
		req.Mode = graygwv1.RollbackRequest_MIRRORS
	default:
		req.Mode, req.Rule = graygwv1.RollbackRequest_RULE, r.Rule
	}
	resp, err := g.c.Rollback(ctx, req)
	if err != nil {
		return nil, g.callErr(err)
	}
	cs, err := changeSet(resp.GetResult(), o.DryRun)
	if err != nil {
		return nil, err
	}
	cs.Rules = resp.GetRemovedRules()
	return cs, nil
}

var grayStates = map[graygwv1.GrayState]string{graygwv1.GrayState_BASE: "base", graygwv1.GrayState_PARTLY_GRAY: "partly-gray", graygwv1.GrayState_FULLY_GRAY: "fully-gray"}

func (g *grpcClient) Status(ctx context.Context) (*Status, error) {
	resp, err := g.c.Status(ctx, &graygwv1.StatusRequest{})
	if err != nil {
		return nil, g.callErr(err)
	}
	st := &Status{IntentVersion: resp.GetVersion(), Draining: resp.GetDraining(), Gateways: []GatewayStatus{}, VNIs: []VNIStatus{}}
	for _, r := range resp.GetReplicas() {
		st.Replicas = append(st.Replicas, Replica{ID: r.GetId(), Address: r.GetAddress(), Leader: r.GetLeader(), Term: r.GetTerm()})
	}
	for _, gw := range resp.GetGateways() {
		gs := GatewayStatus{Name: gw.GetName(), Address: gw.GetAddress(), Connected: gw.GetConnected(), Primary: gw.GetPrimary(),
			Version: gw.GetVersion(), InSync: gw.GetInSync(), Entries: gw.GetEntries(), LastResult: gw.GetLastResult(), LastError: gw.GetLastError()}
		if gw.GetLastReconcile() != nil {
			gs.LastReconcile = gw.GetLastReconcile().AsTime()
		}
		st.Gateways = append(st.Gateways, gs)
	}
	for _, v := range resp.GetVnis() {
		vs := VNIStatus{VNI: v.GetVni(), Tenant: v.GetTenant(), State: grayStates[v.GetState()]}
		seen := map[string]bool{}
		for _, vip := range v.GetVips() {
			vs.VIPs = append(vs.VIPs, VIPState{VIP: vip.GetVip(), State: grayStates[vip.GetState()]})
			for _, vm := range vip.GetGrayVms() {
				if !seen["vm "+vm] {
					seen["vm "+vm] = true
					vs.GrayVMs = append(vs.GrayVMs, vm)
				}
			}
			for _, sel := range vip.GetSelectors() {
				if !seen["rule "+sel.GetRule()] {
					seen["rule "+sel.GetRule()] = true
					vs.Rules = append(vs.Rules, sel.GetRule())
					if mp := sel.GetMirrorPool(); mp != "" {
						m := sel.GetRule() + "->" + mp
						if r := sel.GetMirrorRate(); r > 1 {
							m += fmt.Sprintf(" 1/%d", r)
						}
						vs.Mirrors = append(vs.Mirrors, m)
					}
				}
			}
		}
		st.VNIs = append(st.VNIs, vs)
	}
	return st, nil
}

func (g *grpcClient) Counters(ctx context.Context, gateway string) (*Counters, error) {
	resp, err := g.c.Counters(ctx, &graygwv1.CountersRequest{Gateway: gateway})
	if err != nil {
		return nil, g.callErr(err)
	}
	cs := &Counters{Rows: []CounterRow{}}
	for _, gc := range resp.GetGateways() {
		if gc.GetError() != "" {
			cs.Errors = append(cs.Errors, gc.GetGateway()+": "+gc.GetError())
			continue
		}
		for _, k := range []struct {
			kind string
			ns   []*graygwv1.NamedCounter
		}{{"rule", gc.GetRules()}, {"vip", gc.GetVips()}, {"pool", gc.GetPools()}, {"backend", gc.GetBackends()}, {"drop", gc.GetDrops()},
			{"mirror", gc.GetMirrors()}, {"mirror-backend", gc.GetMirrorBackends()}} {
			for _, n := range k.ns {
				cs.Rows = append(cs.Rows, CounterRow{Gateway: gc.GetGateway(), Kind: k.kind, Name: n.GetName(), Packets: n.GetPackets(), Bytes: n.GetBytes()})
			}
		}
		if f := gc.GetForeign(); f != nil && (f.GetPackets() != 0 || f.GetBytes() != 0) {
			cs.Rows = append(cs.Rows, CounterRow{Gateway: gc.GetGateway(), Kind: "foreign", Name: or(f.GetName(), "foreign"), Packets: f.GetPackets(), Bytes: f.GetBytes()})
		}
	}
	return cs, nil
}

func (g *grpcClient) History(ctx context.Context, limit int) ([]Event, error) {
	resp, err := g.c.History(ctx, &graygwv1.HistoryRequest{Limit: uint32(limit)})
	if err != nil {
		return nil, g.callErr(err)
	}
	evs := []Event{}
	for _, e := range resp.GetEvents() {
		evs = append(evs, Event{Seq: e.GetSeq(), Time: e.GetTime().AsTime(), Actor: e.GetActor(), Operation: e.GetOperation(),
			Summary: e.GetSummary(), Before: e.GetBefore(), After: e.GetAfter(), Undoes: e.GetUndoes()})
	}
	return evs, nil
}

func (g *grpcClient) BGP(ctx context.Context) (*BGPStatus, error) {
	resp, err := g.c.BGPStatus(ctx, &graygwv1.BGPStatusRequest{})
	if err != nil {
		return nil, g.callErr(err)
	}
	return bgpStatus(resp), nil
}

func bgpStatus(r *graygwv1.BGPStatusResponse) *BGPStatus {
	st := &BGPStatus{ASN: r.GetAsn(), RouterID: r.GetRouterId(), HealthCheck: r.GetHealthCheck(), Error: r.GetError(),
		Peers: []BGPPeer{}, Routes: []BGPRoute{}}
	for _, n := range r.GetNeighbors() {
		p := BGPPeer{Address: n.GetAddress(), ASN: n.GetAsn(), State: n.GetState(), Received: int(n.GetReceived()),
			Advertised: int(n.GetAdvertised()), GracefulRestart: n.GetGracefulRestart()}
		if n.GetUp() {
			p.Uptime = n.GetUptime().AsDuration().String()
		}
		st.Peers = append(st.Peers, p)
	}
	for _, gw := range r.GetGateways() {
		bg := BGPGateway{Name: gw.GetName(), NextHop: gw.GetNextHop(), Connected: gw.GetP4RuntimeConnected(), Healthy: gw.GetHealthy(),
			Drained: gw.GetDrained(), DrainedBy: gw.GetDrainedBy(), DrainReason: gw.GetDrainReason(), Detail: gw.GetDetail()}
		if gw.GetDrainedAt() != nil {
			bg.DrainedAt = gw.GetDrainedAt().AsTime()
		}
		st.Gateways = append(st.Gateways, bg)
	}
	route := func(p *graygwv1.BGPPath, announced bool) BGPRoute {
		rt := BGPRoute{VIP: p.GetVipName(), Prefix: p.GetVip() + "/32", NextHop: p.GetNextHop(), Gateway: p.GetGateway(),
			Announced: announced, Reason: strings.Join(p.GetReasons(), ","), Detail: p.GetDetail(), Communities: p.GetCommunities(),
			MED: p.Med, LocalPref: p.LocalPref}
		if p.GetSince() != nil {
			rt.Since = p.GetSince().AsTime()
		}
		return rt
	}
	for _, p := range r.GetAnnounced() {
		st.Routes = append(st.Routes, route(p, true))
	}
	for _, p := range r.GetWithdrawn() {
		st.Routes = append(st.Routes, route(p, false))
	}
	slices.SortStableFunc(st.Routes, func(a, b BGPRoute) int {
		return cmp.Or(cmp.Compare(a.Prefix, b.Prefix), cmp.Compare(a.NextHop, b.NextHop))
	})
	return st
}

func (g *grpcClient) Drain(ctx context.Context, gateway, reason, actor string) (*DrainResult, error) {
	resp, err := g.c.DrainGateway(ctx, &graygwv1.DrainGatewayRequest{Gateway: gateway, Reason: reason, Actor: actor})
	if err != nil {
		return nil, g.callErr(err)
	}
	return &DrainResult{Gateway: gateway, Drained: true, Changed: resp.GetChanged(), BGP: bgpStatus(resp.GetBgp())}, nil
}

func (g *grpcClient) Undrain(ctx context.Context, gateway, actor string) (*DrainResult, error) {
	resp, err := g.c.UndrainGateway(ctx, &graygwv1.UndrainGatewayRequest{Gateway: gateway, Actor: actor})
	if err != nil {
		return nil, g.callErr(err)
	}
	return &DrainResult{Gateway: gateway, Drained: false, Changed: resp.GetChanged(), BGP: bgpStatus(resp.GetBgp())}, nil
}

// rolloutResult turns a rollout answer into a progress, or the error of a
// refused start (exit 3) or a failed precheck (exit 4).
func rolloutResult(resp *graygwv1.RolloutResponse) (*rollout.Progress, error) {
	if len(resp.GetProblems()) > 0 {
		return nil, problemsErr(resp.GetProblems())
	}
	if resp.GetPrecheckFailed() != "" {
		return nil, &precheckError{msg: resp.GetPrecheckFailed(), results: convert.ProbeResultsFrom(resp.GetPrecheck())}
	}
	if resp.GetProgress() == nil {
		return nil, errors.New("the controller answered without a progress")
	}
	return convert.ProgressFrom(resp.GetProgress())
}

func (g *grpcClient) RolloutStart(ctx context.Context, plan []byte, dry bool, actor string) (*rollout.Progress, error) {
	resp, err := g.c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: string(plan), DryRun: dry, Actor: actor})
	if err != nil {
		return nil, g.callErr(err)
	}
	return rolloutResult(resp)
}

func (g *grpcClient) RolloutStatus(ctx context.Context) (*rollout.Progress, error) {
	resp, err := g.c.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
	if err != nil {
		return nil, g.callErr(err)
	}
	return rolloutResult(resp)
}

func (g *grpcClient) rolloutAct(ctx context.Context, f func(context.Context, *graygwv1.RolloutActionRequest, ...grpc.CallOption) (*graygwv1.RolloutResponse, error)) (*rollout.Progress, error) {
	resp, err := f(ctx, &graygwv1.RolloutActionRequest{Actor: os.Getenv("USER")})
	if err != nil {
		return nil, g.callErr(err)
	}
	return rolloutResult(resp)
}

func (g *grpcClient) RolloutPause(ctx context.Context) (*rollout.Progress, error) {
	return g.rolloutAct(ctx, g.c.RolloutPause)
}

func (g *grpcClient) RolloutResume(ctx context.Context) (*rollout.Progress, error) {
	return g.rolloutAct(ctx, g.c.RolloutResume)
}

func (g *grpcClient) RolloutAbort(ctx context.Context) (*rollout.Progress, error) {
	return g.rolloutAct(ctx, g.c.RolloutAbort)
}

func (g *grpcClient) RolloutWatch(ctx context.Context, fn func(*rollout.Progress) error) error {
	s, err := g.c.RolloutWatch(ctx, &graygwv1.RolloutWatchRequest{})
	if err != nil {
		return g.callErr(err)
	}
	for {
		pp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return g.callErr(err)
		}
		p, err := convert.ProgressFrom(pp)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
}

func (g *grpcClient) Probe(ctx context.Context, vip string, targets []probe.Target, opts probe.Options) ([]probe.Result, error) {
	req := &graygwv1.ProbeRequest{Vip: vip, Options: convert.ProbeOptions(opts)}
	for _, t := range targets {
		req.Targets = append(req.Targets, convert.ProbeTarget(t))
	}
	resp, err := g.c.Probe(ctx, req)
	if err != nil {
		return nil, g.callErr(err)
	}
	return convert.ProbeResultsFrom(resp.GetResults()), nil
}

func (g *grpcClient) ProbeServer(ctx context.Context, r ServerProbe) ([]probe.Result, error) {
	req := &graygwv1.ProbeRequest{Vip: r.VIP, PlanYaml: string(r.Plan), Vni: r.VNI, ExpectCluster: string(r.Expect),
		Options: convert.ProbeOptions(r.Options)}
	for _, sc := range r.Inventory {
		is := &graygwv1.InventoryScope{Vni: sc.VNI}
		if sc.VM.IsValid() {
			is.Vm = sc.VM.String()
		}
		req.Inventory = append(req.Inventory, is)
	}
	resp, err := g.c.Probe(ctx, req)
	if err != nil {
		return nil, g.callErr(err)
	}
	return convert.ProbeResultsFrom(resp.GetResults()), nil
}
