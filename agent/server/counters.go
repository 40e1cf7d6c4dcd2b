package server

import (
	"errors"
	"math"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/pipeline"
)

// Counters (spec §9.3). drop_reasons, mirror_counter and mirror_backend_counter
// are the indexed counters (the mirror's read only, on a dataplane that
// implements dataplane.MirrorCounters); vip, gray_rules and backend have direct
// counters. Both are read from the dataplane at read time
// (data-plane volatile, so outside read-write symmetry). Writes set a value and
// need a dataplane.CounterWriter; the XDP dataplane has none, so there they are
// UNIMPLEMENTED.

// counterValue checks a CounterData written for table t.
func (s *Server) counterValue(t *tableInfo, cd *p4v1.CounterData) (*dataplane.Counter, *uerr) {
	if t.DirectCounter == nil {
		return nil, errf(codes.InvalidArgument, "table %s has no direct counter: counter_data must be unset", t.Name)
	}
	if cd.GetPacketCount() < 0 || cd.GetByteCount() < 0 {
		return nil, errf(codes.InvalidArgument, "counter values must not be negative")
	}
	return &dataplane.Counter{Packets: uint64(cd.GetPacketCount()), Bytes: uint64(cd.GetByteCount())}, nil
}

func counterData(c dataplane.Counter) *p4v1.CounterData {
	clamp := func(v uint64) int64 { return int64(min(v, math.MaxInt64)) }
	return &p4v1.CounterData{PacketCount: clamp(c.Packets), ByteCount: clamp(c.Bytes)}
}

// counterByID resolves an indexed counter id.
func (s *Server) counterByID(id uint32) (*p4info.Counter, *uerr) {
	c, ok := s.schema.info.CounterByID(id)
	if !ok {
		return nil, errf(codes.InvalidArgument, "counter_id %#x is not an indexed counter of the P4Info", id)
	}
	if c.ID != s.schema.dropReasons.ID && !s.isMirrorCounter(c) {
		return nil, errf(codes.Unimplemented, "counter %s is not bound to the dataplane", c.Name)
	}
	return c, nil
}

// isMirrorCounter reports whether c is a mirror counter this dataplane reads.
func (s *Server) isMirrorCounter(c *p4info.Counter) bool {
	if _, ok := s.dp.(dataplane.MirrorCounters); !ok {
		return false
	}
	return (s.schema.mirror != nil && c.ID == s.schema.mirror.ID) ||
		(s.schema.mirrorBackend != nil && c.ID == s.schema.mirrorBackend.ID)
}

// mirrorCell reads one cell of a mirror counter; a backend that does not
// exist reads 0, as its P4 cell would.
func (s *Server) mirrorCell(c *p4info.Counter, i int) (dataplane.Counter, error) {
	mc := s.dp.(dataplane.MirrorCounters)
	if c.ID == s.schema.mirror.ID {
		return mc.MirrorCounter(uint16(i))
	}
	v, err := mc.MirrorBackendCounter(uint16(i))
	if errors.Is(err, dataplane.ErrNotFound) {
		return dataplane.Counter{}, nil
	}
	return v, err
}

// cellRange resolves CounterEntry.index: unset = every cell; negative is
// INVALID_ARGUMENT and past the size OUT_OF_RANGE (spec §9.3.2).
func cellRange(c *p4info.Counter, idx *p4v1.Index) (int, int, *uerr) {
	if idx == nil {
		return 0, int(c.Size), nil
	}
	i := idx.GetIndex()
	switch {
	case i < 0:
		return 0, 0, errf(codes.InvalidArgument, "counter %s: index %d is negative", c.Name, i)
	case i >= c.Size:
		return 0, 0, errf(codes.OutOfRange, "counter %s: index %d past its size %d", c.Name, i, c.Size)
	}
	return int(i), int(i) + 1, nil
}

// prepareCounterEntry validates a CounterEntry write: MODIFY only.
func (s *Server) prepareCounterEntry(typ p4v1.Update_Type, ce *p4v1.CounterEntry) (*op, *uerr) {
	if typ != p4v1.Update_MODIFY {
		return nil, errf(codes.InvalidArgument, "CounterEntry: only MODIFY applies, not %s", typ)
	}
	if ce.GetCounterId() == 0 {
		return nil, errf(codes.InvalidArgument, "CounterEntry: counter_id 0: a write must name a counter")
	}
	c, e := s.counterByID(ce.GetCounterId())
	if e != nil {
		return nil, e
	}
	if c.ID != s.schema.dropReasons.ID {
		return nil, errf(codes.Unimplemented, "counter %s cannot be written, only read", c.Name)
	}
	from, to, e := cellRange(c, ce.GetIndex())
	if e != nil {
		return nil, e
	}
	o := &op{kind: typ, cells: true, from: from, to: to}
	if d := ce.GetData(); d != nil {
		if d.GetPacketCount() < 0 || d.GetByteCount() < 0 {
			return nil, errf(codes.InvalidArgument, "counter values must not be negative")
		}
		if s.cw == nil {
			return nil, errf(codes.Unimplemented, "counter %s: this dataplane cannot set counters", c.Name)
		}
		o.ctr = &dataplane.Counter{Packets: uint64(d.GetPacketCount()), Bytes: uint64(d.GetByteCount())}
	}
	return o, nil
}

func (s *Server) applyCells(o *op) *uerr {
	if o.ctr == nil {
		return nil // data unset: the value is not modified
	}
	for i := o.from; i < o.to; i++ {
		if err := s.cw.SetDropCounter(pipeline.Reason(i), *o.ctr); err != nil {
			return dpErr("counter drop_reasons", err)
		}
	}
	return nil
}

