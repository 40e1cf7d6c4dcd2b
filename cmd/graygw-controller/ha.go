package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"

	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/controller/engine"
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
	// Standby is how a follower waits: "warm" (the default) keeps standby
	// P4Runtime streams to every gateway and the intent compiled from a watch
	// of the store; "cold" holds nothing and starts like a restarted
	// controller when elected (kept to measure one against the other).
	Standby string `yaml:"standby"`
}

// ttl is the lease, defaulted.
func (h *haConfig) ttl() Duration {
	if h.TTL == 0 {
		return Duration(2 * time.Second)
	}
	return h.TTL
}

// warm reports whether followers stand by warm.
func (h *haConfig) warm() bool { return h.Standby != "cold" }

func (h *haConfig) validate(c *config) []string {
	var problems []string
	if c.Store.Etcd == nil {
		problems = append(problems, "ha: needs store: {etcd: ...} (the replicas share the store and elect through it)")
	}
	if h.Standby != "" && h.Standby != "warm" && h.Standby != "cold" {
		problems = append(problems, fmt.Sprintf("ha.standby: %q: want warm or cold", h.Standby))
	}
	if d := time.Duration(h.TTL); d != 0 && (d < time.Second || d%time.Second != 0) {
		problems = append(problems, fmt.Sprintf("ha.ttl: %s: want whole seconds, at least 1s", d))
	}
	return problems
}

