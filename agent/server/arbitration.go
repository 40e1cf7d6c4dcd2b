package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// Client arbitration (spec §5 and §16.2): per (device, role) the primary is the
// live controller whose election_id is the highest the server has ever seen for
// that role; a controller with a lower or unset election_id is a backup. The
// highest id survives an agent restart (journal), as the spec asks of an
// in-service restart; only a full restart (new journal generation) resets it.
//
// Roles: any role name is accepted, with full pipeline access; a role.config is
// refused (INVALID_ARGUMENT) because the agent has no role configuration scheme.

type uint128 struct{ hi, lo uint64 }

func (a uint128) cmp(b uint128) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func fromProto(u *p4v1.Uint128) *uint128 {
	if u == nil {
		return nil
	}
	return &uint128{u.GetHigh(), u.GetLow()}
}

func (a *uint128) proto() *p4v1.Uint128 {
	if a == nil {
		return nil
	}
	return &p4v1.Uint128{High: a.hi, Low: a.lo}
}

// roleState is the arbitration state of one role of the served device.
type roleState struct {
	highest *uint128 // election_id_past; nil before any
	primary *stream
	members map[*stream]struct{}
}

// roleState returns (creating) the state of role. Callers hold arbMu, or are
// single-threaded (journal replay).
func (s *Server) roleState(role string) *roleState {
	rs := s.roles[role]
	if rs == nil {
		rs = &roleState{members: map[*stream]struct{}{}}
		s.roles[role] = rs
	}
	return rs
}

// stream is one StreamChannel.
type stream struct {
	out     chan *p4v1.StreamMessageResponse
	done    chan struct{}
	endOnce sync.Once
	endErr  error

	// Set by the first accepted MasterArbitrationUpdate (under arbMu).
	arbitrated bool
	device     uint64
	role       string
	hasRole    bool // the client sent a Role message (echoed back)
	election   *uint128
	conn       *conn // the connection the stream runs on (nil: untagged server)
}

// end terminates the stream with err (nil: normally).
func (st *stream) end(err error) {
	st.endOnce.Do(func() {
		st.endErr = err
		close(st.done)
	})
}

// send queues m without blocking; a client that does not read its stream
// channel is disconnected rather than allowed to stall arbitration.
func (st *stream) send(m *p4v1.StreamMessageResponse) {
	select {
	case st.out <- m:
	case <-st.done:
	default:
		st.end(errf(codes.ResourceExhausted, "stream channel not read: %d messages pending", cap(st.out)).grpc())
	}
}

// StreamChannel implements the StreamChannel RPC: arbitration, and a StreamError
// for packet-out, digest acks and anything else (the P4Info declares no packet
// I/O and no digests).
func (s *Server) StreamChannel(srv p4v1.P4Runtime_StreamChannelServer) error {
	st := &stream{out: make(chan *p4v1.StreamMessageResponse, 256), done: make(chan struct{}), conn: connOf(srv.Context())}
	s.arbMu.Lock()
	if s.draining.Load() {
		s.arbMu.Unlock()
		return errf(codes.Unavailable, "agent draining").grpc()
	}
	s.streams[st] = struct{}{}
	s.arbMu.Unlock()
	defer s.leave(st)

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case m := <-st.out:
				if err := srv.Send(m); err != nil {
					st.end(err)
					return
				}
			case <-st.done:
				// Flush what was queued before the end (the final notifications).
				for {
					select {
					case m := <-st.out:
						if srv.Send(m) != nil {
							return
						}
					default:
						return
					}
				}
			}
		}
	}()
	go func() {
		for {
			m, err := srv.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				st.end(err)
				return
			}
			if e := s.handleStream(st, m); e != nil {
				st.end(e.grpc())
				return
			}
		}
	}()
	select {
	case <-st.done:
	case <-srv.Context().Done():
		st.end(srv.Context().Err())
	}
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
	}
	return st.endErr
}

func (s *Server) handleStream(st *stream, m *p4v1.StreamMessageRequest) *uerr {
	switch u := m.GetUpdate().(type) {
	case *p4v1.StreamMessageRequest_Arbitration:
		return s.arbitrate(st, u.Arbitration)
	case *p4v1.StreamMessageRequest_Packet:
		code := codes.Unimplemented
		msg := "packet-out is not supported: the P4Info declares no controller packet metadata"
		if !s.isPrimary(st) {
			code, msg = codes.PermissionDenied, "packet-out from a controller that is not the primary"
		}
		st.send(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Error{Error: &p4v1.StreamError{
			CanonicalCode: int32(code), Message: msg, Space: ErrSpace,
			Details: &p4v1.StreamError_PacketOut{PacketOut: &p4v1.PacketOutError{PacketOut: u.Packet}}}}})
	case *p4v1.StreamMessageRequest_DigestAck:
		st.send(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Error{Error: &p4v1.StreamError{
			CanonicalCode: int32(codes.InvalidArgument), Message: "digest ack: the P4Info declares no digests", Space: ErrSpace,
			Details: &p4v1.StreamError_DigestListAck{DigestListAck: &p4v1.DigestListAckError{DigestListAck: u.DigestAck}}}}})
	default:
		st.send(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Error{Error: &p4v1.StreamError{
			CanonicalCode: int32(codes.Unimplemented), Message: "unsupported stream message", Space: ErrSpace,
			Details: &p4v1.StreamError_Other{Other: &p4v1.StreamOtherError{}}}}})
	}
	return nil
}

func (s *Server) isPrimary(st *stream) bool {
	s.arbMu.Lock()
	defer s.arbMu.Unlock()
	rs := s.roles[st.role]
	return st.arbitrated && rs != nil && rs.primary == st
}

