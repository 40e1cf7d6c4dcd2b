//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func unixPeerCred(c *net.UnixConn) (uint32, int32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if cerr != nil {
		return 0, 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return cred.Uid, cred.Pid, nil
}

// tcpPeerUID finds the client socket of a loopback connection (local address =
// the peer's, remote = ours) in /proc/net/tcp or tcp6 and returns its owner's uid.
func tcpPeerUID(ours, peer netip.AddrPort) (uint32, error) {
	file := "/proc/net/tcp"
	if ours.Addr().Is6() && !ours.Addr().Is4In6() {
		file = "/proc/net/tcp6"
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	wantLocal, wantRemote := procAddr(peer), procAddr(ours)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != wantLocal || fields[2] != wantRemote {
			continue
		}
		uid, err := strconv.ParseUint(fields[7], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%s: uid %q: %w", file, fields[7], err)
		}
		return uint32(uid), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("client socket not found in " + file)
}

// procAddr formats an address as /proc/net/tcp does: the address as native-endian
// 32-bit words in hex, a colon, the port in hex.
func procAddr(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	var sb strings.Builder
	if a.Is4() {
		b := a.As4()
		fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(b[:]))
	} else {
		b := a.As16()
		for i := 0; i < 16; i += 4 {
			fmt.Fprintf(&sb, "%08X", binary.NativeEndian.Uint32(b[i:]))
		}
	}
	fmt.Fprintf(&sb, ":%04X", ap.Port())
	return sb.String()
}
