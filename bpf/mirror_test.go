package bpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// checkMirrorMeta checks what the XDP program passes up for a mirrored frame
// (docs/xdp.md, "Mirror"): out is the mirror_meta and the served frame, which
// must be the vector's; the meta must turn it into the vector's copy the way
// graygw_tc does (tcCopy; the lab tests run the tc program itself), on the
// copy's port, and the mirror counters count it.
func checkMirrorMeta(t *testing.T, d *Dataplane, out, wantServed []byte, e testvectors.Expect) {
	t.Helper()
	const metaLen = 14 + 36 // MIRROR_PREFIX: an Ethernet header and struct mirror_meta
	if len(out) != metaLen+len(wantServed) {
		t.Fatalf("passed up %d bytes, want a %d-byte mirror_meta and the %d-byte served frame", len(out), metaLen, len(wantServed))
	}
	meta, served := out[14:metaLen], out[metaLen:]
	if !bytes.Equal(served, wantServed) {
		t.Fatalf("served frame differs\n got %x\nwant %x", served, wantServed)
	}
	if !bytes.Equal(out[:12], served[:12]) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
		t.Errorf("prefix Ethernet header %x, want the served frame's MACs %x and IPv4", out[:14], served[:12])
	}
	if got := binary.LittleEndian.Uint32(meta[4:]); got != loIfindex {
		t.Errorf("served_ifindex %d, want %d (the served port is the ingress here)", got, loIfindex)
	}
	wantIf := uint32(1000 + int(e.Copy.Port))
	if e.Copy.Port == e.Port {
		wantIf = loIfindex
	}
	if got := binary.LittleEndian.Uint32(meta[8:]); got != wantIf {
		t.Errorf("copy_ifindex %d, want %d (port %d)", got, wantIf, e.Copy.Port)
	}
	wantCopy, _ := hex.DecodeString(e.Copy.Packet)
	if got := tcCopy(served, meta); !bytes.Equal(got, wantCopy) {
		t.Fatalf("copy from the meta differs\n got %x\nwant %x", got, wantCopy)
	}
}

// tcCopy is graygw_tc's rewrite in Go: the served frame into the copy.
func tcCopy(served, meta []byte) []byte {
	le := binary.LittleEndian
	underlay, origDst := le.Uint32(meta[12:]), le.Uint32(meta[16:])
	origCsum, tos, kind := le.Uint16(meta[2:]), meta[1], meta[0]
	c := append([]byte(nil), served...)
	if kind&0x04 != 0 { // MIRROR_SERVED_TAGGED
		c = model.Untag(c)
	}
	copy(c[0:6], meta[26:32])
	copy(c[6:12], meta[20:26])
	ip := c[14:34]
	binary.BigEndian.PutUint32(ip[16:], underlay)
	ip[1] = pipeline.MirrorDSCP<<2 | tos&3
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	switch kind & 0x03 {
	case 1:
		binary.BigEndian.PutUint16(c[34+16:], model.UpdateChecksum32(origCsum, origDst, underlay))
	case 2:
		n := model.UpdateChecksum32(origCsum, origDst, underlay)
		if n == 0 {
			n = 0xffff
		}
		binary.BigEndian.PutUint16(c[34+6:], n)
	}
	if kind&0x08 != 0 { // MIRROR_COPY_TAGGED: copy_tci
		c = testpkt.Tag(c, le.Uint16(meta[32:]))
	}
	return c
}

// The mirror counters count what the vectors' mirror state says: copies made
// by mirror id, copies sent by backend; a copy without a backend is counted
// made, not sent.
func TestMirrorCounters(t *testing.T) {
	skipUnlessBPF(t)
	f, ms := committedState(t, testvectors.StateMirror)
	d := openTest(t)
	applyState(t, d, ms)
	ports := portsOf(ms)
	made, sent := map[uint16]uint64{}, map[uint16]uint64{}
	for _, c := range f.Cases {
		frame, _ := c.Frame()
		if c.State != testvectors.StateMirror || len(frame) < minFrame {
			continue
		}
		aimPorts(t, d, ports, int(c.Expect.Port))
		run(t, d.Program(), frame)
		if cp := c.Expect.Copy; cp != nil {
			made[cp.MirrorID]++
			if cp.Sent {
				sent[cp.BackendID]++
			}
		}
	}
	if len(made) == 0 || len(sent) == 0 {
		t.Fatal("the mirror state's cases make no copy")
	}
	for id := range uint16(4) {
		c, err := d.MirrorCounter(id)
		if err != nil || c.Packets != made[id] {
			t.Errorf("mirror_counter[%d] = %d packets (%v), want %d", id, c.Packets, err, made[id])
		}
	}
	for id := range ms.Backends {
		c, err := d.MirrorBackendCounter(id)
		if err != nil || c.Packets != sent[id] {
			t.Errorf("mirror_backend_counter[%d] = %d packets (%v), want %d", id, c.Packets, err, sent[id])
		}
	}
	if _, err := d.MirrorCounter(pipeline.MirrorIDs); err == nil {
		t.Error("MirrorCounter(MirrorIDs) read a cell beyond the counter")
	}
}

// A copy whose mirror pool's backend is a to_backend_v6 entry (a controller
// error: an IPv4 frame's mirror pool with an IPv6 underlay) is made and
// dropped (docs/pipeline.md §10): the served frame leaves as without a mirror,
// mirror_counter and the entry's backend_counter count, mirror_backend_counter
// does not; as the model says.
func TestMirrorCopyToIPv6BackendDropped(t *testing.T) {
	skipUnlessBPF(t)
	f, ms := committedState(t, testvectors.StateMirror)
	var c testvectors.Case
	for _, x := range f.Cases {
		if x.Name == "mirror_sampled_in" {
			c = x
		}
	}
	e := c.Expect
	if e.Copy == nil || !e.Copy.Sent {
		t.Fatalf("mirror_sampled_in makes no copy: %+v", e)
	}
	be := ms.Backends[e.Copy.BackendID]
	be.IPv6, be.UnderlayIP, be.UnderlayIPv6 = true, 0, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}
	ms.Backends[e.Copy.BackendID] = be
	d := openTest(t)
	applyState(t, d, ms)
	frame, _ := c.Frame()
	want := model.Process(ms, frame)
	if want.Copy == nil || want.Copy.Sent || !want.Copy.BackendFamily || want.Verdict != model.Forward {
		t.Fatalf("the model: %+v copy %+v, want the frame served and the copy dropped for its family", want, want.Copy)
	}
	aimPorts(t, d, portsOf(ms), int(want.Port))
	before, _ := d.BackendCounter(e.Copy.BackendID)
	ret, out := run(t, d.Program(), frame)
	if ret != xdpTX || !bytes.Equal(out[:len(want.Frame)], want.Frame) {
		t.Fatalf("served: verdict %s\n got %x\nwant %x (no mirror prefix)", verdictName(ret), out, want.Frame)
	}
	if c, err := d.MirrorCounter(e.Copy.MirrorID); err != nil || c.Packets != 1 {
		t.Errorf("mirror_counter[%d] %+v %v, want 1 packet", e.Copy.MirrorID, c, err)
	}
	if c, err := d.MirrorBackendCounter(e.Copy.BackendID); err != nil || c.Packets != 0 {
		t.Errorf("mirror_backend_counter[%d] %+v %v, want none", e.Copy.BackendID, c, err)
	}
	if c, err := d.BackendCounter(e.Copy.BackendID); err != nil || c.Packets != before.Packets+1 {
		t.Errorf("backend_counter[%d] %+v %v, want one more (the entry was hit)", e.Copy.BackendID, c, err)
	}
}
