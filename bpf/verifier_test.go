package bpf

import (
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
)

// verifierBudget is the most instructions the verifier may process for
// graygw_xdp and for graygw_xdp6: half its 1M limit, so that a change that
// makes a walk prune worse (docs/xdp.md, "Verifier") fails here before it
// fails to load.
const verifierBudget = 500_000

// TestVerifierMargin loads the programs with the verifier's statistics and
// checks how many instructions it processed for the XDP ones.
func TestVerifierMargin(t *testing.T) {
	skipUnlessBPF(t)
	spec, err := loadGraygw()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("%v\n%+v", err, ve)
		}
		t.Fatal(err)
	}
	defer coll.Close()
	for _, name := range []string{"graygw_xdp", "graygw_xdp6", "graygw_xdp64", "graygw_tc"} {
		log := coll.Programs[name].VerifierLog
		m := regexp.MustCompile(`processed (\d+) insns`).FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("%s: no instruction count in the verifier log:\n%s", name, log)
		}
		n, _ := strconv.Atoi(m[1])
		t.Logf("%s: verifier processed %d instructions", name, n)
		if name != "graygw_tc" && n > verifierBudget {
			t.Errorf("%s: the verifier processed %d instructions, over the budget of %d (limit 1M)", name, n, verifierBudget)
		}
	}
}
