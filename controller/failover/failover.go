// Package failover decides which backends of a pool lose their consistent-hash
// buckets to health checks, and computes the pool's table while they do.
//
// It is opt-in per pool. A backend that health checks declare down, for at
// least the hold-down time, is excluded: its buckets go to the pool's other
// backends with Maglev's minimal disruption (maglev.Rebuild with its weight at
// 0: only its own buckets move). When it has been up again for the hold-down
// time it is restored, and the pool's table is the operator's table again, so
// exactly the buckets it lost come back and nothing else moves. Flap damping:
// besides the hold-down, a pool makes at most MaxChangesPerMinute exclusions
// and restorations in any minute; the rest wait. A pool never loses its last
// serving backends to health alone: when every backend that still serves is
// down, they are kept, and an event says so.
//
// The package is pure: no clock of its own (the caller passes the time), no
// I/O. It is not yet wired into the controller (docs/health.md, Failover).
package failover

import (
	"fmt"
	"slices"
	"time"

	"github.com/graygw/graygw/controller/maglev"
)

// Defaults.
const (
	DefaultHoldDown            = 3 * time.Second
	DefaultMaxChangesPerMinute = 6
)

// Config tunes the damping.
type Config struct {
	// HoldDown is how long a backend must stay down before it is excluded,
	// and up before it is restored. 0: DefaultHoldDown.
	HoldDown time.Duration
	// MaxChangesPerMinute bounds a pool's exclusions plus restorations in
	// any 60 s window. 0: DefaultMaxChangesPerMinute.
	MaxChangesPerMinute int
}

func (c Config) withDefaults() Config {
	if c.HoldDown <= 0 {
		c.HoldDown = DefaultHoldDown
	}
	if c.MaxChangesPerMinute <= 0 {
		c.MaxChangesPerMinute = DefaultMaxChangesPerMinute
	}
	return c
}

// Member is a pool member as the decision sees it.
type Member struct {
	Backend string
	// Weight is the intent's weight; a member at 0 serves no bucket and is
	// never excluded or counted as serving.
	Weight uint32
	// Down is the health checks' verdict now.
	Down bool
}

// Pool is a failover pool's members at one instant.
type Pool struct {
	Name    string
	Members []Member
}

// Kind is what an event says happened.
type Kind string

// Event kinds.
const (
	Excluded Kind = "excluded" // the backend's buckets went to the others
	Restored Kind = "restored" // the backend got its buckets back
	Kept     Kind = "kept"     // down, but the pool's last serving backends: not excluded
	Deferred Kind = "deferred" // the change waits: the pool used its changes of this minute
)

// Event is one decision, for the history and the log.
type Event struct {
	Time    time.Time
	Pool    string
	Backend string
	Kind    Kind
	Reason  string
}

func (e Event) String() string {
	return fmt.Sprintf("%s pool %s backend %s: %s", e.Kind, e.Pool, e.Backend, e.Reason)
}

// backendState is one backend's health history in one pool.
type backendState struct {
	down     bool      // the checks' last verdict
	since    time.Time // when that verdict started
	excluded bool
	kept     bool // last Update reported it kept (report once)
	deferred bool // last Update reported it deferred (report once)
}

type poolState struct {
	backends map[string]*backendState
	changes  []time.Time // exclusions and restorations, newest last
}

// Decider keeps the health history and the exclusions of the failover pools.
// It is not safe for concurrent use.
type Decider struct {
	cfg   Config
	pools map[string]*poolState
}

// New returns a Decider with no pools.
func New(cfg Config) *Decider {
	return &Decider{cfg: cfg.withDefaults(), pools: map[string]*poolState{}}
}

// Update takes the failover pools' members and health at now, and returns
// every pool's excluded backends (sorted; pools with none are absent) and the
// events of this update. Pools not in pools are forgotten (failover turned
// off, pool removed): their backends are restored at once, without an event.
func (d *Decider) Update(now time.Time, pools []Pool) (map[string][]string, []Event) {
	var events []Event
	seen := map[string]bool{}
	for _, p := range pools {
		seen[p.Name] = true
		ps := d.pools[p.Name]
		if ps == nil {
			ps = &poolState{backends: map[string]*backendState{}}
			d.pools[p.Name] = ps
		}
		events = append(events, d.updatePool(now, p, ps)...)
	}
	for name := range d.pools {
		if !seen[name] {
			delete(d.pools, name)
		}
	}
	return d.Excluded(), events
}

