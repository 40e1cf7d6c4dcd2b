package lab

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPacketSockets: a frame sent with SendFrame on one end of a veth is
// received whole by a socket on the other end; a missing device is an error
// and leaves no socket.
func TestPacketSockets(t *testing.T) {
	l, a, b := twoEnds(t, "ggpkt")
	defer l.Close()
	if fd, _, err := PacketSocket(a, "nope", 0); err == nil || fd != -1 {
		t.Fatalf("PacketSocket on a missing device: fd %d, %v", fd, err)
	}
	tx, txIndex, err := PacketSocket(a, "va", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	rx, _, err := PacketSocket(b, "vb", 0x88b5) // the IEEE local experimental EtherType
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rx)
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5}, bytes.Repeat([]byte("graygw"), 10)...)
	start := time.Now()
	if err := SendFrame(tx, txIndex, frame); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _, err := unix.Recvfrom(rx, buf, 0)
	if err != nil {
		t.Fatalf("nothing received after %v: %v", time.Since(start), err)
	}
	if !bytes.Equal(buf[:n], frame) {
		t.Fatalf("received %x, sent %x", buf[:n], frame)
	}
}
