package failover

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
)

// Target is what the runner drives: the engine.
type Target interface {
	// Intent returns the intent in force (nil before the first).
	Intent() (*intent.Intent, uint64)
	// SetExcluded puts the intent in force again with these exclusions.
	SetExcluded(map[string][]string) (bool, error)
}

// Tick is how often Run re-decides: the hold-down's resolution.
const Tick = 100 * time.Millisecond

// Options configure Run.
type Options struct {
	Config Config
	// Down returns the underlay addresses health checks declare down now.
	Down func() map[netip.Addr]bool
	// Target applies the exclusions: the engine.
	Target Target
	// Logger receives every decision (slog.Default() when nil).
	Logger *slog.Logger
	// OnEvent, when set, is called with every decision.
	OnEvent func(Event)
	// Metrics, when set, is kept up to date.
	Metrics *Metrics
	// History, when set, gets every decision as a record of its history
	// (actor HistoryActor, operation "failover-" and the kind), written in
	// order on a goroutine of its own: a slow store never holds a failover
	// back.
	History store.Store
}

// HistoryActor is who the failover's records in the history are by.
const HistoryActor = "health-failover"

// historyQueue bounds the decisions waiting for the store; past it a
// decision is logged and left out of the history.
const historyQueue = 256

// recorder writes decisions to st in order until ctx is done and the queue
// is empty; the returned func queues one (never blocking).
func recorder(ctx context.Context, st store.Store, log *slog.Logger) (record func(Event), wait func()) {
	q := make(chan Event, historyQueue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case e := <-q:
				rec := store.Record{Actor: HistoryActor, Operation: "failover-" + string(e.Kind), Time: e.Time,
					Summary: fmt.Sprintf("pool %s backend %s %s", e.Pool, e.Backend, e.Kind), Reason: e.Reason}
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if _, err := st.Record(wctx, rec); err != nil {
					log.Warn("health failover: decision not recorded in the history", "pool", e.Pool, "backend", e.Backend, "kind", e.Kind, "err", err)
				}
				cancel()
			case <-ctx.Done():
				if len(q) == 0 {
					return
				}
			}
		}
	}()
	return func(e Event) {
		select {
		case q <- e:
		default:
			log.Warn("health failover: history queue full, decision not recorded", "pool", e.Pool, "backend", e.Backend, "kind", e.Kind)
		}
	}, func() { <-done }
}

// Run decides every Tick, from the intent's health_failover pools and the
// addresses that are down, and gives the exclusions to the target when they
// change. It returns when ctx is done.
func Run(ctx context.Context, o Options) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	d := New(o.Config)
	record := func(Event) {}
	if o.History != nil {
		var wait func()
		record, wait = recorder(ctx, o.History, log)
		defer wait()
	}
	var last map[string][]string
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		in, _ := o.Target.Intent()
		ex, events := d.Update(time.Now(), Pools(in, o.Down()))
		for _, e := range events {
			log.Info("health failover: "+string(e.Kind), "pool", e.Pool, "backend", e.Backend, "reason", e.Reason)
			record(e)
			if o.OnEvent != nil {
				o.OnEvent(e)
			}
		}
		o.Metrics.observe(ex, events)
		if !maps.EqualFunc(ex, last, slices.Equal[[]string]) {
			if _, err := o.Target.SetExcluded(ex); err != nil {
				log.Warn("health failover: applying the exclusions", "excluded", ex, "err", err)
			} else {
				last = ex
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pools returns the health_failover pools of in with their members' health:
// a member is down when its underlay address is in down.
func Pools(in *intent.Intent, down map[netip.Addr]bool) []Pool {
	if in == nil {
		return nil
	}
	addr := map[string]netip.Addr{}
	for _, b := range in.Backends {
		addr[b.Name] = b.UnderlayIP
	}
	var out []Pool
	for _, p := range in.Pools {
		if !p.HealthFailover {
			continue
		}
		fp := Pool{Name: p.Name}
		for _, m := range p.Members {
			fp.Members = append(fp.Members, Member{Backend: m.Backend, Weight: m.Weight, Down: down[addr[m.Backend]]})
		}
		out = append(out, fp)
	}
	return out
}
