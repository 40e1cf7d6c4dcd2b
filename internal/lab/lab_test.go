package lab

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// twoEnds builds lab prefix with namespaces a and b joined by veth va-vb
// (skipping t without root); the test closes it.
func twoEnds(t *testing.T, prefix string) (l *Lab, a, b string) {
	t.Helper()
	l, err := New(prefix)
	if errors.Is(err, ErrNotRoot) {
		t.Skip("needs root: network namespaces")
	}
	if err != nil {
		t.Fatal(err)
	}
	if a, err = l.NS("a"); err == nil {
		if b, err = l.NS("b"); err == nil {
			err = l.Veth(a, "va", b, "vb")
		}
	}
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return l, a, b
}

func TestLabBuildsAndRemovesNamespaces(t *testing.T) {
	l, a, b := twoEnds(t, "gglab")
	if err := l.Script(a, "ip addr add 10.99.0.1/24 dev va"); err != nil {
		t.Fatal(err)
	}
	if err := l.Script(b, "ip addr add 10.99.0.2/24 dev vb"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.Exec(a, "ping", "-c1", "-W2", "10.99.0.2"); err != nil {
		t.Fatalf("ping across the veth: %v\n%s", err, out)
	}
	sleeper, err := l.Start(b, nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if sleeper.ProcessState == nil {
		t.Fatal("Close left a started process running")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), l.Prefix) {
		t.Fatalf("namespaces left behind:\n%s", out)
	}
}
