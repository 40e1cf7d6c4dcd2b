package bgp

import (
	"context"
	"fmt"
	"strings"
	"time"

	apipb "github.com/osrg/gobgp/v3/api"
)

// Status is what the CLI shows about BGP: the sessions, what is announced and
// what is not, and why.
type Status struct {
	// ASN and RouterID are the speaker's own.
	ASN      uint32 `json:"asn"`
	RouterID string `json:"routerID"`
	// Neighbors are the configured sessions, in no particular order.
	Neighbors []NeighborStatus `json:"neighbors"`
	// Announced are the paths GoBGP holds, sorted by VIP then next hop.
	Announced []AnnouncedPath `json:"announced"`
	// Withdrawn are the (VIP, gateway) paths the last decision did not
	// announce, with the reasons, sorted by VIP then next hop.
	Withdrawn []WithdrawnPath `json:"withdrawn"`
}

// NeighborStatus is one BGP session.
type NeighborStatus struct {
	// Address and ASN are the neighbor's, as configured.
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	// State is the session state: idle, connect, active, opensent,
	// openconfirm or established.
	State string `json:"state"`
	// Up is State == "established".
	Up bool `json:"up"`
	// Uptime is how long the session has been established; 0 when down.
	Uptime time.Duration `json:"uptime"`
	// Received and Accepted count the routes the peer sent, over every
	// family the session carries, and the ones the import policy kept
	// (always 0: the gateway learns nothing).
	Received uint64 `json:"received"`
	// Accepted: see Received.
	Accepted uint64 `json:"accepted"`
	// Advertised counts the paths sent to the peer, IPv4 and IPv6; 0 while
	// the session is not established.
	Advertised uint64 `json:"advertised"`
	// GracefulRestart is true when graceful restart was negotiated on the
	// current (or last) session: we advertise it and so did the peer.
	GracefulRestart bool `json:"gracefulRestart"`
}

// AnnouncedPath is a path GoBGP announces.
type AnnouncedPath struct {
	Path
	// Since is when the path was announced.
	Since time.Time `json:"since"`
}

// WithdrawnPath is a path that is not announced.
type WithdrawnPath struct {
	Withdrawal
	// Since is when the path got its current reasons.
	Since time.Time `json:"since"`
}

// Status reports the sessions (read from GoBGP) and the announce state.
func (s *Speaker) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{ASN: s.cfg.ASN, RouterID: s.cfg.RouterID}
	for _, k := range sortedKeys(s.paths) {
		p := s.paths[k]
		st.Announced = append(st.Announced, AnnouncedPath{Path: p.Path, Since: p.since})
	}
	for _, k := range sortedKeys(s.withdrawn) {
		w := s.withdrawn[k]
		st.Withdrawn = append(st.Withdrawn, WithdrawnPath{Withdrawal: w.Withdrawal, Since: w.since})
	}
	switch {
	case s.stopped:
		return st, ErrStopped
	case !s.started:
		return st, ErrNotStarted
	}
	now := time.Now()
	err := s.bgp.ListPeer(ctx, &apipb.ListPeerRequest{EnableAdvertised: true}, func(p *apipb.Peer) {
		n := NeighborStatus{
			Address: p.GetConf().GetNeighborAddress(),
			ASN:     p.GetConf().GetPeerAsn(),
			State:   sessionState(p.GetState().GetSessionState()),
		}
		n.Up = p.GetState().GetSessionState() == apipb.PeerState_ESTABLISHED
		if up := p.GetTimers().GetState().GetUptime(); n.Up && up != nil {
			n.Uptime = now.Sub(up.AsTime()).Truncate(time.Second)
		}
		for _, a := range p.GetAfiSafis() {
			n.Received += a.GetState().GetReceived()
			n.Accepted += a.GetState().GetAccepted()
		}
		n.GracefulRestart = s.cfg.GracefulRestart.Enabled && peerHasGR(p)
		if n.Up {
			// GoBGP counts the paths of its adj-RIB-out for a peer in
			// OpenSent/OpenConfirm too; nothing reaches a peer before
			// the session is established.
			n.Advertised = s.advertised(p)
		}
		st.Neighbors = append(st.Neighbors, n)
	})
	if err != nil {
		return st, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	return st, nil
}

func sessionState(s apipb.PeerState_SessionState) string {
	return strings.ToLower(s.String())
}

func peerHasGR(p *apipb.Peer) bool {
	for _, c := range p.GetState().GetRemoteCap() {
		if strings.HasSuffix(c.GetTypeUrl(), ".GracefulRestartCapability") {
			return true
		}
	}
	return false
}

// advertised counts the paths GoBGP would send p. GoBGP's own count includes
// the End-of-RIB marker of each family when graceful restart is negotiated;
// that is not a path.
func (s *Speaker) advertised(p *apipb.Peer) uint64 {
	var n uint64
	gr := s.cfg.GracefulRestart.Enabled && peerHasGR(p)
	for _, a := range p.GetAfiSafis() {
		c := a.GetState().GetAdvertised()
		if gr && c > 0 {
			c--
		}
		n += c
	}
	return n
}
