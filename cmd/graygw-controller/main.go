// Command graygw-controller is the graygw controller: it keeps the gray gateways
// of the intent programmed over P4Runtime (package controller/engine), keeps the
// intent and its history (controller/store), and serves the API the graygw CLI
// uses (api/graygw/v1, package api/service).
//
// Run it with --help for usage; docs/controller.md has the details.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/failover"
	"github.com/graygw/graygw/controller/health"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/controller/metrics"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
	"github.com/graygw/graygw/internal/startup"
	"github.com/graygw/graygw/internal/tlsfiles"
	"github.com/graygw/graygw/internal/vipindex"
	"github.com/graygw/graygw/p4src"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs, nil))
}

// listening reports where a started controller serves (for tests).
type listening struct {
	Unix    string
	TCP     net.Addr
	Metrics net.Addr
}

// run is the daemon. Exit codes: 0 clean exit (after a drain, or --check), 1 a
// failure, 2 bad usage.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal, ready chan<- listening) int {
	c, log, code, ok := startup.Daemon("graygw-controller", args, stderr, parseConfig, newLogger)
	if !ok {
		return code
	}
	if c.check {
		if err := check(c, stdout); err != nil {
			fmt.Fprintf(stderr, "graygw-controller: %v\n", err)
			return 1
		}
		return 0
	}
	if c.migrateTo != "" {
		if err := migrateStore(c, stdout); err != nil {
			fmt.Fprintf(stderr, "graygw-controller: --migrate-store-to: %v\n", err)
			return 1
		}
		return 0
	}
	if err := serve(c, log, sigs, ready); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.Log.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func loadP4Info(c *config) (*p4info.Info, error) {
	text := p4src.P4InfoText
	if c.P4Runtime.P4Info != "" {
		var err error
		if text, err = os.ReadFile(c.P4Runtime.P4Info); err != nil {
			return nil, fmt.Errorf("p4info: %w", err)
		}
	}
	info, err := p4info.Load(text)
	if err != nil {
		return nil, fmt.Errorf("p4info: %w", err)
	}
	return info, nil
}