// campaign waits until this replica leads. It returns nil (and no error) when
// a signal ends the wait: the process then exits without having run. A warm
// follower keeps eng (a standby engine) following the store meanwhile.
func campaign(c *config, socks *apiSockets, st store.Store, eng *engine.Engine, log *slog.Logger, sigs <-chan os.Signal, standingBy func()) (*leader.Leadership, error) {
	es, ok := st.(*etcdstore.Store)
	if !ok {
		return nil, errors.New("ha: needs store: {etcd: ...}")
	}
	id := haID(c)
	prefix := es.Prefix() + "leader/"
	el, err := leader.New(leader.Config{Client: es.Client(), Prefix: prefix, ID: id, Address: apiAddress(c), TTL: time.Duration(c.HA.TTL)})
	if err != nil {
		return nil, err
	}
	// Standing by, the API answers reads from the store and sends everything
	// else to the leader; it stops before the leader's API serves the same
	// sockets.
	var traceEng *engine.Engine // a warm follower traces from its standby sessions
	if c.HA.warm() {
		traceEng = eng
	}
	stopStandby, err := serveStandby(c, socks, st, log, func(ctx context.Context) (string, uint64, string, bool) {
		t, ok, err := leader.Current(ctx, es.Client(), prefix)
		return t.Leader, t.Number, t.Address, ok && err == nil
	}, traceEng)
	if err != nil {
		return nil, err
	}
	defer stopStandby()
	standingBy()
	if c.HA.warm() {
		fctx, stopFollow := context.WithCancel(context.Background())
		followed := make(chan struct{})
		go func() { defer close(followed); followStore(fctx, es, eng, log) }()
		// Stopped before the leader's Start: no standby Commit after it.
		defer func() { stopFollow(); <-followed }()
	}
	if cur, ok, err := leader.Current(context.Background(), es.Client(), prefix); err == nil && ok {
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

// haID is this replica's name: ha.id, or the host name.
func haID(c *config) string {
	if c.HA.ID != "" {
		return c.HA.ID
	}
	id, _ := os.Hostname()
	return id
}

// standbyElectionID is a follower's P4Runtime election id (low bits; high 0,
// below every leader's): distinct per replica, since a gateway refuses a
// second session with an id already in use.
func standbyElectionID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// followStore keeps a standby engine holding the stored intent, compiled against
// the leader's saved pool tables, from a watch of the store, until ctx ends.
// The engine opens its standby sessions to the intent's gateways as it goes.
func followStore(ctx context.Context, es *etcdstore.Store, eng *engine.Engine, log *slog.Logger) {
	mgr, err := change.New(change.Config{Store: es, Engine: eng, Logger: log})
	if err != nil {
		log.Error("ha: standby: not following the store", "err", err)
		return
	}
	for ch := range es.Watch(ctx, engine.StoreNamespace) {
		if err := eng.ReloadSaved(ctx); err != nil && ctx.Err() == nil {
			log.Warn("ha: standby: saved pool tables not read", "err", err)
		}
		if err := mgr.Start(ctx); err != nil && ctx.Err() == nil {
			log.Warn("ha: standby: the stored intent is not compiled", "err", err, "revision", ch.Revision)
		}
	}
}

// apiAddress is the address clients reach this replica's API at: the TCP
// listener when there is one (other hosts reach it), else the unix socket.
func apiAddress(c *config) string {
	if c.Listen.TCP != "" {
		return c.Listen.TCP
	}
	if c.Listen.Unix != "" {
		return "unix://" + c.Listen.Unix
	}
	return ""
}

// apiSockets are the API's sockets of a replica with ha:, opened once and
// handed from the standby API to the leader's (handoff).
type apiSockets struct{ unix, tcp *handoff }

// openAPISockets listens on the configured unix socket and TCP address.
func openAPISockets(c *config) (*apiSockets, error) {
	socks := &apiSockets{}
	if c.Listen.Unix != "" {
		lis, err := service.ListenUnix(c.Listen.Unix)
		if err != nil {
			return nil, err
		}
		socks.unix = newHandoff(lis)
	}
	if c.Listen.TCP != "" {
		lis, err := net.Listen("tcp", c.Listen.TCP)
		if err != nil {
			socks.Close()
			return nil, fmt.Errorf("listen %s: %w", c.Listen.TCP, err)
		}
		socks.tcp = newHandoff(lis)
	}
	return socks, nil
}

// Close closes the sockets (the unix socket's file is removed).
func (s *apiSockets) Close() {
	for _, h := range []*handoff{s.unix, s.tcp} {
		if h != nil {
			h.Close()
		}
	}
}

// serveStandby serves service.Standby on socks and returns the function that
// stops it (the sockets stay open for the leader's API). With eng (a warm
// follower's engine) it answers Trace too.
func serveStandby(c *config, socks *apiSockets, st store.Store, log *slog.Logger, who service.LeaderInfo, eng *engine.Engine) (func(), error) {
	sb := service.NewStandby(st, who, log)
	if eng != nil {
		sb.ServeTrace(eng)
	}
	var servers []*grpc.Server
	stop := func() {
		for _, gs := range servers {
			handOver(gs)
		}
	}
	if socks.unix != nil {
		gs := sb.NewServer(service.UnixCredentials())
		servers = append(servers, gs)
		go gs.Serve(socks.unix.listener())
	}
	if socks.tcp != nil {
		tcfg, err := service.ServerTLS(c.Listen.TLSCert, c.Listen.TLSKey, c.Listen.TLSClientCA)
		if err != nil {
			stop()
			return nil, err
		}
		gs := sb.NewServer(credentials.NewTLS(tcfg))
		servers = append(servers, gs)
		go gs.Serve(socks.tcp.listener())
	}
	log.Info("ha: standby API listening: reads answered here, changes sent to the leader", "unix", c.Listen.Unix, "tcp", c.Listen.TCP)
	return stop, nil
}

// handOver stops a standby server without failing its clients' calls: it
// stops accepting at once (the leader's server takes the next connections)
// and tells its connections to go away (GOAWAY: a call the server did not
// take is retried by gRPC on a new connection, where Stop would fail it);
// the calls it is answering may finish for up to standbyDrain. It does not
// wait for them: the takeover goes on meanwhile.
func handOver(gs *grpc.Server) {
	go func() {
		t := time.AfterFunc(standbyDrain, gs.Stop)
		gs.GracefulStop()
		t.Stop()
	}()
}

// standbyDrain bounds how long a stopped standby API finishes its calls.
const standbyDrain = 2 * time.Second

// replicasOf lists the replicas for the status (leader first), each with the
// health it last reported; self (the replica answering) is measured now.
func replicasOf(st store.Store, self string, measure func(context.Context) leader.Health) func(ctx context.Context) ([]*graygwv1.Replica, error) {
	es := st.(*etcdstore.Store)
	return func(ctx context.Context) ([]*graygwv1.Replica, error) {
		rs, err := leader.Replicas(ctx, es.Client(), es.Prefix()+"leader/")
		if err != nil {
			return nil, err
		}
		hs, err := leader.Healths(ctx, es.Client(), es.Prefix()+healthPrefix)
		if err != nil {
			return nil, err
		}
		out := make([]*graygwv1.Replica, 0, len(rs))
		for _, r := range rs {
			rp := &graygwv1.Replica{Id: r.ID, Address: r.Address, Leader: r.Leader, Term: r.Term}
			h, ok := hs[r.ID]
			if r.ID == self {
				h, ok = measure(ctx), true
			}
			if ok {
				rp.Health = &graygwv1.ReplicaHealth{Reported: timestamppb.New(h.Reported), Standby: h.Standby,
					ApiServing: h.APIServing, ApiError: h.APIError, StoreLatency: durationpb.New(h.StoreLatency), StoreError: h.StoreError,
					Version: h.Version, StoreVersion: h.StoreVersion, Gateways: uint32(h.Gateways), StreamsUp: uint32(h.StreamsUp),
					StreamsPrimary: uint32(h.StreamsPrimary), StreamsStandby: uint32(h.StreamsStandby)}
			}
			out = append(out, rp)
		}
		return out, nil
	}
}

// healthPrefix is where, under the store's prefix, the replicas report their
// health (leader.Report); not under leader/, which is the election's.
const healthPrefix = "replicas/"

// reportHealth reports this replica's health every second until ctx ends
// (leader.Report, measureHealth).
func reportHealth(ctx context.Context, c *config, es *etcdstore.Store, eng *engine.Engine, log *slog.Logger) {
	leader.Report(ctx, es.Client(), es.Prefix()+healthPrefix, haID(c), time.Duration(c.HA.ttl()), time.Second, log,
		measureHealth(c, es, eng))
}

// measureHealth measures this replica's health: its API answering a call of
// its own, the store's latency, the intent version its engine holds, its
// gateway streams.
func measureHealth(c *config, es *etcdstore.Store, eng *engine.Engine) func(context.Context) leader.Health {
	standby := "warm"
	if !c.HA.warm() {
		standby = "cold"
	}
	return func(ctx context.Context) leader.Health {
		h := leader.Health{Reported: time.Now(), Standby: standby}
		if err := apiAnswers(ctx, c); err != nil {
			h.APIError = err.Error()
		} else {
			h.APIServing = true
		}
		start := time.Now()
		n, err := es.CurrentNumber(ctx)
		h.StoreLatency = time.Since(start)
		if err != nil {
			h.StoreError = err.Error()
		}
		h.StoreVersion = n
		_, h.Version = eng.Intent()
		for _, g := range eng.Status() {
			h.Gateways++
			if g.Connected {
				h.StreamsUp++
			}
			if g.Primary {
				h.StreamsPrimary++
			}
			if g.Connected && g.Standby {
				h.StreamsStandby++
			}
		}
		return h
	}
}

// apiAnswers checks that this replica's API answers: over the unix socket, a
// call of a method no server has (the server itself answers UNIMPLEMENTED,
// touching neither the store nor the engine); with only a TCP listener (mutual
// TLS, no client certificate here), a TCP connect.
func apiAnswers(ctx context.Context, c *config) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if c.Listen.Unix != "" {
		conn, err := grpc.NewClient("unix://"+c.Listen.Unix, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		err = conn.Invoke(ctx, "/graygw.v1.Controller/ReplicaHealthProbe", &emptypb.Empty{}, &emptypb.Empty{})
		if status.Code(err) == codes.Unimplemented {
			return nil
		}
		return fmt.Errorf("unix socket %s: %w", c.Listen.Unix, err)
	}
	if c.Listen.TCP != "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Listen.TCP)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return errors.New("no API listener")
}
