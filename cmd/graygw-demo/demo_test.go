package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the quick start's main job for real: it builds the binaries, runs
// the demo and checks what a reader of its output relies on: the VIP learned by
// BIRD, a completed rollout, the moved VMs answered by the gray server, and after
// the rollback by the base server again.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the demo creates network namespaces and attaches XDP")
	}
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("needs bird2 (apt-get install bird2): the demo's BGP peer")
	}
	if testing.Short() {
		t.Skip("-short: the demo takes about half a minute")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/graygw/graygw/cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	demo := exec.Command(filepath.Join(bin, "graygw-demo"), "--bin", bin)
	out, err := demo.CombinedOutput()
	text := string(out)
	// Its namespaces, and no one else's (another demo run with --keep, say):
	// lab.New names them after the demo's PID.
	ours := fmt.Sprintf("ggdemo%x-", demo.Process.Pid&0xffff)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, text)
	}
	for _, want := range []string{
		"10.255.0.1/32", "via 10.1.0.1", // BIRD learned the VIP from the controller
		"rollout demo: completed",
		"demo complete",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Probe rows: "5001  192.168.1.5  192.168.1.1  ok  3/3  gray-1  gray-router ..."
	row := regexp.MustCompile(`(?m)^\s+5001\s+192\.168\.1\.(\d)\s+192\.168\.1\.1\s+(\S+)\s+\S+\s+(\S+)`)
	byServer := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		if m[2] != "ok" {
			t.Errorf("probe of 192.168.1.%s: %s", m[1], m[0])
		}
		byServer[m[3]]++
	}
	if byServer["gray-1"] != 3 || byServer["base-1"] != 3 {
		t.Errorf("probes answered by %v, want VPC 5001's 3 VMs by gray-1 after the rollout and by base-1 after the rollback", byServer)
	}
	if t.Failed() {
		t.Log(text)
	}
	if list, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(list), ours) {
		t.Errorf("namespaces %s* left behind:\n%s", ours, list)
	}
}
