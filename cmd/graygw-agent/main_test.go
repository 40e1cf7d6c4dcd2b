package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/internal/testpki"
	"github.com/graygw/graygw/p4src"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--port", "1=eth1", "--port=2=eth2", "--addr", "0.0.0.0:1", "--insecure-listener"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ports[1] != "eth1" || c.ports[2] != "eth2" || c.addr != "0.0.0.0:1" || c.deviceID != 1 {
		t.Fatalf("parsed %+v", c)
	}
	if d, err := parseFlags([]string{"--port", "1=eth1"}, &bytes.Buffer{}); err != nil || d.addr != "unix:///run/graygw-agent/p4rt.sock" {
		t.Fatalf("default address: %v, %v; want the unix socket", d, err)
	}
	bad := map[string][]string{
		"no port":             {},
		"port without name":   {"--port", "1="},
		"port not a number":   {"--port", "x=eth1"},
		"port too large":      {"--port", "512=eth1"},
		"port twice":          {"--port", "1=eth1", "--port", "1=eth2"},
		"interface twice":     {"--port", "1=eth1", "--port", "2=eth1"},
		"cert without key":    {"--port", "1=eth1", "--tls-cert", "c.pem"},
		"client CA alone":     {"--port", "1=eth1", "--tls-client-ca", "ca.pem"},
		"bad dataplane":       {"--dataplane", "dpdk"},
		"memory with ports":   {"--dataplane", "memory", "--port", "1=eth1"},
		"bad xdp mode":        {"--port", "1=eth1", "--xdp-mode", "fast"},
		"device 0":            {"--port", "1=eth1", "--device-id", "0"},
		"positional argument": {"--port", "1=eth1", "eth2"},
		// The issue: a non-loopback plaintext listener needs forcing.
		"remote plaintext":         {"--port", "1=eth1", "--addr", "0.0.0.0:9559"},
		"remote TLS, no client CA": {"--port", "1=eth1", "--addr", "10.0.0.1:9559", "--tls-cert", "c", "--tls-key", "k"},
		"all addresses":            {"--port", "1=eth1", "--addr", ":9559"},
		"uid not a number":         {"--port", "1=eth1", "--allow-uid", "nobody"},
	}
	for name, args := range bad {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: %q accepted", name, args)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, nil, nil); code != 0 {
		t.Fatalf("--help exit code %d", code)
	}
	for _, want := range []string{"--port N=IFNAME", "9559", "--tls-client-ca", "second signal", "Restart without loss", "--state-dir", "unix://"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if code := run([]string{"--bogus"}, &bytes.Buffer{}, nil, nil); code != 2 {
		t.Errorf("bad flag exit code %d, want 2", code)
	}
}

// daemon runs the agent in-process with the memory dataplane.
type daemon struct {
	sigs chan os.Signal
	done chan int
	addr net.Addr
	log  *syncBuffer
}

type syncBuffer struct {
	ch chan []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.ch <- append([]byte(nil), p...)
	return len(p), nil
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{sigs: make(chan os.Signal, 2), done: make(chan int, 1), log: &syncBuffer{ch: make(chan []byte, 1024)}}
	ready := make(chan net.Addr, 1)
	go func() { d.done <- run(args, d.log, d.sigs, ready) }()
	select {
	case d.addr = <-ready:
	case code := <-d.done:
		t.Fatalf("daemon exited with %d before serving", code)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not serving after 10s")
	}
	return d
}

func (d *daemon) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-d.done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit")
		return -1
	}
}

func dialUnix(t *testing.T, path string, creds credentials.TransportCredentials) p4v1.P4RuntimeClient {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return p4v1.NewP4RuntimeClient(conn)
}

// primaryWithPipeline connects to the daemon's unix socket as the primary
// controller (election id 1) and sets the committed pipeline (cookie 5).
func primaryWithPipeline(t *testing.T, sock string) (p4v1.P4RuntimeClient, *p4rtest.Client, *p4info.Info) {
	t.Helper()
	c := dialUnix(t, sock, nil)
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := p4rtest.Connect(tctx(t), c, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	if err := ctl.SetPipeline(tctx(t), p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, info.P4Info(), 5); err != nil {
		t.Fatal(err)
	}
	return c, ctl, info
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDaemonServesAndDrains: the daemon serves P4Runtime; the first signal
// drains (the primary's stream is closed with UNAVAILABLE) and the process
// exits 0.
func TestDaemonServesAndDrains(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	d := startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "unix://"+sock, "--log-level", "warn")
	c, ctl, info := primaryWithPipeline(t, sock)
	b := p4rtest.Builder{T: t, Info: info}
	if err := ctl.Write(tctx(t), p4rtest.Ins(b.VIP(0x0aff0001, 1, 1))); err != nil {
		t.Fatal(err)
	}
	es, err := p4rtest.Read(tctx(t), c, 1, p4rtest.Ent(&p4v1.TableEntry{}))
	if err != nil || len(es) != 1 {
		t.Fatalf("read %v, %v", es, err)
	}
	d.sigs <- syscall.SIGTERM
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after a drain", code)
	}
	if err := ctl.Write(tctx(t), p4rtest.Ins(b.VIP(2, 1, 1))); status.Code(err) != codes.Unavailable {
		t.Fatalf("write after exit = %v, want UNAVAILABLE", err)
	}
}

