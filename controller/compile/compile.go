// Package compile turns a validated intent (package intent) into the table
// entries every gray gateway should hold (docs/pipeline.md), in a target-neutral
// form keyed like P4Runtime entries, and converts entries into a model.State so
// tests can run packets through the reference model and check that the intent does
// what it says.
//
// Compilation is deterministic: the same intent and the same previous Result give
// the same entries, in the same order. Buckets are filled by weighted Maglev
// (package controller/maglev), rebuilt from the previous table so that only the
// buckets that must move do.
//
// Pools are versioned so that a change of a pool's buckets or hash fields is
// flipped atomically: a pool with base id B lives in the dataplane as pool_id
// B (slot 0) or B+SlotOffset (slot 1). A changed pool is compiled into the slot
// it does not occupy; applying the change is then (make-before-break, the order
// controller/reconcile produces) write the new version's pool_hash and
// backend_select entries, repoint the vip and gray_rules entries at it (one
// atomic modify each), and delete the old version's entries.
package compile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/graygw/graygw/controller/failover"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/maglev"
	"github.com/graygw/graygw/internal/find"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// SlotOffset is what a pool's version slot adds to its base id: slot 0 is pool_id
// = base id, slot 1 is base id + 32768 (base ids are at most intent.MaxPoolID).
const SlotOffset = 1 << 15

// MaxPoolVersions is the number of pool versions backend_select holds at once.
const MaxPoolVersions = pipeline.BackendSelectTableSize / pipeline.Buckets

var (
	// ErrTransition: applying the change would need more pool versions than
	// backend_select holds while old and new versions are both installed, or no
	// free version slot is left for a changed pool. Apply the change in smaller
	// steps.
	ErrTransition = errors.New("compile: change does not fit make-before-break")
	// ErrMaglev: the bucket assignment failed (wraps the maglev error). Validation
	// prevents every cause the intent can have; a corrupt previous table can still.
	ErrMaglev = errors.New("compile: bucket assignment failed")
)

// Pool is one compiled pool version.
type Pool struct {
	Name   string
	BaseID uint16
	Slot   uint8
	// ID is the dataplane pool_id: BaseID + Slot*SlotOffset.
	ID uint16
	// Hash is the pool_hash masks.
	Hash pipeline.FlowKey
	// Table assigns the buckets to backend names.
	Table *maglev.Table
	// Buckets are the backend ids of the buckets (backend_select: bucket b ->
	// Buckets[b]).
	Buckets []uint16

	// built is what Table was built from by Compile (members, weights, backend
	// ids), "" for a pool recovered or loaded from elsewhere; entries are the
	// version's pool_hash and backend_select entries. A pool compiled from a
	// previous one with the same built and hash reuses its table, buckets and
	// entries as they are (shared, never modified): adding a rule recomputes
	// no Maglev table and builds no bucket entry.
	built   string
	entries []Entry

	// Excluded are the members health failover took out (sorted), and
	// Operator the operator's table: the intent's members at their weights,
	// which Table is when nothing is excluded. The next compilation starts
	// from Operator (from Table when nil), so a restored member gets exactly
	// its buckets back.
	Excluded []string
	Operator *maglev.Table
	opBuilt  string
}

// Gateway holds the entries of one gateway.
type Gateway struct {
	Name      string
	P4Runtime string
	DeviceID  uint64
	// Entries are in make-before-break table order (backend, pool_hash,
	// backend_select, vni_tenant, vip, gray_rules), each table sorted by key.
	Entries []Entry
}

// Result is a compiled intent.
type Result struct {
	// Pools are the pool versions the entries use, sorted by name.
	Pools []Pool
	// Gateways are sorted by name. Their entries differ only in to_backend's smac.
	Gateways []Gateway

	// split: the Gateways' entries leave out the pools' pool_hash and
	// backend_select entries, which are in Pool.Entries (CompileSplit).
	split bool
	// rules are the gray_rules entries by what they are made of, with their
	// sort keys: the next compilation reuses them as they are (shared, never
	// modified), so a change of one rule builds one entry.
	rules map[ruleRef]*sortedEntry
}

