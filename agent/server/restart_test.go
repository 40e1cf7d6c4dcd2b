package server_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/testvectors"
)

// TestRestartKeepsEverything: stop the agent and start another over the same
// dataplane and state directory. Reads return what was written, the pipeline
// and cookie are still set, the highest election id is remembered, and packets
// were decided the same way throughout.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, withStateDir(dir))
	a := h.connect("", eid(50))
	a.expectArb(codes.OK, eid(50))
	h.setPipeline(a, actCommit, h.info.P4Info(), 777)
	b := h.b()
	f, _ := testvectors.Committed()
	h.mustWrite(a, stateUpdates(t, b, f.States["basic"])...)
	var extra []*p4v1.Update
	for _, es := range symmetryEntries(b) {
		for _, te := range es {
			extra = append(extra, ins(te))
		}
	}
	for _, u := range h.updateCodes(a, extra...) {
		_ = u // some collide with the basic state; the read below is the reference
	}
	h.mustWrite(a, del(b.VIP(uint32(ip32(t, testvectors.VIP2.String())), 0, 0)))
	before := h.read(ent(&p4v1.TableEntry{}))
	dpBefore := h.mem.State()
	frame, _ := f.Cases[0].Frame()
	decision := h.mem.Process(frame)

	h.restart()

	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), before)
	if got := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY).GetCookie().GetCookie(); got != 777 {
		t.Fatalf("cookie after restart = %d", got)
	}
	if r := h.mem.Process(frame); r.Verdict != decision.Verdict || r.BackendID != decision.BackendID {
		t.Fatalf("decision changed across the restart: %+v vs %+v", r, decision)
	}
	if after := h.mem.State(); len(after.BackendSelect) != len(dpBefore.BackendSelect) || len(after.VIPs) != len(dpBefore.VIPs) ||
		len(after.GrayRules) != len(dpBefore.GrayRules) {
		t.Fatal("dataplane content changed across the restart")
	}
	// The highest election id (50) survives: 40 is a backup, 50 is primary.
	lo := h.connect("", eid(40))
	lo.expectArb(codes.NotFound, eid(50))
	hi := h.connect("", eid(50))
	hi.expectArb(codes.OK, eid(50))
	lo.expectArb(codes.AlreadyExists, eid(50))
	h.mustWrite(hi, del(b.VIP(uint32(ip32(t, testvectors.VIP1.String())), 0, 0)))
	if _, ok := h.mem.State().VIPs[uint32(ip32(t, testvectors.VIP1.String()))]; ok {
		t.Fatal("delete after restart did not reach the dataplane")
	}
	// And a second restart after compaction.
	if err := h.srv.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	before = h.read(ent(&p4v1.TableEntry{}))
	h.restart()
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), before)
}

// TestRestartRemovesStrays: entries in the dataplane the journal does not account
// for (written behind the agent's back) are removed on restart.
func TestRestartRemovesStrays(t *testing.T) {
	h := newHarness(t, withStateDir(t.TempDir()))
	a := h.ready()
	b := h.b()
	h.mustWrite(a, ins(b.VIP(1, 1, 1)), ins(b.Bucket(1, 1, 1)))
	h.mem.SetVIP(99, model.VIP{ID: 9})
	h.mem.SetBucket(3, 3, 3)
	h.mem.InsertRule(model.GrayRule{Priority: 1, Action: model.SetPool})
	h.restart()
	st := h.mem.State()
	if _, ok := st.VIPs[99]; ok || len(st.VIPs) != 1 || len(st.BackendSelect) != 1 || len(st.GrayRules) != 0 {
		t.Fatalf("strays kept: %+v", st)
	}
}

// TestFreshStateDirLeavesDataplaneAlone: with no journal (first start, or state
// dir lost) the agent does not touch what the dataplane holds.
func TestFreshStateDirLeavesDataplaneAlone(t *testing.T) {
	h := newHarness(t)
	h.mem.SetVIP(99, model.VIP{ID: 9})
	h.dir = t.TempDir()
	h.restart()
	if _, ok := h.mem.State().VIPs[99]; !ok {
		t.Fatal("a fresh agent removed dataplane entries")
	}
	if c := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL); c != nil {
		t.Fatalf("fresh agent has a config: %v", c)
	}
}

func TestRestartAfterRebootDiscardsJournal(t *testing.T) {
	h := newHarness(t, withStateDir(t.TempDir()))
	a := h.ready()
	h.mustWrite(a, ins(h.b().VIP(1, 1, 1)))
	// Same generation: restored.
	h.restart()
	h.wantEntries(t, 1, "restored")
	// Another generation (a reboot: the pinned maps the journal describes are
	// gone): the journal is discarded, the agent starts as after a full restart.
	h.gen = "after-reboot"
	h.restart()
	if c := h.getConfig(p4v1.GetForwardingPipelineConfigRequest_ALL); c != nil {
		t.Fatalf("config survived a generation change: %v", c)
	}
	a = h.primary()
	h.setPipeline(a, actCommit, h.info.P4Info(), 1)
	h.wantEntries(t, 0, "after a generation change")
}

func TestDrain(t *testing.T) {
	h := newHarness(t, withStateDir(t.TempDir()))
	a := h.ready()
	h.mustWrite(a, ins(h.b().VIP(1, 1, 1)))
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	a.expectEnd(codes.Unavailable)
	if err := h.write(a, ins(h.b().VIP(2, 1, 1))); status.Code(err) != codes.Unavailable {
		t.Fatalf("write while draining = %v, want UNAVAILABLE", err)
	}
	if err := h.setPipelineErr(a, actReconcile, h.info.P4Info(), 1); status.Code(err) != codes.Unavailable {
		t.Fatalf("set pipeline while draining = %v, want UNAVAILABLE", err)
	}
	h.wantEntries(t, 1, "read while draining")
	st, err := h.c.StreamChannel(ctx(t))
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("new stream while draining = %v, want UNAVAILABLE", err)
	}
}

// TestCorruptJournalRefusesAndLeavesDataplane: a journal damaged in the middle
// (the flipped byte) makes New refuse with journal.ErrCorrupt, naming the
// file, and the dataplane keeps the entries it was forwarding with: no rollback to
// an older view.
func TestCorruptJournalRefusesAndLeavesDataplane(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, withStateDir(dir))
	a := h.ready()
	for i := range 20 {
		h.mustWrite(a, ins(h.b().VIP(uint32(100+i), uint64(i+1), 1)))
	}
	h.stop()
	path := filepath.Join(dir, journal.LogFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	os.WriteFile(path, b, 0o600)
	before := h.mem.State()

	_, err = server.New(server.Config{DeviceID: device, P4Info: h.info, Dataplane: h.dp, StateDir: dir,
		Generation: h.gen, Logger: quietLogger()})
	if !errors.Is(err, journal.ErrCorrupt) || !strings.Contains(err.Error(), path+" at offset") {
		t.Fatalf("server.New over a corrupt journal = %v, want journal.ErrCorrupt naming %s", err, path)
	}
	if after := h.mem.State(); len(after.VIPs) != 20 || !maps.Equal(after.VIPs, before.VIPs) {
		t.Fatalf("dataplane changed by a refused start: %d VIPs, want the 20 written", len(after.VIPs))
	}
}
