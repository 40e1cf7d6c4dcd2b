//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/stack"
)

// The daemon's restart: TestControllerRestartUnderTraffic again, with the
// controller a real graygw-controller process (built from cmd/graygw-controller
// into a temporary directory) over a bbolt store file, instead of an engine in
// the test process. The lab and the agent (the P4Runtime server over the XDP
// dataplane, in the test process, as the daemon's own tests run it) are the
// package's.

// buildController builds cmd/graygw-controller into a temporary directory.
func buildController(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "graygw-controller")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/graygw/graygw/cmd/graygw-controller")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build graygw-controller: %v\n%s", err, out)
	}
	return bin
}

// ctlProc is a graygw-controller process; its log (stderr and stdout) goes
// to a file.
type ctlProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	exit chan int
}

func startCtl(t *testing.T, bin, name, logPath string, args ...string) *ctlProc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &ctlProc{name: name, cmd: cmd, log: logPath, exit: make(chan int, 1)}
	go func() {
		cmd.Wait()
		f.Close()
		p.exit <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID; an error, and nothing sent, once it was waited for
		<-p.exit
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s controller log (%s):\n%s", name, logPath, out)
		}
	})
	return p
}

func (p *ctlProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

var metricsAddrRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// metricsAddr waits for the log line naming the metrics listener (--metrics
// 127.0.0.1:0) and returns its address.
func (p *ctlProc) metricsAddr(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := metricsAddrRE.FindStringSubmatch(p.logText()); m != nil {
			return m[1]
		}
		select {
		case code := <-p.exit:
			p.exit <- code
			t.Fatalf("%s controller exited with %d before serving", p.name, code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s controller: no metrics listener logged", p.name)
		}
	}
}

// term sends SIGTERM (the drain) and returns the exit code.
func (p *ctlProc) term(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-p.exit:
		p.exit <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("%s controller did not exit after SIGTERM", p.name)
	}
	return -1
}

// waitInSync polls the status API until the gateway holds version v and a
// pass succeeded in this process.
func waitInSync(t *testing.T, c graygwv1.ControllerClient, v uint64) *graygwv1.GatewayStatus {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err := c.Status(context.Background(), &graygwv1.StatusRequest{})
		if err == nil && len(st.GetGateways()) == 1 {
			if g := st.GetGateways()[0]; g.GetInSync() && g.GetVersion() == v && g.GetReconciles() > 0 {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never in sync at version %d: %v %v", v, st, err)
		}
	}
}

// scrape returns the controller's /metrics text.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metric returns the value of the sample named exactly series (name and
// labels, as exposed) in a /metrics text.
func metric(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}

