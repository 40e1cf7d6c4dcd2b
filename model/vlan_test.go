package model

import (
	"bytes"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
)

// 802.1Q (docs/pipeline.md §1, §8): a tag is parsed, checked against the
// ingress port's accepted VIDs, and replaced by the egress port's tag.

func TestTaggedFrameAcceptedIsServedAsUntagged(t *testing.T) {
	s := newTestState()
	s.VLANAccept[PortVID{2, 100}] = true
	plain := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	want := Process(s, plain)
	r := ProcessPort(s, 2, testpkt.Tag(plain, 0xa000|100))
	if r.Verdict != Forward || r.Bucket != want.Bucket || r.CRC != want.CRC || r.Port != want.Port {
		t.Fatalf("tagged: %v %v bucket %d crc %#x port %d; untagged: bucket %d crc %#x port %d",
			r.Verdict, r.Reason, r.Bucket, r.CRC, r.Port, want.Bucket, want.CRC, want.Port)
	}
	// The backend's port has no port_vlan entry: the tag is stripped.
	if !bytes.Equal(r.Frame, want.Frame) {
		t.Fatalf("tagged frame to an untagged port:\n got %x\nwant %x", r.Frame, want.Frame)
	}
}

func TestTagNotAcceptedIsCountedDrop(t *testing.T) {
	s := newTestState()
	s.VLANAccept[PortVID{2, 100}] = true
	plain := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	for _, c := range []struct {
		port, vid uint16
	}{{2, 101}, {3, 100}, {0, 0}} {
		r := ProcessPort(s, c.port, testpkt.Tag(plain, c.vid))
		if r.Verdict != Drop || r.Reason != pipeline.VLANNotAccepted || !r.VIPHit {
			t.Errorf("port %d vid %d: %v %v hit=%v, want drop VLAN_NOT_ACCEPTED after the VIP", c.port, c.vid, r.Verdict, r.Reason, r.VIPHit)
		}
	}
	// Untagged frames are accepted on every port.
	if r := ProcessPort(s, 3, plain); r.Verdict != Forward {
		t.Errorf("untagged on port 3: %v %v", r.Verdict, r.Reason)
	}
	// Not for a VIP: not ours, whatever the tag (the kernel's VLAN device may want it).
	other := testpkt.Tag(testpkt.Plain(gwEth, testpkt.IP{Src: vtep, Dst: vtep}, tcp(1, 2)), 7)
	if r := ProcessPort(s, 2, other); r.Verdict != NotForUs || r.Reason != pipeline.NotVIP {
		t.Errorf("tagged, not for a VIP: %v %v, want pass NOT_VIP", r.Verdict, r.Reason)
	}
}

func TestEgressTagPushedRewrittenKeptPCP(t *testing.T) {
	s := newTestState()
	s.VLANAccept[PortVID{2, 100}] = true
	plain := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	untagged := Process(s, plain).Frame
	s.PortVLAN[beBase.Port] = 200
	// Untagged in: a tag pushed, PCP 0.
	if r := ProcessPort(s, 2, plain); !bytes.Equal(r.Frame, tag(untagged, 200)) {
		t.Errorf("untagged in, tagged port out:\n got %x\nwant %x", r.Frame, tag(untagged, 200))
	}
	// Tagged in (PCP 5, DEI 1): the VID rewritten, PCP and DEI kept.
	r := ProcessPort(s, 2, testpkt.Tag(plain, 0xb000|100))
	if want := tag(untagged, 0xb000|200); !bytes.Equal(r.Frame, want) {
		t.Errorf("tagged in, tagged port out:\n got %x\nwant %x", r.Frame, want)
	}
	if len(r.Frame) != len(plain)+pipeline.VLANTagLen {
		t.Errorf("length %d, want %d", len(r.Frame), len(plain)+pipeline.VLANTagLen)
	}
}

func TestVLANParse(t *testing.T) {
	plain := testpkt.Plain(gwEth, testpkt.IP{Src: vtep, Dst: vip}, tcp(1, 2))
	tagged := testpkt.Tag(plain, 0x0123)
	for _, c := range []struct {
		name   string
		frame  []byte
		reason pipeline.Reason
	}{
		{"tag cut", tagged[:16], pipeline.EthTruncated},
		{"tag only", tagged[:18], pipeline.IPv4Truncated},
		{"QinQ 802.1ad outer tag", append(append(append([]byte{}, tagged[:12]...), 0x88, 0xa8, 0, 5), tagged[12:]...), pipeline.NotIPv4},
		{"two 802.1Q tags", testpkt.Tag(tagged, 5), pipeline.NotIPv4},
		{"tagged ARP", testpkt.Tag(append(append([]byte{}, plain[:12]...), 0x08, 0x06, 0, 1), 9), pipeline.NotIPv4},
		{"tagged IPv4", tagged, pipeline.None},
	} {
		p := Parse(c.frame)
		if p.Reason != c.reason {
			t.Errorf("%s: reason %v, want %v", c.name, p.Reason, c.reason)
		}
	}
	if p := Parse(tagged); !p.Tagged || p.VID() != 0x123 || p.Flow.DPort != 2 {
		t.Errorf("tagged: %+v", p)
	}
}

func TestMirrorCopyTaggedForItsPort(t *testing.T) {
	s := newTestState()
	s.VLANAccept[PortVID{2, 100}] = true
	s.GrayRules = []GrayRule{{Priority: 1, Action: SetPoolMirror, Pool: poolBase, MirrorPool: poolGray, Sample: pipeline.SampleAll}}
	plain := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	want := Process(s, plain)
	s.PortVLAN[beGray.Port] = 300
	r := ProcessPort(s, 2, testpkt.Tag(plain, 0x2000|100))
	if r.Copy == nil || !r.Copy.Sent || r.Verdict != Forward {
		t.Fatalf("no copy: %+v", r)
	}
	if !bytes.Equal(r.Frame, want.Frame) {
		t.Errorf("served frame to an untagged port keeps a tag: %x", r.Frame)
	}
	if w := tag(want.Copy.Frame, 0x2000|300); !bytes.Equal(r.Copy.Frame, w) {
		t.Errorf("copy:\n got %x\nwant %x", r.Copy.Frame, w)
	}
}
