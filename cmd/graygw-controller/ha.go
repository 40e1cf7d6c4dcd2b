package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/graygw/graygw/controller/leader"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
)

// haConfig is the ha: section: this controller is one of several replicas on
// one etcd store, and only the elected leader runs (docs/ha.md).
type haConfig struct {
	// ID names this replica to the others (default: the host name).
	ID string `yaml:"id"`
	// TTL is the leadership lease (default 2s, whole seconds): how long a dead
	// leader blocks the election. A leader stops at 3/4 of it without etcd.
	TTL Duration `yaml:"ttl"`
}

func (h *haConfig) validate(c *config) []string {
	var problems []string
	if c.Store.Etcd == nil {
		problems = append(problems, "ha: needs store: {etcd: ...} (the replicas share the store and elect through it)")
	}
	if d := time.Duration(h.TTL); d != 0 && (d < time.Second || d%time.Second != 0) {
		problems = append(problems, fmt.Sprintf("ha.ttl: %s: want whole seconds, at least 1s", d))
	}
	return problems
}

// campaign waits until this replica leads. It returns nil (and no error) when
// a signal ends the wait: the process then exits without having run.
func campaign(c *config, st store.Store, log *slog.Logger, sigs <-chan os.Signal) (*leader.Leadership, error) {
	es, ok := st.(*etcdstore.Store)
	if !ok {
		return nil, errors.New("ha: needs store: {etcd: ...}")
	}
	id := c.HA.ID
	if id == "" {
		id, _ = os.Hostname()
	}
	el, err := leader.New(leader.Config{Client: es.Client(), Prefix: es.Prefix() + "leader/", ID: id, TTL: time.Duration(c.HA.TTL)})
	if err != nil {
		return nil, err
	}
	if cur, ok, err := leader.Current(context.Background(), es.Client(), es.Prefix()+"leader/"); err == nil && ok {
		log.Info("ha: standing by: another replica leads", "leader", cur.Leader, "term", cur.Number, "id", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		l   *leader.Leadership
		err error
	}
	res := make(chan result, 1)
	go func() {
		l, err := el.Campaign(ctx)
		res <- result{l, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, r.err
		}
		log.Info("ha: elected leader", "id", id, "term", r.l.Number, "p4runtime_election_id_high", r.l.ElectionID())
		return r.l, nil
	case s := <-sigs:
		log.Info("ha: signal while standing by: exiting", "signal", s.String())
		cancel()
		if r := <-res; r.l != nil {
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer rcancel()
			_ = r.l.Resign(rctx)
		}
		return nil, nil
	}
}