// ruleRef names one gray rule entry: a rule has one in gray_rules, in
// gray_rules_v6 (v6), or one in each (intent.FamilyAny).
type ruleRef struct {
	name string
	v6   bool
}

// ruleTables are the tables (v6 or not) a rule of each family has an entry in.
var ruleTables = map[intent.Family][]bool{intent.FamilyAny: {false, true}, intent.Family4: {false}, intent.Family6: {true}}

// ruleSig is everything a gray_rules entry is made of.
type ruleSig struct {
	name      string
	key       intent.Key
	priority  int32
	pool      uint16
	threshold uint16
	// set_pool_mirror only (mirror false: set_pool or split_pool).
	mirror                       bool
	mirrorPool, sample, mirrorID uint16
}

type sortedEntry struct {
	sig ruleSig
	e   Entry
	key string // sortKey
}

// Split reports whether r comes from CompileSplit (the Gateways' entries leave
// out the pool versions' entries; Full adds them).
func (r *Result) Split() bool { return r.split }

// Full returns r with every gateway holding every entry: r itself unless it
// comes from CompileSplit, else a new Result (sharing r's pools) whose entries
// are those Compile gives.
func (r *Result) Full() *Result {
	if !r.split {
		return r
	}
	out := &Result{Pools: r.Pools}
	common := poolTables(r.Pools)
	for _, g := range r.Gateways {
		var entries []Entry
		i := 0
		for i < len(g.Entries) && g.Entries[i].Table == pipeline.TableBackend {
			i++
		}
		entries = make([]Entry, 0, len(g.Entries)+len(common))
		entries = append(append(append(entries, g.Entries[:i]...), common...), g.Entries[i:]...)
		out.Gateways = append(out.Gateways, Gateway{Name: g.Name, P4Runtime: g.P4Runtime, DeviceID: g.DeviceID, Entries: entries})
	}
	return out
}

// Entries are the pool version's pool_hash entry and its backend_select entries
// in bucket order, as in a Result's gateway entries. They are shared between
// successive Results while the pool is unchanged: do not modify them.
func (p *Pool) Entries() []Entry { return p.entries }

// Pool returns the compiled pool with the given name.
func (r *Result) Pool(name string) (*Pool, bool) {
	return find.First(r.Pools, func(p *Pool) bool { return p.Name == name })
}

// PoolByID returns the compiled pool whose dataplane id is id.
func (r *Result) PoolByID(id uint16) (*Pool, bool) {
	return find.First(r.Pools, func(p *Pool) bool { return p.ID == id })
}

// Gateway returns the entries of the gateway with the given name.
func (r *Result) Gateway(name string) (*Gateway, bool) {
	return find.First(r.Gateways, func(g *Gateway) bool { return g.Name == name })
}

// Compile returns the entries that implement in. prev is what the gateways hold
// now (the Result last applied), or nil for a first installation: pools are
// rebuilt from their previous tables so that the fewest buckets move, and a pool
// whose buckets or hash masks change moves to its other version slot. It returns
// nil and an error wrapping ErrTransition or ErrMaglev when it cannot.
func Compile(in *intent.Intent, prev *Result) (*Result, error) {
	return compileResult(in, prev, false, nil)
}

// CompileSplit is Compile for a caller that takes the pool versions' entries
// from Pool.Entries (the engine): the gateways' entries are all the others
// (backend, vni_tenant, vip, gray_rules), and the 4097 entries of an unchanged
// pool are neither built nor copied again. Result.Full gives what Compile
// gives.
func CompileSplit(in *intent.Intent, prev *Result) (*Result, error) {
	return compileResult(in, prev, true, nil)
}

