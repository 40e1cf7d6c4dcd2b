// Package metrics exports the controller's Prometheus metrics: what the
// reconcile loop did (updates written, refused updates by gRPC code, pass
// durations), the state of each gateway, and the dataplane's own packet and byte
// counters, read from the targets over P4Runtime at scrape time and named after
// the intent (rules, VIPs, pools, backends, drop reasons).
//
// Metrics implements engine.Observer; Collector reads a Source (the engine) when
// Prometheus scrapes.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
)

// Names of the metrics the reconcile loop updates.
const (
	MetricEntriesWritten    = "graygw_entries_written_total"
	MetricWriteErrors       = "graygw_write_errors_total"
	MetricReconcileDuration = "graygw_reconcile_duration_seconds"
	MetricReconciles        = "graygw_reconciles_total"
)

// DefaultScrapeTimeout bounds the counter reads of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// Metrics holds the reconcile loop's metrics. It implements engine.Observer.
type Metrics struct {
	written    *prometheus.CounterVec
	writeErrs  *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	reconciles *prometheus.CounterVec
}

var _ engine.Observer = (*Metrics)(nil)

// New returns the reconcile loop's metrics, not yet registered.
func New() *Metrics {
	return &Metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEntriesWritten,
			Help: "P4Runtime updates (inserts, modifies, deletes) the gateway accepted."}, []string{"gateway"}),
		writeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricWriteErrors,
			Help: "P4Runtime updates the gateway refused (or that were not answered), by gRPC code."}, []string{"gateway", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricReconcileDuration,
			Help:    "Duration of a reconcile pass: pipeline check, read-back, diff and writes.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"gateway"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReconciles,
			Help: "Reconcile passes, by result (ok, error)."}, []string{"gateway", "result"}),
	}
}

// Reconciled implements engine.Observer.
func (m *Metrics) Reconciled(gateway string, d time.Duration, written int, err error) {
	m.written.WithLabelValues(gateway).Add(float64(written))
	m.duration.WithLabelValues(gateway).Observe(d.Seconds())
	result := engine.ResultOK
	if err != nil {
		result = engine.ResultError
	}
	m.reconciles.WithLabelValues(gateway, result).Inc()
}

// WriteFailed implements engine.Observer.
func (m *Metrics) WriteFailed(gateway string, code codes.Code, n int) {
	m.writeErrs.WithLabelValues(gateway, code.String()).Add(float64(n))
}

// Source is what the scrape-time collector reads: the engine.
type Source interface {
	Gateways() []string
	Status() []engine.GatewayStatus
	Counters(ctx context.Context, gateway string) (*engine.Counters, error)
}

// Register registers the reconcile loop's metrics and, when src is not nil, a
// collector reading src at every scrape (bounded by timeout, DefaultScrapeTimeout
// when 0).
func (m *Metrics) Register(reg prometheus.Registerer, src Source, timeout time.Duration) error {
	cs := []prometheus.Collector{m.written, m.writeErrs, m.duration, m.reconciles}
	if src != nil {
		cs = append(cs, NewCollector(src, timeout))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"gateway"}, labels...), nil)
}

// Scrape-time metrics.
var (
	descUp        = desc("graygw_gateway_connected", "1 while the P4Runtime stream to the gateway is up.")
	descPrimary   = desc("graygw_gateway_primary", "1 while this controller is the gateway's primary controller (0: standby or disconnected).")
	descRival     = desc("graygw_gateway_rival_primary", "1 while another controller is the gateway's primary (a rogue client unless another replica runs).")
	descDisplaced = desc("graygw_gateway_displaced_total", "Times another controller became the gateway's primary.")
	descInSync    = desc("graygw_gateway_in_sync", "1 when the gateway held exactly the intent's entries at the end of the last pass.")
	descVersion   = desc("graygw_gateway_intent_version", "The intent version the gateway was last brought to.")
	descEntries   = desc("graygw_gateway_entries", "Table entries the gateway should hold.")
	descCountersU = desc("graygw_counters_up", "1 when the gateway's counters could be read at this scrape.")

	descRulePkts    = desc("graygw_rule_packets_total", "Packets that matched the gray rule (its gray_rules entry's direct counter).", "rule")
	descRuleBytes   = desc("graygw_rule_bytes_total", "Bytes that matched the gray rule.", "rule")
	descVIPPkts     = desc("graygw_vip_packets_total", "Packets addressed to the VIP.", "vip")
	descVIPBytes    = desc("graygw_vip_bytes_total", "Bytes addressed to the VIP.", "vip")
	descPoolPkts    = desc("graygw_pool_packets_total", "Packets forwarded to the pool's backends (a backend in several pools counts in each).", "pool")
	descPoolBytes   = desc("graygw_pool_bytes_total", "Bytes forwarded to the pool's backends.", "pool")
	descBackendPkts = desc("graygw_backend_packets_total", "Packets forwarded to the backend.", "backend")
	descBackendByt  = desc("graygw_backend_bytes_total", "Bytes forwarded to the backend.", "backend")
	descDropPkts    = desc("graygw_drop_packets_total", "Packets not forwarded, by reason (docs/pipeline.md §9; NOT_IPV4 and NOT_VIP are not for the gateway).", "reason")
	descDropBytes   = desc("graygw_drop_bytes_total", "Bytes not forwarded, by reason.", "reason")
	descSplitPkts   = desc("graygw_vip_cluster_packets_total", "Packets of the VIP sent to the cluster (base, gray): gray rules' packets to their pool's cluster, the rest to the default pool's; vip=\"*\" when a gray rule names no VIP and there are several VIPs (engine.Split).", "vip", "cluster")
	descSplitBytes  = desc("graygw_vip_cluster_bytes_total", "Bytes of the VIP sent to the cluster (base, gray).", "vip", "cluster")
)

