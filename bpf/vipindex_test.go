//go:build linux

package bpf

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/graygw/graygw/internal/vipindex"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// pinnedBasic opens pinned maps holding the basic state and runs the named
// vector once: the pin directory, the Dataplane (the test closes it), the
// model, the frame and where it went.
func pinnedBasic(t *testing.T, vector string) (string, *Dataplane, *model.State, []byte, string) {
	dir, ms := pinDir(t), basicModel(t)
	d := openPinned(t, dir)
	applyState(t, d, ms)
	frame, _ := vectorCase(t, vector)
	return dir, d, ms, frame, decide(t, d, frame)
}

// collidingVIPs returns n addresses whose vip_index window starts at home.
func collidingVIPs(home uint32, n int) []netip.Addr {
	var out []netip.Addr
	for _, a := range vipindex.WithHome(home, n) {
		out = append(out, addr4(a))
	}
	return out
}

// checkVIPIndex fails unless vip_index holds exactly the vip hash: each
// entry in one live cell of its window with its value, no other live cell.
func checkVIPIndex(t *testing.T, d *Dataplane) {
	t.Helper()
	var tab graygwVipIndex
	if _, err := d.vidx.mem.ReadAt(unsafe.Slice((*byte)(unsafe.Pointer(&tab)), unsafe.Sizeof(tab)), 0); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]graygwVipValue{}
	var k uint32
	var v graygwVipValue
	for it := d.objs.Vip.Iterate(); it.Next(&k, &v); {
		want[k] = v
	}
	seen := map[uint32]int{}
	for c, cell := range tab.Cells {
		if cell.Live == 0 {
			continue
		}
		w, ok := want[cell.Addr]
		switch {
		case !ok:
			t.Errorf("cell %d: %v live, not in vip", c, addr4(cell.Addr))
		case cell.V != w:
			t.Errorf("cell %d: %v holds %+v, vip has %+v", c, addr4(cell.Addr), cell.V, w)
		case (uint32(c)-vipHome(cell.Addr))%vipIndexSize >= vipProbe:
			t.Errorf("cell %d: %v outside its window (home %d)", c, addr4(cell.Addr), vipHome(cell.Addr))
		}
		seen[cell.Addr]++
	}
	for a := range want {
		if seen[a] != 1 {
			t.Errorf("%v: %d live cells, want 1", addr4(a), seen[a])
		}
	}
}

// freeWindow is the home of a window whose cells are all free.
func freeWindow(t *testing.T, d *Dataplane) uint32 {
	t.Helper()
next:
	for home := range uint32(vipIndexSize) {
		for i := range uint32(vipProbe) {
			if d.vidx.state[(home+i)%vipIndexSize] != slotFree {
				continue next
			}
		}
		return home
	}
	t.Fatal("no free window")
	return 0
}

// moveVIPCell puts addr's cell (value and all) at its window's offset off,
// as a test's way to check where packets look.
func moveVIPCell(t *testing.T, d *Dataplane, addr netip.Addr, off uint32) {
	t.Helper()
	k, _ := ip4(addr)
	x := &d.vidx
	old := x.at[k]
	c := (vipHome(k) + off) % vipIndexSize
	if c == old {
		return
	}
	for _, w := range []struct {
		off int64
		v   uint32
	}{{vipValueOff, x.wordAt(t, old, vipValueOff)}, {vipSlotOff, x.wordAt(t, old, vipSlotOff)}, {vipAddrOff, k}, {vipLiveOff, 1}} {
		check(t, x.word(c, w.off, w.v))
	}
	check(t, x.word(old, vipLiveOff, 0))
	x.at[k], x.state[c], x.state[old] = c, slotUsed, slotQuarantine
}

func (x *vipIndex) wordAt(t *testing.T, c uint32, off int64) uint32 {
	var b [4]byte
	if _, err := x.mem.ReadAt(b[:], int64(c)*vipCellLen+off); err != nil {
		t.Fatal(err)
	}
	return *(*uint32)(unsafe.Pointer(&b))
}

