// Package speaker is the BGP speaker beside one gateway (cmd/graygw-speaker):
// it announces the gateway's VIPs only while its own dataplane serves them,
// with the policy (which VIPs, attributes, drains) the controller decides and
// the speaker keeps on its own disk. Its announcements follow the packets, not
// the controller: with every controller dead the paths stay as long as the
// gateway forwards, and a gateway that stops forwarding withdraws its paths
// within one observation interval (docs/bgp.md, Speakers on the gateways). It
// is the pattern of MetalLB's and Katran's speakers, over controller/bgp's
// embedded GoBGP.
package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/graygw/graygw/controller/bgp"
)

// Config configures a Speaker.
type Config struct {
	// Gateway is the gateway's name in the controller's intent.
	Gateway string `yaml:"gateway"`
	// PolicyFile keeps the last policy received (JSON), read at start.
	PolicyFile string `yaml:"policyFile"`
	// Controllers stream the policy.
	Controllers ControllerConfig `yaml:"controllers"`
	// Dataplane is the local dataplane observed.
	Dataplane DataplaneConfig `yaml:"dataplane"`
	// Interval between two observations (default 100ms): the bound on how
	// long a gateway that stopped forwarding keeps its paths, plus one read
	// timeout when the target hangs.
	Interval time.Duration `yaml:"interval"`
	// StartWait bounds the wait for a first policy when there is none on disk
	// (default 10s). Without one nothing is announced.
	StartWait time.Duration `yaml:"startWait"`
	// BGP is the speaker's own BGP configuration (controller/bgp's Config).
	BGP bgp.Config `yaml:"bgp"`
}

// Validate checks the configuration, every problem by field.
func (c *Config) Validate() error {
	var errs []error
	if c.Gateway == "" {
		errs = append(errs, errors.New("gateway: empty (the gateway's name in the intent)"))
	}
	if c.PolicyFile == "" {
		errs = append(errs, errors.New("policyFile: empty (where the controller's policy is kept across restarts)"))
	}
	if len(c.Controllers.Addresses) == 0 {
		errs = append(errs, errors.New("controllers.addresses: empty"))
	}
	if c.Dataplane.P4Runtime == "" {
		errs = append(errs, errors.New("dataplane.p4runtime: empty (the local P4Runtime target)"))
	}
	if c.Dataplane.XDP && len(c.Dataplane.Interfaces) == 0 {
		errs = append(errs, errors.New("dataplane.xdp: needs dataplane.interfaces"))
	}
	if c.Interval < 0 || c.StartWait < 0 {
		errs = append(errs, errors.New("interval, startWait: must not be negative"))
	}
	if err := c.BGP.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Speaker observes the dataplane and announces what it serves.
type Speaker struct {
	cfg Config
	log *slog.Logger
	obs *Observer
	bgp *bgp.Speaker

	kick chan struct{}

	mu     sync.Mutex
	policy *savedPolicy
	last   Observation
	cur    *bgp.Input
}

// New checks cfg and builds the speaker; Run starts it.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("speaker: invalid config: %w", err)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.StartWait == 0 {
		cfg.StartWait = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	sp, err := bgp.New(cfg.BGP, bgp.WithLogger(log))
	if err != nil {
		return nil, err
	}
	obs, err := NewObserver(cfg.Dataplane)
	if err != nil {
		return nil, err
	}
	s := &Speaker{cfg: cfg, log: log.With("gateway", cfg.Gateway), obs: obs, bgp: sp, kick: make(chan struct{}, 1)}
	p, err := loadPolicy(cfg.PolicyFile)
	switch {
	case err != nil:
		// A file we cannot read gives no policy: announce nothing until a
		// controller gives one, rather than guess.
		s.log.Error("speaker: the policy file is unusable; nothing is announced until a controller sends a policy", "err", err)
	case p != nil && p.Policy.Gateway != cfg.Gateway:
		s.log.Error("speaker: the policy file is another gateway's; ignored", "file_gateway", p.Policy.Gateway)
	case p != nil:
		s.policy = p
		s.log.Info("speaker: policy loaded from disk", "vips", len(p.Policy.VIPs), "drained", p.Policy.Drained,
			"intent_version", p.IntentVersion, "received", p.Received.Format(time.RFC3339), "from", p.From)
	}
	return s, nil
}

// BGP returns the embedded speaker (status, metrics).
func (s *Speaker) BGP() *bgp.Speaker { return s.bgp }

