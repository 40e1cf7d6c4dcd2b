package topo

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/lab/labtest"
)

// Without a gateway program the VIP is unreachable; pointing the hypervisor's VTEP
// straight at one backend shows the backends answer VM pings as the VPC router.
func TestBackendsAnswerVMs(t *testing.T) {
	l := labtest.New(t, "ggtopo", "network namespaces")
	tp, err := Build(l, DefaultVPCs)
	if err != nil {
		t.Fatal(err)
	}
	vpc := DefaultVPCs[0]
	if n, _ := tp.Ping(vpc, vpc.VMs[0], 1); n != 0 {
		t.Fatalf("VIP answered with no gateway program: %d replies", n)
	}
	for _, backend := range []string{BaseAddr.String(), GrayAddr.String()} {
		if _, err := l.Exec(tp.HV, "ip", "link", "set", "vx5001", "type", "vxlan", "remote", backend); err != nil {
			t.Fatal(err)
		}
		n, err := tp.Ping(vpc, vpc.VMs[0], 3)
		if err != nil || n != 3 {
			t.Fatalf("via %s: %d/3 replies, %v", backend, n, err)
		}
	}
}

// TestDocNamesExistingFiles: every repository path the package comment names
// (topo/...) exists, so the pointer to the mininet topology stays right.
func TestDocNamesExistingFiles(t *testing.T) {
	src, err := os.ReadFile("topo.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(src), "\npackage topo")
	paths := regexp.MustCompile(`topo/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(doc, -1)
	if len(paths) == 0 {
		t.Fatal("the package comment names no topo/ path (the mininet topology)")
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("package comment names %s: %v", p, err)
		}
	}
}
