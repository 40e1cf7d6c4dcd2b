//go:build linux

package xdpbench

import (
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/testvectors"
)

// Frame is a named input frame of a pinned state, with the return code the
// program must give for it.
type Frame struct {
	Name   string // file-name friendly: grayhit, default, plain
	Label  string // what the path is
	Data   []byte
	Expect string // XDP_TX: every port is the loopback, the test run's ingress
}

// PinScaled writes the n-rule state of the scaling benchmark (six masks) into
// maps pinned under dir, replacing any there, and returns the frames of the
// three forwarded paths over it: a VM rule hit, a packet no rule matches (the
// VIP's default pool) and plain TCP to the VIP. Another harness (Katran's
// side by side, ../shared/xdpbench -pin-path) then loads graygw_bpfel.o over
// the pins. Each frame is checked against the model first.
func PinScaled(dir string, n int, seed uint64) ([]Frame, error) {
	st, hit, miss := scaled(n, seed)
	l4 := testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 33000, DPort: 80, Payload: []byte("graygw")}
	plain := testvectors.PlainTo(netip.MustParseAddr("10.255.0.1"), l4)
	frames := []Frame{
		{"grayhit", fmt.Sprintf("overlay, gray rule hit (VM rule; %d rules in 6 masks)", n), hit, "XDP_TX"},
		{"default", fmt.Sprintf("overlay, default pool (no rule; %d rules)", n), miss, "XDP_TX"},
		{"plain", fmt.Sprintf("plain TCP to a VIP (%d rules)", n), plain, "XDP_TX"},
	}
	wantPool := map[string]uint16{"grayhit": 2, "default": 1, "plain": 1}
	for _, f := range frames {
		if r := model.Process(st, f.Data); r.Verdict != model.Forward || r.Pool != wantPool[f.Name] {
			return nil, fmt.Errorf("xdpbench: %s: the model gives %s %s pool %d, want forward to pool %d",
				f.Name, r.Verdict, r.Reason, r.Pool, wantPool[f.Name])
		}
	}
	d, err := bpf.Open(bpf.Options{PinDir: dir, Repin: true})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := apply(d, st); err != nil {
		return nil, err
	}
	return frames, nil
}
