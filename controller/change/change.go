// Package change is the controller's change pipeline: every change of the
// intent (Apply, Cutover, Rollback, Seed) is validated, compiled, planned
// against each gateway's tables (a change a gateway cannot hold is refused
// before it is stored), stored with compare-and-swap on the version
// (controller/store), committed to the reconcile loop (controller/engine) and,
// on request, waited for until the gateways hold it.
//
// Changes are serialized: one at a time, each reading the current version,
// validating, storing and applying. The gRPC API (api/service) maps its
// messages onto a Manager; the rollout runner drives the same Manager in
// process (Rollouts).
package change

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/kinderr"
)

// DefaultWaitTimeout bounds a change's wait when its Options give none.
const DefaultWaitTimeout = 60 * time.Second

// Operations recorded in the history.
const (
	OpApply        = "apply"
	OpCutover      = "cutover"
	OpRollback     = "rollback"
	OpRollbackAll  = "rollback-all"
	OpRollbackRule = "rollback-rule"
	// OpRollbackMirrors stops every mirror (docs/pipeline.md §10).
	OpRollbackMirrors = "rollback-mirrors"
	OpSeed            = "seed"
)

// Problem classes beyond the intent's own (see the API's Problem.class).
const (
	ClassCompile = "compile"
	ClassRequest = "request"
	ClassNothing = "nothing"
)

// Errors a caller can test with errors.Is; the message of the error returned
// says the details. Errors of the store (store.ErrConflict, store.ErrClosed,
// a context's) are returned as the store gave them.
var (
	// ErrConfig: the Manager's configuration is incomplete.
	ErrConfig = errors.New("change: bad configuration")
	// ErrDraining: the Manager refuses changes (Drain).
	ErrDraining = errors.New("controller draining: no changes accepted")
	// ErrStale: the change was prepared from a version that is no longer
	// current, or Options.ExpectedVersion is not; retry.
	ErrStale = errors.New("change: the intent version moved")
	// ErrCapacity: a gateway's tables cannot hold the change; nothing stored.
	ErrCapacity = errors.New("change: beyond a gateway's table size")
	// ErrNotApplied: the change is stored but the engine is closing.
	ErrNotApplied = errors.New("change: stored but not applied")
	// ErrNoIntent: no intent is stored yet.
	ErrNoIntent = errors.New("no intent stored yet")
	// ErrEdit: the stored document could not be edited (it is not YAML).
	ErrEdit = errors.New("change: edit of the stored intent failed")
)

// Config configures a Manager.
type Config struct {
	// Store keeps the intent versions and the history. Required.
	Store store.Store
	// Engine applies the intent to the gateways. Required.
	Engine *engine.Engine
	// Logger receives the logs (slog.Default() when nil).
	Logger *slog.Logger
	// WaitTimeout bounds a change's wait when its Options give none
	// (DefaultWaitTimeout when 0).
	WaitTimeout time.Duration
}

// Options are a change's options.
type Options struct {
	// Actor is recorded in the history as is (the API adds the caller's
	// authenticated identity before it gets here).
	Actor string
	// Summary replaces the derived summary.
	Summary string
	// DryRun validates and plans (reading the gateways back), stores nothing.
	DryRun bool
	// ExpectedVersion, when not 0, refuses the change (ErrStale) unless it is
	// the current version.
	ExpectedVersion uint64
	// Wait waits until every gateway holds the change or WaitTimeout
	// (Config.WaitTimeout when 0) passes.
	Wait        bool
	WaitTimeout time.Duration
}

// Problem is one reason a change is refused, at a path of the document or of
// the request.
type Problem struct {
	Path, Message, Class string
}

// Result is the outcome of a change that was not an error: refused (Problems),
// unchanged, dry-run, or applied.
type Result struct {
	// Problems is empty unless the change was refused.
	Problems []Problem
	// Applied says a new version was stored and is being applied.
	Applied bool
	// Unchanged says the change would not alter the intent.
	Unchanged bool
	// Version is the new version when applied, else the current one.
	Version uint64
	// HistorySeq is the history event of the change, when applied.
	HistorySeq uint64
	// Summary describes the change.
	Summary string
	// Plans are what the change writes (or would write) to each gateway.
	Plans []engine.GatewayPlan
	// Gateways is the status after waiting, with Options.Wait.
	Gateways []engine.GatewayStatus
	// WaitError says why the wait ended before every gateway was in sync.
	WaitError string
}

func refused(ps ...Problem) *Result { return &Result{Problems: ps} }

// Manager runs the change pipeline over one store and one engine.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // serializes changes (and Drain against the change in flight)
	draining bool
	cache    *cached // the current version parsed; under mu
}

// cached is the stored intent of one version, parsed.
type cached struct {
	ver *store.Version // Intent is the text
	doc *intent.Document
}

// change is one requested change of the intent.
type change struct {
	doc     *intent.Document
	op      string
	opts    Options
	summary string // derived by the caller; "" = derived from the intents
	undoes  uint64
	// base, when set, is the version the doc was derived from (Cutover,
	// Rollback): the change is refused (ErrStale) if the store moved on.
	base *store.Version
}

