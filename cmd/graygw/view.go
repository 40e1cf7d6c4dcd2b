package main

// The CLI's output: the views -o json|yaml prints (docs/cli.md documents
// their fields; operators' scripts parse them) and their conversions from the
// API's answers, all in this file. Rollouts and probes print the controller's
// own types (rollout.Progress, probe.Result), converted by api/convert.

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

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
	// Health is what the replica last reported about itself; nil when it
	// has not.
	Health *ReplicaHealth `json:"health,omitempty" yaml:"health,omitempty"`
}

// ReplicaHealth is a replica's own view of its health (docs/ha.md).
type ReplicaHealth struct {
	Reported   time.Time `json:"reported" yaml:"reported"`
	Standby    string    `json:"standby,omitempty" yaml:"standby,omitempty"`
	APIServing bool      `json:"api_serving" yaml:"api_serving"`
	APIError   string    `json:"api_error,omitempty" yaml:"api_error,omitempty"`
	// StoreLatency is a Go duration ("1.2ms").
	StoreLatency   string `json:"store_latency" yaml:"store_latency"`
	StoreError     string `json:"store_error,omitempty" yaml:"store_error,omitempty"`
	Version        uint64 `json:"version" yaml:"version"`
	StoreVersion   uint64 `json:"store_version" yaml:"store_version"`
	Gateways       int    `json:"gateways" yaml:"gateways"`
	StreamsUp      int    `json:"streams_up" yaml:"streams_up"`
	StreamsPrimary int    `json:"streams_primary" yaml:"streams_primary"`
	StreamsStandby int    `json:"streams_standby" yaml:"streams_standby"`
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
	// Record marks an entry that made no intent version (a drain, a health
	// failover, a rollout's decision); Reason says why.
	Record bool   `json:"record,omitempty" yaml:"record,omitempty"`
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// versions is the VERSIONS column: "3->4" for a change, "@4" for a record
// (made while version 4 was in force).
func (e Event) versions() string {
	if e.Record {
		return fmt.Sprintf("@%d", e.After)
	}
	return fmt.Sprintf("%d->%d", e.Before, e.After)
}

// text is the SUMMARY column: the summary, and the reason when there is one.
func (e Event) text() string {
	if e.Reason == "" {
		return e.Summary
	}
	return e.Summary + " (reason: " + e.Reason + ")"
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

// changeSetOf is a change's result (dry: a dry run) with the rules it names;
// a refused change is an error listing its problems (exit 3).
func changeSetOf(r *graygwv1.ChangeResult, dry bool, rules ...string) (*ChangeSet, error) {
	if len(r.GetProblems()) > 0 {
		return nil, problemsErr(r.GetProblems())
	}
	return &ChangeSet{DryRun: dry, Applied: r.GetApplied(), Unchanged: r.GetUnchanged(), Version: r.GetVersion(),
		Summary: r.GetSummary(), Rules: rules, Plans: plansOf(r.GetPlans()), WaitError: r.GetWaitError()}, nil
}

// diffOf is a diff's answer: always a dry run.
func diffOf(r *graygwv1.DiffResponse) (*ChangeSet, error) {
	if len(r.GetProblems()) > 0 {
		return nil, problemsErr(r.GetProblems())
	}
	return &ChangeSet{DryRun: true, Version: r.GetBaseVersion(), Summary: r.GetSummary(), Plans: plansOf(r.GetPlans())}, nil
}

func plansOf(ps []*graygwv1.GatewayPlan) []GatewayPlan {
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

func intentDocOf(r *graygwv1.GetResponse) *IntentDoc {
	return &IntentDoc{Version: r.GetVersion(), CurrentVersion: r.GetCurrentVersion(), Actor: r.GetActor(),
		Time: r.GetTime().AsTime(), YAML: r.GetIntentYaml()}
}

var grayStates = map[graygwv1.GrayState]string{graygwv1.GrayState_BASE: "base", graygwv1.GrayState_PARTLY_GRAY: "partly-gray", graygwv1.GrayState_FULLY_GRAY: "fully-gray"}

// statusOf is the controller's status; a VNI's gray VMs, rules and mirrors
// are gathered over its VIPs.
func statusOf(r *graygwv1.StatusResponse) *Status {
	st := &Status{IntentVersion: r.GetVersion(), Draining: r.GetDraining(), Gateways: []GatewayStatus{}, VNIs: []VNIStatus{}}
	for _, rp := range r.GetReplicas() {
		r := Replica{ID: rp.GetId(), Address: rp.GetAddress(), Leader: rp.GetLeader(), Term: rp.GetTerm()}
		if h := rp.GetHealth(); h != nil {
			r.Health = &ReplicaHealth{Reported: timeOf(h.GetReported()), Standby: h.GetStandby(), APIServing: h.GetApiServing(),
				APIError: h.GetApiError(), StoreLatency: h.GetStoreLatency().AsDuration().String(), StoreError: h.GetStoreError(),
				Version: h.GetVersion(), StoreVersion: h.GetStoreVersion(), Gateways: int(h.GetGateways()), StreamsUp: int(h.GetStreamsUp()),
				StreamsPrimary: int(h.GetStreamsPrimary()), StreamsStandby: int(h.GetStreamsStandby())}
		}
		st.Replicas = append(st.Replicas, r)
	}
	for _, gw := range r.GetGateways() {
		st.Gateways = append(st.Gateways, GatewayStatus{Name: gw.GetName(), Address: gw.GetAddress(), Connected: gw.GetConnected(), Primary: gw.GetPrimary(),
			Version: gw.GetVersion(), InSync: gw.GetInSync(), Entries: gw.GetEntries(), LastReconcile: timeOf(gw.GetLastReconcile()),
			LastResult: gw.GetLastResult(), LastError: gw.GetLastError()})
	}
	for _, v := range r.GetVnis() {
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
				if seen["rule "+sel.GetRule()] {
					continue
				}
				seen["rule "+sel.GetRule()] = true
				vs.Rules = append(vs.Rules, sel.GetRule())
				if mp := sel.GetMirrorPool(); mp != "" {
					m := sel.GetRule() + "->" + mp
					if n := sel.GetMirrorRate(); n > 1 {
						m += fmt.Sprintf(" 1/%d", n)
					}
					vs.Mirrors = append(vs.Mirrors, m)
				}
			}
		}
		st.VNIs = append(st.VNIs, vs)
	}
	return st
}

// rolloutSummaryOf is a rollout in status's one line.
func rolloutSummaryOf(p *rollout.Progress) *RolloutSummary {
	return &RolloutSummary{Name: p.Plan.Name, State: string(p.State), Step: p.Step, Total: p.Total, Message: p.Message}
}

// countersOf flattens the counters into rows by kind; a gateway whose
// counters could not be read is listed in Errors.
func countersOf(r *graygwv1.CountersResponse) *Counters {
	cs := &Counters{Rows: []CounterRow{}}
	for _, gc := range r.GetGateways() {
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
	return cs
}

func eventsOf(r *graygwv1.HistoryResponse) []Event {
	evs := []Event{}
	for _, e := range r.GetEvents() {
		evs = append(evs, Event{Seq: e.GetSeq(), Time: e.GetTime().AsTime(), Actor: e.GetActor(), Operation: e.GetOperation(),
			Summary: e.GetSummary(), Before: e.GetBefore(), After: e.GetAfter(), Undoes: e.GetUndoes(),
			Record: e.GetRecord(), Reason: e.GetReason()})
	}
	return evs
}

// bgpStatusOf is the BGP status with the announced and withdrawn paths as
// one list of routes, by prefix and next hop.
func bgpStatusOf(r *graygwv1.BGPStatusResponse) *BGPStatus {
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
		st.Gateways = append(st.Gateways, BGPGateway{Name: gw.GetName(), NextHop: gw.GetNextHop(), Connected: gw.GetP4RuntimeConnected(), Healthy: gw.GetHealthy(),
			Drained: gw.GetDrained(), DrainedBy: gw.GetDrainedBy(), DrainedAt: timeOf(gw.GetDrainedAt()), DrainReason: gw.GetDrainReason(), Detail: gw.GetDetail()})
	}
	route := func(p *graygwv1.BGPPath, announced bool) BGPRoute {
		return BGPRoute{VIP: p.GetVipName(), Prefix: hostRoute(p.GetVip()), NextHop: p.GetNextHop(), Gateway: p.GetGateway(),
			Announced: announced, Reason: strings.Join(p.GetReasons(), ","), Detail: p.GetDetail(), Since: timeOf(p.GetSince()),
			Communities: p.GetCommunities(), MED: p.Med, LocalPref: p.LocalPref}
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

// timeOf is a timestamp the API may leave out (zero then).
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// precheckError is a rollout start refused by its precheck: the probes before
// any change did not all pass.
type precheckError struct {
	msg     string
	results []probe.Result
}

func (e *precheckError) Error() string { return e.msg }
func (e *precheckError) Unwrap() error { return errProbeFailed }

// progressOf is a rollout answer's progress, or the error of a refused start
// (exit 3) or a failed precheck (exit 4).
func progressOf(r *graygwv1.RolloutResponse) (*rollout.Progress, error) {
	if len(r.GetProblems()) > 0 {
		return nil, problemsErr(r.GetProblems())
	}
	if r.GetPrecheckFailed() != "" {
		return nil, &precheckError{msg: r.GetPrecheckFailed(), results: convert.ProbeResultsFrom(r.GetPrecheck())}
	}
	if r.GetProgress() == nil {
		return nil, errors.New("the controller answered without a progress")
	}
	return convert.ProgressFrom(r.GetProgress())
}

// hostRoute is the route a VIP is announced as: a /32, or a /128 for an
// IPv6 VIP.
func hostRoute(vip string) string {
	a, err := netip.ParseAddr(vip)
	if err != nil {
		return vip + "/32"
	}
	return netip.PrefixFrom(a, a.BitLen()).String()
}
