package main

import (
	"net"
	"sync"
)

// handoff is a listening socket that outlives the servers on it: the standby
// API serves it while the replica follows, the leader's API after the
// election, and the socket never stops accepting in between. Closing the
// standby's listener and binding the leader's left a gap (the unix socket
// file removed, then created again) in which clients' connection attempts
// failed, and gRPC then waits its reconnect backoff (1 s) before trying again:
// changes reached a new leader about 1 s after it was elected. Connections
// made in the handover wait (in the kernel's backlog) for the next server.
type handoff struct {
	lis   net.Listener
	conns chan net.Conn // unbuffered: an accepted connection waits for a server
	dead  chan struct{} // closed when Accept of lis failed (err says why)
	err   error
	done  chan struct{} // closed by Close
	once  sync.Once

	mu      sync.Mutex
	pending []net.Conn // taken by a server that was closing: for the next one
}

func newHandoff(lis net.Listener) *handoff {
	h := &handoff{lis: lis, conns: make(chan net.Conn), dead: make(chan struct{}), done: make(chan struct{})}
	go h.accept()
	return h
}

func (h *handoff) accept() {
	for {
		c, err := h.lis.Accept()
		if err != nil {
			h.err = err
			close(h.dead)
			return
		}
		select {
		case h.conns <- c:
		case <-h.done:
			c.Close()
			return
		}
	}
}

// listener returns a listener for one server: its Close ends that server's
// Accept and leaves the socket open for the next.
func (h *handoff) listener() net.Listener {
	return &servedBy{h: h, closed: make(chan struct{})}
}

// Close closes the socket (a unix socket's file is removed) and the
// connections no server took.
func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	h.mu.Lock()
	for _, c := range h.pending {
		c.Close()
	}
	h.pending = nil
	h.mu.Unlock()
	return h.lis.Close()
}

// servedBy is the handoff's socket as one server sees it.
type servedBy struct {
	h      *handoff
	closed chan struct{}
	once   sync.Once
}

func (s *servedBy) Accept() (net.Conn, error) {
	select {
	case <-s.closed:
		return nil, net.ErrClosed
	default:
	}
	s.h.mu.Lock()
	if len(s.h.pending) > 0 {
		c := s.h.pending[0]
		s.h.pending = s.h.pending[1:]
		s.h.mu.Unlock()
		return c, nil
	}
	s.h.mu.Unlock()
	select {
	case c := <-s.h.conns:
		select {
		case <-s.closed: // both were ready: the next server takes c
			s.h.mu.Lock()
			s.h.pending = append(s.h.pending, c)
			s.h.mu.Unlock()
			return nil, net.ErrClosed
		default:
		}
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	case <-s.h.dead:
		return nil, s.h.err
	}
}

func (s *servedBy) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *servedBy) Addr() net.Addr { return s.h.lis.Addr() }
