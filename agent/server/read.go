package server

import (
	"bytes"
	"strings"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
)

// readChunk is the number of entities per ReadResponse message.
const readChunk = 1000

// item is one entity of a read answer: a ready entity, or a table row decoded
// when sent (so a 250k-entry read does not hold 250k messages at once).
type item struct {
	ent *p4v1.Entity
	t   *tableInfo
	key string
	val string
	ctr *dataplane.Counter
}

// Read implements the Read RPC (spec §13). The view is read-locked while the
// answer is collected (table rows are copied as strings, counters read), so a Read
// sees each Write whole or not at all; decoding and sending happen unlocked.
func (s *Server) Read(req *p4v1.ReadRequest, srv p4v1.P4Runtime_ReadServer) error {
	if e := s.checkDevice(req.GetDeviceId()); e != nil {
		return e.grpc()
	}
	s.viewMu.RLock()
	if e := s.pipelineReady(); e != nil {
		s.viewMu.RUnlock()
		return e.grpc()
	}
	var items []item
	errs := make([]*uerr, len(req.GetEntities()))
	failed := false
	for i, ent := range req.GetEntities() {
		var ents []*p4v1.Entity
		var e *uerr
		switch x := ent.GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			e = s.collectTable(x.TableEntry, &items)
		case *p4v1.Entity_CounterEntry:
			e = s.readCounterEntry(x.CounterEntry, &ents)
		case *p4v1.Entity_DirectCounterEntry:
			e = s.readDirectCounterEntry(x.DirectCounterEntry, &ents)
		case *p4v1.Entity_PacketReplicationEngineEntry:
			e = s.readPRE(x.PacketReplicationEngineEntry, &ents)
		case nil:
			e = errf(codes.InvalidArgument, "read request without an entity (spec §13.2)")
		default:
			if !wildcardOfNothing(ent) {
				e = unsupportedEntity(ent)
			}
		}
		if e != nil {
			errs[i], failed = e, true
			continue
		}
		for _, x := range ents {
			items = append(items, item{ent: x})
		}
	}
	s.viewMu.RUnlock()

	resp := &p4v1.ReadResponse{}
	for _, it := range items {
		ent := it.ent
		if ent == nil {
			var err error
			if ent, err = s.rowEntity(it); err != nil {
				return errf(codes.Internal, "%v", err).grpc()
			}
		}
		resp.Entities = append(resp.Entities, ent)
		if len(resp.Entities) == readChunk {
			if err := srv.Send(resp); err != nil {
				return err
			}
			resp = &p4v1.ReadResponse{}
		}
	}
	if len(resp.Entities) > 0 {
		if err := srv.Send(resp); err != nil {
			return err
		}
	}
	if failed {
		if len(errs) == 1 {
			// One entity: its own code (OUT_OF_RANGE for a counter index past
			// the array, as §9.3.2 asks), with the per-entity detail as well.
			return singleStatus("read", errs[0])
		}
		return batchStatus("read", errs)
	}
	return nil
}

func (s *Server) rowEntity(it item) (*p4v1.Entity, error) {
	var te *p4v1.TableEntry
	if it.key == "" && it.val == "" {
		te = s.defaultEntry(it.t)
	} else {
		e, err := decodeEntry(it.t, it.key, it.val)
		if err != nil {
			return nil, err
		}
		te = e.proto()
	}
	if it.ctr != nil {
		te.CounterData = counterData(*it.ctr)
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}, nil
}

// wildcardOfNothing reports a wildcard read of an entity kind the P4Info has none
// of, which is answered with nothing (a "read everything" request lists them all).
func wildcardOfNothing(e *p4v1.Entity) bool {
	switch x := e.GetEntity().(type) {
	case *p4v1.Entity_ExternEntry:
		return x.ExternEntry.GetExternTypeId() == 0
	case *p4v1.Entity_ActionProfileMember:
		return x.ActionProfileMember.GetActionProfileId() == 0
	case *p4v1.Entity_ActionProfileGroup:
		return x.ActionProfileGroup.GetActionProfileId() == 0
	case *p4v1.Entity_MeterEntry:
		return x.MeterEntry.GetMeterId() == 0
	case *p4v1.Entity_DirectMeterEntry:
		return x.DirectMeterEntry.GetTableEntry().GetTableId() == 0
	case *p4v1.Entity_ValueSetEntry:
		return x.ValueSetEntry.GetValueSetId() == 0
	case *p4v1.Entity_RegisterEntry:
		return x.RegisterEntry.GetRegisterId() == 0
	case *p4v1.Entity_DigestEntry:
		return x.DigestEntry.GetDigestId() == 0
	}
	return false
}

