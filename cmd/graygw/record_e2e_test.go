package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
	"github.com/graygw/graygw/internal/etcdlab"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/syncbuf"
)

// The complete record through the CLI, on both stores: drains and undrains
// (with actor and reason) are records of the history, listed by `history`,
// exported and followed by `history --jsonl --follow` in order with the
// changes, and the versions go on numbering after them.
func TestDrainsInTheHistory(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { drainsInTheHistory(t, nil) })
	t.Run("etcd", func(t *testing.T) {
		c := etcdlab.Start(t, 1, false)
		st, err := etcdstore.Open(context.Background(), etcdstore.Config{Endpoints: c.Endpoints(), Prefix: "/cli/"})
		if err != nil {
			t.Fatal(err)
		}
		drainsInTheHistory(t, st)
	})
}

func drainsInTheHistory(t *testing.T, st store.Store) {
	agent := stack.StartAgent(t, stack.AgentConfig{})
	sp, err := bgp.New(bgp.Config{ASN: 65001, RouterID: "10.0.0.1", ListenPort: -1,
		Neighbors: []bgp.Neighbor{{Address: "127.0.0.1", ASN: 65002, Passive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	c := stack.StartController(t, stack.Config{Store: st, Service: service.Config{
		BGP: &announce.Config{Speaker: sp, StartWait: 10 * time.Second}}})
	ctrl := "unix://" + c.Socket

	path := writeFile(t, "intent.yaml", exampleIntent(t, agent.Addr))
	g := func(args ...string) string {
		t.Helper()
		return mustAPI(t, ctrl, args...)
	}
	g("apply", "-f", path, "--wait", "--actor", "tester") // version 1, event 1
	if err := c.Service.StartBGP(context.Background()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stream syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"history", "--jsonl", "--follow", "--every", "100ms", "--controller", ctrl}, &stream, &stream, dial)
	}()
	g("drain", "gw1", "--reason", "kernel upgrade", "--actor", "alice")                                         // event 2
	g("undrain", "gw1", "--reason", "upgraded", "--actor", "bob")                                               // event 3
	g("cutover", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait", "--actor", "carol") // version 2, event 4

	var evs []Event
	for deadline := time.Now().Add(10 * time.Second); len(evs) < 4 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		evs = nil
		for _, line := range strings.Split(strings.TrimSpace(stream.String()), "\n") {
			var e Event
			if json.Unmarshal([]byte(line), &e) == nil {
				evs = append(evs, e)
			}
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("history --follow exited %d:\n%s", code, stream.String())
	}
	want := []Event{
		{Seq: 1, Actor: "tester", Operation: "apply", Before: 0, After: 1},
		{Seq: 2, Actor: "alice", Operation: "drain", Before: 1, After: 1, Record: true, Reason: "kernel upgrade"},
		{Seq: 3, Actor: "bob", Operation: "undrain", Before: 1, After: 1, Record: true, Reason: "upgraded"},
		{Seq: 4, Actor: "carol", Operation: "cutover", Before: 1, After: 2},
	}
	if len(evs) != len(want) {
		t.Fatalf("followed %d entries, want %d:\n%s", len(evs), len(want), stream.String())
	}
	for i, w := range want {
		e := evs[i]
		if e.Seq != w.Seq || !strings.HasPrefix(e.Actor, w.Actor) || e.Operation != w.Operation || e.Before != w.Before ||
			e.After != w.After || e.Record != w.Record || e.Reason != w.Reason {
			t.Errorf("entry %d: %+v, want %+v", i, e, w)
		}
	}
	if !strings.Contains(evs[1].Summary, "gateway gw1 drained") || !strings.Contains(evs[2].Summary, "gateway gw1 undrained") {
		t.Errorf("summaries: %q, %q", evs[1].Summary, evs[2].Summary)
	}
	table := g("history")
	for _, w := range []string{"drain", "@1", "gateway gw1 drained: its VIP paths are withdrawn (reason: kernel upgrade)", "bob", "1->2"} {
		if !strings.Contains(table, w) {
			t.Errorf("history lacks %q:\n%s", w, table)
		}
	}
}
