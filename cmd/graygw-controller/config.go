package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/failover"
	"github.com/graygw/graygw/controller/health"
	"github.com/graygw/graygw/controller/probe"
)

// Duration is a time.Duration written as in Go ("30s", "2m") in the config file.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s, 2m): %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// config is the controller's configuration: the file (--config), then the flags
// given on the command line, over the defaults.
type config struct {
	// Store holds the intent versions and the history: a bbolt file, or an
	// etcd cluster (storeConfig).
	Store storeConfig `yaml:"store"`
	// StoreRetention bounds the intent versions kept (the current one always is).
	StoreRetention struct {
		Versions int      `yaml:"versions"`
		Age      Duration `yaml:"age"`
	} `yaml:"store_retention"`
	// Intent is an intent document to seed an empty store with.
	Intent string `yaml:"intent"`
	// ElectionID is this controller's P4Runtime election id.
	ElectionID uint64 `yaml:"election_id"`
	// Role is the P4Runtime role ("" = the default role).
	Role string `yaml:"role"`
	// Interval between periodic reconcile passes; Timeout bounds one pass.
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// DrainTimeout bounds the drain after the first signal.
	DrainTimeout Duration `yaml:"drain_timeout"`
	Listen       struct {
		// Unix is the API socket ("" or "none" disables it).
		Unix string `yaml:"unix"`
		// TCP is an API host:port, served with mutual TLS only.
		TCP         string `yaml:"tcp"`
		TLSCert     string `yaml:"tls_cert"`
		TLSKey      string `yaml:"tls_key"`
		TLSClientCA string `yaml:"tls_client_ca"`
	} `yaml:"listen"`
	// Metrics is the Prometheus listen address ("" disables it).
	Metrics string `yaml:"metrics"`
	Log     struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	P4Runtime struct {
		// P4Info is a text P4Info file; empty means the one built in.
		P4Info string `yaml:"p4info"`
		// DeviceConfigs maps a gateway name to its device config file (BMv2
		// JSON, Tofino binary); XDP agents need none.
		DeviceConfigs map[string]string `yaml:"device_configs"`
		// P4InfoFiles maps a gateway name to the P4Info it runs (text or binary)
		// when it is not p4info: a Tofino gateway's TNA build ("pipe." names,
		// smaller tables). It must be compatible with p4info (same ids, widths
		// and match kinds once "pipe." is dropped; sizes may differ).
		P4InfoFiles map[string]string `yaml:"p4info_files"`
		// TLS toward the targets: the CA their certificates chain to, and this
		// controller's client certificate. Empty CA: plaintext.
		TLSCA      string `yaml:"tls_ca"`
		TLSCert    string `yaml:"tls_cert"`
		TLSKey     string `yaml:"tls_key"`
		ServerName string `yaml:"server_name"`
	} `yaml:"p4runtime"`
	// BGP, when set, announces the VIPs with the embedded speaker.
	BGP *bgpConfig `yaml:"bgp"`
	// HA, when set, makes this controller one of several replicas on one etcd
	// store: only the elected leader runs.
	HA *haConfig `yaml:"ha"`
	// Probe, when set, is the probe host of probes and rollouts.
	Probe *probeConfig `yaml:"probe"`
	// Health, when set and enabled, checks the backends (docs/health.md).
	Health *healthConfig `yaml:"health"`

	// Command line only.
	check bool
	// keepRoutes: the first signal exits without withdrawing the VIPs.
	keepRoutes bool
	// reseed: seed an empty store from Intent even when the gateways hold entries.
	reseed bool
	// migrateTo: copy the store into the one this file names, then exit.
	migrateTo string
}

// bgpConfig is the bgp: section: the speaker's own settings (controller/bgp's
// Config, keys as in docs/bgp.md) and how the controller decides.
type bgpConfig struct {
	bgp.Config `yaml:",inline"`
	// VIPs are the path attributes per VIP name of the intent.
	VIPs map[string]bgp.Attributes `yaml:"vips"`
	// HealthCheck is reconciled (default) or none.
	HealthCheck string `yaml:"healthCheck"`
	// StartWait bounds the wait for the gateways before the first decision.
	StartWait Duration `yaml:"startWait"`
	// AnnounceFrom is controller (default: the embedded speaker announces
	// every gateway's paths) or gateways (a graygw-speaker beside each
	// gateway announces its own, from the policy this controller streams).
	AnnounceFrom string `yaml:"announceFrom"`
}

