package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/rollout"
)

// scopeArgs formats a cutover scope back into the selector flags an operator
// would type for it.
func scopeArgs(sc rollout.Scope) []string {
	m := sc.Match
	var args []string
	if m.VIP != "" {
		args = append(args, "--vip", m.VIP)
	}
	end := func(addr string, port *int64) string {
		s := addr
		if s == "" {
			s = "*"
		}
		if port != nil {
			s += fmt.Sprintf(":%d", *port)
		}
		return s
	}
	switch {
	case m.Proto != "":
		if m.VNI != nil {
			args = append(args, "--vni", strconv.FormatInt(*m.VNI, 10))
		}
		args = append(args, "--flow", m.Proto+"/"+end(m.Src, m.SPort)+"/"+end(m.Dst, m.DPort))
	case strings.Contains(m.Src, "/"):
		if m.VNI != nil {
			args = append(args, "--vni", strconv.FormatInt(*m.VNI, 10))
		}
		args = append(args, "--prefix", m.Src)
	case m.Src != "":
		args = append(args, "--vm", fmt.Sprintf("%d/%s", *m.VNI, m.Src))
	default:
		args = append(args, "--vni", strconv.FormatInt(*m.VNI, 10))
	}
	if sc.Percent != 0 {
		args = append(args, "--percent", strconv.FormatFloat(sc.Percent, 'g', -1, 64))
	}
	return args
}

// FuzzCutoverSelector drives graygw cutover's selector flags (--vni, --vm
// VNI/IP, --prefix CIDR, --flow PROTO/SRC[:SPORT]/DST[:DPORT], --percent P)
// through the real command line against a fake controller. Properties: nothing
// panics; a refused selector exits 2 (usage) with a message and never reaches
// the controller; an accepted one reaches it with a scope that formats back to
// flags which parse to the same scope (match and percent).
func FuzzCutoverSelector(f *testing.F) {
	f.Add(uint8(1), "5001/192.168.1.5", false, int64(0), false, 0.0)
	f.Add(uint8(0), "", true, int64(5001), false, 0.0)
	f.Add(uint8(0), "", true, int64(5002), true, 12.5)
	f.Add(uint8(2), "192.168.1.0/28", true, int64(5001), false, 0.0)
	f.Add(uint8(2), "192.168.1.0/28", false, int64(0), false, 0.0)
	f.Add(uint8(3), "tcp/192.168.1.5:33001/192.168.1.1:22", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "udp/*/10.255.0.1:53", true, int64(0), false, 0.0)
	f.Add(uint8(3), "tcp/:+80/*", false, int64(0), false, 0.0)
	f.Fuzz(func(t *testing.T, kind uint8, sel string, hasVNI bool, vni int64, hasPct bool, pct float64) {
		args := []string{"cutover", "--pool", "gray", "--dry-run"}
		if hasVNI {
			args = append(args, "--vni", strconv.FormatInt(vni, 10))
		}
		switch kind % 4 {
		case 1:
			args = append(args, "--vm", sel)
		case 2:
			args = append(args, "--prefix", sel)
		case 3:
			args = append(args, "--flow", sel)
		}
		if hasPct {
			args = append(args, "--percent", strconv.FormatFloat(pct, 'g', -1, 64))
		}
		fk := &fake{}
		code, _, stderr := cli(t, fk, args...)
		if code != 0 {
			if code != ExitUsage || !strings.Contains(stderr, "graygw: ") || len(fk.calls) != 0 {
				t.Fatalf("%q: exit %d, calls %v, stderr %q", args, code, fk.calls, stderr)
			}
			return
		}
		sc := fk.scope
		again := append([]string{"cutover", "--pool", "gray", "--dry-run"}, scopeArgs(sc)...)
		fk2 := &fake{}
		if code, _, stderr := cli(t, fk2, again...); code != 0 {
			t.Fatalf("%q parsed to %+v, whose flags %q are refused: %s", args, sc, again, stderr)
		}
		a, _ := json.Marshal(sc)
		b, _ := json.Marshal(fk2.scope)
		if string(a) != string(b) {
			t.Fatalf("%q -> %s -> %q -> %s", args, a, again, b)
		}
	})
}

// FuzzProbeVM fuzzes graygw probe's --vm parser (VNI/IP, or IP alone with the
// VNI from --vni). Properties: nothing panics; a refused value is a usage
// error; an accepted one has an IPv4 address and a VNI of 1-16777215 (or 0,
// "from the inventory", only when neither the value nor --vni gives one), and
// formats back to VNI/IP (or IP) that parses to the same pair without --vni.
func FuzzProbeVM(f *testing.F) {
	f.Add("5001/192.168.1.5", false, int64(0))
	f.Add("192.168.1.5", true, int64(5001))
	f.Add("192.168.1.5", false, int64(0))
	f.Add("/192.168.1.5", false, int64(0))
	f.Add("192.168.1.5", true, int64(4294972297))
	f.Fuzz(func(t *testing.T, s string, haveVNI bool, vni int64) {
		n, addr, err := parseVM(s, haveVNI, vni)
		if err != nil {
			if exitCode(err) != ExitUsage || err.Error() == "" {
				t.Fatalf("%q: not a usage error: %v", s, err)
			}
			return
		}
		if !addr.Is4() || n > 0xffffff {
			t.Fatalf("%q (--vni %v %d): vni %d addr %v", s, haveVNI, vni, n, addr)
		}
		if haveVNI && !strings.Contains(s, "/") && int64(n) != vni {
			t.Fatalf("%q with --vni %d gave VNI %d", s, vni, n)
		}
		if n == 0 && (haveVNI || !strings.HasPrefix(s, "/") && strings.Contains(s, "/")) {
			t.Fatalf("%q (--vni %v %d): VNI 0", s, haveVNI, vni)
		}
		out := addr.String()
		if n != 0 {
			out = fmt.Sprintf("%d/%s", n, addr)
		}
		n2, addr2, err := parseVM(out, false, 0)
		if err != nil || n2 != n || addr2 != addr {
			t.Fatalf("%q -> %d %v -> %q -> %d %v (%v)", s, n, addr, out, n2, addr2, err)
		}
	})
}
