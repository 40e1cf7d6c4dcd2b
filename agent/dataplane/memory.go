package dataplane

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Limits are optional target limits a Memory dataplane imitates, so tests can see
// how the agent reports a target that holds less than the P4Info promises.
// Zero means no limit. XDPLimits gives the XDP dataplane's.
type Limits struct {
	// MaxPools: how many pools may own backend_select buckets at once. Any
	// pool id may; the first bucket of one more pool is ErrFull (XDP: the
	// slots of its backend_select array, bpf.MaxPools).
	MaxPools int
	// Buckets: backend_select buckets per pool; a bucket >= Buckets is
	// ErrOutOfRange although the 16-bit P4Info field allows it (XDP:
	// pipeline.Buckets cells per slot).
	Buckets int
	// MaxMasks: distinct gray rule masks in use at once (ErrFull), as on XDP
	// (bpf.MaxMasks, the tuple-space search's bound).
	MaxMasks int
	// MaxMasks6: the same for gray_rules_v6 (bpf.MaxMasks6).
	MaxMasks6 int
}

// XDPLimits are the limits of the XDP dataplane (bpf.MaxPools, pipeline.Buckets,
// bpf.MaxMasks, bpf.MaxMasks6; a test checks them against package bpf).
func XDPLimits() Limits {
	return Limits{MaxPools: 64, Buckets: pipeline.Buckets, MaxMasks: 64, MaxMasks6: 32}
}

// Memory is the reference dataplane: a model.State plus counters, forwarding with
// model.Process. It implements Dataplane, Lister and CounterWriter and is safe for
// concurrent use.
type Memory struct {
	limits Limits

	mu sync.Mutex
	st *model.State
	// poolBuckets: how many backend_select cells each pool owns (pools
	// owning none are absent), for Limits.MaxPools.
	poolBuckets map[uint16]int
	drops       [pipeline.NumReasons]Counter
	vipCtr      map[uint32]Counter
	ruleCtr     map[model.GrayRule]Counter // by identity: the rules present
	beCtr       map[uint16]Counter
	mirrorCtr   [pipeline.MirrorIDs]Counter
	mirrorBeCtr map[uint16]Counter
	vip6Ctr     map[[16]byte]Counter
	rule6Ctr    map[model.GrayRuleV6]Counter // by identity: the rules present
}

var (
	_ Dataplane     = (*Memory)(nil)
	_ Lister        = (*Memory)(nil)
	_ CounterWriter = (*Memory)(nil)
)

// NewMemory returns an empty Memory dataplane.
func NewMemory(l Limits) *Memory {
	return &Memory{
		limits: l, st: model.NewState(), poolBuckets: map[uint16]int{},
		vipCtr: map[uint32]Counter{}, ruleCtr: map[model.GrayRule]Counter{}, beCtr: map[uint16]Counter{},
		mirrorBeCtr: map[uint16]Counter{}, vip6Ctr: map[[16]byte]Counter{}, rule6Ctr: map[model.GrayRuleV6]Counter{},
	}
}

// Process runs frame, received on port 0, through the pipeline (ProcessPort).
func (m *Memory) Process(frame []byte) model.Result { return m.ProcessPort(0, frame) }