// check validates the config's files and the intent file, and says what the
// intent compiles to.
func check(c *config, out io.Writer) error {
	info, err := loadP4Info(c)
	if err != nil {
		return err
	}
	if _, err := deviceConfigs(c); err != nil {
		return err
	}
	infos, err := p4infoFiles(c, info)
	if err != nil {
		return err
	}
	for _, gw := range slices.Sorted(maps.Keys(infos)) {
		fmt.Fprintf(out, "p4info: gateway %s: %s (%s), compatible\n", gw, c.P4Runtime.P4InfoFiles[gw], or(infos[gw].P4Info().GetPkgInfo().GetArch(), "no arch"))
	}
	if _, err := p4runtimeTLS(c); err != nil {
		return err
	}
	if c.Listen.TCP != "" {
		if _, err := service.ServerTLS(c.Listen.TLSCert, c.Listen.TLSKey, c.Listen.TLSClientCA); err != nil {
			return err
		}
	}
	if b := c.BGP; b != nil && b.gatewaysAnnounce() {
		fmt.Fprintf(out, "bgp: announced by the speakers on the gateways (graygw-speaker), %d VIPs with attributes\n", len(b.VIPs))
	} else if b != nil {
		bc := b.Config.WithDefaults()
		gr := "off"
		if bc.GracefulRestart.Enabled {
			gr = fmt.Sprintf("on (restart time %s)", bc.GracefulRestart.RestartTime)
		}
		fmt.Fprintf(out, "bgp: AS %d, router id %s, %d neighbors, graceful restart %s, health check %s\n",
			bc.ASN, bc.RouterID, len(bc.Neighbors), gr, or(b.HealthCheck, announce.HealthReconciled))
	}
	if h := c.Health; h != nil && h.Enabled {
		hc := h.config().WithDefaults()
		what := "ICMP echo"
		if hc.Mode == health.ModeTCP {
			what = fmt.Sprintf("TCP connect to port %d", hc.Port)
		}
		fmt.Fprintf(out, "health: %s every %s (timeout %s), down after %d failures, up after %d successes\n",
			what, hc.Interval, hc.Timeout, hc.Fall, hc.Rise)
	} else {
		fmt.Fprintln(out, "health: off (backends count as healthy while their weight is above 0)")
	}
	if p := c.Probe; p != nil {
		if p.NetNS != "" {
			path := p.NetNS
			if !strings.Contains(path, "/") {
				path = "/var/run/netns/" + path
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("probe.netns: %w", err)
			}
		}
		fmt.Fprintf(out, "probe host: namespace %q, interface %q\n", or(p.NetNS, "(the controller's)"), or(p.Interface, "(the route's)"))
	}
	fmt.Fprintln(out, "config: OK")
	if c.Intent == "" {
		return nil
	}
	in, err := intent.LoadFile(c.Intent)
	if err != nil {
		return fmt.Errorf("intent %s:\n%w", c.Intent, err)
	}
	if c.BGP != nil {
		for name := range c.BGP.VIPs {
			if _, ok := in.VIP(name); !ok {
				fmt.Fprintf(out, "warning: bgp.vips.%s: no VIP of that name in the intent (its attributes are unused)\n", name)
			}
		}
	}
	if err := unknownGateways(c, in); err != nil {
		return err
	}
	res, err := compile.Compile(in, nil)
	if err != nil {
		return fmt.Errorf("intent %s: %w", c.Intent, err)
	}
	codec := engine.NewCodec(info)
	for _, g := range res.Gateways {
		for i := range g.Entries {
			if _, err := codec.ToP4(&g.Entries[i]); err != nil {
				return fmt.Errorf("intent %s: gateway %s: %w", c.Intent, g.Name, err)
			}
		}
		fmt.Fprintf(out, "intent: gateway %s (%s, device %d): %d entries\n", g.Name, g.P4Runtime, g.DeviceID, len(g.Entries))
	}
	fmt.Fprintf(out, "intent: OK: %d gateways, %d VIPs, %d pools, %d tenants, %d rules\n",
		len(in.Gateways), len(in.VIPs), len(in.Pools), len(in.Tenants), len(in.Rules))
	return nil
}

// unknownGateways fails when a key of p4runtime.p4info_files or
// device_configs names no gateway of in: a typo there would leave the gateway
// meant (a Tofino) with p4runtime.p4info and no device config, unnoticed.
func unknownGateways(c *config, in *intent.Intent) error {
	var bad []string
	for _, k := range []struct {
		key   string
		files map[string]string
	}{{"p4info_files", c.P4Runtime.P4InfoFiles}, {"device_configs", c.P4Runtime.DeviceConfigs}} {
		for _, gw := range slices.Sorted(maps.Keys(k.files)) {
			if _, ok := in.Gateway(gw); !ok {
				bad = append(bad, fmt.Sprintf("p4runtime.%s: gateway %s is not in the intent", k.key, gw))
			}
		}
	}
	if bad == nil {
		return nil
	}
	names := make([]string, len(in.Gateways))
	for i, g := range in.Gateways {
		names[i] = g.Name
	}
	return fmt.Errorf("%s (intent %s has gateways %s); a misspelt gateway would run p4runtime.p4info",
		strings.Join(bad, "; "), c.Intent, strings.Join(names, ", "))
}

