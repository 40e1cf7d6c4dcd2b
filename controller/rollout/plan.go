package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
)

// PlanVersion is the only plan schema version this package reads.
const PlanVersion = 1

// DefaultIndividualVMs is how many VMs of each VPC move one at a time when the
// plan does not say.
const DefaultIndividualVMs = 1

// Probe scopes: which VMs are probed after each step.
const (
	// ScopePlan probes every VM of the plan (the default): moved VMs must be
	// answered by the target pool, the others still by the base cluster.
	ScopePlan = "plan"
	// ScopeVPC probes the VMs of the step's VPC only.
	ScopeVPC = "vpc"
	// ScopeStep probes only the VMs the step moves.
	ScopeStep = "step"
)

// DefaultBakeEvery is how often a bake or a watch probes by default.
const DefaultBakeEvery = 5 * time.Second

// ErrPlan: a plan that does not parse or validate. The error is a *PlanErrors
// naming every problem by field path.
var ErrPlan = errors.New("rollout: bad plan")

// PlanSpec is a rollout plan as written in YAML (docs/rollout.md).
type PlanSpec struct {
	// Version must be PlanVersion.
	Version int `yaml:"version" json:"version"`
	// Name identifies the rollout; the rules it creates are named after it.
	Name string `yaml:"name" json:"name"`
	// VIP restricts the rules to one VIP (a name from the intent); empty = any
	// VIP (the controller refuses that when the intent's VIPs are different
	// services).
	VIP string `yaml:"vip,omitempty" json:"vip,omitempty"`
	// Pool is the target (gray) pool.
	Pool string `yaml:"pool" json:"pool"`
	// BasePool, when set, is the pool VMs not yet moved must be answered by;
	// empty = any backend of the base cluster.
	BasePool string `yaml:"base_pool,omitempty" json:"base_pool,omitempty"`
	// IndividualVMs is how many VMs of each VPC are moved one at a time (as /32
	// rules) before the rest of the VPC moves with one VNI rule; default 1.
	IndividualVMs *int `yaml:"individual_vms,omitempty" json:"individual_vms,omitempty"`
	// Probe bounds the probes run after each step.
	Probe ProbeSpec `yaml:"probe,omitempty" json:"probe,omitempty"`
	// Bake keeps each step probing for this long after its probes passed (a
	// Go duration, at most 1h; default none): probes again every BakeEvery,
	// and any failure rolls the step back as a failed probe does.
	Bake string `yaml:"bake,omitempty" json:"bake,omitempty"`
	// BakeEvery is how often baking and watching probe (default 5s, at least
	// 100ms).
	BakeEvery string `yaml:"bake_every,omitempty" json:"bake_every,omitempty"`
	// Watch keeps probing every VM of the plan for this long after the last
	// step (at most 24h; default none); the rollout completes when it ends.
	Watch string `yaml:"watch,omitempty" json:"watch,omitempty"`
	// WatchRollback: a failure during the watch rolls back every step (the
	// rollout ends aborted); without it the rollout fails and the rules stay.
	WatchRollback bool `yaml:"watch_rollback,omitempty" json:"watch_rollback,omitempty"`
	// Gates are checks each step must pass besides its probes.
	Gates GatesSpec `yaml:"gates,omitempty" json:"gates,omitempty"`
	// Mirror first mirrors each step's traffic to the pool for this long (a Go
	// duration, at most 1h; default none: cut over at once), checks that the
	// pool received copies, then cuts over (docs/pipeline.md §10). MirrorRate
	// copies 1 in N VMs (default 1: every VM).
	Mirror     string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	MirrorRate int    `yaml:"mirror_rate,omitempty" json:"mirror_rate,omitempty"`
	// VPCs are moved in this order.
	VPCs []VPCSpec `yaml:"vpcs" json:"vpcs"`
}

// ProbeSpec configures the probes of a plan.
type ProbeSpec struct {
	// Count is the number of echo requests per VM (default 3, at most 100).
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// Interval between rounds, a Go duration ("100ms"); default 100ms.
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout for replies after the last request; default 1s.
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MaxLoss is the number of unanswered requests per VM still counted ok.
	MaxLoss int `yaml:"max_loss,omitempty" json:"max_loss,omitempty"`
	// Settle is a wait between a cutover and its probes; default 0.
	Settle string `yaml:"settle,omitempty" json:"settle,omitempty"`
	// Scope is plan (default), vpc or step: which VMs are probed after a step.
	Scope string `yaml:"scope,omitempty" json:"scope,omitempty"`
	// ChecksSpec says what every VM is probed with (a VPC may say otherwise).
	ChecksSpec `yaml:",inline"`
}

