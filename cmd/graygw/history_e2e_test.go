package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/syncbuf"
)

// The record against the real controller: diff between stored versions, the
// history as JSON lines, and --follow writing a change committed while it
// runs.
func TestVersionDiffAndHistoryExport(t *testing.T) {
	ctrl, agent := startStack(t)
	path := writeFile(t, "intent.yaml", exampleIntent(t, agent))
	g := func(args ...string) string {
		t.Helper()
		switch args[0] {
		case "apply", "cutover", "rollback": // read-only commands take no --actor
			args = append(args, "--actor", "tester")
		}
		return mustAPI(t, ctrl, args...)
	}
	g("apply", "-f", path, "--wait")                                                                           // version 1
	g("cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--vip", "vpc-router", "--wait")         // 2
	g("cutover", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--name", "v5002", "--wait") // 3

	out := g("diff", "--from", "1", "--to", "3")
	for _, want := range []string{"intent version 1 -> 3: 2 differences", "rule", "v5002", "added", "vni=5002", "pool gray-router"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff --from 1 --to 3 lacks %q:\n%s", want, out)
		}
	}
	var vd VersionDiff
	if err := json.Unmarshal([]byte(g("diff", "--from", "3", "--to", "2", "-o", "json")), &vd); err != nil {
		t.Fatal(err)
	}
	if vd.From != 3 || vd.To != 2 || len(vd.Differences) != 1 || vd.Differences[0].Name != "v5002" || vd.Differences[0].Op != "removed" {
		t.Errorf("diff --from 3 --to 2: %+v", vd)
	}
	if out := g("diff", "--from", "3"); !strings.Contains(out, "intent version 3 -> 3: 0 differences") {
		t.Errorf("diff --from the current version: %s", out)
	}

	// JSON lines, oldest first.
	var seqs []uint64
	for _, line := range strings.Split(strings.TrimSpace(g("history", "--jsonl")), "\n") {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if !strings.HasPrefix(e.Actor, "tester") {
			t.Errorf("event %+v: actor", e)
		}
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
		t.Fatalf("history --jsonl seqs %v, want 1 2 3", seqs)
	}

	// --follow: the three, then a change made meanwhile; interrupted cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	var stream syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"history", "--jsonl", "--follow", "--every", "100ms", "--controller", ctrl}, &stream, &stream, dial)
	}()
	lines := func() []Event {
		var evs []Event
		sc := bufio.NewScanner(strings.NewReader(stream.String()))
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				evs = append(evs, e)
			}
		}
		return evs
	}
	waitLines := func(n int) []Event {
		deadline := time.Now().Add(10 * time.Second)
		for len(lines()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return lines()
	}
	waitLines(3)
	g("rollback", "--rule", "v5002", "--wait") // version 4
	evs := waitLines(4)
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("history --follow exited %d after the interrupt:\n%s", code, stream.String())
	}
	if len(evs) != 4 || evs[3].Seq != 4 || evs[3].Operation != "rollback-rule" || evs[3].After != 4 {
		t.Errorf("followed events %+v", evs)
	}
}
