package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

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
	// errNotWired: this build has no client for the controller's API yet.
	errNotWired = errors.New("this graygw build cannot talk to the controller yet: its API (api/graygw/v1) has not landed; only --offline checks work")
)

// Client is what the CLI needs from the controller. The gRPC implementation
// (api/graygw/v1 over the unix socket, or tcp with mTLS) plugs in here; tests use
// a fake. Errors wrap errRefused for refused changes (InvalidArgument,
// FailedPrecondition) and errProbeFailed for failed probes.
type Client interface {
	// Apply replaces the intent with doc (YAML), or with dry only computes the
	// changes it would make.
	Apply(ctx context.Context, doc []byte, dry bool) (*ChangeSet, error)
	// Diff computes the changes doc would make to what the gateways hold.
	Diff(ctx context.Context, doc []byte) (*ChangeSet, error)
	// Get returns the intent in force.
	Get(ctx context.Context) (*IntentDoc, error)
	// Rules lists the gray rules in force, cutovers included.
	Rules(ctx context.Context) ([]Rule, error)
	// Cutover adds a gray rule moving scope to pool (dry: checks only).
	Cutover(ctx context.Context, scope rollout.Scope, pool string, dry bool) (*ChangeSet, error)
	// Rollback removes the cutover rule named rule, or every cutover with all.
	Rollback(ctx context.Context, rule string, all, dry bool) (*ChangeSet, error)
	// Status reports the gateways and the controller.
	Status(ctx context.Context) (*Status, error)
	// Counters reads the dataplane counters of every gateway.
	Counters(ctx context.Context) (*Counters, error)
	// BGP reports the BGP speaker's peers and announcements.
	BGP(ctx context.Context) (*BGPStatus, error)
	// RolloutStart starts a rollout of the plan (YAML); dry checks it only.
	RolloutStart(ctx context.Context, plan []byte, dry bool) (*rollout.Progress, error)
	// RolloutStatus, RolloutPause, RolloutResume and RolloutAbort act on the
	// current rollout.
	RolloutStatus(ctx context.Context) (*rollout.Progress, error)
	RolloutPause(ctx context.Context) (*rollout.Progress, error)
	RolloutResume(ctx context.Context) (*rollout.Progress, error)
	RolloutAbort(ctx context.Context) (*rollout.Progress, error)
	// RolloutWatch calls fn with every progress update until the rollout
	// stops (finished or paused), fn returns an error, or ctx ends.
	RolloutWatch(ctx context.Context, fn func(*rollout.Progress) error) error
	// Probe probes targets through the gateway; targets without an
	// expectation get the one the controller's tables give.
	Probe(ctx context.Context, targets []probe.Target, opts probe.Options) ([]probe.Result, error)
	// Close releases the connection.
	Close() error
}

// ChangeSet is what a change did or would do.
type ChangeSet struct {
	// DryRun says nothing was applied.
	DryRun bool `json:"dry_run" yaml:"dry_run"`
	// Version is the intent version the change committed (0 for a dry run).
	Version uint64 `json:"version,omitempty" yaml:"version,omitempty"`
	// Rules are the rules the change added or removed (cutover, rollback).
	Rules   []string      `json:"rules,omitempty" yaml:"rules,omitempty"`
	Changes []EntryChange `json:"changes" yaml:"changes"`
}

// EntryChange is one table entry written, modified or deleted.
type EntryChange struct {
	Gateway string `json:"gateway,omitempty" yaml:"gateway,omitempty"`
	Op      string `json:"op" yaml:"op"` // insert, modify, delete
	Table   string `json:"table" yaml:"table"`
	Entry   string `json:"entry" yaml:"entry"`
	Origin  string `json:"origin,omitempty" yaml:"origin,omitempty"`
}

// IntentDoc is one stored version of the intent.
type IntentDoc struct {
	Version uint64    `json:"version" yaml:"version"`
	Actor   string    `json:"actor,omitempty" yaml:"actor,omitempty"`
	Time    time.Time `json:"time" yaml:"time"`
	YAML    string    `json:"intent" yaml:"intent"`
}

// Rule is a gray rule in force.
type Rule struct {
	Name     string  `json:"name" yaml:"name"`
	Match    string  `json:"match" yaml:"match"`
	Pool     string  `json:"pool" yaml:"pool"`
	Percent  float64 `json:"percent" yaml:"percent"`
	Priority int32   `json:"priority" yaml:"priority"`
	// Cutover says the rule was added by a cutover (or a rollout), not by the
	// intent document.
	Cutover bool `json:"cutover" yaml:"cutover"`
}