// CompileSplitExcluding is CompileSplit with health failover: excluded names,
// per pool, the members whose buckets go to the pool's other members
// (failover.Table over the operator's table). Names that are no member of
// weight above 0, and pools without health_failover, are ignored; so is an
// exclusion that would leave a pool no member to serve.
func CompileSplitExcluding(in *intent.Intent, prev *Result, excluded map[string][]string) (*Result, error) {
	return compileResult(in, prev, true, excluded)
}

func compileResult(in *intent.Intent, prev *Result, split bool, excluded map[string][]string) (*Result, error) {
	if in == nil {
		return nil, errors.New("compile: nil intent")
	}
	pools, err := compilePools(in, prev, excluded)
	if err != nil {
		return nil, err
	}
	res := &Result{Pools: pools, split: split}
	for i := range res.Pools {
		if res.Pools[i].entries == nil {
			res.Pools[i].entries = poolEntries(&res.Pools[i])
		}
	}
	common := commonEntries(in, res, prev, !split)
	for _, g := range in.Gateways {
		var backends []Entry
		for _, b := range in.Backends {
			// Validation checked every backend's port exists on every gateway.
			port, _ := g.Port(b.Port)
			mb := model.Backend{Port: b.Port, SMAC: port.MAC, DMAC: b.MAC}
			if b.UnderlayIP.Is6() {
				mb.IPv6, mb.UnderlayIPv6 = true, b.UnderlayIP.As16()
			} else {
				mb.UnderlayIP = ip32(b.UnderlayIP.As4())
			}
			e := Entry{
				Table:  pipeline.TableBackend,
				Match:  []Match{exact(pipeline.MatchBackendID, uint64(b.ID))},
				Origin: "backend " + b.Name,
			}
			e.Action, e.Params = backendAction(mb)
			backends = append(backends, e)
		}
		backends = append(backends, portEntries(g.Ports)...)
		sortEntries(backends)
		entries := make([]Entry, 0, len(backends)+len(common))
		entries = append(append(entries, backends...), common...)
		res.Gateways = append(res.Gateways, Gateway{Name: g.Name, P4Runtime: g.P4Runtime, DeviceID: g.DeviceID, Entries: entries})
	}
	return res, nil
}

// portEntries are a gateway's 802.1Q entries: vlan_accept for each accepted
// VID of each port, port_vlan for each port that sends tagged.
func portEntries(ports []intent.Port) []Entry {
	var out []Entry
	for _, p := range ports {
		origin := fmt.Sprintf("port %d vlan", p.Number)
		for _, vid := range p.AcceptVIDs {
			out = append(out, Entry{Table: pipeline.TableVLANAccept, Action: pipeline.ActionAcceptVLAN, Origin: origin,
				Match: []Match{exact(pipeline.MatchIngressPort, uint64(p.Number)), exact(pipeline.MatchVID, uint64(vid))}})
		}
		if p.TagVID != 0 {
			out = append(out, Entry{Table: pipeline.TablePortVLAN, Action: pipeline.ActionSetPortVLAN, Origin: origin,
				Match:  []Match{exact(pipeline.MatchEgressPort, uint64(p.Number))},
				Params: []Param{param(pipeline.ParamVID, uint64(p.TagVID))}})
		}
	}
	return out
}

