package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigIsRefused: a config the speaker cannot run with exits 2 and
// names every bad field.
func TestBadConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  string
		args []string
		want []string
	}{
		{"gateway: \"\"\n", nil, []string{"gateway: empty", "policyFile: empty", "controllers.addresses: empty",
			"dataplane.p4runtime: empty", "asn: 0 is not an AS number"}},
		{"gateway: gw1\npolicyFile: /tmp/x\ncontrollers: {addresses: [unix:///x]}\ndataplane: {p4runtime: 127.0.0.1:9559, xdp: true}\n" +
			"bgp: {asn: 1, routerID: 10.0.0.1}\n", nil, []string{"dataplane.xdp: needs dataplane.interfaces"}},
		{"gateway: gw1\ncolour: red\n", nil, []string{"field colour not found"}},
		{"gateway: gw1\npolicyFile: /tmp/x\ncontrollers: {addresses: [unix:///x]}\ndataplane: {p4runtime: 127.0.0.1:9559}\n" +
			"bgp: {asn: 1, routerID: 10.0.0.1, neighbors: [{address: 10.0.0.2, asn: 2}]}\n", []string{"--keep-routes-on-exit"}, []string{"needs bgp.gracefulRestart.enabled"}},
	} {
		path := filepath.Join(dir, "s.yaml")
		if err := os.WriteFile(path, []byte(tc.cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if code := run(append([]string{"--config", path}, tc.args...), &out, nil); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", tc.cfg, code, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: error lacks %q: %s", tc.cfg, w, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := run(nil, &out, nil); code != 2 || !strings.Contains(out.String(), "--config is required") {
		t.Errorf("no arguments: exit %d: %s", code, out.String())
	}
}
