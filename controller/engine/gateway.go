package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/p4rt"
	"github.com/graygw/graygw/controller/reconcile"
)

// Results of a reconcile pass (GatewayStatus.LastResult).
const (
	ResultOK    = "ok"    // the target holds the desired entries
	ResultError = "error" // the pass failed; LastError says why
)

// GatewayStatus is what the engine knows about one gateway.
type GatewayStatus struct {
	Name     string
	Address  string
	DeviceID uint64
	// Connected: the P4Runtime stream is up. Primary: this controller is the
	// primary for the device (false while another controller with a higher
	// election id is connected: standby).
	Connected, Primary bool
	// Standby: the session is an HA follower's warm standby (engine
	// Config.Standby): it arbitrates below the leader and never writes.
	Standby bool
	// RivalPrimary is the election id ("high:low") of another controller that
	// is primary for the device, "" when none; Displaced counts the times one
	// became primary. A rival nobody started is a rogue client (docs/security.md).
	RivalPrimary string
	Displaced    uint64
	// ElectionExhausted: the device's highest election id is 2^128-1, so no
	// controller can take over until the agent's arbitration state is reset.
	ElectionExhausted bool
	// Version is the intent version the gateway was last brought to; InSync says
	// it still held exactly that version's entries at the end of the last pass.
	Version uint64
	InSync  bool
	// Synced: a reconcile pass has succeeded on the current P4Runtime session
	// (since it was last established, or mastership last changed) with this
	// controller as primary. A later failed pass does not clear it; losing
	// the session or mastership does. BGP uses it as the gateway's health: a
	// gateway that reconnects empty is not announced before it has been
	// brought to the intent.
	Synced bool
	// Last pass: when it ended, how long it took, ResultOK or ResultError, the
	// error, and the updates it wrote.
	LastReconcile time.Time
	LastDuration  time.Duration
	LastResult    string
	LastError     string
	LastWritten   int
	// Totals since the engine started.
	Reconciles     uint64
	EntriesWritten uint64
	WriteErrors    uint64
	ForeignRemoved uint64
	PipelinePushes uint64
	// Entries is the number of entries the gateway should hold.
	Entries int
}

// gateway is the worker of one target.
type gateway struct {
	e      *Engine
	name   string
	addr   string
	device uint64
	client *p4rt.Client
	log    *slog.Logger

	kick     chan struct{} // a full pass now (Kick)
	intent   chan struct{} // the intent changed (Commit): an incremental pass if in sync
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu sync.Mutex
	st GatewayStatus
	// last is the want last brought to the target (its keys tell entries the
	// previous version wanted from foreign ones). base, when set, is the same
	// want while the target is known to hold it exactly: the last pass
	// succeeded and the session has not changed since. An intent change is
	// then written as the difference between base and the new want, without a
	// read-back (an incremental pass).
	last, base *want
	// session is the client's Changes channel taken before the pass that set
	// base: closed once the session or mastership changed since, which voids
	// base even if the worker has not handled the change yet.
	session <-chan struct{}
	// mirrorCookie is the pipeline cookie for which the mirror clone session
	// was last written (mirrorOK: successfully), mirror.go.
	mirrorCookie uint64
	mirrorOK     bool
	// capacity is the target's table sizes, learned at every full pass from
	// the P4Info it runs; nil until the first one.
	capacity *Capacity
	// checkedInfo is the last P4Info of Config.P4InfoFor that passed CheckP4Info.
	checkedInfo *p4info.Info
	// takeover is set by Lead: the next full pass logs its steps' times at
	// info level (where a takeover's time goes; docs/ha.md).
	takeover atomic.Bool
}

// tableCapacity returns the table sizes learned from the target (nil: not
// known yet).
func (g *gateway) tableCapacity() *Capacity {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.capacity
}

// learnCapacity reads the P4Info the target runs and keeps its table sizes; a
// target that does not return one is taken to run pushed, the P4Info the
// controller pushes.
func (g *gateway) learnCapacity(ctx context.Context, pushed *p4configv1.P4Info) *Capacity {
	info, _, ok, err := g.client.Pipeline(ctx)
	var c *Capacity
	switch {
	case err == nil && ok && info != nil:
		c = capacityOf(info, "its P4Info size")
	default:
		if err != nil {
			g.log.Debug("target P4Info not read; table sizes taken from the P4Info pushed", "err", err)
		}
		c = capacityOf(pushed, "the size in the P4Info the controller pushes")
	}
	g.mu.Lock()
	g.capacity = c
	g.mu.Unlock()
	return c
}

