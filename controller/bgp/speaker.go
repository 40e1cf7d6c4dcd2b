package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	apipb "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Reasons the speaker itself gives, beside those of [Decide].
const (
	// ReasonShutdown is logged for paths withdrawn by Stop(ctx, true).
	ReasonShutdown Reason = "shutdown"
	// ReasonNoNeighbor: the decision announces the path, but no neighbor
	// carries its family (an IPv6 VIP and no neighbor with ipv6-unicast), so
	// it is not put in the RIB; it shows as withdrawn with this reason in the
	// status, the metrics and the log.
	ReasonNoNeighbor Reason = "no-neighbor-for-family"
)

// Errors a caller can test with errors.Is.
var (
	// ErrNotStarted is returned by calls that need a started speaker.
	ErrNotStarted = errors.New("bgp: speaker not started")
	// ErrStopped is returned by calls on a stopped speaker.
	ErrStopped = errors.New("bgp: speaker stopped")
)

// Announcer is what the rest of the controller needs from a BGP speaker. It is
// implemented by [*Speaker]; tests of other packages can fake it.
type Announcer interface {
	// Reconcile makes the announced paths equal to d.Announce.
	Reconcile(ctx context.Context, d Decision) error
	// Status reports the sessions and what is and is not announced.
	Status(ctx context.Context) (Status, error)
	// Stop ends every session, first withdrawing every path if withdraw is set.
	Stop(ctx context.Context, withdraw bool) error
}

var _ Announcer = (*Speaker)(nil)

// Speaker is an embedded GoBGP speaker that announces VIPs. Create it with
// [New], start it with [Speaker.Start], then call [Speaker.Reconcile] (or
// [Speaker.Apply]) whenever the inputs of the announce decision change. It is
// safe for concurrent use.
type Speaker struct {
	cfg Config // defaults applied
	log *slog.Logger

	mu        sync.Mutex
	bgp       *server.BgpServer
	started   bool
	stopped   bool
	stopWatch context.CancelFunc
	paths     map[PathKey]*announced         // what GoBGP holds, by (VIP, next hop)
	ids       map[netip.Addr]map[uint32]bool // path identifiers in use per VIP
	withdrawn map[PathKey]*notAnnounced      // what the last decision did not announce

	established chan struct{} // a session came up; wakes guardRestart
}

type announced struct {
	Path
	uuid  []byte // returned by AddPath; DeletePath takes it back
	id    uint32 // path identifier: several next hops of one VIP live side by side
	since time.Time
}

type notAnnounced struct {
	Withdrawal
	since time.Time
}

// Option configures a [Speaker].
type Option func(*Speaker)

// WithLogger sends the speaker's logs, GoBGP's included (with
// component=gobgp), to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Speaker) { s.log = l }
}