// ProcessPort runs frame, received on port inPort, through the pipeline
// (model.ProcessPort) and counts it as the XDP
// program does: drop_reasons for every reason but NONE, the vip counter on a vip
// hit, the gray rule counter of the winning rule, the backend counter when
// forwarded, and a mirror copy in the mirror counters and its backend's
// (docs/pipeline.md §10). Bytes are the frame's length.
func (m *Memory) ProcessPort(inPort uint16, frame []byte) model.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := model.ProcessPort(m.st, inPort, frame)
	n := uint64(len(frame))
	add := func(c Counter) Counter { return Counter{Packets: c.Packets + 1, Bytes: c.Bytes + n} }
	if r.Reason != pipeline.None && int(r.Reason) < len(m.drops) {
		m.drops[r.Reason] = add(m.drops[r.Reason])
	}
	if r.VIPHit {
		if p := model.Parse(frame); p.Outer6 {
			m.vip6Ctr[p.OuterDst6] = add(m.vip6Ctr[p.OuterDst6])
		} else {
			m.vipCtr[p.OuterDst] = add(m.vipCtr[p.OuterDst])
		}
	}
	if r.Rule >= 0 {
		id := model.RuleID(m.st.GrayRules[r.Rule])
		m.ruleCtr[id] = add(m.ruleCtr[id])
	}
	if r.RuleV6 >= 0 {
		id := model.RuleIDV6(m.st.GrayRulesV6[r.RuleV6])
		m.rule6Ctr[id] = add(m.rule6Ctr[id])
	}
	// The backend entry was hit: counted even when its family is not the
	// frame's (BACKEND_FAMILY), as XDP and P4 count it.
	if r.Verdict == model.Forward || r.Reason == pipeline.BackendFamily {
		m.beCtr[r.BackendID] = add(m.beCtr[r.BackendID])
	}
	if c := r.Copy; c != nil && int(c.MirrorID) < len(m.mirrorCtr) {
		m.mirrorCtr[c.MirrorID] = add(m.mirrorCtr[c.MirrorID])
		if c.Sent || c.BackendFamily { // the copy hit the backend entry
			m.beCtr[c.BackendID] = add(m.beCtr[c.BackendID])
		}
		if c.Sent {
			m.mirrorBeCtr[c.BackendID] = add(m.mirrorBeCtr[c.BackendID])
		}
	}
	return r
}

// MirrorCounter implements MirrorCounters.
func (m *Memory) MirrorCounter(id uint16) (Counter, error) {
	if int(id) >= pipeline.MirrorIDs {
		return Counter{}, fmt.Errorf("mirror id %d: %w", id, ErrOutOfRange)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mirrorCtr[id], nil
}

// MirrorBackendCounter implements MirrorCounters.
func (m *Memory) MirrorBackendCounter(id uint16) (Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.st.Backends[id]; !ok {
		return Counter{}, fmt.Errorf("backend %d: %w", id, ErrNotFound)
	}
	return m.mirrorBeCtr[id], nil
}

// SetVIP implements Dataplane.
func (m *Memory) SetVIP(addr uint32, v model.VIP) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	setEntry(m.st.VIPs, addr, v, m.vipCtr)
	return nil
}

// setEntry inserts or replaces table[k] = v, with m.mu held; an insert
// starts k's counters in ctrs at zero, a replace keeps them (P4Runtime's
// MODIFY keeps a direct counter).
func setEntry[K comparable, V any](table map[K]V, k K, v V, ctrs ...map[K]Counter) {
	if _, ok := table[k]; !ok {
		for _, c := range ctrs {
			c[k] = Counter{}
		}
	}
	table[k] = v
}

// DeleteVIP implements Dataplane.
func (m *Memory) DeleteVIP(addr uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.VIPs, addr, fmt.Sprintf("vip %#x", addr), m.vipCtr)
}

// deleteEntry removes k from table and its counters from ctrs, with m.mu
// held; what names the entry in the ErrNotFound when there is none.
func deleteEntry[K comparable, V any](table map[K]V, k K, what string, ctrs ...map[K]Counter) error {
	if _, ok := table[k]; !ok {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	delete(table, k)
	for _, c := range ctrs {
		delete(c, k)
	}
	return nil
}

// putEntry sets table[k] to v under m.mu: the tables whose entries carry no
// counters.
func putEntry[K comparable, V any](m *Memory, table map[K]V, k K, v V) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	table[k] = v
	return nil
}

// SetVIPV6 implements Dataplane.
func (m *Memory) SetVIPV6(addr [16]byte, v model.VIP) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	setEntry(m.st.VIPsV6, addr, v, m.vip6Ctr)
	return nil
}

