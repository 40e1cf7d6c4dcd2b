package main

// The connection to the controller's API (api/graygw/v1). The commands call
// the generated client and build the generated requests; the answers are
// turned into the CLI's output views in view.go.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/internal/tlsfiles"
)

// DefaultController is the controller's API address unless --controller says
// otherwise: its unix socket.
const DefaultController = "unix:///run/graygw/controller.sock"

// Sentinel errors a call's error wraps so that the CLI can pick its exit code.
var (
	// errRefused: the controller refused the change (validation); exit 3.
	errRefused = errors.New("refused by the controller")
	// errProbeFailed: probes failed, or a rollout failed or was aborted; exit 4.
	errProbeFailed = errors.New("probe failed")
	// errUnsupported: the controller's API cannot express this (a cutover
	// by tenant).
	errUnsupported = errors.New("the controller API (api/graygw/v1) has no call for this")
)

// apiClient is the controller's API as the CLI calls it: the generated client
// over one connection. Every call's error already says what to do and wraps
// the sentinel that picks the exit code (apiError).
type apiClient struct {
	graygwv1.ControllerClient
	conn *grpc.ClientConn
}

// Close releases the connection.
func (c *apiClient) Close() error { return c.conn.Close() }

// ask makes one call to the controller, rpc with req, and converts its
// answer with conv (not called when the call failed).
func ask[Req, Resp, T any](a *app, rpc func(graygwv1.ControllerClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req, conv func(Resp) (T, error)) (T, error) {
	var out T
	err := a.call(func(ctx context.Context, cl *apiClient) error {
		resp, err := rpc(cl.ControllerClient, ctx, req)
		if err == nil {
			out, err = conv(resp)
		}
		return err
	})
	return out, err
}

// always makes a conversion that cannot fail one for ask.
func always[R, T any](conv func(R) T) func(R) (T, error) {
	return func(r R) (T, error) { return conv(r), nil }
}

// dialOptions say how to reach the controller.
type dialOptions struct {
	Address string // unix:///path, or host:port (tcp, mTLS)
	TLSCert string
	TLSKey  string
	TLSCA   string
	Timeout time.Duration
}

// target parses Address into a network and an address.
func (o dialOptions) target() (network, addr string, err error) {
	switch {
	case strings.HasPrefix(o.Address, "unix://"):
		p := strings.TrimPrefix(o.Address, "unix://")
		if p == "" || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("--controller %q: want unix:///absolute/path", o.Address)
		}
		return "unix", p, nil
	case strings.HasPrefix(o.Address, "/"):
		return "unix", o.Address, nil
	}
	a := strings.TrimPrefix(o.Address, "tcp://")
	if _, err := netip.ParseAddrPort(a); err != nil && !strings.Contains(a, ":") {
		return "", "", fmt.Errorf("--controller %q: want unix:///path or host:port", o.Address)
	}
	if o.TLSCert == "" || o.TLSKey == "" || o.TLSCA == "" {
		return "", "", fmt.Errorf("--controller %s is tcp: give --tls-cert, --tls-key and --tls-ca (the controller requires mutual TLS off the unix socket)", a)
	}
	return "tcp", a, nil
}

// dial connects to the controller: the unix socket without TLS (the server
// authenticates the peer's uid), or tcp with mutual TLS.
func dial(o dialOptions) (*apiClient, error) {
	conn, err := connect(o, true)
	if err != nil {
		return nil, err
	}
	return &apiClient{ControllerClient: graygwv1.NewControllerClient(conn), conn: conn}, nil
}

// connect opens the connection to o.Address; with follow, a call a standby
// replica refuses naming the leader (docs/ha.md) is sent to the leader once,
// and every error is turned into the CLI's (apiError).
func connect(o dialOptions, follow bool) (*grpc.ClientConn, error) {
	network, addr, err := o.target()
	if err != nil {
		return nil, usageErr(err)
	}
	var target string
	var creds credentials.TransportCredentials
	if network == "unix" {
		if _, err := os.Stat(addr); err != nil {
			return nil, fmt.Errorf("controller socket %s: %w (is graygw-controller running? --controller picks another address)", addr, err)
		}
		target, creds = "unix://"+addr, insecure.NewCredentials()
	} else {
		cfg, err := clientTLS(o)
		if err != nil {
			return nil, err
		}
		target, creds = addr, credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if follow {
		mapErr := func(err error) error { return apiError(o.Address, err) }
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return mapErr(invoker(ctx, method, req, reply, cc, opts...))
			}, followLeader(o)),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				s, err := streamer(ctx, desc, cc, method, opts...)
				if err != nil {
					return nil, mapErr(err)
				}
				return errStream{s, mapErr}, nil
			}, followLeaderStream(o)))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", o.Address, err)
	}
	return conn, nil
}