// Values of bgp.announceFrom.
const (
	announceFromController = "controller"
	announceFromGateways   = "gateways"
)

// gatewaysAnnounce reports that the speakers on the gateways announce.
func (b *bgpConfig) gatewaysAnnounce() bool { return b.AnnounceFrom == announceFromGateways }

// healthConfig is the health: section: backend health checking. Off unless
// enabled: backends that do not answer the check (a firewall dropping ICMP)
// would otherwise withdraw VIPs that were announced before the upgrade.
type healthConfig struct {
	// Enabled turns checking on (default off).
	Enabled bool `yaml:"enabled"`
	// Interval between two checks of a backend (default 1s).
	Interval Duration `yaml:"interval"`
	// Timeout of one check (default 500ms, at most interval).
	Timeout Duration `yaml:"timeout"`
	// Rise and Fall: successes in a row to come up, failures in a row to go
	// down (defaults 2 and 3; 0 means the default).
	Rise int `yaml:"rise"`
	Fall int `yaml:"fall"`
	// Mode is icmp (default: echo to the underlay address) or tcp (connect to
	// Port).
	Mode string `yaml:"mode"`
	Port int    `yaml:"port"`
	// HoldDown and MaxChangesPerMinute damp health failover in the pools
	// that ask for it (health_failover: true; controller/failover defaults
	// when 0).
	HoldDown            Duration `yaml:"holdDown"`
	MaxChangesPerMinute int      `yaml:"maxChangesPerMinute"`
}

// failover is the health failover's damping.
func (h *healthConfig) failover() failover.Config {
	return failover.Config{HoldDown: time.Duration(h.HoldDown), MaxChangesPerMinute: h.MaxChangesPerMinute}
}

func (h *healthConfig) config() health.Config {
	return health.Config{Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout), Rise: h.Rise, Fall: h.Fall,
		Mode: h.Mode, Port: h.Port}
}

// validate checks the health: section (enabled or not), every problem by
// field.
func (h *healthConfig) validate() []string {
	var problems []string
	if err := h.config().Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			problems = append(problems, "health."+strings.TrimPrefix(strings.TrimSpace(line), health.ErrInvalidConfig.Error()+": "))
		}
	}
	if h.HoldDown < 0 {
		problems = append(problems, "health.holdDown: negative")
	}
	if h.MaxChangesPerMinute < 0 {
		problems = append(problems, "health.maxChangesPerMinute: negative")
	}
	return problems
}

// probeConfig is the probe: section.
type probeConfig struct {
	// NetNS is the probe host's network namespace (name or path); empty: ours.
	NetNS string `yaml:"netns"`
	// Interface towards the gateway; empty: the route's.
	Interface string `yaml:"interface"`
	// Source is the outer source (the VTEP address backends answer); empty:
	// the interface's first IPv4 address.
	Source string `yaml:"source"`
	// GatewayMAC is the next hop towards the VIPs; empty: the neighbour table.
	GatewayMAC string `yaml:"gateway_mac"`
	// RouterMAC is the inner destination MAC of targets that give none.
	RouterMAC string `yaml:"router_mac"`
}

// DefaultRetainVersions is how many intent versions the store keeps by default.
const DefaultRetainVersions = 200

func defaults() *config {
	c := &config{Store: storeConfig{File: "/var/lib/graygw/controller.db"}, ElectionID: 1,
		Interval: Duration(30 * time.Second), Timeout: Duration(2 * time.Minute), DrainTimeout: Duration(60 * time.Second)}
	c.Listen.Unix = service.DefaultSocket
	c.StoreRetention.Versions = DefaultRetainVersions
	c.Log.Level, c.Log.Format = "info", "text"
	return c
}

