package server_test

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/p4rtest"
)

// symmetryEntries has entries of every table, written canonically, with
// metadata on some, so reading them back must give exactly the same messages.
func symmetryEntries(b builder) map[string][]*p4v1.TableEntry {
	meta := func(te *p4v1.TableEntry, m string, cm uint64) *p4v1.TableEntry {
		te.Metadata, te.ControllerMetadata = []byte(m), cm
		return te
	}
	return map[string][]*p4v1.TableEntry{
		"GrayIngress.vip": {
			b.VIP(0x0aff0001, 1, 1),
			meta(b.VIP(0x0aff0002, 2, 1), "vip two", 7),
			b.VIP(0, 3, 0), // zero key and params: "\x00"
		},
		"GrayIngress.vni_tenant": {
			b.Entry("GrayIngress.vni_tenant", 0, []fm{exact("vni", 5001)}, "GrayIngress.set_tenant", p("tenant_id", 7)),
			b.Entry("GrayIngress.vni_tenant", 0, []fm{exact("vni", 0xffffff)}, "GrayIngress.set_tenant", p("tenant_id", 0xffff)),
		},
		"GrayIngress.gray_rules": {
			b.Rule(100, []fm{tern("vni", 5001, 0xffffff), tern("inner_src", 0x0a000005, 0xffffffff)}, 2),
			// Same match, other priority: another entry.
			b.Rule(101, []fm{tern("vni", 5001, 0xffffff), tern("inner_src", 0x0a000005, 0xffffffff)}, 1),
			meta(b.Entry("GrayIngress.gray_rules", 10, []fm{tern("tenant_id", 9, 0xffff)}, "GrayIngress.split_pool",
				p("pool_gray", 2), p("threshold", 32768)), "split", 0),
			b.Rule(70, []fm{tern("vip_id", 2, 0xffff), tern("inner_dst", 0xac100000, 0xffff0000)}, 2),
			b.Rule(1, []fm{tern("vip_id", 1, 1), tern("vni", 1, 1), tern("tenant_id", 1, 1), tern("inner_src", 1, 1),
				tern("inner_dst", 1, 1), tern("inner_proto", 6, 0xff), tern("inner_sport", 0x100, 0xff00), tern("inner_dport", 443, 0xffff)}, 3),
		},
		"GrayIngress.pool_hash": {
			b.Entry("GrayIngress.pool_hash", 0, []fm{exact("pool_id", 2)}, "GrayIngress.set_hash_mask",
				p("vni_mask", 0xffffff), p("tenant_mask", 0), p("src_mask", 0xffffffff), p("dst_mask", 0),
				p("proto_mask", 0), p("sport_mask", 0), p("dport_mask", 0)),
		},
		"GrayIngress.backend_select": {
			b.Bucket(1, 0, 11), b.Bucket(1, 4095, 12), b.Bucket(0xffff, 0xffff, 0),
		},
		"GrayIngress.backend": {
			b.Backend(11, 1, 0x0a02000b), b.Backend(0xffff, 511, 0xffffffff),
		},
	}
}

func TestReadWriteSymmetryEveryTable(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	tables := symmetryEntries(b)
	var all []*p4v1.Entity
	for _, es := range tables {
		var ups []*p4v1.Update
		for _, te := range es {
			ups = append(ups, ins(te))
			all = append(all, ent(te))
		}
		h.mustWrite(a, ups...)
	}
	// Everything.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), all)
	for name, es := range tables {
		tid := b.Table(name).ID
		// One table.
		var want []*p4v1.Entity
		for _, te := range es {
			want = append(want, ent(te))
		}
		p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid})), want)
		// One entry by its key (match + priority).
		for _, te := range es {
			q := &p4v1.TableEntry{TableId: tid, Match: te.Match, Priority: te.Priority}
			p4rtest.SameEntities(t, h.read(ent(q)), []*p4v1.Entity{ent(te)})
		}
	}
	// MODIFY replaces the whole value, and reads back as written.
	m := b.VIP(0x0aff0002, 2, 9)
	m.Metadata = []byte("changed")
	h.mustWrite(a, mod(m))
	got := h.read(ent(&p4v1.TableEntry{TableId: m.TableId, Match: m.Match}))
	p4rtest.SameEntities(t, got, []*p4v1.Entity{ent(m)})
	// MODIFY without an action keeps the action but takes the new metadata.
	keep := clone(m)
	keep.Action, keep.Metadata = nil, nil
	h.mustWrite(a, mod(keep))
	want := clone(m)
	want.Metadata = nil
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: m.TableId, Match: m.Match})), []*p4v1.Entity{ent(want)})
}

