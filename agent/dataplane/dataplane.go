// Package dataplane is the small interface the graygw P4Runtime agent programs:
// one typed method per table operation and counter read of the pipeline contract
// (docs/pipeline.md), with no P4Runtime in it. Two implementations exist:
// Memory (here), a reference implementation over the Go model that tests drive with
// frames, and the XDP adapter in package agent/xdp over the bpf loader.
//
// Every method changes one entry as one value: an implementation must make each
// call atomic for packets (a packet sees the entry before or after the call, never
// half of it). The agent never calls two methods concurrently.
package dataplane

import (
	"errors"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Sentinel errors. Implementations wrap one of them so the agent can map them to
// P4Runtime codes.
var (
	// ErrExists: InsertRule of a rule with the same match and priority.
	ErrExists = errors.New("dataplane: entry already exists")
	// ErrNotFound: the entry to modify, delete or read does not exist.
	ErrNotFound = errors.New("dataplane: entry not found")
	// ErrFull: the table, or a target-specific structure, has no room (XDP:
	// the tuple-space mask list, 64 masks; the backend_select slots, 64 pools
	// owning buckets at once). P4Runtime RESOURCE_EXHAUSTED.
	ErrFull = errors.New("dataplane: table full")
	// ErrOutOfRange: a value the P4Info allows but this target cannot represent
	// (e.g. a backend_select bucket >= 4096 on XDP, where the P4Info field is
	// 16 bits wide). P4Runtime OUT_OF_RANGE.
	ErrOutOfRange = errors.New("dataplane: value beyond the target's range")
	// ErrUnimplemented: a feature of the pipeline contract this target does
	// not have yet (XDP: set_pool_mirror, docs/xdp.md). P4Runtime
	// UNIMPLEMENTED.
	ErrUnimplemented = errors.New("dataplane: not implemented on this target")
)

// Counter is a packets and bytes pair: the model's.
type Counter = model.Counter

// Dataplane is what the agent needs from a target. The Set methods insert or
// replace; replacing keeps the entry's direct counter, inserting starts it at zero.
// IPv4 addresses are numbers (10.0.0.1 = 0x0a000001), IPv6 ones their 16
// bytes in network order.
type Dataplane interface {
	// SetVIP inserts or replaces the vip entry of addr (set_vip).
	SetVIP(addr uint32, v model.VIP) error
	// DeleteVIP deletes the vip entry of addr.
	DeleteVIP(addr uint32) error
	// SetVIPV6 inserts or replaces the vip_v6 entry of addr (set_vip_v6).
	SetVIPV6(addr [16]byte, v model.VIP) error
	// DeleteVIPV6 deletes the vip_v6 entry of addr.
	DeleteVIPV6(addr [16]byte) error

	// SetTenant inserts or replaces the vni_tenant entry of vni (24 bits).
	SetTenant(vni uint32, tenant uint16) error
	// DeleteTenant deletes the vni_tenant entry of vni.
	DeleteTenant(vni uint32) error

	// InsertRule adds a gray rule; its identity is model.RuleID(r). ErrExists if present.
	InsertRule(r model.GrayRule) error
	// ModifyRule replaces the action of the rule with identity model.RuleID(r).
	ModifyRule(r model.GrayRule) error
	// DeleteRule removes the rule with identity model.RuleID(r).
	DeleteRule(r model.GrayRule) error
	// InsertRuleV6 adds a gray_rules_v6 rule; its identity is
	// model.RuleIDV6(r). ErrExists if present.
	InsertRuleV6(r model.GrayRuleV6) error
	// ModifyRuleV6 replaces the action of the gray_rules_v6 rule with
	// identity model.RuleIDV6(r).
	ModifyRuleV6(r model.GrayRuleV6) error
	// DeleteRuleV6 removes the gray_rules_v6 rule with identity model.RuleIDV6(r).
	DeleteRuleV6(r model.GrayRuleV6) error

	// SetPoolHash inserts or replaces the pool_hash entry of pool (set_hash_mask).
	SetPoolHash(pool uint16, mask pipeline.FlowKey) error
	// DeletePoolHash deletes the pool_hash entry of pool.
	DeletePoolHash(pool uint16) error

	// SetBucket points a backend_select cell at a backend.
	SetBucket(pool, bucket, backend uint16) error
	// SetBuckets sets buckets first, first+1, ... of pool; each bucket is its own
	// atomic change.
	SetBuckets(pool, first uint16, backends []uint16) error
	// DeleteBucket empties a backend_select cell.
	DeleteBucket(pool, bucket uint16) error

	// SetBackendEntry inserts or replaces the entry of table backend for
	// id (action to_backend, or to_backend_v6 when b.IPv6). The P4 action
	// set_backend, of backend_select, is SetBucket's.
	SetBackendEntry(id uint16, b model.Backend) error
	// DeleteBackendEntry deletes backend id.
	DeleteBackendEntry(id uint16) error

	// SetVLANAccept inserts the vlan_accept entry (port, vid): the port
	// accepts tagged frames of vid (802.1Q, docs/pipeline.md §1).
	SetVLANAccept(port, vid uint16) error
	// DeleteVLANAccept deletes the vlan_accept entry (port, vid).
	DeleteVLANAccept(port, vid uint16) error
	// SetPortVLAN inserts or replaces port's port_vlan entry: its frames
	// leave tagged with vid (docs/pipeline.md §8).
	SetPortVLAN(port, vid uint16) error
	// DeletePortVLAN deletes port's port_vlan entry: it sends untagged.
	DeletePortVLAN(port uint16) error

	// DropCounters reads the drop_reasons counter, indexed by pipeline.Reason.
	DropCounters() ([pipeline.NumReasons]Counter, error)
	// VIPCounter reads the direct counter of addr's vip entry.
	VIPCounter(addr uint32) (Counter, error)
	// RuleCounter reads the direct counter of the rule with identity model.RuleID(r).
	RuleCounter(r model.GrayRule) (Counter, error)
	// BackendCounter reads the direct counter of backend id.
	BackendCounter(id uint16) (Counter, error)
	// VIPCounterV6 reads the direct counter of addr's vip_v6 entry.
	VIPCounterV6(addr [16]byte) (Counter, error)
	// RuleCounterV6 reads the direct counter of the gray_rules_v6 rule with
	// identity model.RuleIDV6(r).
	RuleCounterV6(r model.GrayRuleV6) (Counter, error)
}

// Table names a table of the pipeline, for Listing.
type Table uint16

// The tables, in pipeline order.
const (
	VIP Table = 1 << iota
	VNITenant
	GrayRules
	PoolHash
	BackendSelect
	Backend
	VLANAccept
	PortVLAN
	VIPV6
	GrayRulesV6

	AllTables = VIP | VNITenant | GrayRules | PoolHash | BackendSelect | Backend | VLANAccept | PortVLAN | VIPV6 | GrayRulesV6
)

// Listing is what a Lister could read back.
type Listing struct {
	// State holds the entries of the tables in Complete; the others are empty.
	State *model.State
	// Complete says which tables were listed in full.
	Complete Table
}

// Lister is implemented by dataplanes that can list their entries. The agent uses
// it after a restart to remove entries its journal does not account for.
type Lister interface {
	List() (Listing, error)
}

// MirrorCounters is implemented by dataplanes that mirror (docs/pipeline.md
// §10): the indexed counters mirror_counter and mirror_backend_counter.
type MirrorCounters interface {
	// MirrorCounter reads the copies made by the rules naming mirror id
	// (ErrOutOfRange for id >= pipeline.MirrorIDs).
	MirrorCounter(id uint16) (Counter, error)
	// MirrorBackendCounter reads the copies sent to backend id (ErrNotFound
	// when there is no such backend: its cell reads 0).
	MirrorBackendCounter(id uint16) (Counter, error)
}

// CounterWriter is implemented by dataplanes whose counters can be set
// (P4Runtime CounterEntry / DirectCounterEntry MODIFY).
type CounterWriter interface {
	// SetDropCounter sets one drop_reasons cell.
	SetDropCounter(reason pipeline.Reason, c Counter) error
	// SetVIPCounter sets the direct counter of addr's vip entry.
	SetVIPCounter(addr uint32, c Counter) error
	// SetRuleCounter sets the direct counter of the rule with identity model.RuleID(r).
	SetRuleCounter(r model.GrayRule, c Counter) error
	// SetBackendCounter sets the direct counter of backend id.
	SetBackendCounter(id uint16, c Counter) error
	// SetVIPCounterV6 sets the direct counter of addr's vip_v6 entry.
	SetVIPCounterV6(addr [16]byte, c Counter) error
	// SetRuleCounterV6 sets the direct counter of the gray_rules_v6 rule
	// with identity model.RuleIDV6(r).
	SetRuleCounterV6(r model.GrayRuleV6, c Counter) error
}
