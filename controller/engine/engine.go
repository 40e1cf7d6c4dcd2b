// Package engine is the controller's reconcile loop: it keeps every gray gateway
// of the intent holding exactly the table entries the intent compiles to.
//
// For each gateway the engine runs one worker with its own P4Runtime session
// (package controller/p4rt) under the controller's election id. A worker does
// nothing while another controller is primary for the device (standby) and takes
// over when that controller goes away. While primary it reconciles: push the
// pipeline unless the target already runs it (by cookie), read back every table
// entry, diff against the desired entries (package controller/reconcile) and
// write the difference, make-before-break, one dependency level at a time.
// Entries the target holds that the intent does not want (foreign entries) are
// deleted and logged. A worker reconciles when the intent changes, when its
// session reconnects or regains mastership, and every Interval; it writes nothing
// when nothing differs.
//
// Compilation (package controller/compile) happens once per intent version, for
// all gateways: they sit behind one ECMP group and must hash alike. Bucket tables
// are rebuilt from the previous ones so only the buckets that must move do; after
// a controller restart the previous tables are recovered from the first gateway
// read back (compile.Recover), so a restart moves no bucket, and, for pools that
// gateway does not hold, from the tables the engine saved in the store.
package engine

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/maglev"
	"github.com/graygw/graygw/controller/reconcile"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/pipeline"
)

// Defaults of Config.
const (
	DefaultInterval    = 30 * time.Second
	DefaultTimeout     = 2 * time.Minute
	DefaultPlanTimeout = 5 * time.Second
	DefaultRetry       = 500 * time.Millisecond
)

// StoreNamespace and StorePoolsKey locate the pool tables the engine saves in the
// store after every compilation.
const (
	StoreNamespace = "engine"
	StorePoolsKey  = "pools"
)

var (
	// ErrDraining: the engine is shutting down and accepts no new intent.
	ErrDraining = errors.New("engine: draining")
	// ErrUnknownGateway: no gateway of that name in the current intent.
	ErrUnknownGateway = errors.New("engine: unknown gateway")
	// ErrConfig: the engine's configuration is incomplete.
	ErrConfig = errors.New("engine: bad configuration")
	// ErrCompile: the intent does not compile (wraps compile.ErrTransition or
	// compile.ErrMaglev, or ErrEntry for an entry the P4Info cannot express).
	ErrCompile = errors.New("engine: intent does not compile")
)

// Observer receives the engine's measurements (package controller/metrics
// implements it with Prometheus). Calls come from the gateway workers and must
// not block.
type Observer interface {
	// Reconciled reports one reconcile pass of gateway: its duration, the
	// updates the target accepted, and the error that ended it (nil on success).
	Reconciled(gateway string, d time.Duration, written int, err error)
	// WriteFailed reports n updates of gateway refused with code.
	WriteFailed(gateway string, code codes.Code, n int)
}

