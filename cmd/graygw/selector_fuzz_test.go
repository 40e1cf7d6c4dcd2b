package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// scopeArgs formats a cutover request's scope back into the selector flags an
// operator would type for it.
func scopeArgs(r *graygwv1.CutoverRequest) []string {
	var args []string
	if r.GetVip() != "" {
		args = append(args, "--vip", r.GetVip())
	}
	vni := func(v *uint32) {
		if v != nil {
			args = append(args, "--vni", strconv.FormatUint(uint64(*v), 10))
		}
	}
	end := func(addr string, port uint32) string {
		if port == 0 {
			return endpoint(addr, nil)
		}
		p := int64(port)
		return endpoint(addr, &p)
	}
	switch sc := r.GetScope().(type) {
	case *graygwv1.CutoverRequest_Flow:
		f := sc.Flow
		vni(f.Vni)
		args = append(args, "--flow", f.GetProto()+"/"+end(f.GetSrc(), f.GetSport())+"/"+end(f.GetDst(), f.GetDport()))
	case *graygwv1.CutoverRequest_Prefix:
		vni(sc.Prefix.Vni)
		args = append(args, "--prefix", sc.Prefix.GetSrc())
	case *graygwv1.CutoverRequest_Vm:
		args = append(args, "--vm", fmt.Sprintf("%d/%s", sc.Vm.GetVni(), sc.Vm.GetSrc()))
	case *graygwv1.CutoverRequest_Vni:
		args = append(args, "--vni", strconv.FormatUint(uint64(sc.Vni.GetVni()), 10))
	case *graygwv1.CutoverRequest_Percent:
		args = append(args, "--vni", strconv.FormatUint(uint64(sc.Percent.GetVni()), 10),
			"--percent", strconv.FormatFloat(sc.Percent.GetPercent(), 'g', -1, 64))
	}
	return args
}

// FuzzCutoverSelector drives graygw cutover's selector flags (--vni, --vm
// VNI/IP, --prefix CIDR, --flow PROTO/SRC[:SPORT]/DST[:DPORT], --percent P)
// through the real command line against a fake controller. Properties: nothing
// panics; a refused selector exits 2 (usage) with a message and never reaches
// the controller; an accepted one reaches it with a request whose scope
// formats back to flags which send the same request.
func FuzzCutoverSelector(f *testing.F) {
	f.Add(uint8(1), "5001/192.168.1.5", false, int64(0), false, 0.0)
	f.Add(uint8(0), "", true, int64(5001), false, 0.0)
	f.Add(uint8(0), "", true, int64(5002), true, 12.5)
	f.Add(uint8(2), "192.168.1.0/28", true, int64(5001), false, 0.0)
	f.Add(uint8(2), "192.168.1.0/28", false, int64(0), false, 0.0)
	f.Add(uint8(3), "tcp/192.168.1.5:33001/192.168.1.1:22", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "udp/*/10.255.0.1:53", true, int64(0), false, 0.0)
	f.Add(uint8(3), "tcp/:+80/*", false, int64(0), false, 0.0)
	f.Add(uint8(1), "5001/2001:db8::5", false, int64(0), false, 0.0)
	f.Add(uint8(2), "2001:db8::/64", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "udp/2001:db8::5/[2001:db8::1]:53", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "tcp/[2001:db8::5]/10.0.0.1:80", true, int64(5001), false, 0.0)
	f.Add(uint8(3), "tcp/2001:db8::5:80/*", true, int64(5001), false, 0.0)
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
		fk, ok := runOrRefuse(t, args)
		if !ok {
			return
		}
		req := fk.lastReq().(*graygwv1.CutoverRequest)
		again := append([]string{"cutover", "--pool", "gray", "--dry-run"}, scopeArgs(req)...)
		fk2 := &fake{}
		if code, _, stderr := cli(t, fk2, again...); code != 0 {
			t.Fatalf("%q sent %v, whose flags %q are refused: %s", args, req, again, stderr)
		}
		if req2 := fk2.lastReq(); !proto.Equal(req, req2) {
			t.Fatalf("%q -> %v -> %q -> %v", args, req, again, req2)
		}
	})
}

