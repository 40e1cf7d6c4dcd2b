package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/syncbuf"
)

func TestHelpTeaches(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, io.Discard, &out, nil, nil); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"Usage:", "Signals:", "second signal", "Config file", "--election-id", "--intent",
		"seeds an EMPTY store", "mutual TLS", "graygw_entries_written_total", "Examples:", "--keep-routes-on-exit",
		"BGP (bgp: section", "Probes and rollouts (probe: section", "graygw_bgp_session_up"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestBadUsage(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(badCfg, []byte("store: x.db\nelection: 3\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen-tcp", ":9443"}, "mutual TLS only"},
		{[]string{"--election-id", "0"}, "election id must be > 0"},
		{[]string{"--listen-unix", "none"}, "no API listener"},
		{[]string{"--config", badCfg}, "field election not found"},
		{[]string{"--log-format", "xml"}, "want text or json"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var out bytes.Buffer
		if code := run(tc.args, io.Discard, &out, nil, nil); code != 2 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, out.String(), tc.want)
		}
	}
}

// intentText is the daemons' test intent, its gateway at addr: a VM of VPC
// vpc moved to the gray pool.
func intentText(addr string) string {
	d := intenttest.VPC(addr)
	d.Rules = []string{"{name: vm-10.0.0.5, match: {vip: vpc, vni: 5001, src: 10.0.0.5}, pool: gray}"}
	return d.YAML()
}