// ChecksSpec says what a VM is probed with, towards each of its
// destinations: ICMP echo, TCP connects, UDP echoes.
type ChecksSpec struct {
	// ICMP probes with echo requests (default true); false leaves the TCP
	// and UDP probes alone.
	ICMP *bool `yaml:"icmp,omitempty" json:"icmp,omitempty"`
	// TCP are ports to connect to (TCP connect through the gateway: a
	// SYN-ACK passes, a reset or nothing fails).
	TCP []int `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	// UDP are ports that must echo a datagram back.
	UDP []int `yaml:"udp,omitempty" json:"udp,omitempty"`
}

// MaxProbePorts bounds probe.tcp and probe.udp each.
const MaxProbePorts = 16

// ProbeCheck is one kind of probe every VM of a plan gets per destination: ICMP
// echo, or TCP or UDP to a port.
type ProbeCheck struct {
	Proto probe.Proto
	Port  uint16
}

// VPCSpec is one VPC of a plan. VMs, Router (with Destinations) and RouterMAC
// may be left out when the intent has an inventory for the VNI (Resolve).
type VPCSpec struct {
	// VNI is the VPC's VXLAN network id (1-16777215).
	VNI int64 `yaml:"vni" json:"vni"`
	// Router is the VPC router address the backends answer (probe destination);
	// empty = from the intent's inventory.
	Router string `yaml:"router,omitempty" json:"router,omitempty"`
	// Destinations are further inner destinations every VM is probed towards
	// (one probe target each, after Router); filled from the intent's routes
	// when Router is taken from the inventory.
	Destinations []string `yaml:"destinations,omitempty" json:"destinations,omitempty"`
	// RouterMAC is the router's MAC; empty = the inventory's, else the probe
	// host's default.
	RouterMAC string `yaml:"router_mac,omitempty" json:"router_mac,omitempty"`
	// IndividualVMs overrides the plan's for this VPC.
	IndividualVMs *int `yaml:"individual_vms,omitempty" json:"individual_vms,omitempty"`
	// VMs are the VMs' addresses; the first IndividualVMs move one at a time.
	// Empty = the VMs of the intent's inventory, in its order.
	VMs []string `yaml:"vms,omitempty" json:"vms,omitempty"`
	// Probe, when set, replaces the plan's probe.icmp, tcp and udp for this
	// VPC's VMs (in every step's probes, its bake and the watch).
	Probe *ChecksSpec `yaml:"probe,omitempty" json:"probe,omitempty"`
}

// Resolve returns a copy of s in which every VPC that leaves out its VMs or its
// router takes them from the inventory of in (its vpcs section): the VMs in
// inventory order, the router as the first route destination and the other
// route destinations as Destinations, the router MAC when the plan gives none.
// What the plan gives wins, field by field (a plan may list a subset of the
// VPC's VMs, or VMs the inventory lacks). A VPC the inventory does not know is
// left as it is, for Validate to report. in may be nil (nothing to fill in).
func (s *PlanSpec) Resolve(in *intent.Intent) *PlanSpec {
	out := *s
	out.VPCs = make([]VPCSpec, len(s.VPCs))
	copy(out.VPCs, s.VPCs)
	if in == nil {
		return &out
	}
	for i := range out.VPCs {
		vs := &out.VPCs[i]
		if vs.VNI < 1 || vs.VNI > 0xffffff {
			continue
		}
		inv, ok := in.VPC(uint32(vs.VNI))
		if !ok {
			continue
		}
		if len(vs.VMs) == 0 {
			for _, m := range inv.VMs {
				vs.VMs = append(vs.VMs, m.Address.String())
			}
		}
		if vs.Router == "" && len(vs.Destinations) == 0 {
			seen := map[netip.Addr]bool{}
			for _, r := range inv.Routes {
				d := r.Dest()
				if seen[d] {
					continue
				}
				seen[d] = true
				if vs.Router == "" {
					vs.Router = d.String()
				} else {
					vs.Destinations = append(vs.Destinations, d.String())
				}
			}
		}
		if vs.RouterMAC == "" {
			vs.RouterMAC = inv.RouterMAC
		}
	}
	return &out
}

// ValidateWith is Resolve(in) then Validate: the plan's VPCs take what they
// leave out from the intent's inventory.
func (s *PlanSpec) ValidateWith(in *intent.Intent) (*Plan, error) {
	return s.Resolve(in).Validate()
}

// ValidatePartial checks everything that does not need the intent's inventory:
// it is Validate except that a VPC may leave out its VMs and router (the
// controller fills them in from the intent in force). It returns the plan's
// steps as far as they are known (a VPC without VMs has its VNI step only).
func (s *PlanSpec) ValidatePartial() (*Plan, error) { return s.validate(true) }

// StepKind says what a step moves.
type StepKind string

// Step kinds.
const (
	StepVM  StepKind = "vm"  // one VM: a rule on (vni, src/32)
	StepVNI StepKind = "vni" // the rest of a VPC: a rule on the VNI
)

// Step is one cutover of a plan.
type Step struct {
	// Index counts steps from 1.
	Index int      `json:"index" yaml:"index"`
	Kind  StepKind `json:"kind" yaml:"kind"`
	VNI   uint32   `json:"vni" yaml:"vni"`
	// VM is the VM a vm step moves (invalid for a vni step).
	VM netip.Addr `json:"vm,omitzero" yaml:"vm,omitempty"`
	// Rule is the name the step's rule is requested under.
	Rule string `json:"rule" yaml:"rule"`
}

// String describes the step ("vm 5001/192.168.1.5", "vni 5001").
func (s Step) String() string {
	if s.Kind == StepVM {
		return fmt.Sprintf("vm %d/%s", s.VNI, s.VM)
	}
	return fmt.Sprintf("vni %d", s.VNI)
}

// Scope returns the step's cutover scope for a plan restricted to vip.
func (s Step) Scope(vip string) Scope {
	vni := int64(s.VNI)
	m := intent.MatchSpec{VIP: vip, VNI: &vni}
	if s.Kind == StepVM {
		m.Src = s.VM.String()
	}
	return Scope{Name: s.Rule, Match: m}
}

// Plan is a validated plan: its VPCs as probe inventory and its steps.
type Plan struct {
	Spec     PlanSpec
	Name     string
	VIP      string
	Pool     string
	BasePool string
	Probe    probe.Options
	Settle   time.Duration
	// Bake, BakeEvery, Watch and WatchRollback are the spec's (zero: none).
	Bake, BakeEvery, Watch time.Duration
	WatchRollback          bool
	Gates                  GatesSpec
	// Mirror and MirrorRate are the spec's (Mirror zero: no mirror phase).
	Mirror     time.Duration
	MirrorRate int
	Scope      string
	// Checks are the probes of every VM and destination: ICMP echo, TCP
	// connects, UDP echoes (probe.icmp, tcp, udp), in that order.
	Checks []ProbeCheck
	// VPCChecks replace Checks for the VMs of a VPC, by VNI (vpcs[].probe).
	VPCChecks map[uint32][]ProbeCheck
	VPCs      []probe.VPC
	Steps     []Step
}

// Problem is one thing wrong with a plan.
type Problem struct {
	Path string // "vpcs[1].vms[2]"; "" for the whole document
	Msg  string
}

// PlanErrors lists every problem of a plan.
type PlanErrors struct {
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *PlanErrors) Error() string {
	var b strings.Builder
	b.WriteString("rollout: bad plan:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Unwrap returns ErrPlan.
func (e *PlanErrors) Unwrap() error { return ErrPlan }

func (e *PlanErrors) add(path, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// ParsePlan decodes one YAML plan strictly: unknown keys, wrong types and a
// second document are errors (wrapping ErrPlan). It does not validate.
func ParsePlan(data []byte) (*PlanSpec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s PlanSpec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PlanErrors{Problems: []Problem{{Msg: "empty document"}}}
		}
		return nil, &PlanErrors{Problems: []Problem{{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &PlanErrors{Problems: []Problem{{Msg: "more than one YAML document: a plan is one document"}}}
	}
	return &s, nil
}

// LoadPlan parses and validates a plan.
func LoadPlan(data []byte) (*Plan, error) {
	s, err := ParsePlan(data)
	if err != nil {
		return nil, err
	}
	return s.Validate()
}

// LoadPlanFile reads, parses and validates the plan at path.
func LoadPlanFile(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rollout: read plan: %w", err)
	}
	return LoadPlan(data)
}

var planNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,23}$`)
var poolNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate checks every field and resolves the plan into steps: for each VPC in
// order, its first IndividualVMs VMs one at a time, then one VNI rule for the
// rest. It reports every problem at once as a *PlanErrors. Every VPC must give
// its VMs and router: see Resolve and ValidateWith for plans that take them from
// the intent's inventory.
func (s *PlanSpec) Validate() (*Plan, error) { return s.validate(false) }