// New validates cfg and returns a speaker that is not started yet.
func New(cfg Config, opts ...Option) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Speaker{
		cfg:         cfg.WithDefaults(),
		log:         slog.Default(),
		paths:       map[PathKey]*announced{},
		ids:         map[netip.Addr]map[uint32]bool{},
		withdrawn:   map[PathKey]*notAnnounced{},
		established: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Config returns the speaker's configuration with defaults applied.
func (s *Speaker) Config() Config { return s.cfg }

// Start starts the GoBGP server, installs the global import policy (accept our
// own paths, reject everything a peer sends), announces first.Announce and only
// then adds the neighbors.
//
// The order matters for graceful restart: a restarted speaker sends its whole
// table followed by End-of-RIB as soon as a session comes up, and a peer then
// drops every stale route that was not refreshed. So first must be made from
// the observed state of the gateways, not from a zero state in which nothing is
// connected yet (which would withdraw every VIP).
func (s *Speaker) Start(ctx context.Context, first Decision) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.started {
		return errors.New("bgp: speaker already started")
	}
	bgp := server.NewBgpServer(server.LoggerOption(newGoBGPLogger(s.log)))
	go bgp.Serve()
	defer func() {
		if err != nil {
			bgp.Stop()
		}
	}()
	global := &apipb.Global{
		Asn:        s.cfg.ASN,
		RouterId:   s.cfg.RouterID,
		ListenPort: s.cfg.ListenPort,
	}
	global.ListenAddresses = s.cfg.ListenAddresses()
	if global.ListenAddresses == nil && s.cfg.ListenPort >= 0 {
		s.log.Warn("bgp: accepting sessions on every address; set listenAddress (or every neighbor's localAddress) "+
			"to the peering address", "listenPort", s.cfg.ListenPort)
	}
	if err := bgp.StartBgp(ctx, &apipb.StartBgpRequest{Global: global}); err != nil {
		return fmt.Errorf("bgp: start GoBGP: %w", err)
	}
	if err := installImportPolicy(ctx, bgp); err != nil {
		return err
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	if err := bgp.WatchEvent(watchCtx, &apipb.WatchEventRequest{Peer: &apipb.WatchEventRequest_Peer{}}, s.peerEvent); err != nil {
		cancel()
		return fmt.Errorf("bgp: watch peer events: %w", err)
	}
	s.bgp, s.stopWatch = bgp, cancel
	defer func() {
		if err != nil {
			cancel()
			s.bgp, s.stopWatch = nil, nil
			s.paths = map[PathKey]*announced{}
			s.ids = map[netip.Addr]map[uint32]bool{}
		}
	}()
	if err := s.reconcileLocked(ctx, first); err != nil {
		return err
	}
	for i, n := range s.cfg.Neighbors {
		if err := bgp.AddPeer(ctx, &apipb.AddPeerRequest{Peer: s.peer(n)}); err != nil {
			return fmt.Errorf("bgp: add neighbors[%d] %s: %w", i, n.Address, err)
		}
	}
	s.started = true
	if s.cfg.GracefulRestart.Enabled {
		go s.guardRestart(watchCtx)
	}
	s.log.Info("bgp speaker started", "event", "bgpStarted", "asn", s.cfg.ASN, "routerID", s.cfg.RouterID,
		"listenPort", s.cfg.ListenPort, "neighbors", len(s.cfg.Neighbors), "gracefulRestart", s.cfg.GracefulRestart.Enabled)
	return nil
}

// installImportPolicy makes the gateway learn nothing: the global import policy
// rejects by default. GoBGP applies the global import policy to locally
// originated paths too, so a first statement accepts those.
func installImportPolicy(ctx context.Context, bgp *server.BgpServer) error {
	const name = "graygw-accept-local-only"
	err := bgp.AddPolicy(ctx, &apipb.AddPolicyRequest{Policy: &apipb.Policy{
		Name: name,
		Statements: []*apipb.Statement{{
			Name:       "accept-local",
			Conditions: &apipb.Conditions{RouteType: apipb.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &apipb.Actions{RouteAction: apipb.RouteAction_ACCEPT},
		}},
	}})
	if err != nil {
		return fmt.Errorf("bgp: add import policy: %w", err)
	}
	err = bgp.SetPolicyAssignment(ctx, &apipb.SetPolicyAssignmentRequest{Assignment: &apipb.PolicyAssignment{
		Name:          "global",
		Direction:     apipb.PolicyDirection_IMPORT,
		Policies:      []*apipb.Policy{{Name: name}},
		DefaultAction: apipb.RouteAction_REJECT,
	}})
	if err != nil {
		return fmt.Errorf("bgp: set global import policy: %w", err)
	}
	return nil
}

// guardRestart keeps the Restart State and Forwarding State bits in the OPEN
// of every neighbor's first session after Start, which is what makes a
// graceful-restart helper keep our stale routes until our End-of-RIB instead
// of flushing them as the session comes up.
//
// GoBGP clears those bits (State.LocalRestarting) on every configured peer as
// soon as each peer that is up has sent its End-of-RIB; a peer whose session
// is not up yet counts as done. So with several neighbors the later ones would
// open without the bits, and the peer would drop our routes for the moment
// between the session coming up and our UPDATE. Until every neighbor has been
// established once (or the restart time is over: the peers have dropped our
// routes by then anyway), a neighbor that has lost the bits while it has no
// TCP session is deleted and added again with them. Deleting a peer that is
// not established sends no NOTIFICATION, so the helper's graceful restart is
// not disturbed. A neighbor whose session comes up within a few milliseconds
// of another's End-of-RIB can still slip through with the bits cleared; the
// peer then swaps our stale routes for the fresh ones with a gap of about one
// round trip (docs/bgp.md).
func (s *Speaker) guardRestart(ctx context.Context) {
	pending := map[netip.Addr]Neighbor{}
	for _, n := range s.cfg.Neighbors {
		pending[netip.MustParseAddr(n.Address).Unmap()] = n
	}
	deadline := time.Now().Add(s.cfg.GracefulRestart.RestartTime)
	var fastUntil time.Time
	for len(pending) > 0 && time.Now().Before(deadline) {
		// The bits are cleared right after a session comes up (at the
		// peer's End-of-RIB): look often then, rarely otherwise.
		wait := 100 * time.Millisecond
		if time.Now().Before(fastUntil) {
			wait = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-s.established:
			fastUntil = time.Now().Add(time.Second)
		case <-time.After(wait):
		}
		var redo []Neighbor
		seen := map[netip.Addr]bool{}
		err := s.bgp.ListPeer(ctx, &apipb.ListPeerRequest{}, func(p *apipb.Peer) {
			addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
			if err != nil {
				return
			}
			seen[addr.Unmap()] = true
			n, ok := pending[addr.Unmap()]
			if !ok {
				return
			}
			switch p.GetState().GetSessionState() {
			case apipb.PeerState_ESTABLISHED:
				delete(pending, addr.Unmap())
			case apipb.PeerState_IDLE, apipb.PeerState_CONNECT, apipb.PeerState_ACTIVE, apipb.PeerState_UNKNOWN:
				if !p.GetGracefulRestart().GetLocalRestarting() {
					redo = append(redo, n)
				}
			}
		})
		if err != nil {
			continue
		}
		var missing []Neighbor // deleted by an earlier round whose AddPeer failed
		for addr, n := range pending {
			if !seen[addr] {
				missing = append(missing, n)
			}
		}
		if len(redo)+len(missing) == 0 {
			continue
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		for i, n := range append(redo, missing...) {
			var err error
			if i < len(redo) { // still configured: delete it first
				err = s.bgp.DeletePeer(ctx, &apipb.DeletePeerRequest{Address: n.Address})
			}
			if err == nil {
				err = s.bgp.AddPeer(ctx, &apipb.AddPeerRequest{Peer: s.peer(n)})
			}
			if err != nil {
				s.log.Error("bgp neighbor re-add failed", "event", "bgpRestartGuard", "neighbor", n.Address, "err", err)
				continue
			}
			s.log.Info("bgp neighbor re-added to keep the graceful restart bits in its first OPEN",
				"event", "bgpRestartGuard", "neighbor", n.Address)
		}
		s.mu.Unlock()
	}
}

// peer translates a neighbor to GoBGP's API.
func (s *Speaker) peer(n Neighbor) *apipb.Peer {
	gr := s.cfg.GracefulRestart
	var afis []*apipb.AfiSafi
	for _, f := range n.Families {
		afi := &apipb.AfiSafi{
			Config: &apipb.AfiSafiConfig{Family: apiFamily(f), Enabled: true},
			AddPaths: &apipb.AddPaths{Config: &apipb.AddPathsConfig{
				SendMax: uint32(n.AddPathSendMax),
			}},
		}
		if gr.Enabled {
			// Without it the capability carries no address family and the
			// peer keeps nothing of this one.
			afi.MpGracefulRestart = &apipb.MpGracefulRestart{Config: &apipb.MpGracefulRestartConfig{Enabled: true}}
		}
		afis = append(afis, afi)
	}
	p := &apipb.Peer{
		Conf: &apipb.PeerConf{
			NeighborAddress: n.Address,
			PeerAsn:         n.ASN,
			AuthPassword:    n.Password,
		},
		Transport: &apipb.Transport{
			LocalAddress: n.LocalAddress,
			RemotePort:   uint32(n.Port),
			PassiveMode:  n.Passive,
		},
		Timers: &apipb.Timers{Config: &apipb.TimersConfig{
			ConnectRetry:      uint64(n.ConnectRetry / time.Second),
			HoldTime:          uint64(n.HoldTime / time.Second),
			KeepaliveInterval: uint64(n.HoldTime / time.Second / 3),
		}},
		AfiSafis: afis,
	}
	if n.MultihopTTL > 0 {
		p.EbgpMultihop = &apipb.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.MultihopTTL)}
	}
	if n.TTLSecurity > 0 {
		p.TtlSecurity = &apipb.TtlSecurity{Enabled: true, TtlMin: 256 - uint32(n.TTLSecurity)}
	}
	if gr.Enabled {
		// RestartTime goes into our OPEN: how long the peer keeps our routes
		// after the session drops. LocalRestarting sets the Restart State bit
		// and the per-family Forwarding State bit: a peer still holding our
		// routes from before a crash keeps them (stale) until our End-of-RIB
		// instead of flushing them when the new session comes up. A speaker
		// cannot tell a crash from a cold start, and on a cold start the bits
		// cost nothing: the peer has nothing stale. NotificationEnabled
		// advertises RFC 8538 so that, with a peer that supports it, a session
		// reset by a NOTIFICATION other than a Hard Reset keeps the routes too.
		p.GracefulRestart = &apipb.GracefulRestart{
			Enabled:             true,
			RestartTime:         uint32(gr.RestartTime / time.Second),
			DeferralTime:        uint32(gr.DeferralTime / time.Second),
			NotificationEnabled: true,
			LocalRestarting:     true,
		}
	}
	return p
}

var (
	ipv4Unicast = &apipb.Family{Afi: apipb.Family_AFI_IP, Safi: apipb.Family_SAFI_UNICAST}
	ipv6Unicast = &apipb.Family{Afi: apipb.Family_AFI_IP6, Safi: apipb.Family_SAFI_UNICAST}
)

// apiFamily is GoBGP's name of a validated family.
func apiFamily(f Family) *apipb.Family {
	if f == FamilyIPv6Unicast {
		return ipv6Unicast
	}
	return ipv4Unicast
}

// familyOf is the family a VIP is announced in.
func familyOf(vip netip.Addr) Family {
	if vip.Is6() {
		return FamilyIPv6Unicast
	}
	return FamilyIPv4Unicast
}

// Apply decides from in and reconciles to the decision. Bad input changes
// nothing.
func (s *Speaker) Apply(ctx context.Context, in Input) (Decision, error) {
	d, err := Decide(in)
	if err != nil {
		return Decision{}, err
	}
	return d, s.Reconcile(ctx, d)
}

// Reconcile makes the paths GoBGP announces equal to d.Announce: new paths and
// changed attributes first, withdrawals after (make before break). A path
// that fails stays in its old state and is retried by the next Reconcile; the
// error joins every failure.
func (s *Speaker) Reconcile(ctx context.Context, d Decision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return ErrStopped
	case !s.started:
		return ErrNotStarted
	}
	return s.reconcileLocked(ctx, d)
}