// compilePools builds every pool's bucket table and chooses its version slot.
func compilePools(in *intent.Intent, prev *Result, excluded map[string][]string) ([]Pool, error) {
	prevOwner := map[uint16]string{} // dataplane pool id -> pool name, in prev
	prevPools := map[string]*Pool{}
	prevByID := map[uint16]*Pool{}
	if prev != nil {
		for i := range prev.Pools {
			p := &prev.Pools[i]
			prevOwner[p.ID] = p.Name
			prevPools[p.Name] = p
			prevByID[p.ID] = p
		}
	}
	ids := map[string]uint16{}
	for _, b := range in.Backends {
		ids[b.Name] = b.ID
	}
	live := map[uint16]bool{}
	for id := range prevOwner {
		live[id] = true
	}
	var out []Pool
	var sig strings.Builder
	for _, ip := range in.Pools {
		members := make([]maglev.Backend, len(ip.Members))
		sig.Reset()
		for i, m := range ip.Members {
			members[i] = maglev.Backend{ID: m.Backend, Weight: m.Weight}
			fmt.Fprintf(&sig, "%s/%d/%d;", m.Backend, m.Weight, ids[m.Backend])
		}
		opBuilt := sig.String()
		ex := excludedMembers(ip, excluded[ip.Name])
		built := opBuilt
		if len(ex) > 0 {
			built += "excluded:" + strings.Join(ex, ",")
		}
		old := prevPools[ip.Name]
		p := Pool{Name: ip.Name, BaseID: ip.ID, Hash: ip.Hash.Mask(), built: built, opBuilt: opBuilt, Excluded: ex}
		if old != nil && old.built == built && old.Table != nil && old.BaseID == p.BaseID && old.Hash == p.Hash {
			// Same members, weights and ids as the installed version: the
			// same table (Rebuild would move nothing), the same entries.
			p.Table, p.Buckets, p.Slot, p.ID, p.entries, p.Operator = old.Table, old.Buckets, old.Slot, old.ID, old.entries, old.Operator
			live[p.ID] = true
			out = append(out, p)
			continue
		}
		// The operator's table first: from the previous one's operator table
		// (the installed table itself when nothing was excluded, or when it
		// was recovered or loaded: then only an approximation of it).
		var from *maglev.Table
		if old != nil {
			from = old.Operator
			if from == nil {
				from = old.Table
			}
		}
		var table *maglev.Table
		var err error
		switch {
		case old != nil && old.Operator != nil && old.opBuilt == opBuilt:
			table = old.Operator
		case from != nil && from.Size() == pipeline.Buckets:
			table, err = maglev.Rebuild(from, members)
		default:
			table, err = maglev.Build(members, pipeline.Buckets)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: pool %q: %w", ErrMaglev, ip.Name, err)
		}
		p.Operator = table
		if table, err = failover.Table(table, members, ex); err != nil {
			return nil, fmt.Errorf("%w: pool %q: %w", ErrMaglev, ip.Name, err)
		}
		p.Table, p.Buckets = table, make([]uint16, table.Size())
		for b := range p.Buckets {
			p.Buckets[b] = ids[table.Backend(b)]
		}
		switch {
		case old != nil && old.BaseID == p.BaseID && old.Hash == p.Hash && slices.Equal(old.Buckets, p.Buckets):
			p.Slot = old.Slot // unchanged: keep the installed version
			if old.ID == p.BaseID+uint16(p.Slot)*SlotOffset {
				p.entries = old.entries
			}
		default:
			// A new version goes to a slot nothing installed uses, the other slot
			// of the pool's current version first; or to an installed version
			// that already holds exactly this content (a flip that was
			// interrupted, see Recover).
			pref := uint8(0)
			if old != nil && old.BaseID == p.BaseID {
				pref = 1 - old.Slot
			}
			p.Slot = 2
			for _, s := range []uint8{pref, 1 - pref} {
				id := p.BaseID + uint16(s)*SlotOffset
				if q := prevByID[id]; q != nil && q.Hash == p.Hash && slices.Equal(q.Buckets, p.Buckets) {
					p.Slot = s
					break
				}
			}
			for _, s := range []uint8{pref, 1 - pref} {
				if p.Slot == 2 && prevOwner[p.BaseID+uint16(s)*SlotOffset] == "" {
					p.Slot = s
				}
			}
			if p.Slot == 2 {
				return nil, fmt.Errorf("%w: pool %q: both version slots (pool_id %d and %d) are installed for %q and %q; apply the previous change first",
					ErrTransition, ip.Name, p.BaseID, p.BaseID+SlotOffset, prevOwner[p.BaseID], prevOwner[p.BaseID+SlotOffset])
			}
		}
		p.ID = p.BaseID + uint16(p.Slot)*SlotOffset
		live[p.ID] = true
		out = append(out, p)
	}
	if len(live) > MaxPoolVersions {
		var changed []string
		for _, p := range out {
			if old := prevPools[p.Name]; old == nil || old.ID != p.ID {
				changed = append(changed, p.Name)
			}
		}
		return nil, fmt.Errorf("%w: %d pool versions would be installed at once while old and new coexist, backend_select holds %d; new versions for %s: change fewer pools at a time",
			ErrTransition, len(live), MaxPoolVersions, strings.Join(changed, ", "))
	}
	return out, nil
}

