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

// A dual-stack VPC's VMs reach the VPC router over IPv6 (inner IPv6 in the
// hypervisor's VXLAN over IPv4) at each backend, and its IPv4 still works;
// a VPC without IPv6 has no IPv6 address to ping from.
func TestBackendsAnswerIPv6VMs(t *testing.T) {
	l := labtest.New(t, "ggtopo6", "network namespaces")
	vpcs := []VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}, {VNI: 5002, Subnet: 2, VMs: []uint8{5}}}
	tp, err := Build(l, vpcs)
	if err != nil {
		t.Fatal(err)
	}
	vpc := vpcs[0]
	if got := vpc.VMAddr6(5).String(); got != "fd00:1::5" {
		t.Fatalf("VMAddr6(5) = %s, want fd00:1::5", got)
	}
	if n, _ := tp.Ping6(vpc, 5, 1); n != 0 {
		t.Fatalf("VIP answered IPv6 with no gateway program: %d replies", n)
	}
	for _, backend := range []string{BaseAddr.String(), GrayAddr.String()} {
		if _, err := l.Exec(tp.HV, "ip", "link", "set", "vx5001", "type", "vxlan", "remote", backend); err != nil {
			t.Fatal(err)
		}
		for _, vm := range vpc.VMs {
			if n, err := tp.Ping6(vpc, vm, 3); err != nil || n != 3 {
				t.Fatalf("via %s: %s: %d/3 IPv6 replies, %v", backend, vpc.VMAddr6(vm), n, err)
			}
		}
		if n, err := tp.Ping(vpc, 5, 3); err != nil || n != 3 {
			t.Fatalf("via %s: %d/3 IPv4 replies of the dual-stack VPC, %v", backend, n, err)
		}
	}
	if _, err := tp.Ping6(vpcs[1], 5, 1); err == nil {
		t.Error("Ping6 of an IPv4-only VPC: no error")
	}
}

// A VPC over the IPv6 underlay (VXLAN over IPv6, the kernel's outer UDP
// checksums) reaches the VPC router at each backend over both inner
// families, beside a VPC over IPv4.
func TestBackendsAnswerOverIPv6Underlay(t *testing.T) {
	l := labtest.New(t, "ggtopou6", "network namespaces")
	vpcs := []VPC{{VNI: 5003, Subnet: 3, VMs: []uint8{5}, IPv6: true, Underlay6: true}, {VNI: 5001, Subnet: 1, VMs: []uint8{5}}}
	tp, err := Build(l, vpcs)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := tp.Ping6(vpcs[0], 5, 1); n != 0 {
		t.Fatalf("VIP6 answered with no gateway program: %d replies", n)
	}
	for _, backend := range []string{BaseAddr6.String(), GrayAddr6.String()} {
		if _, err := l.Exec(tp.HV, "ip", "link", "set", "vx5003", "type", "vxlan", "remote", backend); err != nil {
			t.Fatal(err)
		}
		if n, err := tp.Ping6(vpcs[0], 5, 3); err != nil || n != 3 {
			t.Fatalf("via %s: %d/3 IPv6 replies, %v", backend, n, err)
		}
		if n, err := tp.Ping(vpcs[0], 5, 3); err != nil || n != 3 {
			t.Fatalf("via %s: %d/3 IPv4 replies, %v", backend, n, err)
		}
	}
	if _, err := l.Exec(tp.HV, "ip", "link", "set", "vx5001", "type", "vxlan", "remote", BaseAddr.String()); err != nil {
		t.Fatal(err)
	}
	if n, err := tp.Ping(vpcs[1], 5, 3); err != nil || n != 3 {
		t.Fatalf("the IPv4-underlay VPC beside it: %d/3 replies, %v", n, err)
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
