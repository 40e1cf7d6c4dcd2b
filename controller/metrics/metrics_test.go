package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
)

type fakeSource struct{}

func (fakeSource) Gateways() []string { return []string{"gw1", "gw2"} }

func (fakeSource) Status() []engine.GatewayStatus {
	return []engine.GatewayStatus{
		{Name: "gw1", Connected: true, Primary: true, InSync: true, Version: 4, Entries: 8202},
		{Name: "gw2", Connected: false},
	}
}

func (fakeSource) Counters(_ context.Context, gw string) (*engine.Counters, error) {
	if gw == "gw2" {
		return nil, errors.New("unreachable")
	}
	return &engine.Counters{Gateway: gw,
		Rules:    map[string]engine.Counter{"vm-10.0.0.5": {Packets: 3, Bytes: 450}},
		VIPs:     map[string]engine.Counter{"vpc": {Packets: 8, Bytes: 1200}},
		Pools:    map[string]engine.Counter{"gray": {Packets: 3, Bytes: 450}},
		Backends: map[string]engine.Counter{"gray-1": {Packets: 3, Bytes: 450}},
		Drops:    map[string]engine.Counter{"NOT_VIP": {Packets: 1, Bytes: 150}},
	}, nil
}

func TestObserverMetrics(t *testing.T) {
	m := New()
	reg := prometheus.NewPedanticRegistry()
	if err := m.Register(reg, nil, 0); err != nil {
		t.Fatal(err)
	}
	m.Reconciled("gw1", 200*time.Millisecond, 8202, nil)
	m.Reconciled("gw1", time.Second, 0, errors.New("down"))
	m.WriteFailed("gw1", codes.ResourceExhausted, 3)
	want := `
# HELP graygw_entries_written_total P4Runtime updates (inserts, modifies, deletes) the gateway accepted.
# TYPE graygw_entries_written_total counter
graygw_entries_written_total{gateway="gw1"} 8202
# HELP graygw_reconciles_total Reconcile passes, by result (ok, error).
# TYPE graygw_reconciles_total counter
graygw_reconciles_total{gateway="gw1",result="error"} 1
graygw_reconciles_total{gateway="gw1",result="ok"} 1
# HELP graygw_write_errors_total P4Runtime updates the gateway refused (or that were not answered), by gRPC code.
# TYPE graygw_write_errors_total counter
graygw_write_errors_total{code="ResourceExhausted",gateway="gw1"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricEntriesWritten, MetricReconciles, MetricWriteErrors); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Fatalf("%d duration series", n)
	}
}

func TestCollectorReadsCountersAtScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(fakeSource{}, time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP graygw_counters_up 1 when the gateway's counters could be read at this scrape.
# TYPE graygw_counters_up gauge
graygw_counters_up{gateway="gw1"} 1
graygw_counters_up{gateway="gw2"} 0
# HELP graygw_rule_packets_total Packets that matched the gray rule (its gray_rules entry's direct counter).
# TYPE graygw_rule_packets_total counter
graygw_rule_packets_total{gateway="gw1",rule="vm-10.0.0.5"} 3
# HELP graygw_drop_packets_total Packets not forwarded, by reason (docs/pipeline.md §9; NOT_IPV4 and NOT_VIP are not for the gateway).
# TYPE graygw_drop_packets_total counter
graygw_drop_packets_total{gateway="gw1",reason="NOT_VIP"} 1
# HELP graygw_pool_bytes_total Bytes forwarded to the pool's backends.
# TYPE graygw_pool_bytes_total counter
graygw_pool_bytes_total{gateway="gw1",pool="gray"} 450
# HELP graygw_gateway_primary 1 while this controller is the gateway's primary controller (0: standby or disconnected).
# TYPE graygw_gateway_primary gauge
graygw_gateway_primary{gateway="gw1"} 1
graygw_gateway_primary{gateway="gw2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "graygw_counters_up", "graygw_rule_packets_total",
		"graygw_drop_packets_total", "graygw_pool_bytes_total", "graygw_gateway_primary"); err != nil {
		t.Fatal(err)
	}
}

// splitSource returns the next split of splits at each read.
type splitSource struct {
	splits []map[string]map[intent.Cluster]engine.Counter
	n      int
}

func (s *splitSource) Gateways() []string             { return []string{"gw1"} }
func (s *splitSource) Status() []engine.GatewayStatus { return nil }
func (s *splitSource) Counters(context.Context, string) (*engine.Counters, error) {
	sp := s.splits[s.n]
	s.n++
	return &engine.Counters{Split: sp}, nil
}

// The traffic split never goes down between scrapes unless the VIP's total
// did (a reset): a dashboard's rate() must not see a dip as a reset.
func TestSplitCountersMonotonic(t *testing.T) {
	split := func(base, gray uint64) map[string]map[intent.Cluster]engine.Counter {
		return map[string]map[intent.Cluster]engine.Counter{"vpc": {intent.ClusterBase: {Packets: base, Bytes: base * 100},
			intent.ClusterGray: {Packets: gray, Bytes: gray * 100}}}
	}
	src := &splitSource{splits: []map[string]map[intent.Cluster]engine.Counter{
		split(10, 5), // base read a little late: 10
		split(9, 8),  // base's share of this read is 9: stays 10
		split(20, 9),
		split(1, 0), // total down: the gateway restarted
	}}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(src, time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][2]uint64{{10, 5}, {10, 8}, {20, 9}, {1, 0}} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, mf := range mfs {
			if mf.GetName() != "graygw_vip_cluster_packets_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "cluster" {
						got[l.GetValue()] = uint64(m.GetCounter().GetValue())
					}
				}
			}
		}
		if got["base"] != want[0] || got["gray"] != want[1] {
			t.Errorf("scrape %d: base %d gray %d, want %d %d", i, got["base"], got["gray"], want[0], want[1])
		}
	}
}
