//go:build linux

// Command xdpbench measures the graygw XDP program per packet with
// BPF_PROG_TEST_RUN and writes the results as markdown (bench/xdp.md). Needs
// root. Run it as `make bench` or:
//
//	go run ./bpf/cmd/xdpbench -o bench/xdp.md
package main

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/bpf/internal/xdpbench"
)

func main() {
	out := flag.String("o", "", "markdown file to write (stdout when empty)")
	repeat := flag.Int("repeat", 500_000, "repetitions per kernel call")
	rounds := flag.Int("rounds", 5, "interleaved rounds per measurement")
	seed := flag.Uint64("seed", 1, "seed of the synthetic rule sets")
	pin := flag.String("pin", "", "only pin the 10,000-rule state under this bpffs directory and write its frames (for ../shared/xdpbench -pin-path)")
	frames := flag.String("frames", ".", "with -pin: directory of the frame files NAME.hex")
	veth := flag.Int("veth", 0, "only measure throughput through native XDP on a veth pair, this many frames per round")
	vethCPU := flag.Int("veth-cpu", 0, "with -veth: the CPU that sends (and receives)")
	vethProg := flag.Int("veth-prog-id", 0, "with -veth: also measure this loaded XDP program (by id; e.g. Katran held by ../shared/xdpbench)")
	vethPkt := flag.String("veth-pkt", "", "with -veth-prog-id: the frame (hex) fed to it")
	vethName := flag.String("veth-name", "other", "with -veth-prog-id: its label")
	flag.Parse()
	if *veth > 0 {
		if err := vethOnly(*veth, *rounds, *vethCPU, *seed, *vethProg, *vethPkt, *vethName); err != nil {
			fmt.Fprintln(os.Stderr, "xdpbench:", err)
			os.Exit(1)
		}
		return
	}
	if *pin != "" {
		if err := pinOnly(*pin, *frames, *seed); err != nil {
			fmt.Fprintln(os.Stderr, "xdpbench:", err)
			os.Exit(1)
		}
		return
	}
	start := time.Now()
	load := loadAvg()
	rep, err := xdpbench.Run(xdpbench.Config{Repeat: *repeat, Rounds: *rounds, Seed: *seed})
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdpbench:", err)
		os.Exit(1)
	}
	cmd := "go run ./bpf/cmd/xdpbench " + strings.Join(os.Args[1:], " ")
	md := render(rep, cmd, time.Since(start), load)
	if *out == "" {
		os.Stdout.Write(md)
		return
	}
	if err := os.WriteFile(*out, md, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "xdpbench:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s in %s\n", *out, time.Since(start).Round(time.Millisecond))
}

