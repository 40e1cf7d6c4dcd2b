package topo

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/internal/lab"
)

// The lab's kernels may lack 802.1Q devices (CONFIG_VLAN_8021Q) and tc's
// vlan action, so a VLAN "subinterface" at a host's end of a link is two
// tc BPF programs: egress pushes the VID on every frame, ingress pops it
// and drops what is untagged or of another VID (as a host whose address is
// on the subinterface only would). The frames on the link carry the tag in
// their bytes (tx VLAN offload off), which is what the gateway's XDP parses.

// __sk_buff field offsets (include/uapi/linux/bpf.h).
const (
	skbProtocol    = 16
	skbVLANPresent = 20
	skbVLANTCI     = 24
)

// vlanPush is the egress half: bpf_skb_vlan_push(skb, ETH_P_8021Q, vid),
// but for a frame already tagged (a test's hand-made frame through a packet
// socket), which leaves as it is.
func vlanPush(vid uint16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbProtocol, asm.Word),
		asm.JEq.Imm(asm.R2, int32(htons(unix.ETH_P_8021Q)), "out"),
		asm.Mov.Imm(asm.R2, int32(htons(unix.ETH_P_8021Q))),
		asm.Mov.Imm(asm.R3, int32(vid)),
		asm.FnSkbVlanPush.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), // TC_ACT_OK
		asm.Return(),
	}
}

// vlanPop is the ingress half: frames tagged vid lose the tag, others are
// dropped. The kernel has moved a received tag into the skb's metadata by
// the time tc runs.
func vlanPop(vid uint16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R1, skbVLANTCI, asm.Word),
		asm.And.Imm(asm.R2, 0xfff),
		asm.JNE.Imm(asm.R2, int32(vid), "drop"),
		asm.FnSkbVlanPop.Call(),
		asm.Mov.Imm(asm.R0, 0), // TC_ACT_OK
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("drop"), // TC_ACT_SHOT
		asm.Return(),
	}
}

// vlanEnd makes dev in namespace ns the tagged end of its link on VID vid.
// The filters live with the device (the namespace's removal takes them).
func (t *Topology) vlanEnd(ns, dev string, vid uint16) error {
	if _, err := t.Lab.Exec(ns, "ethtool", "-K", dev, "txvlan", "off"); err != nil {
		return err
	}
	return lab.InNamespace(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("topo: vlan %d on %s: %w", vid, dev, err)
		}
		qdisc := &netlink.GenericQdisc{QdiscType: "clsact",
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
		if err := netlink.QdiscAdd(qdisc); err != nil {
			return fmt.Errorf("topo: vlan %d on %s: clsact: %w", vid, dev, err)
		}
		for _, half := range []struct {
			parent uint32
			insns  asm.Instructions
		}{{netlink.HANDLE_MIN_EGRESS, vlanPush(vid)}, {netlink.HANDLE_MIN_INGRESS, vlanPop(vid)}} {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: half.insns})
			if err != nil {
				return fmt.Errorf("topo: vlan %d on %s: load: %w", vid, dev, err)
			}
			f := &netlink.BpfFilter{
				FilterAttrs:  netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: half.parent, Priority: 1, Protocol: unix.ETH_P_ALL},
				Fd:           prog.FD(),
				Name:         fmt.Sprintf("vlan%d", vid),
				DirectAction: true,
			}
			err = netlink.FilterAdd(f)
			// The filter holds its own reference to the program.
			err = errors.Join(err, prog.Close())
			if err != nil {
				return fmt.Errorf("topo: vlan %d on %s: filter: %w", vid, dev, err)
			}
		}
		return nil
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