// rawEntries reads every table entry the agent holds (a plain P4Runtime Read)
// and returns each entry's deterministic wire encoding, sorted. Counter data
// is cleared: the packets of the stream move it.
func (a *agent) rawEntries(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, te := range a.readEntries(t) {
		te.CounterData = nil
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(te)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// TestControllerProcessRestartUnderTraffic: a graygw-controller process seeded
// with an intent of 3 backends (version 1), then given a 4th through its API
// (version 2: the pool's table is a Maglev Rebuild, which only the stored
// tables give back), is stopped with SIGTERM while a stream of one datagram a
// millisecond (sequence numbers, 8 flows) goes through the gateway (XDP, and
// BMv2 when present), and a
// second process is started on the same store file with the same arguments.
// The first process exits 0 having written nothing on its way out (the agent's
// own RPC counts: the gateway keeps its entries); the second reports the
// gateway in sync at version 2 having written 0 entries and pushed no pipeline
// (status API and /metrics), the agent served no update and no pipeline push
// from the SIGTERM to the end, its table entries read back byte for byte
// unchanged, and every datagram arrived exactly once at the backend the tables
// pick.
func TestControllerProcessRestartUnderTraffic(t *testing.T) {
	forEachTarget(t, testControllerProcessRestartUnderTraffic)
}

func testControllerProcessRestartUnderTraffic(t *testing.T, tg target) {
	tl := newLab(t, "gge2p", tg)
	bin := buildController(t)
	dir, err := os.MkdirTemp("", "gge2p") // short: the unix socket's path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	in := filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(in, []byte(tl.intentYAML([]int{11, 12, 13})), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "c.sock")
	args := []string{"--store", filepath.Join(dir, "controller.db"), "--intent", in, "--listen-unix", sock,
		"--metrics", "127.0.0.1:0", "--election-id", "10"}
	if cfg := tl.deviceConfigYAML(); cfg != "" {
		path := filepath.Join(dir, "controller.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}

	first := startCtl(t, bin, "first", filepath.Join(dir, "first.log"), args...)
	first.metricsAddr(t)
	c1 := stack.Dial(t, sock)
	if g := waitInSync(t, c1, 1); g.GetEntriesWritten() == 0 {
		t.Fatalf("first controller: seeded and in sync without writing: %v", g)
	}
	resp, err := c1.Apply(context.Background(), &graygwv1.ApplyRequest{IntentYaml: tl.intentYAML([]int{11, 12, 13, 14}),
		Options: &graygwv1.ChangeOptions{Actor: "e2e", Wait: true}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetResult(); !r.GetApplied() || r.GetVersion() != 2 || len(r.GetProblems()) > 0 {
		t.Fatalf("apply version 2: %v", r)
	}
	waitInSync(t, c1, 2)

	beforeRaw := tl.agent.rawEntries(t)
	_, fs, want := tl.predictFlows(t, 8)

	// The stream.
	next, stopStream := tl.startStream(t, fs)
	defer stopStream()
	time.Sleep(300 * time.Millisecond)

	// The restart: SIGTERM (the drain), then the same command line again.
	u0, p0 := tl.agent.updates.Load(), tl.agent.pipelines.Load()
	seqTerm := next.Load()
	if code := first.term(t); code != 0 {
		t.Fatalf("first controller exit %d", code)
	}
	seqExited := next.Load()
	if !strings.Contains(first.logText(), "drained; exiting") {
		t.Fatalf("first controller's log lacks the drain's end")
	}
	if u, p := tl.agent.updates.Load()-u0, tl.agent.pipelines.Load()-p0; u != 0 || p != 0 {
		t.Fatalf("the exiting controller wrote %d updates and pushed the pipeline %d times", u, p)
	}
	second := startCtl(t, bin, "second", filepath.Join(dir, "second.log"), args...)
	maddr := second.metricsAddr(t)
	c2 := stack.Dial(t, sock)
	g := waitInSync(t, c2, 2)
	seqSynced := next.Load()
	if g.GetEntriesWritten() != 0 || g.GetPipelinePushes() != 0 || g.GetForeignRemoved() != 0 || !g.GetPrimary() {
		t.Fatalf("restarted controller (status API): %v", g)
	}
	m := scrape(t, maddr)
	written := metric(t, m, `graygw_entries_written_total{gateway="gw"}`)
	passes := metric(t, m, `graygw_reconciles_total{gateway="gw",result="ok"}`)
	if written != 0 || passes < 1 || metric(t, m, `graygw_gateway_in_sync{gateway="gw"}`) != 1 ||
		metric(t, m, `graygw_gateway_intent_version{gateway="gw"}`) != 2 {
		t.Fatalf("restarted controller's metrics: %s",
			grepMetrics(m, "graygw_entries_written_total", "graygw_reconciles_total", "graygw_gateway_"))
	}
	if !strings.Contains(second.logText(), "--intent ignored") {
		t.Fatal("second controller's log lacks the warning that --intent was ignored")
	}
	time.Sleep(300 * time.Millisecond)
	stopStream()
	if u, p := tl.agent.updates.Load()-u0, tl.agent.pipelines.Load()-p0; u != 0 || p != 0 {
		t.Fatalf("the agent served %d updates and %d pipeline pushes over the restart", u, p)
	}
	sent, got, lost, dup := tl.endStream(t, next, fs, want)
	afterRaw := tl.agent.rawEntries(t)
	t.Logf("stream: %d datagrams sent over %d flows (to %d backends), %d received, %d lost, %d duplicated; "+
		"%d sent from SIGTERM to the first process's exit, %d from its exit to the second process in sync "+
		"(status: %d entries written, %d pipeline pushes, %d passes; /metrics: entries_written_total %v, reconciles ok %v); "+
		"%d table entries before and %d after, byte for byte equal: %v",
		sent, len(fs), countDistinct(want), len(got), lost, dup, seqExited-seqTerm, seqSynced-seqExited,
		g.GetEntriesWritten(), g.GetPipelinePushes(), g.GetReconciles(), written, passes,
		len(beforeRaw), len(afterRaw), reflect.DeepEqual(beforeRaw, afterRaw))
	if lost != 0 || dup != 0 {
		t.Fatalf("%d datagrams lost, %d duplicated over the restart", lost, dup)
	}
	if seqSynced == seqTerm {
		t.Fatal("no datagram was sent during the restart: the test did not test it")
	}
	if !reflect.DeepEqual(beforeRaw, afterRaw) {
		t.Fatal("the gateway's table entries changed over the restart")
	}
	if code := second.term(t); code != 0 {
		t.Fatalf("second controller exit %d", code)
	}
}

// grepMetrics returns the sample lines of text whose name starts with a prefix.
func grepMetrics(text string, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return fmt.Sprint(out)
}