// DeleteVIPV6 implements Dataplane.
func (m *Memory) DeleteVIPV6(addr [16]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.VIPsV6, addr, fmt.Sprintf("vip_v6 %v", netip.AddrFrom16(addr)), m.vip6Ctr)
}

// SetTenant implements Dataplane.
func (m *Memory) SetTenant(vni uint32, tenant uint16) error {
	if vni > pipeline.MaxVNI {
		return fmt.Errorf("vni %d: %w", vni, ErrOutOfRange)
	}
	return putEntry(m, m.st.Tenants, vni, tenant)
}

// DeleteTenant implements Dataplane.
func (m *Memory) DeleteTenant(vni uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.Tenants, vni, fmt.Sprintf("vni_tenant %d", vni))
}

// SetVLANAccept implements Dataplane.
func (m *Memory) SetVLANAccept(port, vid uint16) error {
	if port > pipeline.MaxPortID || vid > pipeline.MaxVIDValue {
		return fmt.Errorf("vlan_accept port %d vid %d: %w", port, vid, ErrOutOfRange)
	}
	return putEntry(m, m.st.VLANAccept, model.PortVID{Port: port, VID: vid}, true)
}

// DeleteVLANAccept implements Dataplane.
func (m *Memory) DeleteVLANAccept(port, vid uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.VLANAccept, model.PortVID{Port: port, VID: vid}, fmt.Sprintf("vlan_accept port %d vid %d", port, vid))
}

// SetPortVLAN implements Dataplane. VID 0 is refused, as the XDP dataplane
// does (a port sends with a VID of 1-4094 or untagged).
func (m *Memory) SetPortVLAN(port, vid uint16) error {
	if port > pipeline.MaxPortID || vid == 0 || vid > pipeline.MaxVIDValue {
		return fmt.Errorf("port_vlan port %d vid %d: %w", port, vid, ErrOutOfRange)
	}
	return putEntry(m, m.st.PortVLAN, port, vid)
}

// DeletePortVLAN implements Dataplane.
func (m *Memory) DeletePortVLAN(port uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.PortVLAN, port, fmt.Sprintf("port_vlan port %d", port))
}

// InsertRule implements Dataplane.
func (m *Memory) InsertRule(r model.GrayRule) error { return m.grayRules().insert(m, r) }

// ModifyRule implements Dataplane.
func (m *Memory) ModifyRule(r model.GrayRule) error {
	return m.grayRules().modify(m, r, func(old *model.GrayRule) {
		old.Action, old.Pool, old.Threshold = r.Action, r.Pool, r.Threshold
		old.MirrorPool, old.Sample, old.MirrorID = r.MirrorPool, r.Sample, r.MirrorID
	})
}

// DeleteRule implements Dataplane.
func (m *Memory) DeleteRule(r model.GrayRule) error { return m.grayRules().delete(m, r) }

// InsertRuleV6 implements Dataplane.
func (m *Memory) InsertRuleV6(r model.GrayRuleV6) error { return m.grayRulesV6().insert(m, r) }

// ModifyRuleV6 implements Dataplane.
func (m *Memory) ModifyRuleV6(r model.GrayRuleV6) error {
	return m.grayRulesV6().modify(m, r, func(old *model.GrayRuleV6) {
		old.Action, old.Pool, old.Threshold = r.Action, r.Pool, r.Threshold
	})
}

// DeleteRuleV6 implements Dataplane.
func (m *Memory) DeleteRuleV6(r model.GrayRuleV6) error { return m.grayRulesV6().delete(m, r) }

// ruleTable is one of the Memory dataplane's gray rule tables, gray_rules or
// gray_rules_v6: the family as data for one insert, modify and delete.
type ruleTable[R, M comparable] struct {
	what     string          // the table, in errors
	rules    *[]R            // the rules in insertion order (model.State's)
	held     map[R]Counter   // their counters by identity: the rules present
	id       func(R) R       // a rule's identity: model.RuleID, RuleIDV6
	canon    func(r, id R) R // r with its identity's canonical match
	maskOf   func(R) M       // a rule's masks, vip's and flow's
	maxMasks int             // distinct masks allowed, 0 for no limit
}