// TestVIPIndexWindow: packets find a VIP in any cell of its window and in
// no cell past it (Go's vipHome is the program's).
func TestVIPIndexWindow(t *testing.T) {
	d := openTest(t)
	applyState(t, d, basicModel(t))
	frame, _ := vectorCase(t, "plain_tcp")
	want := decide(t, d, frame)
	vip := netip.AddrFrom4([4]byte(frame[30:34]))
	for off := range uint32(vipProbe) {
		moveVIPCell(t, d, vip, off)
		if got := decide(t, d, frame); got != want {
			t.Fatalf("VIP at offset %d of its window: %s, want %s", off, got, want)
		}
	}
	moveVIPCell(t, d, vip, vipProbe)
	if got := decide(t, d, frame); got != pipeline.NotVIP.String() {
		t.Fatalf("VIP past its window: %s, want NOT_VIP", got)
	}
}

// TestVIPIndexTracksVIPs: through 1024 VIPs set, modified, deleted and set
// again, vip_index holds exactly vip; a window of eight taken refuses a
// ninth address with ErrFull and leaves no trace of it; a freed cell is
// taken again after a grace period; a reopen keeps it all.
func TestVIPIndexTracksVIPs(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	defer func() { d.Close() }()
	rng := rand.New(rand.NewPCG(16, 15))
	addrs := map[netip.Addr]VIP{}
	for len(addrs) < pipeline.VIPTableSize-vipProbe-1 {
		a := addr4(rng.Uint32() | 1)
		addrs[a] = VIP{ID: uint16(rng.Uint32()), DefaultPool: uint16(rng.Uint32())}
	}
	for a, v := range addrs {
		check(t, d.SetVIP(a, v))
	}
	checkVIPIndex(t, d)
	i := 0
	for a, v := range addrs {
		switch i % 3 {
		case 0:
			v.DefaultPool++
			addrs[a] = v
			check(t, d.SetVIP(a, v))
		case 1:
			check(t, d.DeleteVIP(a))
			delete(addrs, a)
		}
		i++
	}
	checkVIPIndex(t, d)

	home := freeWindow(t, d)
	col := collidingVIPs(home, vipProbe+1)
	for _, a := range col[:vipProbe] {
		check(t, d.SetVIP(a, VIP{ID: 1, DefaultPool: 2}))
	}
	err := d.SetVIP(col[vipProbe], VIP{ID: 1, DefaultPool: 2})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("a ninth address in a window of eight: %v, want ErrFull", err)
	}
	// The controller's model refuses what the agent refused (and not before).
	var ks []uint32
	for _, a := range col {
		k, _ := ip4(a)
		ks = append(ks, k)
	}
	if n, n8 := len(vipindex.Crowded(ks)), len(vipindex.Crowded(ks[:vipProbe])); n <= vipProbe || n8 > vipProbe {
		t.Fatalf("vipindex.Crowded: %d of the nine crowd a window, %d of the eight; want more than %d, then at most", n, n8, vipProbe)
	}
	if vips, _ := d.VIPs(); vips[col[vipProbe]] != (VIP{}) {
		t.Fatalf("the refused VIP is in vip: %+v", vips[col[vipProbe]])
	}
	if _, err := d.VIPCounter(col[vipProbe]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused VIP has a counter: %v", err)
	}
	check(t, d.DeleteVIP(col[0]))
	check(t, d.SetVIP(col[vipProbe], VIP{ID: 3, DefaultPool: 4})) // the freed cell, after a grace period
	checkVIPIndex(t, d)
	d.Close()

	d = reopen(t, dir)
	checkVIPIndex(t, d)
	vips, err := d.VIPs()
	check(t, err)
	if len(vips) != len(addrs)+vipProbe {
		t.Fatalf("%d VIPs after a reopen, want %d", len(vips), len(addrs)+vipProbe)
	}
}

// TestVIPIndexRebuildRepairs: a cell left live for a deleted VIP, a cell
// with a stale value and a VIP whose cell was hidden (a loader killed
// between two writes) are repaired by the next Open; packets decide as the
// model.
func TestVIPIndexRebuildRepairs(t *testing.T) {
	dir, d, ms, frame, want := pinnedBasic(t, "plain_tcp")
	vip := netip.AddrFrom4([4]byte(frame[30:34]))
	k, _ := ip4(vip)
	stray := collidingVIPs(vipHome(k), 1)[0]
	check(t, d.SetVIP(stray, VIP{ID: 9, DefaultPool: 9}))
	x := &d.vidx
	ks, _ := ip4(stray)
	check(t, d.objs.Vip.Delete(ks))
	check(t, x.word(x.at[k], vipValueOff, idPoolWord(graygwVipValue{VipId: 77, DefaultPool: 77})))
	for ka, c := range x.at {
		if ka != k && ka != ks {
			check(t, x.word(c, vipLiveOff, 0))
		}
	}
	d.Close()

	d = reopen(t, dir)
	checkVIPIndex(t, d)
	if got := decide(t, d, frame); got != want {
		t.Fatalf("after the repair: %s, want %s", got, want)
	}
	vectorsAgree(t, d, ms, func(name string, ret uint32, want model.Result) {
		t.Errorf("%s: XDP %s, model %v", name, verdictName(ret), want)
	})
}

