//go:build !linux

package main

import (
	"errors"
	"net"
	"net/netip"
)

func unixPeerCred(*net.UnixConn) (uint32, int32, error) {
	return 0, 0, errors.New("peer credentials are read on Linux only")
}

func tcpPeerUID(netip.AddrPort, netip.AddrPort) (uint32, error) {
	return 0, errors.New("peer credentials are read on Linux only")
}