// Collector reads the gateways' state and counters at scrape time.
type Collector struct {
	src     Source
	timeout time.Duration

	mu    sync.Mutex
	split map[splitKey]engine.Counter // last exported, to keep them monotonic
}

type splitKey struct{ gateway, vip, cluster string }

// NewCollector returns a collector over src; timeout bounds the counter reads
// of one scrape (DefaultScrapeTimeout when 0).
func NewCollector(src Source, timeout time.Duration) *Collector {
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	return &Collector{src: src, timeout: timeout, split: map[splitKey]engine.Counter{}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descPrimary, descRival, descDisplaced, descInSync, descVersion, descEntries, descCountersU,
		descRulePkts, descRuleBytes, descVIPPkts, descVIPBytes, descPoolPkts, descPoolBytes, descBackendPkts,
		descBackendByt, descDropPkts, descDropBytes, descSplitPkts, descSplitBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Gateways are read in parallel; one
// that cannot be read reports graygw_counters_up 0 and no counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, st := range c.src.Status() {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b(st.Connected), st.Name)
		ch <- prometheus.MustNewConstMetric(descPrimary, prometheus.GaugeValue, b(st.Primary), st.Name)
		ch <- prometheus.MustNewConstMetric(descRival, prometheus.GaugeValue, b(st.RivalPrimary != ""), st.Name)
		ch <- prometheus.MustNewConstMetric(descDisplaced, prometheus.CounterValue, float64(st.Displaced), st.Name)
		ch <- prometheus.MustNewConstMetric(descInSync, prometheus.GaugeValue, b(st.InSync), st.Name)
		ch <- prometheus.MustNewConstMetric(descVersion, prometheus.GaugeValue, float64(st.Version), st.Name)
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.Entries), st.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	gws := c.src.Gateways()
	res := make([]*engine.Counters, len(gws))
	var wg sync.WaitGroup
	for i, gw := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cs, err := c.src.Counters(ctx, gw); err == nil {
				res[i] = cs
			}
		}()
	}
	wg.Wait()
	for i, gw := range gws {
		cs := res[i]
		ch <- prometheus.MustNewConstMetric(descCountersU, prometheus.GaugeValue, b(cs != nil), gw)
		if cs == nil {
			continue
		}
		for _, set := range []struct {
			m           map[string]engine.Counter
			pkts, bytes *prometheus.Desc
		}{
			{cs.Rules, descRulePkts, descRuleBytes}, {cs.VIPs, descVIPPkts, descVIPBytes},
			{cs.Pools, descPoolPkts, descPoolBytes}, {cs.Backends, descBackendPkts, descBackendByt},
			{cs.Drops, descDropPkts, descDropBytes},
		} {
			for name, v := range set.m {
				ch <- prometheus.MustNewConstMetric(set.pkts, prometheus.CounterValue, float64(v.Packets), gw, name)
				ch <- prometheus.MustNewConstMetric(set.bytes, prometheus.CounterValue, float64(v.Bytes), gw, name)
			}
		}
		for vip, byCluster := range c.monotonic(gw, cs.Split) {
			for cl, v := range byCluster {
				ch <- prometheus.MustNewConstMetric(descSplitPkts, prometheus.CounterValue, float64(v.Packets), gw, vip, cl)
				ch <- prometheus.MustNewConstMetric(descSplitBytes, prometheus.CounterValue, float64(v.Bytes), gw, vip, cl)
			}
		}
	}
}

// monotonic keeps a gateway's split counters from going down between scrapes:
// the rules are read before the VIPs, so one read's default share can be a
// few packets ahead of the next one's. A VIP whose total went down was reset
// (the gateway restarted, the entry was re-inserted): its values are taken as
// read.
func (c *Collector) monotonic(gw string, split map[string]map[intent.Cluster]engine.Counter) map[string]map[string]engine.Counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string]engine.Counter{}
	for vip, byCluster := range split {
		var now, before uint64
		for cl, v := range byCluster {
			now += v.Packets
			before += c.split[splitKey{gw, vip, string(cl)}].Packets
		}
		m := map[string]engine.Counter{}
		for cl, v := range byCluster {
			k := splitKey{gw, vip, string(cl)}
			if last := c.split[k]; now >= before {
				v.Packets, v.Bytes = max(v.Packets, last.Packets), max(v.Bytes, last.Bytes)
			}
			c.split[k] = v
			m[string(cl)] = v
		}
		out[vip] = m
	}
	return out
}
