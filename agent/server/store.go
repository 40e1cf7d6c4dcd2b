package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/model"
)

// The view is the server's P4Runtime state: per table, key string -> value string
// (entry.go). It is what Read answers from, and what the journal records.

type view map[uint32]map[string]string

func newView(s *schema) view {
	v := view{}
	for id := range s.tables {
		v[id] = map[string]string{}
	}
	v[cloneSessions] = map[string]string{}
	return v
}

// Journal record kinds.
const (
	recPipeline = 'P' // pipeline config: kind byte (committed/saved) + ForwardingPipelineConfig
	recElection = 'E' // highest election id of a role: role, high, low
	recBatch    = 'B' // a write batch about to be applied: ops
	recFailed   = 'F' // the ops of the preceding batch that failed: indexes
	recClear    = 'C' // every entry removed (VERIFY_AND_COMMIT)
)

const (
	pipeCommitted = 1
	pipeSaved     = 2
)

// jop is a journaled change to the view: a put (value != nil) or a delete.
type jop struct {
	table uint32
	key   string
	value *string
}

func encodeBatch(ops []jop) []byte {
	b := []byte{recBatch}
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, o := range ops {
		if o.value != nil {
			b = append(b, 1)
		} else {
			b = append(b, 2)
		}
		b = binary.AppendUvarint(b, uint64(o.table))
		b = putBytes(b, []byte(o.key))
		if o.value != nil {
			b = putBytes(b, []byte(*o.value))
		}
	}
	return b
}

func decodeBatch(b []byte) ([]jop, error) {
	r := &reader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, errBadEncoding
	}
	ops := make([]jop, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		if len(r.b) == 0 {
			return nil, errBadEncoding
		}
		kind := r.b[0]
		r.b = r.b[1:]
		o := jop{table: uint32(r.uvarint()), key: string(r.bytes())}
		switch kind {
		case 1:
			v := string(r.bytes())
			o.value = &v
		case 2:
		default:
			return nil, errBadEncoding
		}
		ops = append(ops, o)
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errBadEncoding
	}
	return ops, nil
}

func encodeFailed(idx []int) []byte {
	b := binary.AppendUvarint([]byte{recFailed}, uint64(len(idx)))
	for _, i := range idx {
		b = binary.AppendUvarint(b, uint64(i))
	}
	return b
}

func encodeElection(role string, id uint128) []byte {
	b := putBytes([]byte{recElection}, []byte(role))
	b = binary.BigEndian.AppendUint64(b, id.hi)
	return binary.BigEndian.AppendUint64(b, id.lo)
}

func encodePipeline(kind byte, cfg *p4v1.ForwardingPipelineConfig) ([]byte, error) {
	pb, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: encode pipeline config: %w", err)
	}
	return append([]byte{recPipeline, kind}, pb...), nil
}

// replayer rebuilds the server state from journal records.
type replayer struct {
	s       *Server
	pending []jop // the last batch, until its failures are known
}

func (r *replayer) record(rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("server: journal: empty record: %w", errBadEncoding)
	}
	if rec[0] != recFailed {
		r.flush(nil)
	}
	body := rec[1:]
	switch rec[0] {
	case recBatch:
		ops, err := decodeBatch(body)
		if err != nil {
			return fmt.Errorf("server: journal batch: %w", err)
		}
		r.pending = ops
	case recFailed:
		rd := &reader{b: body}
		n := rd.uvarint()
		failed := map[int]bool{}
		for i := uint64(0); i < n && rd.err == nil; i++ {
			failed[int(rd.uvarint())] = true
		}
		if rd.err != nil {
			return fmt.Errorf("server: journal failures: %w", rd.err)
		}
		r.flush(failed)
	case recClear:
		r.s.view = newView(r.s.schema)
	case recElection:
		rd := &reader{b: body}
		role := string(rd.bytes())
		if rd.err != nil || len(rd.b) != 16 {
			return fmt.Errorf("server: journal election: %w", errBadEncoding)
		}
		id := uint128{binary.BigEndian.Uint64(rd.b), binary.BigEndian.Uint64(rd.b[8:])}
		r.s.roleState(role).highest = &id
	case recPipeline:
		if len(body) < 1 {
			return fmt.Errorf("server: journal pipeline: %w", errBadEncoding)
		}
		cfg := &p4v1.ForwardingPipelineConfig{}
		if err := proto.Unmarshal(body[1:], cfg); err != nil {
			return fmt.Errorf("server: journal pipeline: %w", err)
		}
		switch body[0] {
		case pipeCommitted:
			r.s.pipe.committed, r.s.pipe.saved = cfg, nil
		case pipeSaved:
			r.s.pipe.saved = cfg
		default:
			return fmt.Errorf("server: journal pipeline kind %d: %w", body[0], errBadEncoding)
		}
	default:
		return fmt.Errorf("server: journal record kind %q: %w", rec[0], errBadEncoding)
	}
	return nil
}

