package leader

// Each replica's health, reported by the replica itself (graygw status).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Health is what a replica reports about itself, beyond its lease: whether its
// API answers, how long the store takes to answer it, which intent version it
// holds, and its P4Runtime streams.
type Health struct {
	// Reported is when it was measured.
	Reported time.Time `json:"reported"`
	// Standby is how the replica stands by while not leading: warm or cold.
	Standby string `json:"standby,omitempty"`
	// APIServing: its API answered a call of its own; APIError says why not.
	APIServing bool   `json:"api_serving"`
	APIError   string `json:"api_error,omitempty"`
	// StoreLatency is the round trip of a linearizable read of the store;
	// StoreError, when it failed.
	StoreLatency time.Duration `json:"store_latency"`
	StoreError   string        `json:"store_error,omitempty"`
	// Version is the intent version its engine holds; StoreVersion the
	// store's current version when it measured.
	Version      uint64 `json:"version"`
	StoreVersion uint64 `json:"store_version"`
	// Gateways managed, and of their streams: up, primary, standby.
	Gateways       int `json:"gateways"`
	StreamsUp      int `json:"streams_up"`
	StreamsPrimary int `json:"streams_primary"`
	StreamsStandby int `json:"streams_standby"`
}

// Report publishes id's health under prefix (measure's answer, every
// interval) on a lease of its own of ttl, so that a dead replica's report
// goes with it, until ctx ends; the report is then deleted. It logs and
// retries when etcd does not answer.
func Report(ctx context.Context, cli *clientv3.Client, prefix, id string, ttl, interval time.Duration, log *slog.Logger,
	measure func(context.Context) Health) {
	key := prefix + id
	var lease clientv3.LeaseID
	defer func() {
		if lease != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, _ = cli.Revoke(rctx, lease) // the report goes at once
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		err := func() error {
			h := measure(ctx)
			raw, err := json.Marshal(h)
			if err != nil {
				return err
			}
			octx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
			defer cancel()
			if lease == 0 {
				g, err := cli.Grant(octx, int64(max(ttl/time.Second, 1)))
				if err != nil {
					return fmt.Errorf("grant a lease: %w", err)
				}
				lease = g.ID
			} else if _, err := cli.KeepAliveOnce(octx, lease); err != nil {
				lease = 0 // expired: a new one next time
				return fmt.Errorf("keep the lease: %w", err)
			}
			if _, err := cli.Put(octx, key, string(raw), clientv3.WithLease(lease)); err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		}()
		if err != nil && ctx.Err() == nil && !failing {
			log.Warn("ha: health not reported", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Healths reads the replicas' reports under prefix, by replica id.
func Healths(ctx context.Context, cli *clientv3.Client, prefix string) (map[string]Health, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("leader: read the replicas' health: %w", err)
	}
	out := map[string]Health{}
	for _, kv := range resp.Kvs {
		var h Health
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			return nil, fmt.Errorf("leader: health key %s holds %q: %w", kv.Key, kv.Value, err)
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = h
	}
	return out, nil
}