// excludedMembers is the part of names health failover may take out of ip:
// members of weight above 0, sorted; none when ip has no health_failover, or
// when they would be all of them.
func excludedMembers(ip intent.Pool, names []string) []string {
	if !ip.HealthFailover || len(names) == 0 {
		return nil
	}
	var ex []string
	serving := 0
	for _, m := range ip.Members {
		if m.Weight == 0 {
			continue
		}
		if slices.Contains(names, m.Backend) {
			ex = append(ex, m.Backend)
		} else {
			serving++
		}
	}
	if serving == 0 {
		return nil
	}
	slices.Sort(ex)
	return ex
}

// poolEntries are a pool version's pool_hash entry and its backend_select
// entries, in bucket order.
func poolEntries(p *Pool) []Entry {
	origin := p.Origin()
	m := p.Hash
	out := make([]Entry, 0, 1+len(p.Buckets))
	out = append(out, Entry{
		Table:  pipeline.TablePoolHash,
		Match:  []Match{exact(pipeline.MatchPoolID, uint64(p.ID))},
		Action: pipeline.ActionSetHashMask,
		Params: hashMaskParams(m),
		Origin: origin,
	})
	for b, id := range p.Buckets {
		out = append(out, Entry{
			Table:  pipeline.TableBackendSelect,
			Match:  []Match{exact(pipeline.MatchPoolID, uint64(p.ID)), exact(pipeline.MatchBucket, uint64(b))},
			Action: pipeline.ActionSetBackend,
			Params: []Param{param(pipeline.ParamBackendID, uint64(id))},
			Origin: origin,
		})
	}
	return out
}

// poolTables are the pool_hash and backend_select entries of pools, each
// table sorted.
func poolTables(pools []Pool) []Entry {
	n := 0
	for i := range pools {
		n += len(pools[i].entries)
	}
	byID := make([]*Pool, len(pools))
	for i := range pools {
		byID[i] = &pools[i]
	}
	slices.SortFunc(byID, func(a, b *Pool) int { return int(a.ID) - int(b.ID) })
	hash := make([]Entry, 0, len(pools))
	sel := make([]Entry, 0, n)
	for _, p := range byID { // pool_id order: the entries come out sorted
		hash = append(hash, p.entries[0])
		sel = append(sel, p.entries[1:]...)
	}
	sortEntries(hash)
	sortEntries(sel) // a linear check: already sorted
	return append(hash, sel...)
}