// p4infoFiles loads p4runtime.p4info_files (text or binary P4Info) and checks
// each against base, the P4Info the controller encodes entries with.
func p4infoFiles(c *config, base *p4info.Info) (map[string]*p4info.Info, error) {
	out := map[string]*p4info.Info{}
	for _, gw := range slices.Sorted(maps.Keys(c.P4Runtime.P4InfoFiles)) {
		path := c.P4Runtime.P4InfoFiles[gw]
		fail := func(err error) error {
			return fmt.Errorf("p4runtime.p4info_files: gateway %s: %s: %w", gw, path, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fail(err)
		}
		pi, err := p4info.Parse(b)
		if err != nil {
			var bin p4configv1.P4Info
			if berr := proto.Unmarshal(b, &bin); berr != nil {
				return nil, fail(fmt.Errorf("neither a text nor a binary P4Info: %w", err))
			}
			pi = &bin
		}
		info, err := p4info.New(pi)
		if err != nil {
			return nil, fail(err)
		}
		if err := engine.CheckP4Info(base, info); err != nil {
			return nil, fail(err)
		}
		out[gw] = info
	}
	return out, nil
}

func deviceConfigs(c *config) (map[string][]byte, error) {
	out := map[string][]byte{}
	for gw, path := range c.P4Runtime.DeviceConfigs {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("device config of gateway %s: %w", gw, err)
		}
		out[gw] = b
	}
	return out, nil
}

