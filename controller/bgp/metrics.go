package bgp

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every one is read from the speaker at scrape time.
const (
	MetricSessionUp     = "graygw_bgp_session_up"
	MetricVIPsAnnounced = "graygw_bgp_vips_announced"
	MetricVIPsWithdrawn = "graygw_bgp_vips_withdrawn"
)

// scrapeTimeout bounds how long a scrape waits for GoBGP.
const scrapeTimeout = 2 * time.Second

var (
	descSessionUp = prometheus.NewDesc(MetricSessionUp,
		"1 while the BGP session with the neighbor is established, 0 otherwise.",
		[]string{"neighbor"}, nil)
	descAnnounced = prometheus.NewDesc(MetricVIPsAnnounced,
		"(VIP, next hop) paths announced.", nil, nil)
	descWithdrawn = prometheus.NewDesc(MetricVIPsWithdrawn,
		"(VIP, gateway) paths not announced, by reason; a path with several reasons counts once under each.",
		[]string{"reason"}, nil)
)

// allReasons are exported as 0 when no path has them, so a series does not
// vanish when its count falls to zero.
var allReasons = []Reason{ReasonP4RuntimeDisconnected, ReasonHealthCheckFailed, ReasonDrained, ReasonNoHealthyBackend}

// Collector returns a Prometheus collector that reads the speaker's state at
// every scrape: graygw_bgp_session_up{neighbor}, graygw_bgp_vips_announced and
// graygw_bgp_vips_withdrawn{reason}. Register it once.
func (s *Speaker) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Speaker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionUp
	ch <- descAnnounced
	ch <- descWithdrawn
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.s.Status(ctx)
	if err == nil {
		for _, n := range st.Neighbors {
			up := 0.0
			if n.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up, n.Address)
		}
	} else {
		// Sessions are unknown (not started, stopped, GoBGP not answering):
		// report them down rather than fail the whole scrape.
		for _, n := range c.s.cfg.Neighbors {
			ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, 0, n.Address)
		}
	}
	ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, float64(len(st.Announced)))
	counts := map[Reason]int{}
	for _, w := range st.Withdrawn {
		for _, r := range w.Reasons {
			counts[r]++
		}
	}
	for _, r := range allReasons {
		ch <- prometheus.MustNewConstMetric(descWithdrawn, prometheus.GaugeValue, float64(counts[r]), string(r))
	}
	// The speaker's own reason (no neighbor carries the family): exported
	// while a path has it, a configuration error to alert on.
	if n := counts[ReasonNoNeighbor]; n > 0 {
		ch <- prometheus.MustNewConstMetric(descWithdrawn, prometheus.GaugeValue, float64(n), string(ReasonNoNeighbor))
	}
}
