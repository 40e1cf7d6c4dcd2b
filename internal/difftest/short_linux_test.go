//go:build linux

package difftest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// filesWait is how long BMv2 waits before it reads its packet files: the
// pipeline must be pushed by then.
const filesWait = 4 * time.Second

// TestShortFramesOnBMv2 covers the frames no veth carries as they are:
// frames of 1 to 13 bytes (ETH_TRUNCATED) and 802.1Q or 802.1ad frames of 14
// to 19 bytes, which the kernel drops before any tap: an 802.1Q tag cut
// (14-17 bytes) is ETH_TRUNCATED, a whole one followed by no IPv4 ethertype
// NOT_IPV4, and 802.1ad is never parsed (NOT_IPV4). BMv2 reads
// them from a pcap file (--use-files) instead of an interface, and must drop
// and count each as the model does, bytes included. (The XDP program is never
// handed less than an Ethernet header, BPF_PROG_TEST_RUN included; bpf's own
// tests give it frames from 14 bytes on.)
func TestShortFramesOnBMv2(t *testing.T) {
	ssg, program := requirements(t)
	dir := t.TempDir()
	var frames [][]byte
	for n := 1; n < MinFrame+6; n++ {
		f := make([]byte, n)
		for i := range f {
			f[i] = byte(0x11 * (i + 1))
		}
		frames = append(frames, f)
		if n >= MinFrame {
			binary.BigEndian.PutUint16(f[12:], 0x8100)
			q := append([]byte(nil), f...)
			binary.BigEndian.PutUint16(q[12:], 0x88a8)
			frames = append(frames, q)
		}
	}
	want := NewCounts()
	for _, f := range frames {
		r := model.Process(model.NewState(), f)
		if r.Verdict == model.Forward || len(f) >= MinLen(f) {
			t.Fatalf("%x: the model forwards it or a veth carries it", f)
		}
		want.Expect(Keys{}, f, r)
	}
	if err := writePcap(filepath.Join(dir, "p1_in.pcap"), frames); err != nil {
		t.Fatal(err)
	}

	l, err := lab.New("gds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ns, err := l.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "bmv2.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := time.Now()
	// BMv2 names the files of port 1 after its "interface", relative to its
	// working directory: p1_in.pcap, p1_out.pcap.
	if _, err := l.Start(ns, logf, "sh", "-c", fmt.Sprintf("cd %s && exec %s --no-p4 --device-id 1 --use-files %d -i 1@p1 -- --grpc-server-addr 127.0.0.1:9559",
		dir, ssg, int(filesWait/time.Second))); err != nil {
		t.Fatal(err)
	}
	info := stack.P4Info(t)
	json, err := os.ReadFile(program)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tg, err := connectIn(ctx, t, ns, "bmv2", "127.0.0.1:9559")
	if err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("%v\n%s", err, out)
	}
	if err := tg.setPipeline(ctx, info, json); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > filesWait-500*time.Millisecond {
		t.Skipf("BMv2 took %v to take its pipeline, too close to the %v it waits before reading its packet file (a loaded machine)", took, filesWait)
	}
	tl := &testLab{info: info, codec: engine.NewCodec(info)}
	var got Counts
	for deadline := time.Now().Add(filesWait + 10*time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = tl.counters(ctx, tg, nil); err != nil {
			t.Fatal(err)
		}
		if got.dropped() >= uint64(len(frames)) {
			break
		}
	}
	if d := got.Diff(want); d != "" {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("BMv2's counters after %d short frames:%s\n%s", len(frames), d, out)
	}
	if out, err := os.ReadFile(filepath.Join(dir, "p1_out.pcap")); err == nil && len(out) > 24 {
		t.Fatalf("BMv2 sent frames out of port 1: its pcap holds %d bytes", len(out))
	}
	t.Logf("%d short frames counted on BMv2 as in the model: ETH_TRUNCATED %+v, NOT_IPV4 %+v",
		len(frames), got.Drops[pipeline.EthTruncated], got.Drops[pipeline.NotIPv4])
}

// writePcap writes frames to a classic pcap file (Ethernet link type).
func writePcap(path string, frames [][]byte) error {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)     // thiszone
	b = binary.LittleEndian.AppendUint32(b, 0)     // sigfigs
	b = binary.LittleEndian.AppendUint32(b, 65535) // snaplen
	b = binary.LittleEndian.AppendUint32(b, 1)     // LINKTYPE_ETHERNET
	for i, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, 0)         // seconds
		b = binary.LittleEndian.AppendUint32(b, uint32(i)) // microseconds
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return os.WriteFile(path, b, 0o644)
}
