package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/stack"
)

// envChild makes the test binary a controller process (JSON argument list), as
// the keep-routes test needs a controller that really exits.
const envChild = "GRAYGW_CTL_CHILD"

func TestMain(m *testing.M) {
	if a := os.Getenv(envChild); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		os.Exit(run(args, os.Stdout, os.Stderr, sigs, nil))
	}
	os.Exit(m.Run())
}

// startStoppableAgent is an agent a test can stop (the gateway is lost) and
// start again on the same address, over the same dataplane.
func startStoppableAgent(t *testing.T) *stack.Agent { return stack.StartAgent(t, stack.AgentConfig{}) }

// bgpController writes the config and the intent for two agents and returns
// the controller's arguments.
func bgpController(t *testing.T, dir string, a1, a2 *stack.Agent, extra ...string) []string {
	t.Helper()
	cfg := filepath.Join(dir, "controller.yaml")
	in := filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(cfg, []byte(bgpSection()+strings.Join(extra, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(twoGatewayIntent(a1.Addr, a2.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg, "--store", filepath.Join(dir, "c.db"), "--listen-unix", filepath.Join(dir, "c.sock"),
		"--intent", in, "--election-id", "5"}
}

// TestDaemonAnnouncesToBIRD: the controller daemon, with a bgp: section,
// announces the VIP to a real BIRD through both gateways; graygw's drain
// withdraws a gateway's path within 1s and undrain brings it back; stopping a
// gateway's agent withdraws its path within 1s and its return (reconciled)
// announces it again; BGPStatus and the metrics say so; the first signal
// withdraws everything.
func TestDaemonAnnouncesToBIRD(t *testing.T) {
	b, ok := insideBirdLab(t, newBirdLab)
	if !ok {
		return
	}
	a1, a2 := startStoppableAgent(t), startStoppableAgent(t)
	dir := t.TempDir()
	start := time.Now()
	r := startController(t, append(bgpController(t, dir, a1, a2), "--metrics", "127.0.0.1:0")...)
	b.waitHops(t, 30*time.Second, "announced at start", birdGW1, birdGW2)
	t.Logf("controller start -> both paths at BIRD: %s", time.Since(start).Round(time.Millisecond))
	c := r.client(t)

	st, err := c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetNeighbors()) != 1 || !st.GetNeighbors()[0].GetUp() || st.GetNeighbors()[0].GetAdvertised() != 2 ||
		!st.GetNeighbors()[0].GetGracefulRestart() || len(st.GetAnnounced()) != 2 || st.GetAnnounced()[0].GetMed() != 50 {
		t.Fatalf("BGP status: %v", st)
	}
	body := r.metrics(t)
	for _, w := range []string{`graygw_bgp_session_up{neighbor="10.179.0.2"} 1`, "graygw_bgp_vips_announced 2",
		`graygw_bgp_vips_withdrawn{reason="drained"} 0`} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}

	timed := func(what string, budget time.Duration, act func(), want ...string) {
		t.Helper()
		t0 := time.Now()
		act()
		b.waitHops(t, 10*time.Second, what, want...)
		d := time.Since(t0)
		t.Logf("%s: BIRD shows it after %s", what, d.Round(100*time.Microsecond))
		if d > budget {
			t.Errorf("%s took %s, budget %s", what, d, budget)
		}
	}
	timed("drain gw1", time.Second, func() {
		if _, err := c.DrainGateway(context.Background(), &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}, birdGW2)
	st, _ = c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if w := st.GetWithdrawn(); len(w) != 1 || w[0].GetGateway() != "gw1" || w[0].GetReasons()[0] != "drained" {
		t.Fatalf("withdrawn after the drain: %v", st)
	}
	timed("undrain gw1", 5*time.Second, func() {
		if _, err := c.UndrainGateway(context.Background(), &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "test", Reason: "done"}); err != nil {
			t.Fatal(err)
		}
	}, birdGW1, birdGW2)
	// Both are records of the daemon's history, after the seed.
	h, err := c.History(context.Background(), &graygwv1.HistoryRequest{Limit: 2})
	if err != nil || len(h.GetEvents()) != 2 {
		t.Fatalf("history: %v %v", h, err)
	}
	for i, want := range []string{"undrain gateway gw1", "drain gateway gw1"} {
		e := h.GetEvents()[i]
		op, summary, _ := strings.Cut(want, " ")
		if !e.GetRecord() || e.GetOperation() != op || !strings.HasPrefix(e.GetActor(), "test") || !strings.HasPrefix(e.GetSummary(), summary) ||
			e.GetBefore() != e.GetAfter() {
			t.Errorf("history[%d] = %v, want a %s record", i, e, want)
		}
	}
	if r := h.GetEvents()[0].GetReason(); r != "done" {
		t.Errorf("undrain reason %q", r)
	}
	timed("agent of gw2 stopped", time.Second, a2.Stop, birdGW1)
	st, _ = c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if w := st.GetWithdrawn(); len(w) != 1 || w[0].GetGateway() != "gw2" || w[0].GetReasons()[0] != "p4runtime-disconnected" {
		t.Fatalf("withdrawn after the agent loss: %v", st)
	}
	timed("agent of gw2 back", 10*time.Second, a2.Start, birdGW1, birdGW2)

	// The first signal withdraws every path before the process exits.
	t0 := time.Now()
	r.stop(t, 0)
	b.waitHops(t, 5*time.Second, "withdrawn at exit")
	t.Logf("SIGTERM -> exited with both paths withdrawn at BIRD: %s", time.Since(t0).Round(time.Millisecond))
}

// TestDaemonWithdrawsWithoutHealthyBackend: with health checking on (ICMP
// echo every 100ms, fall 3, rise 2), the VIP's only backend (base-1, in its own
// namespace) losing its link withdraws both paths at BIRD, with reason
// no-healthy-backend in BGPStatus and the logs, and graygw_backend_up 0; its
// link back announces them again.
func TestDaemonWithdrawsWithoutHealthyBackend(t *testing.T) {
	b, ok := insideBirdLab(t, newBirdLabWithBackend)
	if !ok {
		return
	}
	const interval = 100 * time.Millisecond
	a1, a2 := startStoppableAgent(t), startStoppableAgent(t)
	dir := t.TempDir()
	args := bgpController(t, dir, a1, a2, "health: {enabled: true, interval: 100ms, timeout: 80ms, rise: 2, fall: 3}\n")
	r := startController(t, append(args, "--metrics", "127.0.0.1:0")...)
	b.waitHops(t, 30*time.Second, "announced at start", birdGW1, birdGW2)
	c := r.client(t)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(r.metrics(t), `graygw_backend_up{backend="base-1",pool="base"} 1`) ||
		strings.Contains(r.metrics(t), `graygw_backend_health_checks_total{result="ok"} 0`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no successful check after 5s:\n%s", r.metrics(t))
		}
	}

	// Budget: fall (rise) checks an interval apart, plus the first one's wait
	// for its slot and timeout, plus 1s for a busy machine.
	budget := func(n int) time.Duration { return time.Duration(n+1)*interval + time.Second }
	t0 := time.Now()
	b.inBackend(t, "ip", "link", "set", "vbe", "down")
	b.waitHops(t, 10*time.Second, "backend link down")
	d := time.Since(t0)
	t.Logf("backend link down -> both paths gone at BIRD after %s (fall 3 x %s)", d.Round(time.Millisecond), interval)
	if d > budget(3) {
		t.Errorf("withdrawal took %s, budget %s", d, budget(3))
	}
	st, err := c.BGPStatus(context.Background(), &graygwv1.BGPStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if w := st.GetWithdrawn(); len(w) != 2 || len(st.GetAnnounced()) != 0 {
		t.Fatalf("BGP status with the backend down: %v", st)
	}
	for _, w := range st.GetWithdrawn() {
		if !slices.Equal(w.GetReasons(), []string{"no-healthy-backend"}) ||
			!strings.Contains(w.GetDetail(), "base-1 (10.2.0.11) down since") || !strings.Contains(w.GetDetail(), "3 echo requests failed in a row") {
			t.Fatalf("withdrawn path: %v", w)
		}
	}
	t.Logf("withdrawn: %s", st.GetWithdrawn()[0].GetDetail())
	m := r.metrics(t)
	for _, w := range []string{`graygw_backend_up{backend="base-1",pool="base"} 0`, `graygw_bgp_vips_withdrawn{reason="no-healthy-backend"} 2`} {
		if !strings.Contains(m, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	logs := r.logs.String()
	for _, w := range []string{`msg="backend down" event=backendDown backend=base-1 addr=10.2.0.11 pools=base from=up to=down reason="3 echo requests failed in a row`,
		`msg="vip withdrawn" event=vipWithdrawn vip=198.51.100.10 nexthop=10.179.0.11 gateway=gw1 reason=no-healthy-backend`} {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %s", w)
		}
	}

	t0 = time.Now()
	b.inBackend(t, "ip", "link", "set", "vbe", "up")
	b.waitHops(t, 10*time.Second, "backend link up", birdGW1, birdGW2)
	d = time.Since(t0)
	t.Logf("backend link up -> both paths back at BIRD after %s (rise 2 x %s)", d.Round(time.Millisecond), interval)
	if d > budget(2) {
		t.Errorf("re-announcement took %s, budget %s", d, budget(2))
	}
	if m := r.metrics(t); !strings.Contains(m, `graygw_backend_up{backend="base-1",pool="base"} 1`) {
		t.Errorf("/metrics after: graygw_backend_up not 1")
	}
	t.Logf("controller log (health and announcements):\n%s", grepLines(r.logs.String(), "backend", "vip "))
	if logs := r.logs.String(); !strings.Contains(logs, `msg="backend up" event=backendUp backend=base-1 addr=10.2.0.11 pools=base from=down to=up reason="2 echo requests succeeded in a row"`) {
		t.Errorf("log lacks the backend's recovery")
	}
}

// child is a controller process (the test binary in envChild mode).
type child struct {
	cmd  *exec.Cmd
	exit chan int
}

func startChild(t *testing.T, logPath string, args ...string) *child {
	t.Helper()
	a, _ := json.Marshal(args)
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChild+"="+string(a))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exit: make(chan int, 1)}
	go func() {
		cmd.Wait()
		logf.Close()
		c.exit <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", logPath, out)
		}
	})
	return c
}