func (s *PlanSpec) validate(partial bool) (*Plan, error) {
	e := &PlanErrors{}
	if s.Version != PlanVersion {
		e.add("version", "%d: this graygw reads plan version %d", s.Version, PlanVersion)
	}
	if !planNameRE.MatchString(s.Name) {
		e.add("name", "%q: 1-24 lower-case letters, digits or '-', starting with a letter or digit (rule names are derived from it)", s.Name)
	}
	if s.VIP != "" && !poolNameRE.MatchString(s.VIP) {
		e.add("vip", "%q is not a valid name", s.VIP)
	}
	if !poolNameRE.MatchString(s.Pool) {
		e.add("pool", "%q: name the target (gray) pool of the intent", s.Pool)
	}
	if s.BasePool != "" && !poolNameRE.MatchString(s.BasePool) {
		e.add("base_pool", "%q is not a valid name", s.BasePool)
	}
	p := &Plan{Spec: *s, Name: s.Name, VIP: s.VIP, Pool: s.Pool, BasePool: s.BasePool, Scope: ScopePlan}
	if s.BasePool != "" && s.BasePool == s.Pool {
		e.add("base_pool", "%q is also the target pool", s.BasePool)
	}
	indiv := DefaultIndividualVMs
	if s.IndividualVMs != nil {
		indiv = *s.IndividualVMs
		if indiv < 0 {
			e.add("individual_vms", "%d: want 0 or more", indiv)
		}
	}
	// Probes.
	p.Probe = probe.Options{Count: s.Probe.Count, MaxLoss: s.Probe.MaxLoss}
	dur := func(path, v string) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			e.add(path, "%q: want a duration such as 200ms or 1s", v)
			return 0
		}
		return d
	}
	p.Probe.Interval = dur("probe.interval", s.Probe.Interval)
	p.Probe.Timeout = dur("probe.timeout", s.Probe.Timeout)
	p.Settle = dur("probe.settle", s.Probe.Settle)
	if p.Settle > time.Minute {
		e.add("probe.settle", "%v: at most 1m", p.Settle)
	}
	p.Bake, p.BakeEvery, p.Watch = dur("bake", s.Bake), dur("bake_every", s.BakeEvery), dur("watch", s.Watch)
	p.WatchRollback = s.WatchRollback
	p.Gates = s.Gates
	s.Gates.validate(e)
	if p.Bake > time.Hour {
		e.add("bake", "%v: at most 1h", p.Bake)
	}
	if p.Watch > 24*time.Hour {
		e.add("watch", "%v: at most 24h", p.Watch)
	}
	p.Mirror, p.MirrorRate = dur("mirror", s.Mirror), max(s.MirrorRate, 1)
	if p.Mirror > time.Hour {
		e.add("mirror", "%v: at most 1h", p.Mirror)
	}
	if s.MirrorRate < 0 || s.MirrorRate > 65536 {
		e.add("mirror_rate", "%d: want 1 to 65536 (copy 1 in N VMs)", s.MirrorRate)
	}
	if s.MirrorRate != 0 && s.Mirror == "" {
		e.add("mirror_rate", "without mirror: nothing to sample")
	}
	if s.BakeEvery == "" {
		p.BakeEvery = DefaultBakeEvery
	} else if p.BakeEvery < 100*time.Millisecond {
		e.add("bake_every", "%v: at least 100ms", p.BakeEvery)
	}
	if s.WatchRollback && s.Watch == "" {
		e.add("watch_rollback", "without watch: nothing to roll back after")
	}
	p.Probe = p.Probe.WithDefaults()
	if err := p.Probe.Validate(); err != nil {
		e.add("probe", "%s", strings.TrimPrefix(err.Error(), probe.ErrConfig.Error()+": "))
	}
	p.Checks = s.Probe.checks(e, "probe")
	switch s.Probe.Scope {
	case "", ScopePlan:
	case ScopeVPC, ScopeStep:
		p.Scope = s.Probe.Scope
	default:
		e.add("probe.scope", "%q: want plan, vpc or step", s.Probe.Scope)
	}
	// VPCs and VMs.
	if len(s.VPCs) == 0 {
		e.add("vpcs", "required: at least one VPC to move")
	}
	vnis := map[int64]string{}
	nvms := 0
	for i, vs := range s.VPCs {
		path := fmt.Sprintf("vpcs[%d]", i)
		v := probe.VPC{RouterMAC: vs.RouterMAC}
		switch {
		case vs.VNI < 1 || vs.VNI > 0xffffff:
			e.add(path+".vni", "%d: want 1 to 16777215", vs.VNI)
		case vnis[vs.VNI] != "":
			e.add(path+".vni", "%d is already %s", vs.VNI, vnis[vs.VNI])
		default:
			vnis[vs.VNI] = path
			v.VNI = uint32(vs.VNI)
		}
		fromIntent := fmt.Sprintf("or give VNI %d an inventory in the intent (vpcs), from which the plan takes it", vs.VNI)
		switch a, err := netip.ParseAddr(vs.Router); {
		case vs.Router == "" && partial:
		case vs.Router == "":
			e.add(path+".router", "required: the VPC router's address (the probes' destination), %s", fromIntent)
		case err != nil || !plainIP(a):
			e.add(path+".router", "%q: want the VPC router's IPv4 or IPv6 address", vs.Router)
		default:
			v.Router = a
		}
		if len(vs.Destinations) > 0 {
			if vs.Router == "" {
				e.add(path+".destinations", "only with router (the first destination)")
			}
			v.Dests = []netip.Addr{v.Router}
			for j, d := range vs.Destinations {
				a, err := netip.ParseAddr(d)
				dp := fmt.Sprintf("%s.destinations[%d]", path, j)
				switch {
				case err != nil || !plainIP(a):
					e.add(dp, "%q: want an IPv4 or IPv6 address", d)
				case slices.Contains(v.Dests, a):
					e.add(dp, "%s is already a destination", a)
				default:
					v.Dests = append(v.Dests, a)
				}
			}
		}
		if vs.RouterMAC != "" {
			if hw, err := net.ParseMAC(vs.RouterMAC); err != nil || len(hw) != 6 {
				e.add(path+".router_mac", "%q is not a MAC address", vs.RouterMAC)
			}
		}
		if len(vs.VMs) == 0 && !partial {
			e.add(path+".vms", "required: list the VPC's VMs (they are probed after every step), %s", fromIntent)
		}
		seen := map[netip.Addr]int{}
		for j, s := range vs.VMs {
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil || !plainIP(a):
				e.add(fmt.Sprintf("%s.vms[%d]", path, j), "%q: want an IPv4 or IPv6 address", s)
				continue
			case v.Router.IsValid() && len(v.DestinationsOf(a)) == 0:
				// A VM is probed towards the destinations of its family.
				e.add(fmt.Sprintf("%s.vms[%d]", path, j), "%s: no router or destination of its family to probe it towards", a)
			case a == v.Router:
				e.add(fmt.Sprintf("%s.vms[%d]", path, j), "%s is the VPC router", a)
			case slices.Contains(v.Dests, a):
				e.add(fmt.Sprintf("%s.vms[%d]", path, j), "%s is a probe destination", a)
			}
			if k, dup := seen[a]; dup {
				e.add(fmt.Sprintf("%s.vms[%d]", path, j), "%s is already vms[%d]", a, k)
				continue
			}
			seen[a] = j
			v.VMs = append(v.VMs, a)
		}
		checks := max(len(p.Checks), 1)
		if vs.Probe != nil {
			if p.VPCChecks == nil {
				p.VPCChecks = map[uint32][]ProbeCheck{}
			}
			p.VPCChecks[v.VNI] = vs.Probe.checks(e, path+".probe")
			checks = max(len(p.VPCChecks[v.VNI]), 1)
		}
		for _, vm := range v.VMs {
			nvms += len(v.DestinationsOf(vm)) * checks
		}
		n := indiv
		if vs.IndividualVMs != nil {
			n = *vs.IndividualVMs
			if n < 0 {
				e.add(path+".individual_vms", "%d: want 0 or more", n)
			}
		}
		n = max(min(n, len(v.VMs)), 0)
		for _, vm := range v.VMs[:n] {
			p.Steps = append(p.Steps, Step{Kind: StepVM, VNI: v.VNI, VM: vm,
				Rule: vmRuleName(s.Name, v.VNI, vm)})
		}
		p.Steps = append(p.Steps, Step{Kind: StepVNI, VNI: v.VNI, Rule: fmt.Sprintf("%s.%d", s.Name, v.VNI)})
		p.VPCs = append(p.VPCs, v)
	}
	if nvms > probe.MaxTargets || nvms*p.Probe.Count > 0xffff {
		e.add("vpcs", "%d probe targets (VMs x destinations x checks) x %d probes: at most %d targets and 65535 probes per run",
			nvms, p.Probe.Count, probe.MaxTargets)
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	for i := range p.Steps {
		p.Steps[i].Index = i + 1
	}
	return p, nil
}