func (m *Memory) grayRules() ruleTable[model.GrayRule, ruleMask[pipeline.FlowKey]] {
	return ruleTable[model.GrayRule, ruleMask[pipeline.FlowKey]]{"gray rule", &m.st.GrayRules, m.ruleCtr,
		model.RuleID, canonRule, maskOf, m.limits.MaxMasks}
}

func (m *Memory) grayRulesV6() ruleTable[model.GrayRuleV6, ruleMask[pipeline.FlowKey6]] {
	return ruleTable[model.GrayRuleV6, ruleMask[pipeline.FlowKey6]]{"gray rule v6", &m.st.GrayRulesV6, m.rule6Ctr,
		model.RuleIDV6, canonRuleV6, maskOfV6, m.limits.MaxMasks6}
}

// canonRule is r as it is stored: keyed as its identity (model.RuleID) keys
// it, match bits outside the mask cleared and the VNI mask cut to 24 bits.
func canonRule(r, id model.GrayRule) model.GrayRule {
	r.Match, r.VIPID, r.Mask.VNI = id.Match, id.VIPID, id.Mask.VNI
	return r
}

func canonRuleV6(r, id model.GrayRuleV6) model.GrayRuleV6 {
	r.Match, r.VIPID, r.Mask.VNI = id.Match, id.VIPID, id.Mask.VNI
	return r
}

func maskOf(id model.GrayRule) ruleMask[pipeline.FlowKey] {
	return ruleMask[pipeline.FlowKey]{id.VIPMask, id.Mask}
}

func maskOfV6(id model.GrayRuleV6) ruleMask[pipeline.FlowKey6] {
	return ruleMask[pipeline.FlowKey6]{id.VIPMask, id.Mask}
}

// ruleMask is a gray rule's masks, vip's and flow's: the unit of the XDP
// dataplane's mask list (Limits.MaxMasks, MaxMasks6).
type ruleMask[F comparable] struct {
	vip  uint16
	flow F
}

