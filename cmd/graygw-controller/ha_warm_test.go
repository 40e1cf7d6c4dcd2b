package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/dataplane"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
)

// waitLog waits until the log at path contains what.
func waitLog(t *testing.T, path, what string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), what) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q", path, what)
		}
	}
}

// TestHATakeoverColdVsWarm measures the takeover after a SIGKILL of the
// leader, with the follower standing by cold (nothing held: elected, it
// dials the gateway and compiles the intent) and warm (a standby P4Runtime
// stream and the intent compiled from its store watch: elected, it raises its
// election id on the open stream), in the same setup: a gateway holding 20
// pools (some 90k entries), lease 2s, 3 rounds each. Both must take over
// writing nothing (the gateway held the intent) and accept a change; the
// figures are logged (docs/ha.md publishes them), not asserted.
func TestHATakeoverColdVsWarm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: six failovers of a 90k-entry gateway")
	}
	cl := etcdlab.Start(t, 3, false)
	const rounds, pools = 3, 20
	type figures struct{ sync, change, elected []time.Duration }
	got := map[string]*figures{}
	for _, mode := range []string{"cold", "warm"} {
		got[mode] = &figures{}
		for round := 1; round <= rounds; round++ {
			addr := startAgent(t, dataplane.NewMemory(dataplane.Limits{}))
			dir := t.TempDir()
			intentFile := filepath.Join(dir, "large.yaml")
			if err := os.WriteFile(intentFile, []byte(largeIntent(addr, pools)), 0o600); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("/%s%d/", mode, round)
			argsA, sockA := haReplica(t, dir, "a", cl.Endpoints(), prefix, "", intentFile)
			argsB, sockB := haReplica(t, dir, "b", cl.Endpoints(), prefix, "", intentFile)
			for _, id := range []string{"a", "b"} {
				cfg := filepath.Join(dir, id+".yaml")
				b, _ := os.ReadFile(cfg)
				os.WriteFile(cfg, []byte(strings.Replace(string(b), "ttl: 2s}", "ttl: 2s, standby: "+mode+"}", 1)), 0o600)
			}
			a := startChild(t, filepath.Join(dir, "a.log"), argsA...)
			ca := stack.Dial(t, sockA)
			waitLeads(t, sockA, ca, time.Now(), "first leader")
			bLog := filepath.Join(dir, "b.log")
			b := startChild(t, bLog, argsB...)
			cb := stack.Dial(t, sockB)
			if mode == "warm" {
				waitLog(t, bLog, "standby: intent compiled")
				// Its standby stream is up before the kill.
				time.Sleep(200 * time.Millisecond)
			} else {
				waitLog(t, bLog, "ha: standing by")
			}
			killed := time.Now()
			a.cmd.Process.Kill()
			took, g := waitLeads(t, sockB, cb, killed, mode+" takeover")
			if g.GetEntriesWritten() != 0 || g.GetPipelinePushes() != 0 || g.GetVersion() != 1 {
				t.Errorf("%s round %d: the new leader's gateway %v: want version 1, nothing written or pushed", mode, round, g)
			}
			cur, err := cb.Get(context.Background(), &graygwv1.GetRequest{})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cb.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: cur.GetIntentYaml() + "\n# after\n",
				Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}})
			if err != nil || !resp.GetResult().GetApplied() || resp.GetResult().GetVersion() != 2 {
				t.Fatalf("%s round %d: apply on the new leader: %v %v", mode, round, resp, err)
			}
			changed := time.Since(killed)
			if mode == "warm" {
				if log, _ := os.ReadFile(bLog); !strings.Contains(string(log), "leading: election id raised on the open sessions") ||
					strings.Contains(string(log), "p4runtime stream down") {
					t.Errorf("warm round %d: b did not take over on its open stream:\n%s", round, log)
				}
			}
			elected := electedAt(t, bLog)
			got[mode].elected = append(got[mode].elected, killed.Add(took).Sub(elected))
			got[mode].sync = append(got[mode].sync, took)
			got[mode].change = append(got[mode].change, changed)
			t.Logf("%s round %d: SIGKILL -> in sync %s (elected -> in sync %s), -> change applied %s; %s", mode, round, took.Round(time.Millisecond),
				killed.Add(took).Sub(elected).Round(time.Millisecond), changed.Round(time.Millisecond), takeoverTimeline(t, bLog))
			if code := b.term(t); code != 0 {
				t.Errorf("%s round %d: b exit %d after SIGTERM", mode, round, code)
			}
		}
	}
	span := func(ds []time.Duration) string {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return fmt.Sprintf("%s-%s", s[0].Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
	}
	for _, mode := range []string{"cold", "warm"} {
		t.Logf("%s standby (%d pools, lease 2s, %d rounds): SIGKILL -> in sync %s, -> change applied %s; elected -> in sync %s",
			mode, pools, rounds, span(got[mode].sync), span(got[mode].change), span(got[mode].elected))
	}
}

// electedAt is when the replica logging to path was elected (its "ha: elected
// leader" line): the takeover after the election is measured from there.
func electedAt(t *testing.T, path string) time.Time {
	t.Helper()
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="ha: elected leader"`) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("%s: elected at %q: %v", path, ts, err)
		}
		return at
	}
	t.Fatalf("%s: no election logged", path)
	return time.Time{}
}

// TestHAStandbyIsWarmOrCold: ha.standby takes warm or cold, anything else is
// refused by field.
func TestHAStandbyIsWarmOrCold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("store: {etcd: {endpoints: [http://127.0.0.1:1]}}\nha: {standby: lukewarm}\n"), 0o600)
	var out strings.Builder
	if code := run([]string{"--config", path}, &out, &out, nil, nil); code != 2 || !strings.Contains(out.String(), `ha.standby: "lukewarm": want warm or cold`) {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}

// takeoverSteps are the log lines of a new leader's takeover, in the order
// they are expected, with the short names takeoverTimeline gives them.
var takeoverSteps = []struct{ msg, name string }{
	{"leading: election id raised on the open sessions", "raised"},
	{"takeover: read back", "read back"},
	{"takeover: diffed", "diffed"},
	{"pool tables recovered from a gateway", "pools recovered"},
	{"pool tables on the gateway are the compiled ones", "pools kept"},
	{"stored intent in force", "intent in force"},
	{"API listening", "API up"},
	{"writing plan", "writing"},
	{"gateway in sync", "in sync"},
}

// takeoverTimeline says when, after its election, the replica logging to path
// reached each step of its takeover (the first line of each after the
// election): where the time after the election goes.
func takeoverTimeline(t *testing.T, path string) string {
	t.Helper()
	elected := electedAt(t, path)
	b, _ := os.ReadFile(path)
	var out []string
	for _, s := range takeoverSteps {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `msg="`+s.msg+`"`) {
				continue
			}
			ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || at.Before(elected) {
				continue
			}
			step := fmt.Sprintf("%s +%s", s.name, at.Sub(elected).Round(time.Millisecond))
			if _, attrs, ok := strings.Cut(line, `msg="`+s.msg+`" `); ok && (s.name == "read back" || s.name == "diffed") {
				step += " (" + attrs + ")"
			}
			out = append(out, step)
			break
		}
	}
	return "elected, then " + strings.Join(out, ", ")
}