// arbitrate applies a MasterArbitrationUpdate (spec §5.3). A returned error ends
// the stream with that status.
func (s *Server) arbitrate(st *stream, u *p4v1.MasterArbitrationUpdate) *uerr {
	if u.GetRole().GetConfig() != nil {
		return errf(codes.InvalidArgument, "role.config is not supported: this agent gives every role full pipeline access; leave it unset")
	}
	role := u.GetRole().GetName()
	eid := fromProto(u.GetElectionId())

	// A primary change must wait for the writes in flight (spec §5.3, 1.b).
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.arbMu.Lock()
	defer s.arbMu.Unlock()

	if !st.arbitrated {
		if u.GetDeviceId() != s.cfg.DeviceID {
			return errf(codes.NotFound, "device_id %d unknown: this agent serves device %d", u.GetDeviceId(), s.cfg.DeviceID)
		}
	} else {
		if u.GetDeviceId() != st.device {
			return errf(codes.FailedPrecondition, "device_id %d differs from this stream's %d", u.GetDeviceId(), st.device)
		}
		if role != st.role {
			return errf(codes.FailedPrecondition, "role %q differs from this stream's %q: open a new stream to change role", role, st.role)
		}
	}
	rs := s.roleState(role)
	if eid != nil {
		for other := range rs.members {
			if other != st && other.election != nil && *other.election == *eid {
				return errf(codes.InvalidArgument, "election_id {high:%d low:%d} is already used by another controller of role %q", eid.hi, eid.lo, role)
			}
		}
	}
	st.arbitrated, st.device, st.role, st.hasRole, st.election = true, u.GetDeviceId(), role, u.GetRole() != nil, eid
	rs.members[st] = struct{}{}
	wasPrimary := rs.primary == st

	if eid != nil && (rs.highest == nil || eid.cmp(*rs.highest) >= 0) {
		if rs.highest == nil || *rs.highest != *eid {
			id := *eid
			rs.highest = &id
			if s.journal != nil {
				if err := s.journal.Append(encodeElection(role, id)); err != nil {
					s.log.Error("journal: election id not recorded", "role", role, "err", err)
				}
			}
		}
		rs.primary = st
		s.notifyAll(rs)
		s.log.Info("primary elected", "role", role, "election_id_high", eid.hi, "election_id_low", eid.lo)
		return nil
	}
	if wasPrimary {
		rs.primary = nil
		s.notifyAll(rs)
		s.log.Info("primary stepped down", "role", role)
		return nil
	}
	s.notify(rs, st)
	return nil
}

// notifyAll sends the advisory MasterArbitrationUpdate to every controller of the
// role (spec §5.4).
func (s *Server) notifyAll(rs *roleState) {
	for st := range rs.members {
		s.notify(rs, st)
	}
}

func (s *Server) notify(rs *roleState, st *stream) {
	code, msg := codes.OK, "primary"
	switch {
	case rs.primary == st:
	case rs.primary != nil:
		code, msg = codes.AlreadyExists, "backup: another controller is primary"
	default:
		code, msg = codes.NotFound, "backup: no primary"
	}
	u := &p4v1.MasterArbitrationUpdate{DeviceId: st.device, ElectionId: rs.highest.proto(),
		Status: &spb.Status{Code: int32(code), Message: msg}}
	if st.hasRole || st.role != "" {
		u.Role = &p4v1.Role{Name: st.role}
	}
	st.send(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Arbitration{Arbitration: u}})
}

// leave forgets a closed stream; a primary leaving is announced to the rest.
func (s *Server) leave(st *stream) {
	s.arbMu.Lock()
	defer s.arbMu.Unlock()
	delete(s.streams, st)
	if !st.arbitrated {
		return
	}
	rs := s.roles[st.role]
	delete(rs.members, st)
	if rs.primary == st {
		rs.primary = nil
		s.notifyAll(rs)
		s.log.Info("primary disconnected", "role", st.role)
	}
}

// checkPrimary implements the Write/SetForwardingPipelineConfig checks 1 (role
// known: NOT_FOUND) and 2 (primary: PERMISSION_DENIED) of spec §12. Beyond the
// spec, the request must arrive on the connection of the primary's stream: the
// election id is not a secret (every backup learns it from the arbitration
// updates), so quoting it from another connection is refused.
func (s *Server) checkPrimary(ctx context.Context, role string, election *p4v1.Uint128) *uerr {
	s.arbMu.Lock()
	defer s.arbMu.Unlock()
	rs, ok := s.roles[role]
	if !ok && role != "" {
		return errf(codes.NotFound, "role %q unknown: no controller has arbitrated for it", role)
	}
	eid := fromProto(election)
	switch {
	case eid == nil:
		return errf(codes.PermissionDenied, "election_id unset: only the primary may write")
	case rs == nil || rs.primary == nil:
		return errf(codes.PermissionDenied, "role %q has no primary: open a StreamChannel and arbitrate first", role)
	case *rs.primary.election != *eid:
		return errf(codes.PermissionDenied, "election_id {high:%d low:%d} is not the primary's {high:%d low:%d}",
			eid.hi, eid.lo, rs.primary.election.hi, rs.primary.election.lo)
	case rs.primary.conn != nil && connOf(ctx) != rs.primary.conn:
		s.log.Warn("write refused: the primary's election id quoted from another connection", "role", role)
		return errf(codes.PermissionDenied, "election_id is the primary's, but this request does not come on the primary's "+
			"connection: writes go on the connection that holds the primary StreamChannel")
	}
	return nil
}
