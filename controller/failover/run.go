package failover

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/graygw/graygw/controller/intent"
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
	var last map[string][]string
	t := time.NewTicker(Tick)
	defer t.Stop()
	for {
		in, _ := o.Target.Intent()
		ex, events := d.Update(time.Now(), Pools(in, o.Down()))
		for _, e := range events {
			log.Info("health failover: "+string(e.Kind), "pool", e.Pool, "backend", e.Backend, "reason", e.Reason)
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