// Config configures an Engine.
type Config struct {
	// P4Info is the pipeline the engine encodes entries with, and the one pushed
	// to every gateway P4InfoFor gives none. Required.
	P4Info *p4info.Info
	// P4InfoFor returns the P4Info pushed to gateway (a mixed fleet: the TNA
	// build, whose names bf-p4c prefixes with "pipe.", for a Tofino gateway);
	// nil function or nil result: P4Info. It is what the gateway's cookie covers
	// and where its table sizes come from when the target returns no P4Info. It
	// must pass CheckP4Info against P4Info: entries are encoded by the pinned ids,
	// the same in every build, so they are written to it unchanged. A gateway
	// whose P4Info does not pass is not written to (its status names the
	// mismatch).
	P4InfoFor func(gateway string) *p4info.Info
	// DeviceConfig returns the target-specific device config pushed with the
	// P4Info to gateway (BMv2 JSON, Tofino binary); nil function or nil result for
	// targets that need none (the XDP agent).
	DeviceConfig func(gateway string) []byte
	// MaxGrayMasks returns how many distinct gray-rule masks gateway's target
	// holds at once (the XDP agent: 64, its tuple-space bound; BMv2 and Tofino:
	// no such bound); nil function or 0: not checked. Plans are checked against
	// it like table sizes (GatewayPlan.Overflows), so the API refuses an intent
	// past it before the store commit instead of the gateway refusing the 65th
	// mask at write time.
	MaxGrayMasks func(gateway string) int
	// MaxGrayMasks6 is MaxGrayMasks for gray_rules_v6 (the XDP agent: 32).
	MaxGrayMasks6 func(gateway string) int
	// VIPWindow returns how many cells an IPv4 VIP's window has in gateway's
	// vip index (the XDP agent: vipindex.Probe, 8, of its open-addressed
	// vip_index; BMv2 and Tofino: no such bound); nil function or 0: not
	// checked. Plans are checked like table sizes: an intent whose IPv4 VIPs
	// could fill one's window (vipindex.Crowded) is refused before the store
	// commit instead of the agent refusing that VIP at write time.
	VIPWindow func(gateway string) int
	// ElectionID is this controller's election id (low 64 bits); among the
	// controllers of a device the highest is primary. Required, > 0.
	ElectionID uint64
	// ElectionIDHigh, when set, is the high 64 bits of the election id: an HA
	// leader's term (controller/leader), so a newer leader preempts an older
	// one on every gateway and a deposed one's writes are refused there. The
	// sessions then never raise their id to take over.
	ElectionIDHigh uint64
	// Standby starts the engine as an HA follower's warm standby (docs/ha.md):
	// it opens the sessions of every gateway Commit names, arbitrating with
	// ElectionID (ElectionIDHigh 0: below every leader's id) without ever
	// taking over, and compiles every Commit against the pool tables saved in
	// the store (ReloadSaved), but writes nothing, to the gateways or to the
	// store, until Lead.
	Standby bool
	// Role is the P4Runtime role ("" for the default role).
	Role string
	// TLS secures the P4Runtime sessions; nil means plaintext.
	TLS credentials.TransportCredentials
	// Interval between periodic reconciles (DefaultInterval when 0).
	Interval time.Duration
	// Timeout bounds one reconcile pass (DefaultTimeout when 0).
	Timeout time.Duration
	// PlanTimeout bounds the read-back of a dry run (DefaultPlanTimeout when 0).
	PlanTimeout time.Duration
	// Retry is the first delay before retrying a failed reconcile; it doubles up
	// to Interval (DefaultRetry when 0).
	Retry time.Duration
	// Batch is the number of updates per WriteRequest (p4rt.DefaultBatch when 0).
	Batch int
	// MinBackoff and MaxBackoff bound the P4Runtime session's reconnect backoff
	// (the p4rt defaults when 0).
	MinBackoff, MaxBackoff time.Duration
	// Store, when set, keeps the compiled pool tables (namespace StoreNamespace)
	// so that a restart finds them even when no gateway answers.
	Store store.Store
	// Logger receives the engine's logs (slog.Default() when nil).
	Logger *slog.Logger
	// Observer receives measurements; nil for none.
	Observer Observer
}

// Engine keeps the gateways of the current intent reconciled. Its methods are
// safe for concurrent use.
type Engine struct {
	cfg   Config
	codec *Codec
	order reconcile.Order
	log   *slog.Logger

	hard       context.Context // cancelled when Close gives up waiting
	cancelHard context.CancelFunc

	standby atomic.Bool // Config.Standby until Lead

	mu       sync.Mutex
	in       *intent.Intent
	version  uint64
	desired  *compile.Result
	wants    map[string]*want
	saved    *compile.Result // pool tables loaded from the store at start
	seeded   bool            // prev tables recovered from a gateway
	draining bool
	gws      map[string]*gateway
	changed  chan struct{} // closed and replaced at every status change

	// excluded are health failover's exclusions, per pool (SetExcluded);
	// every compilation applies them. Its own lock: prepare runs with and
	// without mu held.
	exMu     sync.Mutex
	excluded map[string][]string

	// blocks caches the converted entries of pool versions (pool_hash and
	// backend_select, 4097 entries each) by pool_id, so that a change that
	// leaves a pool alone neither converts its entries again nor diffs them
	// (the same *reconcile.Set on both sides of a diff is skipped).
	blockMu sync.Mutex
	blocks  map[uint16]*poolBlock
	conv    map[string]converted // the last conversion's other entries, by fingerprint
	// convByMatch: the same, by the address of their Match array (compile
	// shares unchanged rules' entries between results).
	convByMatch map[*compile.Match]converted

	// configured caches the table sizes of the P4Infos Config gives (the
	// plan-time fallback for a gateway not reached yet), by P4Info; nil: it
	// does not pass CheckP4Info.
	configuredMu sync.Mutex
	configured   map[*p4info.Info]*Capacity
	grayRulesID  uint32 // gray_rules' table id (Config.MaxGrayMasks)
	grayRules6ID uint32 // gray_rules_v6's (Config.MaxGrayMasks6); 0 without IPv6
	vipID        uint32 // vip's (Config.VIPWindow)

	saveMu   sync.Mutex
	savedSig []savedSig // the pool tables last saved to the store
}

