package engine

import (
	"context"
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/reconcile"
)

// ReadBack is what one gateway holds, read back over P4Runtime, beside what
// the intent in force wants it to hold (graygw trace, docs/cli.md).
type ReadBack struct {
	Gateway string
	// Version is the intent version Want belongs to (0: no intent yet).
	Version uint64
	// Have is every entry read back, named through Want where its key is
	// wanted (Origin "" for an entry the intent does not name).
	Have []compile.Entry
	// Want is every entry the intent wants on the gateway, with its Origin,
	// when the gateway differs from it (nil when in sync: Have holds them).
	Want []compile.Entry
	// Missing are wanted entries the gateway lacks, Differ the entries it
	// holds with another action than wanted (as read back; the wanted one is
	// in Want), Extra the entries it holds that nothing wants.
	Missing, Differ, Extra []compile.Entry
}

// InSync reports whether the gateway holds exactly what the intent wants.
func (r *ReadBack) InSync() bool { return len(r.Missing)+len(r.Differ)+len(r.Extra) == 0 }

// ReadBack reads every table entry of gateway and compares it with what the
// intent in force wants there. It only reads: a standby controller may call it
// too, and a gateway caught mid-pass shows the entries not written yet.
func (e *Engine) ReadBack(ctx context.Context, gateway string) (*ReadBack, error) {
	g, err := e.gateway(gateway)
	if err != nil {
		return nil, err
	}
	w := e.currentWant(gateway)
	raw, err := g.client.ReadTable(ctx, 0, false)
	if err != nil {
		return nil, fmt.Errorf("engine: read back %s: %w", gateway, err)
	}
	out := &ReadBack{Gateway: gateway}
	haveP4 := make([]*p4v1.TableEntry, len(raw))
	for i, te := range raw {
		haveP4[i] = Canonicalize(te)
	}
	var wantSets []*reconcile.Set
	if w != nil {
		out.Version, wantSets = w.version, w.sets
	}
	name := func(te *p4v1.TableEntry) (compile.Entry, error) {
		en, err := e.codec.FromP4(te)
		if err != nil {
			return en, fmt.Errorf("engine: entry read back from %s: %w", gateway, err)
		}
		if w != nil {
			en.Origin, _ = w.origin(reconcile.Key(te))
		}
		return en, nil
	}
	for _, te := range haveP4 {
		en, err := name(te)
		if err != nil {
			return nil, err
		}
		out.Have = append(out.Have, en)
	}
	plan, err := reconcile.DiffSets(wantSets, []*reconcile.Set{reconcile.NewSet(haveP4, nil)}, e.order)
	if err != nil {
		return nil, fmt.Errorf("engine: compare %s with the intent: %w", gateway, err)
	}
	var held map[string]*p4v1.TableEntry // by key, for the entries that differ
	if plan.Modifies > 0 {
		held = make(map[string]*p4v1.TableEntry, len(haveP4))
		for _, te := range haveP4 {
			held[reconcile.Key(te)] = te
		}
	}
	for i, u := range plan.Updates {
		te := u.GetEntity().GetTableEntry()
		switch u.GetType() {
		case p4v1.Update_INSERT:
			en, err := e.codec.FromP4(te)
			if err != nil {
				return nil, fmt.Errorf("engine: wanted entry of %s: %w", gateway, err)
			}
			en.Origin = plan.Tags[i]
			out.Missing = append(out.Missing, en)
		case p4v1.Update_MODIFY:
			h := held[plan.Keys[i]]
			if h == nil {
				h = te
			}
			en, err := name(h)
			if err != nil {
				return nil, err
			}
			out.Differ = append(out.Differ, en)
		case p4v1.Update_DELETE:
			en, err := name(te)
			if err != nil {
				return nil, err
			}
			out.Extra = append(out.Extra, en)
		}
	}
	if !out.InSync() {
		for _, s := range wantSets {
			for i, te := range s.Entries {
				en, err := e.codec.FromP4(te)
				if err != nil {
					return nil, fmt.Errorf("engine: wanted entry of %s: %w", gateway, err)
				}
				en.Origin = s.Tags[i]
				out.Want = append(out.Want, en)
			}
		}
	}
	return out, nil
}
