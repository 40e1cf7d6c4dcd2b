package engine

import (
	"context"
	"fmt"
	"strings"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/controller/reconcile"
)

// DefaultMaxChanges is the number of individual changes a GatewayPlan lists.
const DefaultMaxChanges = 100

// OriginForeign labels deletions of entries no intent of this engine wrote.
const OriginForeign = "foreign"

// GatewayPlan is what applying a prepared intent would write to one gateway.
type GatewayPlan struct {
	Gateway string
	// Reachable says the plan was computed against the entries read back from the
	// target just now. When false, Note says against what instead.
	Reachable bool
	Note      string
	// Update counts.
	Inserts, Modifies, Deletes int
	// Foreign counts the deletions of entries no intent of this engine wrote.
	Foreign int
	// Groups summarize the updates by operation, table and origin (the intent
	// object: "pool gray-router v1", "rule vm-10.0.0.5", "foreign").
	Groups []ChangeGroup
	// Changes lists the first updates one by one; Truncated says there are more.
	Changes   []Change
	Truncated bool
	// Overflows are the tables the plan would fill past their size on the
	// gateway (as its P4Info says, learned at its last full pass; before the
	// gateway was reached once, as the P4Info configured for it says:
	// Source SourceConfigured). The gateway's pass refuses such a plan and
	// writes nothing; the API refuses a change when Overflow.Refuse.
	Overflows []Overflow
}

// ChangeGroup counts the updates of one operation, table and origin.
type ChangeGroup struct {
	Op     string // INSERT, MODIFY, DELETE
	Table  string
	Origin string
	Count  int
}

// Change is one update of a plan.
type Change struct {
	Op     string
	Table  string
	Origin string
	Entry  string // the entry, by name (compile.Entry.String)
}

// Empty reports whether the plan writes nothing.
func (p *GatewayPlan) Empty() bool { return p.Inserts+p.Modifies+p.Deletes == 0 }

// Plan computes, for every gateway of p, the updates applying p would write,
// against the entries read back from the target now (bounded by
// Config.PlanTimeout). A gateway that cannot be read is planned against what it
// should hold under the current intent, and a gateway the engine does not
// manage yet against an empty target; Note says so. Plan writes nothing. It is
// for dry runs and Diff, which say what the gateways hold; ChangePlan is the
// cheap plan of a change that is about to be applied.
func (e *Engine) Plan(ctx context.Context, p *Prepared) []GatewayPlan {
	return e.planEach(p, func(gp *GatewayPlan, g *gateway, cur *want) ([]*reconcile.Set, map[uint32]int) {
		if g == nil {
			gp.Note = "gateway not managed yet: planned against an empty target"
			return nil, nil
		}
		rctx, cancel := context.WithTimeout(ctx, e.cfg.PlanTimeout)
		raw, err := g.client.ReadTable(rctx, 0, false)
		cancel()
		if err == nil {
			gp.Reachable = true
			read := make([]*p4v1.TableEntry, len(raw))
			for i, te := range raw {
				read[i] = Canonicalize(te)
			}
			before := map[uint32]int{}
			countTables(before, read)
			return []*reconcile.Set{reconcile.NewSet(read, nil)}, before
		}
		if code, _ := statusCode(err); code == codes.FailedPrecondition {
			gp.Reachable = true // it answers, but runs no pipeline yet: it holds nothing
			gp.Note = "the gateway has no pipeline yet: planned against an empty target"
			return nil, nil
		}
		if cur == nil {
			gp.Note = fmt.Sprintf("target unreachable (%s): planned against an empty target", shortErr(err))
			return nil, nil
		}
		gp.Note = fmt.Sprintf("target unreachable (%s): planned against the entries of intent version %d", shortErr(err), cur.version)
		return cur.sets, cur.counts()
	})
}

