package server_test

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestCapabilities(t *testing.T) {
	h := newHarness(t)
	r, err := h.c.Capabilities(ctx(t), &p4v1.CapabilitiesRequest{})
	if err != nil || r.GetP4RuntimeApiVersion() != "1.5.0" {
		t.Fatalf("Capabilities = %v, %v; want 1.5.0", r, err)
	}
	if _, err := h.c.Capabilities(ctx(t), &p4v1.CapabilitiesRequest{DeviceId: device}); err != nil {
		t.Fatalf("Capabilities(device 1) = %v", err)
	}
	if _, err := h.c.Capabilities(ctx(t), &p4v1.CapabilitiesRequest{DeviceId: 7}); status.Code(err) != codes.NotFound {
		t.Fatalf("Capabilities(device 7) = %v, want NOT_FOUND", err)
	}
}

func TestArbitrationPrimaryAndBackups(t *testing.T) {
	h := newHarness(t)
	a := h.connect("", eid(10))
	a.expectArb(codes.OK, eid(10))

	// A lower id is a backup: told ALREADY_EXISTS with the primary's id; the
	// primary hears nothing.
	b := h.connect("", eid(5))
	b.expectArb(codes.AlreadyExists, eid(10))
	a.expectQuiet()

	h.setPipeline(a, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, h.info.P4Info(), 1)
	vip := h.b().VIP(0x0aff0001, 1, 1)
	if err := h.write(b, ins(vip)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write from backup = %v, want PERMISSION_DENIED", err)
	}
	if err := h.write(&controller{id: eid(99)}, ins(vip)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write with a made-up election id = %v, want PERMISSION_DENIED", err)
	}
	if err := h.write(&controller{}, ins(vip)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write without election id = %v, want PERMISSION_DENIED", err)
	}
	h.mustWrite(a, ins(vip))

	// A higher id takes over: everyone is told, with the new id.
	c := h.connect("", eid(20))
	c.expectArb(codes.OK, eid(20))
	a.expectArb(codes.AlreadyExists, eid(20))
	b.expectArb(codes.AlreadyExists, eid(20))
	if err := h.write(a, del(vip)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write from the old primary = %v, want PERMISSION_DENIED", err)
	}
	h.mustWrite(c, del(vip))

	// The primary leaves: the backups are told there is none (NOT_FOUND), with
	// the highest id seen.
	c.cancel()
	a.expectArb(codes.NotFound, eid(20))
	b.expectArb(codes.NotFound, eid(20))

	// Re-sending a lower id than the highest ever seen does not make a primary.
	b.arbitrate(device, "", eid(6))
	b.expectArb(codes.NotFound, eid(20))
	a.expectQuiet()
	// Equal to the highest ever seen does.
	b.arbitrate(device, "", eid(20))
	b.expectArb(codes.OK, eid(20))
	a.expectArb(codes.AlreadyExists, eid(20))
	h.mustWrite(&controller{id: eid(20)}, ins(vip))

	// The primary steps down (lower id): everyone hears there is no primary.
	b.arbitrate(device, "", eid(7))
	b.expectArb(codes.NotFound, eid(20))
	a.expectArb(codes.NotFound, eid(20))
}

func TestArbitrationErrors(t *testing.T) {
	h := newHarness(t)
	a := h.connect("", eid(10))
	a.expectArb(codes.OK, eid(10))

	dup := h.connect("", eid(10))
	dup.expectEnd(codes.InvalidArgument)

	wd := h.connectDevice(99, eid(3))
	wd.expectEnd(codes.NotFound)

	// Changing role or device on a live stream: FAILED_PRECONDITION.
	b := h.connect("", eid(3))
	b.expectArb(codes.AlreadyExists, eid(10))
	b.arbitrate(device, "other", eid(3))
	b.expectEnd(codes.FailedPrecondition)
	c := h.connect("", eid(4))
	c.expectArb(codes.AlreadyExists, eid(10))
	c.arbitrate(2, "", eid(4))
	c.expectEnd(codes.FailedPrecondition)

	// role.config is not supported.
	d := h.newStream()
	cfg, _ := anypb.New(&p4v1.Uint128{})
	d.send(&p4v1.MasterArbitrationUpdate{DeviceId: device, Role: &p4v1.Role{Name: "r", Config: cfg}, ElectionId: eid(1)})
	d.expectEnd(codes.InvalidArgument)

	// An unset election id is a backup forever, and may be shared.
	e1 := h.connect("", nil)
	e1.expectArb(codes.AlreadyExists, eid(10))
	e2 := h.connect("", nil)
	e2.expectArb(codes.AlreadyExists, eid(10))
}

func TestArbitrationRoles(t *testing.T) {
	h := newHarness(t)
	a := h.connect("", eid(1))
	a.expectArb(codes.OK, eid(1))
	h.setPipeline(a, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, h.info.P4Info(), 1)

	// Roles are elected independently; the same election id may be reused.
	r := h.connect("rules", eid(1))
	r.expectArb(codes.OK, eid(1))
	a.expectQuiet()
	h.mustWrite(r, ins(h.b().VIP(1, 1, 1)))

	// A write naming a role nobody arbitrated for: NOT_FOUND.
	if err := h.write(&controller{role: "nobody", id: eid(1)}, ins(h.b().VIP(2, 1, 1))); status.Code(err) != codes.NotFound {
		t.Fatalf("write for an unknown role = %v, want NOT_FOUND", err)
	}
	// A wrong device: NOT_FOUND before anything else.
	req := a.writeReq(ins(h.b().VIP(3, 1, 1)))
	req.DeviceId = 2
	if _, err := h.c.Write(ctx(t), req); status.Code(err) != codes.NotFound {
		t.Fatalf("write to device 2 = %v, want NOT_FOUND", err)
	}
}

func TestStreamErrorsForPacketIO(t *testing.T) {
	h := newHarness(t)
	a := h.primary()
	if err := a.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Packet{Packet: &p4v1.PacketOut{Payload: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	m, err := a.recv()
	if err != nil || m.GetError() == nil || codes.Code(m.GetError().GetCanonicalCode()) != codes.Unimplemented ||
		m.GetError().GetPacketOut() == nil {
		t.Fatalf("packet-out answer = %v, %v; want a StreamError UNIMPLEMENTED with packet_out details", m, err)
	}
	// The stream stays up: arbitration still works.
	a.arbitrate(device, "", eid(1))
	a.expectArb(codes.OK, eid(1))
}

// newStream opens a stream without sending anything.
func (h *harness) newStream() *rawStream {
	h.t.Helper()
	st, err := h.c.StreamChannel(ctx(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	r := &rawStream{controller{t: h.t, stream: st}}
	r.start()
	return r
}

type rawStream struct{ controller }

func (r *rawStream) send(u *p4v1.MasterArbitrationUpdate) {
	if err := r.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: u}}); err != nil {
		r.t.Fatal(err)
	}
}

func (h *harness) connectDevice(dev uint64, id *p4v1.Uint128) *controller {
	r := h.newStream()
	r.send(&p4v1.MasterArbitrationUpdate{DeviceId: dev, ElectionId: id})
	return &r.controller
}