// poolBlock is the converted entries of one pool version, shared by every
// gateway's want and by successive versions while the pool is unchanged.
type poolBlock struct {
	name    string
	hash    pipeline.FlowKey
	buckets []uint16
	set     *reconcile.Set
}

// converted is one entry converted through the P4Info, with its reconcile key
// and action fingerprint (never modified once built).
type converted struct {
	te       *p4v1.TableEntry
	key, act string
}

// fingerprint appends what identifies a compiled entry's content (all but its
// Origin): equal fingerprints convert to equal P4Runtime entries.
func fingerprint(b []byte, e *compile.Entry) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	byt := func(v []byte) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	str(e.Table)
	b = binary.BigEndian.AppendUint32(b, uint32(e.Priority))
	b = binary.AppendUvarint(b, uint64(len(e.Match)))
	for _, m := range e.Match {
		str(m.Field)
		b = append(b, byte(m.Kind))
		b = binary.AppendUvarint(b, uint64(m.Bits))
		byt(m.Value)
		byt(m.Mask)
	}
	str(e.Action)
	for _, p := range e.Params {
		str(p.Name)
		b = binary.AppendUvarint(b, uint64(p.Bits))
		byt(p.Value)
	}
	return b
}

// want is what one gateway should hold for one intent version: the union of
// its sets (one per pool version, shared; one for everything else), each entry
// tagged with its compile.Entry.Origin.
type want struct {
	version uint64
	sets    []*reconcile.Set
	n       int

	idxOnce sync.Once
	idx     map[string]string // Key -> origin, built on first use

	cntOnce sync.Once
	cnt     map[uint32]int // entries by table id, built on first use (counts)
}

// entries returns every entry of w (a new slice).
func (w *want) entries() []*p4v1.TableEntry {
	out := make([]*p4v1.TableEntry, 0, w.n)
	for _, s := range w.sets {
		out = append(out, s.Entries...)
	}
	return out
}

// origin returns the origin of the entry of w with key k, and whether w has it.
func (w *want) origin(k string) (string, bool) {
	w.idxOnce.Do(func() {
		w.idx = make(map[string]string, w.n)
		for _, s := range w.sets {
			for i, k := range s.Keys {
				w.idx[k] = s.Tags[i]
			}
		}
	})
	o, ok := w.idx[k]
	return o, ok
}