// WithChecks returns every target of ts once per check of its VPC (ICMP
// echo, each TCP and UDP port: the VPC's probe, else the plan's), in that
// order; a target as it is (ICMP) where there are no checks (a Plan built by
// hand).
func (p *Plan) WithChecks(ts []probe.Target) []probe.Target {
	out := make([]probe.Target, 0, len(ts)*max(len(p.Checks), 1))
	for _, t := range ts {
		checks := p.Checks
		if c, ok := p.VPCChecks[t.VNI]; ok {
			checks = c
		}
		if len(checks) == 0 {
			out = append(out, t)
		}
		for _, c := range checks {
			t.Proto, t.Port = c.Proto, c.Port
			if c.Proto == probe.ProtoICMP {
				t.Proto = "" // as ICMP targets always were
			}
			out = append(out, t)
		}
	}
	return out
}

// Checks validates c as a plan's probe section would be (problems named
// after path) and returns the checks it asks for, or an error wrapping
// ErrPlan: for probes outside a plan (the API's Probe of inventory VMs).
func (c ChecksSpec) Checks(path string) ([]ProbeCheck, error) {
	e := &PlanErrors{}
	out := c.checks(e, path)
	if len(e.Problems) > 0 {
		return nil, e
	}
	return out, nil
}

// checks validates icmp, tcp and udp (at path: probe, vpcs[i].probe) and
// returns the checks they ask for.
func (ps ChecksSpec) checks(e *PlanErrors, path string) []ProbeCheck {
	var out []ProbeCheck
	if ps.ICMP == nil || *ps.ICMP {
		out = append(out, ProbeCheck{Proto: probe.ProtoICMP})
	}
	for _, l := range []struct {
		name  string
		proto probe.Proto
		ports []int
	}{{"tcp", probe.ProtoTCP, ps.TCP}, {"udp", probe.ProtoUDP, ps.UDP}} {
		if len(l.ports) > MaxProbePorts {
			e.add(path+"."+l.name, "%d ports: at most %d", len(l.ports), MaxProbePorts)
			continue
		}
		seen := map[int]int{}
		for i, port := range l.ports {
			pp := fmt.Sprintf("%s.%s[%d]", path, l.name, i)
			if port < 1 || port > 65535 {
				e.add(pp, "%d: want a port, 1 to 65535", port)
				continue
			}
			if j, dup := seen[port]; dup {
				e.add(pp, "%d: already %s.%s[%d]", port, path, l.name, j)
				continue
			}
			seen[port] = i
			out = append(out, ProbeCheck{Proto: l.proto, Port: uint16(port)})
		}
	}
	if ps.ICMP != nil && !*ps.ICMP && len(ps.TCP) == 0 && len(ps.UDP) == 0 {
		e.add(path+".icmp", "false, and no %s.tcp or %s.udp: nothing would be probed", path, path)
	}
	return out
}

// Marshal encodes the plan's spec as YAML.
func (p *Plan) Marshal() ([]byte, error) { return yaml.Marshal(&p.Spec) }

// plainIP reports whether a is an IPv4 address or an IPv6 one that is not
// IPv4-mapped and has no zone: a VM or router address a probe can carry.
func plainIP(a netip.Addr) bool { return a.Is4() || (a.Is6() && !a.Is4In6() && a.Zone() == "") }

// vmRuleName is the name of the rule a step moving vm writes: plan.VNI.VM,
// an IPv6 VM's colons as '-' (intent names are [A-Za-z0-9._-]); one longer
// than the intent's 63 characters keeps its start and a hash of the whole.
func vmRuleName(plan string, vni uint32, vm netip.Addr) string {
	name := fmt.Sprintf("%s.%d.%s", plan, vni, strings.ReplaceAll(vm.String(), ":", "-"))
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s-%08x", name[:54], h.Sum32())
}
