package engine

import (
	"errors"
	"fmt"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/pipeline"
)

// mirrorOnly are the entities of the mirror (docs/pipeline.md §10), which a
// gateway's P4Info may lack: a build older than the mirror (the v1model and
// TNA builds both have it now) takes every entry but set_pool_mirror ones.
var mirrorOnly = map[string]bool{
	pipeline.ActionSetPoolMirror: true, pipeline.CounterMirror: true, pipeline.CounterMirrorBackend: true,
}

// ipv6Only are the entities of IPv6 (issue 19), which a gateway's P4Info may
// lack: a build older than IPv6 takes every IPv4 entry. A gateway that has an
// IPv6 table must allow its actions: the IPv6 tables' own actions
// (set_vip_v6, set_pool_v6, split_pool_v6) are the same on every target.
var ipv6Only = map[string]bool{
	pipeline.TableVIPv6: true, pipeline.TableGrayRulesV6: true, pipeline.ActionToBackendV6: true,
	pipeline.ActionSetVIPv6: true, pipeline.ActionSetPoolV6: true, pipeline.ActionSplitPoolV6: true,
	pipeline.DirectCounterVIPv6: true, pipeline.DirectCounterGrayRulesV6: true,
}

// optional says whether a gateway's P4Info may lack the entity named name.
func optional(name string) bool { return mirrorOnly[name] || ipv6Only[name] }

// ErrIncompatibleP4Info: a gateway's P4Info cannot carry the entries the engine
// encodes with the engine's P4Info.
var ErrIncompatibleP4Info = errors.New("engine: incompatible P4Info")

// CheckP4Info reports whether gw, the P4Info one gateway runs (a smaller build,
// or the TNA build whose names bf-p4c prefixes with "pipe."), can stand in for
// base, the P4Info the engine encodes entries with. Every table, match field,
// action, action parameter, counter and direct counter of base must resolve in
// gw, after a leading "pipe." is dropped from gw's names, with the same id, and
// the same bitwidth, match kind, unit, action refs and direct counter; table and
// counter sizes may differ, and gw may hold more. Entries are written by id, so
// a compatible gw takes them unchanged. Counters and direct counters are matched
// by name and unit, not id: bf-p4c ignores @id on TNA's Counter and DirectCounter
// and numbers them from their names (stable across builds, but not the pinned
// ids). A direct counter's id never goes on the wire (its cells are read through
// the table's entries), and the engine reads an indexed counter by the id of the
// gateway's own P4Info (gatewayCounterID). The mirror's action and counters
// (mirrorOnly) and the IPv6 tables, actions and direct counters (ipv6Only)
// may be missing; an IPv6 table gw has must allow every action of base's (no
// build of the old shape, vip_v6 with set_vip, is taken). The error wraps
// ErrIncompatibleP4Info and names the first mismatch.
func CheckP4Info(base, gw *p4info.Info) error {
	if base == nil || gw == nil {
		return fmt.Errorf("%w: no P4Info", ErrIncompatibleP4Info)
	}
	g, err := p4info.New(p4info.TrimNamePrefix(gw.P4Info(), p4info.TNAPrefix))
	if err != nil {
		// Two names equal once "pipe." is dropped.
		return fmt.Errorf("%w: %w", ErrIncompatibleP4Info, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrIncompatibleP4Info, fmt.Sprintf(format, a...))
	}
	for _, a := range base.Actions() {
		ga, err := g.Action(a.Name)
		if err != nil && optional(a.Name) {
			continue
		}
		if err != nil {
			return bad("action %s is missing", a.Name)
		}
		if ga.ID != a.ID {
			return bad("action %s has id %#x, want %#x", a.Name, ga.ID, a.ID)
		}
		for _, p := range a.Params {
			gp, err := ga.Param(p.Name)
			switch {
			case err != nil:
				return bad("action %s: parameter %s is missing", a.Name, p.Name)
			case gp.ID != p.ID:
				return bad("action %s: parameter %s has id %d, want %d", a.Name, p.Name, gp.ID, p.ID)
			case gp.Bitwidth != p.Bitwidth:
				return bad("action %s: parameter %s is %d bits, want %d", a.Name, p.Name, gp.Bitwidth, p.Bitwidth)
			}
		}
		if len(ga.Params) != len(a.Params) {
			return bad("action %s has %d parameters, want %d", a.Name, len(ga.Params), len(a.Params))
		}
	}
	for _, t := range base.Tables() {
		gt, err := g.Table(t.Name)
		if err != nil && optional(t.Name) {
			continue
		}
		if err != nil {
			return bad("table %s is missing", t.Name)
		}
		if gt.ID != t.ID {
			return bad("table %s has id %#x, want %#x", t.Name, gt.ID, t.ID)
		}
		if len(gt.Fields) != len(t.Fields) {
			return bad("table %s has %d match fields, want %d", t.Name, len(gt.Fields), len(t.Fields))
		}
		for _, f := range t.Fields {
			gf, err := gt.Field(f.Name)
			switch {
			case err != nil:
				return bad("table %s: match field %s is missing", t.Name, f.Name)
			case gf.ID != f.ID:
				return bad("table %s: match field %s has id %d, want %d", t.Name, f.Name, gf.ID, f.ID)
			case gf.Bitwidth != f.Bitwidth:
				return bad("table %s: match field %s is %d bits, want %d", t.Name, f.Name, gf.Bitwidth, f.Bitwidth)
			case gf.MatchType != f.MatchType:
				return bad("table %s: match field %s is %s, want %s", t.Name, f.Name, gf.MatchType, f.MatchType)
			}
		}
		for _, r := range t.Actions {
			gr, ok := gt.ActionRef(r.ID)
			name := fmt.Sprintf("%#x", r.ID)
			if a, ok := base.ActionByID(r.ID); ok {
				name = a.Name
			}
			switch {
			case !ok && (mirrorOnly[name] || ipv6Only[name] && !ipv6Only[t.Name]):
				// A build without the mirror (gray_rules without
				// set_pool_mirror) or without IPv6 (backend without
				// to_backend_v6). An IPv6 table the gateway has must
				// allow its actions.
			case !ok:
				return bad("table %s does not allow action %s", t.Name, name)
			case gr.Scope != r.Scope:
				return bad("table %s: action %s has scope %s, want %s", t.Name, name, gr.Scope, r.Scope)
			}
		}
		if gt.ConstDefaultActionID != t.ConstDefaultActionID || gt.IsConst != t.IsConst || gt.ImplementationID != t.ImplementationID {
			return bad("table %s: const default action, const entries or implementation differ", t.Name)
		}
		switch {
		case t.DirectCounter == nil && gt.DirectCounter != nil:
			return bad("table %s has a direct counter, want none", t.Name)
		case t.DirectCounter != nil && (gt.DirectCounter == nil || gt.DirectCounter.Name != t.DirectCounter.Name):
			return bad("table %s: direct counter %s (id %#x) is missing", t.Name, t.DirectCounter.Name, t.DirectCounter.ID)
		case t.DirectCounter != nil && gt.DirectCounter.Unit != t.DirectCounter.Unit:
			return bad("table %s: direct counter %s counts %s, want %s", t.Name, t.DirectCounter.Name, gt.DirectCounter.Unit, t.DirectCounter.Unit)
		}
	}
	for _, c := range base.Counters() {
		gc, err := g.Counter(c.Name)
		switch {
		case err != nil && optional(c.Name):
		case err != nil:
			return bad("counter %s is missing (a TNA build needs --p4runtime-force-std-externs)", c.Name)
		case gc.Unit != c.Unit:
			return bad("counter %s counts %s, want %s", c.Name, gc.Unit, c.Unit)
		}
	}
	for _, c := range base.DirectCounters() {
		gc, err := g.DirectCounter(c.Name)
		switch {
		case err != nil && optional(c.Name):
		case err != nil:
			return bad("direct counter %s is missing (a TNA build needs --p4runtime-force-std-externs)", c.Name)
		case gc.Unit != c.Unit:
			return bad("direct counter %s counts %s, want %s", c.Name, gc.Unit, c.Unit)
		}
	}
	return nil
}

