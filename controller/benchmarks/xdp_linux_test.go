//go:build linux

package benchmarks

import (
	"errors"
	"os"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
)

// xdpKinds are the real XDP maps (bpf.Open with private maps: nothing pinned,
// nothing attached), with explicit pool ids 1-63 and with the intent's derived
// pool ids; or why they cannot run here.
func xdpKinds() ([]dpKind, string) {
	if os.Geteuid() != 0 {
		return nil, "needs root to load the XDP program (run the tests as root)"
	}
	d, err := bpf.Open(bpf.Options{NoPin: true})
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
		return nil, "BPF unavailable: " + err.Error()
	}
	if err != nil {
		return nil, "bpf.Open: " + err.Error()
	}
	d.Close()
	open := func() (dataplane.Dataplane, func(), error) {
		d, err := bpf.Open(bpf.Options{NoPin: true})
		if err != nil {
			return nil, nil, err
		}
		return xdp.New(d), func() { d.Close() }, nil
	}
	return []dpKind{
		{name: "XDP", open: open},
		{name: "XDP (derived pool ids)", open: open, derived: true},
	}, ""
}