const usageText = `graygw-controller: the graygw controller.

It keeps every gray gateway of the intent holding exactly the table entries the
intent compiles to, over P4Runtime (the same southbound for BMv2, Tofino and the
XDP agent), and serves the API the graygw CLI uses to change the intent: apply,
diff, cutover (a VNI, a VM, a prefix, a flow, a sticky percentage of a VNI's VMs),
rollback, status, counters, history. With a bgp: section it announces the VIPs
over BGP (graygw bgp, drain, undrain); with a probe: section it probes VMs
through the gateway and runs automated rollouts (graygw probe, rollout).

Usage:
  graygw-controller [--config FILE] [flags]

How it works:
  The intent (docs/intent.md) lives in the store (--store, a bbolt file; or an
  etcd cluster, store: {etcd: {endpoints, prefix, tls_cert, tls_key, tls_ca}},
  docs/ha.md; --migrate-store-to copies one into the other; with an ha:
  section {id, ttl, standby: warm|cold} several replicas share it and only the
  one elected on an etcd lease writes, its P4Runtime election id's high bits
  its term; followers stand by warm, with standby P4Runtime streams and the
  intent compiled from a watch of the store): every
  version, and a history of who changed what. Every change through the API is
  validated and compiled first; nothing is stored or written when it fails. For
  each gateway of the intent the controller opens a P4Runtime session with
  --election-id: it stays standby while a controller with a higher id is primary
  and takes over when that one goes away. As primary it pushes the pipeline
  unless the gateway already runs it (compared by cookie), reads back every
  entry, and writes only the difference, make-before-break (what packets can be
  steered to exists before anything steers to them). Entries the intent does not
  want are deleted and logged. It does this on every intent change, on every
  reconnect, and every --interval; an unchanged gateway gets no write at all.
  Consistent-hash buckets survive controller restarts: they are read back from
  the gateways, so a restart moves no flow. A mixed fleet (XDP or BMv2 and
  Tofino): p4runtime.p4info_files gives a gateway its own P4Info (text or
  binary; a Tofino's TNA build, names under "pipe.", smaller tables), pushed
  with its device config and checked by --check to be compatible with
  p4runtime.p4info (same ids, widths and match kinds once "pipe." is dropped;
  sizes may differ). Entries are written by id, the same on every build; each
  gateway's table sizes come from its own P4Info (until a gateway is reached,
  from the one configured for it). --check with --intent fails when a key of
  p4info_files or device_configs names no gateway of the intent (a typo).

The intent:
  --intent FILE seeds an EMPTY store with FILE. Once the store holds an intent it
  is the source of truth and --intent is ignored (a warning says so): change the
  intent with "graygw apply FILE", which keeps the history.

API:
  On the unix socket --listen-unix (mode 0660: grant access with the directory's
  group), and optionally on --listen-tcp with mutual TLS (--tls-cert, --tls-key,
  --tls-client-ca are then required: plain TCP is never served). Changes are
  recorded with the caller: unix uid, or the client certificate's common name.

BGP (bgp: section; docs/bgp.md):
  An embedded GoBGP speaker announces every VIP of the intent as a /32 through
  each gateway (next hop: the gateway's bgp_next_hop) that is P4Runtime-connected
  with this controller primary, healthy (healthCheck reconciled: a reconcile
  pass succeeded on its current session; none: always), not drained by an
  operator (graygw drain GW; kept in the store across restarts), and whose VIP
  has a pool with a backend of weight > 0 (and, with a health: section
  enabled, not down). It re-decides at every change of
  those. The first decision waits (at most startWait, default 15s) until every
  gateway is connected and reconciled: a decision made before would withdraw
  the routes the peers keep for a restarted controller.
  With bgp.announceFrom: gateways the controller speaks no BGP: a graygw-speaker
  beside each gateway announces that gateway's VIPs while its own dataplane
  serves them, from the policy (VIPs, attributes, drains, no-healthy-backend)
  this controller streams (WatchSpeakerPolicy) and the speaker keeps on disk,
  so the announcements outlive the controller. asn, routerID and neighbors then
  belong in the speakers' configs.

Backend health (health: section; docs/health.md):
  Off unless health.enabled. Every backend of the intent's pools is checked at
  its underlay address (ICMP echo, or a TCP connect to health.port) every
  interval; fall failures in a row take it down, rise successes in a row bring
  it back (transitions are logged with the reason). With BGP, a pool member
  counts as a healthy backend only while its weight is above 0 and it is not
  down, so a VIP none of whose pools has one is withdrawn (no-healthy-backend)
  and announced again when one recovers. Health never moves a flow: the
  consistent-hash buckets stay as the intent made them.

Probes and rollouts (probe: section; docs/rollout.md):
  Probes leave from the probe host (a network namespace and interface of this
  machine, e.g. the hypervisor's) through an AF_PACKET socket, to a VIP of the
  intent only. Without a probe: section, graygw probe and rollout start/resume
  are refused. The rollout's progress is kept in the store: a controller
  restarted during a rollout reports it paused at the step it was in;
  "graygw rollout resume" redoes that step and goes on.

Metrics (--metrics ADDR, /metrics):
  graygw_entries_written_total{gateway}, graygw_write_errors_total{gateway,code},
  graygw_reconcile_duration_seconds{gateway}, graygw_reconciles_total{gateway,result},
  graygw_gateway_{connected,primary,in_sync,intent_version,entries}{gateway}, and
  read from the gateways at each scrape: graygw_{rule,vip,pool,backend}_{packets,bytes}_total
  and graygw_drop_{packets,bytes}_total{reason}; with BGP graygw_bgp_session_up{neighbor},
  graygw_bgp_vips_announced, graygw_bgp_vips_withdrawn{reason}; with health checking
  graygw_backend_up{pool,backend}, graygw_backend_health_checks_total{result}. /healthz answers
  200 while serving.

Signals:
  The first SIGINT or SIGTERM drains: a running rollout stops where it is (the
  next process reports it), the API refuses changes (reads go on), with BGP every
  VIP is withdrawn and the sessions closed, the reconcile passes in flight
  finish, then the process exits; the gateways keep forwarding with what they
  hold. A second signal exits at once.
  --keep-routes-on-exit is for a planned restart (an upgrade): the first signal
  then does not withdraw the VIPs and the process exits without closing the
  BGP sessions cleanly, so peers with graceful restart keep the routes, stale,
  for gracefulRestart.restartTime while the next process starts and refreshes
  them. Start that process within restartTime.

Config file (YAML; flags given on the command line override it):
  store: /var/lib/graygw/controller.db  # or {etcd: {endpoints: [https://h:2379], prefix: /graygw/, tls_cert, tls_key, tls_ca}}
  store_retention: {versions: 200, age: 0s}  # intent versions kept (the current always; 0 = no bound)
  intent: /etc/graygw/intent.yaml      # seeds an empty store only (refused when the gateways hold entries, unless --reseed)
  election_id: 10                      # distinct per controller; the highest connected one is primary
  role: ""
  interval: 30s
  timeout: 2m                          # bound on one reconcile pass
  drain_timeout: 60s
  listen:
    unix: /run/graygw/controller.sock  # "none" disables
    tcp: 0.0.0.0:9443                  # mutual TLS only
    tls_cert: /etc/graygw/controller.crt
    tls_key: /etc/graygw/controller.key
    tls_client_ca: /etc/graygw/operators-ca.crt
  metrics: ":9100"
  log: {level: info, format: text}
  p4runtime:
    p4info: ""                         # default: the committed graygw P4Info
    device_configs: {bmv2-gw: /etc/graygw/graygw.json}   # keys: gateways of the intent
    p4info_files: {}                   # per gateway, e.g. {tofino-gw: /etc/graygw/tna.p4info.txtpb}
    tls_ca: ""                         # TLS toward the gateways when set
    tls_cert: ""
    tls_key: ""
    server_name: ""
  bgp:                                 # keys as in docs/bgp.md (camelCase)
    asn: 65001
    routerID: 10.0.0.1
    listenPort: 179                    # -1: only dial out
    gracefulRestart: {enabled: true, restartTime: 120s}
    neighbors:
      - {address: 10.0.0.2, asn: 65000, holdTime: 9s}
    vips:                              # path attributes per VIP name of the intent
      vpc-router: {communities: ["65000:100"], med: 50, localPref: 300}
    healthCheck: reconciled            # or none
    startWait: 15s
  health:                              # backend health checking (default off)
    enabled: true
    interval: 1s
    timeout: 500ms                     # at most interval
    rise: 2                            # successes in a row to come up
    fall: 3                            # failures in a row to go down
    mode: icmp                         # or tcp (then port: N)
  probe:
    netns: hv                          # /var/run/netns/hv, or a path; empty: ours
    interface: h0                      # towards the gateway; empty: the route's
    source: 10.9.0.1                   # VTEP address backends answer; empty: the interface's
    gateway_mac: ""                    # next hop to the VIPs; empty: neighbour table
    router_mac: 02:00:00:00:10:fe      # inner destination MAC (the VPC router's)

Examples:
  # First start: seed the store from a file, API on the default socket
  graygw-controller --intent /etc/graygw/intent.yaml --metrics :9100

  # Also serve the API on TCP for remote operators (mutual TLS), JSON logs
  graygw-controller --config /etc/graygw/controller.yaml --listen-tcp 0.0.0.0:9443 \
      --tls-cert controller.crt --tls-key controller.key --tls-client-ca operators-ca.crt --log-format json

  # Check a config and an intent file, and exit
  graygw-controller --config /etc/graygw/controller.yaml --intent new-intent.yaml --check

  # Planned restart (upgrade) without moving traffic: the peers keep the VIPs
  graygw-controller --config /etc/graygw/controller.yaml --keep-routes-on-exit

Flags:
`

