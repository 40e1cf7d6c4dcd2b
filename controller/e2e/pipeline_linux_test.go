//go:build linux

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
)

// TestNewProgramOnRunningBMv2: a controller restarted with another BMv2
// program (another device config, so another cookie) in front of a gateway
// that forwards with the old one, as on an upgrade. BMv2 cannot reconcile a
// pipeline, and a failed RECONCILE_AND_COMMIT leaves it refusing every later
// push until a COMMIT while already reporting the new cookie (docs/bmv2.md):
// without the controller's recovery the push failed and the next pass,
// trusting the cookie, left the old program running. The new engine must push
// the program once, end in sync with the gateway reporting the new cookie,
// write back every entry it had (byte for byte), and the gateway must forward
// every flow to the backend the tables pick.
func TestNewProgramOnRunningBMv2(t *testing.T) {
	tl := newLab(t, "gge2u", targetBMv2)
	path := filepath.Join(t.TempDir(), "controller.db")
	st := openStore(t, path)
	e1 := tl.newEngine(t, st)
	in := tl.load(t, []int{11, 12, 13})
	apply(t, e1, in, 1)
	before := tl.agent.rawEntries(t)
	if err := e1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The same program with one more byte: BMv2 loads it the same, its
	// cookie differs.
	old, err := os.ReadFile(tl.bmv2.program)
	if err != nil {
		t.Fatal(err)
	}
	newProgram := append(append([]byte(nil), old...), '\n')
	tl.bmv2.program = filepath.Join(t.TempDir(), "graygw-new.json")
	if err := os.WriteFile(tl.bmv2.program, newProgram, 0o600); err != nil {
		t.Fatal(err)
	}
	st2 := openStore(t, path)
	defer st2.Close()
	e2 := tl.newEngine(t, st2)
	_, s := apply(t, e2, in, 1)
	if s.PipelinePushes != 1 || !s.InSync {
		t.Fatalf("new program: %d pipeline pushes, in sync %v; want 1 push: %+v", s.PipelinePushes, s.InSync, s)
	}
	want := engine.Cookie(stack.P4Info(t), newProgram)
	if got := tl.agent.cookie(t); got != want {
		t.Fatalf("gateway runs cookie %#x, want the new program's %#x", got, want)
	}
	after := tl.agent.rawEntries(t)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("entries differ after the new program: %d before, %d after", len(before), len(after))
	}
	fs := flows(200)
	tl.observe(t, tl.agent.installed(t), fs, 1)
	t.Logf("new program pushed once (%d entries written again, %d in the gateway), cookie %#x; %d flows forwarded as the tables pick",
		s.EntriesWritten, len(after), want, len(fs))
}

// cookie reads the cookie of the pipeline the gateway runs.
func (a *agent) cookie(t *testing.T) uint64 {
	t.Helper()
	conn := stack.Conn(t, a.addr)
	defer conn.Close()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p4v1.NewP4RuntimeClient(conn).GetForwardingPipelineConfig(c, &p4v1.GetForwardingPipelineConfigRequest{
		DeviceId: 1, ResponseType: p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConfig().GetCookie().GetCookie()
}
