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
// P4Info name (docs/pipeline.md). Everything else in the server is generic over
// the P4Info.

// binding translates the entries of one table to dataplane calls.
type binding struct {
	kind dataplane.Table
	// put installs e; exists says whether the key was already installed (MODIFY).
	put func(dp dataplane.Dataplane, e *entry, exists bool) error
	del func(dp dataplane.Dataplane, e *entry) error
	// fill adds e to a model.State (to compare with a dataplane's listing).
	fill func(st *model.State, e *entry)
	// counter and setCounter are nil for tables without a direct counter.
	counter    func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error)
	setCounter func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error
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
	// applyOrder is the order in which tables are (re)installed so that nothing
	// points at what does not exist yet (make before break); deletes go in reverse.
	applyOrder []*tableInfo
}

// shape checks and resolves names against the P4Info.
type shape struct {
	info *p4info.Info
	err  error
}

func (s *shape) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: "+format, append([]any{ErrPipeline}, args...)...)
	}
}

func (s *shape) table(name string) *p4info.Table {
	t, err := s.info.Table(name)
	if err != nil {
		s.fail("%v", err)
		return &p4info.Table{Name: name}
	}
	return t
}

// fields checks that t's key is exactly these fields, in order, of this kind and
// at most 64 bits wide.
func (s *shape) fields(t *p4info.Table, kind p4configv1.MatchField_MatchType, names ...string) {
	if len(t.Fields) != len(names) {
		s.fail("table %s: %d match fields, want %v", t.Name, len(t.Fields), names)
		return
	}
	for i, n := range names {
		f := t.Fields[i]
		if f.Name != n || f.MatchType != kind || f.Bitwidth > 64 {
			s.fail("table %s: match field %d is %s (%s, bit<%d>), want %s (%s)", t.Name, i+1, f.Name, f.MatchType, f.Bitwidth, n, kind)
		}
	}
}

// action resolves an action of t and checks its parameter names, in order.
func (s *shape) action(t *p4info.Table, name string, params ...string) uint32 {
	a, err := s.info.Action(name)
	if err != nil {
		s.fail("%v", err)
		return 0
	}
	if _, ok := t.ActionRef(a.ID); !ok {
		s.fail("table %s does not list action %s", t.Name, name)
	}
	if len(a.Params) != len(params) {
		s.fail("action %s: %d params, want %v", name, len(a.Params), params)
		return a.ID
	}
	for i, p := range params {
		if a.Params[i].Name != p || a.Params[i].Bitwidth > 64 {
			s.fail("action %s: param %d is %s (bit<%d>), want %s", name, i+1, a.Params[i].Name, a.Params[i].Bitwidth, p)
		}
	}
	return a.ID
}

func (s *shape) directCounter(t *p4info.Table, name string) {
	if t.DirectCounter == nil || t.DirectCounter.Name != name {
		s.fail("table %s: direct counter %v, want %s", t.Name, t.DirectCounter, name)
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, dataplane.ErrNotFound) {
		return nil
	}
	return err
}

