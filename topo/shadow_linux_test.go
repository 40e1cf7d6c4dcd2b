package topo_test

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/topo"
)

// TestShadowAnswersDiscarded is the mirror's promise in the lab
// (docs/pipeline.md §10, "Answers"): VPC 5001 is served by base and mirrored to
// gray through the XDP gateway. Gray receives a copy of every request, marked
// DSCP 1, and answers it; the gray cluster discards those answers by the
// marker (here: a tcx program marks the copies' skbs, the kernel reflects the
// mark onto its answer, a second one drops marked answers), so the VM gets
// exactly one answer per request, base's. Base gets no marked frame. Without
// the discard the VM gets gray's answers too, as duplicates: graygw cannot
// drop them (they go straight from gray to the hypervisor), so the marker is
// its guarantee and the discard the receiving cluster's job. Once the mirror
// stops, gray gets nothing.
func TestShadowAnswersDiscarded(t *testing.T) {
	l := labtest.Build(t, "network namespaces, XDP and tcx", func() (*probetest.Lab, error) { return probetest.New("ggshadow", nil) })
	const pings = 20
	vpc := l.Topo.VPCs[0]
	apply := func(rules string) {
		t.Helper()
		if _, _, err := l.ApplyYAML(l.IntentYAML(rules)); err != nil {
			t.Fatal(err)
		}
	}
	apply(fmt.Sprintf("  - {name: shadow, match: {vip: %s, vni: %d}, pool: %s, mirror: {pool: %s}}\n",
		probetest.VIPName, vpc.VNI, probetest.BasePool, probetest.GrayPool))

	// Both backends count the marked frames they receive; gray also drops
	// its answers to them.
	baseMarked := attachMarker(t, l.Topo.Base, "b0")
	grayMarked := attachMarker(t, l.Topo.Gray, "g0")
	if _, err := l.Topo.Lab.Exec(l.Topo.Gray, "sysctl", "-qw", "net.ipv4.fwmark_reflect=1"); err != nil {
		t.Fatal(err)
	}
	discard := attachDiscard(t, l.Topo.Gray, "g0")

	got, dups := ping(t, l, vpc, pings)
	if got != pings || dups != 0 {
		t.Errorf("with the mirror and gray's discard: %d of %d answered, +%d duplicates; want every request answered once", got, pings, dups)
	}
	if n := count(t, grayMarked.counter); n < pings {
		t.Errorf("gray received %d marked copies, want at least %d (one per request)", n, pings)
	}
	if n := count(t, discard.counter); n < pings {
		t.Errorf("gray discarded %d answers, want at least %d: it answered every copy", n, pings)
	}
	if n := count(t, baseMarked.counter); n != 0 {
		t.Errorf("base received %d marked frames, want 0: served frames are not marked", n)
	}
	if c, err := l.DP.MirrorCounter(1); err != nil || c.Packets < pings {
		t.Errorf("mirror_counter[1] = %+v (%v), want at least %d", c, err, pings)
	}
	t.Logf("%d pings: %d answered, +%d duplicates; gray got %d marked copies and discarded %d answers; base got %d marked frames",
		pings, got, dups, count(t, grayMarked.counter), count(t, discard.counter), count(t, baseMarked.counter))

	// Without the discard: gray's answers reach the VM as duplicates.
	if err := discard.link.Close(); err != nil {
		t.Fatal(err)
	}
	// (ping stops at its last request's first answer: a duplicate late on a
	// loaded machine may come after.)
	got, dups = ping(t, l, vpc, pings)
	if got != pings || dups < pings/2 || dups > pings {
		t.Errorf("with the mirror, without gray's discard: %d of %d answered, +%d duplicates; want every request answered twice", got, pings, dups)
	}

	// The mirror stops: no copy, no duplicate.
	apply("")
	before := count(t, grayMarked.counter)
	got, dups = ping(t, l, vpc, pings)
	if got != pings || dups != 0 {
		t.Errorf("after the mirror stopped: %d of %d answered, +%d duplicates", got, pings, dups)
	}
	if n := count(t, grayMarked.counter); n != before {
		t.Errorf("gray received %d marked frames after the mirror stopped", n-before)
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?`)

// ping sends n echo requests from the VPC's first VM to its router and
// returns the answers and the duplicates ping counted.
func ping(t *testing.T, l *probetest.Lab, v topo.VPC, n int) (received, duplicates int) {
	t.Helper()
	out, _ := l.Topo.Lab.Exec(l.Topo.HV, "ping", "-n", "-c", strconv.Itoa(n), "-i", "0.02", "-W", "2",
		"-I", v.VMAddr(v.VMs[0]).String(), v.RouterAddr().String())
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping: no summary in %q", out)
	}
	received, _ = strconv.Atoi(m[2])
	duplicates, _ = strconv.Atoi(m[3])
	return received, duplicates
}

// tcxProgram is a program attached to one interface's tcx hook, with the
// one-cell counter it counts in.
type tcxProgram struct {
	link    link.Link
	counter *ebpf.Map
}

// attachMarker attaches to dev's tcx ingress in ns a program that counts the
// IPv4 frames whose DSCP is graygw's mirror marker and gives their skb mark 1,
// which survives the VXLAN decapsulation (same namespace) and which
// net.ipv4.fwmark_reflect copies onto the kernel's answer.
func attachMarker(t *testing.T, ns, dev string) tcxProgram {
	t.Helper()
	return attachTCX(t, ns, dev, ebpf.AttachTCXIngress, func(counter *ebpf.Map) asm.Instructions {
		return append(asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1), // LD_ABS reads the skb in R6
			asm.LoadAbs(12, asm.Half),
			asm.JNE.Imm(asm.R0, 0x0800, "next"),
			asm.LoadAbs(14+1, asm.Byte), // TOS
			asm.And.Imm(asm.R0, 0xfc),
			asm.JNE.Imm(asm.R0, pipeline.MirrorDSCP<<2, "next"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreMem(asm.R6, 8, asm.R1, asm.Word), // __sk_buff.mark
		}, countAndReturn(counter, -1)...) // TCX_NEXT
	})
}

// attachDiscard attaches to dev's tcx egress in ns a program that drops and
// counts the frames whose skb mark is 1: the answers to marked copies.
func attachDiscard(t *testing.T, ns, dev string) tcxProgram {
	t.Helper()
	return attachTCX(t, ns, dev, ebpf.AttachTCXEgress, func(counter *ebpf.Map) asm.Instructions {
		return append(asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 8, asm.Word), // __sk_buff.mark
			asm.JNE.Imm(asm.R2, 1, "next"),
		}, countAndReturn(counter, 2)...) // TCX_DROP
	})
}

// countAndReturn adds 1 to counter's cell 0 and returns verdict; the label
// "next" returns TCX_NEXT without counting.
func countAndReturn(counter *ebpf.Map, verdict int32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "verdict"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, verdict).WithSymbol("verdict"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, -1).WithSymbol("next"),
		asm.Return(),
	}
}

func attachTCX(t *testing.T, ns, dev string, at ebpf.AttachType, code func(*ebpf.Map) asm.Instructions) tcxProgram {
	t.Helper()
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counter.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL", Instructions: code(counter)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	var p tcxProgram
	err = lab.InNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		p.link, err = link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: at})
		return err
	})
	if err != nil {
		t.Fatalf("tcx on %s in %s: %v", dev, ns, err)
	}
	t.Cleanup(func() {
		if err := p.link.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("detach from %s: %v", dev, err)
		}
	})
	p.counter = counter
	return p
}

func count(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var n uint64
	if err := m.Lookup(uint32(0), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
