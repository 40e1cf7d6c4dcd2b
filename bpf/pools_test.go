//go:build linux

package bpf

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// renumberPools returns a copy of s with its pool ids mapped by m (VIP default
// pools, rule pools, pool_hash and backend_select).
func renumberPools(s *model.State, m map[uint16]uint16) *model.State {
	id := func(p uint16) uint16 {
		if q, ok := m[p]; ok {
			return q
		}
		return p
	}
	out := model.NewState()
	for a, v := range s.VIPs {
		v.DefaultPool = id(v.DefaultPool)
		out.VIPs[a] = v
	}
	for k, v := range s.Tenants {
		out.Tenants[k] = v
	}
	for _, r := range s.GrayRules {
		r.Pool = id(r.Pool)
		out.GrayRules = append(out.GrayRules, r)
	}
	for p, h := range s.PoolHash {
		out.PoolHash[id(p)] = h
	}
	for k, b := range s.BackendSelect {
		out.BackendSelect[model.SelectKey{Pool: id(k.Pool), Bucket: k.Bucket}] = b
	}
	for k, b := range s.Backends {
		out.Backends[k] = b
	}
	return out
}

// agreeOnVectors runs every test vector through d and the model over ms:
// verdict and output bytes must agree.
func agreeOnVectors(t *testing.T, d *Dataplane, ms *model.State, what string) {
	t.Helper()
	forwarded := vectorsAgree(t, d, ms, func(name string, ret uint32, want model.Result) {
		t.Errorf("%s: %s: %s, want %s %s (pool %d)", what, name, verdictName(ret), want.Verdict, want.Reason, want.Pool)
	})
	if forwarded == 0 {
		t.Fatalf("%s: no vector forwarded", what)
	}
}

// TestAnyPoolID: the test vectors' state with its pools renumbered to ids the
// controller uses for pool versions (B and B+32768) and to the last id: the
// program agrees with the model on every vector, and read-back lists them.
func TestAnyPoolID(t *testing.T) {
	d := openTest(t)
	ms := renumberPools(basicModel(t), map[uint16]uint16{testvectors.PoolBase: 32769, testvectors.PoolGray: 65535, 5: 40000})
	applyState(t, d, ms)
	agreeOnVectors(t, d, ms, "pools 32769, 40000 and 65535")
	if got := d.Pools(); !slices.Equal(got, []uint16{32769, 40000, 65535}) {
		t.Fatalf("Pools() = %v", got)
	}
	ids, ok, err := d.Buckets(32769)
	if err != nil {
		t.Fatal(err)
	}
	for b := range pipeline.Buckets {
		want, has := ms.BackendSelect[model.SelectKey{Pool: 32769, Bucket: uint16(b)}]
		if ok[b] != has || (has && ids[b] != want) {
			t.Fatalf("Buckets(32769)[%d] = %d %v, want %d %v", b, ids[b], ok[b], want, has)
		}
	}
	if _, ok, err := d.Buckets(testvectors.PoolBase); err != nil || slices.Contains(ok, true) {
		t.Fatalf("Buckets(%d) of a pool without buckets: %v", testvectors.PoolBase, err)
	}
}