// TestVIPUpdatesAreAtomicForPackets: a packet runs in a loop while its VIP
// changes default pool, is deleted and set again, and another VIP (pool
// without buckets) takes and leaves a cell of the same window. Every packet
// goes to one of its VIP's two pools or is not a VIP: never the other VIP's.
func TestVIPUpdatesAreAtomicForPackets(t *testing.T) {
	d := openTest(t)
	applyState(t, d, basicModel(t))
	frame, _ := vectorCase(t, "plain_tcp")
	vip := netip.AddrFrom4([4]byte(frame[30:34]))
	vips, err := d.VIPs()
	check(t, err)
	base := vips[vip]
	gray := base
	gray.DefaultPool = 2
	toBase := decide(t, d, frame)
	check(t, d.SetVIP(vip, gray))
	toGray := decide(t, d, frame)
	if toBase == toGray {
		t.Fatalf("pools %d and 2 both send the frame %s", base.DefaultPool, toBase)
	}
	k, _ := ip4(vip)
	other := collidingVIPs(vipHome(k), 1)[0]
	allowed := map[string]bool{toBase: true, toGray: true, pipeline.NotVIP.String(): true}

	var stop atomic.Bool
	done := make(chan error)
	go func() {
		var err error
		for n := 0; !stop.Load() && err == nil; n++ {
			if n%64 != 63 { // modifies in place, now and then a delete and a new cell
				err = errors.Join(d.SetVIP(vip, base), d.SetVIP(vip, gray))
				continue
			}
			err = errors.Join(d.DeleteVIP(vip), d.SetVIP(other, VIP{ID: 99, DefaultPool: 999}),
				d.SetVIP(vip, base), d.DeleteVIP(other))
		}
		done <- err
	}()
	seen := map[string]int{}
	for n := 0; n < 20000 || (n < 200000 && (seen[toBase] == 0 || seen[toGray] == 0)); n++ {
		got := decide(t, d, frame)
		seen[got]++
		if !allowed[got] {
			stop.Store(true)
			<-done
			t.Fatalf("a packet to %v: %s (seen %v)", vip, got, seen)
		}
	}
	stop.Store(true)
	check(t, <-done)
	t.Logf("outcomes: %v", seen)
	if seen[toBase] == 0 || seen[toGray] == 0 {
		t.Errorf("the packets never saw one of the two pools: %v", seen)
	}
	checkVIPIndex(t, d)
}

// TestMigratesABI14Pins: ABI 15 added vip_index. An agent upgraded over an
// ABI 14 pin set gets it filled from vip: the same frames decide as before.
func TestMigratesABI14Pins(t *testing.T) { migratesDerived(t, 14, "vip_index", checkVIPIndex) }

// TestMigratesABI15Pins: ABI 16 added select_cells. An agent upgraded over an
// ABI 15 pin set gets it filled from backend_select and backend_ver: the same
// frames decide as before.
func TestMigratesABI15Pins(t *testing.T) { migratesDerived(t, 15, "select_cells", selectCellsAgree) }

// migratesDerived upgrades an ABI abi pin set, which lacks the derived map
// name, and checks that Open filled it (agree) and every vector decides as
// the model says.
func migratesDerived(t *testing.T, abi uint32, name string, agree func(*testing.T, *Dataplane)) {
	dir, d, ms, frame, first := pinnedBasic(t, "overlay_vm_cutover")
	asOlderABI(t, d, dir, abi)
	if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ABI %d set has a %s pin: %v", abi, name, err)
	}
	d.Close()

	d2 := reopen(t, dir)
	if got := decide(t, d2, frame); got != first {
		t.Fatalf("after the migration: %s, want %s", got, first)
	}
	agree(t, d2)
	vectorsAgree(t, d2, ms, func(name string, ret uint32, want model.Result) {
		t.Errorf("%s: XDP %s, model %v", name, verdictName(ret), want)
	})
	wantMigrated(t, d2)
}
