package server

import (
	"context"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
)

// A Write batch is processed in three steps, all under writeMu and viewMu:
//
//  1. prepare: every update is validated and checked against the view as
//     changed by the batch's earlier updates (an overlay), in order. The result
//     is either a per-update error or an op holding the entry's new canonical
//     key and value.
//  2. journal: the table ops are appended to the journal in one record, before
//     the dataplane changes (write-ahead; store.go).
//  3. apply: each op goes to the dataplane in batch order, then into the view.
//     A dataplane refusal fails that update only (CONTINUE_ON_ERROR); the
//     failed ops are journaled after the batch so a replay skips them.
//
// Each dataplane call changes one entry as one value (dataplane package
// contract), so packets see every entry either before or after an update.

// op is a prepared update.
type op struct {
	idx  int
	kind p4v1.Update_Type
	t    *tableInfo // table ops (TableEntry, DirectCounterEntry)
	e    *entry
	key  string
	val  string
	// ctr is a counter value to write (TableEntry.counter_data,
	// DirectCounterEntry.data) after the table op, if any.
	ctr *dataplane.Counter
	// counterOnly: a DirectCounterEntry MODIFY, which changes no entry.
	counterOnly bool
	// Indexed counter write (CounterEntry MODIFY): cells [from, to).
	cells    bool
	from, to int
	journal  int // index in the journaled batch, -1 when not journaled
	// pre: a clone session op (pre.go), key and val in the cloneSessions
	// pseudo table.
	pre bool
}

// overlay is the view as changed by the prepared updates of one batch.
type overlay struct {
	v     view
	delta map[uint32]map[string]*string // nil value: deleted
	count map[uint32]int
}

func (o *overlay) get(t uint32, key string) (string, bool) {
	if d, ok := o.delta[t][key]; ok {
		if d == nil {
			return "", false
		}
		return *d, true
	}
	v, ok := o.v[t][key]
	return v, ok
}

func (o *overlay) set(t uint32, key string, val *string) {
	_, had := o.get(t, key)
	if o.delta[t] == nil {
		o.delta[t] = map[string]*string{}
	}
	o.delta[t][key] = val
	switch {
	case had && val == nil:
		o.count[t]--
	case !had && val != nil:
		o.count[t]++
	}
}

func (o *overlay) size(t uint32) int { return len(o.v[t]) + o.count[t] }

// admitWriter admits a Write or SetForwardingPipelineConfig: the request's
// device, then its sender (the primary of its role), and takes writeMu,
// which the caller releases. While the agent drains it refuses with
// UNAVAILABLE, refused saying what is (checked again once writeMu is held,
// as a drain may have begun while it waited). On an error writeMu is not held.
func (s *Server) admitWriter(ctx context.Context, device uint64, role string, election *p4v1.Uint128, refused string) *uerr {
	if e := s.checkDevice(device); e != nil {
		return e
	}
	if s.draining.Load() {
		return errf(codes.Unavailable, "agent draining: %s", refused)
	}
	s.writeMu.Lock()
	if s.draining.Load() {
		s.writeMu.Unlock()
		return errf(codes.Unavailable, "agent draining: %s", refused)
	}
	if e := s.checkPrimary(ctx, role, election); e != nil {
		s.writeMu.Unlock()
		return e
	}
	return nil
}

// Write implements the Write RPC (spec §12).
func (s *Server) Write(ctx context.Context, req *p4v1.WriteRequest) (*p4v1.WriteResponse, error) {
	if e := s.admitWriter(ctx, req.GetDeviceId(), req.GetRole(), req.GetElectionId(), "writes refused; reconnect to the restarted agent"); e != nil {
		return nil, e.grpc()
	}
	defer s.writeMu.Unlock()
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if e := s.pipelineReady(); e != nil {
		return nil, e.grpc()
	}
	switch req.GetAtomicity() {
	case p4v1.WriteRequest_CONTINUE_ON_ERROR:
	case p4v1.WriteRequest_ROLLBACK_ON_ERROR, p4v1.WriteRequest_DATAPLANE_ATOMIC:
		return nil, errf(codes.Unimplemented, "atomicity %s is not supported: only CONTINUE_ON_ERROR (spec §12.2 Batch Atomicity)", req.GetAtomicity()).grpc()
	default:
		return nil, errf(codes.InvalidArgument, "atomicity %d unknown", req.GetAtomicity()).grpc()
	}
	errs := s.writeBatch(req.GetUpdates())
	for _, e := range errs {
		if e != nil {
			return nil, batchStatus("write", errs)
		}
	}
	return &p4v1.WriteResponse{}, nil
}

// writeBatch prepares, journals and applies updates; callers hold writeMu and
// viewMu. It returns one error (nil: OK) per update.
//
// Updates see each other in request order, but they are validated against an
// overlay of the view before any is applied (so that the batch is journaled in
// one write before the dataplane changes), which takes every earlier update to
// succeed. When the dataplane refuses one (a target limit, a failure), the
// updates after it were validated against a view it did not produce: they are
// not applied, the journal records them as not applied, and they run again as
// a segment of their own, validated against the view as it is.
func (s *Server) writeBatch(updates []*p4v1.Update) []*uerr {
	errs := make([]*uerr, len(updates))
	for from := 0; from < len(updates); {
		from = s.writeSegment(updates, from, errs)
	}
	return errs
}