func (c *child) term(t *testing.T) int {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case code := <-c.exit:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("the controller did not exit after SIGTERM")
	}
	return -1
}

// TestKeepRoutesOnExit: a controller started with --keep-routes-on-exit exits
// on SIGTERM without withdrawing: BIRD keeps both paths (graceful restart) and
// never loses them while the next controller process starts and refreshes
// them; that one, without the flag, withdraws them on SIGTERM.
func TestKeepRoutesOnExit(t *testing.T) {
	b, ok := insideBirdLab(t, newBirdLab)
	if !ok {
		return
	}
	a1, a2 := startStoppableAgent(t), startStoppableAgent(t)
	dir := t.TempDir()
	args := bgpController(t, dir, a1, a2)
	first := startChild(t, filepath.Join(dir, "first.log"), append(args, "--keep-routes-on-exit")...)
	b.waitHops(t, 30*time.Second, "announced by the first controller", birdGW1, birdGW2)

	// Watch BIRD's table from the first controller's exit to the end of the
	// restart: the paths must never leave it.
	var lost atomic.Value
	stopWatch := make(chan struct{})
	watched := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stopWatch:
				watched <- n
				return
			default:
			}
			if hops, err := b.nextHops(); err == nil && len(hops) != 2 && lost.Load() == nil {
				lost.Store(fmt.Sprintf("%v at %s", hops, time.Now().Format(time.StampMicro)))
			}
			n++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if code := first.term(t); code != 0 {
		t.Fatalf("first controller exit %d", code)
	}
	t0 := time.Now()
	gr := false
	for time.Since(t0) < 3*time.Second {
		gr = gr || b.grActive()
		time.Sleep(50 * time.Millisecond)
	}
	if !gr {
		t.Fatal("BIRD never held our routes in graceful restart after the exit")
	}
	second := startChild(t, filepath.Join(dir, "second.log"), args...)
	for deadline := time.Now().Add(60 * time.Second); b.grActive(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the graceful restart never ended")
		}
	}
	b.waitHops(t, 5*time.Second, "refreshed by the second controller", birdGW1, birdGW2)
	t.Logf("first controller exit -> restart done at BIRD: %s", time.Since(t0).Round(time.Millisecond))
	close(stopWatch)
	n := <-watched
	if v := lost.Load(); v != nil {
		t.Fatalf("BIRD lost a path during the restart: %s", v)
	}
	t.Logf("BIRD's table read %d times during the restart: both paths every time", n)
	if code := second.term(t); code != 0 {
		t.Fatalf("second controller exit %d", code)
	}
	b.waitHops(t, 5*time.Second, "withdrawn by the second controller's exit")
}

// grepLines returns the lines of s that contain one of words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) && !strings.Contains(line, "level=DEBUG") {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