// commonEntries are the entries every gateway holds alike (all but backend),
// in table order, each table sorted (sortEntries); the pools' only with pools.
func commonEntries(in *intent.Intent, res, prev *Result, pools bool) []Entry {
	ids := make(map[string]uint16, len(res.Pools))
	for _, p := range res.Pools {
		ids[p.Name] = p.ID
	}
	poolID := func(name string) uint16 { return ids[name] }
	var tenants, vips, rules []Entry
	for _, t := range in.Tenants {
		for _, vni := range t.VNIs {
			tenants = append(tenants, Entry{
				Table:  pipeline.TableVNITenant,
				Match:  []Match{exact(pipeline.MatchVNI, uint64(vni))},
				Action: pipeline.ActionSetTenant,
				Params: []Param{param(pipeline.ParamTenantID, uint64(t.ID))},
				Origin: "tenant " + t.Name,
			})
		}
	}
	for _, v := range in.VIPs {
		e := Entry{
			Table:  pipeline.TableVIP,
			Action: pipeline.ActionSetVIP,
			Params: []Param{param(pipeline.ParamVIPID, uint64(v.ID)), param(pipeline.ParamDefaultPool, uint64(poolID(v.DefaultPool)))},
			Origin: "vip " + v.Name,
		}
		if v.Address.Is6() {
			e.Table, e.Action, e.Match = pipeline.TableVIPv6, pipeline.ActionSetVIPv6, []Match{exact128(pipeline.MatchDstAddr6, v.Address.As16())}
		} else {
			e.Match = []Match{exact(pipeline.MatchDstAddr, uint64(ip32(v.Address.As4())))}
		}
		vips = append(vips, e)
	}
	var prevRules map[ruleRef]*sortedEntry
	if prev != nil {
		prevRules = prev.rules
	}
	res.rules = make(map[ruleRef]*sortedEntry, len(in.Rules))
	sorted := make([]*sortedEntry, 0, len(in.Rules))
	var kb []byte
	for _, r := range in.Rules {
		sig := ruleSig{name: r.Name, key: r.Key, priority: r.Priority, pool: poolID(r.Pool), threshold: r.Threshold}
		if r.Mirrored() {
			sig.mirror, sig.mirrorPool, sig.sample, sig.mirrorID = true, poolID(r.MirrorPool), r.MirrorSample, r.MirrorID
		}
		// A rule without an address has an entry in each table; the
		// gray_rules_v6 one serves without the mirror (IPv6 is never
		// mirrored, docs/pipeline.md §10).
		for _, v6 := range ruleTables[r.Key.Family] {
			ref := ruleRef{name: r.Name, v6: v6}
			se := prevRules[ref]
			if se == nil || se.sig != sig {
				e := Entry{Table: pipeline.TableGrayRules, Priority: r.Priority, Origin: "rule " + r.Name}
				e.Action, e.Params = ruleAction(v6, r.Split(), sig.pool, r.Threshold)
				switch {
				case v6:
					e.Table, e.Match = pipeline.TableGrayRulesV6, ruleMatch6(&r.Key)
				case sig.mirror:
					e.Action, e.Params = mirrorAction(sig.pool, sig.mirrorPool, sig.sample, sig.mirrorID)
					fallthrough
				default:
					e.Match = ruleMatch(r.Key.VIPID, r.Key.VIPMask, r.Key.Value, r.Key.Mask)
				}
				kb = sortKey(kb[:0], &e)
				se = &sortedEntry{sig: sig, e: e, key: string(kb)}
			}
			res.rules[ref] = se
			sorted = append(sorted, se)
		}
	}
	// The same order as sortEntries (the keys are sortKey), from the kept keys.
	slices.SortStableFunc(sorted, func(a, b *sortedEntry) int { return strings.Compare(a.key, b.key) })
	rules = make([]Entry, len(sorted))
	for i := range sorted {
		rules[i] = sorted[i].e
	}
	var out []Entry
	if pools {
		out = poolTables(res.Pools)
	}
	sortEntries(tenants)
	sortEntries(vips)
	for _, t := range [][]Entry{tenants, vips, rules} {
		out = append(out, t...)
	}
	return out
}

