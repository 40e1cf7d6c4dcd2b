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
	text := runDemo(t)
	if byServer := probedBy(t, text); byServer["gray-1"] != 3 || byServer["base-1"] != 3 {
		t.Errorf("probes answered by %v, want VPC 5001's 3 VMs by gray-1 after the rollout and by base-1 after the rollback", byServer)
	}
	// The traced VM: its rollout rule decided, gray-1 in the gateway's tables
	// as in the intent, and the probe answered by it.
	for _, want := range []string{"holds the intent", "backend   gray-1", "intent    agrees", "by gray-1: the backend the trace gives"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's trace lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestDemoHA runs graygw-demo --ha: three controller replicas on a 3-member
// etcd come up and one leads; the demo's CLI calls go through a follower
// (the rollout's start and watch, the rollback), then the leader is
// SIGKILLed, another leads, and a cutover through a follower lands: VPC
// 5001's VMs answered by gray again.
func TestDemoHA(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("needs etcd (apt-get install etcd-server): the demo's --ha cluster")
	}
	text := runDemo(t, "--ha")
	for _, want := range []string{
		"ctl-1 leads; ctl-2 and ctl-3 stand by warm",
		"ctl-1 SIGKILLed: another replica leads with the gateway in sync",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The replicas table (graygw status through a follower): three replicas,
	// one leader, before the failover; two after.
	table := regexp.MustCompile(`(?m)^\s+(ctl-\d)\s+unix://\S+\s+(leader|standby \(warm\))\s`)
	var rows []string
	for _, m := range table.FindAllStringSubmatch(text, -1) {
		rows = append(rows, m[1]+" "+m[2])
	}
	got := strings.Join(rows, ", ")
	if !strings.HasPrefix(got, "ctl-1 leader, ctl-2 standby (warm), ctl-3 standby (warm)") ||
		!regexp.MustCompile(`ctl-[23] leader, ctl-[23] standby \(warm\)$`).MatchString(got) {
		t.Errorf("replicas in the status tables: %s", got)
	}
	// After the rollout, the rollback and the cutover after the failover.
	if byServer := probedBy(t, text); byServer["gray-1"] != 6 || byServer["base-1"] != 3 {
		t.Errorf("probes answered by %v, want VPC 5001's 3 VMs by gray-1 after the rollout, base-1 after the rollback, gray-1 after the cutover", byServer)
	}
	if t.Failed() {
		t.Log(text)
	}
}

// runDemo builds the binaries and runs the demo with args; it fails unless
// the demo succeeds with the VIP learned by BIRD and the rollout completed,
// leaving none of its namespaces behind.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
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
	demo := exec.Command(filepath.Join(bin, "graygw-demo"), append([]string{"--bin", bin}, args...)...)
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
	if list, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(list), ours) {
		t.Errorf("namespaces %s* left behind:\n%s", ours, list)
	}
	return text
}

// probedBy counts the probe rows of VPC 5001 by the server that answered
// ("5001  192.168.1.5  192.168.1.1  ok  3/3  gray-1  gray-router ..."); a
// probe that failed is an error.
func probedBy(t *testing.T, text string) map[string]int {
	t.Helper()
	row := regexp.MustCompile(`(?m)^\s+5001\s+192\.168\.1\.(\d)\s+192\.168\.1\.1\s+(\S+)\s+\S+\s+(\S+)`)
	byServer := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		if m[2] != "ok" {
			t.Errorf("probe of 192.168.1.%s: %s", m[1], m[0])
		}
		byServer[m[3]]++
	}
	return byServer
}
