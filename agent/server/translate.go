package server

import (
	"errors"
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// This file binds the P4Runtime view of each table to the Dataplane methods, by
// P4Info name (docs/pipeline.md). The table's shape (fields, actions,
// parameters, widths, direct counter) comes from pipeline.Tables and is checked
// against the P4Info once, here; a binding only says how an entry becomes the
// typed key and value of its Dataplane methods. Everything else in the server
// is generic over the P4Info.

// bindings binds every table of the pipeline, in the order they are
// (re)installed so that nothing points at what does not exist yet (make before
// break; deletes go in reverse). The port tables first: a VIP's tagged frames
// are served once their port accepts them, and leave with their port's tag
// from the start.
//
// Adding a table is an entry here over its key and value: decode them with
// exact/param (or a function of the entry), name the Dataplane methods, and
// say where it goes in a model.State.
var bindings = []*binding{
	// port_vlan: egress_port -> set_port_vlan(vid)
	bind(pipeline.TablePortVLAN, table[uint16, uint16]{
		kind: dataplane.PortVLAN, key: exact[uint16](0), value: param[uint16](0),
		set: dataplane.Dataplane.SetPortVLAN, del: dataplane.Dataplane.DeletePortVLAN,
		fill: func(st *model.State, port, vid uint16) { st.PortVLAN[port] = vid },
	}),
	// vlan_accept: ingress_port, vid -> accept_vlan()
	bind(pipeline.TableVLANAccept, table[model.PortVID, struct{}]{
		kind: dataplane.VLANAccept,
		key: func(e *entry) model.PortVID {
			return model.PortVID{Port: uint16(e.u(0)), VID: uint16(e.u(1))}
		},
		value: noValue,
		set: func(dp dataplane.Dataplane, k model.PortVID, _ struct{}) error {
			return dp.SetVLANAccept(k.Port, k.VID)
		},
		del:  func(dp dataplane.Dataplane, k model.PortVID) error { return dp.DeleteVLANAccept(k.Port, k.VID) },
		fill: func(st *model.State, k model.PortVID, _ struct{}) { st.VLANAccept[k] = true },
	}),
	// backend: backend_id -> to_backend(port, smac, dmac, underlay_ip) |
	// to_backend_v6(port, smac, dmac, underlay_ip: 128 bits)
	bind(pipeline.TableBackend, table[uint16, model.Backend]{
		kind: dataplane.Backend, key: exact[uint16](0), value: backendValue,
		set: dataplane.Dataplane.SetBackendEntry, del: dataplane.Dataplane.DeleteBackendEntry,
		fill:    func(st *model.State, id uint16, b model.Backend) { st.Backends[id] = b },
		counter: dataplane.Dataplane.BackendCounter, setCounter: dataplane.CounterWriter.SetBackendCounter,
	}),
	// backend_select: pool_id, bucket -> set_backend(backend_id)
	bind(pipeline.TableBackendSelect, table[model.SelectKey, uint16]{
		kind: dataplane.BackendSelect,
		key: func(e *entry) model.SelectKey {
			return model.SelectKey{Pool: uint16(e.u(0)), Bucket: uint16(e.u(1))}
		},
		value: param[uint16](0),
		set: func(dp dataplane.Dataplane, k model.SelectKey, backend uint16) error {
			return dp.SetBucket(k.Pool, k.Bucket, backend)
		},
		del:  func(dp dataplane.Dataplane, k model.SelectKey) error { return dp.DeleteBucket(k.Pool, k.Bucket) },
		fill: func(st *model.State, k model.SelectKey, backend uint16) { st.BackendSelect[k] = backend },
	}),
	// pool_hash: pool_id -> set_hash_mask(7 masks)
	bind(pipeline.TablePoolHash, table[uint16, pipeline.FlowKey]{
		kind: dataplane.PoolHash, key: exact[uint16](0), value: hashMaskValue,
		set: dataplane.Dataplane.SetPoolHash, del: dataplane.Dataplane.DeletePoolHash,
		fill: func(st *model.State, pool uint16, mask pipeline.FlowKey) { st.PoolHash[pool] = mask },
	}),
	// vni_tenant: vni -> set_tenant(tenant_id)
	bind(pipeline.TableVNITenant, table[uint32, uint16]{
		kind: dataplane.VNITenant, key: exact[uint32](0), value: param[uint16](0),
		set: dataplane.Dataplane.SetTenant, del: dataplane.Dataplane.DeleteTenant,
		fill: func(st *model.State, vni uint32, tenant uint16) { st.Tenants[vni] = tenant },
	}),
	// gray_rules: 8 ternary fields + priority -> set_pool | split_pool |
	// set_pool_mirror. The rule is the key (its identity is model.RuleID)
	// and holds the action too; the dataplane tells inserting from modifying.
	bind(pipeline.TableGrayRules, table[model.GrayRule, struct{}]{
		kind: dataplane.GrayRules, key: grayRule, value: noValue,
		set: keyOnly(dataplane.Dataplane.InsertRule), modify: keyOnly(dataplane.Dataplane.ModifyRule),
		del:     dataplane.Dataplane.DeleteRule,
		fill:    func(st *model.State, r model.GrayRule, _ struct{}) { st.GrayRules = append(st.GrayRules, r) },
		counter: dataplane.Dataplane.RuleCounter, setCounter: dataplane.CounterWriter.SetRuleCounter,
	}),
	// gray_rules_v6: gray_rules' fields with 128-bit inner_src and inner_dst
	// -> set_pool_v6 | split_pool_v6 (no mirror: IPv6 is never mirrored).
	bind(pipeline.TableGrayRulesV6, table[model.GrayRuleV6, struct{}]{
		kind: dataplane.GrayRulesV6, key: grayRuleV6, value: noValue,
		set: keyOnly(dataplane.Dataplane.InsertRuleV6), modify: keyOnly(dataplane.Dataplane.ModifyRuleV6),
		del:     dataplane.Dataplane.DeleteRuleV6,
		fill:    func(st *model.State, r model.GrayRuleV6, _ struct{}) { st.GrayRulesV6 = append(st.GrayRulesV6, r) },
		counter: dataplane.Dataplane.RuleCounterV6, setCounter: dataplane.CounterWriter.SetRuleCounterV6,
	}),
	// vip_v6: dst_addr (128 bits) -> set_vip_v6(vip_id, default_pool)
	bind(pipeline.TableVIPv6, table[[16]byte, model.VIP]{
		kind: dataplane.VIPV6, key: func(e *entry) [16]byte { return addr128(e.fields[0].a) }, value: vipValue,
		set: dataplane.Dataplane.SetVIPV6, del: dataplane.Dataplane.DeleteVIPV6,
		fill:    func(st *model.State, addr [16]byte, v model.VIP) { st.VIPsV6[addr] = v },
		counter: dataplane.Dataplane.VIPCounterV6, setCounter: dataplane.CounterWriter.SetVIPCounterV6,
	}),
	// vip: dst_addr -> set_vip(vip_id, default_pool)
	bind(pipeline.TableVIP, table[uint32, model.VIP]{
		kind: dataplane.VIP, key: exact[uint32](0), value: vipValue,
		set: dataplane.Dataplane.SetVIP, del: dataplane.Dataplane.DeleteVIP,
		fill:    func(st *model.State, addr uint32, v model.VIP) { st.VIPs[addr] = v },
		counter: dataplane.Dataplane.VIPCounter, setCounter: dataplane.CounterWriter.SetVIPCounter,
	}),
}

// keyOnly adapts the Dataplane method writing an entry of a table whose
// entries are all key (the gray rules: the rule holds its action) to
// table.set and table.modify.
func keyOnly[K any](write func(dataplane.Dataplane, K) error) func(dataplane.Dataplane, K, struct{}) error {
	return func(dp dataplane.Dataplane, k K, _ struct{}) error { return write(dp, k) }
}

func vipValue(e *entry) model.VIP {
	return model.VIP{ID: uint16(e.param(0)), DefaultPool: uint16(e.param(1))}
}

func hashMaskValue(e *entry) pipeline.FlowKey {
	return pipeline.FlowKey{VNI: uint32(e.param(0)), Tenant: uint16(e.param(1)), Src: uint32(e.param(2)),
		Dst: uint32(e.param(3)), Proto: uint8(e.param(4)), SPort: uint16(e.param(5)), DPort: uint16(e.param(6))}
}

func backendValue(e *entry) model.Backend {
	b := model.Backend{Port: uint16(e.param(0))}
	if e.actionName() == pipeline.ActionToBackendV6 {
		b.IPv6, b.UnderlayIPv6 = true, addr128(e.params[3])
	} else {
		b.UnderlayIP = uint32(e.param(3))
	}
	smac, dmac := e.param(1), e.param(2)
	for i := 0; i < 6; i++ {
		b.SMAC[5-i], b.DMAC[5-i] = byte(smac>>(8*i)), byte(dmac>>(8*i))
	}
	return b
}

// grayRule decodes a gray_rules entry (pipeline.GrayRulesMatch).
func grayRule(e *entry) model.GrayRule {
	r := model.GrayRule{Priority: e.priority}
	var m, k pipeline.FlowOf[uint32]
	r.VIPID, r.VIPMask, m, k = grayRuleKey(e, func(i int) (v, m uint32) { ternaryInto(e, i, &v, &m); return v, m })
	r.Match, r.Mask = pipeline.FlowKey(m), pipeline.FlowKey(k)
	r.Action, r.Pool, r.Threshold = poolAction(e, pipeline.ActionSetPool, pipeline.ActionSplitPool)
	if e.actionName() == pipeline.ActionSetPoolMirror {
		r.Action, r.Pool = model.SetPoolMirror, uint16(e.param(0))
		r.MirrorPool, r.Sample, r.MirrorID = uint16(e.param(1)), uint16(e.param(2)), uint16(e.param(3))
	}
	return r
}

// grayRuleV6 decodes a gray_rules_v6 entry (pipeline.GrayRulesV6Match).
func grayRuleV6(e *entry) model.GrayRuleV6 {
	r := model.GrayRuleV6{Priority: e.priority}
	var m, k pipeline.FlowOf[[16]byte]
	r.VIPID, r.VIPMask, m, k = grayRuleKey(e, func(i int) (v, m [16]byte) { return ternary128(e, i) })
	r.Match, r.Mask = pipeline.FlowKey6(m), pipeline.FlowKey6(k)
	r.Action, r.Pool, r.Threshold = poolAction(e, pipeline.ActionSetPoolV6, pipeline.ActionSplitPoolV6)
	return r
}

// grayRuleKey decodes the key of a gray_rules or gray_rules_v6 entry: the
// same fields but for the addresses' width, which addr decodes (fields 3
// and 4).
func grayRuleKey[A any](e *entry, addr func(i int) (v, m A)) (vipID, vipMask uint16, match, mask pipeline.FlowOf[A]) {
	ternaryInto(e, 0, &vipID, &vipMask)
	ternaryInto(e, 1, &match.VNI, &mask.VNI)
	ternaryInto(e, 2, &match.Tenant, &mask.Tenant)
	match.Src, mask.Src = addr(3)
	match.Dst, mask.Dst = addr(4)
	ternaryInto(e, 5, &match.Proto, &mask.Proto)
	ternaryInto(e, 6, &match.SPort, &mask.SPort)
	ternaryInto(e, 7, &match.DPort, &mask.DPort)
	return vipID, vipMask, match, mask
}

// poolAction decodes the actions both gray rule tables have, each under its
// table's own names: set(pool) and split(pool_gray, threshold). Any other
// action is zeros.
func poolAction(e *entry, set, split string) (a model.RuleAction, pool, threshold uint16) {
	switch e.actionName() {
	case set:
		return model.SetPool, uint16(e.param(0)), 0
	case split:
		return model.SplitPool, uint16(e.param(0)), uint16(e.param(1))
	}
	return 0, 0, 0
}

// addr128 is a canonical byte string of a 128-bit field (shortest,
// big-endian; parseMatch and the parameter checks bound it to 16 bytes) as
// the 16 bytes of an IPv6 address.
func addr128(b []byte) [16]byte {
	var a [16]byte
	copy(a[16-min(len(b), 16):], b[max(len(b)-16, 0):])
	return a
}

// ternary128 returns 128-bit ternary field i as value and mask; a don't-care
// is all zeros.
func ternary128(e *entry, i int) (v, m [16]byte) {
	f := e.fields[i]
	if f.kind == p4configv1.MatchField_UNSPECIFIED {
		return v, m
	}
	return addr128(f.a), addr128(f.b)
}

// number is what a field of at most 64 bits decodes to. A wider field (an
// IPv6 address) is e.fields[i].a or e.params[i]: canonical, shortest big-endian.
type number interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

// exact decodes exact match field i.
func exact[T number](i int) func(*entry) T { return func(e *entry) T { return T(e.u(i)) } }

// param decodes action parameter i.
func param[T number](i int) func(*entry) T { return func(e *entry) T { return T(e.param(i)) } }

// noValue is the value of a table whose key says it all.
func noValue(*entry) struct{} { return struct{}{} }

// ternaryInto decodes ternary match field i into v and m (0/0: don't care).
func ternaryInto[T number](e *entry, i int, v, m *T) {
	a, b := e.ternary(i)
	*v, *m = T(a), T(b)
}

// binding translates the entries of one table to dataplane calls.
type binding struct {
	schema pipeline.Table
	kind   dataplane.Table
	// put installs e; exists says whether the key was already installed (MODIFY).
	put func(dp dataplane.Dataplane, e *entry, exists bool) error
	del func(dp dataplane.Dataplane, e *entry) error
	// fill adds e to a model.State (to compare with a dataplane's listing).
	fill func(st *model.State, e *entry)
	// counter and setCounter are nil for tables without a direct counter.
	counter    func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error)
	setCounter func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error
}