func newGateway(e *Engine, name, addr string, device uint64) (*gateway, error) {
	log := e.log.With("gateway", name)
	c, err := p4rt.Dial(addr, p4rt.Options{DeviceID: device, ElectionID: e.cfg.ElectionID, ElectionIDHigh: e.cfg.ElectionIDHigh, Role: e.cfg.Role,
		Standby: e.standby.Load(),
		TLS:     e.cfg.TLS, MinBackoff: e.cfg.MinBackoff, MaxBackoff: e.cfg.MaxBackoff, Logger: log})
	if err != nil {
		return nil, err
	}
	return &gateway{e: e, name: name, addr: addr, device: device, client: c, log: log,
		kick: make(chan struct{}, 1), intent: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		st: GatewayStatus{Name: name, Address: addr, DeviceID: device}}, nil
}

// kickNow asks for a full pass (read back, diff, write).
func (g *gateway) kickNow() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// intentChanged asks for a pass for a new intent: incremental when the target
// is known to hold the previous want exactly, else full.
func (g *gateway) intentChanged() {
	select {
	case g.intent <- struct{}{}:
	default:
	}
}

func (g *gateway) signalStop() { g.stopOnce.Do(func() { close(g.stop) }) }

func (g *gateway) status() GatewayStatus {
	g.mu.Lock()
	st := g.st
	g.mu.Unlock()
	st.Connected, st.Primary, st.Standby = g.client.Connected(), g.client.IsPrimary(), g.client.Standby()
	if id, n := g.client.Rival(); id != nil {
		st.RivalPrimary, st.Displaced = fmt.Sprintf("%d:%d", id.GetHigh(), id.GetLow()), n
	} else {
		st.Displaced = n
	}
	st.ElectionExhausted = g.client.ElectionExhausted()
	st.Synced = st.Synced && st.Connected && st.Primary
	return st
}

// run is the worker loop: reconcile when due and primary; otherwise wait for a
// kick (intent change), a change of the session (reconnect, mastership) or the
// timer (periodic pass, retry).
func (g *gateway) run() {
	defer close(g.done)
	timer := time.NewTimer(g.e.cfg.Interval)
	defer timer.Stop()
	due, full := true, true
	retry := time.Duration(0)
	for {
		changes := g.client.Changes() // before the check, so no change is missed
		// A standby never writes, even should the target make it primary
		// (a target that promotes the highest backup when the primary goes).
		if due && g.client.IsPrimary() && !g.e.standby.Load() {
			due = false
			wasFull, err := g.reconcile(full, changes)
			full = false
			switch {
			case errors.Is(err, ErrCapacity):
				// Nothing was written, and retrying cannot help until the
				// intent or the target changes: the next intent change (or
				// session change, Kick, periodic pass) tries again. An
				// incremental pass kept its base: the next one can be
				// incremental too.
				retry = 0
				if wasFull {
					timer.Reset(g.e.cfg.Interval)
				}
				full = wasFull
			case err != nil:
				retry = min(max(retry*2, g.e.cfg.Retry), g.e.cfg.Interval)
				timer.Reset(retry)
				full = true
			case wasFull:
				retry = 0
				timer.Reset(g.e.cfg.Interval)
			default:
				// An incremental pass leaves the periodic (full) pass where it
				// was: a stream of changes must not postpone it for ever.
				retry = 0
			}
			select {
			case <-changes:
				// The session changed during the pass (lost and regained
				// mastership, reconnected): what was read back may be stale.
				due, full = true, true
				g.unsync()
			default:
			}
			continue // stop may have been signalled meanwhile
		}
		g.e.notify()
		select {
		case <-g.stop:
			return
		case <-g.e.hard.Done():
			return
		case <-g.kick:
			due, full = true, true
		case <-g.intent:
			// Nothing to do when the target already holds the current want
			// (a new worker's first pass brought it there).
			g.mu.Lock()
			base := g.base
			g.mu.Unlock()
			due = due || base == nil || base != g.e.currentWant(g.name)
		case <-changes:
			due, full = true, true
			g.unsync()
		case <-timer.C:
			// The periodic pass reads back: it repairs drift (entries changed
			// behind the controller's back) that incremental passes cannot see.
			due, full = true, true
			timer.Reset(g.e.cfg.Interval)
		}
	}
}

// unsync records a change of the session: Synced waits for the next pass, and
// the next pass is a full one.
func (g *gateway) unsync() {
	g.mu.Lock()
	g.st.Synced = false
	g.base = nil
	g.mu.Unlock()
}