// New validates cfg and returns an engine with no intent: it manages no gateway
// until Commit.
func New(cfg Config) (*Engine, error) {
	if cfg.P4Info == nil {
		return nil, fmt.Errorf("%w: no P4Info", ErrConfig)
	}
	if cfg.ElectionID == 0 {
		return nil, fmt.Errorf("%w: election id must be > 0", ErrConfig)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PlanTimeout <= 0 {
		cfg.PlanTimeout = DefaultPlanTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, codec: NewCodec(cfg.P4Info), log: cfg.Logger, gws: map[string]*gateway{},
		changed: make(chan struct{})}
	for _, name := range compile.TableOrder {
		t, err := cfg.P4Info.Table(name)
		if err != nil && ipv6Only[name] {
			continue // a program without IPv6: no gateway gets IPv6 entries (withoutIPv6)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: P4Info: %w", ErrConfig, err)
		}
		e.order = append(e.order, t.ID)
		switch name {
		case pipeline.TableGrayRules:
			e.grayRulesID = t.ID
		case pipeline.TableGrayRulesV6:
			e.grayRules6ID = t.ID
		case pipeline.TableVIP:
			e.vipID = t.ID
		}
	}
	e.hard, e.cancelHard = context.WithCancel(context.Background())
	e.standby.Store(cfg.Standby)
	if cfg.Store != nil {
		saved, err := loadPools(context.Background(), cfg.Store)
		if err != nil {
			e.log.Warn("saved pool tables not usable; pools are recovered from the gateways or built afresh", "err", err)
		}
		e.saved = saved
	}
	return e, nil
}

// Standby reports whether the engine is a warm standby (Config.Standby,
// until Lead).
func (e *Engine) Standby() bool { return e.standby.Load() }

// ReloadSaved reads the pool tables saved in the store again: a standby
// compiles against them, so that it holds the leader's tables when elected.
func (e *Engine) ReloadSaved(ctx context.Context) error {
	if e.cfg.Store == nil {
		return nil
	}
	saved, err := loadPools(ctx, e.cfg.Store)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.saved = saved
	e.mu.Unlock()
	return nil
}

// Lead ends the standby: every open session arbitrates again with the
// election id {high, low} (an elected leader's: its term in high), on the
// stream it already has, and every gateway gets a full pass as soon as the
// target makes it primary (read back, pool tables recovered from the first
// gateway, diff, write). Gateways added later use the same id. Without
// Config.Standby it only changes the id.
func (e *Engine) Lead(high, low uint64) {
	e.mu.Lock()
	e.cfg.ElectionIDHigh, e.cfg.ElectionID = high, low
	e.seeded = false // recover from the first read-back, as a new engine does
	e.standby.Store(false)
	gws := e.gatewaysLocked()
	e.notifyLocked()
	e.mu.Unlock()
	for _, g := range gws {
		g.takeover.Store(true)
		g.client.SetElectionID(high, low)
		g.kickNow()
	}
	e.log.Info("leading: election id raised on the open sessions", "election_id_high", high, "election_id_low", low,
		"gateways", len(gws))
}

// Codec returns the engine's entry codec.
func (e *Engine) Codec() *Codec { return e.codec }

// Intent returns the current intent and its version (nil, 0 before Commit).
func (e *Engine) Intent() (*intent.Intent, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.in, e.version
}

// Prepared is an intent compiled against the engine's current tables, checked,
// not yet in force. Commit puts it in force.
type Prepared struct {
	// Intent is the validated intent.
	Intent *intent.Intent
	result *compile.Result // compile.CompileSplit's
	prev   *compile.Result
	wants  map[string]*want

	fullOnce sync.Once
	full     *compile.Result
}

// Result is the compiled intent, every gateway with all its entries (built on
// first use: the engine itself works on the split result).
func (p *Prepared) Result() *compile.Result {
	p.fullOnce.Do(func() { p.full = p.result.Full() })
	return p.full
}

// Prepare compiles in against the tables the gateways hold (or will hold once
// the current intent is applied) and converts every entry through the P4Info.
// It changes nothing; an error (wrapping ErrCompile) means the intent cannot be
// applied as it stands.
func (e *Engine) Prepare(in *intent.Intent) (*Prepared, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: nil intent", ErrCompile)
	}
	e.mu.Lock()
	prev := e.prevLocked()
	e.mu.Unlock()
	return e.prepare(in, prev)
}

func (e *Engine) prepare(in *intent.Intent, prev *compile.Result) (*Prepared, error) {
	e.exMu.Lock()
	excluded := e.excluded
	e.exMu.Unlock()
	res, err := compile.CompileSplitExcluding(in, prev, excluded)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCompile, err)
	}
	wants, err := e.convert(res, prev)
	if err != nil {
		return nil, err
	}
	return &Prepared{Intent: in, result: res, prev: prev, wants: wants}, nil
}

// prevLocked is what a new compilation starts from: the desired tables, or
// before any intent the tables saved in the store. A standby starts from the
// saved tables every time: they are the leader's (ReloadSaved).
func (e *Engine) prevLocked() *compile.Result {
	if e.desired != nil && !e.standby.Load() {
		return e.desired
	}
	return e.saved
}