// ChangePlan computes, for every gateway of p, the updates applying p writes on
// top of the current intent: the desired entries of the current version against
// those of p (desired against desired), without reading the gateways back. Pool
// versions both share are not even looked at, so a cutover's plan costs the
// gray rules, not the 258k buckets. A gateway the engine does not manage yet is
// planned against an empty target. The Note says what the plan is against;
// Reachable is false (nothing was read). A gateway that does not hold the
// current version exactly (status InSync) gets a full pass, which reads it back
// and may write more than this plan says.
func (e *Engine) ChangePlan(p *Prepared) []GatewayPlan {
	return e.planEach(p, func(gp *GatewayPlan, g *gateway, cur *want) ([]*reconcile.Set, map[uint32]int) {
		if g == nil || cur == nil {
			gp.Note = "gateway not managed yet: planned against an empty target"
			return nil, nil
		}
		gp.Note = fmt.Sprintf("planned against the entries of intent version %d (not read back)", cur.version)
		if st := g.status(); !st.InSync || st.Version != cur.version {
			gp.Note += fmt.Sprintf("; the gateway does not hold them yet (version %d, in sync %v): its next pass reads it back", st.Version, st.InSync)
		}
		return cur.sets, cur.counts()
	})
}

// planEach plans p for each of its gateways: against says, for the gateway's
// connection g and current desired state cur (either may be nil), what the
// plan is against (the sets and their entries by table id; nil for an empty
// target) and notes it in gp.
func (e *Engine) planEach(p *Prepared, against func(gp *GatewayPlan, g *gateway, cur *want) ([]*reconcile.Set, map[uint32]int)) []GatewayPlan {
	if p == nil || p.result == nil {
		return nil
	}
	var out []GatewayPlan
	for _, gres := range p.result.Gateways {
		gp := GatewayPlan{Gateway: gres.Name}
		e.mu.Lock()
		g, cur := e.gws[gres.Name], e.wants[gres.Name]
		e.mu.Unlock()
		have, before := against(&gp, g, cur)
		if before == nil {
			before = map[uint32]int{}
		}
		e.planOne(&gp, p.wants[gres.Name], have, cur, g, before)
		out = append(out, gp)
	}
	return out
}

// planOne diffs have (holding before, by table id) against w and checks the
// plan against the table sizes learned from g, or, for a gateway not reached
// yet (g nil: not managed yet), those of the P4Info configured for it.
func (e *Engine) planOne(gp *GatewayPlan, w *want, have []*reconcile.Set, cur *want, g *gateway, before map[uint32]int) {
	plan, err := reconcile.DiffSets(w.sets, have, e.order)
	if err != nil {
		gp.Note = strings.TrimPrefix(gp.Note+"; ", "; ") + "diff failed: " + err.Error()
		return
	}
	e.summarize(gp, plan, cur)
	var c *Capacity
	if g != nil {
		c = g.tableCapacity()
	}
	if c == nil {
		c = e.configuredCapacity(gp.Gateway)
	}
	gp.Overflows = e.overflows(gp.Gateway, 0, c, before, plan.Updates)
	gp.Overflows = append(gp.Overflows, e.boundOverflows(gp.Gateway, 0, entriesOf(have), plan.Updates)...)
}

func (e *Engine) summarize(gp *GatewayPlan, plan *reconcile.Plan, cur *want) {
	gp.Inserts, gp.Modifies, gp.Deletes = plan.Inserts, plan.Modifies, plan.Deletes
	groups := map[ChangeGroup]int{}
	var order []ChangeGroup
	for i, u := range plan.Updates {
		te := u.GetEntity().GetTableEntry()
		origin := plan.Tags[i]
		if u.GetType() == p4v1.Update_DELETE && origin == "" {
			// Read back: the origin is the current intent's, if it wants it.
			if cur != nil {
				origin, _ = cur.origin(plan.Keys[i])
			}
			if origin == "" {
				origin = OriginForeign
				gp.Foreign++
			}
		}
		table := fmt.Sprintf("%#x", te.GetTableId())
		if t, ok := e.codec.Info().TableByID(te.GetTableId()); ok {
			table = t.Name
		}
		gk := ChangeGroup{Op: u.GetType().String(), Table: table, Origin: origin}
		if groups[gk] == 0 {
			order = append(order, gk)
		}
		groups[gk]++
		if len(gp.Changes) < DefaultMaxChanges {
			gp.Changes = append(gp.Changes, Change{Op: gk.Op, Table: table, Origin: origin, Entry: e.codec.Describe(te)})
		} else {
			gp.Truncated = true
		}
	}
	for _, gk := range order {
		gk.Count = groups[gk]
		gp.Groups = append(gp.Groups, gk)
	}
}

func shortErr(err error) string {
	if code, ok := statusCode(err); ok {
		return code.String()
	}
	return err.Error()
}