// table is a binding over a table's typed key K and value V.
type table[K, V any] struct {
	kind  dataplane.Table
	key   func(e *entry) K
	value func(e *entry) V
	// refuse, when set, says why an entry cannot be installed (nil: it can);
	// it is asked before key and value.
	refuse func(e *entry) error
	// set inserts or replaces; del deletes (a missing entry is not an error).
	set func(dp dataplane.Dataplane, k K, v V) error
	del func(dp dataplane.Dataplane, k K) error
	// modify, for a dataplane that tells inserting from modifying, replaces
	// an existing entry; set then inserts.
	modify func(dp dataplane.Dataplane, k K, v V) error
	fill   func(st *model.State, k K, v V)
	// counter and setCounter: the direct counter, for a table that has one.
	counter    func(dp dataplane.Dataplane, k K) (dataplane.Counter, error)
	setCounter func(cw dataplane.CounterWriter, k K, c dataplane.Counter) error
}

// bind makes the binding of the table named name out of tb. It panics when
// the pipeline has no such table: the bindings are a literal of this package.
func bind[K, V any](name string, tb table[K, V]) *binding {
	sch, ok := pipeline.TableSchema(name)
	if !ok {
		panic("server: bind: no table " + name + " in pipeline.Tables")
	}
	b := &binding{
		schema: sch,
		kind:   tb.kind,
		put: func(dp dataplane.Dataplane, e *entry, exists bool) error {
			if tb.refuse != nil {
				if err := tb.refuse(e); err != nil {
					return err
				}
			}
			k, v := tb.key(e), tb.value(e)
			if tb.modify == nil {
				return tb.set(dp, k, v)
			}
			if exists {
				err := tb.modify(dp, k, v)
				if !errors.Is(err, dataplane.ErrNotFound) {
					return err
				}
			}
			err := tb.set(dp, k, v)
			if errors.Is(err, dataplane.ErrExists) { // converge over a dataplane that has it
				return tb.modify(dp, k, v)
			}
			return err
		},
		del: func(dp dataplane.Dataplane, e *entry) error {
			if err := tb.del(dp, tb.key(e)); !errors.Is(err, dataplane.ErrNotFound) {
				return err
			}
			return nil
		},
		fill: func(st *model.State, e *entry) { tb.fill(st, tb.key(e), tb.value(e)) },
	}
	if tb.counter != nil {
		b.counter = func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error) { return tb.counter(dp, tb.key(e)) }
		b.setCounter = func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error {
			return tb.setCounter(cw, tb.key(e), c)
		}
	}
	return b
}

