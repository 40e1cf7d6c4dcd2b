// Package labtest holds what graygw's namespace tests repeat around an
// internal/lab lab: building one that a test without root skips and that is
// removed when the test ends, and running a test's inner half inside one of its
// namespaces (the test binary re-executed under `ip netns exec`).
package labtest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
)

// Environment variables a re-executed test binary reads.
const (
	envInner = "GRAYGW_LAB_INNER" // name of the test to run as the inner half
	envInfo  = "GRAYGW_LAB_INFO"  // JSON: what the inner half needs to know
)

// New returns a lab whose names start with prefix, closed (its processes
// killed by PID, its namespaces deleted) when t ends. It skips t without root,
// saying "needs root: " and why.
func New(t testing.TB, prefix, why string) *lab.Lab {
	t.Helper()
	return Build(t, why, func() (*lab.Lab, error) { return lab.New(prefix) })
}

// Build returns what build makes of namespaces (a lab, or a topology built on
// one), closed when t ends; a Close error fails t. It skips t when build
// returns lab.ErrNotRoot, saying "needs root: " and why.
func Build[L interface{ Close() error }](t testing.TB, why string, build func() (L, error)) L {
	t.Helper()
	l, err := build()
	if errors.Is(err, lab.ErrNotRoot) {
		t.Skip("needs root: " + why)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return l
}

// Namespaces makes a namespace of l for each of names and returns their
// full names, in order. A failure fails t.
func Namespaces(t testing.TB, l *lab.Lab, names ...string) []string {
	t.Helper()
	out := make([]string, len(names))
	for i, name := range names {
		ns, err := l.NS(name)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ns
	}
	return out
}

// Link joins device devA in namespace a to device devB in namespace b (a
// veth pair). A failure fails t.
func Link(t testing.TB, l *lab.Lab, a, devA, b, devB string) {
	t.Helper()
	if err := l.Veth(a, devA, b, devB); err != nil {
		t.Fatal(err)
	}
}

// Script runs script's commands in namespace ns of l. A failure fails t.
func Script(t testing.TB, l *lab.Lab, ns, script string) {
	t.Helper()
	if err := l.Script(ns, script); err != nil {
		t.Fatal(err)
	}
}

// RunInside re-executes the current test inside namespace ns, giving its inner
// half info (marshalled to JSON; Inner reads it back). It waits at most
// timeout and fails t unless the inner test passed.
func RunInside(t *testing.T, ns string, timeout time.Duration, info any) {
	t.Helper()
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envInner+"="+t.Name(), envInfo+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("inner test: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("inner test did not pass (skipped?)")
	}
}

// Inner reports whether this process is the inner half of t that RunInside
// started, and if so reads the info it was given into info.
func Inner(t *testing.T, info any) bool {
	t.Helper()
	if os.Getenv(envInner) != t.Name() {
		return false
	}
	if err := json.Unmarshal([]byte(os.Getenv(envInfo)), info); err != nil {
		t.Fatalf("%s: %v", envInfo, err)
	}
	return true
}

// Exec runs a command inside namespace ns (from any process: it needs no Lab)
// and fails t if it fails.
func Exec(t testing.TB, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v: %s", args, ns, err, out)
	}
}
