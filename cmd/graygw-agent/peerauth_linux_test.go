//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a P4Runtime client probe in a child
// process running as another uid (GRAYGW_PEER_PROBE=network,address): it prints
// "accepted" when the agent talks (gRPC's server preface), "refused" when the
// agent closes the connection unread, "denied" when connect itself fails.
func TestMain(m *testing.M) {
	if probe := os.Getenv("GRAYGW_PEER_PROBE"); probe != "" {
		network, addr, _ := strings.Cut(probe, ",")
		os.Stdout.WriteString(peerProbe(network, addr))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func peerProbe(network, addr string) string {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return "denied"
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// An HTTP/2 client preface, so the server answers with its settings.
	c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	var b [9]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return "refused"
	}
	return "accepted"
}

// probeAs runs the probe as uid (a copy of the test binary other users can run).
func probeAs(t *testing.T, uid uint32, network, addr string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "graygw-probe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "probe")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, b, 0o755)
	cmd := exec.Command(bin)
	cmd.Env = []string{"GRAYGW_PEER_PROBE=" + network + "," + addr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("probe as uid %d: %v: %s", uid, err, out.String())
	}
	return out.String()
}

// TestLocalClientsAreIdentified: the unprivileged user (uid 65534) who
// became primary over 127.0.0.1:9559. On a unix socket the file mode stops it,
// and the peer credentials would too; on loopback TCP the uid owning the client
// socket is checked. Root is accepted, and --allow-uid adds a uid.
func TestLocalClientsAreIdentified(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	const nobody = 65534
	expect := func(uid uint32, network, addr, want, who string) {
		t.Helper()
		if got := probeAs(t, uid, network, addr); got != want {
			t.Fatalf("%s: %s, want %s", who, got, want)
		}
	}
	dir, _ := os.MkdirTemp("", "graygw-sock")
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "p4rt.sock")
	d := startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "unix://"+sock, "--log-level", "error")
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v, %v; want 0660", st, err)
	}
	expect(nobody, "unix", sock, "denied", "uid 65534 on the 0660 socket")
	os.Chmod(sock, 0o666) // past the file mode: SO_PEERCRED still refuses
	expect(nobody, "unix", sock, "refused", "uid 65534 on a 0666 socket")
	expect(0, "unix", sock, "accepted", "root")
	d.sigs <- syscall.SIGTERM
	d.waitExit(t)

	d = startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--log-level", "error")
	expect(nobody, "tcp", d.addr.String(), "refused", "uid 65534 on loopback TCP")
	expect(0, "tcp", d.addr.String(), "accepted", "root on loopback TCP")
	d.sigs <- syscall.SIGTERM
	d.waitExit(t)

	d = startDaemon(t, "--dataplane", "memory", "--state-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--log-level", "error",
		"--allow-uid", "65534")
	expect(nobody, "tcp", d.addr.String(), "accepted", "uid 65534 with --allow-uid")
	d.sigs <- syscall.SIGTERM
	d.waitExit(t)
}

func TestProcAddr(t *testing.T) {
	if got := procAddr(netip.MustParseAddrPort("127.0.0.1:9559")); got != "0100007F:2557" {
		t.Errorf("procAddr(127.0.0.1:9559) = %s, want 0100007F:2557 (as /proc/net/tcp prints it)", got)
	}
	if _, err := tcpPeerUID(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")); err == nil ||
		errors.Is(err, os.ErrNotExist) {
		t.Errorf("no such connection: %v", err)
	}
}
