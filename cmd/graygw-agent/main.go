// Command graygw-agent is the graygw XDP gateway's P4Runtime agent: it loads the
// graygw XDP program, attaches it to the gateway's interfaces and serves the
// P4Runtime gRPC service for the committed graygw P4Info, so the controller
// programs an XDP gateway exactly as it programs BMv2 or Tofino.
//
// Run it with --help for usage; docs/agent.md has the details.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/internal/startup"
	"github.com/graygw/graygw/internal/tlsfiles"
	"github.com/graygw/graygw/p4src"
)

const usageText = `graygw-agent: the P4Runtime agent of a graygw XDP gateway.

It loads the graygw XDP program (bpf/), attaches it to the interfaces given with
--port, and serves P4Runtime 1.5.0 for the committed graygw P4Info
(p4src/graygw.p4info.txtpb). The controller then programs this gateway exactly as
a BMv2 or Tofino one: arbitrate on StreamChannel, SetForwardingPipelineConfig with
the same P4Info, then Write and Read table entries and counters.

Usage:
  graygw-agent --port N=IFNAME [--port N=IFNAME ...] [flags]

Ports:
  --port N=IFNAME binds P4 port N (the 'port' parameter of to_backend, 0..511) to
  interface IFNAME and attaches the XDP program to it. A packet sent to the port it
  arrived on leaves with XDP_TX, to another bound port with a redirect; a port
  with no interface drops it (PORT_DOWN). Ports bound by an earlier run and no
  longer given are unbound.

Who may program the gateway:
  Local listeners identify every client by its uid before gRPC reads a byte: a
  unix socket (made 0660) by its peer credentials (SO_PEERCRED), loopback TCP (the
  BMv2's 127.0.0.1:9559) by the uid owning the client socket in the kernel's
  socket table. Root, the agent's own uid and --allow-uid are accepted; anyone
  else is disconnected and logged. A non-loopback --addr needs mutual TLS
  (--tls-cert, --tls-key, --tls-client-ca); plaintext there is refused unless
  forced with --insecure-listener. Writes and pipeline changes are accepted only
  on the connection that holds the primary StreamChannel: quoting the primary's
  election id from elsewhere is PERMISSION_DENIED. Requests are limited to the
  size of the largest legitimate batch (every table full), computed from the
  P4Info. docs/security.md has the threat model.

Restart without loss:
  Maps and the XDP links are pinned under --pin-dir, so the program keeps
  forwarding while no agent runs, and a restarted agent swaps itself in with no
  moment without a program. The agent's P4Runtime view (entries, pipeline config
  and cookie, highest election ids) is journaled under --state-dir before every
  change reaches the maps; a restarted agent replays it, checks the maps against
  it, and answers Read with exactly what was written before. A reboot (new kernel
  boot id) empties both, as a full P4Runtime restart should.

Signals:
  The first SIGINT or SIGTERM drains: writes are refused (UNAVAILABLE), the write in
  flight finishes, the journal is compacted, streams are closed and the process
  exits; the XDP program stays attached and forwarding. A second signal exits at
  once.

Examples:
  # Two ports, P4Runtime on the default unix socket (the controller on this host
  # uses p4runtime: unix:///run/graygw-agent/p4rt.sock), default pins and state
  graygw-agent --port 1=eth1 --port 2=eth2

  # On BMv2's port on loopback instead (clients still identified by uid)
  graygw-agent --port 1=eth1 --port 2=eth2 --addr 127.0.0.1:9559

  # Reachable from the controller host, TLS with client certificates
  graygw-agent --port 1=eth1 --addr 0.0.0.0:9559 \
      --tls-cert agent.crt --tls-key agent.key --tls-client-ca controllers-ca.crt

  # Try the P4Runtime API without root or NICs (nothing is forwarded)
  graygw-agent --dataplane memory --state-dir /tmp/graygw-agent --addr unix:///tmp/p4rt.sock

  # Pins left by an incompatible program version: start from empty maps
  # (the journal is replayed into them)
  graygw-agent --port 1=eth1 --repin

  # The journal is corrupt (the agent refused to start and said where): keep a
  # copy of the state dir, then move the journal aside and start without it
  graygw-agent --port 1=eth1 --reset-journal

  # Take the gateway out: detach from the ports and exit
  graygw-agent --port 1=eth1 --detach

Flags:
`

// portFlag collects --port N=IFNAME.
type portFlag map[uint16]string