// parseConfig reads the flags and the config file.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("graygw-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	d := defaults()
	var (
		file                             string
		listenUnix, listenTCP            string
		tlsCert, tlsKey, tlsClientCA     string
		store, intentFile, role, metrics string
		logLevel, logFormat              string
		election                         uint64
		interval, timeout, drainTimeout  time.Duration
		check, keepRoutes, reseed        bool
		migrateTo                        string
	)
	fs.StringVar(&file, "config", "", "YAML config `file` (see above); flags given here override it")
	fs.StringVar(&intentFile, "intent", "", "intent `file` to seed an empty store with (ignored once the store holds an intent)")
	fs.StringVar(&store, "store", d.Store.File, "store `file` (bbolt): intent versions and history (an etcd cluster: store.etcd in --config)")
	fs.Uint64Var(&election, "election-id", d.ElectionID, "P4Runtime election `id` (> 0); the highest connected controller is primary")
	fs.StringVar(&role, "role", d.Role, "P4Runtime `role` (empty: the default role)")
	fs.DurationVar(&interval, "interval", time.Duration(d.Interval), "periodic reconcile `interval`")
	fs.DurationVar(&timeout, "timeout", time.Duration(d.Timeout), "bound on one reconcile pass")
	fs.DurationVar(&drainTimeout, "drain-timeout", time.Duration(d.DrainTimeout), "how long the first signal waits for the passes in flight")
	fs.StringVar(&listenUnix, "listen-unix", d.Listen.Unix, "API unix socket `path` (\"none\" to disable)")
	fs.StringVar(&listenTCP, "listen-tcp", "", "API TCP `host:port`, mutual TLS only (needs --tls-cert, --tls-key, --tls-client-ca)")
	fs.StringVar(&tlsCert, "tls-cert", "", "API server certificate `file` (PEM)")
	fs.StringVar(&tlsKey, "tls-key", "", "API server private key `file` (PEM)")
	fs.StringVar(&tlsClientCA, "tls-client-ca", "", "`CA file` (PEM) API client certificates must chain to")
	fs.StringVar(&metrics, "metrics", "", "Prometheus listen `address` (e.g. :9100); empty disables")
	fs.StringVar(&logLevel, "log-level", d.Log.Level, "`level`: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", d.Log.Format, "`format`: text or json")
	fs.BoolVar(&check, "check", false, "check the config and the --intent file (validation and compilation), then exit")
	fs.BoolVar(&reseed, "reseed", false, "seed an empty store from --intent even when the gateways hold entries (a lost store: their live state is replaced)")
	fs.StringVar(&migrateTo, "migrate-store-to", "", "copy the store (store: / --store) whole into the empty store a YAML `file` names (its store: key: a bbolt path or etcd:), check the copy, and exit; stop the controllers first")
	fs.BoolVar(&keepRoutes, "keep-routes-on-exit", false, "planned restart: the first signal exits without withdrawing the VIPs (needs bgp.gracefulRestart; see Signals above)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args())
	}
	c := d
	if file != "" {
		var err error
		if c, err = loadConfig(file); err != nil {
			return nil, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "intent":
			c.Intent = intentFile
		case "store":
			c.Store = storeConfig{File: store}
		case "election-id":
			c.ElectionID = election
		case "role":
			c.Role = role
		case "interval":
			c.Interval = Duration(interval)
		case "timeout":
			c.Timeout = Duration(timeout)
		case "drain-timeout":
			c.DrainTimeout = Duration(drainTimeout)
		case "listen-unix":
			c.Listen.Unix = listenUnix
		case "listen-tcp":
			c.Listen.TCP = listenTCP
		case "tls-cert":
			c.Listen.TLSCert = tlsCert
		case "tls-key":
			c.Listen.TLSKey = tlsKey
		case "tls-client-ca":
			c.Listen.TLSClientCA = tlsClientCA
		case "metrics":
			c.Metrics = metrics
		case "log-level":
			c.Log.Level = logLevel
		case "log-format":
			c.Log.Format = logFormat
		}
	})
	c.check = check
	c.keepRoutes = keepRoutes
	c.reseed = reseed
	c.migrateTo = migrateTo
	if c.Listen.Unix == "none" {
		c.Listen.Unix = ""
	}
	return c, c.validate()
}