// reconcile is one pass. A full pass (full, or no base known): pipeline, read
// back, diff, write. An incremental pass (the target holds base exactly):
// diff base against the current want, write; nothing is read back.
func (g *gateway) reconcile(full bool, session <-chan struct{}) (wasFull bool, err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(g.e.hard, g.e.cfg.Timeout)
	defer cancel()
	written, foreign, pushed := 0, 0, false
	var w *want
	g.mu.Lock()
	base := g.base
	if base != nil {
		select {
		case <-g.session:
			base = nil // the session changed since base was established
		default:
		}
	}
	g.base = nil // set again only by a pass that succeeds
	g.mu.Unlock()
	defer func() {
		d := time.Since(start)
		g.mu.Lock()
		st := &g.st
		st.LastReconcile, st.LastDuration, st.LastWritten = time.Now(), d, written
		st.Reconciles++
		st.EntriesWritten += uint64(written)
		st.ForeignRemoved += uint64(foreign)
		if pushed {
			st.PipelinePushes++
		}
		if w != nil {
			st.Entries = w.n
		}
		if err == nil {
			st.LastResult, st.LastError, st.InSync = ResultOK, "", true
			if w != nil {
				st.Version = w.version
				st.Synced = true
				g.last, g.base, g.session = w, w, session
			}
		} else {
			st.LastResult, st.LastError, st.InSync = ResultError, err.Error(), false
		}
		g.mu.Unlock()
		if o := g.e.cfg.Observer; o != nil {
			o.Reconciled(g.name, d, written, err)
		}
		if err != nil {
			g.log.Warn("reconcile failed", "err", err, "written", written, "took", d)
		}
	}()

	if !full && base != nil {
		w = g.e.currentWant(g.name)
		if w == nil {
			return false, nil // no intent for this gateway (it is being removed)
		}
		if w == base {
			return false, nil
		}
		plan, err := reconcile.DiffSets(w.sets, base.sets, g.e.order)
		if err != nil {
			return false, fmt.Errorf("diff: %w", err)
		}
		if plan.Empty() {
			return false, nil
		}
		ov := g.e.overflows(g.name, w.version, g.tableCapacity(), base.counts(), plan.Updates)
		ov = append(ov, g.e.boundOverflows(g.name, w.version, entriesOf(base.sets), plan.Updates)...)
		if len(ov) > 0 {
			// Nothing written: the target still holds base exactly.
			g.mu.Lock()
			g.base = base
			g.mu.Unlock()
			return false, &CapacityError{Overflows: ov}
		}
		g.log.Info("writing plan", "version", w.version, "inserts", plan.Inserts, "modifies", plan.Modifies,
			"deletes", plan.Deletes, "incremental", true, "from_version", base.version)
		written, err = g.apply(ctx, plan.Updates)
		if err != nil {
			return false, err // the next pass is a full one
		}
		g.log.Info("gateway in sync", "version", w.version, "written", written, "took", time.Since(start), "incremental", true)
		return false, nil
	}

	devcfg := g.deviceConfig()
	info, err := g.p4info()
	if err != nil {
		return true, fmt.Errorf("pipeline: %w", err)
	}
	cookie := Cookie(info, devcfg)
	pushed, err = g.client.EnsurePipeline(ctx, info.P4Info(), devcfg, cookie)
	if err != nil {
		return true, fmt.Errorf("pipeline: %w", err)
	}
	if pushed {
		g.mu.Lock()
		g.mirrorOK = false // a new pipeline empties the replication engine
		g.mu.Unlock()
	}
	g.ensureMirrorSession(ctx, info, cookie)
	capacity := g.learnCapacity(ctx, info.P4Info())
	pipelined := time.Since(start)
	raw, err := g.client.ReadTable(ctx, 0, false)
	if err != nil {
		return true, fmt.Errorf("read back: %w", err)
	}
	read := time.Since(start)
	takeover := g.takeover.Swap(false)
	if takeover {
		g.log.Info("takeover: read back", "entries", len(raw), "pipeline_checked_in", pipelined, "read_in", read-pipelined)
	} else {
		g.log.Debug("read back", "entries", len(raw))
	}
	have := make([]*p4v1.TableEntry, len(raw))
	for i, te := range raw {
		have[i] = Canonicalize(te)
	}
	canonical := time.Since(start)
	w = g.e.wantFor(g.name, have)
	if w == nil {
		return true, nil // no intent for this gateway (it is being removed)
	}
	wanted := time.Since(start)
	plan, err := reconcile.DiffSets(w.sets, []*reconcile.Set{reconcile.NewSet(have, nil)}, g.e.order)
	if err != nil {
		return true, fmt.Errorf("diff: %w", err)
	}
	if takeover {
		g.log.Info("takeover: diffed", "canonical_in", canonical-read, "want_in", wanted-canonical,
			"diff_in", time.Since(start)-wanted, "updates", len(plan.Updates))
	}
	g.mu.Lock()
	last := g.last
	g.mu.Unlock()
	retired := 0
	for i, u := range plan.Updates {
		if u.GetType() != p4v1.Update_DELETE {
			continue
		}
		if last != nil {
			if _, ok := last.origin(plan.Keys[i]); ok {
				retired++ // wanted by the previous version: retired by the intent change
				continue
			}
		}
		foreign++
		if foreign <= 20 {
			g.log.Warn("foreign entry removed", "entry", g.e.codec.Describe(u.GetEntity().GetTableEntry()))
		}
	}
	if foreign > 20 {
		g.log.Warn("foreign entries removed", "count", foreign)
	}
	if retired > 0 {
		g.log.Debug("entries retired by the intent change", "count", retired)
	}
	if plan.Empty() {
		return true, nil
	}
	held := map[uint32]int{}
	countTables(held, have)
	ov := g.e.overflows(g.name, w.version, capacity, held, plan.Updates)
	ov = append(ov, g.e.boundOverflows(g.name, w.version, slices.Values(have), plan.Updates)...)
	if len(ov) > 0 {
		return true, &CapacityError{Overflows: ov} // nothing written: the target keeps its entries
	}
	g.log.Info("writing plan", "version", w.version, "inserts", plan.Inserts, "modifies", plan.Modifies,
		"deletes", plan.Deletes, "pipeline_pushed", pushed)
	written, err = g.apply(ctx, plan.Updates)
	if err != nil {
		return true, err
	}
	g.log.Info("gateway in sync", "version", w.version, "written", written, "took", time.Since(start))
	return true, nil
}