// gatewayCounterID is the id of the counter named name (a base name, without
// "pipe.") in info, a gateway's P4Info that passed CheckP4Info.
func gatewayCounterID(info *p4info.Info, name string) (uint32, error) {
	if c, err := info.Counter(name); err == nil {
		return c.ID, nil
	}
	c, err := info.Counter(p4info.TNAPrefix + name)
	if err != nil {
		return 0, err
	}
	return c.ID, nil
}

// ipv6 says whether gateway runs a program with IPv6 tables: the engine's
// P4Info and the gateway's (Config.P4InfoFor) both have vip_v6 and
// gray_rules_v6. CheckP4Info saw that the gateway's allow the engine's
// actions.
func (e *Engine) ipv6(gateway string) bool {
	table := func(info *p4info.Info, name string) bool {
		_, err := info.Table(name)
		if err != nil {
			_, err = info.Table(p4info.TNAPrefix + name)
		}
		return err == nil
	}
	base := e.codec.Info()
	if !table(base, pipeline.TableVIPv6) || !table(base, pipeline.TableGrayRulesV6) {
		return false
	}
	if e.cfg.P4InfoFor != nil {
		if gi := e.cfg.P4InfoFor(gateway); gi != nil {
			return table(gi, pipeline.TableVIPv6) && table(gi, pipeline.TableGrayRulesV6)
		}
	}
	return true
}

// withoutIPv6 is entries for a gateway whose program has no IPv6 tables. It
// cannot receive an IPv6 flow (its parser takes none), so the gray_rules_v6
// entries of the rules without an address, which could only match IPv6
// flows, are left out; any other IPv6 entry (an IPv6 VIP, backend or rule)
// is an error naming it: the intent asks that gateway for what it cannot do.
func withoutIPv6(gateway string, entries []compile.Entry) ([]compile.Entry, error) {
	var out []compile.Entry
	for i := range entries {
		en := &entries[i]
		_, src := en.Field(pipeline.MatchInnerSrc6.Name)
		_, dst := en.Field(pipeline.MatchInnerDst6.Name)
		switch {
		case en.Table == pipeline.TableGrayRulesV6 && !src && !dst:
			if out == nil {
				out = append(make([]compile.Entry, 0, len(entries)), entries[:i]...)
			}
			continue
		case ipv6Only[en.Table] || ipv6Only[en.Action]:
			return nil, fmt.Errorf("%w: gateway %s runs a program without IPv6 (no %s in its P4Info): it cannot take %s (%s)",
				ErrCompile, gateway, pipeline.TableGrayRulesV6, en.Origin, shortName(en.Table))
		}
		if out != nil {
			out = append(out, *en)
		}
	}
	if out == nil {
		return entries, nil
	}
	return out, nil
}