// flush applies the pending batch, skipping failed ops. A batch whose failures
// were never recorded (the agent died while applying it) is rolled forward: the
// startup convergence then brings the dataplane to it.
func (r *replayer) flush(failed map[int]bool) {
	for i, o := range r.pending {
		if failed[i] {
			continue
		}
		t, ok := r.s.view[o.table]
		if !ok {
			continue
		}
		if o.value != nil {
			t[o.key] = *o.value
		} else {
			delete(t, o.key)
		}
	}
	r.pending = nil
}

// snapshot emits the whole state as journal records.
func (s *Server) snapshot(emit func([]byte) error) error {
	if s.pipe.committed != nil {
		b, err := encodePipeline(pipeCommitted, s.pipe.committed)
		if err != nil {
			return err
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	if s.pipe.saved != nil {
		b, err := encodePipeline(pipeSaved, s.pipe.saved)
		if err != nil {
			return err
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	s.arbMu.Lock()
	var elections [][]byte
	for name, r := range s.roles {
		if r.highest != nil {
			elections = append(elections, encodeElection(name, *r.highest))
		}
	}
	s.arbMu.Unlock()
	for _, b := range elections {
		if err := emit(b); err != nil {
			return err
		}
	}
	const chunk = 4096
	var ops []jop
	ids := []uint32{cloneSessions}
	for _, t := range s.schema.order {
		ids = append(ids, t.ID)
	}
	for _, id := range ids {
		for k, v := range s.view[id] {
			ops = append(ops, jop{table: id, key: k, value: &v})
			if len(ops) == chunk {
				if err := emit(encodeBatch(ops)); err != nil {
					return err
				}
				ops = ops[:0]
			}
		}
	}
	if len(ops) > 0 {
		return emit(encodeBatch(ops))
	}
	return nil
}

// entries decodes every entry of table t (in no particular order).
func (s *Server) entries(t *tableInfo) ([]*entry, error) {
	out := make([]*entry, 0, len(s.view[t.ID]))
	for k, v := range s.view[t.ID] {
		e, err := decodeEntry(t, k, v)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// converge brings the dataplane to the view after a restart: every entry of the
// view is (re)installed, tables in make-before-break order (backends before the
// buckets naming them, ... VIPs last), and entries a Lister reports that the view
// does not have are removed in the reverse order. Re-installing an unchanged entry
// rewrites the same value, which packets cannot tell from no write at all, so this
// is hitless. An entry the dataplane refuses is dropped from the view (and the
// journal) and reported.
func (s *Server) converge() error {
	var errs []error
	var dropped []jop
	want := model.NewState()
	for _, t := range s.schema.applyOrder {
		es, err := s.entries(t)
		if err != nil {
			return err
		}
		var batched map[*entry]bool
		if t.bind.kind == dataplane.BackendSelect {
			batched = s.putBuckets(es)
		}
		for _, e := range es {
			if batched[e] {
				t.bind.fill(want, e)
				continue
			}
			if err := t.bind.put(s.dp, e, true); err != nil {
				errs = append(errs, fmt.Errorf("table %s: reinstall: %w", t.Name, err))
				dropped = append(dropped, jop{table: t.ID, key: e.key()})
				delete(s.view[t.ID], e.key())
				continue
			}
			t.bind.fill(want, e)
		}
	}
	if l, ok := s.dp.(dataplane.Lister); ok {
		have, err := l.List()
		if err != nil {
			return fmt.Errorf("server: converge: list dataplane: %w", err)
		}
		errs = append(errs, removeExtras(s.dp, have, want)...)
	}
	if len(dropped) > 0 && s.journal != nil {
		if err := s.journal.Append(encodeBatch(dropped)); err != nil {
			return fmt.Errorf("server: converge: %w", err)
		}
	}
	return errors.Join(errs...)
}

// putBuckets installs backend_select entries in runs of consecutive buckets of
// a pool, one SetBuckets call per run, and returns the entries so installed. A run
// the dataplane refuses is left to the caller, which retries it entry by entry.
func (s *Server) putBuckets(es []*entry) map[*entry]bool {
	type cell struct {
		pool, bucket, backend uint16
		e                     *entry
	}
	cells := make([]cell, len(es))
	for i, e := range es {
		cells[i] = cell{uint16(e.u(0)), uint16(e.u(1)), uint16(e.param(0)), e}
	}
	slices.SortFunc(cells, func(a, b cell) int {
		if a.pool != b.pool {
			return int(a.pool) - int(b.pool)
		}
		return int(a.bucket) - int(b.bucket)
	})
	done := make(map[*entry]bool, len(es))
	for i := 0; i < len(cells); {
		j := i + 1
		for j < len(cells) && cells[j].pool == cells[i].pool && cells[j].bucket == cells[j-1].bucket+1 {
			j++
		}
		ids := make([]uint16, 0, j-i)
		for _, c := range cells[i:j] {
			ids = append(ids, c.backend)
		}
		if err := s.dp.SetBuckets(cells[i].pool, cells[i].bucket, ids); err == nil {
			for _, c := range cells[i:j] {
				done[c.e] = true
			}
		}
		i = j
	}
	return done
}

// removeExtras deletes what have holds beyond want, VIPs first (reverse of the
// install order), for the tables have lists in full.
func removeExtras(dp dataplane.Dataplane, have dataplane.Listing, want *model.State) []error {
	var errs []error
	note := func(what string, err error) {
		if err != nil && !errors.Is(err, dataplane.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove stray %s: %w", what, err))
		}
	}
	h := have.State
	if have.Complete&dataplane.VIP != 0 {
		removeStray(h.VIPs, want.VIPs, dp.DeleteVIP, "vip", note)
	}
	if have.Complete&dataplane.VIPV6 != 0 {
		removeStray(h.VIPsV6, want.VIPsV6, dp.DeleteVIPV6, "vip_v6", note)
	}
	if have.Complete&dataplane.GrayRulesV6 != 0 {
		removeStrayRules(h.GrayRulesV6, want.GrayRulesV6, model.RuleIDV6, dp.DeleteRuleV6, "gray rule v6", note)
	}
	if have.Complete&dataplane.GrayRules != 0 {
		removeStrayRules(h.GrayRules, want.GrayRules, model.RuleID, dp.DeleteRule, "gray rule", note)
	}
	if have.Complete&dataplane.VNITenant != 0 {
		removeStray(h.Tenants, want.Tenants, dp.DeleteTenant, "vni_tenant", note)
	}
	if have.Complete&dataplane.PoolHash != 0 {
		removeStray(h.PoolHash, want.PoolHash, dp.DeletePoolHash, "pool_hash", note)
	}
	if have.Complete&dataplane.BackendSelect != 0 {
		removeStray(h.BackendSelect, want.BackendSelect, func(k model.SelectKey) error { return dp.DeleteBucket(k.Pool, k.Bucket) }, "backend_select", note)
	}
	if have.Complete&dataplane.Backend != 0 {
		removeStray(h.Backends, want.Backends, dp.DeleteBackendEntry, "backend", note)
	}
	if have.Complete&dataplane.VLANAccept != 0 {
		removeStray(h.VLANAccept, want.VLANAccept, func(k model.PortVID) error { return dp.DeleteVLANAccept(k.Port, k.VID) }, "vlan_accept", note)
	}
	if have.Complete&dataplane.PortVLAN != 0 {
		removeStray(h.PortVLAN, want.PortVLAN, dp.DeletePortVLAN, "port_vlan", note)
	}
	return errs
}

// removeStray deletes, with del, the entries of have that want has not,
// noting each failure as what.
func removeStray[K comparable, V any](have, want map[K]V, del func(K) error, what string, note func(string, error)) {
	for k := range have {
		if _, ok := want[k]; !ok {
			note(what, del(k))
		}
	}
}

// removeStrayRules is removeStray for gray rules, which are told apart by
// their identity (model.RuleID, RuleIDV6), not by their whole value.
func removeStrayRules[R comparable](have, want []R, id func(R) R, del func(R) error, what string, note func(string, error)) {
	ids := map[R]bool{}
	for _, r := range want {
		ids[id(r)] = true
	}
	for _, r := range have {
		if !ids[id(r)] {
			note(what, del(r))
		}
	}
}
