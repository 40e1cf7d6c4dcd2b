package failover

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	MetricExcluded = "graygw_failover_excluded"
	MetricEvents   = "graygw_failover_events_total"
)

// Metrics are health failover's Prometheus metrics: which backends are
// excluded now, and the decisions by kind. Register them with Collectors.
type Metrics struct {
	excluded *prometheus.GaugeVec
	events   *prometheus.CounterVec
}

// NewMetrics returns the metrics, every event kind at 0.
func NewMetrics() *Metrics {
	m := &Metrics{
		excluded: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricExcluded,
			Help: "1 while health failover has moved the backend's buckets to the rest of its pool."}, []string{"pool", "backend"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEvents,
			Help: "Health failover decisions, by kind (excluded, restored, kept, deferred)."}, []string{"kind"}),
	}
	for _, k := range []Kind{Excluded, Restored, Kept, Deferred} {
		m.events.WithLabelValues(string(k))
	}
	return m
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.excluded, m.events}
}

// observe records one update's exclusions and events.
func (m *Metrics) observe(excluded map[string][]string, events []Event) {
	if m == nil {
		return
	}
	m.excluded.Reset()
	for pool, bs := range excluded {
		for _, b := range bs {
			m.excluded.WithLabelValues(pool, b).Set(1)
		}
	}
	for _, e := range events {
		m.events.WithLabelValues(string(e.Kind)).Inc()
	}
}