// collectTable gathers the rows a TableEntry read selects (spec §9.1.6 "Wildcard
// Reads"). Callers hold viewMu.
func (s *Server) collectTable(te *p4v1.TableEntry, items *[]item) *uerr {
	if te.GetTimeSinceLastHit() != nil {
		return errf(codes.InvalidArgument, "no table supports idle timeout: time_since_last_hit must be unset")
	}
	wantCtr := te.GetCounterData() != nil
	if te.GetTableId() == 0 {
		if len(te.GetMatch()) != 0 || te.GetAction() != nil || te.GetPriority() != 0 || te.GetControllerMetadata() != 0 ||
			len(te.GetMetadata()) != 0 || te.GetIsDefaultAction() {
			return errf(codes.InvalidArgument, "table_id 0 reads every table: no other filter may be set (spec §9.1.6)")
		}
		for _, t := range s.schema.order {
			if e := s.collectRows(t, nil, 0, 0, te, wantCtr, items); e != nil {
				return e
			}
		}
		return nil
	}
	t, ok := s.schema.tables[te.GetTableId()]
	if !ok {
		return errf(codes.InvalidArgument, "table_id %#x is not a table of the P4Info", te.GetTableId())
	}
	if te.GetIsDefaultAction() {
		if len(te.GetMatch()) != 0 {
			return errf(codes.InvalidArgument, "table %s: the default entry has no match", t.Name)
		}
		it := item{t: t}
		if wantCtr && t.DirectCounter != nil {
			it.ctr = &dataplane.Counter{} // misses are counted as drop reasons, not here
		}
		*items = append(*items, it)
		return nil
	}
	var actionID uint32
	if a := te.GetAction(); a != nil {
		act, ok := a.GetType().(*p4v1.TableAction_Action)
		if !ok {
			return errf(codes.InvalidArgument, "table %s: only an action_id can filter a read", t.Name)
		}
		actionID = act.Action.GetActionId()
		if _, ok := t.actions[actionID]; actionID != 0 && !ok {
			return errf(codes.InvalidArgument, "action id %#x is not an action of table %s", actionID, t.Name)
		}
	}
	var match *entry
	if len(te.GetMatch()) != 0 {
		m, e := parseMatchFields(t, te)
		if e != nil {
			return e
		}
		match = m
	}
	return s.collectRows(t, match, te.GetPriority(), actionID, te, wantCtr, items)
}

// collectRows appends the rows of t that pass the filters.
func (s *Server) collectRows(t *tableInfo, match *entry, prio int32, actionID uint32, te *p4v1.TableEntry, wantCtr bool, items *[]item) *uerr {
	rows := s.view[t.ID]
	add := func(k, v string) *uerr {
		if actionID != 0 || te.GetControllerMetadata() != 0 || len(te.GetMetadata()) != 0 || (wantCtr && t.DirectCounter != nil) {
			e, err := decodeEntry(t, k, v)
			if err != nil {
				return errf(codes.Internal, "table %s: stored entry: %v", t.Name, err)
			}
			if (actionID != 0 && e.action != actionID) ||
				(te.GetControllerMetadata() != 0 && e.ctrlMeta != te.GetControllerMetadata()) ||
				(len(te.GetMetadata()) != 0 && !bytes.Equal(e.meta, te.GetMetadata())) {
				return nil
			}
			if wantCtr && t.DirectCounter != nil {
				c, err := t.bind.counter(s.dp, e)
				if err != nil {
					return dpErr("table "+t.Name+": counter", err)
				}
				*items = append(*items, item{t: t, key: k, val: v, ctr: &c})
				return nil
			}
		}
		*items = append(*items, item{t: t, key: k, val: v})
		return nil
	}
	if match != nil {
		mk := string(match.matchKey(nil))
		if prio != 0 || !t.NeedsPriority() {
			match.priority = prio
			k := match.key()
			if v, ok := rows[k]; ok {
				return add(k, v)
			}
			return nil
		}
		for k, v := range rows {
			if len(k) == len(mk)+4 && strings.HasPrefix(k, mk) {
				if e := add(k, v); e != nil {
					return e
				}
			}
		}
		return nil
	}
	for k, v := range rows {
		if prio != 0 && int32(uint32(k[len(k)-4])<<24|uint32(k[len(k)-3])<<16|uint32(k[len(k)-2])<<8|uint32(k[len(k)-1])) != prio {
			continue
		}
		if e := add(k, v); e != nil {
			return e
		}
	}
	return nil
}