// p4info returns the P4Info pushed to the gateway: Config.P4InfoFor's, checked
// against the engine's (CheckP4Info), or the engine's.
func (g *gateway) p4info() (*p4info.Info, error) {
	base := g.e.codec.Info()
	if g.e.cfg.P4InfoFor == nil {
		return base, nil
	}
	info := g.e.cfg.P4InfoFor(g.name)
	if info == nil || info == base {
		return base, nil
	}
	g.mu.Lock()
	checked := g.checkedInfo == info
	g.mu.Unlock()
	if !checked {
		if err := CheckP4Info(base, info); err != nil {
			return nil, fmt.Errorf("the P4Info of gateway %s: %w", g.name, err)
		}
		g.mu.Lock()
		g.checkedInfo = info
		g.mu.Unlock()
	}
	return info, nil
}

func (g *gateway) deviceConfig() []byte {
	if g.e.cfg.DeviceConfig == nil {
		return nil
	}
	return g.e.cfg.DeviceConfig(g.name)
}

// apply writes updates one phase at a time: a phase is a run of updates of one
// table and one direction (insert/modify, or delete), as reconcile.Diff orders
// them. A P4Runtime server may apply the updates of one batch in any order, so
// dependency levels must not share a batch; and a phase that fails stops the
// pass, so nothing is made to point at an entry that could not be written, and
// nothing is deleted while something may still point at it. It returns the
// number of updates the target accepted.
func (g *gateway) apply(ctx context.Context, updates []*p4v1.Update) (int, error) {
	written := 0
	for start := 0; start < len(updates); {
		end := start + 1
		for end < len(updates) && samePhase(updates[start], updates[end]) {
			end++
		}
		phase := updates[start:end]
		err := g.client.Write(ctx, phase, g.e.cfg.Batch)
		var we *p4rt.WriteError
		switch {
		case err == nil:
			written += len(phase)
		case errors.As(err, &we):
			written += len(phase) - len(we.Failed)
			g.countWriteErrors(we)
			for i, f := range we.Failed {
				if i == 5 {
					break
				}
				te := phase[f.Index].GetEntity().GetTableEntry()
				g.log.Warn("update refused", "type", phase[f.Index].GetType().String(), "entry", g.e.codec.Describe(te),
					"code", f.Code.String(), "msg", f.Message)
			}
			return written, fmt.Errorf("write: %w", err)
		default:
			code := codes.Unknown
			if errors.Is(err, p4rt.ErrNotPrimary) {
				code = codes.PermissionDenied
			} else if s, ok := statusCode(err); ok {
				code = s
			}
			g.mu.Lock()
			g.st.WriteErrors += uint64(len(phase))
			g.mu.Unlock()
			if o := g.e.cfg.Observer; o != nil {
				o.WriteFailed(g.name, code, len(phase))
			}
			return written, fmt.Errorf("write: %w", err)
		}
		start = end
	}
	return written, nil
}

func (g *gateway) countWriteErrors(we *p4rt.WriteError) {
	g.mu.Lock()
	g.st.WriteErrors += uint64(len(we.Failed))
	g.mu.Unlock()
	if o := g.e.cfg.Observer; o != nil {
		for code, n := range we.Codes() {
			o.WriteFailed(g.name, code, n)
		}
	}
}

func samePhase(a, b *p4v1.Update) bool {
	del := func(u *p4v1.Update) bool { return u.GetType() == p4v1.Update_DELETE }
	return del(a) == del(b) &&
		a.GetEntity().GetTableEntry().GetTableId() == b.GetEntity().GetTableEntry().GetTableId()
}
