package server_test

import (
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/p4src"
)

const (
	actVerify    = p4v1.SetForwardingPipelineConfigRequest_VERIFY
	actSave      = p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE
	actCommit    = p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT
	actCommitOld = p4v1.SetForwardingPipelineConfigRequest_COMMIT
	actReconcile = p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT
)

func (h *harness) getConfig(rt p4v1.GetForwardingPipelineConfigRequest_ResponseType) *p4v1.ForwardingPipelineConfig {
	h.t.Helper()
	r, err := h.c.GetForwardingPipelineConfig(ctx(h.t), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: device, ResponseType: rt})
	if err != nil {
		h.t.Fatalf("GetForwardingPipelineConfig: %v", err)
	}
	return r.GetConfig()
}

func TestNothingBeforePipeline(t *testing.T) {
	h := newHarness(t)
	a := h.primary()
	if err := h.write(a, ins(h.b().VIP(1, 1, 1))); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("write before the pipeline = %v, want FAILED_PRECONDITION", err)
	}
	if _, err := h.readErr(ent(&p4v1.TableEntry{})); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("read before the pipeline = %v, want FAILED_PRECONDITION", err)
	}
	if c := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL); c != nil {
		t.Fatalf("config before any was set: %v", c)
	}
}

func TestSetPipelineAcceptsTheProjectP4InfoSemantically(t *testing.T) {
	h := newHarness(t)
	a := h.primary()

	// The text file parsed anew, reordered and documented: the same pipeline.
	p, err := p4info.Parse(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	p.Tables[0], p.Tables[3] = p.Tables[3], p.Tables[0]
	p.Actions[1].Preamble.Doc = &p4configv1.Documentation{Brief: "a comment"}
	p.PkgInfo.Name = "graygw"
	h.setPipeline(a, actCommit, p, 0xc0ffee)

	all := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL)
	if !proto.Equal(all.GetP4Info(), p) || string(all.GetP4DeviceConfig()) != "xdp" || all.GetCookie().GetCookie() != 0xc0ffee {
		t.Fatalf("ALL returned %v", all)
	}
	ck := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY)
	if ck.GetP4Info() != nil || ck.GetP4DeviceConfig() != nil || ck.GetCookie().GetCookie() != 0xc0ffee {
		t.Fatalf("COOKIE_ONLY returned %v", ck)
	}
	pc := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE)
	if !proto.Equal(pc.GetP4Info(), p) || pc.GetP4DeviceConfig() != nil || pc.GetCookie().GetCookie() != 0xc0ffee {
		t.Fatalf("P4INFO_AND_COOKIE returned %v", pc)
	}
	dc := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE)
	if dc.GetP4Info() != nil || string(dc.GetP4DeviceConfig()) != "xdp" {
		t.Fatalf("DEVICE_CONFIG_AND_COOKIE returned %v", dc)
	}
	if _, err := h.c.GetForwardingPipelineConfig(ctx(t), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: 3}); status.Code(err) != codes.NotFound {
		t.Fatalf("Get for device 3 = %v, want NOT_FOUND", err)
	}
}

func TestSetPipelineRejectsAnotherP4Info(t *testing.T) {
	h := newHarness(t)
	a := h.primary()
	p := clone(h.info.P4Info())
	p.Tables[0].Size = 2048
	p.Actions[2].Params[0].Bitwidth = 32
	for _, action := range []p4v1.SetForwardingPipelineConfigRequest_Action{actVerify, actSave, actCommit, actReconcile} {
		err := h.setPipelineErr(a, action, p, 1)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "size 2048, want 1024") {
			t.Fatalf("%v with a changed P4Info = %v, want INVALID_ARGUMENT naming the difference", action, err)
		}
	}
	if err := h.setPipelineErr(a, actCommit, nil, 0); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("VERIFY_AND_COMMIT without config = %v, want INVALID_ARGUMENT", err)
	}
	if err := h.setPipelineErr(a, p4v1.SetForwardingPipelineConfigRequest_UNSPECIFIED, h.info.P4Info(), 1); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("UNSPECIFIED action = %v, want INVALID_ARGUMENT", err)
	}
	b := h.connect("", eid(0))
	b.expectArb(codes.AlreadyExists, eid(1))
	if err := h.setPipelineErr(b, actCommit, h.info.P4Info(), 1); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Set from a backup = %v, want PERMISSION_DENIED", err)
	}
	if h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL) != nil {
		t.Fatal("a rejected config was installed")
	}
}

func TestPipelineActions(t *testing.T) {
	h := newHarness(t)
	a := h.primary()
	info := h.info.P4Info()

	// VERIFY changes nothing.
	h.setPipeline(a, actVerify, info, 1)
	if h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL) != nil {
		t.Fatal("VERIFY installed a config")
	}
	// COMMIT without a saved config, or with a config.
	if err := h.setPipelineErr(a, actCommitOld, nil, 0); status.Code(err) != codes.NotFound {
		t.Fatalf("COMMIT without saved config = %v, want NOT_FOUND", err)
	}
	if err := h.setPipelineErr(a, actCommitOld, info, 1); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("COMMIT with a config = %v, want INVALID_ARGUMENT", err)
	}
	// VERIFY_AND_SAVE then COMMIT.
	h.setPipeline(a, actSave, info, 2)
	h.mustWrite(a, ins(h.b().VIP(1, 1, 1)))
	h.setPipeline(a, actCommitOld, nil, 0)
	if got := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY).GetCookie().GetCookie(); got != 2 {
		t.Fatalf("cookie after COMMIT = %d, want 2", got)
	}
	h.wantEntries(t, 1, "after COMMIT (state kept)")
	// RECONCILE_AND_COMMIT keeps the forwarding state and takes the new cookie.
	h.setPipeline(a, actReconcile, info, 3)
	h.wantEntries(t, 1, "after RECONCILE_AND_COMMIT (state kept)")
	if got := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY).GetCookie().GetCookie(); got != 3 {
		t.Fatalf("cookie = %d, want 3", got)
	}
	// VERIFY_AND_COMMIT clears it, in the view and in the dataplane.
	h.setPipeline(a, actCommit, info, 4)
	h.wantEntries(t, 0, "after VERIFY_AND_COMMIT (state cleared)")
	if st := h.mem.State(); len(st.VIPs) != 0 {
		t.Fatalf("dataplane still has %d VIPs", len(st.VIPs))
	}
}
