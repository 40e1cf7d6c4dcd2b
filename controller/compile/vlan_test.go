package compile

import (
	"bytes"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// A port's vlan configuration compiles to vlan_accept and port_vlan entries
// of that gateway: tagged frames of an accepted VID on the port are served
// exactly as untagged ones and leave with the egress port's tag; others are
// VLAN_NOT_ACCEPTED. Without vlan configuration nothing changes.
func TestPortVLANEntries(t *testing.T) {
	plain := load(t, world)
	tagged := load(t, strings.Replace(strings.Replace(world,
		`2: {interface: p2, mac: "02:00:00:00:01:02"}`, `2: {interface: p2, mac: "02:00:00:00:01:02", vlan: {accept: [100, 101]}}`, 1),
		`3: {interface: p3, mac: "02:00:00:00:01:03"}`, `3: {interface: p3, mac: "02:00:00:00:01:03", vlan: {tag: 300}}`, 1))
	res := mustCompile(t, tagged, nil)
	var got []string
	for _, e := range res.Gateways[0].Entries {
		if e.Table == pipeline.TableVLANAccept || e.Table == pipeline.TablePortVLAN {
			got = append(got, e.Key()+" "+e.Origin)
		}
	}
	want := []string{
		pipeline.TablePortVLAN + " egress_port=0003 port 3 vlan",
		pipeline.TableVLANAccept + " ingress_port=0002 vid=0064 port 2 vlan",
		pipeline.TableVLANAccept + " ingress_port=0002 vid=0065 port 2 vlan",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("port entries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range mustCompile(t, plain, nil).Gateways[0].Entries {
		if e.Table == pipeline.TableVLANAccept || e.Table == pipeline.TablePortVLAN {
			t.Fatalf("an intent without vlan compiles %s", e.Key())
		}
	}

	g0 := newGW(t, plain, mustCompile(t, plain, nil))
	g1 := newGW(t, tagged, res)
	gray := load(t, strings.Replace(strings.Replace(world,
		`2: {interface: p2, mac: "02:00:00:00:01:02"}`, `2: {interface: p2, mac: "02:00:00:00:01:02", vlan: {accept: [100, 101]}}`, 1),
		`3: {interface: p3, mac: "02:00:00:00:01:03"}`, `3: {interface: p3, mac: "02:00:00:00:01:03", vlan: {tag: 300}}`, 1)+
		"gray_rules:\n  - name: vpc\n    match: {vni: 5002}\n    pool: gray\n")
	g2 := newGW(t, gray, mustCompile(t, gray, nil))
	for _, f := range flows(7, 300, 5001, 5002) {
		r0 := model.Process(g0.state, f.frame())
		r1 := model.ProcessPort(g1.state, 2, testpkt.Tag(f.frame(), 0x2000|101))
		if r1.Verdict != model.Forward || !bytes.Equal(r1.Frame, r0.Frame) || r1.Bucket != r0.Bucket {
			t.Fatalf("%+v: tagged on port 2 %v %v, want served untagged as without vlan", f, r1.Verdict, r1.Reason)
		}
		if r := model.ProcessPort(g1.state, 3, testpkt.Tag(f.frame(), 101)); r.Reason != pipeline.VLANNotAccepted {
			t.Fatalf("%+v: VID 101 on port 3: %v %v, want VLAN_NOT_ACCEPTED", f, r.Verdict, r.Reason)
		}
		if r := model.ProcessPort(g2.state, 2, testpkt.Tag(f.frame(), 0x2000|100)); f.vni == 5002 {
			if r.Port != 3 || len(r.Frame) < 18 || r.Frame[12] != 0x81 || r.Frame[14] != 0x21 || r.Frame[15] != 0x2c {
				t.Fatalf("%+v: to gray's port 3: port %d frame %x, want tag PCP 1 VID 300", f, r.Port, r.Frame[:18])
			}
		}
	}
}