// TestPoolSlots: 64 pools own buckets at once, any ids; a 65th is ErrFull
// until one pool loses its last bucket; a reused slot starts empty; a pool
// whose slot exists but whose cell is empty drops NO_BACKEND.
func TestPoolSlots(t *testing.T) {
	d := openTest(t)
	ms := basicModel(t)
	applyState(t, d, ms)
	frame, _ := vectorCase(t, "overlay_default_pool") // no rule: VIP1's default pool decides
	res := model.Process(ms, frame)
	bucket, be := res.Bucket, res.BackendID
	to := decide(t, d, frame)
	if !strings.HasPrefix(to, "to ") {
		t.Fatalf("vector: %s", to)
	}
	via := func(pool uint16) string {
		t.Helper()
		if err := d.SetVIP(testvectors.VIP1, VIP{ID: 1, DefaultPool: pool}); err != nil {
			t.Fatal(err)
		}
		return decide(t, d, frame)
	}
	all := make([]uint16, pipeline.Buckets)
	for i := range all {
		all[i] = be
	}
	// Fill the slots the state leaves, with ids across the range.
	var pools []uint16
	for i := range uint16(MaxPools - len(d.Pools())) {
		p := 100 + i*1000
		pools = append(pools, p)
		if err := d.SetBuckets(p, 0, all); err != nil {
			t.Fatalf("pool %d (%d owning buckets): %v", p, len(d.Pools()), err)
		}
	}
	if n := len(d.Pools()); n != MaxPools {
		t.Fatalf("%d pools own buckets, want %d", n, MaxPools)
	}
	if last := pools[len(pools)-1]; via(last) != to {
		t.Fatalf("pool %d: %s, want %s", last, via(last), to)
	}
	if err := d.SetBucket(65000, 0, be); !errors.Is(err, ErrFull) {
		t.Fatalf("a 65th pool: %v, want ErrFull", err)
	}
	if got := via(65000); got != "NO_BACKEND" {
		t.Fatalf("pool refused: %s, want NO_BACKEND", got)
	}
	// More buckets for a pool that has a slot are fine.
	if err := d.SetBucket(testvectors.PoolBase, 7, be); err != nil {
		t.Fatal(err)
	}

	// ClearPool frees a slot: the 65th pool takes it, with only its own cell.
	if err := d.ClearPool(pools[0]); err != nil {
		t.Fatal(err)
	}
	if got := via(pools[0]); got != "NO_BACKEND" {
		t.Fatalf("cleared pool: %s, want NO_BACKEND", got)
	}
	if err := d.SetBucket(65000, bucket^1, be); err != nil {
		t.Fatalf("a 65th pool after ClearPool: %v", err)
	}
	if got := via(65000); got != "NO_BACKEND" {
		t.Fatalf("pool 65000 without the packet's bucket: %s, want NO_BACKEND (a cell of the slot's last owner?)", got)
	}
	if err := d.SetBucket(65000, bucket, be); err != nil {
		t.Fatal(err)
	}
	if got := via(65000); got != to {
		t.Fatalf("pool 65000: %s, want %s", got, to)
	}

	// Empty cell of a pool with a slot: NO_BACKEND; deleting it again: ErrNotFound.
	if err := d.DeleteBucket(pools[1], bucket); err != nil {
		t.Fatal(err)
	}
	if got := via(pools[1]); got != "NO_BACKEND" {
		t.Fatalf("deleted bucket: %s, want NO_BACKEND", got)
	}
	if err := d.DeleteBucket(pools[1], bucket); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting an empty cell: %v, want ErrNotFound", err)
	}
	if err := d.DeleteBucket(70, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a bucket of a pool without buckets: %v, want ErrNotFound", err)
	}
	if err := d.DeleteBucket(70, pipeline.Buckets); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bucket %d: %v, want ErrInvalid", pipeline.Buckets, err)
	}

	// The last DeleteBucket of a pool frees its slot too.
	if err := d.SetBucket(65001, 0, be); !errors.Is(err, ErrFull) {
		t.Fatalf("full again: %v, want ErrFull", err)
	}
	if err := d.DeleteBucket(65000, bucket^1); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteBucket(65000, bucket); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.Pools(), 65000) {
		t.Fatal("pool 65000 still listed after its last bucket")
	}
	if err := d.SetBucket(65001, bucket, be); err != nil {
		t.Fatalf("after the last DeleteBucket: %v", err)
	}
	if got := via(65001); got != to {
		t.Fatalf("pool 65001: %s, want %s", got, to)
	}
	if err := d.ClearPool(70); err != nil {
		t.Fatalf("ClearPool of a pool without buckets: %v", err)
	}
}