// errStream maps the errors of a stream's messages as apiError does (the end
// of the stream, io.EOF, stays io.EOF).
type errStream struct {
	grpc.ClientStream
	mapErr func(error) error
}

func (s errStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return s.mapErr(err)
}

// leaderTrailer is api/service.LeaderTrailer (not imported: the CLI does not
// link the controller).
const leaderTrailer = "graygw-leader"

// followLeader retries, once, at the leader's address a call that a standby
// controller replica refused with that address in its leaderTrailer trailer.
// The same credentials are used (the replicas share them).
func followLeader(o dialOptions) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var md metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&md))...)
		leaders := md.Get(leaderTrailer)
		if status.Code(err) != codes.Unavailable || len(leaders) == 0 || leaders[0] == o.Address {
			return err
		}
		lo := o
		lo.Address = leaders[0]
		conn, cerr := connect(lo, false)
		if cerr != nil {
			return fmt.Errorf("%w (following the leader at %s: %v)", err, leaders[0], cerr)
		}
		defer conn.Close()
		return conn.Invoke(ctx, method, req, reply, opts...)
	}
}

// followLeaderStream is followLeader for streams (rollout watch): a standby
// refuses a stream at its first message, with the leader's address in the
// trailer; the stream is then opened again at the leader, once, with the
// messages sent so far. A stream that has received a message is not followed:
// what it already showed would be shown again.
func followLeaderStream(o dialOptions) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &followingStream{ClientStream: s, ctx: ctx, desc: desc, method: method, opts: opts, o: o}, nil
	}
}

// followingStream records what is sent until the first message comes back,
// so that the stream can be opened again at the leader.
type followingStream struct {
	grpc.ClientStream
	ctx    context.Context
	desc   *grpc.StreamDesc
	method string
	opts   []grpc.CallOption
	o      dialOptions

	sent     []any
	closed   bool // CloseSend was called
	received bool
	followed *grpc.ClientConn // the leader's connection, once followed
}

func (s *followingStream) SendMsg(m any) error {
	if !s.received {
		s.sent = append(s.sent, m)
	}
	return s.ClientStream.SendMsg(m)
}

func (s *followingStream) CloseSend() error {
	s.closed = true
	return s.ClientStream.CloseSend()
}

func (s *followingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.received = true
		return nil
	}
	if !s.received && s.followed == nil && status.Code(err) == codes.Unavailable {
		if leaders := s.ClientStream.Trailer().Get(leaderTrailer); len(leaders) > 0 && leaders[0] != s.o.Address {
			if ferr := s.follow(leaders[0]); ferr != nil {
				return fmt.Errorf("%w (following the leader at %s: %v)", err, leaders[0], ferr)
			}
			return s.RecvMsg(m)
		}
	}
	if s.followed != nil {
		s.followed.Close() // the stream ended (io.EOF included)
	}
	return err
}

// follow opens the stream again at the leader and sends it what was sent.
func (s *followingStream) follow(addr string) error {
	lo := s.o
	lo.Address = addr
	conn, err := connect(lo, false)
	if err != nil {
		return err
	}
	ns, err := conn.NewStream(s.ctx, s.desc, s.method, s.opts...)
	if err == nil {
		for _, m := range s.sent {
			if err = ns.SendMsg(m); err != nil {
				break
			}
		}
	}
	if err == nil && s.closed {
		err = ns.CloseSend()
	}
	if err != nil {
		conn.Close()
		return err
	}
	s.ClientStream, s.followed = ns, conn
	return nil
}

func clientTLS(o dialOptions) (*tls.Config, error) {
	return tlsfiles.Client(o.TLSCert, o.TLSKey, o.TLSCA, "--tls-cert/--tls-key", "--tls-ca")
}

// apiError turns a gRPC error of the controller at addr into one that says
// what to do, wrapping the sentinel that picks the exit code.
func apiError(addr string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", errRefused, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("controller %s unavailable (not running, draining, or its store without a quorum: retry): %s", addr, st.Message())
	case codes.Aborted:
		return fmt.Errorf("%s (another change got in first: run the command again)", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("controller %s did not answer in time (--timeout): %s", addr, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("controller %s cannot do this: %s", addr, st.Message())
	case codes.NotFound:
		return fmt.Errorf("controller %s: %s", addr, st.Message())
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("controller %s refused this client (%s): check --tls-cert/--tls-key, or the socket's permissions", addr, st.Message())
	}
	return fmt.Errorf("controller %s: %s: %s", addr, st.Code(), st.Message())
}
