package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/trace"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestTraceUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace"}, "nothing to trace: give --vm VNI/IP or --vni N --flow"},
		{[]string{"trace", "--vni", "5001"}, "--vni alone selects a whole VPC"},
		{[]string{"trace", "--flow", "tcp/1.2.3.4/5.6.7.8"}, "--flow needs --vni N"},
		{[]string{"trace", "--vm", "5001/192.168.1.5", "--vni", "5001"}, "not both"},
		{[]string{"trace", "--vm", "192.168.1.5"}, `--vm "192.168.1.5": want VNI/IP, e.g. 5001/192.168.1.5 or 5001/2001:db8::5`},
		{[]string{"trace", "--vm", "5001/::ffff:1.2.3.4"}, "want VNI/IP"},
		{[]string{"trace", "--vni", "16777216", "--flow", "tcp/1.2.3.4/5.6.7.8"}, "--vni 16777216: want 0 to 16777215"},
		{[]string{"trace", "--vni", "5001", "--flow", "tcp/1.2.3.4"}, "want PROTO/SRC[:SPORT]/DST[:DPORT]"},
		{[]string{"trace", "--vni", "5001", "--flow", "gre/1.2.3.4/5.6.7.8"}, `protocol "gre": want tcp, udp, icmp`},
		{[]string{"trace", "--vni", "5001", "--flow", "icmp/1.2.3.4:5/5.6.7.8"}, "ports only with tcp or udp"},
		{[]string{"trace", "--vni", "5001", "--flow", "tcp/*:5/5.6.7.8"}, "the source address is required"},
		{[]string{"trace", "--vni", "5001", "--flow", "tcp/1.2.3.4:70000/5.6.7.8"}, `source port "70000"`},
		{[]string{"trace", "--vni", "5001", "--flow", "tcp/1.2.3.4/x"}, `destination address "x"`},
		{[]string{"trace", "--vni", "0", "--flow", "udp/1.2.3.4/*:4789"}, "is VXLAN, not plain traffic"},
		{[]string{"trace", "--vni", "0", "--flow", "tcp/1.2.3.4/10.255.0.2:443"}, "plain traffic's destination is the VIP: write *"},
		{[]string{"trace", "--vni", "5001", "--flow", "tcp/1.2.3.4/5.6.7.8:22", "--probe"}, "--probe sends VXLAN ICMP echo requests"},
		{[]string{"trace", "--vni", "5001", "--flow", "icmp/1.2.3.4/*", "--probe"}, "--probe sends VXLAN ICMP echo requests"},
	} {
		f := &fake{}
		code, _, stderr := cli(t, f, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		if len(f.calls) > 0 {
			t.Errorf("%v: the controller was called: %v", tc.args, f.calls)
		}
	}
}