// convert converts the entries of res (a compile.CompileSplit result) through
// the P4Info, per gateway. The pool versions' entries (compile.Pool.Entries)
// become one *reconcile.Set per version, shared by every gateway's want (all
// gateways hold the same pool entries); a version whose content (name,
// pool_id, hash masks, buckets) is in the block cache is not converted again.
func (e *Engine) convert(res, prev *compile.Result) (map[string]*want, error) {
	e.blockMu.Lock()
	cache := e.blocks
	e.blockMu.Unlock()
	blocks := make([]*poolBlock, len(res.Pools))
	for i := range res.Pools {
		p := &res.Pools[i]
		if b := cache[p.ID]; b != nil && b.name == p.Name && b.hash == p.Hash && slices.Equal(b.buckets, p.Buckets) {
			blocks[i] = b
			continue
		}
		pes := p.Entries()
		entries := make([]*p4v1.TableEntry, len(pes))
		tags := make([]string, len(pes))
		for j := range pes {
			te, err := e.codec.ToP4(&pes[j])
			if err != nil {
				return nil, fmt.Errorf("%w: pool %s: %w", ErrCompile, p.Name, err)
			}
			entries[j], tags[j] = te, pes[j].Origin
		}
		blocks[i] = &poolBlock{name: p.Name, hash: p.Hash, buckets: slices.Clone(p.Buckets), set: reconcile.NewSet(entries, tags)}
	}
	// The other entries (rules, VIPs, tenants, backends: ~10k at full size)
	// are converted once and found again by their content.
	e.blockMu.Lock()
	prevConv, prevByMatch := e.conv, e.convByMatch
	e.blockMu.Unlock()
	conv := make(map[string]converted, len(prevConv))
	byMatch := make(map[*compile.Match]converted, len(prevByMatch))
	var fp []byte
	out := map[string]*want{}
	for _, g := range res.Gateways {
		entries := g.Entries
		if !e.ipv6(g.Name) {
			var err error
			if entries, err = withoutIPv6(g.Name, entries); err != nil {
				return nil, err
			}
		}
		set := &reconcile.Set{Entries: make([]*p4v1.TableEntry, len(entries)), Keys: make([]string, len(entries)),
			Acts: make([]string, len(entries)), Tags: make([]string, len(entries))}
		for i := range entries {
			en := &entries[i]
			// compile shares an unchanged rule's entry (its Match array
			// included) between results and never modifies it: the same
			// Match array is the same entry. Others are found by content.
			var id *compile.Match
			if len(en.Match) > 0 {
				id = &en.Match[0]
			}
			c, ok := prevByMatch[id]
			if !ok || id == nil {
				fp = fingerprint(fp[:0], en)
				c, ok = conv[string(fp)]
				if !ok {
					c, ok = prevConv[string(fp)]
				}
				if !ok {
					te, err := e.codec.ToP4(en)
					if err != nil {
						return nil, fmt.Errorf("%w: gateway %s: %w", ErrCompile, g.Name, err)
					}
					k := reconcile.Key(te)
					c = converted{te: te, key: k, act: reconcile.ActionKey(te)}
				}
				conv[string(fp)] = c
			}
			if id != nil {
				byMatch[id] = c
			}
			set.Entries[i], set.Keys[i], set.Acts[i], set.Tags[i] = c.te, c.key, c.act, en.Origin
		}
		w := &want{sets: []*reconcile.Set{set}, n: len(entries)}
		for _, b := range blocks {
			w.sets = append(w.sets, b.set)
			w.n += b.set.Len()
		}
		out[g.Name] = w
	}
	// The cache keeps the blocks of this result, and those of prev (the
	// desired state it was compiled against: a dry run must not evict them).
	keep := map[uint16]bool{}
	if prev != nil {
		for _, p := range prev.Pools {
			keep[p.ID] = true
		}
	}
	next := map[uint16]*poolBlock{}
	e.blockMu.Lock()
	for id, b := range e.blocks {
		if keep[id] {
			next[id] = b
		}
	}
	for i := range res.Pools {
		next[res.Pools[i].ID] = blocks[i]
	}
	e.blocks, e.conv, e.convByMatch = next, conv, byMatch
	e.blockMu.Unlock()
	return out, nil
}

// Commit puts p in force as intent version: the gateways it names are managed
// (sessions opened, removed gateways left alone with their entries), and every
// gateway is reconciled. If the engine's tables changed since Prepare (the first
// read-back of a gateway recovered them), p is compiled again against them; should
// that fail, p is applied as prepared.
func (e *Engine) Commit(p *Prepared, version uint64) error {
	if p == nil || p.result == nil {
		return fmt.Errorf("%w: nothing prepared", ErrCompile)
	}
	e.mu.Lock()
	if e.draining {
		e.mu.Unlock()
		return ErrDraining
	}
	if cur := e.prevLocked(); cur != p.prev {
		if q, err := e.prepare(p.Intent, cur); err != nil {
			e.log.Warn("recompiling against the recovered tables failed; applying the change as prepared", "err", err)
		} else {
			p = q
		}
	}
	e.in, e.version = p.Intent, version
	e.setDesiredLocked(p.result, p.wants)
	stop := e.syncGatewaysLocked()
	gws := e.gatewaysLocked()
	e.mu.Unlock()
	e.stopGateways(stop)
	for _, g := range gws {
		g.intentChanged()
	}
	if e.standby.Load() {
		e.log.Info("standby: intent compiled, nothing written until elected", "version", version, "gateways", len(gws))
		return nil
	}
	e.savePools(p.result)
	e.log.Info("intent in force", "version", version, "gateways", len(gws))
	return nil
}

// KeepInForce reports whether the engine, leading, already holds intent
// version compiled (a warm follower compiled it from its store watch while
// standing by): it then keeps it in force as it is, saves its pool tables, and
// the caller need not compile and Commit it again. A standby, or an engine
// holding another version or none, changes nothing and reports false.
func (e *Engine) KeepInForce(version uint64) bool {
	e.mu.Lock()
	if e.standby.Load() || e.draining || e.in == nil || e.version != version || e.desired == nil {
		e.mu.Unlock()
		return false
	}
	res := e.desired
	e.mu.Unlock()
	e.savePools(res)
	return true
}

