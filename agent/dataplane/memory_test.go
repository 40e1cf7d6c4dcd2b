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
