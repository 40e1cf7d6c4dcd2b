package lab

import (
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// PacketSocket opens an AF_PACKET socket on device dev of namespace ns,
// receiving protocol proto (0: nothing, for a socket that only sends;
// unix.ETH_P_ALL: every frame), and returns it with dev's interface index.
func PacketSocket(ns, dev string, proto uint16) (fd, ifindex int, err error) {
	fd = -1
	err = InNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		ifindex = ifc.Index
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto))); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex}); err != nil {
			unix.Close(fd)
			fd = -1
			return err
		}
		return nil
	})
	return fd, ifindex, err
}

// SendFrame sends frame out of interface ifindex through packet socket fd.
// While the device queue is full (ENOBUFS, EAGAIN) it waits and tries again:
// a full queue is not a loss.
func SendFrame(fd, ifindex int, frame []byte) error {
	for {
		err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6})
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		return err
	}
}

// htons is v in network byte order, as AF_PACKET wants protocols.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