// p4runtimeTLS returns the credentials toward the gateways (nil: plaintext).
func p4runtimeTLS(c *config) (credentials.TransportCredentials, error) {
	p := c.P4Runtime
	if p.TLSCA == "" {
		return nil, nil
	}
	pool, err := tlsfiles.CertPool(p.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("p4runtime TLS CA: %w", err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: p.ServerName, MinVersion: tls.VersionTLS12}
	if p.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(p.TLSCert, p.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("p4runtime client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

func serve(c *config, log *slog.Logger, sigs <-chan os.Signal, ready chan<- listening) error {
	info, err := loadP4Info(c)
	if err != nil {
		return err
	}
	devcfgs, err := deviceConfigs(c)
	if err != nil {
		return err
	}
	infos, err := p4infoFiles(c, info)
	if err != nil {
		return err
	}
	ptls, err := p4runtimeTLS(c)
	if err != nil {
		return err
	}
	st, err := c.Store.open(context.Background(), store.Retention{Versions: c.StoreRetention.Versions,
		Age: time.Duration(c.StoreRetention.Age)})
	if errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("%w\nThe controller does not start on a store it cannot read whole. Restore the file from a "+
			"backup; or, to start over, move it aside and restart with --reseed (the gateways keep forwarding meanwhile; "+
			"docs/controller.md, \"Store\")", err)
	}
	if err != nil {
		return err
	}
	log.Info("store open", "store", c.Store.String())
	defer st.Close()
	met := metrics.New()
	ecfg := engine.Config{P4Info: info, ElectionID: c.ElectionID, Role: c.Role, TLS: ptls,
		Interval: time.Duration(c.Interval), Timeout: time.Duration(c.Timeout), Store: st, Logger: log, Observer: met,
		DeviceConfig:  func(gw string) []byte { return devcfgs[gw] },
		MaxGrayMasks:  func(gw string) int { return xdpBound(devcfgs, gw, dataplane.XDPLimits().MaxMasks) },
		MaxGrayMasks6: func(gw string) int { return xdpBound(devcfgs, gw, dataplane.XDPLimits().MaxMasks6) },
		VIPWindow:     func(gw string) int { return xdpBound(devcfgs, gw, vipindex.Probe) },
		P4InfoFor:     func(gw string) *p4info.Info { return infos[gw] }}
	if c.HA != nil {
		// A follower's engine stands by (warm: sessions below the leader's
		// id, nothing written) until elected.
		ecfg.Standby, ecfg.ElectionID = true, standbyElectionID(haID(c))
	}
	eng, err := engine.New(ecfg)
	if err != nil {
		return err
	}
	// With ha:, only the elected leader goes on; its P4Runtime election id's
	// high bits are its term, so the gateways fence a deposed leader.
	var lead *leader.Leadership
	leadLost := make(chan struct{})
	var socks *apiSockets // with ha: the API's sockets, opened before the campaign
	if c.HA != nil {
		if socks, err = openAPISockets(c); err != nil {
			eng.Close(context.Background())
			return err
		}
		defer socks.Close()
		// Health reports start once the standby API listens (they say
		// whether it answers) and go on while leading.
		hctx, stopHealth := context.WithCancel(context.Background())
		reported := make(chan struct{})
		startReports := sync.OnceFunc(func() {
			go func() {
				defer close(reported)
				reportHealth(hctx, c, st.(*etcdstore.Store), eng, log) // ha: is refused without etcd
			}()
		})
		defer func() {
			stopHealth()
			startReports() // a no-op if they ran: closes reported either way
			<-reported
		}()
		if lead, err = campaign(c, socks, st, eng, log, sigs, startReports); err != nil || lead == nil {
			eng.Close(context.Background())
			return err
		}
		defer func() {
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer rcancel()
			_ = lead.Resign(rctx) // the next replica is elected at once
		}()
		eng.Lead(lead.ElectionID(), c.ElectionID)
		go func() { <-lead.Done(); close(leadLost) }()
	}
	if err := guardSeed(c, st, ptls, log); err != nil {
		eng.Close(context.Background())
		return err
	}

	engineClosed := false
	defer func() {
		if !engineClosed {
			eng.Close(context.Background())
		}
	}()
	scfg := service.Config{Store: st, Engine: eng, Logger: log}
	if lead != nil {
		scfg.Replicas = replicasOf(st, haID(c), measureHealth(c, st.(*etcdstore.Store), eng))
	}
	var checker *health.Checker
	var foMetrics *failover.Metrics
	if c.Health != nil && c.Health.Enabled {
		if checker, err = health.New(c.Health.config(), health.WithLogger(log)); err != nil {
			return err
		}
		defer checker.Close()
		fctx, stopFollow := context.WithCancel(context.Background())
		defer stopFollow()
		go checker.Follow(fctx, eng)
		scfg.BackendDown = func(a netip.Addr) (bool, string) {
			st, ok := checker.Status(a)
			return ok && !st.Up(), st.Reason
		}
		// Health failover in the pools that ask for it (health_failover).
		foMetrics = failover.NewMetrics()
		go failover.Run(fctx, failover.Options{Config: c.Health.failover(), Target: eng, Logger: log, Metrics: foMetrics, History: st,
			Down: func() map[netip.Addr]bool {
				down := map[netip.Addr]bool{}
				for _, st := range checker.Statuses() {
					if !st.Up() {
						down[st.Addr] = true
					}
				}
				return down
			}})
		hc := checker.Config()
		log.Info("backend health checking", "mode", hc.Mode, "interval", hc.Interval.String(), "timeout", hc.Timeout.String(),
			"rise", hc.Rise, "fall", hc.Fall)
	}
	var speaker *bgp.Speaker
	if c.BGP != nil {
		var announcer announce.Speaker
		if c.BGP.gatewaysAnnounce() {
			announcer = announce.NewGatewaySpeakers()
		} else {
			if speaker, err = bgp.New(c.BGP.Config, bgp.WithLogger(log)); err != nil {
				return err
			}
			announcer = speaker
		}
		scfg.BGP = &announce.Config{Speaker: announcer, VIPs: c.BGP.VIPs, HealthCheck: c.BGP.HealthCheck,
			StartWait: time.Duration(c.BGP.StartWait)}
		if checker != nil {
			scfg.BGP.Backends = checker
		}
	}
	if c.Probe != nil {
		scfg.Probe = c.Probe.host()
	}
	svc, err := service.New(scfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		// Keep serving: the operator fixes it with an Apply.
		log.Error("the stored intent is not in force; apply a valid one", "err", err)
	}
	if c.Intent != "" {
		doc, err := os.ReadFile(c.Intent)
		if err != nil {
			return fmt.Errorf("intent: %w", err)
		}
		seeded, err := svc.Seed(ctx, doc, "graygw-controller --intent "+c.Intent)
		if err != nil {
			return fmt.Errorf("intent %s: %w", c.Intent, err)
		}
		if seeded {
			log.Info("store seeded", "intent", c.Intent)
		} else {
			log.Warn("the store already holds an intent: --intent ignored (use graygw apply to change it)", "intent", c.Intent)
		}
	}

	var servers []*grpc.Server
	served := make(chan error, 3)
	var where listening
	if c.Listen.Unix != "" {
		var lis net.Listener
		if socks != nil {
			lis = socks.unix.listener() // the standby API's socket: it never stopped accepting
		} else if lis, err = service.ListenUnix(c.Listen.Unix); err != nil {
			return err
		}
		gs := svc.NewServer(service.UnixCredentials())
		servers = append(servers, gs)
		go func() { served <- gs.Serve(lis) }()
		where.Unix = c.Listen.Unix
		log.Info("API listening", "unix", c.Listen.Unix)
	}
	if c.Listen.TCP != "" {
		tcfg, err := service.ServerTLS(c.Listen.TLSCert, c.Listen.TLSKey, c.Listen.TLSClientCA)
		if err != nil {
			return err
		}
		var lis net.Listener
		if socks != nil {
			lis = socks.tcp.listener()
		} else if lis, err = net.Listen("tcp", c.Listen.TCP); err != nil {
			return fmt.Errorf("listen %s: %w", c.Listen.TCP, err)
		}
		gs := svc.NewServer(credentials.NewTLS(tcfg))
		servers = append(servers, gs)
		go func() { served <- gs.Serve(lis) }()
		where.TCP = lis.Addr()
		log.Info("API listening", "tcp", lis.Addr().String(), "tls", "mutual")
	}
	var hs *http.Server
	if c.Metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if err := met.Register(reg, eng, 0); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if err := reg.Register(svc.RolloutCollector()); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		if speaker != nil {
			if err := reg.Register(speaker.Collector()); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
		}
		if checker != nil {
			if err := reg.Register(checker.Collector()); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
			for _, col := range foMetrics.Collectors() {
				if err := reg.Register(col); err != nil {
					return fmt.Errorf("metrics: %w", err)
				}
			}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		lis, err := net.Listen("tcp", c.Metrics)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", c.Metrics, err)
		}
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("metrics: %w", err)
			}
		}()
		where.Metrics = lis.Addr()
		log.Info("metrics listening", "addr", lis.Addr().String())
	}
	// BGP starts once the gateways are observed (at most bgp.startWait), while
	// the API already answers.
	bgpCtx, stopBGPStart := context.WithCancel(context.Background())
	defer stopBGPStart()
	bgpStarted := make(chan error, 1)
	if c.BGP != nil {
		if c.keepRoutes && speaker != nil {
			log.Info("bgp: --keep-routes-on-exit: the first signal exits without withdrawing the VIPs; the peers keep them (stale) for the graceful-restart time",
				"restartTime", speaker.Config().GracefulRestart.RestartTime.String())
		}
		go func() { bgpStarted <- svc.StartBGP(bgpCtx) }()
	}
	if ready != nil {
		ready <- where
	}

	for waiting := true; waiting; {
		select {
		case err := <-served:
			return fmt.Errorf("server: %w", err)
		case err := <-bgpStarted:
			if err != nil {
				log.Error("bgp: the speaker did not start; draining", "err", err)
				err = drainAndFail(svc, eng, servers, hs, fmt.Errorf("bgp: %w", err))
				engineClosed = true
				return err
			}
			continue
		case s := <-sigs:
			log.Info("draining: API changes refused, finishing the reconcile passes in flight; a second signal exits at once", "signal", s.String())
		case <-leadLost:
			// Stop writing now, without draining: another replica may be
			// elected once the lease runs out.
			log.Error("ha: leadership lost: stopping at once", "err", lead.Err())
			cctx, ccancel := context.WithCancel(context.Background())
			ccancel()
			eng.Close(cctx)
			engineClosed = true
			for _, gs := range servers {
				gs.Stop()
			}
			return fmt.Errorf("ha: %w", lead.Err())
		}
		waiting = false
	}
	stopBGPStart()
	dctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.DrainTimeout))
	defer cancel()
	drained := make(chan error, 1)
	go func() {
		svc.Drain()
		if c.BGP != nil {
			if c.keepRoutes {
				svc.StopBGP(dctx, false)
				log.Info("bgp: keeping the routes: the process exits without closing the BGP sessions cleanly, and the peers hold the VIPs for the graceful-restart time")
			} else {
				bctx, bcancel := context.WithTimeout(dctx, 5*time.Second)
				if err := svc.StopBGP(bctx, true); err != nil {
					log.Warn("bgp: withdrawing the VIPs", "err", err)
				} else {
					log.Info("bgp: VIPs withdrawn and sessions closed")
				}
				bcancel()
			}
		}
		err := eng.Close(dctx)
		var wg sync.WaitGroup
		for _, gs := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); gs.GracefulStop() }()
		}
		if hs != nil {
			hs.Shutdown(dctx)
		}
		wg.Wait()
		drained <- err
	}()
	select {
	case err := <-drained:
		engineClosed = true
		if err != nil {
			return err
		}
		log.Info("drained; exiting (the gateways keep forwarding with what they hold)")
		return nil
	case s := <-sigs:
		log.Warn("second signal: exiting now", "signal", s.String())
	case <-dctx.Done():
		log.Warn("drain timed out: exiting now", "timeout", time.Duration(c.DrainTimeout).String())
	}
	for _, gs := range servers {
		gs.Stop()
	}
	engineClosed = true // not waited for: exiting
	return errors.New("stopped before the drain finished")
}

