package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/topo"
)

// TestLocalProbeInTheLab runs 'graygw probe --local' from the hypervisor's
// namespace through the XDP gateway: the VM the intent moves is answered by the
// gray backend, the other by base; a wrong --expect exits 4.
func TestLocalProbeInTheLab(t *testing.T) {
	l, err := probetest.New("ggcli", nil)
	if errors.Is(err, lab.ErrNotRoot) {
		t.Skip("needs root: network namespaces, XDP and AF_PACKET")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	doc := l.IntentYAML("  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n")
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(res); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "intent.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	g := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		base := []string{"probe", "--local", "-f", path, "--netns", l.Topo.HV, "--iface", "h0", "--router-mac", topo.RouterMAC,
			"--vm", "5001/192.168.1.5", "--vm", "5001/192.168.1.6", "--router", "192.168.1.1", "--interval", "10ms"}
		code := run(context.Background(), append(base, args...), &out, &errb, dial)
		return code, out.String(), errb.String()
	}
	code, out, stderr := g()
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 || !strings.Contains(lines[1], "192.168.1.5") || !strings.Contains(lines[1], "gray-1") ||
		!strings.Contains(lines[2], "192.168.1.6") || !strings.Contains(lines[2], "base-1") {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = g("--expect", "base")
	if code != ExitFailed || !strings.Contains(out, "wrong-backend") || !strings.Contains(stderr, "1 of 2 targets not ok") {
		t.Errorf("--expect base: exit %d\n%s\n%s", code, out, stderr)
	}
}