// tableInfo is a P4Info table with what the server derives from it.
type tableInfo struct {
	*p4info.Table
	actions    map[uint32]*p4info.Action // the table's actions by id
	paramIndex map[uint32]map[uint32]int // action id -> param id -> position
	fieldIndex map[uint32]int            // field id -> position
	bind       *binding
}

// schema is the pipeline the server serves: the P4Info index plus bindings.
type schema struct {
	info        *p4info.Info
	tables      map[uint32]*tableInfo
	order       []*tableInfo // by id
	dropReasons *p4info.Counter
	// The mirror's indexed counters (docs/pipeline.md §10); nil when the
	// P4Info has none.
	mirror, mirrorBackend *p4info.Counter
	// applyOrder is the order of bindings: (re)installs go in it, deletes in
	// reverse.
	applyOrder []*tableInfo
}

// matchTypes are the P4Info match types of the schema's match kinds.
var matchTypes = map[pipeline.MatchKind]p4configv1.MatchField_MatchType{
	pipeline.Exact: p4configv1.MatchField_EXACT, pipeline.Ternary: p4configv1.MatchField_TERNARY}

// checkTable checks that P4Info table t has sch's shape: its match fields (name,
// kind, width, order), its actions (bar NoAction) and their parameters, and its
// direct counter. The table's size is the P4Info's to say.
func checkTable(info *p4info.Info, t *p4info.Table, sch pipeline.Table) error {
	if len(t.Fields) != len(sch.Match) {
		return fmt.Errorf("table %s: %d match fields, want %v", t.Name, len(t.Fields), pipeline.Names(sch.Match...))
	}
	for i, want := range sch.Match {
		f := t.Fields[i]
		if f.Name != want.Name || f.MatchType != matchTypes[sch.Kind] || int(f.Bitwidth) != want.Bits {
			return fmt.Errorf("table %s: match field %d is %s (%s, bit<%d>), want %s (%s, bit<%d>)",
				t.Name, i+1, f.Name, f.MatchType, f.Bitwidth, want.Name, matchTypes[sch.Kind], want.Bits)
		}
	}
	listed := map[string]bool{}
	for _, ref := range t.Actions {
		if a, ok := info.ActionByID(ref.ID); ok && a.Name != pipeline.ActionNoAction {
			listed[a.Name] = true
		}
	}
	for _, want := range sch.Actions {
		a, err := info.Action(want.Name)
		if err != nil {
			return err
		}
		if !listed[a.Name] {
			return fmt.Errorf("table %s does not list action %s", t.Name, a.Name)
		}
		delete(listed, a.Name)
		if len(a.Params) != len(want.Params) {
			return fmt.Errorf("action %s: %d params, want %v", a.Name, len(a.Params), pipeline.Names(want.Params...))
		}
		for i, p := range want.Params {
			if a.Params[i].Name != p.Name || int(a.Params[i].Bitwidth) != p.Bits {
				return fmt.Errorf("action %s: param %d is %s (bit<%d>), want %s (bit<%d>)",
					a.Name, i+1, a.Params[i].Name, a.Params[i].Bitwidth, p.Name, p.Bits)
			}
		}
	}
	for name := range listed {
		return fmt.Errorf("table %s: action %s is not one the agent binds", t.Name, name)
	}
	dc := ""
	if t.DirectCounter != nil {
		dc = t.DirectCounter.Name
	}
	if dc != sch.DirectCounter {
		return fmt.Errorf("table %s: direct counter %q, want %q", t.Name, dc, sch.DirectCounter)
	}
	return nil
}