func writeIntent(t *testing.T, addr string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "intent.yaml")
	if err := os.WriteFile(path, []byte(intentText(addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	var out, errs bytes.Buffer
	path := writeIntent(t, "127.0.0.1:9559")
	if code := run([]string{"--check", "--intent", path}, &out, &errs, nil, nil); code != 0 {
		t.Fatalf("--check exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "intent: gateway gw1 (127.0.0.1:9559, device 1): 8198 entries") ||
		!strings.Contains(out.String(), "intent: OK") || !strings.Contains(out.String(), "health: off") {
		t.Fatalf("--check said %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(intentText("x:1"), "pool: gray}", "pool: nope}", 1)), 0o600)
	errs.Reset()
	if code := run([]string{"--check", "--intent", bad}, io.Discard, &errs, nil, nil); code != 1 ||
		!strings.Contains(errs.String(), "gray_rules[0].pool") {
		t.Fatalf("--check of a bad intent: exit %d, %q", code, errs.String())
	}
}

// memoryGateway serves an agent over a Memory dataplane on a loopback port
// and writes the intent for it: the agent's address and the intent's path.
func memoryGateway(t *testing.T) (addr, intentFile string) {
	t.Helper()
	addr = startAgent(t, dataplane.NewMemory(dataplane.Limits{}))
	return addr, writeIntent(t, addr)
}

// startAgent serves the XDP agent's P4Runtime server over dp on a loopback port.
func startAgent(t *testing.T, dp dataplane.Dataplane) string {
	t.Helper()
	return stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: dp}}).Addr
}

// controllerRun is a controller started by run in the background.
type controllerRun struct {
	sigs  chan os.Signal
	where listening
	exit  chan int        // receives run's exit code once
	done  chan struct{}   // closed when run returned
	logs  *syncbuf.Buffer // the controller's log
}

// stop sends SIGTERM and waits up to 30 s for run to exit with want.
func (r *controllerRun) stop(t *testing.T, want int) {
	t.Helper()
	r.sigs <- syscall.SIGTERM
	select {
	case code := <-r.exit:
		if code != want {
			t.Fatalf("exit %d after SIGTERM, want %d", code, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// metrics is the text r serves on /metrics (started with --metrics).
func (r *controllerRun) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + r.where.Metrics.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func startController(t *testing.T, args ...string) *controllerRun {
	t.Helper()
	r := &controllerRun{sigs: make(chan os.Signal, 2), exit: make(chan int, 1), done: make(chan struct{})}
	ready := make(chan listening, 1)
	logs := &syncbuf.Buffer{}
	r.logs = logs
	go func() {
		r.exit <- run(args, io.Discard, logs, r.sigs, ready)
		close(r.done)
	}()
	select {
	case r.where = <-ready:
	case code := <-r.exit:
		t.Fatalf("controller exited with %d before serving:\n%s", code, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("controller did not start")
	}
	t.Cleanup(func() {
		select {
		case r.sigs <- syscall.SIGTERM:
		default:
		}
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	})
	return r
}

func (r *controllerRun) client(t *testing.T) graygwv1.ControllerClient {
	t.Helper()
	return stack.Dial(t, r.where.Unix)
}

func waitInSync(t *testing.T, c graygwv1.ControllerClient) *graygwv1.GatewayStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(context.Background(), &graygwv1.StatusRequest{})
		if err == nil && len(st.GetGateways()) == 1 && st.GetGateways()[0].GetInSync() {
			return st.GetGateways()[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never in sync: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSeedServeMetricsDrainAndRestart(t *testing.T) {
	_, intentFile := memoryGateway(t)
	dir := t.TempDir()
	args := []string{"--store", filepath.Join(dir, "c.db"), "--listen-unix", filepath.Join(dir, "c.sock"),
		"--intent", intentFile, "--metrics", "127.0.0.1:0", "--election-id", "7"}
	r := startController(t, args...)
	c := r.client(t)
	g := waitInSync(t, c)
	if g.GetEntriesWritten() != 8198 || g.GetVersion() != 1 {
		t.Fatalf("first start: %v", g)
	}
	body := r.metrics(t)
	for _, want := range []string{`graygw_entries_written_total{gateway="gw1"} 8198`,
		`graygw_rule_packets_total{gateway="gw1",rule="vm-10.0.0.5"} 0`, `graygw_gateway_in_sync{gateway="gw1"} 1`,
		`graygw_reconcile_duration_seconds_count{gateway="gw1"}`, `graygw_drop_packets_total{gateway="gw1",reason="NOT_VIP"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	r.stop(t, 0)

	// Restart on the same store: the stored intent is in force again, --intent
	// is ignored, and nothing is written to the gateway.
	r = startController(t, args...)
	c = r.client(t)
	g = waitInSync(t, c)
	if g.GetEntriesWritten() != 0 || g.GetPipelinePushes() != 0 || g.GetVersion() != 1 {
		t.Fatalf("after restart: %v", g)
	}
	h, err := c.History(context.Background(), &graygwv1.HistoryRequest{})
	if err != nil || len(h.GetEvents()) != 1 || h.GetEvents()[0].GetOperation() != "seed" {
		t.Fatalf("history after restart: %v, %v", h, err)
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	// The agent blocks at its first bucket write until the test ends: a write
	// in flight that does not end.
	g := &midWrite{Dataplane: dataplane.NewMemory(dataplane.Limits{}), reached: make(chan struct{}), release: make(chan struct{})}
	g.arm(0)
	defer g.open()
	addr := startAgent(t, g)
	dir := t.TempDir()
	r := startController(t, "--store", filepath.Join(dir, "c.db"), "--listen-unix", filepath.Join(dir, "c.sock"),
		"--intent", writeIntent(t, addr))
	select {
	case <-g.reached: // a write is in flight, blocked in the dataplane
	case <-time.After(30 * time.Second):
		t.Fatal("no write reached the agent")
	}
	r.sigs <- syscall.SIGTERM
	select {
	case code := <-r.exit:
		t.Fatalf("exited (%d) without finishing the pass in flight", code)
	case <-time.After(300 * time.Millisecond):
	}
	// Changes are refused while draining.
	_, err := r.client(t).Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: "version: 1\n"})
	if err == nil || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("Apply while draining: %v", err)
	}
	start := time.Now()
	r.sigs <- syscall.SIGTERM
	select {
	case code := <-r.exit:
		if code != 1 {
			t.Fatalf("second signal exit %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not exit")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second signal took %s", d)
	}
}

// TestHelpConfigExampleIsValid: the config file --help shows loads and
// validates, bgp: and probe: sections included.
func TestHelpConfigExampleIsValid(t *testing.T) {
	start := strings.Index(usageText, "Config file (YAML")
	end := strings.Index(usageText, "\nExamples:")
	if start < 0 || end < start {
		t.Fatal("no config example in the help")
	}
	var b strings.Builder
	for _, line := range strings.Split(usageText[start:end], "\n")[1:] {
		b.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.BGP == nil || c.BGP.ASN != 65001 || len(c.BGP.Neighbors) != 1 || c.BGP.Neighbors[0].HoldTime != 9*time.Second ||
		*c.BGP.VIPs["vpc-router"].MED != 50 || c.BGP.GracefulRestart.RestartTime != 120*time.Second || c.Probe == nil || c.Probe.NetNS != "hv" {
		t.Fatalf("parsed %+v %+v", c.BGP, c.Probe)
	}
	if h := c.Health; h == nil || !h.Enabled || h.Interval != Duration(time.Second) || h.Fall != 3 || h.Mode != "icmp" {
		t.Fatalf("parsed health: %+v", c.Health)
	}
}

func TestBadBGPAndProbeConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  string
		args []string
		want []string
	}{
		{"bgp: {asn: 0, routerID: x, neighbors: [{address: 10.0.0.2, asn: 1}, {address: 10.0.0.2, asn: 1}], vips: {v: {communities: [bad]}}, healthCheck: ping}\n",
			nil, []string{"bgp.asn: 0 is not an AS number", `bgp.routerID: "x"`, "bgp.neighbors[1].address", "bgp.vips.v.communities[0]", `bgp.healthCheck: "ping"`}},
		{"bgp: {asn: 1, routerID: 10.0.0.1, neighbors: [], startWait: 5m, gracefulRestart: {enabled: true}}\n",
			nil, []string{"bgp.startWait: 5m0s must be shorter than gracefulRestart.restartTime 2m0s"}},
		{"bgp: {asn: 1, routerID: 10.0.0.1, neighbors: []}\n", []string{"--keep-routes-on-exit"}, []string{"needs bgp.gracefulRestart.enabled"}},
		{"store: x.db\n", []string{"--keep-routes-on-exit"}, []string{"there is no bgp: section"}},
		{"bgp: {announceFrom: switches}\n", nil, []string{`bgp.announceFrom: "switches": want controller or gateways`}},
		{"bgp: {asn: 1, routerID: 10.0.0.1, neighbors: [{address: 10.0.0.2, asn: 2, families: [ipv4-unicast, ipv6]}]}\n", nil,
			[]string{`bgp.neighbors[0].families[1]: "ipv6": want ipv4-unicast or ipv6-unicast`}},
		{"bgp: {announceFrom: gateways, asn: 1, neighbors: [{address: 10.0.0.2, asn: 2}]}\n", nil,
			[]string{"asn, routerID and neighbors belong in each graygw-speaker's config"}},
		{"probe: {source: 10.0.0, router_mac: zz}\n", nil, []string{`probe.source: "10.0.0"`, `probe.router_mac: "zz"`}},
		{"bgp: {asn: 1, routerID: 10.0.0.1, neighbors: [], colour: red}\n", nil, []string{"field colour not found"}},
		{"health: {enabled: true, interval: 1s, timeout: 2s, rise: -1, fall: 500, mode: tcp}\n", nil,
			[]string{"health.timeout: 2s is longer than interval 1s", "health.rise: -1: want 1..100", "health.fall: 500: want 1..100",
				"health.port: 0: mode tcp needs a port 1..65535"}},
		{"health: {mode: ping, port: 80}\n", nil, []string{`health.mode: "ping": want icmp or tcp`}},
		{"health: {interval: 5ms}\n", nil, []string{"health.interval: 5ms is below 10ms"}},
		{"health: {interval: soon}\n", nil, []string{`"soon" is not a duration`}},
		{"health: {enabled: yes, colour: red}\n", nil, []string{"field colour not found"}},
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.cfg), 0o600)
		var out bytes.Buffer
		code := run(append([]string{"--config", path}, tc.args...), io.Discard, &out, nil, nil)
		if code != 2 {
			t.Errorf("%q: exit %d: %s", tc.cfg, code, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: error lacks %q: %s", tc.cfg, w, out.String())
			}
		}
	}
}

// TestBGPStartFailureExits: a speaker that cannot listen (its port taken)
// drains the daemon, which exits 1 saying why.
func TestBGPStartFailureExits(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("bgp: {asn: 65001, routerID: 10.0.0.1, listenAddress: 127.0.0.1, listenPort: %d, neighbors: [{address: 127.0.0.2, asn: 65002, passive: true}]}\n", port)), 0o600)
	logs := &syncbuf.Buffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"--config", cfg, "--store", filepath.Join(dir, "c.db"), "--listen-unix", filepath.Join(dir, "c.sock")},
			io.Discard, logs, make(chan os.Signal), nil)
	}()
	select {
	case code := <-exit:
		out := logs.String()
		if code != 1 || !strings.Contains(out, "bgp: the speaker did not start") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon kept running without its speaker")
	}
}

// TestLostStoreIsNotReseeded: the case. A controller seeded a gateway,
// then its store is lost (a 0-byte file, then no file): a restart with the same
// --intent refuses instead of re-seeding over the live state, says why and how
// to proceed; --reseed seeds on purpose.
func TestLostStoreIsNotReseeded(t *testing.T) {
	_, intentFile := memoryGateway(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	args := []string{"--store", db, "--listen-unix", filepath.Join(dir, "c.sock"), "--intent", intentFile}
	r := startController(t, args...)
	waitInSync(t, r.client(t))
	r.sigs <- syscall.SIGTERM
	<-r.done

	os.Truncate(db, 0)
	logs := &syncbuf.Buffer{}
	if code := run(args, io.Discard, logs, nil, nil); code != 1 || !strings.Contains(logs.String(), "is empty") ||
		!strings.Contains(logs.String(), "--reseed") {
		t.Fatalf("0-byte store: exit %d, log:\n%s", code, logs.String())
	}
	os.Remove(db)
	logs = &syncbuf.Buffer{}
	if code := run(args, io.Discard, logs, nil, nil); code != 1 || !strings.Contains(logs.String(), "holds 8198 entries") ||
		!strings.Contains(logs.String(), "--reseed") {
		t.Fatalf("missing store, gateway holding entries: exit %d, log:\n%s", code, logs.String())
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the refused start left no store file: %v", err)
	}
	r = startController(t, append(args, "--reseed")...)
	if g := waitInSync(t, r.client(t)); g.GetVersion() != 1 {
		t.Fatalf("after --reseed: %v", g)
	}
}