// ruleMatch is a gray_rules key, wildcard fields left out.
func ruleMatch(vipID, vipMask uint16, v, m pipeline.FlowKey) []Match {
	var out []Match
	add := func(f pipeline.Field, v, m uint64) {
		if m != 0 {
			out = append(out, ternary(f, v, m))
		}
	}
	add(pipeline.MatchVIPID, uint64(vipID), uint64(vipMask))
	add(pipeline.MatchVNI, uint64(v.VNI), uint64(m.VNI))
	add(pipeline.MatchTenantID, uint64(v.Tenant), uint64(m.Tenant))
	add(pipeline.MatchInnerSrc, uint64(v.Src), uint64(m.Src))
	add(pipeline.MatchInnerDst, uint64(v.Dst), uint64(m.Dst))
	add(pipeline.MatchInnerProto, uint64(v.Proto), uint64(m.Proto))
	add(pipeline.MatchInnerSPort, uint64(v.SPort), uint64(m.SPort))
	add(pipeline.MatchInnerDPort, uint64(v.DPort), uint64(m.DPort))
	return out
}

// ruleMatch6 is an IPv6 rule's gray_rules_v6 key (ruleMatchV6 over the
// intent's key, with its 128-bit addresses).
func ruleMatch6(k *intent.Key) []Match {
	key6 := func(f pipeline.FlowKey, src, dst intent.Addr6) pipeline.FlowKey6 {
		return pipeline.FlowKey6{VNI: f.VNI, Tenant: f.Tenant, Src: src, Dst: dst, Proto: f.Proto, SPort: f.SPort, DPort: f.DPort}
	}
	return ruleMatchV6(model.GrayRuleV6{VIPID: k.VIPID, VIPMask: k.VIPMask,
		Match: key6(k.Value, k.Src6, k.Dst6), Mask: key6(k.Mask, k.Src6Mask, k.Dst6Mask)})
}

// ruleAction is a gray rule's action: split_pool(pool, threshold) or
// set_pool(pool), or in gray_rules_v6 (v6) their copies split_pool_v6 and
// set_pool_v6.
func ruleAction(v6, split bool, pool, threshold uint16) (string, []Param) {
	set, splitPool := pipeline.ActionSetPool, pipeline.ActionSplitPool
	if v6 {
		set, splitPool = pipeline.ActionSetPoolV6, pipeline.ActionSplitPoolV6
	}
	if split {
		return splitPool, []Param{param(pipeline.ParamPoolGray, uint64(pool)), param(pipeline.ParamThreshold, uint64(threshold))}
	}
	return set, []Param{param(pipeline.ParamPoolID, uint64(pool))}
}

// mirrorAction is set_pool_mirror: serve from pool, copy to mirrorPool
// (docs/pipeline.md §10).
func mirrorAction(pool, mirrorPool, sample, mirrorID uint16) (string, []Param) {
	return pipeline.ActionSetPoolMirror, []Param{param(pipeline.ParamPoolID, uint64(pool)),
		param(pipeline.ParamMirrorPool, uint64(mirrorPool)), param(pipeline.ParamSample, uint64(sample)),
		param(pipeline.ParamMirrorID, uint64(mirrorID))}
}

// hashMaskParams are set_hash_mask's parameters for the hash field masks m.
func hashMaskParams(m pipeline.FlowKey) []Param {
	return []Param{
		param(pipeline.ParamVNIMask, uint64(m.VNI)), param(pipeline.ParamTenantMask, uint64(m.Tenant)),
		param(pipeline.ParamSrcMask, uint64(m.Src)), param(pipeline.ParamDstMask, uint64(m.Dst)),
		param(pipeline.ParamProtoMask, uint64(m.Proto)), param(pipeline.ParamSPortMask, uint64(m.SPort)),
		param(pipeline.ParamDPortMask, uint64(m.DPort)),
	}
}

// backendAction is a backend entry's action: to_backend, or to_backend_v6
// for an IPv6 underlay.
func backendAction(b model.Backend) (string, []Param) {
	if !b.IPv6 {
		return pipeline.ActionToBackend, backendParams(b)
	}
	return pipeline.ActionToBackendV6, []Param{
		param(pipeline.ParamPort, uint64(b.Port)),
		param(pipeline.ParamSMAC, mac48(b.SMAC)),
		param(pipeline.ParamDMAC, mac48(b.DMAC)),
		param128(pipeline.ParamUnderlayIP6, b.UnderlayIPv6),
	}
}