func (s *Speaker) reconcileLocked(ctx context.Context, d Decision) error {
	for _, p := range d.Announce {
		for _, c := range p.Attributes.Communities {
			if _, err := ParseCommunity(c); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalidInput, p.PathKey, err)
			}
		}
	}
	now := time.Now()
	var errs []error
	want := make(map[PathKey]bool, len(d.Announce))
	var unsent []Withdrawal // announced by the decision, but to no neighbor
	for _, p := range d.Announce {
		if f := familyOf(p.VIP); !s.cfg.carries(f) {
			unsent = append(unsent, Withdrawal{PathKey: p.PathKey, Gateway: p.Gateway, Reasons: []Reason{ReasonNoNeighbor}})
			continue
		}
		want[p.PathKey] = true
		cur := s.paths[p.PathKey]
		if cur != nil && cur.Gateway == p.Gateway && cur.Attributes.equal(p.Attributes) {
			continue
		}
		id := uint32(0)
		if cur != nil {
			id = cur.id // same identifier: GoBGP replaces the path in place
		} else {
			id = s.allocID(p.VIP)
		}
		uuid, err := s.addPath(ctx, p, id)
		if err != nil {
			if cur == nil {
				s.freeID(p.VIP, id)
			}
			errs = append(errs, fmt.Errorf("bgp: announce %s: %w", p.PathKey, err))
			continue
		}
		if cur == nil {
			s.paths[p.PathKey] = &announced{Path: p, uuid: uuid, id: id, since: now}
			s.log.Info("vip announced", "event", "vipAnnounced", "vip", p.VIP, "nexthop", p.NextHop, "gateway", p.Gateway)
		} else {
			cur.Path, cur.uuid = p, uuid
			s.log.Info("vip attributes changed", "event", "vipUpdated", "vip", p.VIP, "nexthop", p.NextHop, "gateway", p.Gateway)
		}
		delete(s.withdrawn, p.PathKey)
	}

	withdraw := d.Withdraw
	if len(unsent) > 0 {
		withdraw = append(slices.Clone(d.Withdraw), unsent...)
		slices.SortFunc(withdraw, func(a, b Withdrawal) int { return comparePathKey(a.PathKey, b.PathKey) })
	}
	why := make(map[PathKey]Withdrawal, len(withdraw))
	for _, w := range withdraw {
		why[w.PathKey] = w
	}
	justWithdrawn := map[PathKey]bool{}
	for _, key := range sortedKeys(s.paths) {
		if want[key] {
			continue
		}
		cur := s.paths[key]
		w, ok := why[key]
		if !ok {
			w = Withdrawal{PathKey: key, Gateway: cur.Gateway, Reasons: []Reason{ReasonRemoved}}
		}
		if err := s.deletePath(ctx, cur); err != nil {
			errs = append(errs, fmt.Errorf("bgp: withdraw %s: %w", key, err))
			continue
		}
		delete(s.paths, key)
		s.freeID(key.VIP, cur.id)
		justWithdrawn[key] = true
		s.log.Info("vip withdrawn", "event", "vipWithdrawn", "vip", key.VIP, "nexthop", key.NextHop,
			"gateway", w.Gateway, "reason", joinReasons(w.Reasons))
	}

	// What is not announced, and why, for Status; a path keeps its "since"
	// while its reasons stay the same.
	next := make(map[PathKey]*notAnnounced, len(withdraw))
	for _, w := range withdraw {
		if _, held := s.paths[w.PathKey]; held {
			continue // its withdrawal failed above; Status shows it as announced
		}
		prev := s.withdrawn[w.PathKey]
		if prev != nil && slices.Equal(prev.Reasons, w.Reasons) {
			next[w.PathKey] = prev
			continue
		}
		if prev == nil && !justWithdrawn[w.PathKey] {
			// Never announced (or announced by an earlier run of the
			// process): say why once.
			s.log.Info("vip not announced", "event", "vipNotAnnounced", "vip", w.VIP, "nexthop", w.NextHop,
				"gateway", w.Gateway, "reason", joinReasons(w.Reasons))
		}
		next[w.PathKey] = &notAnnounced{Withdrawal: w, since: now}
	}
	s.withdrawn = next
	return errors.Join(errs...)
}