// GatewayStatus is the state of one gateway.
type GatewayStatus struct {
	Name          string    `json:"name" yaml:"name"`
	Address       string    `json:"address" yaml:"address"`
	State         string    `json:"state" yaml:"state"` // e.g. primary, standby, disconnected
	Entries       int       `json:"entries" yaml:"entries"`
	InSync        bool      `json:"in_sync" yaml:"in_sync"`
	LastReconcile time.Time `json:"last_reconcile" yaml:"last_reconcile"`
	Error         string    `json:"error,omitempty" yaml:"error,omitempty"`
}

// Status is the controller's state.
type Status struct {
	IntentVersion uint64          `json:"intent_version" yaml:"intent_version"`
	Gateways      []GatewayStatus `json:"gateways" yaml:"gateways"`
	// Rollout summarises the current rollout ("" when none).
	Rollout string `json:"rollout,omitempty" yaml:"rollout,omitempty"`
}

// CounterRow is one counter of one gateway.
type CounterRow struct {
	Gateway string `json:"gateway" yaml:"gateway"`
	Kind    string `json:"kind" yaml:"kind"` // vip, rule, backend, drop
	Name    string `json:"name" yaml:"name"`
	Packets uint64 `json:"packets" yaml:"packets"`
	Bytes   uint64 `json:"bytes" yaml:"bytes"`
}

// Counters are the dataplane counters.
type Counters struct {
	Rows []CounterRow `json:"counters" yaml:"counters"`
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address    string `json:"address" yaml:"address"`
	ASN        uint32 `json:"asn" yaml:"asn"`
	State      string `json:"state" yaml:"state"`
	Uptime     string `json:"uptime,omitempty" yaml:"uptime,omitempty"`
	Received   int    `json:"received" yaml:"received"`
	Advertised int    `json:"advertised" yaml:"advertised"`
}

// BGPRoute is one VIP and whether it is announced, with the reason when not
// (MetalLB-style: "gateway unhealthy", "drained"...).
type BGPRoute struct {
	Prefix    string `json:"prefix" yaml:"prefix"`
	NextHop   string `json:"next_hop" yaml:"next_hop"`
	Announced bool   `json:"announced" yaml:"announced"`
	Reason    string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// BGPStatus is the BGP speaker's state.
type BGPStatus struct {
	Peers  []BGPPeer  `json:"peers" yaml:"peers"`
	Routes []BGPRoute `json:"routes" yaml:"routes"`
}

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

// dial returns the client for o. Until api/graygw/v1 lands it checks the
// options and returns a client whose every call fails with errNotWired.
func dial(o dialOptions) (Client, error) {
	if _, _, err := o.target(); err != nil {
		return nil, usageErr(err)
	}
	return notWired{addr: o.Address}, nil
}

// notWired is the client of a build without the controller API.
type notWired struct{ addr string }

func (n notWired) err() error { return fmt.Errorf("controller %s: %w", n.addr, errNotWired) }

func (n notWired) Apply(context.Context, []byte, bool) (*ChangeSet, error) { return nil, n.err() }
func (n notWired) Diff(context.Context, []byte) (*ChangeSet, error)        { return nil, n.err() }
func (n notWired) Get(context.Context) (*IntentDoc, error)                 { return nil, n.err() }
func (n notWired) Rules(context.Context) ([]Rule, error)                   { return nil, n.err() }
func (n notWired) Cutover(context.Context, rollout.Scope, string, bool) (*ChangeSet, error) {
	return nil, n.err()
}
func (n notWired) Rollback(context.Context, string, bool, bool) (*ChangeSet, error) {
	return nil, n.err()
}
func (n notWired) Status(context.Context) (*Status, error)     { return nil, n.err() }
func (n notWired) Counters(context.Context) (*Counters, error) { return nil, n.err() }
func (n notWired) BGP(context.Context) (*BGPStatus, error)     { return nil, n.err() }
func (n notWired) RolloutStart(context.Context, []byte, bool) (*rollout.Progress, error) {
	return nil, n.err()
}
func (n notWired) RolloutStatus(context.Context) (*rollout.Progress, error) { return nil, n.err() }
func (n notWired) RolloutPause(context.Context) (*rollout.Progress, error)  { return nil, n.err() }
func (n notWired) RolloutResume(context.Context) (*rollout.Progress, error) { return nil, n.err() }
func (n notWired) RolloutAbort(context.Context) (*rollout.Progress, error)  { return nil, n.err() }
func (n notWired) RolloutWatch(context.Context, func(*rollout.Progress) error) error {
	return n.err()
}
func (n notWired) Probe(context.Context, []probe.Target, probe.Options) ([]probe.Result, error) {
	return nil, n.err()
}
func (n notWired) Close() error { return nil }