func TestReadFilters(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	r100 := b.Rule(100, []fm{tern("vni", 5001, 0xffffff)}, 2)
	r101 := b.Rule(101, []fm{tern("vni", 5001, 0xffffff)}, 1)
	split := b.Entry("GrayIngress.gray_rules", 100, []fm{tern("tenant_id", 9, 0xffff)}, "GrayIngress.split_pool", p("pool_gray", 2), p("threshold", 1))
	split.ControllerMetadata, split.Metadata = 5, []byte("m")
	h.mustWrite(a, ins(r100), ins(r101), ins(split), ins(b.VIP(1, 1, 1)))
	tid := r100.TableId

	// Match without priority: every priority of that match.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, Match: r100.Match})), []*p4v1.Entity{ent(r100), ent(r101)})
	// Priority alone.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, Priority: 100})), []*p4v1.Entity{ent(r100), ent(split)})
	// Action id.
	sp, _ := b.Info.Action("GrayIngress.split_pool")
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: sp.ID}}}})),
		[]*p4v1.Entity{ent(split)})
	// Metadata and controller metadata.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, Metadata: []byte("m")})), []*p4v1.Entity{ent(split)})
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, ControllerMetadata: 5})), []*p4v1.Entity{ent(split)})
	// A key that is not there: nothing, not an error.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, Match: r100.Match, Priority: 7})), nil)
	// The default entry: the const NoAction.
	na, _ := b.Info.Action("NoAction")
	def := &p4v1.TableEntry{TableId: tid, IsDefaultAction: true, Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: na.ID}}}}
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: tid, IsDefaultAction: true})), []*p4v1.Entity{ent(def)})
	// Several requests in one batch, answered in one stream.
	if n := len(h.read(ent(&p4v1.TableEntry{TableId: tid}), ent(&p4v1.TableEntry{TableId: b.Table("GrayIngress.vip").ID}))); n != 4 {
		t.Fatalf("batch read returned %d entities, want 4", n)
	}
	// A wildcard read of entity kinds the P4Info has none of: nothing.
	p4rtest.SameEntities(t, h.read(&p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{}}},
		&p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{}}}), nil)
}

func TestReadErrors(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	vip := b.VIP(1, 1, 1)
	h.mustWrite(a, ins(vip))
	bad := []struct {
		name string
		e    *p4v1.Entity
		code codes.Code
	}{
		{"unknown table", ent(&p4v1.TableEntry{TableId: 0x02000099}), codes.InvalidArgument},
		{"table 0 with a filter", ent(&p4v1.TableEntry{Priority: 3}), codes.InvalidArgument},
		{"bad match", ent(&p4v1.TableEntry{TableId: vip.TableId, Match: []*p4v1.FieldMatch{{FieldId: 1}}}), codes.InvalidArgument},
		{"no entity", &p4v1.Entity{}, codes.InvalidArgument},
		{"meter by id", &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{MeterId: 5}}}, codes.InvalidArgument},
	}
	for _, c := range bad {
		// A bad request among good ones: the good ones are answered, the status
		// is UNKNOWN with one p4.Error per request.
		got, err := h.readErr(ent(&p4v1.TableEntry{}), c.e)
		pes := p4Errors(err)
		if status.Code(err) != codes.Unknown || len(pes) != 2 || codes.Code(pes[0].GetCanonicalCode()) != codes.OK ||
			codes.Code(pes[1].GetCanonicalCode()) != c.code {
			t.Errorf("%s: status %v, details %v; want UNKNOWN with [OK, %v]", c.name, err, pes, c.code)
		}
		if len(got) != 1 {
			t.Errorf("%s: %d entities, want the good request's 1", c.name, len(got))
		}
	}
	st, err := h.c.Read(ctx(t), &p4v1.ReadRequest{DeviceId: 5, Entities: []*p4v1.Entity{ent(&p4v1.TableEntry{})}})
	if err == nil {
		_, err = st.Recv() // a server-streaming RPC's status arrives on Recv
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("read from device 5: %v, want NOT_FOUND", err)
	}
}

func TestReadLarge(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	const n = 5000
	var ups []*p4v1.Update
	for i := 0; i < n; i++ {
		ups = append(ups, ins(b.Bucket(uint64(i/4096), uint64(i%4096), uint64(i%7))))
	}
	h.mustWrite(a, ups...)
	h.wantEntries(t, n, "read in several ReadResponse messages")
}
