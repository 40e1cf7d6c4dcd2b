//go:build linux

package xdpbench

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/model"
)

// VethTarget is a program measured on the veth pair: attached in native mode
// to the receiving end, fed Frame, which it must send back (XDP_TX).
type VethTarget struct {
	Name  string
	Prog  *ebpf.Program // nil: graygw over the 10,000-rule state (PinScaled's)
	Frame []byte
}

// VethConfig sets a throughput run.
type VethConfig struct {
	Packets int // frames per round and program
	Rounds  int
	Seed    uint64
	CPU     int // CPU the sending thread (and so the receiving NAPI) runs on
	Extra   []VethTarget
}

// VethResult is one program's throughput, packets per second on one core
// per round.
type VethResult struct {
	Name string
	PPS  []float64
}

// Veth measures forwarding throughput with real frames through native XDP on
// a veth pair, in a namespace of its own: a packet socket on the sending end
// "gen" (qdisc bypassed) transmits the frames, the program under test runs
// natively on the peer "dut" in its NAPI poll and sends each frame back
// (XDP_TX), where an XDP_DROP program on gen frees it. (Live-frame
// BPF_PROG_TEST_RUN, the cheaper sender, is refused on this machine: EPERM.)
// The whole loop runs on one CPU: the send, the veth hops both ways, the
// program and the drop, so the figure is packets per second per core of that
// loop; the minimal program (MAC swap, XDP_TX) measured the same way prices
// everything but the program. Frames the veth ring refused (gen's tx_dropped)
// are not counted as forwarded.
func Veth(cfg VethConfig) ([]VethResult, error) {
	l, err := lab.New("xdptp")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	ns, err := l.NS("v")
	if err != nil {
		return nil, err
	}
	if err := l.Veth(ns, "gen", ns, "dut"); err != nil {
		return nil, err
	}
	var objs benchObjects
	if err := loadBenchObjects(&objs, nil); err != nil {
		return nil, fmt.Errorf("xdpbench: load harness: %w", err)
	}
	defer objs.Close()
	st, hit, _ := scaled(10000, cfg.Seed)
	targets := append([]VethTarget{{Name: "minimal (MAC swap, XDP_TX)", Prog: objs.BenchMinimal, Frame: hit},
		{Name: "graygw, gray rule hit (10,000 rules)", Frame: hit}}, cfg.Extra...)
	res := make([]VethResult, len(targets))
	err = lab.InNamespace(ns, func() error {
		gen, err := net.InterfaceByName("gen")
		if err != nil {
			return err
		}
		dut, err := net.InterfaceByName("dut")
		if err != nil {
			return err
		}
		drop, err := newProg(asm.Instructions{asm.Mov.Imm(asm.R0, 1 /* XDP_DROP */), asm.Return()})
		if err != nil {
			return err
		}
		defer drop.Close()
		sender, err := newSender(gen.Index)
		if err != nil {
			return err
		}
		defer unix.Close(sender)
		dl, err := link.AttachXDP(link.XDPOptions{Program: drop, Interface: gen.Index, Flags: link.XDPDriverMode})
		if err != nil {
			return fmt.Errorf("xdpbench: XDP_DROP on gen: %w", err)
		}
		defer dl.Close()
		d, err := load(st)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.SetPort(1, dut.Index); err != nil { // every backend's port: back out of dut
			return err
		}
		r := model.Process(st, hit)
		if r.Verdict != model.Forward {
			return errNoForward
		}
		want := r.BackendID
		for range cfg.Rounds {
			for i, t := range targets {
				pps, err := vethRound(cfg, t, d, want, sender, l, ns, dut.Index)
				if err != nil {
					return fmt.Errorf("xdpbench: veth %s: %w", t.Name, err)
				}
				res[i].Name, res[i].PPS = t.Name, append(res[i].PPS, pps)
			}
		}
		return nil
	})
	return res, err
}

// vethRound attaches t to dut, sends cfg.Packets frames and returns the rate.
// For graygw it checks with the backend counter that every frame was
// forwarded to the backend the model picks.
func vethRound(cfg VethConfig, t VethTarget, d *bpf.Dataplane, want uint16, sender int, l *lab.Lab, ns string, dut int) (float64, error) {
	var before bpf.Counter
	if t.Prog == nil {
		if _, err := d.Attach("dut", bpf.AttachNative); err != nil {
			return 0, err
		}
		defer d.Detach("dut")
		var err error
		if before, err = d.BackendCounter(want); err != nil {
			return 0, err
		}
	} else {
		l, err := link.AttachXDP(link.XDPOptions{Program: t.Prog, Interface: dut, Flags: link.XDPDriverMode})
		if err != nil {
			return 0, fmt.Errorf("attach native: %w", err)
		}
		defer l.Close()
	}
	if cfg.CPU >= 0 {
		var set unix.CPUSet
		set.Set(cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return 0, err
		}
	}
	drops0, err := txDropped(l, ns)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for range cfg.Packets {
		if err := unix.Send(sender, t.Frame, 0); err != nil && !errors.Is(err, unix.ENOBUFS) {
			return 0, fmt.Errorf("send: %w", err)
		}
	}
	took := time.Since(start)
	drops1, err := txDropped(l, ns)
	if err != nil {
		return 0, err
	}
	sent := uint64(cfg.Packets) - (drops1 - drops0)
	if t.Prog == nil {
		after, err := d.BackendCounter(want)
		if err != nil {
			return 0, err
		}
		if n := after.Packets - before.Packets; n != sent {
			return 0, fmt.Errorf("graygw forwarded %d of %d frames to backend %d", n, sent, want)
		}
	}
	return float64(sent) / took.Seconds(), nil
}

// newSender opens a packet socket that transmits on ifindex, bypassing the qdisc.
func newSender(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return -1, fmt.Errorf("xdpbench: packet socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("xdpbench: packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("xdpbench: packet socket: %w", err)
	}
	return fd, nil
}

// txDropped reads gen's tx_dropped counter.
func txDropped(l *lab.Lab, ns string) (uint64, error) {
	out, err := l.Exec(ns, "cat", "/sys/class/net/gen/statistics/tx_dropped")
	if err != nil {
		return 0, err
	}
	var n uint64
	_, err = fmt.Sscan(out, &n)
	return n, err
}

func newProg(insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("xdpbench: helper program: %w", err)
	}
	return p, nil
}

// errNoForward: the model does not forward the frame.
var errNoForward = errors.New("xdpbench: the model does not forward the frame")
