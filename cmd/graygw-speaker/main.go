// Command graygw-speaker is the BGP speaker beside one gateway: it announces
// the gateway's VIPs only while the local dataplane serves them, under the
// policy (VIPs, attributes, drains) the controller streams and the speaker
// keeps on its own disk, so the announcements outlive every controller
// (docs/bgp.md, Speakers on the gateways).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/speaker"
)

const usage = `usage: graygw-speaker --config FILE [--metrics ADDR] [--keep-routes-on-exit]

graygw-speaker runs beside one gateway (the graygw-agent's machine, or a
Tofino switch's CPU) and announces the gateway's VIPs by BGP only while its own
dataplane serves them: the P4Runtime target answers, the VIP is in its vip
table with a backend in its default pool, and every interface listed is up
(with an XDP program attached, for the XDP agent). It checks that every
interval (default 100ms) and withdraws at once when any of it fails. Which VIPs,
their attributes and drains come from the controller (bgp.announceFrom:
gateways in the controller's config), streamed and kept in policyFile, so the
speaker keeps announcing with every controller dead.

The config file (YAML):

  gateway: gw1                      # the gateway's name in the intent
  policyFile: /var/lib/graygw/speaker-policy.json
  interval: 100ms                   # observation interval
  startWait: 10s                    # wait for a first policy when none is on disk
  controllers:
    addresses: [unix:///run/graygw/controller.sock]   # or host:port with mutual TLS
    tls_cert: ""                    # tls_cert, tls_key, tls_ca for host:port
  dataplane:
    p4runtime: unix:///run/graygw-agent/p4rt.sock   # the agent's default; or host:port (BMv2, switchd)
    deviceID: 1
    interfaces: [p1, p2]
    xdp: true
    timeout: 500ms                  # one observation's reads
    slowGrace: 1s                   # reads timing out this long: down
  bgp:                              # controller/bgp's Config (docs/bgp.md)
    asn: 65001
    routerID: 10.1.0.1
    gracefulRestart: {enabled: true, restartTime: 120s}
    neighbors: [{address: 10.1.0.10, asn: 65000}]

Signals: the first SIGINT/SIGTERM withdraws every path, then closes the
sessions (with --keep-routes-on-exit it exits without, so graceful-restart
peers keep the routes for the restart time, for an upgrade); a second one
exits at once.

--metrics ADDR serves /metrics (graygw_bgp_*) and /status (JSON: policy,
last observation, BGP sessions and paths).
`

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stderr, sigs))
}

func run(args []string, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("graygw-speaker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "config file")
	metrics := fs.String("metrics", "", "listen address of /metrics and /status")
	keep := fs.Bool("keep-routes-on-exit", false, "exit without withdrawing")
	if err := fs.Parse(args); err != nil || *cfgPath == "" || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "graygw-speaker: %v\n%s", or(err, errors.New("--config is required")), usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "graygw-speaker: %v\n", err)
		return 2
	}
	if *keep && !cfg.BGP.GracefulRestart.Enabled {
		fmt.Fprintln(stderr, "graygw-speaker: --keep-routes-on-exit needs bgp.gracefulRestart.enabled")
		return 2
	}
	s, err := speaker.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "graygw-speaker: %v\n", err)
		return 2
	}
	if *metrics != "" {
		if err := serveMetrics(*metrics, s); err != nil {
			fmt.Fprintf(stderr, "graygw-speaker: --metrics: %v\n", err)
			return 1
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case err := <-done:
		log.Error("speaker: stopped", "err", err)
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.Stop(sctx, true)
		return 1
	case sig := <-sigs:
		log.Info("speaker: signal; stopping", "signal", sig.String(), "withdraw", !*keep)
	}
	cancel()
	<-done
	if *keep {
		// No Stop: GoBGP's Stop always sends a NOTIFICATION, after which the
		// peers drop the routes; exiting closes the sessions silently.
		return 0
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(sctx, true) }()
	select {
	case err := <-stopped:
		if err != nil {
			log.Warn("speaker: withdrawing", "err", err)
			return 1
		}
		log.Info("speaker: paths withdrawn, sessions closed")
		return 0
	case <-sigs:
		return 1
	}
}

func loadConfig(path string) (speaker.Config, error) {
	var cfg speaker.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func serveMetrics(addr string, s *speaker.Speaker) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.BGP().Collector()); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status(ctx))
	})
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go http.Serve(lis, mux)
	return nil
}

func or(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
