package server

import (
	"encoding/binary"
	"slices"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// The packet replication engine (spec §9.5): clone sessions, which the v1model
// program's mirror (docs/pipeline.md §10) clones to. The XDP dataplane makes its
// copies without one, so a session changes nothing in it; the agent keeps
// sessions as BMv2 does (write, read back, errors) so that a controller drives a
// mixed fleet alike, and journals them like table entries, in the view under
// the pseudo table cloneSessions (key: the session id, 4 bytes big-endian;
// value: the CloneSessionEntry, deterministic protobuf). Multicast groups are
// not supported: no action of the pipeline uses one.

// cloneSessions is the view's pseudo table of clone sessions: not a P4Info id
// (their top byte names the kind; 0xff names none).
const cloneSessions uint32 = 0xff000001

// maxCloneSession is the largest session id BMv2 accepts (its mirroring
// sessions are numbered below 32768).
const maxCloneSession = 32767

func sessionKey(id uint32) string { return string(binary.BigEndian.AppendUint32(nil, id)) }

// preparePRE validates a PacketReplicationEngineEntry write against the overlay.
func (s *Server) preparePRE(ov *overlay, typ p4v1.Update_Type, pre *p4v1.PacketReplicationEngineEntry) (*op, *uerr) {
	cs := pre.GetCloneSessionEntry()
	if cs == nil {
		if pre.GetMulticastGroupEntry() != nil {
			return nil, errf(codes.Unimplemented, "multicast groups are not supported: only clone sessions")
		}
		return nil, errf(codes.InvalidArgument, "PacketReplicationEngineEntry without a clone session entry")
	}
	id := cs.GetSessionId()
	if id == 0 || id > maxCloneSession {
		return nil, errf(codes.OutOfRange, "clone session id %d: must be 1..%d", id, maxCloneSession)
	}
	key := sessionKey(id)
	_, exists := ov.get(cloneSessions, key)
	o := &op{kind: typ, pre: true, key: key}
	switch typ {
	case p4v1.Update_INSERT:
		if exists {
			return nil, errf(codes.AlreadyExists, "clone session %d exists", id)
		}
	case p4v1.Update_MODIFY, p4v1.Update_DELETE:
		if !exists {
			return nil, errf(codes.NotFound, "clone session %d: no such session", id)
		}
	}
	if typ == p4v1.Update_DELETE {
		ov.set(cloneSessions, key, nil)
		return o, nil
	}
	if len(cs.GetReplicas()) == 0 {
		return nil, errf(codes.InvalidArgument, "clone session %d: no replica", id)
	}
	seen := map[[2]uint64]bool{}
	for _, r := range cs.GetReplicas() {
		if len(r.GetBackupReplicas()) != 0 {
			return nil, errf(codes.Unimplemented, "clone session %d: backup replicas are not supported", id)
		}
		port := uint64(r.GetEgressPort())
		if p := r.GetPort(); len(p) > 0 {
			if len(p) > 8 {
				return nil, errf(codes.InvalidArgument, "clone session %d: port of %d bytes", id, len(p))
			}
			port = 0
			for _, b := range p {
				port = port<<8 | uint64(b)
			}
		}
		k := [2]uint64{port, uint64(r.GetInstance())}
		if seen[k] {
			return nil, errf(codes.InvalidArgument, "clone session %d: replica (port %d, instance %d) twice", id, port, k[1])
		}
		seen[k] = true
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cs)
	if err != nil {
		return nil, errf(codes.Internal, "clone session %d: %v", id, err)
	}
	o.val = string(b)
	ov.set(cloneSessions, key, &o.val)
	return o, nil
}

// applyPRE records a prepared clone session op in the view.
func (s *Server) applyPRE(o *op) *uerr {
	_, exists := s.view[cloneSessions][o.key]
	switch {
	case o.kind == p4v1.Update_INSERT && exists:
		return errf(codes.AlreadyExists, "clone session exists")
	case o.kind != p4v1.Update_INSERT && !exists:
		return errf(codes.NotFound, "clone session: no such session (an earlier update of the batch failed)")
	case o.kind == p4v1.Update_DELETE:
		delete(s.view[cloneSessions], o.key)
	default:
		s.view[cloneSessions][o.key] = o.val
	}
	return nil
}

// readPRE answers a PacketReplicationEngineEntry read: every clone session, or
// the one whose id is given. Callers hold viewMu.
func (s *Server) readPRE(pre *p4v1.PacketReplicationEngineEntry, out *[]*p4v1.Entity) *uerr {
	if pre.GetMulticastGroupEntry() != nil {
		return nil // none exist
	}
	id := pre.GetCloneSessionEntry().GetSessionId()
	var keys []string
	if id != 0 {
		if _, ok := s.view[cloneSessions][sessionKey(id)]; ok {
			keys = append(keys, sessionKey(id))
		}
	} else {
		for k := range s.view[cloneSessions] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	for _, k := range keys {
		cs := &p4v1.CloneSessionEntry{}
		if err := proto.Unmarshal([]byte(s.view[cloneSessions][k]), cs); err != nil {
			return errf(codes.Internal, "clone session: %v", err)
		}
		*out = append(*out, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{
			PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
				Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: cs}}}})
	}
	return nil
}