// String implements flag.Value.
func (p portFlag) String() string {
	var parts []string
	for n, ifname := range p {
		parts = append(parts, fmt.Sprintf("%d=%s", n, ifname))
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value: one N=IFNAME.
func (p portFlag) Set(s string) error {
	n, ifname, ok := strings.Cut(s, "=")
	if !ok || ifname == "" {
		return fmt.Errorf("want N=IFNAME (e.g. 1=eth1), got %q", s)
	}
	v, err := strconv.ParseUint(n, 10, 16)
	if err != nil || v >= 512 {
		return fmt.Errorf("port %q: want a number 0..511 (P4 ports are 9 bits)", n)
	}
	if old, dup := p[uint16(v)]; dup {
		return fmt.Errorf("port %d given twice (%s and %s)", v, old, ifname)
	}
	for other, name := range p {
		if name == ifname {
			return fmt.Errorf("interface %s given for ports %d and %d", ifname, other, v)
		}
	}
	p[uint16(v)] = ifname
	return nil
}

// DefaultAddr is where the agent serves P4Runtime by default: a unix socket,
// protected by its file mode and by the peer's credentials.
const DefaultAddr = "unix:///run/graygw-agent/p4rt.sock"

// config is the parsed command line.
type config struct {
	ports        portFlag
	pinDir       string
	stateDir     string
	addr         string
	deviceID     uint64
	tlsCert      string
	tlsKey       string
	tlsClientCA  string
	xdpMode      string
	dataplane    string
	repin        bool
	detach       bool
	resetJournal bool
	resetEIDs    bool
	allowUIDs    uidList
	insecure     bool
	logLevel     string
	logFormat    string
	drainTimeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{ports: portFlag{}}
	fs := flag.NewFlagSet("graygw-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.Var(c.ports, "port", "bind P4 port N to interface IFNAME and attach XDP to it: `N=IFNAME` (repeat for each port)")
	fs.StringVar(&c.pinDir, "pin-dir", defaultPinDir, "bpffs `directory` where maps and XDP links are pinned")
	fs.StringVar(&c.stateDir, "state-dir", "/var/lib/graygw-agent", "`directory` of the agent's journal (a regular filesystem: bpffs holds only pins)")
	fs.StringVar(&c.addr, "addr", DefaultAddr, "P4Runtime listen `address`: unix:///path for a Unix socket (its directory is created), or host:port")
	fs.BoolVar(&c.resetEIDs, "reset-election-ids", false, "forget the journaled highest election id of every role (entries kept): the recovery after a rogue client took 2^128-1")
	fs.Var(&c.allowUIDs, "allow-uid", "also accept local P4Runtime clients running as `uid` (root and the agent's own uid always are; repeat)")
	fs.BoolVar(&c.insecure, "insecure-listener", false, "allow --addr on a non-loopback address without mutual TLS (anyone who reaches it can program the gateway)")
	fs.Uint64Var(&c.deviceID, "device-id", server.DefaultDeviceID, "P4Runtime device_id served")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serve TLS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "CA `file` (PEM): require client certificates signed by it")
	fs.StringVar(&c.xdpMode, "xdp-mode", "auto", "XDP attach `mode`: auto (native, else generic), native or generic")
	fs.StringVar(&c.dataplane, "dataplane", "xdp", "`kind`: xdp, or memory (an in-process model: no packets, no root; for trying the API)")
	fs.BoolVar(&c.repin, "repin", false, "remove the pinned maps first (e.g. left by an incompatible program): maps start empty, the journal is replayed into them")
	fs.BoolVar(&c.resetJournal, "reset-journal", false, "move a corrupt journal in --state-dir aside (renamed *.corrupt-TIME, kept) and start without one: the maps keep forwarding until the controller re-programs the agent")
	fs.BoolVar(&c.detach, "detach", false, "detach the XDP program from the --port interfaces, unbind the ports, and exit")
	fs.StringVar(&c.logLevel, "log-level", "info", "`level`: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "`format`: text or json")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "how long the first signal waits for the write in flight and open reads")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args())
	}
	switch {
	case c.dataplane != "xdp" && c.dataplane != "memory":
		return nil, fmt.Errorf("--dataplane %q: want xdp or memory", c.dataplane)
	case c.dataplane == "xdp" && len(c.ports) == 0:
		return nil, errors.New("no --port given: the XDP dataplane needs at least one (e.g. --port 1=eth1), or use --dataplane memory")
	case c.dataplane == "memory" && (len(c.ports) > 0 || c.repin || c.detach):
		return nil, errors.New("--port, --repin and --detach apply to --dataplane xdp only")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case c.tlsClientCA != "" && c.tlsCert == "":
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.xdpMode != "auto" && c.xdpMode != "native" && c.xdpMode != "generic":
		return nil, fmt.Errorf("--xdp-mode %q: want auto, native or generic", c.xdpMode)
	case c.deviceID == 0:
		return nil, errors.New("--device-id 0 is not a valid P4Runtime device id")
	case !localAddr(c.addr) && c.tlsClientCA == "" && !c.insecure:
		return nil, fmt.Errorf("--addr %s is not local and has no mutual TLS: anyone who reaches it could program the gateway. "+
			"Give --tls-cert, --tls-key and --tls-client-ca, listen on loopback or a unix socket, or force it with --insecure-listener", c.addr)
	}
	return c, nil
}

func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", c.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
}

// tlsConfig builds the server TLS config, or nil without --tls-cert.
func tlsConfig(c *config) (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("TLS key pair: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCA != "" {
		pool, err := tlsfiles.CertPool(c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// localAddr reports whether a listen address is a unix socket or loopback TCP:
// the addresses whose clients the agent identifies by their uid.
func localAddr(addr string) bool {
	return strings.HasPrefix(addr, "unix://") || isLoopbackAddr(addr)
}

// listen opens the P4Runtime listener. Local ones (unix socket, loopback TCP)
// accept only allowed uids (peerListener); a unix socket is made 0660.
func listen(c *config, log *slog.Logger) (net.Listener, error) {
	var lis net.Listener
	var err error
	if path, ok := strings.CutPrefix(c.addr, "unix://"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("stale socket %s: %w", path, err)
		}
		if lis, err = net.Listen("unix", path); err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o660); err != nil {
			lis.Close()
			return nil, err
		}
	} else if lis, err = net.Listen("tcp", c.addr); err != nil {
		return nil, err
	}
	if localAddr(c.addr) {
		return newPeerListener(lis, c.allowUIDs, log), nil
	}
	if c.tlsClientCA == "" {
		log.Warn("INSECURE: P4Runtime on a non-loopback address without mutual TLS (--insecure-listener): "+
			"anyone who reaches it can program this gateway", "addr", c.addr)
	}
	return lis, nil
}

// opened is a dataplane ready for the server, and what closes it.
type opened struct {
	dp         dataplane.Dataplane
	generation string
	close      func() error
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stderr, sigs, nil))
}

