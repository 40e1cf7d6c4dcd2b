package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
)

// Problem classes beyond the intent's own (see the proto's Problem.class).
const (
	ClassCompile = "compile"
	ClassRequest = "request"
	ClassNothing = "nothing"
)

// change is one requested change of the intent.
type change struct {
	doc     []byte
	op      string
	opts    *graygwv1.ChangeOptions
	summary string // derived by the caller; "" = derived from the intents
	undoes  uint64
	// base, when set, is the version the doc was derived from (Cutover,
	// Rollback): the change is refused (ABORTED) if the store moved on.
	base *store.Version
	// spec, when set, is doc parsed (by an edit that spliced the text).
	spec *intent.Spec
}

// Apply implements graygwv1.ControllerServer.
func (s *Service) Apply(ctx context.Context, req *graygwv1.ApplyRequest) (*graygwv1.ApplyResponse, error) {
	if strings.TrimSpace(req.GetIntentYaml()) == "" {
		return &graygwv1.ApplyResponse{Result: refused(problem("intent_yaml", "required: the whole intent document", ClassRequest))}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.changeLocked(ctx, change{doc: []byte(req.GetIntentYaml()), op: OpApply, opts: req.GetOptions()})
	if err != nil {
		return nil, err
	}
	return &graygwv1.ApplyResponse{Result: res}, nil
}

// Diff implements graygwv1.ControllerServer.
func (s *Service) Diff(ctx context.Context, req *graygwv1.DiffRequest) (*graygwv1.DiffResponse, error) {
	cur, err := s.cfg.Store.Current(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(err)
	}
	doc := []byte(req.GetIntentYaml())
	out := &graygwv1.DiffResponse{}
	if cur != nil {
		out.BaseVersion = cur.Number
	}
	if strings.TrimSpace(string(doc)) == "" {
		if cur == nil {
			return nil, status.Error(codes.FailedPrecondition, "no intent stored yet: give a document to diff")
		}
		doc = cur.Intent
	}
	in, p, _, problems := s.validate(doc, nil)
	if problems != nil {
		out.Problems = problems
		return out, nil
	}
	old, _ := s.cfg.Engine.Intent()
	out.Summary = describeChange(old, in)
	out.Plans = plans(s.cfg.Engine.Plan(ctx, p))
	return out, nil
}

// validate loads and compiles doc (spec: doc already parsed, or nil);
// problems is nil when it is acceptable. It returns the parsed spec too.
func (s *Service) validate(doc []byte, spec *intent.Spec) (*intent.Intent, *engine.Prepared, *intent.Spec, []*graygwv1.Problem) {
	if spec == nil {
		sp, err := intent.Parse(doc)
		if err != nil {
			return nil, nil, nil, toProblems(err)
		}
		spec = sp
	}
	in, err := spec.Validate()
	if err != nil {
		return nil, nil, nil, toProblems(err)
	}
	p, err := s.cfg.Engine.Prepare(in)
	if err != nil {
		return nil, nil, nil, []*graygwv1.Problem{problem("", err.Error(), ClassCompile)}
	}
	return in, p, spec, nil
}

// changeLocked validates, stores and applies c. Callers hold s.mu. Validation
// problems are returned in the result; errors are for the call (gRPC status).
func (s *Service) changeLocked(ctx context.Context, c change) (*graygwv1.ChangeResult, error) {
	if s.draining {
		return nil, status.Error(codes.Unavailable, "controller draining: no changes accepted")
	}
	// A change derived from a version (Cutover, Rollback) read it under s.mu
	// just now: no second read (~1 MB of JSON at full size). The store's
	// compare-and-swap still refuses a stale base.
	cur := c.base
	if cur == nil {
		var err error
		cur, err = s.cfg.Store.Current(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, storeError(err)
		}
	}
	base := uint64(0)
	if cur != nil {
		base = cur.Number
	}
	if c.base != nil && c.base.Number != base {
		return nil, status.Errorf(codes.Aborted, "intent version %d became current while the change was prepared from %d; retry", base, c.base.Number)
	}
	if exp := c.opts.GetExpectedVersion(); exp != 0 && exp != base {
		return nil, status.Errorf(codes.Aborted, "expected intent version %d, current is %d", exp, base)
	}
	res := &graygwv1.ChangeResult{Version: base}
	in, p, spec, problems := s.validate(c.doc, c.spec)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	old, _ := s.cfg.Engine.Intent()
	res.Summary = c.summary
	if res.Summary == "" {
		res.Summary = describeChange(old, in)
	}
	if c.opts.GetSummary() != "" {
		res.Summary = c.opts.GetSummary()
	}
	s.log.Debug("change validated", "operation", c.op)
	// A dry run says what the gateways would get: it reads them back. A change
	// that is applied is planned against the current intent's desired entries
	// (no read-back: the engine's pass repairs any drift on its own).
	var gps []engine.GatewayPlan
	if c.opts.GetDryRun() {
		gps = s.cfg.Engine.Plan(ctx, p)
	} else {
		gps = s.cfg.Engine.ChangePlan(p)
	}
	res.Plans = plans(gps)
	s.log.Debug("change planned", "operation", c.op)
	// A change a gateway's tables cannot hold is refused before it is stored:
	// the gateway would refuse it and keep its entries (nothing half-applied),
	// but the intent in force would then say what no gateway can hold.
	if err := overflowError(gps); err != nil {
		return nil, err
	}
	if cur != nil && bytes.Equal(cur.Intent, c.doc) {
		res.Unchanged = true
		return res, nil
	}
	if c.opts.GetDryRun() {
		return res, nil
	}
	actor := actorOf(ctx, c.opts.GetActor())
	v, ev, err := s.cfg.Store.Commit(ctx, store.Change{Base: base, Intent: c.doc, Actor: actor, Operation: c.op,
		Summary: res.Summary, Undoes: c.undoes})
	if errors.Is(err, store.ErrConflict) {
		return nil, status.Errorf(codes.Aborted, "%v", err)
	}
	if err != nil {
		return nil, storeError(err)
	}
	res.Applied, res.Version, res.HistorySeq = true, v.Number, ev.Seq
	nv := *v
	nv.Intent = c.doc
	s.doc = &docCache{ver: &nv, spec: spec}
	s.log.Info("intent changed", "version", v.Number, "operation", c.op, "actor", actor, "summary", res.Summary)
	if err := s.cfg.Engine.Commit(p, v.Number); err != nil {
		// Only when the engine is closing: the version is stored and will be in
		// force at the next start.
		return nil, status.Errorf(codes.Unavailable, "intent stored as version %d but not applied: %v", v.Number, err)
	}
	if c.opts.GetWait() {
		timeout := s.cfg.WaitTimeout
		if d := c.opts.GetWaitTimeout(); d != nil && d.AsDuration() > 0 {
			timeout = d.AsDuration()
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := s.cfg.Engine.WaitVersion(wctx, v.Number)
		cancel()
		for _, g := range st {
			res.Gateways = append(res.Gateways, gatewayStatus(g))
		}
		if err != nil {
			res.WaitError = err.Error()
		}
	}
	return res, nil
}

func refused(ps ...*graygwv1.Problem) *graygwv1.ChangeResult {
	return &graygwv1.ChangeResult{Problems: ps}
}

func problem(path, msg, class string) *graygwv1.Problem {
	return &graygwv1.Problem{Path: path, Message: msg, Class: class}
}

// classes names the intent's problem classes as in the API.
var classes = []struct {
	err  error
	name string
}{
	{intent.ErrSyntax, "syntax"}, {intent.ErrUnknownField, "unknown_field"}, {intent.ErrRequired, "required"},
	{intent.ErrRange, "range"}, {intent.ErrAddress, "address"}, {intent.ErrUnknownRef, "unknown_ref"},
	{intent.ErrDuplicate, "duplicate"}, {intent.ErrConflict, "conflict"}, {intent.ErrNoWeight, "no_weight"},
	{intent.ErrOverlap, "overlap"}, {intent.ErrCapacity, "capacity"},
	{compile.ErrTransition, ClassCompile}, {compile.ErrMaglev, ClassCompile}, {engine.ErrCompile, ClassCompile},
}

func classOf(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "invalid"
}

// toProblems lists the problems of a validation error.
func toProblems(err error) []*graygwv1.Problem {
	var errs *intent.Errors
	if errors.As(err, &errs) {
		var out []*graygwv1.Problem
		for _, p := range errs.Problems {
			out = append(out, problem(p.Path, p.Msg, classOf(p.Err)))
		}
		return out
	}
	return []*graygwv1.Problem{problem("", err.Error(), classOf(err))}
}

// problemsError turns problems into one error (for Seed).
func problemsError(ps []*graygwv1.Problem) error {
	var lines []string
	for _, p := range ps {
		if p.GetPath() != "" {
			lines = append(lines, p.GetPath()+": "+p.GetMessage())
		} else {
			lines = append(lines, p.GetMessage())
		}
	}
	return errors.New(strings.Join(lines, "; "))
}

// overflowError is ResourceExhausted naming every table a plan overflows
// (engine.Overflow.Refuse), or nil.
func overflowError(gps []engine.GatewayPlan) error {
	var msgs []string
	for _, gp := range gps {
		for _, o := range gp.Overflows {
			if o.Refuse() {
				msgs = append(msgs, o.String())
			}
		}
	}
	if msgs == nil {
		return nil
	}
	return status.Error(codes.ResourceExhausted, strings.Join(msgs, "; "))
}

func plans(gps []engine.GatewayPlan) []*graygwv1.GatewayPlan {
	var out []*graygwv1.GatewayPlan
	for _, gp := range gps {
		note := gp.Note
		for _, o := range gp.Overflows {
			note = strings.TrimPrefix(note+"; ", "; ") + o.String()
		}
		p := &graygwv1.GatewayPlan{Gateway: gp.Gateway, Reachable: gp.Reachable, Note: note,
			Inserts: uint32(gp.Inserts), Modifies: uint32(gp.Modifies), Deletes: uint32(gp.Deletes),
			Foreign: uint32(gp.Foreign), Truncated: gp.Truncated}
		for _, g := range gp.Groups {
			p.Groups = append(p.Groups, &graygwv1.ChangeGroup{Op: g.Op, Table: g.Table, Origin: g.Origin, Count: uint32(g.Count)})
		}
		for _, c := range gp.Changes {
			p.Changes = append(p.Changes, &graygwv1.Change{Op: c.Op, Table: c.Table, Origin: c.Origin, Entry: c.Entry})
		}
		out = append(out, p)
	}
	return out
}

// describeChange summarizes, by name, what differs between two intents.
func describeChange(old, nu *intent.Intent) string {
	if old == nil {
		return fmt.Sprintf("first intent: %d gateways, %d VIPs, %d pools, %d tenants, %d rules",
			len(nu.Gateways), len(nu.VIPs), len(nu.Pools), len(nu.Tenants), len(nu.Rules))
	}
	var parts []string
	section := func(kind string, oldNames, newNames []string, same func(name string) bool) {
		var items []string
		for _, n := range newNames {
			switch {
			case !slices.Contains(oldNames, n):
				items = append(items, "+"+n)
			case !same(n):
				items = append(items, "~"+n)
			}
		}
		for _, n := range oldNames {
			if !slices.Contains(newNames, n) {
				items = append(items, "-"+n)
			}
		}
		if len(items) > 0 {
			parts = append(parts, kind+" "+strings.Join(items, " "))
		}
	}
	names := func(n int, name func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	rule := func(in *intent.Intent, name string) *intent.Rule {
		for i := range in.Rules {
			if in.Rules[i].Name == name {
				return &in.Rules[i]
			}
		}
		return nil
	}
	section("rules", names(len(old.Rules), func(i int) string { return old.Rules[i].Name }),
		names(len(nu.Rules), func(i int) string { return nu.Rules[i].Name }),
		func(n string) bool {
			a, b := rule(old, n), rule(nu, n)
			return a.Match == b.Match && a.Key == b.Key && a.Priority == b.Priority && a.Pool == b.Pool && a.Percent == b.Percent
		})
	section("pools", names(len(old.Pools), func(i int) string { return old.Pools[i].Name }),
		names(len(nu.Pools), func(i int) string { return nu.Pools[i].Name }),
		func(n string) bool {
			a, _ := old.Pool(n)
			b, _ := nu.Pool(n)
			return a.ID == b.ID && a.Cluster == b.Cluster && a.Hash == b.Hash && slices.Equal(a.Members, b.Members)
		})
	section("backends", names(len(old.Backends), func(i int) string { return old.Backends[i].Name }),
		names(len(nu.Backends), func(i int) string { return nu.Backends[i].Name }),
		func(n string) bool {
			a, _ := old.Backend(n)
			b, _ := nu.Backend(n)
			return *a == *b
		})
	section("vips", names(len(old.VIPs), func(i int) string { return old.VIPs[i].Name }),
		names(len(nu.VIPs), func(i int) string { return nu.VIPs[i].Name }),
		func(n string) bool {
			a, _ := old.VIP(n)
			b, _ := nu.VIP(n)
			return *a == *b
		})
	tenant := func(in *intent.Intent, name string) *intent.Tenant {
		for i := range in.Tenants {
			if in.Tenants[i].Name == name {
				return &in.Tenants[i]
			}
		}
		return nil
	}
	section("tenants", names(len(old.Tenants), func(i int) string { return old.Tenants[i].Name }),
		names(len(nu.Tenants), func(i int) string { return nu.Tenants[i].Name }),
		func(n string) bool {
			a, b := tenant(old, n), tenant(nu, n)
			return a.ID == b.ID && slices.Equal(a.VNIs, b.VNIs)
		})
	section("gateways", names(len(old.Gateways), func(i int) string { return old.Gateways[i].Name }),
		names(len(nu.Gateways), func(i int) string { return nu.Gateways[i].Name }),
		func(n string) bool {
			a, _ := old.Gateway(n)
			b, _ := nu.Gateway(n)
			return a.P4Runtime == b.P4Runtime && a.DeviceID == b.DeviceID && a.BGPNextHop == b.BGPNextHop && slices.Equal(a.Ports, b.Ports)
		})
	if len(parts) == 0 {
		return "no change to what the gateways do"
	}
	return strings.Join(parts, "; ")
}