// Excluded returns every pool's excluded backends, sorted.
func (d *Decider) Excluded() map[string][]string {
	out := map[string][]string{}
	for name, ps := range d.pools {
		for b, st := range ps.backends {
			if st.excluded {
				out[name] = append(out[name], b)
			}
		}
		slices.Sort(out[name])
	}
	return out
}

func (d *Decider) updatePool(now time.Time, p Pool, ps *poolState) []Event {
	var events []Event
	ev := func(b string, k Kind, format string, a ...any) {
		events = append(events, Event{Time: now, Pool: p.Name, Backend: b, Kind: k, Reason: fmt.Sprintf(format, a...)})
	}
	// Health history; forget members that left (or went to weight 0: the
	// operator took them out, nothing to restore).
	members := map[string]bool{}
	for _, m := range p.Members {
		if m.Weight == 0 {
			continue
		}
		members[m.Backend] = true
		st := ps.backends[m.Backend]
		if st == nil {
			st = &backendState{down: m.Down, since: now}
			ps.backends[m.Backend] = st
		} else if st.down != m.Down {
			st.down, st.since, st.deferred = m.Down, now, false
		}
	}
	for b := range ps.backends {
		if !members[b] {
			delete(ps.backends, b)
		}
	}
	// The rate limit's window.
	cut := now.Add(-time.Minute)
	ps.changes = slices.DeleteFunc(ps.changes, func(t time.Time) bool { return !t.After(cut) })
	budget := func() bool { return len(ps.changes) < d.cfg.MaxChangesPerMinute }

	names := make([]string, 0, len(ps.backends))
	for b := range ps.backends {
		names = append(names, b)
	}
	slices.Sort(names)
	serving := 0
	for _, b := range names {
		if !ps.backends[b].excluded {
			serving++
		}
	}
	// Restorations first: they add capacity, and one may let an exclusion
	// through the "never zero" rule.
	for _, b := range names {
		st := ps.backends[b]
		if !st.excluded || st.down || now.Sub(st.since) < d.cfg.HoldDown {
			continue
		}
		if !budget() {
			if !st.deferred {
				ev(b, Deferred, "up again since %s, restoration waits: %d changes in the last minute", st.since.Format(time.RFC3339), len(ps.changes))
				st.deferred = true
			}
			continue
		}
		st.excluded, st.deferred = false, false
		serving++
		ps.changes = append(ps.changes, now)
		ev(b, Restored, "up for %s: its buckets return", now.Sub(st.since))
	}
	for _, b := range names {
		st := ps.backends[b]
		if st.excluded || !st.down {
			st.kept = false
			continue
		}
		if now.Sub(st.since) < d.cfg.HoldDown {
			continue
		}
		if !d.othersServe(ps, b) {
			if !st.kept {
				ev(b, Kept, "down since %s, but the pool's last serving backend(s): kept (health alone never empties a pool)", st.since.Format(time.RFC3339))
				st.kept = true
			}
			continue
		}
		if !budget() {
			if !st.deferred {
				ev(b, Deferred, "down since %s, exclusion waits: %d changes in the last minute", st.since.Format(time.RFC3339), len(ps.changes))
				st.deferred = true
			}
			continue
		}
		st.excluded, st.kept, st.deferred = true, false, false
		serving--
		ps.changes = append(ps.changes, now)
		ev(b, Excluded, "down for %s: its buckets go to the pool's other backends", now.Sub(st.since))
	}
	return events
}

// othersServe reports whether a backend of the pool other than b is not
// excluded and not down: excluding b leaves someone to serve.
func (d *Decider) othersServe(ps *poolState, b string) bool {
	for o, st := range ps.backends {
		if o != b && !st.excluded && !st.down {
			return true
		}
	}
	return false
}

// Table returns the pool's table with excluded backends' buckets moved: op is
// the operator's table (the intent's, as the controller computes it), members
// the intent's members. With nothing excluded it is op itself; otherwise
// maglev.Rebuild from op with the excluded members' weights at 0, so only their
// buckets move, and since it always starts from op, restoring a backend gives
// back exactly the buckets it had. The price: a bucket that already failed
// over may move again when another backend of the pool is excluded or
// restored (a healthy backend's own buckets never move).
func Table(op *maglev.Table, members []maglev.Backend, excluded []string) (*maglev.Table, error) {
	if len(excluded) == 0 {
		return op, nil
	}
	bs := make([]maglev.Backend, len(members))
	for i, m := range members {
		bs[i] = m
		if slices.Contains(excluded, m.ID) {
			bs[i].Weight = 0
		}
	}
	t, err := maglev.Rebuild(op, bs)
	if err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	return t, nil
}
