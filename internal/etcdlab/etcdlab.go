// Package etcdlab runs a real etcd cluster on loopback ports for tests: the
// Debian etcd-server binary (etcd 3.4), N members as child processes with
// their data in the test's temporary directory, optionally with mutual TLS.
// Members can be killed and restarted, so tests can take the quorum away.
package etcdlab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/testpki"
)

// Require skips t unless the etcd binary is on PATH.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("needs etcd (apt-get install etcd-server): the real cluster the etcd store is tested against")
	}
	return bin
}

// TLS is the certificate material of a cluster started with mutual TLS.
type TLS struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// Cluster is a running cluster.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	members []*member
	tls     *TLS
	initial string
	netns   string // the members' network namespace ("": the test's own)
}

type member struct {
	name, client, peer string
	cmd                *exec.Cmd
	exited             chan struct{} // closed once cmd's Wait returned
}

// Start starts an n-member cluster and waits until it serves. withTLS makes
// its client URLs https with client certificates required.
func Start(t testing.TB, n int, withTLS bool) *Cluster { return StartIn(t, n, withTLS, "") }

// StartIn is Start with the members in network namespace netns (on its
// loopback), for controllers that run there (a lab's hypervisor, which also
// reaches the gateways). The test process reaches them through the namespace
// only: Endpoints are its loopback's.
func StartIn(t testing.TB, n int, withTLS bool, netns string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Require(t), dir: t.TempDir(), netns: netns}
	if withTLS {
		c.tls = makeTLS(t, c.dir)
	}
	scheme := "http"
	if withTLS {
		scheme = "https"
	}
	var initial []string
	addrs := freeAddrs(t, 2*n)
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), client: scheme + "://" + addrs[2*i], peer: "http://" + addrs[2*i+1]}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	c.initial = strings.Join(initial, ",")
	for i := range c.members {
		c.start(i, "new")
	}
	t.Cleanup(c.stopAll)
	c.WaitHealthy(30 * time.Second)
	return c
}

// freeAddrs returns n distinct loopback addresses whose ports are free now and
// lie below the kernel's ephemeral range. A port taken from a ":0" bind and
// closed is handed out again, to the next ":0" bind (another member's port:
// etcd then fails "address already in use") or as a connection's source port,
// before etcd binds it; below the ephemeral range only an explicit bind takes
// a port.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	if low-first < 1000 {
		t.Fatalf("etcdlab: the ephemeral port range starts at %d: no room below it for etcd's ports", low)
	}
	seen := map[int]bool{}
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("etcdlab: no %d free ports in %d-%d", n, first, low-1)
		}
		port := first + mrand.IntN(low-first)
		if seen[port] {
			continue
		}
		seen[port] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		l.Close()
		out = append(out, addr)
	}
	return out
}

func (c *Cluster) start(i int, state string) {
	m := c.members[i]
	args := []string{"--name", m.name, "--data-dir", filepath.Join(c.dir, m.name),
		"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", filepath.Base(c.dir),
		"--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap", "--log-level", "warn"}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.ServerCert, "--key-file", c.tls.ServerKey,
			"--client-cert-auth", "--trusted-ca-file", c.tls.CA)
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, m.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	if c.netns != "" {
		// ip netns exec execs etcd: the PID is etcd's, for Kill.
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.netns, c.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("etcdlab: start %s: %v", m.name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	m.cmd, m.exited = cmd, exited
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.client)
	}
	return out
}

// TLS is the cluster's certificate material (nil without TLS).
func (c *Cluster) TLS() *TLS { return c.tls }

// Kill kills member i (SIGKILL) and waits for it to exit.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		<-m.exited // Wait has returned (reading ProcessState here would race with it)
	}
	m.cmd = nil
}

// Restart starts a killed member again on its data.
func (c *Cluster) Restart(i int) { c.start(i, "existing") }

func (c *Cluster) stopAll() {
	for i := range c.members {
		c.Kill(i)
	}
	if c.t.Failed() {
		for _, m := range c.members {
			b, _ := os.ReadFile(filepath.Join(c.dir, m.name+".log"))
			c.t.Logf("etcd %s log:\n%s", m.name, b)
		}
	}
}

// WaitHealthy waits until every running member answers /health with true.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	cl := &http.Client{Timeout: time.Second}
	tr := &http.Transport{}
	if c.tls != nil {
		cfg, err := clientTLSConfig(c.tls)
		if err != nil {
			c.t.Fatal(err)
		}
		tr.TLSClientConfig = cfg
	}
	if c.netns != "" {
		// A socket opened inside the namespace stays there.
		tr.DialContext = func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = lab.InNamespace(c.netns, func() error {
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		}
	}
	cl.Transport = tr
	deadline := time.Now().Add(timeout)
	for _, m := range c.members {
		if m.cmd == nil {
			continue
		}
		for {
			resp, err := cl.Get(m.client + "/health")
			if err == nil {
				var buf [256]byte
				n, _ := resp.Body.Read(buf[:])
				resp.Body.Close()
				if strings.Contains(string(buf[:n]), `"health":"true"`) {
					break
				}
				err = fmt.Errorf("%s", buf[:n])
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("etcdlab: member %s not healthy after %s: %v", m.name, timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Client is a client of the members at endpoints, closed when t ends.
func Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index in endpoints of the member that says it leads
// the cluster, asking each through cli for at most 2 s; it fails t when none
// does.
func Leader(t testing.TB, cli *clientv3.Client, endpoints []string) int {
	t.Helper()
	for i, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.GetMemberId() {
			return i
		}
	}
	t.Fatal("etcdlab: no member leads")
	return -1
}

// makeTLS writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA.
func makeTLS(t testing.TB, dir string) *TLS {
	t.Helper()
	ca := testpki.New(t, dir)
	out := &TLS{CA: ca.File}
	out.ServerCert, out.ServerKey = ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	out.ClientCert, out.ClientKey = ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	return out
}

func clientTLSConfig(t *TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
