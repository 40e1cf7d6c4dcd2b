package server_test

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/p4rtest"
)

func session(id uint32, ports ...uint32) *p4v1.Entity {
	cs := &p4v1.CloneSessionEntry{SessionId: id}
	for _, p := range ports {
		cs.Replicas = append(cs.Replicas, &p4v1.Replica{PortKind: &p4v1.Replica_EgressPort{EgressPort: p}, Instance: 1})
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
		Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: cs}}}}
}

func preUpdate(typ p4v1.Update_Type, e *p4v1.Entity) *p4v1.Update {
	return &p4v1.Update{Type: typ, Entity: e}
}

// Clone sessions behave as on BMv2: written, read back (all, or one by id),
// modified, deleted; the usual errors; journaled, so a restart keeps them.
func TestCloneSessions(t *testing.T) {
	h := newHarness(t, withStateDir(t.TempDir()))
	a := h.connect("", eid(50))
	a.expectArb(codes.OK, eid(50))
	h.setPipeline(a, actCommit, h.info.P4Info(), 1)

	h.mustWrite(a, preUpdate(p4v1.Update_INSERT, session(1, 0)), preUpdate(p4v1.Update_INSERT, session(7, 2, 3)))
	all := &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{}}}
	p4rtest.SameEntities(t, h.read(all), []*p4v1.Entity{session(1, 0), session(7, 2, 3)})
	p4rtest.SameEntities(t, h.read(session(7)), []*p4v1.Entity{session(7, 2, 3)})

	for name, c := range map[string]struct {
		u    *p4v1.Update
		want codes.Code
	}{
		"insert twice":   {preUpdate(p4v1.Update_INSERT, session(1, 4)), codes.AlreadyExists},
		"modify missing": {preUpdate(p4v1.Update_MODIFY, session(2, 4)), codes.NotFound},
		"delete missing": {preUpdate(p4v1.Update_DELETE, session(2)), codes.NotFound},
		"id 0":           {preUpdate(p4v1.Update_INSERT, session(0, 1)), codes.OutOfRange},
		"id too large":   {preUpdate(p4v1.Update_INSERT, session(40000, 1)), codes.OutOfRange},
		"no replica":     {preUpdate(p4v1.Update_INSERT, session(3)), codes.InvalidArgument},
		"same replica":   {preUpdate(p4v1.Update_INSERT, session(3, 1, 1)), codes.InvalidArgument},
		"multicast": {preUpdate(p4v1.Update_INSERT, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{
			PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{
				MulticastGroupEntry: &p4v1.MulticastGroupEntry{MulticastGroupId: 1}}}}}), codes.Unimplemented},
	} {
		if got := h.updateCodes(a, c.u); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
	h.mustWrite(a, preUpdate(p4v1.Update_MODIFY, session(1, 5)), preUpdate(p4v1.Update_DELETE, session(7)))
	want := []*p4v1.Entity{session(1, 5)}
	p4rtest.SameEntities(t, h.read(all), want)

	h.restart()
	p4rtest.SameEntities(t, h.read(all), want)
	if got := h.read(session(7)); len(got) != 0 {
		t.Fatalf("deleted session read back after restart: %v", got)
	}
	// A new pipeline empties the replication engine, as every table.
	a = h.connect("", eid(51))
	a.expectArb(codes.OK, eid(51))
	h.setPipeline(a, actCommit, h.info.P4Info(), 2)
	if got := h.read(all); len(got) != 0 {
		t.Fatalf("sessions after a new pipeline: %d", len(got))
	}
}