// insert adds r under m.mu. A rule already held is ErrExists; with maxMasks
// > 0, a rule whose masks would be one distinct mask more than maxMasks is
// ErrFull, as the XDP dataplane's mask list refuses it.
func (t ruleTable[R, M]) insert(m *Memory, r R) error {
	id := t.id(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := t.held[id]; ok {
		return fmt.Errorf("%s: %w", t.what, ErrExists)
	}
	if t.maxMasks > 0 {
		masks := map[M]bool{}
		for rid := range t.held {
			masks[t.maskOf(rid)] = true
		}
		if !masks[t.maskOf(id)] && len(masks) >= t.maxMasks {
			return fmt.Errorf("%s: %w: %d distinct masks in use", t.what, ErrFull, len(masks))
		}
	}
	*t.rules = append(*t.rules, t.canon(r, id))
	t.held[id] = Counter{}
	return nil
}

// modify runs set under m.mu on the rule held with r's identity; a rule not
// held is ErrNotFound.
func (t ruleTable[R, M]) modify(m *Memory, r R, set func(old *R)) error {
	return t.on(m, r, func(i int, _ R) { set(&(*t.rules)[i]) })
}

// delete removes the rule held with r's identity and its counter; a rule not
// held is ErrNotFound.
func (t ruleTable[R, M]) delete(m *Memory, r R) error {
	return t.on(m, r, func(i int, id R) {
		*t.rules = slices.Delete(*t.rules, i, i+1)
		delete(t.held, id)
	})
}

func (t ruleTable[R, M]) on(m *Memory, r R, f func(i int, id R)) error {
	k := t.id(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(*t.rules, func(x R) bool { return t.id(x) == k })
	if i < 0 {
		return fmt.Errorf("%s: %w", t.what, ErrNotFound)
	}
	f(i, k)
	return nil
}

// SetPoolHash implements Dataplane.
func (m *Memory) SetPoolHash(pool uint16, mask pipeline.FlowKey) error {
	mask.VNI &= pipeline.MaxVNI
	return putEntry(m, m.st.PoolHash, pool, mask)
}

// DeletePoolHash implements Dataplane.
func (m *Memory) DeletePoolHash(pool uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.PoolHash, pool, fmt.Sprintf("pool_hash %d", pool))
}

// checkBuckets checks buckets first..first+n-1 of pool against the limits, with
// m.mu held: the range against Buckets (ErrOutOfRange), then, for a pool that
// owns no bucket yet, the number of pools that do against MaxPools (ErrFull).
func (m *Memory) checkBuckets(pool, first uint16, n int) error {
	bound := 1 << 16
	if m.limits.Buckets > 0 {
		bound = m.limits.Buckets
	}
	if int(first)+n > bound {
		return fmt.Errorf("backend_select pool %d: %w: buckets %d..%d, want < %d",
			pool, ErrOutOfRange, first, int(first)+n-1, bound)
	}
	if m.limits.MaxPools > 0 && n > 0 && m.poolBuckets[pool] == 0 && len(m.poolBuckets) >= m.limits.MaxPools {
		return fmt.Errorf("backend_select pool %d: %w: %d pools own buckets already", pool, ErrFull, len(m.poolBuckets))
	}
	return nil
}

// setBucket sets one cell, with m.mu held, keeping poolBuckets.
func (m *Memory) setBucket(pool, bucket, backend uint16) {
	k := model.SelectKey{Pool: pool, Bucket: bucket}
	if _, ok := m.st.BackendSelect[k]; !ok {
		m.poolBuckets[pool]++
	}
	m.st.BackendSelect[k] = backend
}

// SetBucket implements Dataplane.
func (m *Memory) SetBucket(pool, bucket, backend uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkBuckets(pool, bucket, 1); err != nil {
		return err
	}
	m.setBucket(pool, bucket, backend)
	return nil
}

// SetBuckets implements Dataplane.
func (m *Memory) SetBuckets(pool, first uint16, backends []uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkBuckets(pool, first, len(backends)); err != nil {
		return err
	}
	for i, b := range backends {
		m.setBucket(pool, first+uint16(i), b)
	}
	return nil
}

// DeleteBucket implements Dataplane.
func (m *Memory) DeleteBucket(pool, bucket uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.limits.Buckets > 0 && int(bucket) >= m.limits.Buckets {
		return fmt.Errorf("backend_select %d/%d: %w: buckets < %d", pool, bucket, ErrOutOfRange, m.limits.Buckets)
	}
	k := model.SelectKey{Pool: pool, Bucket: bucket}
	if _, ok := m.st.BackendSelect[k]; !ok {
		return fmt.Errorf("backend_select %d/%d: %w", pool, bucket, ErrNotFound)
	}
	delete(m.st.BackendSelect, k)
	if m.poolBuckets[pool]--; m.poolBuckets[pool] == 0 {
		delete(m.poolBuckets, pool)
	}
	return nil
}

// SetBackendEntry implements Dataplane.
func (m *Memory) SetBackendEntry(id uint16, b model.Backend) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	setEntry(m.st.Backends, id, b, m.beCtr, m.mirrorBeCtr)
	return nil
}

// DeleteBackendEntry implements Dataplane.
func (m *Memory) DeleteBackendEntry(id uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return deleteEntry(m.st.Backends, id, fmt.Sprintf("backend %d", id), m.beCtr, m.mirrorBeCtr)
}

// DropCounters implements Dataplane.
func (m *Memory) DropCounters() ([pipeline.NumReasons]Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops, nil
}

