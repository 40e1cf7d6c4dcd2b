package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// uidList collects --allow-uid.
type uidList []uint32

// String implements flag.Value.
func (u *uidList) String() string {
	var s []string
	for _, id := range *u {
		s = append(s, strconv.FormatUint(uint64(id), 10))
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (u *uidList) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("want a numeric uid, got %q", v)
	}
	*u = append(*u, uint32(n))
	return nil
}

// peerListener accepts only local peers whose uid is allowed: a unix socket's
// peer credentials (SO_PEERCRED), or for loopback TCP the uid owning the client
// socket in the kernel's socket table. A refused connection is closed before gRPC
// sees it and logged; Accept keeps waiting for the next one.
type peerListener struct {
	net.Listener
	allow map[uint32]bool
	log   *slog.Logger
}

func newPeerListener(l net.Listener, extra []uint32, log *slog.Logger) *peerListener {
	allow := map[uint32]bool{0: true, uint32(os.Geteuid()): true}
	for _, u := range extra {
		allow[u] = true
	}
	return &peerListener{Listener: l, allow: allow, log: log}
}

// Accept implements net.Listener.
func (p *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := p.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, pid, err := peerCred(c)
		switch {
		case err != nil:
			p.log.Warn("P4Runtime connection refused: peer credentials unknown", "peer", c.RemoteAddr().String(), "err", err)
		case !p.allow[uid]:
			p.log.Warn("P4Runtime connection refused: uid not allowed (root, the agent's own uid and --allow-uid are)",
				"uid", uid, "pid", pid, "peer", c.RemoteAddr().String())
		default:
			p.log.Debug("P4Runtime connection", "uid", uid, "pid", pid, "peer", c.RemoteAddr().String())
			return c, nil
		}
		c.Close()
	}
}

// peerCred returns the uid (and pid, 0 when unknown) of the process at the other
// end of a local connection.
func peerCred(c net.Conn) (uid uint32, pid int32, err error) {
	switch c := c.(type) {
	case *net.UnixConn:
		return unixPeerCred(c)
	case *net.TCPConn:
		local, lok := c.LocalAddr().(*net.TCPAddr)
		remote, rok := c.RemoteAddr().(*net.TCPAddr)
		if !lok || !rok || !remote.IP.IsLoopback() {
			return 0, 0, errors.New("not a loopback connection")
		}
		uid, err := tcpPeerUID(local.AddrPort(), remote.AddrPort())
		return uid, 0, err
	}
	return 0, 0, fmt.Errorf("unsupported connection type %T", c)
}

// isLoopbackAddr reports whether a host:port listen address binds loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
