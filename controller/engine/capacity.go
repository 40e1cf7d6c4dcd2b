package engine

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/internal/vipindex"
	"github.com/graygw/graygw/pipeline"
)

// ErrCapacity: a gateway's tables are too small for a plan (wrapped by
// *CapacityError). Nothing was written to the gateway.
var ErrCapacity = errors.New("engine: gateway tables too small")

// Capacity is what one gateway's tables hold: the size of each table, by
// P4Info table id, as declared by the P4Info the target runs. A table with
// size 0 or absent is unknown and not checked.
type Capacity struct {
	// Sizes by table id.
	Sizes map[uint32]int64
	// Source says where the sizes come from ("its P4Info size", or the P4Info
	// the controller pushed when the target does not return its own).
	Source string
}

// SourceConfigured is Capacity.Source for sizes taken from the P4Info
// configured for a gateway not reached yet (Config.P4InfoFor, else
// Config.P4Info): a plan is checked against them until the gateway's first
// full pass learns what it runs.
const SourceConfigured = "the size in its configured P4Info; gateway not reached yet"

// configuredCapacity is the table sizes of the P4Info configured for gateway
// (Config.P4InfoFor, else Config.P4Info). nil when that P4Info does not pass
// CheckP4Info: its ids need not mean the same tables, and the gateway gets no
// write anyway (its status says why).
func (e *Engine) configuredCapacity(gateway string) *Capacity {
	info := e.codec.Info()
	if e.cfg.P4InfoFor != nil {
		if gi := e.cfg.P4InfoFor(gateway); gi != nil {
			info = gi
		}
	}
	e.configuredMu.Lock()
	defer e.configuredMu.Unlock()
	if c, ok := e.configured[info]; ok {
		return c
	}
	var c *Capacity
	if info == e.codec.Info() || CheckP4Info(e.codec.Info(), info) == nil {
		c = capacityOf(info.P4Info(), SourceConfigured)
	}
	if e.configured == nil {
		e.configured = map[*p4info.Info]*Capacity{}
	}
	e.configured[info] = c
	return c
}

// capacityOf reads the table sizes of info.
func capacityOf(info *p4configv1.P4Info, source string) *Capacity {
	c := &Capacity{Sizes: map[uint32]int64{}, Source: source}
	for _, t := range info.GetTables() {
		if s := t.GetSize(); s > 0 {
			c.Sizes[t.GetPreamble().GetId()] = s
		}
	}
	return c
}

// Overflow is one table of one gateway that a plan would fill past its size.
type Overflow struct {
	Gateway string
	Table   string // short name (gray_rules)
	// Need is the most entries the table holds at once while the plan is
	// written: make-before-break inserts come before the deletes, so a pool
	// flip holds the old and the new version at the same time. Final is the
	// count once the plan is complete, Current the count before it.
	Need, Final, Current int
	// Size is the table's size on the gateway, Source where it comes from.
	Size   int64
	Source string
	// Unit is what is counted: "" for entries, UnitMasks for the distinct
	// gray-rule masks of a target with a tuple-space bound, UnitVIPWindow for
	// the IPv4 VIPs that could hold one VIP's window and it (VIPs names them).
	Unit string
	// VIPs are, for UnitVIPWindow, the crowded VIP and the others that could
	// hold its window (vipindex.Crowded) in the set Need counts.
	VIPs []netip.Addr
	// Version is the intent version planned.
	Version uint64
}

// UnitMasks is Overflow.Unit of a gray-rule mask bound (Config.MaxGrayMasks).
const UnitMasks = "distinct masks"

// UnitVIPWindow is Overflow.Unit of the XDP vip_index bound (Config.VIPWindow).
const UnitVIPWindow = "IPv4 VIPs for one window"

