package intent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent/intenttest"
)

// rulesDoc is the small world with n VM rules of one family (4 VNIs, each
// VM its own /32 or /128): the shape of a deployment of VM cutovers.
func rulesDoc(n int, v6 bool) []byte {
	d := intenttest.Small()
	d.Tenants = []string{"{name: acme, vnis: [5001, 5002, 5003, 5004]}"}
	var b strings.Builder
	b.WriteString(d.YAML())
	b.WriteString("gray_rules:\n")
	for i := range n {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if v6 {
			src = fmt.Sprintf("\"2001:db8::%x:%x\"", i>>16, i&0xffff)
		}
		fmt.Fprintf(&b, "  - {name: r%d, match: {vni: %d, src: %s}, pool: gray}\n", i, 5001+i%4, src)
	}
	return []byte(b.String())
}

// BenchmarkValidateRules validates 4000 VM rules of each family (parse
// excluded): the IPv6 run's ratio to the IPv4 one in the same process is the
// cost of 128-bit keys in the overlap index.
func BenchmarkValidateRules(b *testing.B) {
	for _, fam := range []struct {
		name string
		v6   bool
	}{{"ipv4", false}, {"ipv6", true}} {
		s, err := Parse(rulesDoc(4000, fam.v6))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fam.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