// The selectors become the flow the controller traces: --vm leaves all but
// the VM open; a flow's * and left-out ports are open.
func TestTraceSelectors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want trace.Query
	}{
		{[]string{"--vm", "5001/192.168.1.5"}, trace.Query{VNI: 5001, Src: addr("192.168.1.5"), Open: []string{"dst", "proto", "sport", "dport"}}},
		{[]string{"--vni", "5001", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22", "--vip", "vpc-router"},
			trace.Query{VNI: 5001, Src: addr("192.168.1.5"), Dst: addr("192.168.1.1"), Proto: 6, SPort: 33001, DPort: 22, VIP: "vpc-router"}},
		{[]string{"--vni", "5001", "--flow", "udp/192.168.1.5/*:53"},
			trace.Query{VNI: 5001, Src: addr("192.168.1.5"), Proto: 17, DPort: 53, Open: []string{"sport", "dst"}}},
		{[]string{"--vni", "5001", "--flow", "icmp/192.168.1.5/192.168.1.1"},
			trace.Query{VNI: 5001, Src: addr("192.168.1.5"), Dst: addr("192.168.1.1"), Proto: 1}},
		{[]string{"--vni", "0", "--flow", "47/203.0.113.9/*"}, trace.Query{Plain: true, Src: addr("203.0.113.9"), Proto: 47}},
	} {
		f := &fake{traces: []trace.Gateway{}}
		if code, _, stderr := cli(t, f, append([]string{"trace"}, tc.args...)...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		req, ok := f.lastReq().(*graygwv1.TraceRequest)
		if !ok {
			t.Fatalf("%v: last request %v", tc.args, f.lastReq())
		}
		q, err := convert.TraceQueryFrom(req)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := *q
		if got.VNI != tc.want.VNI || got.Plain != tc.want.Plain || got.Src != tc.want.Src || got.Dst != tc.want.Dst ||
			got.Proto != tc.want.Proto || got.SPort != tc.want.SPort || got.DPort != tc.want.DPort || got.VIP != tc.want.VIP ||
			!slices.Equal(got.Open, tc.want.Open) {
			t.Errorf("%v: query %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// TestTraceAgainstTheController runs 'graygw trace' against the real
// controller and an agent: a moved VM's flow decided by its rule, an
// unmoved one by the VIP's default pool, -o json in its schema, and one
// gateway only with --gateway.
func TestTraceAgainstTheController(t *testing.T) {
	ctrl, agent := startStack(t)
	path := writeFile(t, "intent.yaml", exampleIntent(t, agent))
	g := func(args ...string) (int, string, string) {
		t.Helper()
		return api(t, ctrl, args...)
	}
	if code, out, stderr := g("apply", "-f", path, "--wait"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := g("cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--vip", "vpc-router", "--wait"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr := g("trace", "--vni", "5001", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22", "--vip", "vpc-router")
	t.Logf("graygw trace:\n%s", out)
	for _, want := range []string{"flow vni 5001 tcp 192.168.1.5:33001 -> 192.168.1.1:22", "gateway gw1:", "holds the intent",
		"vip vpc-router (10.255.0.1, vip_id 1): forward", "tenant    ", "* ", "decided: the highest-priority match",
		"pool      gray-router, pool_id ", "hashes on vni, src", "hash key  001389 ", "backend   gray-", "outer dst 10.255.0.1 -> 10.3.0.2",
		"intent    agrees"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace output lacks %q", want)
		}
	}
	if code != 0 {
		t.Fatalf("trace: exit %d: %s", code, stderr)
	}

	code, out, stderr = g("trace", "--vm", "5001/192.168.1.6", "-o", "json")
	if code != 0 {
		t.Fatalf("trace -o json: exit %d: %s", code, stderr)
	}
	var rep struct {
		Flow     string `json:"flow"`
		Gateways []struct {
			Gateway string `json:"gateway"`
			InSync  bool   `json:"in_sync"`
			VIPs    []struct {
				VIP     string `json:"vip"`
				Verdict string `json:"verdict"`
				Rule    string `json:"rule"`
				Pool    string `json:"pool"`
				HashKey string `json:"hash_key"`
				Bucket  uint16 `json:"bucket"`
				Backend string `json:"backend"`
				Rules   []struct {
					Name     string   `json:"name"`
					Matched  bool     `json:"matched"`
					Mismatch []string `json:"mismatch"`
				} `json:"rules"`
				Rewrite struct {
					OuterDst string `json:"outer_dst"`
				} `json:"rewrite"`
				Notes  []string `json:"notes"`
				Intent struct {
					Backend string `json:"backend"`
				} `json:"intent"`
				Agrees bool `json:"agrees_with_intent"`
			} `json:"vips"`
		} `json:"gateways"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Flow != "vni 5001 from 192.168.1.6 (destination, protocol and ports open)" || len(rep.Gateways) != 1 || !rep.Gateways[0].InSync || len(rep.Gateways[0].VIPs) != 2 {
		t.Fatalf("json %s", out)
	}
	for _, v := range rep.Gateways[0].VIPs {
		if v.VIP == "vpc-router" && (v.Rule != "" || !strings.HasPrefix(v.Pool, "base-router") || len(v.HashKey) != 36 ||
			!strings.HasPrefix(v.Backend, "base-") || v.Backend != v.Intent.Backend || !v.Agrees || len(v.Notes) == 0 ||
			len(v.Rules) != 1 || v.Rules[0].Matched || !slices.Equal(v.Rules[0].Mismatch, []string{"src"})) {
			t.Errorf("vpc-router %+v", v)
		}
	}

	if code, _, stderr = g("trace", "--vm", "5001/192.168.1.6", "--gateway", "gw9"); code != ExitError || !strings.Contains(stderr, `no gateway "gw9"`) {
		t.Errorf("unknown gateway: exit %d: %s", code, stderr)
	}
	if code, _, stderr = g("trace", "--vm", "5001/192.168.1.6", "--vip", "nope"); code != ExitError || !strings.Contains(stderr, `no VIP named "nope"`) {
		t.Errorf("unknown VIP: exit %d: %s", code, stderr)
	}
}

// --probe sends the traced flow as a probe target to the VIP traced and
// compares who answered with the traced backend: another backend exits 4.
func TestTraceProbeComparesTheAnswer(t *testing.T) {
	gws := []trace.Gateway{{Gateway: "gw1", InSync: true, VIPs: []trace.VIPPath{{Path: trace.Path{VIP: "vpc-router", Verdict: "forward",
		Backend: "gray-1"}, Intent: trace.Outcome{Verdict: "forward", Backend: "gray-1"}, AgreesWithIntent: true}}}}
	answered := func(backend string) []probe.Result {
		return []probe.Result{{Sent: 3, Received: 3, Answers: []probe.Answer{{Underlay: addr("10.3.0.21"), Backend: backend, Replies: 3}}}}
	}
	args := []string{"trace", "--vni", "5001", "--flow", "icmp/192.168.1.5/192.168.1.1", "--probe"}
	f := &fake{traces: gws, results: answered("gray-1")}
	code, out, stderr := cli(t, f, args...)
	req, _ := f.lastReq().(*graygwv1.ProbeRequest)
	if code != ExitOK || !strings.Contains(out, "answered, by gray-1: the backend the trace gives") || req.GetVip() != "vpc-router" ||
		len(req.GetTargets()) != 1 || req.GetTargets()[0].GetVm() != "192.168.1.5" || req.GetTargets()[0].GetRouter() != "192.168.1.1" ||
		req.GetTargets()[0].GetVni() != 5001 {
		t.Fatalf("exit %d, request %v\n%s%s", code, req, out, stderr)
	}
	f = &fake{traces: gws, results: answered("gray-2")}
	code, out, stderr = cli(t, f, args...)
	if code != ExitFailed || !strings.Contains(out, "NOT the backend the trace gives (gray-1)") ||
		!strings.Contains(stderr, "the probe was answered by gray-2, the trace gives gray-1") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

// A gateway whose tables differ from the intent, or that cannot be read,
// exits 4 and says which.
func TestTraceFlagsDriftExit4(t *testing.T) {
	f := &fake{traces: []trace.Gateway{{Gateway: "gw1", Drift: &trace.Drift{Differ: []string{"rule vm: ..."}, DifferCount: 1},
		VIPs: []trace.VIPPath{{Path: trace.Path{VIP: "vpc", Verdict: "forward", Backend: "base-1"},
			Intent: trace.Outcome{Verdict: "forward", Rule: "vm", Pool: "gray", Backend: "gray-1"}}}},
		{Gateway: "gw2", Error: "engine: read back gw2: connection refused"}}}
	code, out, stderr := cli(t, f, "trace", "--vm", "5001/192.168.1.5")
	if code != ExitFailed || !strings.Contains(out, "DIFFERS FROM THE INTENT") || !strings.Contains(out, "differs  rule vm: ...") ||
		!strings.Contains(out, "DISAGREES: the intent's entries give rule vm, pool gray, backend gray-1") ||
		!strings.Contains(out, "gateway gw2: NOT TRACED: engine: read back gw2: connection refused") ||
		!strings.Contains(stderr, "gw1's tables differ from the intent; gw2 could not be traced") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = cli(t, f, "trace", "--vm", "5001/192.168.1.5", "-o", "json")
	if code != ExitFailed || !strings.Contains(out, `"gateway": "gw2"`) || !strings.Contains(out, `"vips": []`) {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}
	// -o yaml has the same names (the path's fields inline).
	code, out, _ = cli(t, f, "trace", "--vm", "5001/192.168.1.5", "-o", "yaml")
	for _, want := range []string{"intent_version: 0", "differ_count: 1", "- vip: vpc", "agrees_with_intent: false", "backend: gray-1"} {
		if code != ExitFailed || !strings.Contains(out, want) {
			t.Fatalf("-o yaml: exit %d, lacks %q\n%s", code, want, out)
		}
	}
}

// traceArgs formats a trace request back into the flags an operator would
// type for it.
func traceArgs(r *graygwv1.TraceRequest) []string {
	if slices.Equal(r.GetOpen(), []string{"dst", "proto", "sport", "dport"}) {
		return []string{"trace", "--vm", fmt.Sprintf("%d/%s", r.GetVni(), r.GetSrc())}
	}
	open := func(f string) bool { return slices.Contains(r.GetOpen(), f) }
	proto := map[uint32]string{1: "icmp", 6: "tcp", 17: "udp"}[r.GetProto()]
	if proto == "" {
		proto = fmt.Sprint(r.GetProto())
	}
	if open("proto") {
		proto = "*"
	}
	ports := r.GetProto() == 6 || r.GetProto() == 17
	end := func(addr string, port uint32, field string) string {
		if ports && !open(field) {
			p := int64(port)
			return endpoint(addr, &p)
		}
		return endpoint(addr, nil)
	}
	return []string{"trace", "--vni", fmt.Sprint(r.GetVni()), "--flow",
		proto + "/" + end(r.GetSrc(), r.GetSport(), "sport") + "/" + end(r.GetDst(), r.GetDport(), "dport")}
}

// FuzzTraceSelector drives graygw trace's selectors (--vm VNI/IP, or --vni N
// --flow PROTO/SRC[:SPORT]/DST[:DPORT]) through the real command line
// against a fake controller. Properties: nothing panics; a refused selector
// exits 2 with a message and never reaches the controller; an accepted one
// reaches it with a flow the controller accepts (convert.TraceQueryFrom),
// which formats back to flags that send the same request.
func FuzzTraceSelector(f *testing.F) {
	f.Add(true, "5001/192.168.1.5", int64(0))
	f.Add(false, "tcp/192.168.1.5:33001/192.168.1.1:22", int64(5001))
	f.Add(false, "icmp/192.168.1.5/192.168.1.1", int64(5001))
	f.Add(false, "udp/192.168.1.5/*:53", int64(5001))
	f.Add(false, "*/192.168.1.5/*", int64(5001))
	f.Add(false, "47/203.0.113.9/*", int64(0))
	f.Add(false, "tcp/203.0.113.9:1/*:443", int64(0))
	f.Add(false, "udp/1.2.3.4/*:4789", int64(0))
	f.Add(true, "5001/2001:db8::5", int64(0))
	f.Add(false, "tcp/[2001:db8::5]:33001/[2001:db8:1::1]:22", int64(5001))
	f.Add(false, "icmp/2001:db8::5/2001:db8::1", int64(5001))
	f.Add(false, "udp/2001:db8:77::9/*:53", int64(0))
	f.Fuzz(func(t *testing.T, vm bool, sel string, vni int64) {
		args := []string{"trace", "--vni", strconv.FormatInt(vni, 10), "--flow", sel}
		if vm {
			args = []string{"trace", "--vm", sel}
		}
		fk, ok := runOrRefuse(t, args)
		if !ok {
			return
		}
		req := fk.lastReq().(*graygwv1.TraceRequest)
		if _, err := convert.TraceQueryFrom(req); err != nil {
			t.Fatalf("%q sent %v, which the controller refuses: %v", args, req, err)
		}
		again := traceArgs(req)
		fk2 := &fake{}
		if code, _, stderr := cli(t, fk2, again...); code != 0 {
			t.Fatalf("%q sent %v, whose flags %q are refused: %s", args, req, again, stderr)
		}
		if req2 := fk2.lastReq(); !proto.Equal(req, req2) {
			t.Fatalf("%q -> %v -> %q -> %v", args, req, again, req2)
		}
	})
}
