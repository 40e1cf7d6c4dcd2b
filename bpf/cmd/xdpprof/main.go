// Command xdpprof attributes perf samples taken in a loaded XDP program's JIT
// image to the program's source lines: where the time of graygw_xdp goes, at
// the level of the C it was compiled from (bench/xdp.md, "Where the time goes").
//
// Record first, while the program runs (for example under ../shared/xdpbench,
// whose thread is pinned to the last CPU), then run xdpprof while the program
// is still loaded, since it reads the JIT image's line table from the kernel:
//
//	perf record -C 1 -e cpu-clock -F 20000 -o perf.data -- sleep 6
//	xdpprof -perf perf.data -name graygw_xdp -src bpf
//
// With -src, samples are also summed per enclosing C function of the sources
// under that directory (inlined functions included): the per-step table.
//
// A sample is counted on the last line-info entry at or before its address.
// Sampling skid moves some samples to the instruction after a slow one (a
// load that missed, a call's return), so read per-line shares as approximate.
// Needs root (perf's samples, the programs' JIT line tables).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// image is one loaded instance of the program: where its JIT image lives and
// which source line starts at each JITed line-info address.
type image struct {
	start, end uint64
	addrs      []uint64
	lines      []string
}

func main() {
	perfData := flag.String("perf", "perf.data", "perf.data recorded while the program ran")
	name := flag.String("name", "graygw_xdp", "program (function) name")
	top := flag.Int("top", 40, "source lines to print")
	src := flag.String("src", "", "directory of the program's C sources: also sum samples per function")
	pid := flag.Int("pid", 0, "only the samples of this process (the one running the program)")
	flag.Parse()
	if err := run(*perfData, *name, *src, *top, *pid); err != nil {
		fmt.Fprintln(os.Stderr, "xdpprof:", err)
		os.Exit(1)
	}
}

func run(perfData, name, src string, top, pid int) error {
	ips, total, err := samples(perfData, "_"+name, pid)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return fmt.Errorf("no sample in a program named %s (of %d)", name, total)
	}
	imgs, err := images(name)
	if err != nil {
		return err
	}
	perLine := map[string]int{}
	matched := 0
	for _, ip := range ips {
		for _, im := range imgs {
			if ip < im.start || ip >= im.end {
				continue
			}
			i := sort.Search(len(im.addrs), func(i int) bool { return im.addrs[i] > ip }) - 1
			if i < 0 {
				break
			}
			perLine[im.lines[i]]++
			matched++
			break
		}
	}
	if matched == 0 {
		return fmt.Errorf("%d samples in %s, none inside a loaded instance (run xdpprof while it is loaded)", len(ips), name)
	}
	fmt.Printf("# %s: %d samples in the program (%d attributed), %d in all\n", name, len(ips), matched, total)
	if src != "" {
		fns, err := functions(src)
		if err != nil {
			return err
		}
		perFunc := map[string]int{}
		for line, n := range perLine {
			perFunc[fns.of(line)] += n
		}
		fmt.Println("# per function (inlined included)")
		print(perFunc, matched, len(perFunc))
		fmt.Println("# per source line")
	}
	print(perLine, matched, top)
	return nil
}

// print prints the n largest counts as shares of total.
func print(counts map[string]int, total, n int) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	for i, k := range keys {
		if i == n {
			break
		}
		fmt.Printf("%5.1f%%  %s\n", 100*float64(counts[k])/float64(total), k)
	}
}

// funcRanges maps file:line to the C function whose body holds it.
type funcRanges map[string][]string // file base name -> function per line (index line-1)

// functions reads the .c and .h files of dir and its include/ directory:
// a function starts at a line in column 0 that names it before "(" and is
// not a declaration, and ends at the next "}" in column 0.
func functions(dir string) (funcRanges, error) {
	fr := funcRanges{}
	for _, pattern := range []string{dir + "/*.c", dir + "/include/*.h"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			cur := ""
			var per []string
			for _, l := range strings.Split(string(b), "\n") {
				if m := funcStart.FindStringSubmatch(l); m != nil && !strings.HasSuffix(strings.TrimSpace(l), ";") {
					cur = m[1]
				}
				per = append(per, cur)
				if strings.HasPrefix(l, "}") {
					cur = ""
				}
			}
			fr[filepath.Base(f)] = per
		}
	}
	return fr, nil
}

var funcStart = regexp.MustCompile(`^(?:static |int |SEC)[^(=]*?\b(\w+)\(`)

// of returns the function of a per-line key "file:line  text".
func (fr funcRanges) of(key string) string {
	file, rest, _ := strings.Cut(key, ":")
	num, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	per := fr[file]
	if err != nil || n < 1 || n > len(per) || per[n-1] == "" {
		return file + " (outside a function)"
	}
	return per[n-1]
}

// samples returns the addresses of the samples whose symbol ends in suffix,
// and the number of samples in all (of process pid when not 0).
func samples(perfData, suffix string, pid int) ([]uint64, int, error) {
	args := []string{"script", "-i", perfData, "-F", "ip,sym"}
	if pid != 0 {
		args = append(args, "--pid", strconv.Itoa(pid))
	}
	out, err := exec.Command("perf", args...).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("perf script: %w", err)
	}
	var ips []uint64
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		total++
		if !strings.HasPrefix(f[1], "bpf_prog_") || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		ip, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("perf script: sample address %q: %w", f[0], err)
		}
		ips = append(ips, ip)
	}
	return ips, total, sc.Err()
}

// images reads every loaded program named name.
func images(name string) ([]image, error) {
	var imgs []image
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("program ids: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		im, ok, err := imageOf(p, name)
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("program %d: %w", id, err)
		}
		if ok {
			imgs = append(imgs, im)
		}
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("no loaded program named %s", name)
	}
	return imgs, nil
}

func imageOf(p *ebpf.Program, name string) (image, bool, error) {
	info, err := p.Info()
	if err != nil || info.Name != name[:min(len(name), 15)] {
		return image{}, false, nil
	}
	ksyms, ok := info.JitedKsymAddrs()
	jitLines, ok2 := info.JitedLineInfos()
	size, err := info.JitedSize()
	if !ok || !ok2 || err != nil || len(ksyms) != 1 {
		return image{}, false, nil // not JITed, or subprograms: not this tool's case
	}
	lines, err := info.LineInfos()
	if err != nil {
		return image{}, false, fmt.Errorf("line infos: %w", err)
	}
	if len(lines) != len(jitLines) {
		return image{}, false, fmt.Errorf("%d line infos, %d JITed addresses", len(lines), len(jitLines))
	}
	im := image{start: uint64(ksyms[0]), end: uint64(ksyms[0]) + uint64(size)}
	for i, l := range lines {
		src := strings.TrimSpace(l.Line.Line())
		file := l.Line.FileName()
		if j := strings.LastIndex(file, "/"); j >= 0 {
			file = file[j+1:]
		}
		im.addrs = append(im.addrs, jitLines[i])
		im.lines = append(im.lines, fmt.Sprintf("%s:%d  %s", file, l.Line.LineNumber(), src))
	}
	sort.Sort(byAddr(im))
	return im, true, nil
}

// byAddr sorts an image's line table by JITed address.
type byAddr image

func (b byAddr) Len() int           { return len(b.addrs) }
func (b byAddr) Less(i, j int) bool { return b.addrs[i] < b.addrs[j] }
func (b byAddr) Swap(i, j int) {
	b.addrs[i], b.addrs[j] = b.addrs[j], b.addrs[i]
	b.lines[i], b.lines[j] = b.lines[j], b.lines[i]
}
