// Package store persists the controller's desired state and its history: every
// version of the intent document (YAML text, as the operator wrote it), an
// append-only log of who changed what and when, and small key/value records for
// other controller components (rollout progress, the engine's pool tables).
//
// Store is an interface so that a replicated backend (etcd) can replace the
// embedded one when several controller replicas run; Commit is a
// compare-and-swap on the current version for that reason. Two implementations
// live here: Bolt, a single bbolt file (the default), and Memory, for tests and
// dry runs.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no intent has been stored yet, or the requested version, key or
	// namespace does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: Commit's Base is not the current version (another change was
	// committed in between). Re-read, re-validate and retry.
	ErrConflict = errors.New("store: version conflict")
	// ErrInvalid: a Change or key that cannot be stored (empty actor, operation or
	// namespace...).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrLocked: the store file is held by another process (another controller).
	ErrLocked = errors.New("store: locked by another process")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable: a replicated store did not answer in time (members down,
	// no quorum, no leader). Nothing was written; retrying later may succeed.
	ErrUnavailable = errors.New("store: unavailable")
)

// Version is one stored version of the intent.
type Version struct {
	// Number counts versions from 1; 0 means "no intent".
	Number uint64 `json:"number"`
	// Intent is the intent document as submitted (YAML text).
	Intent []byte `json:"-"`
	// Time is when the version was committed.
	Time time.Time `json:"time"`
	// Actor is who committed it.
	Actor string `json:"actor"`
}

// Change is a new intent version and the history event that explains it.
type Change struct {
	// Base is the version the change was computed from: Commit fails with
	// ErrConflict unless it is the current version (0 when nothing is stored).
	Base uint64
	// Intent is the new document. It must already be validated.
	Intent []byte
	// Actor is who makes the change (user name, certificate subject...). Required.
	Actor string
	// Operation is the kind of change: "apply", "cutover", "rollback"... Required.
	Operation string
	// Summary says what changed, in a line, for the history.
	Summary string
	// Undoes is the Seq of the event this change reverts (Operation "rollback"),
	// 0 otherwise.
	Undoes uint64
	// Time is the commit time; zero means now.
	Time time.Time
}

// Event is one entry of the history: a committed change.
type Event struct {
	// Seq numbers events from 1 in commit order.
	Seq uint64 `json:"seq"`
	// Time, Actor, Operation and Summary are copied from the Change.
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Operation string    `json:"operation"`
	Summary   string    `json:"summary"`
	// Before and After are the intent versions before and after the change
	// (Before is 0 for the first intent).
	Before uint64 `json:"before"`
	After  uint64 `json:"after"`
	// Undoes is the Seq of the event this one reverts, or 0.
	Undoes uint64 `json:"undoes,omitempty"`
	// Record marks an event that made no intent version (Store.Record): a
	// drain, a health failover, a rollout's decision. Before and After are
	// then both the version in force.
	Record bool `json:"record,omitempty"`
	// Reason says why, in words (records; empty when there is nothing to
	// add to the summary).
	Reason string `json:"reason,omitempty"`
}

// Record is a history entry that is not an intent version: an operator's
// action or a controller's decision the intent does not hold (a drain, a
// health failover, a rollout step's verdict), kept in the same history,
// numbered, exported and retained like the changes.
type Record struct {
	// Actor is who acted ("alice (uid=1000)", "health-failover",
	// "rollout r1 (started by alice)"). Required.
	Actor string
	// Operation is the kind of record ("drain", "failover-excluded",
	// "rollout-step-passed"...). Required.
	Operation string
	// Summary says what happened, in a line.
	Summary string
	// Reason says why.
	Reason string
	// Time is when it happened; zero means now.
	Time time.Time
}

// Query selects history events, newest first.
type Query struct {
	// Before, when non-zero, returns only events with Seq < Before (paging).
	Before uint64
	// Limit caps the number of events returned; 0 means all.
	Limit int
}

// KV is one key/value record of a namespace.
type KV struct {
	Key   string
	Value []byte
}

// Store persists intent versions, history and key/value records. Implementations
// are safe for concurrent use. Every method returns an error wrapping one of the
// Err* sentinels, or the context's error, when it fails.
type Store interface {
	// Current returns the latest intent version, or ErrNotFound when none was
	// ever committed.
	Current(ctx context.Context) (*Version, error)
	// Version returns intent version n.
	Version(ctx context.Context, n uint64) (*Version, error)
	// Commit stores c.Intent as the next version and appends its history event, as
	// one atomic step, provided c.Base is the current version (else ErrConflict).
	Commit(ctx context.Context, c Change) (*Version, *Event, error)
	// History returns events newest first.
	History(ctx context.Context, q Query) ([]Event, error)
	// Record appends r to the history as an event of its own (Event.Record),
	// numbered after the last event, Before and After the current version (0
	// when none); it makes no intent version and never conflicts with a
	// Commit.
	Record(ctx context.Context, r Record) (*Event, error)

	// Get returns the value of key in namespace ns (ErrNotFound when absent).
	Get(ctx context.Context, ns, key string) ([]byte, error)
	// Put stores value under key in namespace ns, creating the namespace.
	Put(ctx context.Context, ns, key string, value []byte) error
	// Delete removes key from ns; deleting an absent key is not an error.
	Delete(ctx context.Context, ns, key string) error
	// List returns the records of ns sorted by key (empty when ns does not exist).
	List(ctx context.Context, ns string) ([]KV, error)

	// Close releases the store.
	Close() error
}

// checkChange validates the fields every implementation requires.
func checkChange(c *Change) error {
	switch {
	case c.Actor == "":
		return errorf(ErrInvalid, "change without an actor")
	case c.Operation == "":
		return errorf(ErrInvalid, "change without an operation")
	case len(c.Intent) == 0:
		return errorf(ErrInvalid, "change with an empty intent")
	}
	return nil
}

// CheckRecord validates the fields every implementation requires of a Record.
func CheckRecord(r *Record) error {
	switch {
	case r.Actor == "":
		return errorf(ErrInvalid, "record without an actor")
	case r.Operation == "":
		return errorf(ErrInvalid, "record without an operation")
	}
	return nil
}

// RecordEvent is the event r makes as event seq while version cur is in
// force; r.Time zero is now.
func RecordEvent(r Record, seq, cur uint64) Event {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	return Event{Seq: seq, Time: r.Time.UTC(), Actor: r.Actor, Operation: r.Operation, Summary: r.Summary,
		Reason: r.Reason, Before: cur, After: cur, Record: true}
}

func checkKey(ns, key string) error {
	if ns == "" {
		return errorf(ErrInvalid, "empty namespace")
	}
	if key == "" {
		return errorf(ErrInvalid, "empty key in namespace %q", ns)
	}
	return nil
}