// SetExcluded sets the members health failover takes out of their pools
// (controller/failover), by pool name, and puts the intent in force again
// with them, as the same version: the gateways get the pools' new versions
// (only the excluded members' buckets move) at once. Pools without
// health_failover ignore it. It returns whether anything changed.
func (e *Engine) SetExcluded(excluded map[string][]string) (bool, error) {
	e.exMu.Lock()
	same := maps.EqualFunc(e.excluded, excluded, slices.Equal[[]string])
	if !same {
		e.excluded = maps.Clone(excluded)
	}
	e.exMu.Unlock()
	if same {
		return false, nil
	}
	for {
		e.mu.Lock()
		if e.draining {
			e.mu.Unlock()
			return false, ErrDraining
		}
		in, prev := e.in, e.prevLocked()
		e.mu.Unlock()
		if in == nil {
			return false, nil // the next Commit applies them
		}
		p, err := e.prepare(in, prev)
		if err != nil {
			return false, err
		}
		e.mu.Lock()
		if e.in != in || e.prevLocked() != prev {
			e.mu.Unlock()
			continue // a change came in meanwhile: compile against it
		}
		if e.draining {
			e.mu.Unlock()
			return false, ErrDraining
		}
		e.setDesiredLocked(p.result, p.wants)
		gws := e.gatewaysLocked()
		e.mu.Unlock()
		for _, g := range gws {
			g.intentChanged()
		}
		e.savePools(p.result)
		e.log.Info("health failover: pools recompiled", "excluded", fmt.Sprint(excluded))
		return true, nil
	}
}

// setDesiredLocked installs res (with its converted entries) as the desired
// state of the current version.
func (e *Engine) setDesiredLocked(res *compile.Result, wants map[string]*want) {
	for _, w := range wants {
		w.version = e.version
	}
	e.desired, e.wants = res, wants
	e.notifyLocked()
}

// syncGatewaysLocked starts a worker for every gateway of the intent that has
// none (or whose address or device id changed) and returns the workers to stop.
func (e *Engine) syncGatewaysLocked() []*gateway {
	var stop []*gateway
	keep := map[string]bool{}
	for _, gs := range e.in.Gateways {
		keep[gs.Name] = true
		if g := e.gws[gs.Name]; g != nil {
			if g.addr == gs.P4Runtime && g.device == gs.DeviceID {
				continue
			}
			stop = append(stop, g)
		}
		g, err := newGateway(e, gs.Name, gs.P4Runtime, gs.DeviceID)
		if err != nil {
			e.log.Error("gateway not managed", "gateway", gs.Name, "err", err)
			delete(e.gws, gs.Name)
			continue
		}
		e.gws[gs.Name] = g
		go g.run()
	}
	for name, g := range e.gws {
		if !keep[name] {
			e.log.Warn("gateway left the intent: no longer managed, its entries are left in place", "gateway", name)
			stop = append(stop, g)
			delete(e.gws, name)
		}
	}
	return stop
}

func (e *Engine) stopGateways(gs []*gateway) {
	for _, g := range gs {
		g.signalStop()
	}
	for _, g := range gs {
		<-g.done
		g.client.Close()
	}
}

func (e *Engine) gatewaysLocked() []*gateway {
	out := make([]*gateway, 0, len(e.gws))
	for _, g := range e.gws {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *gateway) int { return strings.Compare(a.name, b.name) })
	return out
}

func (e *Engine) gateway(name string) (*gateway, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.gws[name]
	if g == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGateway, name)
	}
	return g, nil
}

// currentWant returns what gateway should hold under the current intent.
func (e *Engine) currentWant(gateway string) *want {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wants[gateway]
}

// wantFor returns what gateway should hold. The first call after the engine
// starts (from the first gateway read back) recovers the installed pool tables
// from have and recompiles the intent against them, so that a controller restart
// moves no bucket.
func (e *Engine) wantFor(gateway string, have []*p4v1.TableEntry) *want {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.seeded && e.in != nil {
		e.seeded = true
		e.seedLocked(gateway, have)
	}
	return e.wants[gateway]
}