// newSchema indexes info and binds the eight graygw tables.
func newSchema(info *p4info.Info) (*schema, error) {
	s := &schema{info: info, tables: map[uint32]*tableInfo{}}
	sh := &shape{info: info}
	bindings := map[string]*binding{}

	// vip: dst_addr (exact 32) -> set_vip(vip_id, default_pool)
	{
		t := sh.table(pipeline.TableVIP)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchDstAddr.Name)
		sh.action(t, pipeline.ActionSetVIP, pipeline.ParamVIPID.Name, pipeline.ParamDefaultPool.Name)
		sh.directCounter(t, pipeline.DirectCounterVIP)
		vip := func(e *entry) model.VIP { return model.VIP{ID: uint16(e.param(0)), DefaultPool: uint16(e.param(1))} }
		bindings[t.Name] = &binding{
			kind: dataplane.VIP,
			put:  func(dp dataplane.Dataplane, e *entry, _ bool) error { return dp.SetVIP(uint32(e.u(0)), vip(e)) },
			del:  func(dp dataplane.Dataplane, e *entry) error { return ignoreNotFound(dp.DeleteVIP(uint32(e.u(0)))) },
			fill: func(st *model.State, e *entry) { st.VIPs[uint32(e.u(0))] = vip(e) },
			counter: func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error) {
				return dp.VIPCounter(uint32(e.u(0)))
			},
			setCounter: func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error {
				return cw.SetVIPCounter(uint32(e.u(0)), c)
			},
		}
	}
	// vni_tenant: vni (exact 24) -> set_tenant(tenant_id)
	{
		t := sh.table(pipeline.TableVNITenant)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchVNI.Name)
		sh.action(t, pipeline.ActionSetTenant, pipeline.ParamTenantID.Name)
		bindings[t.Name] = &binding{
			kind: dataplane.VNITenant,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetTenant(uint32(e.u(0)), uint16(e.param(0)))
			},
			del:  func(dp dataplane.Dataplane, e *entry) error { return ignoreNotFound(dp.DeleteTenant(uint32(e.u(0)))) },
			fill: func(st *model.State, e *entry) { st.Tenants[uint32(e.u(0))] = uint16(e.param(0)) },
		}
	}
	// gray_rules: 8 ternary fields + priority -> set_pool(pool_id) | split_pool(pool_gray, threshold)
	// | set_pool_mirror(pool_id, mirror_pool, sample, mirror_id)
	{
		t := sh.table(pipeline.TableGrayRules)
		sh.fields(t, p4configv1.MatchField_TERNARY, pipeline.Names(pipeline.GrayRulesMatch...)...)
		setPool := sh.action(t, pipeline.ActionSetPool, pipeline.ParamPoolID.Name)
		splitPool := sh.action(t, pipeline.ActionSplitPool, pipeline.ParamPoolGray.Name, pipeline.ParamThreshold.Name)
		setPoolMirror := sh.action(t, pipeline.ActionSetPoolMirror, pipeline.Names(pipeline.ParamPoolID,
			pipeline.ParamMirrorPool, pipeline.ParamSample, pipeline.ParamMirrorID)...)
		sh.directCounter(t, pipeline.DirectCounterGrayRules)
		rule := func(e *entry) model.GrayRule {
			var r model.GrayRule
			r.Priority = e.priority
			v, m := e.ternary(0)
			r.VIPID, r.VIPMask = uint16(v), uint16(m)
			v, m = e.ternary(1)
			r.Match.VNI, r.Mask.VNI = uint32(v), uint32(m)
			v, m = e.ternary(2)
			r.Match.Tenant, r.Mask.Tenant = uint16(v), uint16(m)
			v, m = e.ternary(3)
			r.Match.Src, r.Mask.Src = uint32(v), uint32(m)
			v, m = e.ternary(4)
			r.Match.Dst, r.Mask.Dst = uint32(v), uint32(m)
			v, m = e.ternary(5)
			r.Match.Proto, r.Mask.Proto = uint8(v), uint8(m)
			v, m = e.ternary(6)
			r.Match.SPort, r.Mask.SPort = uint16(v), uint16(m)
			v, m = e.ternary(7)
			r.Match.DPort, r.Mask.DPort = uint16(v), uint16(m)
			switch e.action {
			case setPool:
				r.Action, r.Pool = model.SetPool, uint16(e.param(0))
			case splitPool:
				r.Action, r.Pool, r.Threshold = model.SplitPool, uint16(e.param(0)), uint16(e.param(1))
			case setPoolMirror:
				r.Action, r.Pool = model.SetPoolMirror, uint16(e.param(0))
				r.MirrorPool, r.Sample, r.MirrorID = uint16(e.param(1)), uint16(e.param(2)), uint16(e.param(3))
			}
			return r
		}
		bindings[t.Name] = &binding{
			kind: dataplane.GrayRules,
			put: func(dp dataplane.Dataplane, e *entry, exists bool) error {
				r := rule(e)
				if exists {
					err := dp.ModifyRule(r)
					if !errors.Is(err, dataplane.ErrNotFound) {
						return err
					}
				}
				err := dp.InsertRule(r)
				if errors.Is(err, dataplane.ErrExists) { // converge over a dataplane that has it
					return dp.ModifyRule(r)
				}
				return err
			},
			del:  func(dp dataplane.Dataplane, e *entry) error { return ignoreNotFound(dp.DeleteRule(rule(e))) },
			fill: func(st *model.State, e *entry) { st.GrayRules = append(st.GrayRules, rule(e)) },
			counter: func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error) {
				return dp.RuleCounter(rule(e))
			},
			setCounter: func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error {
				return cw.SetRuleCounter(rule(e), c)
			},
		}
	}
	// pool_hash: pool_id (exact 16) -> set_hash_mask(7 masks)
	{
		t := sh.table(pipeline.TablePoolHash)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchPoolID.Name)
		sh.action(t, pipeline.ActionSetHashMask, pipeline.Names(pipeline.HashMaskParams...)...)
		mask := func(e *entry) pipeline.FlowKey {
			return pipeline.FlowKey{VNI: uint32(e.param(0)), Tenant: uint16(e.param(1)), Src: uint32(e.param(2)),
				Dst: uint32(e.param(3)), Proto: uint8(e.param(4)), SPort: uint16(e.param(5)), DPort: uint16(e.param(6))}
		}
		bindings[t.Name] = &binding{
			kind: dataplane.PoolHash,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetPoolHash(uint16(e.u(0)), mask(e))
			},
			del:  func(dp dataplane.Dataplane, e *entry) error { return ignoreNotFound(dp.DeletePoolHash(uint16(e.u(0)))) },
			fill: func(st *model.State, e *entry) { st.PoolHash[uint16(e.u(0))] = mask(e) },
		}
	}
	// backend_select: pool_id, bucket (exact 16 each) -> set_backend(backend_id)
	{
		t := sh.table(pipeline.TableBackendSelect)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchPoolID.Name, pipeline.MatchBucket.Name)
		sh.action(t, pipeline.ActionSetBackend, pipeline.ParamBackendID.Name)
		bindings[t.Name] = &binding{
			kind: dataplane.BackendSelect,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetBucket(uint16(e.u(0)), uint16(e.u(1)), uint16(e.param(0)))
			},
			del: func(dp dataplane.Dataplane, e *entry) error {
				return ignoreNotFound(dp.DeleteBucket(uint16(e.u(0)), uint16(e.u(1))))
			},
			fill: func(st *model.State, e *entry) {
				st.BackendSelect[model.SelectKey{Pool: uint16(e.u(0)), Bucket: uint16(e.u(1))}] = uint16(e.param(0))
			},
		}
	}
	// backend: backend_id (exact 16) -> to_backend(port, smac, dmac, underlay_ip)
	{
		t := sh.table(pipeline.TableBackend)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchBackendID.Name)
		sh.action(t, pipeline.ActionToBackend, pipeline.Names(pipeline.ParamPort, pipeline.ParamSMAC, pipeline.ParamDMAC, pipeline.ParamUnderlayIP)...)
		sh.directCounter(t, pipeline.DirectCounterBackend)
		backend := func(e *entry) model.Backend {
			b := model.Backend{Port: uint16(e.param(0)), UnderlayIP: uint32(e.param(3))}
			smac, dmac := e.param(1), e.param(2)
			for i := 0; i < 6; i++ {
				b.SMAC[5-i], b.DMAC[5-i] = byte(smac>>(8*i)), byte(dmac>>(8*i))
			}
			return b
		}
		bindings[t.Name] = &binding{
			kind: dataplane.Backend,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetBackendEntry(uint16(e.u(0)), backend(e))
			},
			del: func(dp dataplane.Dataplane, e *entry) error {
				return ignoreNotFound(dp.DeleteBackendEntry(uint16(e.u(0))))
			},
			fill: func(st *model.State, e *entry) { st.Backends[uint16(e.u(0))] = backend(e) },
			counter: func(dp dataplane.Dataplane, e *entry) (dataplane.Counter, error) {
				return dp.BackendCounter(uint16(e.u(0)))
			},
			setCounter: func(cw dataplane.CounterWriter, e *entry, c dataplane.Counter) error {
				return cw.SetBackendCounter(uint16(e.u(0)), c)
			},
		}
	}
	// vlan_accept: ingress_port (exact 9), vid (exact 12) -> accept_vlan()
	{
		t := sh.table(pipeline.TableVLANAccept)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchIngressPort.Name, pipeline.MatchVID.Name)
		sh.action(t, pipeline.ActionAcceptVLAN)
		key := func(e *entry) model.PortVID { return model.PortVID{Port: uint16(e.u(0)), VID: uint16(e.u(1))} }
		bindings[t.Name] = &binding{
			kind: dataplane.VLANAccept,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetVLANAccept(key(e).Port, key(e).VID)
			},
			del: func(dp dataplane.Dataplane, e *entry) error {
				return ignoreNotFound(dp.DeleteVLANAccept(key(e).Port, key(e).VID))
			},
			fill: func(st *model.State, e *entry) { st.VLANAccept[key(e)] = true },
		}
	}
	// port_vlan: egress_port (exact 9) -> set_port_vlan(vid)
	{
		t := sh.table(pipeline.TablePortVLAN)
		sh.fields(t, p4configv1.MatchField_EXACT, pipeline.MatchEgressPort.Name)
		sh.action(t, pipeline.ActionSetPortVLAN, pipeline.ParamVID.Name)
		bindings[t.Name] = &binding{
			kind: dataplane.PortVLAN,
			put: func(dp dataplane.Dataplane, e *entry, _ bool) error {
				return dp.SetPortVLAN(uint16(e.u(0)), uint16(e.param(0)))
			},
			del:  func(dp dataplane.Dataplane, e *entry) error { return ignoreNotFound(dp.DeletePortVLAN(uint16(e.u(0)))) },
			fill: func(st *model.State, e *entry) { st.PortVLAN[uint16(e.u(0))] = uint16(e.param(0)) },
		}
	}
	c, err := info.Counter(pipeline.CounterDropReasons)
	if err != nil {
		sh.fail("%v", err)
	} else if c.Size != pipeline.NumReasons {
		sh.fail("counter %s: size %d, want %d", c.Name, c.Size, pipeline.NumReasons)
	}
	s.dropReasons = c
	s.mirror, _ = info.Counter(pipeline.CounterMirror)
	s.mirrorBackend, _ = info.Counter(pipeline.CounterMirrorBackend)
	if sh.err != nil {
		return nil, sh.err
	}
	if n := len(info.Tables()); n != len(bindings) {
		return nil, fmt.Errorf("%w: %d tables, the agent binds %d", ErrPipeline, n, len(bindings))
	}

	for _, t := range info.Tables() {
		ti := &tableInfo{Table: t, actions: map[uint32]*p4info.Action{}, paramIndex: map[uint32]map[uint32]int{},
			fieldIndex: map[uint32]int{}, bind: bindings[t.Name]}
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
	// The port tables first: a VIP's tagged frames are served once their
	// port accepts them, and leave with their port's tag from the start.
	for _, name := range []string{pipeline.TablePortVLAN, pipeline.TableVLANAccept, pipeline.TableBackend,
		pipeline.TableBackendSelect, pipeline.TablePoolHash, pipeline.TableVNITenant, pipeline.TableGrayRules, pipeline.TableVIP} {
		t, _ := info.Table(name)
		s.applyOrder = append(s.applyOrder, s.tables[t.ID])
	}
	return s, nil
}