// TestPoolSlotsRebuild kills a loader between the steps of a slot operation
// (by writing the maps as it would have left them) and reopens: Open keeps
// every published pool deciding as before and repairs the rest.
func TestPoolSlotsRebuild(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	ms := renumberPools(basicModel(t), map[uint16]uint16{testvectors.PoolBase: 32769})
	applyState(t, d, ms)
	frame, _ := vectorCase(t, "overlay_default_pool")
	res := model.Process(ms, frame)
	to := decide(t, d, frame)
	via := func(d *Dataplane, pool uint16) string {
		t.Helper()
		if err := d.SetVIP(testvectors.VIP1, VIP{ID: 1, DefaultPool: pool}); err != nil {
			t.Fatal(err)
		}
		return decide(t, d, frame)
	}
	base := d.sel.of[32769]
	free := uint32(MaxPools - 1)
	full := make([]uint32, pipeline.Buckets)
	for i := range full {
		full[i] = selectValid | uint32(res.BackendID)
	}
	keys := func(slot uint32) []uint32 {
		k := make([]uint32, pipeline.Buckets)
		for i := range k {
			k[i] = cellIndex(slot, i)
		}
		return k
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A slot written but never published (killed before pool_slot).
	_, err := d.objs.BackendSelect.BatchUpdate(keys(free), full, nil)
	must(err)
	// Pool 40000 published on 32769's slot (two pools on one slot).
	must(d.objs.PoolSlot.Update(uint32(40000), base+1, ebpf.UpdateAny))
	// Published on an empty slot, and on a slot that does not exist.
	must(d.objs.PoolSlot.Update(uint32(40001), uint32(free), ebpf.UpdateAny)) // slot free-1: empty
	must(d.objs.PoolSlot.Update(uint32(40002), uint32(MaxPools+5), ebpf.UpdateAny))
	if got := via(d, 40000); got != to {
		t.Fatalf("before the restart, pool 40000 on 32769's slot: %s, want %s", got, to)
	}
	d.Close()

	d = reopen(t, dir)
	if got := d.Pools(); !slices.Equal(got, []uint16{testvectors.PoolGray, 5, 32769, 40000}) {
		t.Fatalf("Pools() after the restart = %v, want [2 5 32769 40000]", got)
	}
	if d.sel.of[40000] == base {
		t.Fatal("pools 32769 and 40000 still share a slot")
	}
	for _, p := range []uint16{32769, 40000} {
		if got := via(d, p); got != to {
			t.Fatalf("pool %d after the restart: %s, want %s", p, got, to)
		}
	}
	for _, p := range []uint16{40001, 40002} {
		var v uint32
		must(d.objs.PoolSlot.Lookup(uint32(p), &v))
		if v != 0 {
			t.Fatalf("pool %d still published (%d)", p, v)
		}
	}
	cells, err := readArray(d.objs.BackendSelect, MaxPools*pipeline.Buckets)
	must(err)
	for s := range uint32(MaxPools) {
		if d.sel.state[s] == slotUsed {
			continue
		}
		for b := range pipeline.Buckets {
			if cells[cellIndex(s, b)] != 0 {
				t.Fatalf("slot %d owned by no pool has cell %d set", s, b)
			}
		}
	}
	// The copy is independent: clearing 40000 leaves 32769 whole.
	must(d.ClearPool(40000))
	if got := via(d, 40000); got != "NO_BACKEND" {
		t.Fatalf("pool 40000 cleared: %s, want NO_BACKEND", got)
	}
	for a, v := range ms.VIPs {
		must(d.SetVIP(addr4(a), VIP{ID: v.ID, DefaultPool: v.DefaultPool}))
	}
	agreeOnVectors(t, d, ms, "after the repair")
	// 3 pools own buckets (2, 5, 32769): 61 more fit (reusing the quarantined
	// slots), not 62.
	for i := range uint16(MaxPools - 3) {
		must(d.SetBucket(1000+i, 0, 1))
	}
	if err := d.SetBucket(2000, 0, 1); !errors.Is(err, ErrFull) {
		t.Fatalf("65th pool after the restart: %v, want ErrFull", err)
	}
}

// TestSlotReuseIsAtomicForPackets: one slot left; pools P and Q take turns
// on it (P: every bucket to backend A; Q: every bucket to backend B) while a
// packet of pool P runs in a loop. It must go to A or drop NO_BACKEND, never
// reach B through a slot that changed owner under it.
func TestSlotReuseIsAtomicForPackets(t *testing.T) {
	d := openTest(t)
	ms := renumberPools(basicModel(t), map[uint16]uint16{testvectors.PoolBase: 32769})
	applyState(t, d, ms)
	aimPorts(t, d, portsOf(ms), -1)
	frame, _ := vectorCase(t, "overlay_default_pool")
	res := model.Process(ms, frame)
	const poolP, poolQ = 32769, 1
	beA := res.BackendID
	var beB uint16
	for id := range ms.Backends {
		if id != beA && ms.Backends[id].UnderlayIP != ms.Backends[beA].UnderlayIP {
			beB = id
		}
	}
	for i := range uint16(MaxPools - len(d.Pools())) { // then P gives back its slot: one left
		if err := d.SetBucket(3000+i, 0, beA); err != nil {
			t.Fatal(err)
		}
	}
	fill := func(id uint16) []uint16 {
		ids := make([]uint16, pipeline.Buckets)
		for i := range ids {
			ids[i] = id
		}
		return ids
	}
	a, b := fill(beA), fill(beB)
	wantA := res.Frame
	if err := d.ClearPool(poolP); err != nil {
		t.Fatal(err)
	}

	w := startWriter(func(int) error {
		// Each pool keeps the slot a moment: without the pause P held it
		// for microseconds between grace periods of milliseconds, and on a
		// busy machine no packet would see it.
		hold := func(err error) error { time.Sleep(200 * time.Microsecond); return err }
		for _, step := range []func() error{
			func() error { return hold(d.SetBuckets(poolP, 0, a)) },
			func() error { return d.ClearPool(poolP) },
			func() error { return hold(d.SetBuckets(poolQ, 0, b)) },
			func() error { return d.ClearPool(poolQ) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	seen := map[string]int{}
	before, err := d.DropCounters()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		ret, out := run(t, d.Program(), frame)
		switch {
		case ret == xdpRedirect && string(out) == string(wantA):
			seen["A"]++
		case ret == xdpDrop:
			seen["drop"]++
		default:
			w.stop()
			t.Fatalf("packet %d: verdict %s, output %x: neither backend %d nor NO_BACKEND", n, verdictName(ret), out, beA)
		}
	}
	cycles := w.finish(t)
	after, err := d.DropCounters()
	if err != nil {
		t.Fatal(err)
	}
	for r := range pipeline.NumReasons {
		want := uint64(0)
		if pipeline.Reason(r) == pipeline.NoBackend {
			want = uint64(seen["drop"])
		}
		if got := after[r].Packets - before[r].Packets; got != want {
			t.Errorf("drop_reasons[%s] += %d, want %d", pipeline.Reason(r), got, want)
		}
	}
	t.Logf("%d packets (%v), %d writer cycles (each hands the slot over twice)", n, seen, cycles)
	if seen["A"] == 0 || seen["drop"] == 0 || cycles < 2 {
		t.Fatalf("the writer did not interleave with the packets: %v, %d cycles", seen, cycles)
	}
}
