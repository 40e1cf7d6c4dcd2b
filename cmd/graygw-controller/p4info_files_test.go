package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/p4src"
	"github.com/graygw/graygw/pipeline"
)

// tnaP4Info is the committed P4Info as bf-p4c names it ("pipe.") with
// gray_rules 8192, edited further by edit when set.
func tnaP4Info(t *testing.T, edit func(*p4configv1.P4Info)) *p4configv1.P4Info {
	t.Helper()
	pi, err := p4info.Parse(p4src.P4InfoText)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range pi.GetTables() {
		if tb.GetPreamble().GetName() == pipeline.TableGrayRules {
			tb.Size = 8192
		}
		tb.Preamble.Name = p4info.TNAPrefix + tb.GetPreamble().GetName()
	}
	for _, a := range pi.GetActions() {
		a.Preamble.Name = p4info.TNAPrefix + a.GetPreamble().GetName()
	}
	for _, c := range pi.GetDirectCounters() {
		c.Preamble.Name = p4info.TNAPrefix + c.GetPreamble().GetName()
	}
	if edit != nil {
		edit(pi)
	}
	return pi
}

// p4info_files: a text and a binary TNA P4Info pass --check and are named in
// its report; an unreadable, unparsable or incompatible one fails it with the
// gateway, the file and the first mismatch.
func TestCheckP4InfoFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	text, err := prototext.Marshal(tnaP4Info(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := proto.Marshal(tnaP4Info(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	badText, err := prototext.Marshal(tnaP4Info(t, func(pi *p4configv1.P4Info) {
		for _, tb := range pi.GetTables() {
			if tb.GetPreamble().GetName() == p4info.TNAPrefix+pipeline.TableVNITenant {
				tb.MatchFields[0].Bitwidth = 16
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	config := func(files map[string]string) string {
		var b strings.Builder
		b.WriteString("p4runtime:\n  p4info_files:\n")
		for gw, p := range files {
			b.WriteString("    " + gw + ": " + p + "\n")
		}
		return write("c.yaml", []byte(b.String()))
	}

	var out, errs bytes.Buffer
	cfg := config(map[string]string{"tofino-a": write("a.txtpb", text), "tofino-b": write("b.bin", bin)})
	if code := run([]string{"--config", cfg, "--check"}, &out, &errs, nil, nil); code != 0 {
		t.Fatalf("--check exit %d: %s", code, errs.String())
	}
	for _, want := range []string{"p4info: gateway tofino-a: " + filepath.Join(dir, "a.txtpb"), "p4info: gateway tofino-b: ", "config: OK"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("--check said %q, want %q in it", out.String(), want)
		}
	}

	for _, tc := range []struct {
		file string
		want string
	}{
		{filepath.Join(dir, "missing.txtpb"), "no such file"},
		{write("junk.txtpb", []byte("tables { nope")), "neither a text nor a binary P4Info"},
		{write("bad.txtpb", badText), "table GrayIngress.vni_tenant: match field vni is 16 bits, want 24"},
	} {
		errs.Reset()
		cfg := config(map[string]string{"tofino-x": tc.file})
		code := run([]string{"--config", cfg, "--check"}, io.Discard, &errs, nil, nil)
		prefix := "p4runtime.p4info_files: gateway tofino-x: " + tc.file + ": "
		if code != 1 || !strings.Contains(errs.String(), prefix) || !strings.Contains(errs.String(), tc.want) {
			t.Fatalf("%s: exit %d, %q; want %q and %q", tc.file, code, errs.String(), prefix, tc.want)
		}
	}
}

// A p4info_files or device_configs key that names no gateway of the intent (a
// typo) fails --check, naming each key and the intent's gateways; keys that
// name its gateways pass.
func TestCheckConfigGatewaysAreInTheIntent(t *testing.T) {
	dir := t.TempDir()
	text, err := prototext.Marshal(tnaP4Info(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	pinfo := filepath.Join(dir, "tna.txtpb")
	dev := filepath.Join(dir, "device.bin")
	if err := os.WriteFile(pinfo, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dev, []byte("tofino binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := writeIntent(t, "127.0.0.1:9559") // one gateway, gw1
	config := func(p4infoGW, deviceGW string) string {
		path := filepath.Join(dir, "c.yaml")
		doc := "p4runtime:\n  p4info_files: {" + p4infoGW + ": " + pinfo + "}\n  device_configs: {" + deviceGW + ": " + dev + "}\n"
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	var out, errs bytes.Buffer
	if code := run([]string{"--config", config("gw1", "gw1"), "--intent", in, "--check"}, &out, &errs, nil, nil); code != 0 {
		t.Fatalf("--check exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "intent: OK") {
		t.Fatalf("--check said %q", out.String())
	}

	for _, tc := range []struct {
		p4info, device string
		want           []string
	}{
		{"gw-1", "gw1", []string{"p4runtime.p4info_files: gateway gw-1 is not in the intent"}},
		{"gw1", "tofino", []string{"p4runtime.device_configs: gateway tofino is not in the intent"}},
		{"gw2", "gw3", []string{"p4runtime.p4info_files: gateway gw2 is not in the intent; p4runtime.device_configs: gateway gw3 is not in the intent"}},
	} {
		errs.Reset()
		code := run([]string{"--config", config(tc.p4info, tc.device), "--intent", in, "--check"}, io.Discard, &errs, nil, nil)
		want := append(tc.want, "(intent "+in+" has gateways gw1)")
		for _, w := range want {
			if code != 1 || !strings.Contains(errs.String(), w) {
				t.Fatalf("p4info_files %s, device_configs %s: exit %d, %q; want %q", tc.p4info, tc.device, code, errs.String(), w)
			}
		}
	}
}