// backendParams are to_backend's parameters.
func backendParams(b model.Backend) []Param {
	return []Param{
		param(pipeline.ParamPort, uint64(b.Port)),
		param(pipeline.ParamSMAC, mac48(b.SMAC)),
		param(pipeline.ParamDMAC, mac48(b.DMAC)),
		param(pipeline.ParamUnderlayIP, uint64(b.UnderlayIP)),
	}
}

// TableOrder lists the tables from the most depended-upon to the least: the order
// in which make-before-break writes them (and the reverse of the order in which it
// deletes).
var TableOrder = []string{
	pipeline.TablePortVLAN, pipeline.TableVLANAccept, pipeline.TableBackend, pipeline.TablePoolHash, pipeline.TableBackendSelect,
	pipeline.TableVNITenant, pipeline.TableVIP, pipeline.TableVIPv6, pipeline.TableGrayRulesV6, pipeline.TableGrayRules,
}

func tableRank(t string) int {
	if i := slices.Index(TableOrder, t); i >= 0 {
		return i
	}
	return len(TableOrder)
}

// sortEntries orders entries by table (TableOrder), then by priority (highest
// first), then by match values.
func sortEntries(es []Entry) {
	if slices.IsSortedFunc(es, compareEntries) {
		return
	}
	// Sorted by a byte key per entry whose order is compareEntries' (10k
	// rules: a few ms, where comparing Entry structs field by field took ~20).
	// Keys are distinct within a table of a valid intent; equal keys keep
	// their order (stable).
	keys := make([]string, len(es))
	var b []byte
	for i := range es {
		b = sortKey(b[:0], &es[i])
		keys[i] = string(b)
	}
	perm := make([]int, len(es))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(x, y int) int { return strings.Compare(keys[x], keys[y]) })
	sorted := make([]Entry, len(es))
	for i, j := range perm {
		sorted[i] = es[j]
	}
	copy(es, sorted)
}

// sortKey appends a key whose byte order is compareEntries' order: table rank,
// priority (descending), then each match field's name (0-terminated; names
// hold no 0 byte), value and mask. Values and masks of one field have the
// field's width, so only a shorter match list can end first: it sorts first,
// as in compareMatch.
func sortKey(b []byte, e *Entry) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(tableRank(e.Table)))
	b = binary.BigEndian.AppendUint32(b, uint32(math.MaxInt32-int64(e.Priority)))
	for _, m := range e.Match {
		b = append(b, m.Field...)
		b = append(b, 0)
		b = append(b, m.Value...)
		b = append(b, m.Mask...)
	}
	return b
}

func compareEntries(a, b Entry) int {
	if a.Table != b.Table {
		if c := tableRank(a.Table) - tableRank(b.Table); c != 0 {
			return c
		}
	}
	if a.Priority != b.Priority { // gray_rules: the winner first
		return int(b.Priority) - int(a.Priority)
	}
	return compareMatch(a.Match, b.Match)
}

func compareMatch(a, b []Match) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Field, b[i].Field); c != 0 {
			return c
		}
		if c := strings.Compare(string(a[i].Value), string(b[i].Value)); c != 0 {
			return c
		}
		if c := strings.Compare(string(a[i].Mask), string(b[i].Mask)); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func ip32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func mac48(m [6]byte) uint64 {
	var v uint64
	for _, c := range m {
		v = v<<8 | uint64(c)
	}
	return v
}

// Origin is the Entry.Origin of the pool version's pool_hash and backend_select
// entries: "pool NAME vSLOT".
func (p *Pool) Origin() string { return fmt.Sprintf("pool %s v%d", p.Name, p.Slot) }