func (e *Engine) seedLocked(gateway string, have []*p4v1.TableEntry) {
	var entries []compile.Entry
	for _, te := range have {
		if en, err := e.codec.FromP4(te); err == nil {
			entries = append(entries, en)
		}
	}
	rec, err := compile.Recover(e.in, entries)
	if err != nil {
		e.log.Warn("pool tables not recoverable from the gateway; keeping the saved ones", "gateway", gateway, "err", err)
		return
	}
	if samePools(rec, e.desired) {
		// The gateway holds exactly the pool versions compiled (a warm
		// follower's, from the saved tables): recompiling against them
		// would move no bucket either, and costs a whole compile under
		// e.mu (0.1-0.7 s at 98k entries) in the takeover.
		e.log.Info("pool tables on the gateway are the compiled ones", "gateway", gateway, "pools", len(rec.Pools))
		return
	}
	prev := mergePools(e.in, rec, e.saved)
	if prev == nil {
		return // nothing installed, nothing saved: the current compilation stands
	}
	p, err := e.prepare(e.in, prev)
	if err != nil {
		e.log.Warn("recompiling against the recovered pool tables failed; keeping the current compilation", "gateway", gateway, "err", err)
		return
	}
	e.log.Info("pool tables recovered from a gateway", "gateway", gateway, "pools", len(rec.Pools))
	e.setDesiredLocked(p.result, p.wants)
	go e.savePools(p.result)
}

// samePools reports whether the pools recovered from a gateway are exactly the
// pools of the compiled result desired: the same versions (name, id, slot,
// hash masks) with the same buckets, and no other version (a version Recover
// reserves, or one only one side has, makes them differ). Pools under health
// failover (an operator's table beside the one in force) never count as the
// same (recovery does not see the operator's table, which is Table's content
// when nothing is excluded).
func samePools(rec, desired *compile.Result) bool {
	if rec == nil || desired == nil || len(rec.Pools) != len(desired.Pools) {
		return false
	}
	byName := make(map[string]*compile.Pool, len(desired.Pools))
	for i := range desired.Pools {
		p := &desired.Pools[i]
		if len(p.Excluded) > 0 || p.Operator != nil && p.Operator != p.Table && !slices.Equal(p.Operator.Buckets(), p.Table.Buckets()) {
			return false
		}
		byName[p.Name] = p
	}
	for i := range rec.Pools {
		r := &rec.Pools[i]
		d := byName[r.Name]
		if d == nil || d.ID != r.ID || d.BaseID != r.BaseID || d.Slot != r.Slot || d.Hash != r.Hash ||
			!slices.Equal(d.Buckets, r.Buckets) || d.Table == nil || r.Table == nil ||
			!slices.Equal(d.Table.Buckets(), r.Table.Buckets()) {
			return false
		}
		delete(byName, r.Name)
	}
	return len(byName) == 0
}