func (o Overflow) String() string {
	if o.Unit == UnitVIPWindow {
		return o.vipWindowString()
	}
	if o.Unit == UnitMasks {
		v := ""
		if o.Version > 0 {
			v = fmt.Sprintf(" version %d", o.Version)
		}
		need := fmt.Sprintf("%d distinct masks", o.Final)
		if o.Need > o.Final {
			need += fmt.Sprintf(" (%d at once while old rules are replaced make-before-break)", o.Need)
		}
		return fmt.Sprintf("%s: intent%s needs %s, gateway %s holds %d (%s: the agent would refuse the next one "+
			"with \"%d distinct masks in use (the tuple-space bound)\"); rules that fix the same fields with the same "+
			"prefix lengths share a mask: use fewer shapes, or remove rules", o.Table, v, need, o.Gateway, o.Size, o.Source, o.Size)
	}
	var b strings.Builder
	if o.Final > int(o.Size) || o.Need == o.Final {
		fmt.Fprintf(&b, "%s: intent", o.Table)
		if o.Version > 0 {
			fmt.Fprintf(&b, " version %d", o.Version)
		}
		fmt.Fprintf(&b, " needs %d entries", o.Final)
		if o.Need > o.Final {
			fmt.Fprintf(&b, " (%d at once while old entries are replaced make-before-break)", o.Need)
		}
	} else {
		fmt.Fprintf(&b, "%s: the change needs %d entries at once (make-before-break: the new entries are written before the %d old ones are deleted; %d once done)",
			o.Table, o.Need, o.Need-o.Final, o.Final)
	}
	fmt.Fprintf(&b, ", gateway %s holds %d (%s); %s", o.Gateway, o.Size, o.Source, advice(o.Table, o.Final <= int(o.Size)))
	return b.String()
}

// Refuse says whether the API should refuse a change with this overflow: it
// makes the table overflow, or overflow more. A change that shrinks an intent
// already too big for the gateway is accepted (it is the way back).
func (o Overflow) Refuse() bool {
	if o.Need <= int(o.Size) {
		return false
	}
	return !(o.Current > int(o.Size) && o.Final <= o.Current)
}

func advice(table string, finalFits bool) string {
	var what string
	switch table {
	case shortName(pipeline.TableGrayRules):
		what = "remove rules"
	case shortName(pipeline.TableGrayRulesV6):
		what = "remove IPv6 rules or rules without an address (in both rule tables)"
	case shortName(pipeline.TableBackendSelect), shortName(pipeline.TablePoolHash):
		what = "remove pools"
		if finalFits {
			what = "change fewer pools at once"
		}
	case shortName(pipeline.TableVIP), shortName(pipeline.TableVIPv6):
		what = "remove VIPs"
	case shortName(pipeline.TableVNITenant):
		what = "remove VNIs from the tenants"
	case shortName(pipeline.TableBackend):
		what = "remove backends"
	default:
		what = "remove entries"
	}
	if finalFits && (table == shortName(pipeline.TableGrayRules) || table == shortName(pipeline.TableGrayRulesV6)) {
		what = "remove rules first, in a change of their own"
	}
	return what + " or use a larger build"
}