// FuzzProbeVM fuzzes graygw probe's --vm parser (VNI/IP, or IP alone with the
// VNI from --vni). Properties: nothing panics; a refused value is a usage
// error; an accepted one has an IPv4 or IPv6 address (no zone, not
// IPv4-mapped) and a VNI of 1-16777215 (or 0,
// "from the inventory", only when neither the value nor --vni gives one), and
// formats back to VNI/IP (or IP) that parses to the same pair without --vni.
func FuzzProbeVM(f *testing.F) {
	f.Add("5001/192.168.1.5", false, int64(0))
	f.Add("192.168.1.5", true, int64(5001))
	f.Add("192.168.1.5", false, int64(0))
	f.Add("/192.168.1.5", false, int64(0))
	f.Add("192.168.1.5", true, int64(4294972297))
	f.Add("5001/fd00:1::5", false, int64(0))
	f.Add("fd00:1::5", true, int64(5001))
	f.Fuzz(func(t *testing.T, s string, haveVNI bool, vni int64) {
		n, addr, err := parseVM(s, haveVNI, vni)
		if err != nil {
			if exitCode(err) != ExitUsage || err.Error() == "" {
				t.Fatalf("%q: not a usage error: %v", s, err)
			}
			return
		}
		if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() || n > 0xffffff {
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

// runOrRefuse runs the CLI with args on a fake controller. ok is false when
// it refused them, which must be a usage error that called nothing.
func runOrRefuse(t *testing.T, args []string) (fk *fake, ok bool) {
	t.Helper()
	fk = &fake{}
	code, _, stderr := cli(t, fk, args...)
	if code != 0 {
		if code != ExitUsage || !strings.Contains(stderr, "graygw: ") || len(fk.calls) != 0 {
			t.Fatalf("%q: exit %d, calls %v, stderr %q", args, code, fk.calls, stderr)
		}
		return fk, false
	}
	return fk, true
}

// FuzzFlowEnd fuzzes one end of a --flow SPEC (HOST[:PORT], [IPV6][:PORT], *,
// a bare IPv6 address). Properties: nothing panics; an accepted end has no
// zone and no IPv4-mapped address, and endpoint writes it back to a string
// that parses to the same address and port.
func FuzzFlowEnd(f *testing.F) {
	for _, s := range []string{"192.168.1.5:33001", "192.168.1.5", "*", "*:53", "", ":80", "[2001:db8::5]:80",
		"[2001:db8::5]", "2001:db8::5", "2001:db8::5:80", "[::ffff:1.2.3.4]:1", "fe80::1%eth0", "[10.0.0.1]:1", "[2001:db8::1]x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, port, err := flowEnd(s)
		if err != nil {
			if a.IsValid() || port != "" {
				t.Fatalf("%q: error %v with %v %q", s, err, a, port)
			}
			return
		}
		if a.Zone() != "" || a.Is4In6() {
			t.Fatalf("%q: accepted %v", s, a)
		}
		addr := ""
		if a.IsValid() {
			addr = a.String()
		}
		var out string
		if n, perr := strconv.ParseInt(port, 10, 64); perr == nil {
			out = endpoint(addr, &n)
			port = strconv.FormatInt(n, 10)
		} else {
			out = endpoint(addr, nil)
			if port != "" {
				out += ":" + port
				if a.Is6() {
					out = "[" + addr + "]:" + port
				}
			}
		}
		a2, port2, err := flowEnd(out)
		if err != nil || a2 != a || port2 != port {
			t.Fatalf("%q -> %v %q -> %q -> %v %q (%v)", s, a, port, out, a2, port2, err)
		}
	})
}