// prepareDirectCounterEntry validates a DirectCounterEntry write: MODIFY only,
// naming an existing entry (spec §9.3.1).
func (s *Server) prepareDirectCounterEntry(ov *overlay, typ p4v1.Update_Type, dce *p4v1.DirectCounterEntry) (*op, *uerr) {
	if typ != p4v1.Update_MODIFY {
		return nil, errf(codes.InvalidArgument, "DirectCounterEntry: only MODIFY applies, not %s", typ)
	}
	if dce.GetTableEntry() == nil {
		return nil, errf(codes.InvalidArgument, "DirectCounterEntry: table_entry must name the entry")
	}
	t, e := s.tableByID(dce.GetTableEntry().GetTableId())
	if e != nil {
		return nil, e
	}
	if t.DirectCounter == nil {
		return nil, errf(codes.InvalidArgument, "table %s has no direct counter", t.Name)
	}
	ent, e := parseMatch(t, dce.GetTableEntry())
	if e != nil {
		return nil, e
	}
	key := ent.key()
	if _, ok := ov.get(t.ID, key); !ok {
		return nil, errf(codes.NotFound, "table %s: no such entry", t.Name)
	}
	o := &op{kind: typ, t: t, e: ent, key: key, counterOnly: true}
	if d := dce.GetData(); d != nil {
		c, e := s.counterValue(t, d)
		if e != nil {
			return nil, e
		}
		if s.cw == nil {
			return nil, errf(codes.Unimplemented, "table %s: this dataplane cannot set counters", t.Name)
		}
		o.ctr = c
	}
	return o, nil
}

func (s *Server) setDirectCounter(o *op) *uerr {
	if o.ctr == nil {
		return nil
	}
	if err := o.t.bind.setCounter(s.cw, o.e, *o.ctr); err != nil {
		return dpErr("table "+o.t.Name+": counter", err)
	}
	return nil
}

// readCounterEntry answers a CounterEntry read; callers hold viewMu.
func (s *Server) readCounterEntry(ce *p4v1.CounterEntry, out *[]*p4v1.Entity) *uerr {
	var cs []*p4info.Counter
	if ce.GetCounterId() == 0 {
		if ce.GetIndex() != nil {
			return errf(codes.InvalidArgument, "CounterEntry: an index needs a counter_id")
		}
		cs = s.schema.info.Counters()
	} else {
		c, e := s.counterByID(ce.GetCounterId())
		if e != nil {
			return e
		}
		cs = []*p4info.Counter{c}
	}
	for _, c := range cs {
		if s.isMirrorCounter(c) {
			from, to, e := cellRange(c, ce.GetIndex())
			if e != nil {
				return e
			}
			for i := from; i < to; i++ {
				v, err := s.mirrorCell(c, i)
				if err != nil {
					return dpErr("counter "+c.Name, err)
				}
				*out = append(*out, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
					CounterId: c.ID, Index: &p4v1.Index{Index: int64(i)}, Data: counterData(v)}}})
			}
			continue
		}
		if c.ID != s.schema.dropReasons.ID {
			continue
		}
		from, to, e := cellRange(c, ce.GetIndex())
		if e != nil {
			return e
		}
		vals, err := s.dp.DropCounters()
		if err != nil {
			return dpErr("counter "+c.Name, err)
		}
		for i := from; i < to; i++ {
			*out = append(*out, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
				CounterId: c.ID, Index: &p4v1.Index{Index: int64(i)}, Data: counterData(vals[i])}}})
		}
	}
	return nil
}

// readDirectCounterEntry answers a DirectCounterEntry read: one entry when the
// match is given, else every entry of the table (or of every table with a direct
// counter when table_id is 0). Callers hold viewMu.
func (s *Server) readDirectCounterEntry(dce *p4v1.DirectCounterEntry, out *[]*p4v1.Entity) *uerr {
	te := dce.GetTableEntry()
	var tables []*tableInfo
	if te.GetTableId() == 0 {
		if len(te.GetMatch()) != 0 {
			return errf(codes.InvalidArgument, "DirectCounterEntry: a match needs a table_id")
		}
		for _, t := range s.schema.order {
			if t.DirectCounter != nil {
				tables = append(tables, t)
			}
		}
	} else {
		t, ok := s.schema.tables[te.GetTableId()]
		if !ok {
			return errf(codes.InvalidArgument, "table_id %#x is not a table of the P4Info", te.GetTableId())
		}
		if t.DirectCounter == nil {
			return errf(codes.InvalidArgument, "table %s has no direct counter", t.Name)
		}
		tables = []*tableInfo{t}
	}
	emit := func(e *entry) *uerr {
		c, err := e.t.bind.counter(s.dp, e)
		if err != nil {
			return dpErr("table "+e.t.Name+": counter", err)
		}
		*out = append(*out, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{
			TableEntry: &p4v1.TableEntry{TableId: e.t.ID, Match: e.matchProto(), Priority: e.priority},
			Data:       counterData(c)}}})
		return nil
	}
	if len(te.GetMatch()) != 0 {
		t := tables[0]
		ent, e := parseMatch(t, te)
		if e != nil {
			return e
		}
		if _, ok := s.view[t.ID][ent.key()]; !ok {
			return errf(codes.NotFound, "table %s: no such entry", t.Name)
		}
		return emit(ent)
	}
	for _, t := range tables {
		for k, v := range s.view[t.ID] {
			ent, err := decodeEntry(t, k, v)
			if err != nil {
				return errf(codes.Internal, "table %s: stored entry: %v", t.Name, err)
			}
			if e := emit(ent); e != nil {
				return e
			}
		}
	}
	return nil
}
