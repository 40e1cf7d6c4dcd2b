//go:build linux

package bpf

import (
	"bytes"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
)

// Packets read a port's VID from their backend's cell, not from port_vlan:
// SetPortVLAN and DeletePortVLAN republish the cells of the port's backends,
// SetBackendEntry takes the port's VID, and a reopened loader repairs a cell
// whose VID is stale. Every frame leaves as the model says.
func TestPortVLANFollowsIntoCells(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	ms := basicModel(t)
	applyState(t, d, ms)
	receiveOn(t, d, 1)
	gray, _ := vectorCase(t, "overlay_vni_cutover") // served on port 3
	checkFrame := func(d *Dataplane, what string, frame []byte) {
		t.Helper()
		want := model.ProcessPort(ms, 1, frame)
		aimPorts(t, d, portsOf(ms), int(want.Port))
		ret, out := run(t, d.Program(), frame)
		if want.Verdict != model.Forward || ret != xdpTX || !bytes.Equal(out, want.Frame) {
			t.Fatalf("%s: %s (model %v %v)\n got %x\nwant %x", what, verdictName(ret), want.Verdict, want.Reason, out, want.Frame)
		}
	}
	check := func(d *Dataplane, what string) { t.Helper(); checkFrame(d, what, gray) }
	check(d, "untagged port")
	for _, vid := range []uint16{300, 4094} {
		if err := d.SetPortVLAN(3, vid); err != nil {
			t.Fatal(err)
		}
		ms.PortVLAN[3] = vid
		check(d, "port 3 tagged")
	}
	// A backend written after its port's VID takes it.
	be := ms.Backends[21]
	be.DMAC[5]++
	if err := d.SetBackendEntry(21, be); err != nil {
		t.Fatal(err)
	}
	ms.Backends[21] = be
	check(d, "backend rewritten on a tagged port")
	if err := d.SetPortVLAN(3, 0); err == nil {
		t.Fatal("SetPortVLAN(3, 0) accepted: VID 0 is the cells' untagged")
	}
	// A stale cell (port_vlan changed behind the loader's back) is repaired on reopen.
	if err := d.objs.PortVlan.Update(uint32(3), uint32(0), 0); err != nil {
		t.Fatal(err)
	}
	delete(ms.PortVLAN, 3)
	d.Close()
	d2 := reopen(t, dir)
	check(d2, "reopened over a stale cell")
	if err := d2.SetPortVLAN(3, 7); err != nil {
		t.Fatal(err)
	}
	ms.PortVLAN[3] = 7
	check(d2, "port 3 tagged again")
	if err := d2.DeletePortVLAN(3); err != nil {
		t.Fatal(err)
	}
	delete(ms.PortVLAN, 3)
	check(d2, "port 3 untagged again")
	if err := d2.SetVLANAccept(1, 100); err != nil {
		t.Fatal(err)
	}
	ms.VLANAccept[model.PortVID{Port: 1, VID: 100}] = true
	checkFrame(d2, "tagged in, untagged port: the tag removed", testpkt.Tag(gray, 0x6000|100))
}