// newSchema indexes info and binds its tables, which must be exactly the
// bound ones, shaped as pipeline.Tables says.
func newSchema(info *p4info.Info) (*schema, error) {
	s := &schema{info: info, tables: map[uint32]*tableInfo{}}
	byName := map[string]*binding{}
	var errs []error
	for _, b := range bindings {
		byName[b.schema.Name] = b
		t, err := info.Table(b.schema.Name)
		if err == nil {
			err = checkTable(info, t, b.schema)
		}
		errs = append(errs, err)
	}
	c, err := info.Counter(pipeline.CounterDropReasons)
	if err == nil && c.Size != pipeline.NumReasons {
		err = fmt.Errorf("counter %s: size %d, want %d", c.Name, c.Size, pipeline.NumReasons)
	}
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPipeline, err)
	}
	s.dropReasons = c
	s.mirror, _ = info.Counter(pipeline.CounterMirror)
	s.mirrorBackend, _ = info.Counter(pipeline.CounterMirrorBackend)
	if n := len(info.Tables()); n != len(bindings) {
		return nil, fmt.Errorf("%w: %d tables, the agent binds %d", ErrPipeline, n, len(bindings))
	}

	for _, t := range info.Tables() {
		ti := &tableInfo{Table: t, actions: map[uint32]*p4info.Action{}, paramIndex: map[uint32]map[uint32]int{},
			fieldIndex: map[uint32]int{}, bind: byName[t.Name]}
		for i, f := range t.Fields {
			ti.fieldIndex[f.ID] = i
		}
		for _, ref := range t.Actions {
			a, _ := info.ActionByID(ref.ID)
			ti.actions[a.ID] = a
			ti.paramIndex[a.ID] = map[uint32]int{}
			for i, p := range a.Params {
				ti.paramIndex[a.ID][p.ID] = i
			}
		}
		s.tables[t.ID] = ti
		s.order = append(s.order, ti)
	}
	for _, b := range bindings {
		t, _ := info.Table(b.schema.Name)
		s.applyOrder = append(s.applyOrder, s.tables[t.ID])
	}
	return s, nil
}