// New returns a Manager over cfg.Store and cfg.Engine.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, fmt.Errorf("%w: Store and Engine are required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	return &Manager{cfg: cfg, log: cfg.Logger}, nil
}

// Engine returns the engine the Manager applies changes to.
func (m *Manager) Engine() *engine.Engine { return m.cfg.Engine }

// Start puts the stored intent in force, if there is one. A stored intent that
// no longer validates or compiles (e.g. after an upgrade that tightened
// validation) is an error: the engine then manages nothing and the gateways
// keep their entries until a valid intent is applied.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.cfg.Store.Current(ctx)
	if errors.Is(err, store.ErrNotFound) {
		m.log.Info("no intent stored yet: waiting for one (Apply, or --intent)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: read the current intent: %w", err)
	}
	if m.cfg.Engine.KeepInForce(cur.Number) {
		// Versions are never rewritten: the same number is the same intent.
		m.log.Info("stored intent in force", "version", cur.Number, "committed_by", cur.Actor, "at", cur.Time,
			"compiled", "while standing by")
		return nil
	}
	in, err := intent.Load(cur.Intent)
	if err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	p, err := m.cfg.Engine.Prepare(in)
	if err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	if err := m.cfg.Engine.Commit(p, cur.Number); err != nil {
		return fmt.Errorf("service: stored intent version %d: %w", cur.Number, err)
	}
	m.log.Info("stored intent in force", "version", cur.Number, "committed_by", cur.Actor, "at", cur.Time)
	return nil
}

// Seed stores and applies doc as the first intent when the store holds none
// (the controller's --intent flag). When an intent is already stored it does
// nothing and reports false: the store, not the file, is the source of truth
// once the controller has run.
func (m *Manager) Seed(ctx context.Context, doc []byte, actor string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.cfg.Store.Current(ctx); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("service: read the current intent: %w", err)
	}
	res, err := m.changeLocked(ctx, change{doc: intent.NewDocument(doc), op: OpSeed, opts: Options{Actor: actor}})
	if err != nil {
		return false, err
	}
	if len(res.Problems) > 0 {
		return false, fmt.Errorf("service: seed intent refused: %w", ProblemsError(res.Problems))
	}
	return res.Applied, nil
}

// Drain makes the Manager refuse every further change (ErrDraining), after
// the change in flight, if any, is complete.
func (m *Manager) Drain() {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
}

// Draining reports whether Drain was called.
func (m *Manager) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining
}