// mergePools completes the pools recovered from a gateway with the saved ones
// the gateway does not hold.
func mergePools(in *intent.Intent, rec, saved *compile.Result) *compile.Result {
	out := &compile.Result{}
	names, ids := map[string]bool{}, map[uint16]bool{}
	if rec != nil {
		for _, p := range rec.Pools {
			out.Pools = append(out.Pools, p)
			names[p.Name], ids[p.ID] = true, true
		}
	}
	if saved != nil {
		for _, p := range saved.Pools {
			if _, inIntent := in.Pool(p.Name); !inIntent || names[p.Name] || ids[p.ID] {
				continue
			}
			out.Pools = append(out.Pools, p)
		}
	}
	if len(out.Pools) == 0 {
		return nil
	}
	slices.SortFunc(out.Pools, func(a, b compile.Pool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// savedPool is a compiled pool version as kept in the store.
type savedPool struct {
	Name     string           `json:"name"`
	BaseID   uint16           `json:"base_id"`
	Slot     uint8            `json:"slot"`
	ID       uint16           `json:"id"`
	Hash     pipeline.FlowKey `json:"hash"`
	Backends []string         `json:"backends"` // bucket -> backend name
	IDs      []uint16         `json:"ids"`      // bucket -> backend id
	// Operator is the operator's table (bucket -> backend name) while health
	// failover excludes members (Excluded), so that a restarted controller
	// restores exactly their buckets.
	Operator []string `json:"operator,omitempty"`
	Excluded []string `json:"excluded,omitempty"`
}

func (e *Engine) savePools(res *compile.Result) {
	if e.cfg.Store == nil || res == nil || e.standby.Load() {
		return
	}
	// Most changes (rules) leave every pool as it was: the same tables are
	// already saved, and the JSON of 63 x 4096 buckets is not cheap.
	sig := make([]savedSig, len(res.Pools))
	for i, p := range res.Pools {
		sig[i] = savedSig{p.Name, p.ID, p.Hash, p.Table}
	}
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if slices.Equal(sig, e.savedSig) {
		return
	}
	var out []savedPool
	for _, p := range res.Pools {
		sp := savedPool{Name: p.Name, BaseID: p.BaseID, Slot: p.Slot, ID: p.ID, Hash: p.Hash,
			Backends: p.Table.Buckets(), IDs: p.Buckets}
		if len(p.Excluded) > 0 && p.Operator != nil {
			sp.Operator, sp.Excluded = p.Operator.Buckets(), p.Excluded
		}
		out = append(out, sp)
	}
	raw, err := json.Marshal(out)
	if err == nil {
		err = e.cfg.Store.Put(context.Background(), StoreNamespace, StorePoolsKey, raw)
	}
	if err != nil {
		e.log.Warn("pool tables not saved", "err", err)
		e.savedSig = nil
		return
	}
	e.savedSig = sig
}

// savedSig identifies a saved pool table: tables are never modified once
// compiled, so the same *maglev.Table is the same content.
type savedSig struct {
	name  string
	id    uint16
	hash  pipeline.FlowKey
	table *maglev.Table
}

func loadPools(ctx context.Context, s store.Store) (*compile.Result, error) {
	raw, err := s.Get(ctx, StoreNamespace, StorePoolsKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in []savedPool
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("engine: saved pools: %w", err)
	}
	res := &compile.Result{}
	for _, p := range in {
		t, err := maglev.NewTable(p.Backends)
		if err != nil || len(p.IDs) != t.Size() {
			return nil, fmt.Errorf("engine: saved pool %q: bad table (%v)", p.Name, err)
		}
		cp := compile.Pool{Name: p.Name, BaseID: p.BaseID, Slot: p.Slot, ID: p.ID, Hash: p.Hash, Table: t, Buckets: p.IDs}
		if len(p.Operator) > 0 {
			op, err := maglev.NewTable(p.Operator)
			if err != nil || op.Size() != t.Size() {
				return nil, fmt.Errorf("engine: saved pool %q: bad operator table (%v)", p.Name, err)
			}
			cp.Operator, cp.Excluded = op, p.Excluded
		}
		res.Pools = append(res.Pools, cp)
	}
	if len(res.Pools) == 0 {
		return nil, nil
	}
	return res, nil
}

func (e *Engine) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Engine) notify() {
	e.mu.Lock()
	e.notifyLocked()
	e.mu.Unlock()
}

// Changed returns a channel that is closed at the next change of the engine's
// status: a gateway's session or mastership, the end of a reconcile pass, an
// intent committed. Call it again after each close (before reading Status, so
// that no change is missed).
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// Kick asks every gateway to reconcile now (a dry "are we still in sync" pass
// writes nothing when nothing differs).
func (e *Engine) Kick() {
	e.mu.Lock()
	gws := e.gatewaysLocked()
	e.mu.Unlock()
	for _, g := range gws {
		g.kickNow()
	}
}

// WaitVersion blocks until every managed gateway holds intent version (or a
// later one) exactly, or ctx ends; it then returns the gateways' status.
func (e *Engine) WaitVersion(ctx context.Context, version uint64) ([]GatewayStatus, error) {
	for {
		e.mu.Lock()
		ch := e.changed
		gws := e.gatewaysLocked()
		e.mu.Unlock()
		done := true
		var st []GatewayStatus
		for _, g := range gws {
			s := g.status()
			st = append(st, s)
			if !s.InSync || s.Version < version {
				done = false
			}
		}
		if done {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("engine: waiting for version %d: %w", version, ctx.Err())
		}
	}
}

// Close drains the engine: it refuses further Commits, lets every worker finish
// the reconcile pass in flight, stops the workers and closes their sessions
// (targets keep their entries). If ctx ends first, passes in flight are
// cancelled.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.draining = true
	gws := e.gatewaysLocked()
	e.gws = map[string]*gateway{}
	e.mu.Unlock()
	for _, g := range gws {
		g.signalStop()
	}
	var err error
	for _, g := range gws {
		select {
		case <-g.done:
		case <-ctx.Done():
			err = fmt.Errorf("engine: drain cut short: %w", ctx.Err())
			e.cancelHard()
			<-g.done
		}
	}
	e.cancelHard()
	for _, g := range gws {
		g.client.Close()
	}
	return err
}

// Draining reports whether Close was called.
func (e *Engine) Draining() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.draining
}
