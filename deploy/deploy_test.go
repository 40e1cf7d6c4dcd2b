package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	dashboardFile = "grafana/graygw.json"
	rulesFile     = "prometheus/graygw-alerts.yml"
	rulesTestFile = "prometheus/graygw-alerts.test.yml"
)

// promtool returns promtool's path, or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian's prometheus package; scripts/deps.sh installs it)")
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules checks the alerting rules and runs their unit tests: each
// alert fires on its failure with its labels and text, and not on the states
// next to it.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	run(t, pt, "check", "rules", rulesFile)
	run(t, pt, "test", "rules", rulesTestFile)
}

// Every alert of the rules file has a test case in the unit tests.
func TestEveryAlertIsTested(t *testing.T) {
	tested, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alertRules(t) {
		if !strings.Contains(string(tested), "alertname: "+r.Alert+"\n") {
			t.Errorf("alert %s has no case in %s", r.Alert, rulesTestFile)
		}
	}
}

type rule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules")
	}
	return out
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// query is one PromQL query of the dashboard, its variables replaced by what
// "All" selects and a rate interval a 1 s scrape fills.
type query struct {
	where, expr string
}

var vars = strings.NewReplacer("$__rate_interval", "30s", "$gateway", ".*", "$vip", ".*")

func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %q query %c", p.Title, 'A'+i), vars.Replace(tg.Expr)})
		}
	}
	return out
}

// TestDashboard checks the dashboard's shape: every panel queries the
// dashboard's Prometheus variable, panels do not overlap, ids are unique, and
// every query parses (promtool checks them as recording rules).
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" {
		t.Error("no uid: a provisioned dashboard needs a stable one")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the grid", p.Title)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at (%d,%d)", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	// Parse every query: as recording rules of a throwaway rules file.
	pt := promtool(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range d.queries() {
		if q.expr == "" {
			t.Errorf("%s is empty", q.where)
			continue
		}
		fmt.Fprintf(&b, "      - record: graygw:dashboard:%d\n        expr: %q\n", i, q.expr)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, pt, "check", "rules", f)
}

var metricName = regexp.MustCompile(`\bgraygw_[a-z0-9_]+\b`)

// metricNames returns the graygw metric families exprs use (histogram
// series named after their family).
func metricNames(exprs ...string) map[string]bool {
	out := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			if strings.HasPrefix(m, "graygw_dashboard") {
				continue
			}
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(m, suf); ok && strings.HasSuffix(s, "_seconds") {
					m = s
				}
			}
			out[m] = true
		}
	}
	return out
}
