package announce

// Speakers on the gateways: with bgp.announceFrom: gateways, the controller
// speaks no BGP. It decides the policy (which VIPs, attributes, drains, VIPs
// without a healthy backend) and streams it to the graygw-speaker beside each
// gateway, which announces from it and from what its own dataplane serves
// (docs/bgp.md, Speakers on the gateways).

import (
	"context"
	"sync"
	"time"

	"github.com/graygw/graygw/controller/bgp"
)

// GatewaySpeakers is the Config.Speaker of a controller whose gateways
// announce their own VIPs: it speaks no BGP, keeps the last decision (the
// policy: the controller's observations of the gateways are left out of it)
// for the status, and wakes the policy streams at every change.
type GatewaySpeakers struct {
	mu      sync.Mutex
	last    bgp.Decision
	since   map[bgp.PathKey]time.Time
	changed chan struct{}
}

// NewGatewaySpeakers returns the policy publisher.
func NewGatewaySpeakers() *GatewaySpeakers {
	return &GatewaySpeakers{since: map[bgp.PathKey]time.Time{}, changed: make(chan struct{})}
}

var _ Speaker = (*GatewaySpeakers)(nil)

// Start implements Speaker.
func (g *GatewaySpeakers) Start(ctx context.Context, first bgp.Decision) error {
	return g.Reconcile(ctx, first)
}

// Reconcile implements bgp.Announcer: it records d and wakes the streams.
func (g *GatewaySpeakers) Reconcile(_ context.Context, d bgp.Decision) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	seen := map[bgp.PathKey]bool{}
	for _, p := range d.Announce {
		seen[p.PathKey] = true
		if _, ok := g.since[p.PathKey]; !ok {
			g.since[p.PathKey] = now
		}
	}
	for k := range g.since {
		if !seen[k] {
			delete(g.since, k)
		}
	}
	g.last = d
	close(g.changed)
	g.changed = make(chan struct{})
	return nil
}

// Changed returns a channel closed at the next Reconcile.
func (g *GatewaySpeakers) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Status implements bgp.Announcer: no sessions (the speakers have them), and
// the paths the policy allows or withdraws.
func (g *GatewaySpeakers) Status(context.Context) (bgp.Status, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var st bgp.Status
	for _, p := range g.last.Announce {
		st.Announced = append(st.Announced, bgp.AnnouncedPath{Path: p, Since: g.since[p.PathKey]})
	}
	for _, w := range g.last.Withdraw {
		st.Withdrawn = append(st.Withdrawn, bgp.WithdrawnPath{Withdrawal: w})
	}
	return st, nil
}

// Stop implements bgp.Announcer. The speakers keep announcing from their
// persisted policy: that is the point of them.
func (g *GatewaySpeakers) Stop(context.Context, bool) error { return nil }

// GatewaySpeakers returns the publisher when the gateways announce.
func (a *Announcer) GatewaySpeakers() (*GatewaySpeakers, bool) {
	g, ok := a.cfg.Speaker.(*GatewaySpeakers)
	return g, ok
}

// Policy is the current policy of one gateway's speaker (bgp.PolicyFor over
// the decision input now).
func (a *Announcer) Policy(gateway string) (bgp.Policy, error) {
	a.mu.Lock()
	in := a.inputLocked()
	a.mu.Unlock()
	return bgp.PolicyFor(in, gateway)
}
