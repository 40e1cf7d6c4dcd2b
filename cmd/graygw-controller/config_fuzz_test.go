package main

import (
	"reflect"
	"strings"
	"testing"
)

// helpConfigExample is the config file --help shows.
func helpConfigExample() string {
	start := strings.Index(usageText, "Config file (YAML")
	end := strings.Index(usageText, "\nExamples:")
	if start < 0 || end < start {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.Split(usageText[start:end], "\n")[1:] {
		b.WriteString(strings.TrimPrefix(line, "  ") + "\n")
	}
	return b.String()
}

// FuzzConfig feeds documents to the controller's config decoder (the file
// --config reads, bgp:, probe: and health: sections included) and validator.
// Properties: nothing panics; a refused document gives no config; decoding is
// deterministic; validation is deterministic (the same problems in the same
// order, every time) and changes nothing in the config; a config that
// validates yields a probe host, a BGP section whose communities parse and a
// health config that validates. Seeds: the --help example and
// testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(helpConfigExample()))
	f.Add([]byte("store: /tmp/c.db\n"))
	f.Add([]byte("bgp:\n  asn: 65001\n  routerID: 10.0.0.1\n  neighbors: [{address: 10.0.0.2, asn: 65000}]\n  vips:\n    a: {communities: [\"x\"]}\n    b: {communities: [\"1:99999\"]}\n    c: {communities: [no-export, \"65000:1\"]}\n"))
	f.Add([]byte("health: {enabled: true, interval: 1s, timeout: 2s, mode: tcp}\nprobe: {source: 10.9.0.1, router_mac: \"02:00:00:00:10:fe\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c1, err1 := decodeConfig(data)
		c2, err2 := decodeConfig(data)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("decoding is not deterministic: %v / %v", err1, err2)
		}
		if err1 != nil {
			if c1 != nil || err1.Error() == "" {
				t.Fatalf("refused document: config %v, error %q", c1, err1)
			}
			return
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatal("decoding is not deterministic")
		}
		first := c1.validate()
		for range 4 {
			if err := c1.validate(); (err == nil) != (first == nil) || (err != nil && err.Error() != first.Error()) {
				t.Fatalf("validation is not deterministic:\n%v\n%v", first, err)
			}
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatal("validation changed the config")
		}
		if first != nil {
			return
		}
		if c1.Probe != nil {
			if h := c1.Probe.host(); c1.Probe.Source != "" && !h.Source.Is4() {
				t.Fatalf("probe source %q", c1.Probe.Source)
			}
		}
		if c1.Health != nil {
			if err := c1.Health.config().Validate(); err != nil {
				t.Fatalf("valid config, invalid health: %v", err)
			}
		}
		if c1.BGP != nil {
			if err := c1.BGP.Config.Validate(); err != nil {
				t.Fatalf("valid config, invalid bgp: %v", err)
			}
		}
	})
}