// writeSegment handles updates[from:] as writeBatch says, setting their errors.
// It returns len(updates), or the index after an update the dataplane refused
// where the rest must run again.
func (s *Server) writeSegment(updates []*p4v1.Update, from int, errs []*uerr) int {
	ov := &overlay{v: s.view, delta: map[uint32]map[string]*string{}, count: map[uint32]int{}}
	ops := make([]*op, 0, len(updates)-from)
	var jops []jop
	for i := from; i < len(updates); i++ {
		o, e := s.prepare(ov, updates[i])
		if e != nil {
			errs[i] = e
			continue
		}
		o.idx, o.journal = i, -1
		if o.pre || (o.t != nil && !o.counterOnly && !o.cells) {
			o.journal = len(jops)
			j := jop{table: cloneSessions, key: o.key}
			if !o.pre {
				j.table = o.t.ID
			}
			if o.kind != p4v1.Update_DELETE {
				v := o.val
				j.value = &v
			}
			jops = append(jops, j)
		}
		ops = append(ops, o)
	}
	if len(jops) > 0 && s.journal != nil {
		if err := s.journal.Append(encodeBatch(jops)); err != nil {
			for _, o := range ops {
				errs[o.idx] = errf(codes.Internal, "journal: %v; nothing applied", err)
			}
			return len(updates)
		}
	}
	next := len(updates)
	var failed []int
	for k, o := range ops {
		e := s.apply(o)
		if e == nil {
			continue
		}
		errs[o.idx] = e
		if o.journal >= 0 {
			failed = append(failed, o.journal)
		}
		if s.asPrepared(o) {
			continue
		}
		for _, r := range ops[k+1:] {
			if r.journal >= 0 {
				failed = append(failed, r.journal)
			}
		}
		clear(errs[o.idx+1:])
		next = o.idx + 1
		break
	}
	if s.journal != nil {
		if len(failed) > 0 {
			if err := s.journal.Append(encodeFailed(failed)); err != nil {
				s.log.Error("journal: failed updates not recorded; a restart would retry them", "err", err)
			}
		}
		if s.journal.LogSize() > max(s.cfg.CompactBytes, 2*s.journal.SnapshotSize()) {
			if err := s.journal.Compact(s.snapshot); err != nil {
				s.log.Error("journal compaction failed", "err", err)
			}
		}
	}
	return next
}

// asPrepared says whether the view holds what the overlay predicted after o:
// the entry with o's value after an INSERT or MODIFY, no entry after a DELETE.
// Counter writes do not change the view.
func (s *Server) asPrepared(o *op) bool {
	if o.t == nil || o.counterOnly || o.cells {
		return true
	}
	v, ok := s.view[o.t.ID][o.key]
	if o.kind == p4v1.Update_DELETE {
		return !ok
	}
	return ok && v == o.val
}

// prepare validates one update against the overlay and records its effect there.
func (s *Server) prepare(ov *overlay, u *p4v1.Update) (*op, *uerr) {
	typ := u.GetType()
	if typ != p4v1.Update_INSERT && typ != p4v1.Update_MODIFY && typ != p4v1.Update_DELETE {
		return nil, errf(codes.InvalidArgument, "update type %s: want INSERT, MODIFY or DELETE", typ)
	}
	switch ent := u.GetEntity().GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		return s.prepareTableEntry(ov, typ, ent.TableEntry)
	case *p4v1.Entity_CounterEntry:
		return s.prepareCounterEntry(typ, ent.CounterEntry)
	case *p4v1.Entity_DirectCounterEntry:
		return s.prepareDirectCounterEntry(ov, typ, ent.DirectCounterEntry)
	case *p4v1.Entity_PacketReplicationEngineEntry:
		return s.preparePRE(ov, typ, ent.PacketReplicationEngineEntry)
	case nil:
		return nil, errf(codes.InvalidArgument, "update without an entity")
	default:
		return nil, unsupportedEntity(u.GetEntity())
	}
}

// apply performs a prepared op on the dataplane and the view.
func (s *Server) apply(o *op) *uerr {
	if o.cells {
		return s.applyCells(o)
	}
	if o.pre {
		return s.applyPRE(o)
	}
	t := o.t
	_, exists := s.view[t.ID][o.key]
	if o.counterOnly {
		if !exists {
			return errf(codes.NotFound, "table %s: no such entry (an earlier update of the batch failed)", t.Name)
		}
		return s.setDirectCounter(o)
	}
	switch o.kind {
	case p4v1.Update_INSERT:
		if exists {
			return errf(codes.AlreadyExists, "table %s: entry already exists", t.Name)
		}
	case p4v1.Update_MODIFY, p4v1.Update_DELETE:
		if !exists {
			return errf(codes.NotFound, "table %s: no such entry (an earlier update of the batch failed)", t.Name)
		}
	}
	if o.kind == p4v1.Update_DELETE {
		if err := t.bind.del(s.dp, o.e); err != nil {
			return dpErr("table "+t.Name+": delete", err)
		}
		delete(s.view[t.ID], o.key)
		return nil
	}
	if err := t.bind.put(s.dp, o.e, exists); err != nil {
		return dpErr("table "+t.Name+": "+o.kind.String(), err)
	}
	s.view[t.ID][o.key] = o.val
	if o.ctr != nil {
		return s.setDirectCounter(o)
	}
	return nil
}