func (s *Speaker) addPath(ctx context.Context, p Path, id uint32) ([]byte, error) {
	path, err := apiPath(p, id)
	if err != nil {
		return nil, err
	}
	resp, err := s.bgp.AddPath(ctx, &apipb.AddPathRequest{TableType: apipb.TableType_GLOBAL, Path: path})
	if err != nil {
		return nil, err
	}
	return resp.Uuid, nil
}

func (s *Speaker) deletePath(ctx context.Context, a *announced) error {
	return s.bgp.DeletePath(ctx, &apipb.DeletePathRequest{TableType: apipb.TableType_GLOBAL,
		Family: apiFamily(familyOf(a.VIP)), Uuid: a.uuid})
}

// apiPath builds the GoBGP path of p. id is the path identifier: GoBGP keys
// locally originated paths by (identifier, prefix), so each next hop of a VIP
// needs its own or the second AddPath would replace the first.
func apiPath(p Path, id uint32) (*apipb.Path, error) {
	// One address: /32, or /128 in the IPv6 unicast family, where GoBGP
	// carries the IPv6 next hop in MP_REACH_NLRI (RFC 4760).
	nlri, err := anypb.New(&apipb.IPAddressPrefix{PrefixLen: uint32(p.VIP.BitLen()), Prefix: p.VIP.String()})
	if err != nil {
		return nil, err
	}
	attrs := []proto.Message{
		&apipb.OriginAttribute{Origin: 0}, // IGP
		&apipb.NextHopAttribute{NextHop: p.NextHop.String()},
	}
	if len(p.Attributes.Communities) > 0 {
		cs := make([]uint32, len(p.Attributes.Communities))
		for i, c := range p.Attributes.Communities {
			v, err := ParseCommunity(c)
			if err != nil {
				return nil, err
			}
			cs[i] = uint32(v)
		}
		attrs = append(attrs, &apipb.CommunitiesAttribute{Communities: cs})
	}
	if p.Attributes.MED != nil {
		attrs = append(attrs, &apipb.MultiExitDiscAttribute{Med: *p.Attributes.MED})
	}
	if p.Attributes.LocalPref != nil {
		attrs = append(attrs, &apipb.LocalPrefAttribute{LocalPref: *p.Attributes.LocalPref})
	}
	pattrs := make([]*anypb.Any, len(attrs))
	for i, a := range attrs {
		x, err := anypb.New(a)
		if err != nil {
			return nil, err
		}
		pattrs[i] = x
	}
	return &apipb.Path{Family: apiFamily(familyOf(p.VIP)), Nlri: nlri, Pattrs: pattrs, Identifier: id}, nil
}