// Run waits for a policy (when none was on disk, at most StartWait), starts
// BGP with a first decision made from a real observation, and then re-decides
// at every observation and every policy received, until ctx ends. It leaves
// the BGP sessions up: the caller then calls Stop.
func (s *Speaker) Run(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.cfg.Controllers.watchPolicy(wctx, s.cfg.Gateway, s.log, s.gotPolicy)

	if s.currentPolicy() == nil {
		s.log.Info("speaker: no policy on disk; waiting for a controller", "at_most", s.cfg.StartWait.String())
		deadline := time.After(s.cfg.StartWait)
	wait:
		for s.currentPolicy() == nil {
			select {
			case <-s.kick:
			case <-deadline:
				s.log.Warn("speaker: no policy yet; starting with nothing to announce")
				break wait
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	in := s.input(s.observe(ctx))
	first, err := bgp.Decide(in)
	if err != nil {
		return fmt.Errorf("speaker: first decision: %w", err)
	}
	if err := s.bgp.Start(ctx, first); err != nil {
		return err
	}
	s.setInput(in)
	s.log.Info("speaker: started", "announced", len(first.Announce), "withdrawn", len(first.Withdraw))
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.kick:
		}
		in := s.input(s.observe(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if old := s.currentInput(); old != nil && reflect.DeepEqual(*old, in) {
			continue
		}
		d, err := bgp.Decide(in)
		if err == nil {
			err = s.bgp.Reconcile(ctx, d)
		}
		if err != nil {
			s.log.Warn("speaker: reconcile failed; retrying at the next observation", "err", err)
			s.setInput(bgp.Input{}) // differs from any input: retried
			continue
		}
		s.setInput(in)
	}
}

// Stop stops BGP: with withdraw, every path is withdrawn first (a planned
// stop: the gateway leaves); without, the sessions are closed and, as with a
// crash, graceful-restart peers keep the routes for the restart time
// (docs/bgp.md, How the process must stop).
func (s *Speaker) Stop(ctx context.Context, withdraw bool) error {
	defer s.obs.Close()
	return s.bgp.Stop(ctx, withdraw)
}

func (s *Speaker) gotPolicy(p bgp.Policy, version uint64, from string) {
	s.mu.Lock()
	same := s.policy != nil && s.policy.Policy.Equal(p)
	s.mu.Unlock()
	if same {
		return
	}
	sp := &savedPolicy{Policy: p, IntentVersion: version, Received: time.Now().UTC(), From: from}
	if err := savePolicy(s.cfg.PolicyFile, sp); err != nil {
		// Announce from it anyway: the controller is alive and says so now.
		s.log.Error("speaker: policy not saved (a restart would use the previous one)", "err", err)
	}
	s.mu.Lock()
	s.policy = sp
	s.mu.Unlock()
	s.log.Info("speaker: policy received", "from", from, "intent_version", version, "vips", len(p.VIPs), "drained", p.Drained)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Speaker) observe(ctx context.Context) Observation {
	o := s.obs.Observe(ctx)
	s.mu.Lock()
	prev := s.last
	s.last = o
	s.mu.Unlock()
	if !slices.Equal(prev.Problems, o.Problems) && ctx.Err() == nil {
		if len(o.Problems) > 0 {
			s.log.Warn("speaker: dataplane problem", "reachable", o.Reachable, "forwarding", o.Forwarding, "problems", o.Problems)
		} else {
			s.log.Info("speaker: dataplane forwarding", "vips_served", len(o.Served))
		}
	}
	return o
}

// input is the decision input: this gateway alone, as observed, under the
// current policy.
func (s *Speaker) input(o Observation) bgp.Input {
	return Input(s.currentPolicy(), o)
}

// Input is the announce decision's input for one gateway: its policy (nil:
// none yet, nothing announced) and what its dataplane does. The decision's
// reasons then read, for a speaker: p4runtime-disconnected = the local target
// does not answer; health-check-failed = an interface is down or lost its XDP
// program; drained = the policy's drain; no-healthy-backend = the dataplane
// does not serve the VIP (not in the vip table, or its default pool empty) or
// the controller found no healthy backend.
func Input(p *bgp.Policy, o Observation) bgp.Input {
	in := bgp.Input{Gateways: []bgp.Gateway{}, VIPs: []bgp.VIP{}}
	if p == nil {
		return in
	}
	in.Gateways = append(in.Gateways, bgp.Gateway{Name: p.Gateway, NextHop: p.NextHop, NextHopV6: p.NextHopV6,
		P4RuntimeConnected: o.Reachable, HealthCheckOK: o.Forwarding, Drained: p.Drained})
	for _, v := range p.VIPs {
		healthy := 0
		if o.Served[v.Address] && len(v.Withdraw) == 0 {
			healthy = 1
		}
		in.VIPs = append(in.VIPs, bgp.VIP{Name: v.Name, Address: v.Address, Attributes: v.Attributes,
			Pools: []bgp.Pool{{Name: "dataplane", HealthyBackends: healthy}}})
	}
	return in
}

func (s *Speaker) currentPolicy() *bgp.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy == nil {
		return nil
	}
	p := s.policy.Policy
	return &p
}

func (s *Speaker) currentInput() *bgp.Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *Speaker) setInput(in bgp.Input) {
	s.mu.Lock()
	s.cur = &in
	s.mu.Unlock()
}

// Status is the speaker's state for its /status endpoint.
type Status struct {
	Gateway     string       `json:"gateway"`
	Policy      *savedPolicy `json:"policy"`
	Observation Observation  `json:"observation"`
	BGP         bgp.Status   `json:"bgp"`
	BGPError    string       `json:"bgpError,omitempty"`
}

// Status reports the policy, the last observation and the BGP state.
func (s *Speaker) Status(ctx context.Context) Status {
	s.mu.Lock()
	st := Status{Gateway: s.cfg.Gateway, Policy: s.policy, Observation: s.last}
	s.mu.Unlock()
	var err error
	if st.BGP, err = s.bgp.Status(ctx); err != nil {
		st.BGPError = err.Error()
	}
	return st
}