// run is the daemon; ready (if not nil) receives the listen address once serving.
func run(args []string, stderr io.Writer, sigs <-chan os.Signal, ready chan<- net.Addr) int {
	c, log, code, ok := startup.Daemon("graygw-agent", args, stderr, parseFlags, newLogger)
	if !ok {
		return code
	}
	if err := serve(c, log, sigs, ready); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func serve(c *config, log *slog.Logger, sigs <-chan os.Signal, ready chan<- net.Addr) error {
	info, err := p4info.Load(p4src.P4InfoText)
	if err != nil {
		return fmt.Errorf("committed P4Info: %w", err)
	}
	var dp *opened
	if c.dataplane == "memory" {
		dp = &opened{dp: dataplane.NewMemory(dataplane.Limits{}),
			generation: fmt.Sprintf("memory:%d:%d", os.Getpid(), time.Now().UnixNano()), close: func() error { return nil }}
		log.Warn("memory dataplane: nothing is forwarded, and state dies with the process")
	} else {
		if c.detach {
			return detachXDP(c, log)
		}
		if dp, err = openXDP(c, log); err != nil {
			return err
		}
	}
	defer func() {
		if err := dp.close(); err != nil {
			log.Error("closing the dataplane", "err", err)
		}
	}()
	if c.resetJournal {
		moved, err := journal.SetAside(c.stateDir, time.Now())
		if err != nil {
			return err
		}
		log.Warn("journal set aside: starting without one; the controller re-programs this agent", "moved", moved)
	}
	srv, err := server.New(server.Config{DeviceID: c.deviceID, P4Info: info, Dataplane: dp.dp,
		StateDir: c.stateDir, Generation: dp.generation, Logger: log, ResetElectionIDs: c.resetEIDs})
	if errors.Is(err, journal.ErrCorrupt) {
		return fmt.Errorf("%w\nThe agent refuses to start on a journal it cannot trust: replaying part of it would roll the "+
			"dataplane back to an older state. The pinned maps are untouched and keep forwarding. Keep a copy of %s, then "+
			"recover with the same command line plus --reset-journal (the journal is moved aside and the controller "+
			"re-programs the agent; docs/agent.md, \"Corrupt journal\")", err, c.stateDir)
	}
	if err != nil {
		return err
	}
	defer srv.Close()

	tcfg, err := tlsConfig(c)
	if err != nil {
		return err
	}
	opts := srv.GRPCOptions()
	if tcfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tcfg)))
	}
	gs := grpc.NewServer(opts...)
	p4v1.RegisterP4RuntimeServer(gs, srv)
	lis, err := listen(c, log)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	log.Info("serving P4Runtime", "addr", lis.Addr().String(), "tls", tcfg != nil,
		"client_certs", c.tlsClientCA != "", "device_id", c.deviceID, "state_dir", c.stateDir)
	if ready != nil {
		ready <- lis.Addr()
	}

	select {
	case err := <-served:
		return fmt.Errorf("gRPC server: %w", err)
	case s := <-sigs:
		log.Info("draining: writes refused, finishing the write in flight; a second signal exits at once", "signal", s.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.drainTimeout)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		if err := srv.Drain(ctx); err != nil {
			log.Error("drain", "err", err)
		}
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		log.Info("drained; exiting (XDP stays attached and forwarding)")
		return nil
	case s := <-sigs:
		log.Warn("second signal: exiting now", "signal", s.String())
	case <-ctx.Done():
		log.Warn("drain timed out: exiting now", "timeout", c.drainTimeout)
	}
	gs.Stop()
	return errors.New("stopped before the drain finished")
}