// VIPCounter implements Dataplane.
func (m *Memory) VIPCounter(addr uint32) (Counter, error) {
	return counterOf(m, m.vipCtr, addr, fmt.Sprintf("vip %#x", addr))
}

// RuleCounter implements Dataplane.
func (m *Memory) RuleCounter(r model.GrayRule) (Counter, error) {
	return counterOf(m, m.ruleCtr, model.RuleID(r), "gray rule")
}

// BackendCounter implements Dataplane.
func (m *Memory) BackendCounter(id uint16) (Counter, error) {
	return counterOf(m, m.beCtr, id, fmt.Sprintf("backend %d", id))
}

// VIPCounterV6 implements Dataplane.
func (m *Memory) VIPCounterV6(addr [16]byte) (Counter, error) {
	return counterOf(m, m.vip6Ctr, addr, fmt.Sprintf("vip_v6 %v", netip.AddrFrom16(addr)))
}

// RuleCounterV6 implements Dataplane.
func (m *Memory) RuleCounterV6(r model.GrayRuleV6) (Counter, error) {
	return counterOf(m, m.rule6Ctr, model.RuleIDV6(r), "gray rule v6")
}

// counterOf reads ctr[k]; what names the entry in the ErrNotFound when there
// is none.
func counterOf[K comparable](m *Memory, ctr map[K]Counter, k K, what string) (Counter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := ctr[k]
	if !ok {
		return c, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return c, nil
}

// SetDropCounter implements CounterWriter.
func (m *Memory) SetDropCounter(reason pipeline.Reason, c Counter) error {
	if int(reason) >= len(m.drops) {
		return fmt.Errorf("drop reason %d: %w", reason, ErrOutOfRange)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drops[reason] = c
	return nil
}

func setCounter[K comparable](m *Memory, ctr map[K]Counter, k K, c Counter, what string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := ctr[k]; !ok {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	ctr[k] = c
	return nil
}

// SetVIPCounter implements CounterWriter.
func (m *Memory) SetVIPCounter(addr uint32, c Counter) error {
	return setCounter(m, m.vipCtr, addr, c, "vip counter")
}

// SetRuleCounter implements CounterWriter.
func (m *Memory) SetRuleCounter(r model.GrayRule, c Counter) error {
	return setCounter(m, m.ruleCtr, model.RuleID(r), c, "gray rule counter")
}

// SetBackendCounter implements CounterWriter.
func (m *Memory) SetBackendCounter(id uint16, c Counter) error {
	return setCounter(m, m.beCtr, id, c, "backend counter")
}

// SetVIPCounterV6 implements CounterWriter.
func (m *Memory) SetVIPCounterV6(addr [16]byte, c Counter) error {
	return setCounter(m, m.vip6Ctr, addr, c, "vip_v6 counter")
}

// SetRuleCounterV6 implements CounterWriter.
func (m *Memory) SetRuleCounterV6(r model.GrayRuleV6, c Counter) error {
	return setCounter(m, m.rule6Ctr, model.RuleIDV6(r), c, "gray rule v6 counter")
}

// List implements Lister: every table, in full.
func (m *Memory) List() (Listing, error) {
	return Listing{State: m.State(), Complete: AllTables}, nil
}

// State returns a copy of the tables.
func (m *Memory) State() *model.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &model.State{
		VIPs: maps.Clone(m.st.VIPs), VIPsV6: maps.Clone(m.st.VIPsV6), Tenants: maps.Clone(m.st.Tenants),
		GrayRules: slices.Clone(m.st.GrayRules), GrayRulesV6: slices.Clone(m.st.GrayRulesV6), PoolHash: maps.Clone(m.st.PoolHash),
		BackendSelect: maps.Clone(m.st.BackendSelect), Backends: maps.Clone(m.st.Backends),
		VLANAccept: maps.Clone(m.st.VLANAccept), PortVLAN: maps.Clone(m.st.PortVLAN),
	}
}
