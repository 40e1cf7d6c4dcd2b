//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graygw/graygw/internal/lab"
)

// The BMv2 gateway: simple_switch_grpc runs the compiled v1model program
// (build/p4/graygw.json, pushed by the controller) in the gateway namespace, on
// the same veths the XDP program would use, and serves P4Runtime on that
// namespace's loopback. The test process reaches it through a P4Runtime proxy
// on the host's loopback that forwards every RPC into the namespace and counts
// them as the XDP agent's interceptors do, so the tests assert the same RPC
// counts (updates, pipeline pushes) on both targets.

// target is the gateway's dataplane in a test.
type target string

const (
	targetXDP  target = "xdp"
	targetBMv2 target = "bmv2"
)

// forEachTarget runs f as a subtest per target: the XDP program always (it
// skips without root, as newLab does), BMv2 when simple_switch_grpc and the
// compiled program are found (one line says why not otherwise).
func forEachTarget(t *testing.T, f func(t *testing.T, tg target)) {
	for _, tg := range []target{targetXDP, targetBMv2} {
		t.Run(string(tg), func(t *testing.T) { f(t, tg) })
	}
}

// bmv2Tools is where simple_switch_grpc and the program are.
type bmv2Tools struct {
	switchBin string // simple_switch_grpc
	program   string // the p4c-bm2-ss output (BMv2 JSON)
}

// findBMv2 looks for simple_switch_grpc on PATH, then under $P4TOOLS/bin and
// /opt/p4tools/bin (where scripts/p4tools.sh installs the bundle), and for the
// program in $GRAYGW_BMV2_JSON, else build/p4/graygw.json of the module (make
// p4), which must be newer than every file of p4src/. The error says what is
// missing, in one line.
func findBMv2() (bmv2Tools, error) {
	var tools bmv2Tools
	if p, err := exec.LookPath("simple_switch_grpc"); err == nil {
		tools.switchBin = p
	} else {
		for _, dir := range []string{os.Getenv("P4TOOLS"), "/opt/p4tools"} {
			if p := filepath.Join(dir, "bin", "simple_switch_grpc"); dir != "" && isExecutable(p) {
				tools.switchBin = p
				break
			}
		}
	}
	if tools.switchBin == "" {
		return tools, errors.New("simple_switch_grpc (BMv2 with P4Runtime) is not on PATH, in $P4TOOLS/bin or /opt/p4tools/bin (scripts/p4tools.sh)")
	}
	if p := os.Getenv("GRAYGW_BMV2_JSON"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return tools, fmt.Errorf("GRAYGW_BMV2_JSON: %w", err)
		}
		tools.program = p
		return tools, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return tools, err
	}
	tools.program = filepath.Join(root, "build", "p4", "graygw.json")
	fi, err := os.Stat(tools.program)
	if err != nil {
		return tools, fmt.Errorf("no compiled program (%s: run make p4, or set GRAYGW_BMV2_JSON)", tools.program)
	}
	var stale string
	filepath.WalkDir(filepath.Join(root, "p4src"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && stale == "" {
			if info, err := d.Info(); err == nil && info.ModTime().After(fi.ModTime()) {
				stale = p
			}
		}
		return nil
	})
	if stale != "" {
		return tools, fmt.Errorf("%s is older than %s (run make p4, or set GRAYGW_BMV2_JSON)", tools.program, stale)
	}
	return tools, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// bmv2P4RT is where simple_switch_grpc serves P4Runtime, on the gateway
// namespace's own loopback.
const bmv2P4RT = "127.0.0.1:9559"

