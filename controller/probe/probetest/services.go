package probetest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/graygw/graygw/internal/lab"
)

// Service is a TCP or UDP service a lab backend runs (as the VPC router
// would), in its namespace, on every address of the backend: TCP probes to
// its port are answered with a SYN-ACK, UDP probes echoed. Stop closes it
// (then TCP probes get a reset, UDP ones nothing).
type Service struct {
	once  sync.Once
	close func() error
	done  chan struct{}
}

// Stop closes the service and waits for it; it may be called more than once.
func (s *Service) Stop() {
	s.once.Do(func() {
		s.close()
		<-s.done
	})
}

// ServeTCP makes the base (gray=false) or gray backend accept connections on
// port (each accepted one is closed at once). Close of the lab does not stop
// it: stop it (t.Cleanup) before.
func (tl *Lab) ServeTCP(gray bool, port uint16) (*Service, error) {
	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp4", addr) }
	return serve(tl, gray, "TCP service", port, listen, func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
}

// ServeUDPEcho makes the base or gray backend echo every datagram to port
// back to its sender.
func (tl *Lab) ServeUDPEcho(gray bool, port uint16) (*Service, error) {
	listen := func(addr string) (net.PacketConn, error) { return net.ListenPacket("udp4", addr) }
	return serve(tl, gray, "UDP echo", port, listen, func(pc net.PacketConn) {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				pc.WriteTo(buf[:n], from)
			}
		}
	})
}

// serve opens a socket on every address of the backend, port, in its
// namespace (what names it in errors), and runs loop on it until Stop closes
// it.
func serve[L io.Closer](tl *Lab, gray bool, what string, port uint16, listen func(addr string) (L, error), loop func(L)) (*Service, error) {
	var l L
	err := lab.InNamespace(tl.ns(gray), func() error {
		var err error
		l, err = listen(fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probetest: %s on port %d: %w", what, port, err)
	}
	s := &Service{close: l.Close, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		loop(l)
	}()
	return s, nil
}

func (tl *Lab) ns(gray bool) string {
	if gray {
		return tl.Topo.Gray
	}
	return tl.Topo.Base
}
