package dataplane

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

const vip1 = 0x0aff0001 // testvectors.VIP1

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func plainFrame(dst netip.Addr, sport uint16) []byte {
	return testvectors.PlainTo(dst, testpkt.L4{Proto: testpkt.ProtoTCP, SPort: sport, DPort: 80})
}

func TestMemoryForwardsAndCounts(t *testing.T) {
	m := NewMemory(Limits{})
	mustNoErr(t, m.SetVIP(vip1, model.VIP{ID: 1, DefaultPool: 1}))
	mustNoErr(t, m.SetBackendEntry(7, model.Backend{Port: 2, UnderlayIP: 0x0a020007}))
	buckets := make([]uint16, pipeline.Buckets)
	for i := range buckets {
		buckets[i] = 7
	}
	mustNoErr(t, m.SetBuckets(1, 0, buckets))

	f := plainFrame(testvectors.VIP1, 1000)
	r := m.Process(f)
	if r.Verdict != model.Forward || r.Port != 2 || r.BackendID != 7 {
		t.Fatalf("Process = %+v, want forward to backend 7 on port 2", r)
	}
	r = m.Process(plainFrame(testvectors.NotAVIP, 1000))
	if r.Reason != pipeline.NotVIP {
		t.Fatalf("reason %v, want NOT_VIP", r.Reason)
	}
	if c, _ := m.VIPCounter(vip1); c != (Counter{Packets: 1, Bytes: uint64(len(f))}) {
		t.Errorf("vip counter %+v", c)
	}
	if c, _ := m.BackendCounter(7); c != (Counter{Packets: 1, Bytes: uint64(len(f))}) {
		t.Errorf("backend counter %+v", c)
	}
	d, _ := m.DropCounters()
	if d[pipeline.NotVIP].Packets != 1 || d[pipeline.None].Packets != 0 {
		t.Errorf("drop counters %+v", d)
	}

	// Modifying keeps the counter, re-inserting after a delete restarts it.
	mustNoErr(t, m.SetVIP(vip1, model.VIP{ID: 1, DefaultPool: 1}))
	if c, _ := m.VIPCounter(vip1); c.Packets != 1 {
		t.Errorf("vip counter after modify %+v", c)
	}
	mustNoErr(t, m.DeleteVIP(vip1))
	if _, err := m.VIPCounter(vip1); !errors.Is(err, ErrNotFound) {
		t.Errorf("VIPCounter(deleted) = %v", err)
	}
	mustNoErr(t, m.SetVIP(vip1, model.VIP{ID: 1, DefaultPool: 1}))
	if c, _ := m.VIPCounter(vip1); c.Packets != 0 {
		t.Errorf("vip counter after re-insert %+v", c)
	}
	if err := m.DeleteBucket(1, 5000); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteBucket(missing) = %v", err)
	}
}

func TestMemoryRules(t *testing.T) {
	m := NewMemory(Limits{MaxMasks: 2})
	r := model.GrayRule{Priority: 10, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: 0xffffff},
		Action: model.SetPool, Pool: 2}
	mustNoErr(t, m.InsertRule(r))
	if err := m.InsertRule(r); !errors.Is(err, ErrExists) {
		t.Errorf("second InsertRule = %v, want ErrExists", err)
	}
	// Same match, other priority: another rule.
	r2 := r
	r2.Priority = 11
	mustNoErr(t, m.InsertRule(r2))
	// Value bits outside the mask do not change identity.
	r3 := r
	r3.Match.Src = 0x01020304
	r3.Pool = 9
	mustNoErr(t, m.ModifyRule(r3))
	st := m.State()
	if len(st.GrayRules) != 2 || st.GrayRules[0].Pool != 9 || st.GrayRules[0].Match.Src != 0 {
		t.Errorf("rules after modify: %+v", st.GrayRules)
	}
	// A third mask exceeds MaxMasks; an existing mask does not.
	other := model.GrayRule{Priority: 1, VIPID: 1, VIPMask: 0xffff, Action: model.SetPool}
	mustNoErr(t, m.InsertRule(other))
	third := model.GrayRule{Priority: 1, Mask: pipeline.FlowKey{Src: 0xffffffff}, Action: model.SetPool}
	if err := m.InsertRule(third); !errors.Is(err, ErrFull) {
		t.Errorf("InsertRule(third mask) = %v, want ErrFull", err)
	}
	mustNoErr(t, m.DeleteRule(r))
	if err := m.DeleteRule(r); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteRule = %v", err)
	}
	if _, err := m.RuleCounter(r2); err != nil {
		t.Errorf("RuleCounter(r2) = %v", err)
	}
}