func (s *Speaker) allocID(vip netip.Addr) uint32 {
	used := s.ids[vip]
	if used == nil {
		used = map[uint32]bool{}
		s.ids[vip] = used
	}
	for id := uint32(1); ; id++ {
		if !used[id] {
			used[id] = true
			return id
		}
	}
}

func (s *Speaker) freeID(vip netip.Addr, id uint32) {
	delete(s.ids[vip], id)
	if len(s.ids[vip]) == 0 {
		delete(s.ids, vip)
	}
}

// Stop ends the speaker. With withdraw set (an intentional shutdown or a
// drain) it first withdraws every path and waits, within ctx, until the
// established peers have been sent the withdrawals. Without it the paths are
// left in place, but GoBGP still closes every session with a Cease
// NOTIFICATION, after which a peer that does not implement RFC 8538 (BIRD 2.0
// does not) flushes our routes at once, graceful restart or not. To restart
// the controller without touching the routes at the peers, exit the process
// without calling Stop: the kernel closes the sessions without a NOTIFICATION
// and the peers keep the routes for the restart time (see docs/bgp.md).
func (s *Speaker) Stop(ctx context.Context, withdraw bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	if !s.started {
		return nil
	}
	var errs []error
	if withdraw {
		for _, key := range sortedKeys(s.paths) {
			cur := s.paths[key]
			if err := s.deletePath(ctx, cur); err != nil {
				errs = append(errs, fmt.Errorf("bgp: withdraw %s: %w", key, err))
				continue
			}
			delete(s.paths, key)
			s.log.Info("vip withdrawn", "event", "vipWithdrawn", "vip", key.VIP, "nexthop", key.NextHop,
				"gateway", cur.Gateway, "reason", ReasonShutdown)
		}
		if err := s.waitWithdrawn(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.stopWatch()
	s.bgp.Stop()
	s.log.Info("bgp speaker stopped", "event", "bgpStopped", "withdrawn", withdraw)
	return errors.Join(errs...)
}

// waitWithdrawn waits until no established peer has a path advertised or a
// message queued, so that the NOTIFICATION Stop sends next does not overtake
// the withdrawals. Without a deadline in ctx it waits at most 2s.
func (s *Speaker) waitWithdrawn(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	for {
		pending := 0
		err := s.bgp.ListPeer(ctx, &apipb.ListPeerRequest{EnableAdvertised: true}, func(p *apipb.Peer) {
			if p.GetState().GetSessionState() != apipb.PeerState_ESTABLISHED {
				return
			}
			pending += int(p.GetState().GetOutQ()) + int(s.advertised(p))
		})
		if err != nil {
			return fmt.Errorf("bgp: wait for withdrawals: %w", err)
		}
		if pending == 0 {
			// The queue is empty once the fsm has taken the UPDATE; give its
			// writer a moment to put it on the wire.
			time.Sleep(50 * time.Millisecond)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bgp: wait for withdrawals (%d pending): %w", pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Speaker) peerEvent(r *apipb.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.GetType() != apipb.WatchEventResponse_PeerEvent_STATE {
		return
	}
	p := pe.GetPeer()
	if p.GetState().GetSessionState() == apipb.PeerState_ESTABLISHED {
		select {
		case s.established <- struct{}{}:
		default:
		}
	}
	s.log.Info("bgp session state", "event", "bgpSession", "neighbor", p.GetConf().GetNeighborAddress(),
		"asn", p.GetConf().GetPeerAsn(), "state", sessionState(p.GetState().GetSessionState()))
}

func sortedKeys[V any](m map[PathKey]V) []PathKey {
	keys := make([]PathKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePathKey)
	return keys
}

func joinReasons(rs []Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
