package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/tlsfiles"
)

// DefaultSocket is where the controller listens by default.
const DefaultSocket = "/run/graygw/controller.sock"

// ErrInUse: another process answers on the unix socket.
var ErrInUse = errors.New("service: socket in use")

// ListenUnix listens on a unix socket at path, creating its directory (0750)
// and removing a stale socket file left by a process that died; a socket
// another process still answers on is ErrInUse. The socket is made 0660, so
// access is granted by the directory's and the socket's group.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("service: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("service: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s (another controller?)", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("service: remove stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("service: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("service: chmod %s: %w", path, err)
	}
	return l, nil
}

// ServerTLS loads the server certificate and the CA that client certificates
// must chain to: mutual TLS, TLS 1.2 at least. Every file is required.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCAFile == "" {
		return nil, fmt.Errorf("%w: TCP needs a certificate, its key and a client CA (mutual TLS)", ErrConfig)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("service: server certificate: %w", err)
	}
	pool, err := tlsfiles.CertPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("service: client CA: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// NewServer returns a gRPC server serving s with creds (UnixCredentials for the
// unix socket, credentials.NewTLS(ServerTLS(...)) for TCP), logging every call.
func (s *Service) NewServer(creds credentials.TransportCredentials, opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{grpc.Creds(creds), grpc.ChainUnaryInterceptor(s.logCalls),
		grpc.MaxRecvMsgSize(16 << 20)}, opts...)
	gs := grpc.NewServer(opts...)
	graygwv1.RegisterControllerServer(gs, s)
	return gs
}

// logCalls logs changes at Info and reads at Debug, with the caller.
func (s *Service) logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	level := slog.LevelDebug
	switch method {
	case "Apply", "Cutover", "Rollback", "DrainGateway", "UndrainGateway", "RolloutStart", "RolloutPause", "RolloutResume",
		"RolloutAbort", "Probe":
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "api call", "method", method, "peer", peerIdentity(ctx), "code", status.Code(err).String(),
		"took", time.Since(start))
	return resp, err
}

// actorOf is who a change is recorded as: the actor the request names, with the
// authenticated peer ("alice (uid=1000)"); the peer alone when the request names
// nobody.
func actorOf(ctx context.Context, requested string) string {
	id := peerIdentity(ctx)
	switch {
	case requested == "" && id == "":
		return "unknown"
	case requested == "":
		return id
	case id == "":
		return requested
	}
	return requested + " (" + id + ")"
}

// peerIdentity is the authenticated identity of the caller: "uid=N" on the unix
// socket, "cn=NAME" for a TLS client certificate; "" when unknown.
func peerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return ""
	}
	switch ai := p.AuthInfo.(type) {
	case UnixAuthInfo:
		return fmt.Sprintf("uid=%d", ai.UID)
	case credentials.TLSInfo:
		if certs := ai.State.PeerCertificates; len(certs) > 0 {
			return "cn=" + certs[0].Subject.CommonName
		}
	}
	return ""
}

// UnixAuthInfo is the peer of a unix socket connection, from SO_PEERCRED.
type UnixAuthInfo struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

// AuthType implements credentials.AuthInfo.
func (UnixAuthInfo) AuthType() string { return "unix" }

// UnixCredentials returns transport credentials for a unix socket listener
// that identify the peer process (uid, gid, pid) with SO_PEERCRED. The
// connection itself is not encrypted: access control is the socket's file
// permissions.
func UnixCredentials() credentials.TransportCredentials { return unixCreds{} }

type unixCreds struct{}

// ClientHandshake implements credentials.TransportCredentials (unused: servers only).
func (unixCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, UnixAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

// ServerHandshake reads the peer's credentials from the socket.
func (unixCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := UnixAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c, info, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c, info, nil
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil && cred != nil {
		info.UID, info.GID, info.PID = cred.Uid, cred.Gid, cred.Pid
	}
	return c, info, nil
}

// Info implements credentials.TransportCredentials.
func (unixCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix"}
}

// Clone implements credentials.TransportCredentials.
func (u unixCreds) Clone() credentials.TransportCredentials { return u }

// OverrideServerName implements credentials.TransportCredentials.
func (unixCreds) OverrideServerName(string) error { return nil }