// pinOnly pins the 10,000-rule state and writes one hex file per path, with
// a line per path: name, expected return code, label.
func pinOnly(dir, frameDir string, seed uint64) error {
	fs, err := xdpbench.PinScaled(dir, 10000, seed)
	if err != nil {
		return err
	}
	for _, f := range fs {
		path := filepath.Join(frameDir, f.Name+".hex")
		if err := os.WriteFile(path, []byte(hex.EncodeToString(f.Data)+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Printf("%s %s %s\n", f.Name, f.Expect, f.Label)
	}
	return nil
}

// vethOnly runs xdpbench.Veth and prints a markdown table: the median, min
// and max packets per second per core over the rounds.
func vethOnly(packets, rounds, cpu int, seed uint64, progID int, pkt, name string) error {
	cfg := xdpbench.VethConfig{Packets: packets, Rounds: rounds, CPU: cpu, Seed: seed}
	if progID > 0 {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(progID))
		if err != nil {
			return fmt.Errorf("program %d: %w", progID, err)
		}
		defer p.Close()
		b, err := os.ReadFile(pkt)
		if err != nil {
			return err
		}
		var digits strings.Builder // ../shared/xdpbench -dump-pkt: hex lines and # comments
		for _, l := range strings.Split(string(b), "\n") {
			if l, _, _ = strings.Cut(l, "#"); true {
				digits.WriteString(strings.Join(strings.Fields(l), ""))
			}
		}
		frame, err := hex.DecodeString(digits.String())
		if err != nil {
			return fmt.Errorf("%s: %w", pkt, err)
		}
		cfg.Extra = append(cfg.Extra, xdpbench.VethTarget{Name: name, Prog: p, Frame: frame})
	}
	load := loadAvg()
	res, err := xdpbench.Veth(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("%d frames per round, %d rounds, CPU %d, %s, load average %s\n\n", packets, rounds, cpu, cpuModel(), load)
	fmt.Println("| program on dut | Mpps per core (median) | min - max | ns per frame (median) |")
	fmt.Println("|---|---:|---:|---:|")
	for _, r := range res {
		s := slices.Clone(r.PPS)
		slices.Sort(s)
		med := s[len(s)/2]
		fmt.Printf("| %s | %.2f | %.2f - %.2f | %.0f |\n", r.Name, med/1e6, s[0]/1e6, s[len(s)-1]/1e6, 1e9/med)
	}
	return nil
}

func render(r *xdpbench.Report, cmd string, took time.Duration, load string) []byte {
	var b bytes.Buffer
	var u unix.Utsname
	_ = unix.Uname(&u)
	fmt.Fprintf(&b, "# XDP dataplane: cost per packet\n\n")
	fmt.Fprintf(&b, "Made by `%s` (root) in %s on %s, kernel %s, %d CPUs shared with other work\n"+
		"(load average %s at the start), %s.\n\n",
		strings.TrimSpace(cmd), took.Round(time.Second), cpuModel(), unix.ByteSliceToString(u.Release[:]),
		runtime.NumCPU(), load, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "How: BPF_PROG_TEST_RUN with a large repeat count; ns/packet is the kernel's own\n"+
		"duration. The kernel reruns one buffer, so the program under test is reached through\n"+
		"`bench_wrapper` (bpf/internal/xdpbench/bench.c), which restores the original frame\n"+
		"and tail-calls it; the wrapper's cost (measured on the minimal program in the same\n"+
		"run) is subtracted. Every repetition was checked with the program's per-CPU counters\n"+
		"to have taken the intended path (backend or drop-reason counter advanced by at least\n"+
		"the repeat count). The reference is a minimal XDP program (swap MACs, XDP_TX): %.1f ns\n"+
		"alone, %.1f ns behind the wrapper. Figures are the mean of the middle half of the\n"+
		"rounds; the kernel reports whole nanoseconds, so expect about +-1 ns.\n\n", r.MinimalNS, r.WrapperNS)
	b.WriteString("## Paths (test-vector state: 2 VIPs, 8 gray rules in 6 masks)\n\n")
	b.WriteString("| path | ns/packet | x minimal |\n|---|---:|---:|\n")
	for _, p := range r.Paths {
		fmt.Fprintf(&b, "| %s | %.1f | %.2f |\n", p.Name, p.NS, p.Ratio)
	}
	if len(r.VLAN) > 0 {
		writeAgainst(&b, r.VLAN, "802.1Q (the test vectors' vlan state: port 1 accepts VID 100, port 3 sends VID 300)",
			"The same overlay frames, each received on port 1, tagged or not; the reference is\n"+
				"the untagged frame to an untagged port, measured in the same rounds.", "untagged",
			"A tagged frame for a VIP pays its port (ifindex_port, a hash lookup) and one vlan_accept\n"+
				"word; a tag removed or pushed moves the MACs and the frame's start (bpf_xdp_adjust_head).\n"+
				"The two tagged-port rows go to the gray pool (a gray rule hit), the others to the default\n"+
				"pool. A forwarded frame finds its port's VID in its backend's cell (one compare when untagged).")
	}
	if len(r.IPv6) > 0 {
		writeAgainst(&b, r.IPv6, "IPv6 (ipv6.json's state: IPv6 VIPs, 12 gray_rules_v6 rules)",
			"graygw_xdp hands a frame with an IPv6 header to graygw_xdp6 by tail call; an IPv4 flow\n"+
				"behind an IPv6 outer goes on to graygw_xdp64 (a second tail call and a per-CPU handoff).\n"+
				"The first row, the basic state's IPv4 gray hit, is measured in the same rounds: the last\n"+
				"column is each path's cost against it.", "IPv4",
			"An IPv6 flow walks gray_rules_v6's masks with a hash lookup for each key whose bit is set in\n"+
				"the mask list's Bloom filter (gray_rules has an index in front too), hashes 42 key bytes\n"+
				"instead of 18, and looks up a 16-byte VIP key (vip_v6, a hash) and the mask list (a hash\n"+
				"element, not an inlined array).")
	}
	fmt.Fprintf(&b, "\n## Gray rules: cost against the number of rules (%d distinct masks)\n\n", r.Masks)
	b.WriteString("Rules are spread round-robin over six masks (5-tuple flow, VM + service port,\n" +
		"VM, VPC, VIP + inner destination /16, tenant), priorities rising with specificity.\n" +
		"A VM-rule hit hashes three masks (flow, VM+port, VM): tss_filter skips the first two, the\n" +
		"third finds the rule through rule_index; the later masks' bounds are below its priority,\n" +
		"so they cost a compare each. A packet no rule matches hashes all six and, unless a filter\n" +
		"bit collides, looks none up.\n\n")
	b.WriteString("| rules | packet | ns/packet | x minimal |\n|---:|---|---:|---:|\n")
	for _, p := range r.Scaling {
		n, what, _ := strings.Cut(p.Name, " rules, ")
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f |\n", n, what, p.NS, p.Ratio)
	}
	fmt.Fprintf(&b, "\nTables: vip %d (hash, the loader's record) read by packets through vip_index (%d cells,\n"+
		"an address in one of the %d from its home); gray_masks (one array value: per mask position a bound word and\n"+
		"the mask packed in three words, tuple-space bound %d); tss_filter (a 2^20-bit Bloom filter) in\n"+
		"front of rule_index (2^18 words: the rule_cells cell of the one gray_rules key of a filter slot,\n"+
		"or 'several': the gray_rules hash, %d entries); tenant_dir and tenant_pages (VNI -> tenant in 16\n"+
		"pages of 4096, vni_tenant hash for ranges without a page); backend_select %d slots x %d buckets\n"+
		"behind pool_slot (%d pool ids -> slot and hash-mask bits), read by packets as select_cells (the\n"+
		"bucket's backend cell: %d ids, %d backend_cells). Per forwarded IPv4 packet no hash lookup; gray_rules,\n"+
		"vni_tenant and pool_hash only for a filter slot of several keys, a VNI range without a page, a\n"+
		"hash mask that is not all-or-nothing per field. Everything else is inlined array access.\n"+
		"ABI %d. Reproduce: `%s`.\n",
		1024, 8192, 8, bpf.MaxMasks, 16384, bpf.MaxPools, 4096, bpf.PoolIDs, bpf.BackendIDs, 2*4096, bpf.ABI,
		strings.TrimSpace(cmd))
	return b.Bytes()
}

// writeAgainst writes a section of paths measured in the same rounds as the
// first, the reference: the last column is each path's cost against it.
func writeAgainst(b *bytes.Buffer, paths []xdpbench.Result, title, intro, reference, outro string) {
	fmt.Fprintf(b, "\n## %s\n\n%s\n\n", title, intro)
	fmt.Fprintf(b, "| path | ns/packet | x minimal | x %s |\n|---|---:|---:|---:|\n", reference)
	for _, p := range paths {
		fmt.Fprintf(b, "| %s | %.1f | %.2f | %.2f |\n", p.Name, p.NS, p.Ratio, p.NS/paths[0].NS)
	}
	fmt.Fprintf(b, "\n%s\n", outro)
}

// loadAvg returns the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// cpuModel returns the first CPU's model name.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
