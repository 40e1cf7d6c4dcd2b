// Package birdlab runs a BIRD 2 daemon inside a namespace of an internal/lab
// lab, as the peer of graygw's BGP tests, and reads what it learned through
// birdc: its routes with their BGP attributes, the next hops per prefix, and
// whether it helps a neighbor through a graceful restart.
package birdlab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
)

// Require skips t unless bird, birdc and the other tools named are on PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, bin := range append([]string{"bird", "birdc"}, tools...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs BIRD 2 and iproute2 (%s not found: apt-get install bird2 iproute2)", bin)
		}
	}
}

// BIRD is a running daemon.
type BIRD struct {
	// Dir is the test's directory holding bird.conf, bird.log (BIRD's own
	// log) and bird.out (its standard output and error).
	Dir string
	// Sock is BIRD's control socket.
	Sock Sock
	// Cmd is the process; the lab kills it by PID when it closes.
	Cmd *exec.Cmd
}

// Start runs BIRD in namespace ns of l with conf, preceded by a log file in a
// new temporary directory and protocol state and event debugging, and waits
// until it answers on its control socket. It fails t if BIRD does not come up
// within 10 s, and logs bird.log when t fails.
func Start(t testing.TB, l *lab.Lab, ns, conf string) *BIRD {
	t.Helper()
	dir := t.TempDir()
	b := &BIRD{Dir: dir, Sock: Sock(filepath.Join(dir, "bird.ctl"))}
	confPath := filepath.Join(dir, "bird.conf")
	full := fmt.Sprintf("log %q all;\ndebug protocols { states, events };\n%s", filepath.Join(dir, "bird.log"), conf)
	if err := os.WriteFile(confPath, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "bird.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	if b.Cmd, err = l.Start(ns, logf, "bird", "-f", "-c", confPath, "-s", string(b.Sock)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(filepath.Join(dir, "bird.log"))
			t.Logf("bird.log:\n%s", out)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := b.Sock.Birdc("show status"); err == nil {
			break
		} else if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(dir, "bird.out"))
			t.Fatalf("BIRD did not come up: %v\n%s", err, out)
		}
	}
	return b
}

// Sock is the path of a BIRD control socket; a test's inner half, in another
// process, needs nothing else to read BIRD.
type Sock string

// Birdc runs one BIRD CLI command and returns its output.
func (s Sock) Birdc(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", string(s)}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// Route is one route as `birdc show route all` prints it.
type Route struct {
	Prefix    string
	Protocol  string
	NextHop   string   // BGP.next_hop
	Via       string   // the gateway BIRD resolved
	MED       string   // BGP.med, "" if absent
	LocalPref string   // BGP.local_pref
	ASPath    string   // BGP.as_path
	Community []string // BGP.community, e.g. "(65000,100)"
	Header    string   // the first line, as printed
}

var routeHeader = regexp.MustCompile(`^(\S+)?\s+unicast \[(\S+) `)

// Routes returns BIRD's routes for prefix learned by protocol (none when BIRD
// has no route for prefix).
func (s Sock) Routes(prefix, protocol string) ([]Route, error) {
	out, err := s.Birdc("show route all " + prefix + " protocol " + protocol)
	if strings.Contains(out, "Network not found") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []Route
	var cur *Route
	lastPrefix := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := routeHeader.FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				lastPrefix = m[1]
			}
			rs = append(rs, Route{Prefix: lastPrefix, Protocol: m[2], Header: strings.TrimSpace(line)})
			cur = &rs[len(rs)-1]
			continue
		}
		if cur == nil {
			continue
		}
		f := strings.TrimSpace(line)
		k, v, _ := strings.Cut(f, ":")
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(f, "via "):
			cur.Via = strings.Fields(f)[1]
		case k == "BGP.next_hop":
			cur.NextHop = v
		case k == "BGP.med":
			cur.MED = v
		case k == "BGP.local_pref":
			cur.LocalPref = v
		case k == "BGP.as_path":
			cur.ASPath = v
		case k == "BGP.community":
			cur.Community = strings.Fields(v)
		}
	}
	return rs, nil
}

// NextHops returns the sorted next hops of BIRD's routes for prefix from
// protocol.
func (s Sock) NextHops(prefix, protocol string) ([]string, error) {
	rs, err := s.Routes(prefix, protocol)
	var hops []string
	for _, r := range rs {
		hops = append(hops, r.NextHop)
	}
	slices.Sort(hops)
	return hops, err
}

// GRActive reports whether BIRD is helping protocol's neighbor through a
// graceful restart, that is holding its routes as stale. (BIRD 2.0 marks the
// routes stale internally but does not print the mark in show route.)
func (s Sock) GRActive(protocol string) (bool, error) {
	out, err := s.Birdc("show protocols all " + protocol)
	return strings.Contains(out, "Neighbor graceful restart active"), err
}

// HopsAre is a WaitFor condition: BIRD's next hops for prefix from protocol
// are exactly want (none when want is empty).
func (s Sock) HopsAre(prefix, protocol string, want ...string) func() (bool, string) {
	return func() (bool, string) {
		hops, err := s.NextHops(prefix, protocol)
		if err != nil {
			return false, err.Error()
		}
		return strings.Join(hops, ",") == strings.Join(want, ","), fmt.Sprint(hops)
	}
}

// WaitFor polls cond every 5ms until it holds or timeout passes (then it fails
// t with what and the state cond last reported), and returns how long it took.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > timeout {
			t.Fatalf("after %s: %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
