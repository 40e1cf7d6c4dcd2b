package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/etcdlab"
)

// TestEtcdStoreAndMigration: a controller whose store: is a 3-member etcd
// cluster seeds, applies and restarts on it like on a file; --migrate-store-to
// copies it into a bbolt file and a controller on that file starts with the
// same versions and history, writing nothing; copying into a store that is not
// empty is refused.
func TestEtcdStoreAndMigration(t *testing.T) {
	cl := etcdlab.Start(t, 3, false)
	_, intentFile := memoryGateway(t)
	dir := t.TempDir()
	cfg := etcdConfig(t, dir, cl, "/ctl/", "3s")
	args := []string{"--config", cfg, "--listen-unix", filepath.Join(dir, "c.sock"), "--intent", intentFile, "--election-id", "7"}
	r := startController(t, args...)
	c := r.client(t)
	waitInSync(t, c)
	if !strings.Contains(r.logs.String(), "store=\"etcd "+cl.Endpoints()[0]) {
		t.Errorf("the log does not name the etcd store:\n%s", r.logs.String())
	}
	// A drain record (a KV namespace) and a second version.
	cur, err := c.Get(context.Background(), &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: cur.GetIntentYaml() + "\n# second\n",
		Options: &graygwv1.ChangeOptions{Actor: "bob", Wait: true}})
	if err != nil || !resp.GetResult().GetApplied() {
		t.Fatalf("apply: %v %v", resp, err)
	}
	r.sigs <- syscall.SIGTERM
	<-r.done

	// Restarted on etcd: version 2 in force, nothing written.
	r = startController(t, args...)
	c = r.client(t)
	if g := waitInSync(t, c); g.GetVersion() != 2 || g.GetEntriesWritten() != 0 {
		t.Fatalf("after restart on etcd: %v", g)
	}
	r.sigs <- syscall.SIGTERM
	<-r.done

	// etcd -> bbolt, then a controller on the file.
	target := filepath.Join(dir, "to-bolt.yaml")
	db := filepath.Join(dir, "copy.db")
	os.WriteFile(target, []byte("store: "+db+"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"--config", cfg, "--migrate-store-to", target}, &out, &errb, nil, nil); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "2 intent versions, 2 history events") || !strings.Contains(out.String(), "reads back equal") {
		t.Errorf("migrate said: %s", out.String())
	}
	r = startController(t, "--store", db, "--listen-unix", filepath.Join(dir, "c2.sock"), "--election-id", "7")
	c = r.client(t)
	if g := waitInSync(t, c); g.GetVersion() != 2 || g.GetEntriesWritten() != 0 {
		t.Fatalf("controller on the copy: %v", g)
	}
	h, err := c.History(context.Background(), &graygwv1.HistoryRequest{})
	if err != nil || len(h.GetEvents()) != 2 || h.GetEvents()[0].GetActor() == "" || h.GetEvents()[1].GetOperation() != "seed" {
		t.Fatalf("history of the copy: %v %v", h, err)
	}

	// Into the file a running controller holds: refused (bbolt's lock).
	errb.Reset()
	if code := run([]string{"--config", cfg, "--migrate-store-to", target}, io.Discard, &errb, nil, nil); code != 1 ||
		!strings.Contains(errb.String(), "locked by another process") {
		t.Fatalf("migrate into a running controller's file: exit %d: %s", code, errb.String())
	}
	r.sigs <- syscall.SIGTERM
	<-r.done
	// Into a store that is not empty: refused.
	errb.Reset()
	if code := run([]string{"--config", cfg, "--migrate-store-to", target}, io.Discard, &errb, nil, nil); code != 1 ||
		!strings.Contains(errb.String(), "not empty") {
		t.Fatalf("migrate into a non-empty store: exit %d: %s", code, errb.String())
	}
}

// TestStoreConfigForms: store: takes a path, {file: PATH} or {etcd: {...}},
// and names what is wrong otherwise.
func TestStoreConfigForms(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ cfg, want string }{
		{"store: {file: a.db, etcd: {endpoints: [http://127.0.0.1:1]}}\n", "give file or etcd, not both"},
		{"store: {}\n", "give file or etcd"},
		{"store: {etcd: {endpoints: [127.0.0.1:2379], prefix: x}}\n", "store.etcd.endpoints[0]"},
		{"store: {etcd: {endpoints: [http://127.0.0.1:1], colour: red}}\n", "store.etcd: field colour not found"},
		{"store: {bolt: a.db}\n", "store: field bolt not found"},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.cfg), 0o600)
		var out bytes.Buffer
		if code := run([]string{"--config", path}, io.Discard, &out, nil, nil); code != 2 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: exit %d: %s, want %q", tc.cfg, code, out.String(), tc.want)
		}
	}
}

// TestEtcdQuorumLossRefusesChanges: a controller on etcd whose cluster loses
// its quorum refuses changes with an error that says so, within the request
// timeout, while the gateway stays as it was (forwarding untouched); the
// quorum back, changes are accepted again.
func TestEtcdQuorumLossRefusesChanges(t *testing.T) {
	cl := etcdlab.Start(t, 3, false)
	_, intentFile := memoryGateway(t)
	dir := t.TempDir()
	r := startController(t, "--config", etcdConfig(t, dir, cl, "/q/", "2s"), "--listen-unix", filepath.Join(dir, "c.sock"), "--intent", intentFile, "--election-id", "7")
	c := r.client(t)
	waitInSync(t, c)
	cur, err := c.Get(context.Background(), &graygwv1.GetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(note string) (*graygwv1.ApplyResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return c.Apply(ctx, &graygwv1.ApplyRequest{IntentYaml: cur.GetIntentYaml() + "\n# " + note + "\n", Options: &graygwv1.ChangeOptions{Actor: "t", Wait: true}})
	}

	cl.Kill(1)
	cl.Kill(2)
	start := time.Now()
	_, err = apply("without a quorum")
	took := time.Since(start)
	t.Logf("apply without a quorum refused after %s: %v", took.Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "no quorum") || took > 10*time.Second {
		t.Fatalf("apply without a quorum: %v after %s, want a refusal naming the quorum within the request timeout", err, took)
	}
	// UNAVAILABLE, which tells a client (and graygw's exit code) to retry later,
	// not INTERNAL.
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("apply without a quorum answered %v, want Unavailable", code)
	}
	st, err := c.Status(context.Background(), &graygwv1.StatusRequest{})
	if err != nil || len(st.GetGateways()) != 1 || !st.GetGateways()[0].GetInSync() || st.GetGateways()[0].GetVersion() != 1 {
		t.Fatalf("status without a quorum: %v %v, want the gateway in sync at version 1 (untouched)", st, err)
	}

	cl.Restart(1)
	cl.Restart(2)
	cl.WaitHealthy(30 * time.Second)
	var resp *graygwv1.ApplyResponse
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err = apply("quorum back"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !resp.GetResult().GetApplied() || resp.GetResult().GetVersion() != 2 {
		t.Fatalf("apply with the quorum back: %v %v, want version 2 (the refused change wrote nothing)", resp, err)
	}
}

// etcdConfig writes, in dir, the controller config of a store on cl's
// members under prefix with request timeout timeout, and returns its path.
func etcdConfig(t *testing.T, dir string, cl *etcdlab.Cluster, prefix, timeout string) string {
	t.Helper()
	cfg := filepath.Join(dir, "etcd.yaml")
	text := fmt.Sprintf("store:\n  etcd:\n    endpoints: [%s]\n    prefix: %s\n    request_timeout: %s\n", strings.Join(cl.Endpoints(), ", "), prefix, timeout)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