// startBMv2 starts simple_switch_grpc without a program in the gateway
// namespace, with port N on the veth pN (ports 1 and 2), and serves the
// counting proxy in front of it. The lab stops the switch (by PID) when it
// closes; the proxy stops with the test.
func (tl *testLab) startBMv2(t *testing.T, tools bmv2Tools) *agent {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "bmv2.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("simple_switch_grpc output:\n%s", out)
		}
	})
	sw, err := tl.lab.Start(tl.gw, logf, tools.switchBin, "--no-p4", "--device-id", "1",
		"-i", fmt.Sprintf("%d@p1", portCl), "-i", fmt.Sprintf("%d@p2", portBe),
		"--", "--grpc-server-addr", bmv2P4RT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Stop(sw, syscall.SIGTERM, 5*time.Second) })

	// A TCP connection opened inside the namespace stays there.
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := lab.InNamespace(tl.gw, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := dial(context.Background(), bmv2P4RT)
		if err == nil {
			c.Close()
			break
		}
		if sw.ProcessState != nil || syscall.Kill(sw.Process.Pid, 0) != nil {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("simple_switch_grpc exited:\n%s", out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("simple_switch_grpc does not listen on %s after 20s: %v", bmv2P4RT, err)
		}
	}
	conn, err := grpc.NewClient("passthrough:///"+bmv2P4RT, grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return serveP4RT(t, &p4rtProxy{up: p4v1.NewP4RuntimeClient(conn)}, nil)
}

// p4rtProxy forwards every P4Runtime RPC to another server, unchanged: the
// status codes, and the per-update errors in a Write's details, come back as
// the server sent them.
type p4rtProxy struct {
	p4v1.UnimplementedP4RuntimeServer
	up p4v1.P4RuntimeClient
}

func (p *p4rtProxy) Write(ctx context.Context, r *p4v1.WriteRequest) (*p4v1.WriteResponse, error) {
	return p.up.Write(ctx, r)
}

func (p *p4rtProxy) SetForwardingPipelineConfig(ctx context.Context, r *p4v1.SetForwardingPipelineConfigRequest) (*p4v1.SetForwardingPipelineConfigResponse, error) {
	return p.up.SetForwardingPipelineConfig(ctx, r)
}

func (p *p4rtProxy) GetForwardingPipelineConfig(ctx context.Context, r *p4v1.GetForwardingPipelineConfigRequest) (*p4v1.GetForwardingPipelineConfigResponse, error) {
	return p.up.GetForwardingPipelineConfig(ctx, r)
}

func (p *p4rtProxy) Capabilities(ctx context.Context, r *p4v1.CapabilitiesRequest) (*p4v1.CapabilitiesResponse, error) {
	return p.up.Capabilities(ctx, r)
}

func (p *p4rtProxy) Read(r *p4v1.ReadRequest, down p4v1.P4Runtime_ReadServer) error {
	up, err := p.up.Read(down.Context(), r)
	if err != nil {
		return err
	}
	return relay(up, down)
}

// relay sends down every message received from up until up ends (nil) or
// either fails (its error).
func relay[M any](up interface{ Recv() (M, error) }, down interface{ Send(M) error }) error {
	for {
		m, err := up.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := down.Send(m); err != nil {
			return err
		}
	}
}

// StreamChannel pairs the client's stream with one to the server: the
// server sees the client's arbitration, and the end of the client's stream
// (the controller closing, or dying) as the end of its own.
func (p *p4rtProxy) StreamChannel(down p4v1.P4Runtime_StreamChannelServer) error {
	ctx, cancel := context.WithCancel(down.Context())
	defer cancel()
	up, err := p.up.StreamChannel(ctx)
	if err != nil {
		return err
	}
	go func() {
		for {
			m, err := down.Recv()
			if err != nil {
				if err == io.EOF {
					up.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if err := up.Send(m); err != nil {
				return
			}
		}
	}()
	return relay(up, down)
}

// deviceConfigYAML is the controller config's p4runtime section for tg: the
// BMv2 JSON as the gateway's device config ("" for XDP, which takes none).
func (tl *testLab) deviceConfigYAML() string {
	if tl.target != targetBMv2 {
		return ""
	}
	return fmt.Sprintf("p4runtime:\n  device_configs: {gw: %q}\n", tl.bmv2.program)
}

// skipLine is the one line a BMv2 subtest skips with.
func skipLine(err error) string {
	return "BMv2 not run: " + strings.TrimSpace(err.Error())
}
