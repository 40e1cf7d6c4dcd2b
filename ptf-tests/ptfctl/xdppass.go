package main

import (
	"flag"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// cmdXDPPass attaches a two-instruction XDP_PASS program in driver mode to each
// interface (in the caller's namespace), through netlink so that it stays after
// ptfctl exits and goes with the interface.
//
// Why: a veth forwards the frames an XDP program sends to it with XDP_TX or
// XDP_REDIRECT only when its own NAPI runs. GRO turns NAPI on, which is enough
// for redirects (the sender kicks the peer's NAPI), but after XDP_TX the veth
// driver kicks the peer only when the peer has an XDP program: without one the
// frame waits in the peer's ring until the next redirect, and PTF would see it
// one test late.
func cmdXDPPass(args []string) error {
	fs := flag.NewFlagSet("xdp-pass", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("xdp-pass: name the interfaces")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		return fmt.Errorf("xdp-pass: load: %w", err)
	}
	defer prog.Close()
	for _, name := range fs.Args() {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("xdp-pass: %s: %w", name, err)
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), nl.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("xdp-pass: attach to %s: %w", name, err)
		}
	}
	return nil
}
