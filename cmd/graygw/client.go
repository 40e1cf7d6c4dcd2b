package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

// DefaultController is the controller's API address unless --controller says
// otherwise: its unix socket.
const DefaultController = "unix:///run/graygw/controller.sock"

// Sentinel errors a Client wraps so that the CLI can pick its exit code.
var (
	// errRefused: the controller refused the change (validation); exit 3.
	errRefused = errors.New("refused by the controller")
	// errProbeFailed: probes failed, or a rollout failed or was aborted; exit 4.
	errProbeFailed = errors.New("probe failed")
)

// Client is what the CLI needs from the controller. The gRPC implementation
// (api/graygw/v1 over the unix socket, or tcp with mutual TLS) plugs in here;
// tests use a fake. Errors wrap errRefused when the controller refused a change
// (its problems listed in the message) and errProbeFailed for failed probes.
type Client interface {
	// Apply replaces the intent with doc (YAML).
	Apply(ctx context.Context, doc []byte, o ChangeOpts) (*ChangeSet, error)
	// Diff computes what doc would write to each gateway (nil doc: the drift of
	// the gateways from the intent in force). It never applies.
	Diff(ctx context.Context, doc []byte) (*ChangeSet, error)
	// Get returns the intent in force (version 0) or an older version.
	Get(ctx context.Context, version uint64) (*IntentDoc, error)
	// Cutover adds (or updates) a gray rule moving scope to pool.
	Cutover(ctx context.Context, scope rollout.Scope, pool string, o ChangeOpts) (*ChangeSet, error)
	// Mirror adds (or updates) a gray rule copying scope's traffic to pool
	// from 1 in rate VMs, while the VIP's default pool serves it.
	Mirror(ctx context.Context, scope rollout.Scope, pool string, rate uint32, o ChangeOpts) (*ChangeSet, error)
	// Rollback undoes the last change, removes one cutover rule, or removes
	// every gray rule.
	Rollback(ctx context.Context, r RollbackRequest, o ChangeOpts) (*ChangeSet, error)
	// Status reports the gateways and every VNI's gray state.
	Status(ctx context.Context) (*Status, error)
	// Counters reads the dataplane counters of one gateway ("" = all).
	Counters(ctx context.Context, gateway string) (*Counters, error)
	// History lists the committed changes, newest first.
	History(ctx context.Context, limit int) ([]Event, error)
	// BGP reports the BGP speaker's peers and announcements.
	BGP(ctx context.Context) (*BGPStatus, error)
	// Drain withdraws every VIP path through gateway until Undrain (kept
	// across controller restarts); reason is free text kept with it.
	Drain(ctx context.Context, gateway, reason, actor string) (*DrainResult, error)
	// Undrain announces the gateway's paths again.
	Undrain(ctx context.Context, gateway, actor string) (*DrainResult, error)
	// RolloutStart starts a rollout of the plan (YAML); dry checks it only.
	// A failed precheck is a *precheckError (wrapping errProbeFailed).
	RolloutStart(ctx context.Context, plan []byte, dry bool, actor string) (*rollout.Progress, error)
	// RolloutStatus, RolloutPause, RolloutResume and RolloutAbort act on the
	// current rollout.
	RolloutStatus(ctx context.Context) (*rollout.Progress, error)
	RolloutPause(ctx context.Context) (*rollout.Progress, error)
	RolloutResume(ctx context.Context) (*rollout.Progress, error)
	RolloutAbort(ctx context.Context) (*rollout.Progress, error)
	// RolloutWatch calls fn with every progress update until the rollout
	// stops (finished or paused), fn returns an error, or ctx ends.
	RolloutWatch(ctx context.Context, fn func(*rollout.Progress) error) error
	// Probe probes targets through the gateway, to the VIP named vip (""
	// the intent's only VIP); targets without an expectation get the one the
	// controller's tables give.
	Probe(ctx context.Context, vip string, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
	// ProbeServer probes targets the controller derives from its intent in
	// force: the VMs of its inventory in scope, or those of a plan whose
	// VPCs name only their VNI.
	ProbeServer(ctx context.Context, req ServerProbe) ([]probe.Result, error)
	// Close releases the connection.
	Close() error
}

// ServerProbe is a probe whose targets the controller derives (ProbeRequest's
// inventory and plan forms).
type ServerProbe struct {
	// VIP names the VIP to probe through ("": the plan's, else the intent's
	// only VIP).
	VIP string
	// Inventory selects VMs of the intent's inventory, or:
	Inventory []InventoryScope
	// Plan is a rollout plan (YAML) whose VMs are probed, only those of VNI
	// when non-zero.
	Plan []byte
	VNI  uint32
	// Expect is the cluster that must answer ("": what the tables decide).
	Expect  intent.Cluster
	Options probe.Options
}

// InventoryScope is every VM of VNI (VM invalid) or one VM (of VNI, or of
// whichever VPC has it when VNI is 0) of the intent's inventory.
type InventoryScope struct {
	VNI uint32
	VM  netip.Addr
}

// ChangeOpts are common to every change.
type ChangeOpts struct {
	// DryRun validates and plans, and changes nothing.
	DryRun bool
	// Wait returns only once every gateway holds the new version (or after
	// WaitTimeout).
	Wait        bool
	WaitTimeout time.Duration
	// Actor is who makes the change, for the history.
	Actor string
}

// RollbackRequest says what to roll back: exactly one of Step, Rule, All.
type RollbackRequest struct {
	// Step undoes the last change not itself undone.
	Step bool
	// Rule removes the gray rule of that name.
	Rule string
	// All removes every gray rule.
	All bool
	// Mirrors stops every mirror.
	Mirrors bool
}

// ChangeSet is what a change did or would do.
type ChangeSet struct {
	// DryRun says nothing was applied (a dry run or a diff).
	DryRun bool `json:"dry_run" yaml:"dry_run"`
	// Applied says a new intent version was stored and is being applied.
	Applied bool `json:"applied" yaml:"applied"`
	// Unchanged says the change would not alter the intent.
	Unchanged bool `json:"unchanged,omitempty" yaml:"unchanged,omitempty"`
	// Version is the new intent version when applied, else the current one.
	Version uint64 `json:"version,omitempty" yaml:"version,omitempty"`
	Summary string `json:"summary,omitempty" yaml:"summary,omitempty"`
	// Rules are the rules the change added, updated or removed.
	Rules []string      `json:"rules,omitempty" yaml:"rules,omitempty"`
	Plans []GatewayPlan `json:"plans" yaml:"plans"`
	// WaitError says why a wait ended before every gateway was in sync.
	WaitError string `json:"wait_error,omitempty" yaml:"wait_error,omitempty"`
}

// GatewayPlan is what a change writes (or would write) to one gateway.
type GatewayPlan struct {
	Gateway string `json:"gateway" yaml:"gateway"`
	// Reachable says the plan is against entries read back just now; else
	// Note says against what.
	Reachable bool          `json:"reachable" yaml:"reachable"`
	Note      string        `json:"note,omitempty" yaml:"note,omitempty"`
	Inserts   int           `json:"inserts" yaml:"inserts"`
	Modifies  int           `json:"modifies" yaml:"modifies"`
	Deletes   int           `json:"deletes" yaml:"deletes"`
	Foreign   int           `json:"foreign,omitempty" yaml:"foreign,omitempty"`
	Groups    []ChangeGroup `json:"groups" yaml:"groups"`
	Changes   []EntryChange `json:"changes,omitempty" yaml:"changes,omitempty"`
	// Truncated says Changes lists only the first updates.
	Truncated bool `json:"truncated,omitempty" yaml:"truncated,omitempty"`
}

// ChangeGroup counts the updates of one operation, table and intent object.
type ChangeGroup struct {
	Op     string `json:"op" yaml:"op"` // insert, modify, delete
	Table  string `json:"table" yaml:"table"`
	Origin string `json:"origin" yaml:"origin"` // "rule vm-10.0.0.5", "pool gray-router v1"
	Count  int    `json:"count" yaml:"count"`
}

// EntryChange is one table entry written, modified or deleted.
type EntryChange struct {
	Op     string `json:"op" yaml:"op"`
	Table  string `json:"table" yaml:"table"`
	Origin string `json:"origin,omitempty" yaml:"origin,omitempty"`
	Entry  string `json:"entry" yaml:"entry"`
}

// IntentDoc is one stored version of the intent.
type IntentDoc struct {
	Version        uint64    `json:"version" yaml:"version"`
	CurrentVersion uint64    `json:"current_version" yaml:"current_version"`
	Actor          string    `json:"actor,omitempty" yaml:"actor,omitempty"`
	Time           time.Time `json:"time" yaml:"time"`
	YAML           string    `json:"intent" yaml:"intent"`
}

// Rule is a gray rule of the intent in force, as 'get --rules' lists it.
type Rule struct {
	Name     string  `json:"name" yaml:"name"`
	Tier     string  `json:"tier" yaml:"tier"`
	Match    string  `json:"match" yaml:"match"`
	Pool     string  `json:"pool" yaml:"pool"`
	Percent  float64 `json:"percent" yaml:"percent"`
	Priority int32   `json:"priority" yaml:"priority"`
}

// GatewayStatus is the state of one gateway.
type GatewayStatus struct {
	Name          string    `json:"name" yaml:"name"`
	Address       string    `json:"address" yaml:"address"`
	Connected     bool      `json:"connected" yaml:"connected"`
	Primary       bool      `json:"primary" yaml:"primary"`
	Version       uint64    `json:"version" yaml:"version"`
	InSync        bool      `json:"in_sync" yaml:"in_sync"`
	Entries       uint64    `json:"entries" yaml:"entries"`
	LastReconcile time.Time `json:"last_reconcile" yaml:"last_reconcile"`
	LastResult    string    `json:"last_result,omitempty" yaml:"last_result,omitempty"`
	LastError     string    `json:"last_error,omitempty" yaml:"last_error,omitempty"`
}

// State is "primary", "standby" (connected, another controller is primary) or
// "disconnected".
func (g GatewayStatus) State() string {
	switch {
	case !g.Connected:
		return "disconnected"
	case g.Primary:
		return "primary"
	}
	return "standby"
}

// VNIStatus is where a VNI's traffic goes.
type VNIStatus struct {
	VNI    uint32 `json:"vni" yaml:"vni"`
	Tenant string `json:"tenant,omitempty" yaml:"tenant,omitempty"`
	// State is base, partly-gray or fully-gray, over every VIP (fully-gray
	// only when fully gray for each).
	State string `json:"state" yaml:"state"`
	// VIPs are the VNI's states per VIP.
	VIPs []VIPState `json:"vips,omitempty" yaml:"vips,omitempty"`
	// GrayVMs are the VMs moved one by one (over every VIP).
	GrayVMs []string `json:"gray_vms,omitempty" yaml:"gray_vms,omitempty"`
	// Rules are the gray rules that apply to the VNI.
	Rules []string `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Mirrors are the VNI's mirrors: "RULE->POOL" and " 1/N" when sampled.
	Mirrors []string `json:"mirrors,omitempty" yaml:"mirrors,omitempty"`
}

// VIPState is a VNI's gray state for one VIP.
type VIPState struct {
	VIP   string `json:"vip" yaml:"vip"`
	State string `json:"state" yaml:"state"`
}

// Status is the controller's state.
type Status struct {
	IntentVersion uint64          `json:"intent_version" yaml:"intent_version"`
	Draining      bool            `json:"draining,omitempty" yaml:"draining,omitempty"`
	Gateways      []GatewayStatus `json:"gateways" yaml:"gateways"`
	VNIs          []VNIStatus     `json:"vnis" yaml:"vnis"`
	// Rollout is the current (or last) rollout, when there is one.
	Rollout *RolloutSummary `json:"rollout,omitempty" yaml:"rollout,omitempty"`
	// Replicas are the controller replicas (ha:), the leader first.
	Replicas []Replica `json:"replicas,omitempty" yaml:"replicas,omitempty"`
}

// Replica is one controller replica.
type Replica struct {
	ID      string `json:"id" yaml:"id"`
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	Leader  bool   `json:"leader" yaml:"leader"`
	Term    uint64 `json:"term,omitempty" yaml:"term,omitempty"`
}

// RolloutSummary is a rollout in one line ('graygw rollout status' has it all).
type RolloutSummary struct {
	Name    string `json:"name" yaml:"name"`
	State   string `json:"state" yaml:"state"`
	Step    int    `json:"step" yaml:"step"`
	Total   int    `json:"total" yaml:"total"`
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
}

// CounterRow is one counter of one gateway.
type CounterRow struct {
	Gateway string `json:"gateway" yaml:"gateway"`
	Kind    string `json:"kind" yaml:"kind"` // rule, vip, pool, backend, drop, foreign, mirror, mirror-backend
	Name    string `json:"name" yaml:"name"`
	Packets uint64 `json:"packets" yaml:"packets"`
	Bytes   uint64 `json:"bytes" yaml:"bytes"`
}

// Counters are the dataplane counters.
type Counters struct {
	Rows []CounterRow `json:"counters" yaml:"counters"`
	// Errors name the gateways whose counters could not be read, and why.
	Errors []string `json:"errors,omitempty" yaml:"errors,omitempty"`
}

// Event is one committed change.
type Event struct {
	Seq       uint64    `json:"seq" yaml:"seq"`
	Time      time.Time `json:"time" yaml:"time"`
	Actor     string    `json:"actor" yaml:"actor"`
	Operation string    `json:"operation" yaml:"operation"`
	Summary   string    `json:"summary" yaml:"summary"`
	Before    uint64    `json:"before" yaml:"before"`
	After     uint64    `json:"after" yaml:"after"`
	Undoes    uint64    `json:"undoes,omitempty" yaml:"undoes,omitempty"`
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address         string `json:"address" yaml:"address"`
	ASN             uint32 `json:"asn" yaml:"asn"`
	State           string `json:"state" yaml:"state"`
	Uptime          string `json:"uptime,omitempty" yaml:"uptime,omitempty"`
	Received        int    `json:"received" yaml:"received"`
	Advertised      int    `json:"advertised" yaml:"advertised"`
	GracefulRestart bool   `json:"graceful_restart" yaml:"graceful_restart"`
}

// BGPRoute is one VIP through one gateway and whether it is announced, with
// the reasons when not (p4runtime-disconnected, health-check-failed, drained,
// no-healthy-backend) and the details in words.
type BGPRoute struct {
	VIP         string    `json:"vip,omitempty" yaml:"vip,omitempty"` // the VIP's name in the intent
	Prefix      string    `json:"prefix" yaml:"prefix"`
	NextHop     string    `json:"next_hop" yaml:"next_hop"`
	Gateway     string    `json:"gateway,omitempty" yaml:"gateway,omitempty"`
	Announced   bool      `json:"announced" yaml:"announced"`
	Reason      string    `json:"reason,omitempty" yaml:"reason,omitempty"`
	Detail      string    `json:"detail,omitempty" yaml:"detail,omitempty"`
	Since       time.Time `json:"since,omitzero" yaml:"since,omitempty"`
	Communities []string  `json:"communities,omitempty" yaml:"communities,omitempty"`
	MED         *uint32   `json:"med,omitempty" yaml:"med,omitempty"`
	LocalPref   *uint32   `json:"local_pref,omitempty" yaml:"local_pref,omitempty"`
}

// BGPGateway is what the announce decision knows about one gateway.
type BGPGateway struct {
	Name        string    `json:"name" yaml:"name"`
	NextHop     string    `json:"next_hop" yaml:"next_hop"`
	Connected   bool      `json:"p4runtime_connected" yaml:"p4runtime_connected"`
	Healthy     bool      `json:"healthy" yaml:"healthy"`
	Drained     bool      `json:"drained" yaml:"drained"`
	DrainedBy   string    `json:"drained_by,omitempty" yaml:"drained_by,omitempty"`
	DrainedAt   time.Time `json:"drained_at,omitzero" yaml:"drained_at,omitempty"`
	DrainReason string    `json:"drain_reason,omitempty" yaml:"drain_reason,omitempty"`
	Detail      string    `json:"detail,omitempty" yaml:"detail,omitempty"`
}

// BGPStatus is the BGP speaker's state.
type BGPStatus struct {
	ASN         uint32       `json:"asn,omitempty" yaml:"asn,omitempty"`
	RouterID    string       `json:"router_id,omitempty" yaml:"router_id,omitempty"`
	HealthCheck string       `json:"health_check,omitempty" yaml:"health_check,omitempty"`
	Error       string       `json:"error,omitempty" yaml:"error,omitempty"`
	Peers       []BGPPeer    `json:"peers" yaml:"peers"`
	Gateways    []BGPGateway `json:"gateways,omitempty" yaml:"gateways,omitempty"`
	Routes      []BGPRoute   `json:"routes" yaml:"routes"`
}

// DrainResult is the answer to drain and undrain.
type DrainResult struct {
	Gateway string `json:"gateway" yaml:"gateway"`
	Drained bool   `json:"drained" yaml:"drained"`
	// Changed is false when the gateway already was in that state.
	Changed bool       `json:"changed" yaml:"changed"`
	BGP     *BGPStatus `json:"bgp" yaml:"bgp"`
}

// precheckError is a rollout start refused by its precheck: the probes before
// any change did not all pass.
type precheckError struct {
	msg     string
	results []probe.Result
}

func (e *precheckError) Error() string { return e.msg }
func (e *precheckError) Unwrap() error { return errProbeFailed }

// dialOptions say how to reach the controller.
type dialOptions struct {
	Address string // unix:///path, or host:port (tcp, mTLS)
	TLSCert string
	TLSKey  string
	TLSCA   string
	Timeout time.Duration
}

// target parses Address into a network and an address.
func (o dialOptions) target() (network, addr string, err error) {
	switch {
	case strings.HasPrefix(o.Address, "unix://"):
		p := strings.TrimPrefix(o.Address, "unix://")
		if p == "" || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("--controller %q: want unix:///absolute/path", o.Address)
		}
		return "unix", p, nil
	case strings.HasPrefix(o.Address, "/"):
		return "unix", o.Address, nil
	}
	a := strings.TrimPrefix(o.Address, "tcp://")
	if _, err := netip.ParseAddrPort(a); err != nil && !strings.Contains(a, ":") {
		return "", "", fmt.Errorf("--controller %q: want unix:///path or host:port", o.Address)
	}
	if o.TLSCert == "" || o.TLSKey == "" || o.TLSCA == "" {
		return "", "", fmt.Errorf("--controller %s is tcp: give --tls-cert, --tls-key and --tls-ca (the controller requires mutual TLS off the unix socket)", a)
	}
	return "tcp", a, nil
}

// dial returns the gRPC client of the controller's API for o.
func dial(o dialOptions) (Client, error) { return dialAPI(o) }
