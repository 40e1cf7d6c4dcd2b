package testvectors

import (
	"os/exec"
	"testing"
)

// TestIPv6VectorsAgainstScapy checks ipv6.json's forwarded cases without the
// Go model (check_ipv6.py): scapy parses the frames and checks the rewritten
// checksums, zlib computes the CRCs, the key6 layout and masks are read from
// docs/pipeline.md. Skipped where no python3 has scapy (Debian:
// python3-scapy, which scripts/ptf-deps.sh installs).
func TestIPv6VectorsAgainstScapy(t *testing.T) {
	var py string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import scapy.layers.inet6").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with scapy")
	}
	out, err := exec.Command(py, "check_ipv6.py", "ipv6.json").CombinedOutput()
	if err != nil {
		t.Fatalf("check_ipv6.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