// Apply validates, stores and applies doc, a whole intent document.
func (m *Manager) Apply(ctx context.Context, doc []byte, opts Options) (*Result, error) {
	if strings.TrimSpace(string(doc)) == "" {
		return refused(Problem{"intent_yaml", "required: the whole intent document", ClassRequest}), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changeLocked(ctx, change{doc: intent.NewDocument(doc), op: OpApply, opts: opts})
}

// DiffResult is what Diff says of a document against the intent in force.
type DiffResult struct {
	BaseVersion uint64
	Problems    []Problem
	Summary     string
	Plans       []engine.GatewayPlan
}

// Diff says what applying doc (the current version when empty) would change:
// by name, and per gateway read back. It changes nothing.
func (m *Manager) Diff(ctx context.Context, doc []byte) (*DiffResult, error) {
	cur, err := m.cfg.Store.Current(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	out := &DiffResult{}
	if cur != nil {
		out.BaseVersion = cur.Number
	}
	if strings.TrimSpace(string(doc)) == "" {
		if cur == nil {
			return nil, kinderr.Errorf(ErrNoIntent, "no intent stored yet: give a document to diff")
		}
		doc = cur.Intent
	}
	in, p, problems := m.validate(intent.NewDocument(doc))
	if problems != nil {
		out.Problems = problems
		return out, nil
	}
	old, _ := m.cfg.Engine.Intent()
	out.Summary = describeChange(old, in)
	out.Plans = m.cfg.Engine.Plan(ctx, p)
	return out, nil
}

// validate loads and compiles doc; problems is nil when it is acceptable.
func (m *Manager) validate(doc *intent.Document) (*intent.Intent, *engine.Prepared, []Problem) {
	spec, err := doc.Spec()
	if err != nil {
		return nil, nil, toProblems(err)
	}
	in, err := spec.Validate()
	if err != nil {
		return nil, nil, toProblems(err)
	}
	p, err := m.cfg.Engine.Prepare(in)
	if err != nil {
		return nil, nil, []Problem{{"", err.Error(), ClassCompile}}
	}
	return in, p, nil
}

// changeLocked validates, stores and applies c. Callers hold m.mu. Validation
// problems are returned in the result; errors are for the call.
func (m *Manager) changeLocked(ctx context.Context, c change) (*Result, error) {
	if m.draining {
		return nil, ErrDraining
	}
	// A change derived from a version (Cutover, Rollback) read it under m.mu
	// just now: no second read (~1 MB of JSON at full size). The store's
	// compare-and-swap still refuses a stale base.
	cur := c.base
	if cur == nil {
		var err error
		cur, err = m.cfg.Store.Current(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	base := uint64(0)
	if cur != nil {
		base = cur.Number
	}
	if c.base != nil && c.base.Number != base {
		return nil, kinderr.Errorf(ErrStale, "intent version %d became current while the change was prepared from %d; retry", base, c.base.Number)
	}
	if exp := c.opts.ExpectedVersion; exp != 0 && exp != base {
		return nil, kinderr.Errorf(ErrStale, "expected intent version %d, current is %d", exp, base)
	}
	res := &Result{Version: base}
	in, p, problems := m.validate(c.doc)
	if problems != nil {
		res.Problems = problems
		return res, nil
	}
	old, _ := m.cfg.Engine.Intent()
	res.Summary = c.summary
	if res.Summary == "" {
		res.Summary = describeChange(old, in)
	}
	if c.opts.Summary != "" {
		res.Summary = c.opts.Summary
	}
	m.log.Debug("change validated", "operation", c.op)
	// A dry run says what the gateways would get: it reads them back. A change
	// that is applied is planned against the current intent's desired entries
	// (no read-back: the engine's pass repairs any drift on its own).
	if c.opts.DryRun {
		res.Plans = m.cfg.Engine.Plan(ctx, p)
	} else {
		res.Plans = m.cfg.Engine.ChangePlan(p)
	}
	m.log.Debug("change planned", "operation", c.op)
	// A change a gateway's tables cannot hold is refused before it is stored:
	// the gateway would refuse it and keep its entries (nothing half-applied),
	// but the intent in force would then say what no gateway can hold.
	if err := overflowError(res.Plans); err != nil {
		return nil, err
	}
	text := c.doc.Text()
	if cur != nil && bytes.Equal(cur.Intent, text) {
		res.Unchanged = true
		return res, nil
	}
	if c.opts.DryRun {
		return res, nil
	}
	v, ev, err := m.cfg.Store.Commit(ctx, store.Change{Base: base, Intent: text, Actor: c.opts.Actor, Operation: c.op,
		Summary: res.Summary, Undoes: c.undoes})
	if err != nil {
		return nil, err
	}
	res.Applied, res.Version, res.HistorySeq = true, v.Number, ev.Seq
	nv := *v
	nv.Intent = text
	m.cache = &cached{ver: &nv, doc: c.doc}
	m.log.Info("intent changed", "version", v.Number, "operation", c.op, "actor", c.opts.Actor, "summary", res.Summary)
	if err := m.cfg.Engine.Commit(p, v.Number); err != nil {
		// Only when the engine is closing: the version is stored and will be in
		// force at the next start.
		return nil, kinderr.Errorf(ErrNotApplied, "intent stored as version %d but not applied: %v", v.Number, err)
	}
	if c.opts.Wait {
		timeout := m.cfg.WaitTimeout
		if c.opts.WaitTimeout > 0 {
			timeout = c.opts.WaitTimeout
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		st, err := m.cfg.Engine.WaitVersion(wctx, v.Number)
		cancel()
		res.Gateways = st
		if err != nil {
			res.WaitError = err.Error()
		}
	}
	return res, nil
}

// documentOf returns cur parsed, from the cache when it holds that version.
// Callers hold m.mu.
func (m *Manager) documentOf(cur *store.Version) *intent.Document {
	if c := m.cache; c != nil && c.ver.Number == cur.Number && bytes.Equal(c.ver.Intent, cur.Intent) {
		return c.doc
	}
	d := intent.NewDocument(cur.Intent)
	m.cache = &cached{ver: cur, doc: d}
	return d
}

// currentLocked returns the current version: the cached one when the store's
// newest event says it is still current (an event is a few hundred bytes of
// JSON; the version is the whole document, ~8 ms to decode at 10k rules), else
// the store's. Callers hold m.mu.
func (m *Manager) currentLocked(ctx context.Context) (*store.Version, error) {
	if c := m.cache; c != nil {
		if evs, err := m.cfg.Store.History(ctx, store.Query{Limit: 1}); err == nil && len(evs) == 1 && evs[0].After == c.ver.Number {
			v := *c.ver
			return &v, nil
		}
	}
	return m.cfg.Store.Current(ctx)
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
func toProblems(err error) []Problem {
	var errs *intent.Errors
	if errors.As(err, &errs) {
		var out []Problem
		for _, p := range errs.Problems {
			out = append(out, Problem{p.Path, p.Msg, classOf(p.Err)})
		}
		return out
	}
	return []Problem{{"", err.Error(), classOf(err)}}
}

// ProblemsError turns problems into one error, a line a problem.
func ProblemsError(ps []Problem) error {
	var lines []string
	for _, p := range ps {
		if p.Path != "" {
			lines = append(lines, p.Path+": "+p.Message)
		} else {
			lines = append(lines, p.Message)
		}
	}
	return errors.New(strings.Join(lines, "; "))
}

// overflowError is ErrCapacity naming every table a plan overflows
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
	return kinderr.Errorf(ErrCapacity, "%s", strings.Join(msgs, "; "))
}