// TestDaemonSecondSignalExitsAtOnce: a large Read the client does not consume
// keeps the graceful stop waiting (flow control); a second signal ends it, and
// the exit code says the drain did not finish.
func TestDaemonSecondSignalExitsAtOnce(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	d := startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "unix://"+sock, "--log-level", "error",
		"--drain-timeout", "1m")
	c, ctl, info := primaryWithPipeline(t, sock)
	b := p4rtest.Builder{T: t, Info: info}
	var ups []*p4v1.Update
	for i := 0; i < 40000; i++ {
		ups = append(ups, p4rtest.Ins(b.Bucket(uint64(i/4096), uint64(i%4096), 1)))
	}
	if err := ctl.Write(tctx(t), ups...); err != nil {
		t.Fatal(err)
	}
	// Open a Read and never receive: the server blocks sending it.
	st, err := c.Read(tctx(t), &p4v1.ReadRequest{DeviceId: 1, Entities: []*p4v1.Entity{p4rtest.Ent(&p4v1.TableEntry{})}})
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	time.Sleep(200 * time.Millisecond)
	d.sigs <- syscall.SIGTERM
	select {
	case code := <-d.done:
		t.Fatalf("exited (%d) while a Read was in flight", code)
	case <-time.After(500 * time.Millisecond):
	}
	d.sigs <- syscall.SIGINT
	if code := d.waitExit(t); code != 1 {
		t.Fatalf("exit code %d after a forced stop, want 1", code)
	}
}

func TestDaemonTLSWithClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir)
	cert, key := ca.Issue(t, "agent", x509.ExtKeyUsageServerAuth)

	sock := filepath.Join(dir, "p4rt.sock")
	d := startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "unix://"+sock, "--log-level", "error",
		"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca.File)
	defer func() { d.sigs <- syscall.SIGTERM; d.waitExit(t) }()

	roots := ca.Pool
	clientCert := ca.Cert(t, "controller", x509.ExtKeyUsageClientAuth)
	good := dialUnix(t, sock, credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}))
	if r, err := good.Capabilities(tctx(t), &p4v1.CapabilitiesRequest{}); err != nil || r.GetP4RuntimeApiVersion() != "1.5.0" {
		t.Fatalf("Capabilities with a client certificate: %v, %v", r, err)
	}
	noCert := dialUnix(t, sock, credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"}))
	if _, err := noCert.Capabilities(tctx(t), &p4v1.CapabilitiesRequest{}); err == nil {
		t.Fatal("Capabilities without a client certificate succeeded")
	}
	plain := dialUnix(t, sock, nil)
	if _, err := plain.Capabilities(tctx(t), &p4v1.CapabilitiesRequest{}); err == nil {
		t.Fatal("Capabilities without TLS succeeded")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlsConfig(&config{tlsCert: filepath.Join(dir, "none.pem"), tlsKey: filepath.Join(dir, "none-key.pem")}); err == nil {
		t.Error("missing key pair accepted")
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not pem"), 0o600)
	if c, err := tlsConfig(&config{}); c != nil || err != nil {
		t.Errorf("no TLS flags: %v, %v", c, err)
	}
}

// TestCorruptJournalRefusedThenReset: a journal damaged in the middle stops the
// daemon with the file, the offset and the recovery command; --reset-journal moves
// it aside (kept) and the daemon starts.
func TestCorruptJournalRefusedThenReset(t *testing.T) {
	state := t.TempDir()
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	d := startDaemon(t, "--dataplane", "memory", "--state-dir", state, "--addr", "unix://"+sock, "--log-level", "error")
	d.sigs <- syscall.SIGTERM
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	snap := filepath.Join(state, journal.SnapshotFile)
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 1
	os.WriteFile(snap, b, 0o600)

	var out bytes.Buffer
	code := run([]string{"--dataplane", "memory", "--state-dir", state, "--addr", "unix://" + sock}, &out, nil, nil)
	if code != 1 || !strings.Contains(out.String(), snap+" at offset") || !strings.Contains(out.String(), "--reset-journal") {
		t.Fatalf("exit %d, log:\n%s\nwant exit 1 naming %s and --reset-journal", code, out.String(), snap)
	}
	d = startDaemon(t, "--dataplane", "memory", "--state-dir", state, "--addr", "unix://"+sock, "--log-level", "error", "--reset-journal")
	d.sigs <- syscall.SIGTERM
	d.waitExit(t)
	kept, _ := filepath.Glob(snap + ".corrupt-*")
	if len(kept) != 1 {
		t.Fatalf("corrupt snapshot not kept aside: %q", kept)
	}
}
