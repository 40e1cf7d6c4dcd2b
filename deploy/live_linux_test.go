//go:build linux

package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/syncbuf"
)

// promAddr is where the test's Prometheus listens, in the demo's gateway
// namespace (a namespace of its own: no port is shared with the host).
const promAddr = "127.0.0.1:9090"

// appearOnEvent are metric families the controller exports only once their
// event happened (a CounterVec's first child): a healthy demo has none.
var appearOnEvent = map[string]bool{
	"graygw_write_errors_total": true, // first refused P4Runtime update
	"graygw_failover_excluded":  true, // first backend health failover excluded
}

// TestDashboardOnDemo runs the quick-start demo (graygw-demo --keep), points a
// real Prometheus at its controller with the alerting rules loaded, moves a VM
// to gray and sends its pings, and checks that: the VIP's gray share counts
// exactly those packets; every dashboard query and variable returns series;
// every metric the dashboard and the rules use is exported; every rule
// evaluates; a healthy lab raises no alert; and a backend whose link is cut
// makes GraygwBackendDown pending for it.
func TestDashboardOnDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the demo creates network namespaces and attaches XDP")
	}
	for _, b := range []string{"bird", "prometheus"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (bird2, prometheus: scripts/deps.sh installs them)", b)
		}
	}
	if testing.Short() {
		t.Skip("-short: the demo and Prometheus take about a minute")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/graygw/graygw/cmd/...").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	demo := startDemo(t, bin)
	gw, sock := demo.gatewayNS, demo.sock

	prom := startPrometheus(t, gw, demo.metricsAddr)
	prom.waitReady(t)
	t.Logf("demo up (gateway namespace %s), prometheus ready", gw)

	// A VM to gray, then 20 of its pings: they are the gray share's packets.
	cli := func(args ...string) string {
		out, err := exec.Command(filepath.Join(bin, "graygw"), append([]string{"--controller", "unix://" + sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("graygw %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("cutover", "--pool", "gray-router", "--vm", "5001/"+demo.vm, "--name", "dash-vm", "--wait")
	// The rule stays: graygw_rule_packets_total needs a rule to have series.
	// The VIP's split, and the packets the pipeline dropped (a VM's IPv6 or
	// ARP in VXLAN, INNER_NOT_IPV4: VIP packets that no rule matched, so on
	// the default pool's side).
	split := func() (base, gray, drops float64) {
		prom.waitScrapes(t, 2)
		v := prom.vector(t, `sum by (cluster) (graygw_vip_cluster_packets_total{vip="vpc-router"})`)
		d := prom.vector(t, `sum(graygw_drop_packets_total{reason!~"NOT_IPV4|NOT_VIP"})`)
		return v["cluster=base"], v["cluster=gray"], d[""]
	}
	base0, gray0, drops0 := split()
	t.Logf("VIP vpc-router before the pings: base %v gray %v (dropped %v)", base0, gray0, drops0)
	if out, err := exec.Command("ip", "netns", "exec", demo.hv, "ping", "-c", "20", "-i", "0.1", "-W", "1",
		"-I", demo.vm, demo.router).CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	base1, gray1, drops1 := split()
	if gray1-gray0 != 20 || base1-base0 != drops1-drops0 {
		t.Errorf("after 20 pings of a gray VM: gray +%v base +%v (dropped +%v), want +20 and +%v",
			gray1-gray0, base1-base0, drops1-drops0, drops1-drops0)
	}
	t.Logf("after: base %v gray %v", base1, gray1)

	// Let the rate windows fill, then every query of the dashboard.
	prom.waitScrapes(t, 10)
	d := loadDashboard(t)
	var exprs []string
	for _, q := range d.queries() {
		exprs = append(exprs, q.expr)
		if names := metricNames(q.expr); onlyOnEvent(names) {
			continue
		}
		if v := prom.vector(t, q.expr); len(v) == 0 {
			t.Errorf("%s returns no series: %s", q.where, q.expr)
		}
	}
	for _, a := range d.Annotations.List {
		exprs = append(exprs, a.Expr)
	}
	// The variables: label_values(METRIC, LABEL).
	lv := regexp.MustCompile(`^label_values\((\w+), *(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(METRIC, LABEL)", v.Name, v.Definition)
			continue
		}
		exprs = append(exprs, m[1])
		var vals []string
		prom.get(t, "/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {m[1]}}, &vals)
		if len(vals) == 0 {
			t.Errorf("variable %s: %s has no values", v.Name, v.Definition)
		}
	}

	// Every metric the dashboard and the rules name is one the controller
	// exports (a misspelt name would chart nothing, or never alert).
	exported := exportedFamilies(t, gw, demo.metricsAddr)
	rules := alertRules(t)
	for _, r := range rules {
		exprs = append(exprs, r.Expr)
	}
	for name := range metricNames(exprs...) {
		if !exported[name] && !appearOnEvent[name] {
			t.Errorf("%s is used but the controller does not export it", name)
		}
	}

	// The rules: all loaded and evaluated without error; none fires on the
	// healthy lab.
	var rg struct {
		Groups []struct {
			Rules []struct {
				Name, Health, LastError string
			}
		}
	}
	prom.get(t, "/api/v1/rules", url.Values{"type": {"alert"}}, &rg)
	n := 0
	for _, g := range rg.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if n != len(rules) {
		t.Errorf("Prometheus loaded %d alerting rules, the file has %d", n, len(rules))
	}
	if a := prom.alerts(t); len(a) != 0 {
		t.Errorf("alerts on a healthy lab: %v", a)
	}

	// A real failure: cut the gateway's link to the base server. Its health
	// checks fail (fall 3 at 1 s) and the alert goes pending (it fires after 1m).
	if out, err := exec.Command("ip", "-n", gw, "link", "set", "p2", "down").CombinedOutput(); err != nil {
		t.Fatalf("link down: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := prom.alerts(t)
		if a["GraygwBackendDown pool=base-router backend=base-1"] == "pending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GraygwBackendDown not pending for base-1 30 s after its link was cut: %v", a)
		}
		time.Sleep(time.Second)
	}
}

func onlyOnEvent(names map[string]bool) bool {
	for n := range names {
		if !appearOnEvent[n] {
			return false
		}
	}
	return len(names) > 0
}

// demoProc is a running `graygw-demo --keep` and what its output told.
type demoProc struct {
	cmd                     *exec.Cmd
	out                     *syncbuf.Buffer
	gatewayNS, hv, sock     string
	vm, router, metricsAddr string
}

var (
	demoPing    = regexp.MustCompile("ip netns exec (\\S+) ping -I (\\S+) (\\S+)`")
	demoMetrics = regexp.MustCompile(`graygw --controller unix://(\S+); its metrics: ip netns exec (\S+) curl http://(\S+)/metrics`)
)

// startDemo runs the demo with --keep until the lab stays up; cleanup stops
// it (SIGINT: it removes everything it made) and waits for it.
func startDemo(t *testing.T, bin string) *demoProc {
	t.Helper()
	d := &demoProc{out: &syncbuf.Buffer{}}
	d.cmd = exec.Command(filepath.Join(bin, "graygw-demo"), "--bin", bin, "--keep")
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = d.cmd.Process.Kill()
			<-exited
			t.Errorf("the demo did not stop within 60 s of SIGINT")
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", d.out.String())
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(d.out.String(), "the lab stays up") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the demo exited: %v\n%s", err, d.out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not come up in 3 minutes:\n%s", d.out.String())
		}
	}
	text := d.out.String()
	p, m := demoPing.FindStringSubmatch(text), demoMetrics.FindStringSubmatch(text)
	if p == nil || m == nil {
		t.Fatalf("the demo's output lacks the lab's names:\n%s", text)
	}
	d.hv, d.vm, d.router = p[1], p[2], p[3]
	d.sock, d.gatewayNS, d.metricsAddr = m[1], m[2], m[3]
	return d
}

// promProc is a Prometheus server in a namespace.
type promProc struct {
	ns  string
	cmd *exec.Cmd
	log *syncbuf.Buffer
}

// startPrometheus runs Prometheus in ns, scraping target every second with
// the alerting rules loaded; cleanup stops it by its PID.
func startPrometheus(t *testing.T, ns, target string) *promProc {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: graygw-controller
    static_configs: [{targets: [%q]}]
`, rules, target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promProc{ns: ns, log: &syncbuf.Buffer{}}
	// ip netns exec execs prometheus: the PID is Prometheus's.
	p.cmd = exec.Command("ip", "netns", "exec", ns, "prometheus", "--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // lab.Stop signals the group
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Stop(p.cmd, syscall.SIGTERM, 10*time.Second); err != nil {
			t.Errorf("stopping prometheus: %v", err)
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	return p
}

// httpGet does one GET to addr inside ns: the socket is opened in the
// namespace and the request written on it by hand (http.Transport would dial
// from another goroutine, in the host's namespace).
func httpGet(ns, addr, pathQuery string) (int, []byte, error) {
	var conn net.Conn
	err := lab.InNamespace(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		conn = c
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+pathQuery, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func (p *promProc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := httpGet(p.ns, promAddr, "/-/ready")
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s (%d %v):\n%s", code, err, p.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get calls the HTTP API and decodes its data into v.
func (p *promProc) get(t *testing.T, path string, q url.Values, v any) {
	t.Helper()
	code, body, err := httpGet(p.ns, promAddr, path+"?"+q.Encode())
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("prometheus %s %v: %d %s %s %v", path, q, code, r.Status, r.Error, err)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
}

// vector runs an instant query; the result is keyed by its labels
// ("k=v,k=v", sorted as Prometheus returns them, __name__ left out).
func (p *promProc) vector(t *testing.T, expr string) map[string]float64 {
	t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	p.get(t, "/api/v1/query", url.Values{"query": {expr}}, &data)
	out := map[string]float64{}
	for _, r := range data.Result {
		var ls []string
		for k, v := range r.Metric {
			if k != "__name__" {
				ls = append(ls, k+"="+v)
			}
		}
		slices.Sort(ls)
		s, _ := r.Value[1].(string)
		f, _ := strconv.ParseFloat(s, 64)
		out[strings.Join(ls, ",")] = f
	}
	return out
}

// waitScrapes waits for n more successful scrapes of the controller.
func (p *promProc) waitScrapes(t *testing.T, n int) {
	t.Helper()
	count := func() float64 {
		v := p.vector(t, `count_over_time(up{job="graygw-controller"}[1h]) and up{job="graygw-controller"} == 1`)
		for _, f := range v {
			return f
		}
		return 0
	}
	start := count()
	deadline := time.Now().Add(time.Duration(n)*time.Second + 30*time.Second)
	for count() < start+float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d scrapes of the controller in %v:\n%s", n, time.Duration(n)*time.Second+30*time.Second, p.log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// alerts returns the active alerts, "NAME k=v ..." (their non-standard
// labels) to state (pending, firing).
func (p *promProc) alerts(t *testing.T) map[string]string {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.get(t, "/api/v1/alerts", nil, &data)
	out := map[string]string{}
	for _, a := range data.Alerts {
		k := a.Labels["alertname"]
		for _, l := range []string{"gateway", "neighbor", "pool", "backend", "reason", "status", "state"} {
			if v, ok := a.Labels[l]; ok {
				k += " " + l + "=" + v
			}
		}
		out[k] = a.State
	}
	return out
}

// exportedFamilies returns the metric families the controller's /metrics has.
func exportedFamilies(t *testing.T, ns, addr string) map[string]bool {
	t.Helper()
	code, body, err := httpGet(ns, addr, "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("controller /metrics: %d %v", code, err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}