// drainAndFail stops everything after a failure once serving (BGP did not
// start) and returns err.
func drainAndFail(svc *service.Service, eng *engine.Engine, servers []*grpc.Server, hs *http.Server, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc.Drain()
	svc.StopBGP(ctx, true)
	for _, gs := range servers {
		gs.Stop()
	}
	if hs != nil {
		hs.Shutdown(ctx)
	}
	eng.Close(ctx)
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// guardSeed refuses to seed an empty store from --intent when the gateways hold
// entries the store does not explain (unexplainedState), unless --reseed.
func guardSeed(c *config, st store.Store, creds credentials.TransportCredentials, log *slog.Logger) error {
	if c.Intent == "" {
		return nil
	}
	ctx := context.Background()
	if _, err := st.Current(ctx); !errors.Is(err, store.ErrNotFound) {
		return nil // holds an intent (or fails, and the service says so)
	}
	doc, err := os.ReadFile(c.Intent)
	if err != nil {
		return fmt.Errorf("intent: %w", err)
	}
	holding, err := unexplainedState(ctx, doc, creds, log)
	if err != nil {
		return fmt.Errorf("intent %s: %w", c.Intent, err)
	}
	if len(holding) == 0 {
		return nil
	}
	if c.reseed {
		log.Warn("--reseed: seeding an empty store although the gateways hold entries; they are replaced by --intent",
			"store", c.Store, "gateways", holding)
		return nil
	}
	return fmt.Errorf("the store %s holds no intent, but %s: a lost or truncated store would be re-seeded from %s "+
		"and the live state (gray rules included) replaced. Restore the store from a backup; or, if starting over "+
		"from %s is what you want, restart with --reseed", c.Store, strings.Join(holding, "; "), c.Intent, c.Intent)
}

// xdpBound is a bound of the XDP agent for gateway gw: a gateway without a
// device config is an XDP agent (BMv2 and Tofino need one), whose bound is
// xdp (its tuple-space search's distinct masks, dataplane.XDPLimits().MaxMasks,
// MaxMasks6 for gray_rules_v6; the cells of a vip_index window,
// vipindex.Probe); the others have no such bound (0).
func xdpBound(devcfgs map[string][]byte, gw string, xdp int) int {
	if len(devcfgs[gw]) > 0 {
		return 0
	}
	return xdp
}