// loadConfig reads a config file strictly (an unknown key is an error) over the
// defaults.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := decodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// decodeConfig decodes a config document strictly over the defaults.
func decodeConfig(data []byte) (*config, error) {
	c := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return c, nil
}

func (c *config) validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.ElectionID == 0 {
		bad("election id must be > 0 (P4Runtime election ids start at 1)")
	}
	if c.Store.File == "" && c.Store.Etcd == nil && !c.check {
		bad("store: a file path (or an etcd: section) is required")
	}
	problems = append(problems, c.Store.validate()...)
	if c.HA != nil {
		problems = append(problems, c.HA.validate(c)...)
	}
	if c.StoreRetention.Versions < 0 || c.StoreRetention.Age < 0 {
		bad("store_retention: versions and age must not be negative (0 means no bound)")
	}
	if c.Interval <= 0 || c.Timeout <= 0 || c.DrainTimeout <= 0 {
		bad("interval, timeout and drain timeout must be positive")
	}
	if c.Listen.Unix == "" && c.Listen.TCP == "" && !c.check {
		bad("no API listener: give --listen-unix or --listen-tcp")
	}
	if c.Listen.TCP != "" && (c.Listen.TLSCert == "" || c.Listen.TLSKey == "" || c.Listen.TLSClientCA == "") {
		bad("--listen-tcp is served with mutual TLS only: --tls-cert, --tls-key and --tls-client-ca are required")
	}
	if c.Listen.TCP == "" && (c.Listen.TLSCert != "" || c.Listen.TLSKey != "" || c.Listen.TLSClientCA != "") {
		bad("--tls-cert, --tls-key and --tls-client-ca apply to --listen-tcp, which is not set")
	}
	if (c.P4Runtime.TLSCert == "") != (c.P4Runtime.TLSKey == "") {
		bad("p4runtime.tls_cert and p4runtime.tls_key go together")
	}
	if c.P4Runtime.TLSCert != "" && c.P4Runtime.TLSCA == "" {
		bad("p4runtime.tls_cert needs p4runtime.tls_ca (TLS toward the gateways)")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log format %q: want text or json", c.Log.Format)
	}
	if c.BGP != nil {
		problems = append(problems, c.BGP.validate()...)
	}
	if c.keepRoutes && c.BGP == nil {
		bad("--keep-routes-on-exit keeps the BGP routes at the peers, but there is no bgp: section")
	}
	if c.keepRoutes && c.BGP != nil && !c.BGP.GracefulRestart.Enabled && !c.BGP.gatewaysAnnounce() {
		bad("--keep-routes-on-exit needs bgp.gracefulRestart.enabled: without graceful restart the peers drop the routes as soon as the sessions close")
	}
	if c.Probe != nil {
		problems = append(problems, c.Probe.validate()...)
	}
	if c.Health != nil {
		problems = append(problems, c.Health.validate()...)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// validate checks the bgp: section, every problem by field.
func (b *bgpConfig) validate() []string {
	var problems []string
	switch b.AnnounceFrom {
	case "", announceFromController:
	case announceFromGateways:
		// The sessions are the speakers': only the policy keys apply here.
		if b.ASN != 0 || b.RouterID != "" || len(b.Neighbors) > 0 {
			problems = append(problems, "bgp.announceFrom: gateways: asn, routerID and neighbors belong in each graygw-speaker's config, not here")
		}
	default:
		problems = append(problems, fmt.Sprintf("bgp.announceFrom: %q: want %s or %s", b.AnnounceFrom, announceFromController, announceFromGateways))
	}
	if err := b.Config.Validate(); err != nil && !b.gatewaysAnnounce() {
		for _, line := range strings.Split(err.Error(), "\n") {
			problems = append(problems, "bgp."+strings.TrimPrefix(strings.TrimSpace(line), bgp.ErrInvalidConfig.Error()+": "))
		}
	}
	switch b.HealthCheck {
	case "", announce.HealthReconciled, announce.HealthNone:
	default:
		problems = append(problems, fmt.Sprintf("bgp.healthCheck: %q: want %s or %s", b.HealthCheck, announce.HealthReconciled, announce.HealthNone))
	}
	for _, name := range slices.Sorted(maps.Keys(b.VIPs)) { // a stable order of problems
		for i, c := range b.VIPs[name].Communities {
			if _, err := bgp.ParseCommunity(c); err != nil {
				problems = append(problems, fmt.Sprintf("bgp.vips.%s.communities[%d]: %v", name, i, err))
			}
		}
	}
	if b.StartWait < 0 {
		problems = append(problems, "bgp.startWait: must not be negative")
	}
	gr := b.Config.WithDefaults().GracefulRestart
	if b.StartWait > 0 && gr.Enabled && time.Duration(b.StartWait) >= gr.RestartTime && !b.gatewaysAnnounce() {
		problems = append(problems, fmt.Sprintf("bgp.startWait: %s must be shorter than gracefulRestart.restartTime %s (the peers drop a restarted controller's routes after it)",
			time.Duration(b.StartWait), gr.RestartTime))
	}
	return problems
}

// validate checks the probe: section.
func (p *probeConfig) validate() []string {
	var problems []string
	if p.Source != "" {
		if a, err := netip.ParseAddr(p.Source); err != nil || !a.Is4() {
			problems = append(problems, fmt.Sprintf("probe.source: %q is not an IPv4 address", p.Source))
		}
	}
	for _, m := range []struct{ name, v string }{{"gateway_mac", p.GatewayMAC}, {"router_mac", p.RouterMAC}} {
		if m.v != "" {
			if hw, err := net.ParseMAC(m.v); err != nil || len(hw) != 6 {
				problems = append(problems, fmt.Sprintf("probe.%s: %q is not a MAC address", m.name, m.v))
			}
		}
	}
	return problems
}

// host is the service's probe host.
func (p *probeConfig) host() *probe.Host {
	h := &probe.Host{NetNS: p.NetNS, Interface: p.Interface, GatewayMAC: p.GatewayMAC, RouterMAC: p.RouterMAC}
	if p.Source != "" {
		h.Source = netip.MustParseAddr(p.Source)
	}
	return h
}
