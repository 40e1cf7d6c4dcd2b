package server

import (
	"fmt"
	"strings"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
)

// tableByID resolves a table id of a write (0 is not an id there, spec §8.1).
func (s *Server) tableByID(id uint32) (*tableInfo, *uerr) {
	if id == 0 {
		return nil, errf(codes.InvalidArgument, "table_id 0: a write must name a table")
	}
	t, ok := s.schema.tables[id]
	if !ok {
		return nil, errf(codes.InvalidArgument, "table_id %#x is not a table of the P4Info", id)
	}
	return t, nil
}

// prepareTableEntry validates a TableEntry update (spec §9.1) and records it in
// the overlay.
func (s *Server) prepareTableEntry(ov *overlay, typ p4v1.Update_Type, te *p4v1.TableEntry) (*op, *uerr) {
	t, e := s.tableByID(te.GetTableId())
	if e != nil {
		return nil, e
	}
	if te.GetIsConst() {
		return nil, errf(codes.InvalidArgument, "is_const must be false in a write (spec §9.1)")
	}
	if te.GetIsDefaultAction() {
		return nil, s.writeDefaultEntry(t, typ, te)
	}
	ent, e := parseMatch(t, te)
	if e != nil {
		return nil, e
	}
	key := ent.key()
	old, exists := ov.get(t.ID, key)
	o := &op{kind: typ, t: t, e: ent, key: key}
	if typ == p4v1.Update_DELETE {
		// Only the key counts for a DELETE; the rest is ignored (spec §9.1).
		if !exists {
			return nil, errf(codes.NotFound, "table %s: no such entry to delete", t.Name)
		}
		ov.set(t.ID, key, nil)
		return o, nil
	}

	if te.GetIdleTimeoutNs() != 0 || te.GetTimeSinceLastHit() != nil {
		return nil, errf(codes.InvalidArgument, "table %s does not support idle timeout: idle_timeout_ns must be 0 and time_since_last_hit unset", t.Name)
	}
	if te.GetMeterConfig() != nil || te.GetMeterCounterData() != nil {
		return nil, errf(codes.InvalidArgument, "table %s has no direct meter: meter_config and meter_counter_data must be unset", t.Name)
	}
	if cd := te.GetCounterData(); cd != nil {
		c, e := s.counterValue(t, cd)
		if e != nil {
			return nil, e
		}
		// INSERT starts the counter at zero anyway; only a value to write needs
		// a dataplane that can set counters.
		if typ == p4v1.Update_MODIFY || *c != (dataplane.Counter{}) {
			if s.cw == nil {
				return nil, errf(codes.Unimplemented, "table %s: this dataplane cannot set counters (counter_data)", t.Name)
			}
			o.ctr = c
		}
	}
	switch {
	case te.GetAction() != nil:
		ent.action, ent.params, e = parseAction(t, te.GetAction())
		if e != nil {
			return nil, e
		}
	case typ == p4v1.Update_INSERT:
		return nil, errf(codes.InvalidArgument, "table %s: INSERT needs an action", t.Name)
	}
	switch typ {
	case p4v1.Update_INSERT:
		if exists {
			return nil, errf(codes.AlreadyExists, "table %s: entry already exists (same match and priority)", t.Name)
		}
		if int64(ov.size(t.ID)) >= t.Size {
			return nil, errf(codes.ResourceExhausted, "table %s is full: %d entries (P4Info size)", t.Name, t.Size)
		}
	case p4v1.Update_MODIFY:
		if !exists {
			return nil, errf(codes.NotFound, "table %s: no such entry to modify", t.Name)
		}
		if ent.action == 0 {
			// MODIFY without an action keeps the action (spec §9.1.2).
			prev, err := decodeEntry(t, key, old)
			if err != nil {
				return nil, errf(codes.Internal, "table %s: stored entry: %v", t.Name, err)
			}
			ent.action, ent.params = prev.action, prev.params
		}
	}
	ent.ctrlMeta, ent.meta = te.GetControllerMetadata(), te.GetMetadata()
	if len(ent.meta) == 0 {
		ent.meta = nil
	}
	o.val = ent.value()
	ov.set(t.ID, key, &o.val)
	return o, nil
}

// writeDefaultEntry handles a write to a table's default entry (spec §9.1.3).
// Every graygw table has a const default action, which the spec protects with
// PERMISSION_DENIED: "If the default entry is constant (as indicated by the P4
// program and the P4Info message), the server must return a PERMISSION_DENIED
// error code if the client attempts to modify it."
func (s *Server) writeDefaultEntry(t *tableInfo, typ p4v1.Update_Type, te *p4v1.TableEntry) *uerr {
	switch {
	case typ != p4v1.Update_MODIFY:
		return errf(codes.InvalidArgument, "table %s: the default entry always exists: only MODIFY applies to it, not %s", t.Name, typ)
	case len(te.GetMatch()) != 0 || te.GetPriority() != 0:
		return errf(codes.InvalidArgument, "table %s: a default entry has no match and priority 0", t.Name)
	case te.GetIdleTimeoutNs() != 0 || te.GetTimeSinceLastHit() != nil:
		return errf(codes.InvalidArgument, "table %s: a default entry has no idle timeout", t.Name)
	case t.ConstDefaultActionID != 0:
		return errf(codes.PermissionDenied, "table %s: the default action is const (%s)", t.Name, t.actions[t.ConstDefaultActionID].Name)
	}
	return errf(codes.Unimplemented, "table %s: setting the default action is not supported by this target", t.Name)
}

// defaultEntry is what a read of t's default entry returns.
func (s *Server) defaultEntry(t *tableInfo) *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: t.ID, IsDefaultAction: true,
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: t.ConstDefaultActionID}}}}
}

// unsupportedEntity answers updates and reads of entity kinds the P4Info has
// none of.
func unsupportedEntity(e *p4v1.Entity) *uerr {
	return errf(codes.InvalidArgument, "entity %s: the graygw P4Info declares none (only table, counter and direct counter entries exist)",
		strings.TrimPrefix(fmt.Sprintf("%T", e.GetEntity()), "*v1.Entity_"))
}