// TestMemoryLimits: XDPLimits as XDP has them: any pool id owns buckets, 64
// pools at once (ErrFull for the 65th, room again once one lets go of its last
// bucket), buckets < 4096 (ErrOutOfRange).
func TestMemoryLimits(t *testing.T) {
	m := NewMemory(XDPLimits())
	for i := range 64 {
		pool := uint16(i)
		if i%2 == 1 {
			pool |= 0x8000 // the controller's second pool version
		}
		mustNoErr(t, m.SetBucket(pool, uint16(i), 1))
	}
	mustNoErr(t, m.SetBucket(0x8001, pipeline.Buckets-1, 1)) // a pool with buckets: no new slot
	if err := m.SetBucket(64, 0, 1); !errors.Is(err, ErrFull) {
		t.Errorf("SetBucket(65th pool) = %v, want ErrFull", err)
	}
	if err := m.SetBuckets(0xffff, 0, []uint16{1, 2}); !errors.Is(err, ErrFull) {
		t.Errorf("SetBuckets(65th pool) = %v, want ErrFull", err)
	}
	mustNoErr(t, m.SetBuckets(0xffff, 0, nil)) // nothing to set takes no slot
	mustNoErr(t, m.DeleteBucket(0x8001, 1))
	if err := m.SetBucket(64, 0, 1); !errors.Is(err, ErrFull) {
		t.Errorf("SetBucket(65th pool) with pool 0x8001 still owning a bucket = %v, want ErrFull", err)
	}
	mustNoErr(t, m.DeleteBucket(0x8001, pipeline.Buckets-1)) // its last: the slot is free
	mustNoErr(t, m.SetBucket(64, 0, 1))

	if err := m.SetBucket(1, pipeline.Buckets, 1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetBucket(bucket 4096) = %v, want ErrOutOfRange", err)
	}
	if err := m.SetBuckets(0, pipeline.Buckets-1, []uint16{1, 2}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetBuckets(4095..4096) = %v, want ErrOutOfRange", err)
	}
	if err := m.DeleteBucket(0, pipeline.Buckets); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("DeleteBucket(bucket 4096) = %v, want ErrOutOfRange", err)
	}
	if err := m.SetTenant(1<<24, 1); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetTenant(2^24) = %v", err)
	}
	if _, ok := m.List(); ok != nil {
		t.Fatal(ok)
	}

	// Without limits: any bucket a 16-bit field holds, any number of pools.
	u := NewMemory(Limits{})
	for i := range 100 {
		mustNoErr(t, u.SetBucket(uint16(i), 0xffff, 1))
	}
	if err := u.SetBuckets(1, 0xffff, []uint16{1, 2}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("SetBuckets past bucket 65535 = %v, want ErrOutOfRange", err)
	}
}

// TestMemoryIPv6: vip_v6 and gray_rules_v6 entries and their counters, an
// IPv6 frame counted as XDP counts it, and the backend_counter of a
// BACKEND_FAMILY drop (the entry was hit).
func TestMemoryIPv6(t *testing.T) {
	m := NewMemory(Limits{MaxMasks6: 1})
	vip, vm := netip.MustParseAddr("2001:db8:ffff::1"), netip.MustParseAddr("2001:db8:a::5")
	mustNoErr(t, m.SetVIPV6(vip.As16(), model.VIP{ID: 2, DefaultPool: 1}))
	mustNoErr(t, m.SetBackendEntry(7, model.Backend{Port: 2, IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:2::7").As16()}))
	mustNoErr(t, m.SetBackendEntry(8, model.Backend{Port: 2, UnderlayIP: 0x0a020008}))
	buckets := make([]uint16, pipeline.Buckets)
	for i := range buckets {
		buckets[i] = 7
	}
	mustNoErr(t, m.SetBuckets(1, 0, buckets))
	for i := range buckets {
		buckets[i] = 8
	}
	mustNoErr(t, m.SetBuckets(2, 0, buckets))
	r := model.GrayRuleV6{Priority: 10, Match: pipeline.FlowKey6{Src: vm.As16()}, Action: model.SetPool, Pool: 1}
	for i := range r.Mask.Src {
		r.Mask.Src[i] = 0xff
	}
	mustNoErr(t, m.InsertRuleV6(r))
	if err := m.InsertRuleV6(r); !errors.Is(err, ErrExists) {
		t.Errorf("second InsertRuleV6 = %v, want ErrExists", err)
	}
	if err := m.InsertRuleV6(model.GrayRuleV6{Priority: 1, VIPMask: 0xffff, Action: model.SetPool}); !errors.Is(err, ErrFull) {
		t.Errorf("InsertRuleV6(a second mask) = %v, want ErrFull", err)
	}

	f := testpkt.Plain6(testpkt.Eth{}, testpkt.IP6{Src: vm, Dst: vip}, testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 1, DPort: 80})
	if res := m.Process(f); res.Verdict != model.Forward || res.BackendID != 7 {
		t.Fatalf("Process = %+v, want forward to backend 7", res)
	}
	one := Counter{Packets: 1, Bytes: uint64(len(f))}
	if c, err := m.VIPCounterV6(vip.As16()); c != one || err != nil {
		t.Errorf("vip_v6 counter %+v %v", c, err)
	}
	if c, err := m.RuleCounterV6(r); c != one || err != nil {
		t.Errorf("gray_rules_v6 counter %+v %v", c, err)
	}
	// The rule now sends the VM to an IPv4 backend: BACKEND_FAMILY, the
	// backend entry counted.
	r.Pool = 2
	mustNoErr(t, m.ModifyRuleV6(r))
	if res := m.Process(f); res.Reason != pipeline.BackendFamily {
		t.Fatalf("Process = %+v, want BACKEND_FAMILY", res)
	}
	if c, _ := m.BackendCounter(8); c != one {
		t.Errorf("backend 8 counter %+v, want the BACKEND_FAMILY frame", c)
	}
	if st := m.State(); len(st.VIPsV6) != 1 || len(st.GrayRulesV6) != 1 || st.GrayRulesV6[0].Pool != 2 {
		t.Errorf("State: %+v %+v", st.VIPsV6, st.GrayRulesV6)
	}
	mustNoErr(t, m.SetRuleCounterV6(r, Counter{Packets: 9}))
	if c, _ := m.RuleCounterV6(r); c.Packets != 9 {
		t.Errorf("counter after SetRuleCounterV6 %+v", c)
	}
	mustNoErr(t, m.DeleteRuleV6(r))
	mustNoErr(t, m.DeleteVIPV6(vip.As16()))
	if _, err := m.VIPCounterV6(vip.As16()); !errors.Is(err, ErrNotFound) {
		t.Errorf("VIPCounterV6(deleted) = %v", err)
	}
	if err := m.DeleteRuleV6(r); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteRuleV6 = %v", err)
	}
}