func shortName(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// CapacityError is a plan refused for one gateway because its tables are too
// small; it wraps ErrCapacity.
type CapacityError struct {
	Overflows []Overflow
}

func (e *CapacityError) Error() string {
	parts := make([]string, len(e.Overflows))
	for i, o := range e.Overflows {
		parts[i] = o.String()
	}
	return strings.Join(parts, "; ")
}

func (e *CapacityError) Unwrap() error { return ErrCapacity }

// countTables counts entries by table id.
func countTables(dst map[uint32]int, entries []*p4v1.TableEntry) {
	for _, te := range entries {
		dst[te.GetTableId()]++
	}
}

// counts returns w's entries by table id (computed once; pool sets are shared
// and counted again per want, 4097 entries each: cheap).
func (w *want) counts() map[uint32]int {
	w.cntOnce.Do(func() {
		w.cnt = map[uint32]int{}
		for _, s := range w.sets {
			countTables(w.cnt, s.Entries)
		}
	})
	return w.cnt
}

// overflows walks updates in the order they are written (phase by phase) from
// before (entries by table id) and returns the tables whose count goes past
// their size in c at any point. c nil: nothing is known, nothing is checked.
func (e *Engine) overflows(gateway string, version uint64, c *Capacity, before map[uint32]int, updates []*p4v1.Update) []Overflow {
	if c == nil || len(c.Sizes) == 0 {
		return nil
	}
	cur := make(map[uint32]int, len(before))
	peak := make(map[uint32]int, len(before))
	for t, n := range before {
		cur[t], peak[t] = n, n
	}
	for _, u := range updates {
		t := u.GetEntity().GetTableEntry().GetTableId()
		switch u.GetType() {
		case p4v1.Update_INSERT:
			cur[t]++
			peak[t] = max(peak[t], cur[t])
		case p4v1.Update_DELETE:
			cur[t]--
		}
	}
	var out []Overflow
	for _, id := range e.order { // the tables in pipeline order: stable messages
		size, ok := c.Sizes[id]
		if !ok || int64(peak[id]) <= size {
			continue
		}
		name := fmt.Sprintf("%#x", id)
		if t, ok := e.codec.Info().TableByID(id); ok {
			name = shortName(t.Name)
		}
		out = append(out, Overflow{Gateway: gateway, Table: name, Need: peak[id], Final: cur[id], Current: before[id],
			Size: size, Source: c.Source, Version: version})
	}
	return out
}

// SourceMaskBound is Overflow.Source of a gray-rule mask bound.
const SourceMaskBound = "the XDP target's tuple-space bound"

// grayMask is the mask tuple of a gray_rules entry (the tuple-space search's
// key shape): each match field's id and ternary mask (LPM prefix length, range or
// optional presence for other kinds). Entries are canonical, so equal shapes
// give equal strings.
func grayMask(te *p4v1.TableEntry) string {
	ms := te.GetMatch()
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		switch {
		case m.GetTernary() != nil:
			parts = append(parts, fmt.Sprintf("%d:t%x", m.GetFieldId(), m.GetTernary().GetMask()))
		case m.GetLpm() != nil:
			parts = append(parts, fmt.Sprintf("%d:l%d", m.GetFieldId(), m.GetLpm().GetPrefixLen()))
		default:
			parts = append(parts, fmt.Sprintf("%d:x", m.GetFieldId()))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// maskOverflows checks a plan against gateway's gray-rule mask bounds
// (Config.MaxGrayMasks for gray_rules, MaxGrayMasks6 for gray_rules_v6).
func (e *Engine) maskOverflows(gateway string, version uint64, before iter.Seq[*p4v1.TableEntry], updates []*p4v1.Update) []Overflow {
	var out []Overflow
	for _, b := range []struct {
		bound func(string) int
		table uint32
		name  string
	}{
		{e.cfg.MaxGrayMasks, e.grayRulesID, pipeline.TableGrayRules},
		{e.cfg.MaxGrayMasks6, e.grayRules6ID, pipeline.TableGrayRulesV6},
	} {
		if b.bound == nil || b.table == 0 {
			continue
		}
		if o := maskOverflow(gateway, version, before, updates, b.table, shortName(b.name), b.bound(gateway)); o != nil {
			out = append(out, *o)
		}
	}
	return out
}

// maskOverflow checks a plan against a bound on the distinct masks of one
// gray rule table: the masks held before (the table's entries of before), at
// the peak while updates are written in order, and at the end. nil when
// there is no bound (0) or it is not passed.
func maskOverflow(gateway string, version uint64, before iter.Seq[*p4v1.TableEntry], updates []*p4v1.Update, gray uint32, table string, bound int) *Overflow {
	if bound <= 0 {
		return nil
	}
	masks := map[string]int{}
	for te := range before {
		if te.GetTableId() == gray {
			masks[grayMask(te)]++
		}
	}
	current := len(masks)
	peak := current
	for _, u := range updates {
		te := u.GetEntity().GetTableEntry()
		if te.GetTableId() != gray {
			continue
		}
		k := grayMask(te)
		switch u.GetType() {
		case p4v1.Update_INSERT:
			masks[k]++
			peak = max(peak, len(masks))
		case p4v1.Update_DELETE:
			if masks[k]--; masks[k] <= 0 {
				delete(masks, k)
			}
		}
	}
	if peak <= bound {
		return nil
	}
	return &Overflow{Gateway: gateway, Table: table, Need: peak, Final: len(masks),
		Current: current, Size: int64(bound), Source: SourceMaskBound, Version: version, Unit: UnitMasks}
}

// SourceVIPWindow is Overflow.Source of the vip_index bound.
const SourceVIPWindow = "the XDP agent's vip_index: an IPv4 VIP lives in one of the cells of its window, from its hash's home cell"

// vipWindowString says which VIPs crowd a window and what to do.
func (o Overflow) vipWindowString() string {
	v := ""
	if o.Version > 0 {
		v = fmt.Sprintf(" version %d", o.Version)
	}
	addrs := make([]string, len(o.VIPs))
	for i, a := range o.VIPs {
		addrs[i] = a.String()
	}
	crowded, others := "?", "?"
	if len(addrs) > 1 {
		crowded, others = addrs[0], strings.Join(addrs[1:], ", ")
	}
	return fmt.Sprintf("vip: intent%s has %d IPv4 VIPs whose hash homes lie so close that %d of them (%s) could take "+
		"all %d cells of %s's window on gateway %s, which holds %d per window (%s): the agent could refuse one with "+
		"\"the %d cells of its window are taken\"; only addresses that collide in the hash do this (consecutive "+
		"ones never do): use another address for %s or one of the others",
		v, o.Need, o.Need-1, others, o.Size, crowded, o.Gateway, o.Size, o.Source, o.Size, crowded)
}

// boundOverflows checks a plan against gateway's target bounds other than
// table sizes: gray-rule masks (maskOverflows) and the vip window.
func (e *Engine) boundOverflows(gateway string, version uint64, before iter.Seq[*p4v1.TableEntry], updates []*p4v1.Update) []Overflow {
	out := e.maskOverflows(gateway, version, before, updates)
	if e.cfg.VIPWindow != nil && e.vipID != 0 {
		if o := vipOverflow(gateway, version, before, updates, e.vipID, e.cfg.VIPWindow(gateway)); o != nil {
			out = append(out, *o)
		}
	}
	return out
}

// vipOverflow checks a plan against the vip_index window of window cells
// (0: none): could some IPv4 VIP find its window taken (vipindex.Crowded)?
// Need counts the VIPs held before and every one inserted, a superset of
// what the table holds at any point while updates are written in any order;
// Final the VIPs once done, Current those before. nil when not past window.
func vipOverflow(gateway string, version uint64, before iter.Seq[*p4v1.TableEntry], updates []*p4v1.Update, vip uint32, window int) *Overflow {
	if window <= 0 {
		return nil
	}
	held := map[uint32]bool{}
	for te := range before {
		if a, ok := vipAddr(te, vip); ok {
			held[a] = true
		}
	}
	current := len(vipindex.Crowded(slices.Collect(maps.Keys(held))))
	all := maps.Clone(held)
	for _, u := range updates {
		a, ok := vipAddr(u.GetEntity().GetTableEntry(), vip)
		switch {
		case !ok:
		case u.GetType() == p4v1.Update_INSERT:
			held[a], all[a] = true, true
		case u.GetType() == p4v1.Update_DELETE:
			delete(held, a)
		}
	}
	crowd := vipindex.Crowded(slices.Collect(maps.Keys(all)))
	if len(crowd) <= window {
		return nil
	}
	vips := make([]netip.Addr, len(crowd))
	for i, a := range crowd {
		vips[i] = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
	}
	return &Overflow{Gateway: gateway, Table: shortName(pipeline.TableVIP), Need: len(crowd),
		Final: len(vipindex.Crowded(slices.Collect(maps.Keys(held)))), Current: current, Size: int64(window),
		Source: SourceVIPWindow, Version: version, Unit: UnitVIPWindow, VIPs: vips}
}

// vipAddr is the IPv4 address a vip entry matches, as a number
// (10.0.0.1 = 0x0a000001; P4Runtime's canonical bytes drop leading zeros).
func vipAddr(te *p4v1.TableEntry, vip uint32) (uint32, bool) {
	if te.GetTableId() != vip || len(te.GetMatch()) != 1 {
		return 0, false
	}
	b := te.GetMatch()[0].GetExact().GetValue()
	if len(b) > 4 {
		return 0, false
	}
	var a uint32
	for _, x := range b {
		a = a<<8 | uint32(x)
	}
	return a, true
}

// entriesOf yields the entries of sets.
func entriesOf(sets []*reconcile.Set) iter.Seq[*p4v1.TableEntry] {
	return func(yield func(*p4v1.TableEntry) bool) {
		for _, s := range sets {
			for _, te := range s.Entries {
				if !yield(te) {
					return
				}
			}
		}
	}
}
