package lab

import (
	"errors"
	"net"
)

// ServeTCP listens on addr (host:port) inside namespace ns and accepts and
// closes every connection until the listener is closed: a port that answers
// a SYN, for health checks and probes that only need the handshake.
func ServeTCP(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := InNamespace(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			} else if err == nil {
				c.Close()
			}
		}
	}()
	return ln, nil
}
