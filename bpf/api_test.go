//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// vectorCase returns the input frame and expectation of a named vector.
func vectorCase(t *testing.T, name string) ([]byte, testvectors.Expect) {
	t.Helper()
	f, _ := testvectors.Committed()
	for _, c := range f.Cases {
		if c.Name == name {
			b, err := c.Frame()
			if err != nil {
				t.Fatal(err)
			}
			return b, c.Expect
		}
	}
	t.Fatalf("no vector %s", name)
	return nil, testvectors.Expect{}
}

// poolOf runs frame and returns the backend it went to, or the drop reason.
func decide(t *testing.T, d *Dataplane, frame []byte) string {
	t.Helper()
	before, _ := d.DropCounters()
	ret, out := run(t, d.Program(), frame)
	after, _ := d.DropCounters()
	if ret == xdpTX || ret == xdpRedirect {
		return fmt.Sprintf("to %d.%d.%d.%d", out[30], out[31], out[32], out[33])
	}
	for r := range pipeline.NumReasons {
		if after[r].Packets != before[r].Packets {
			return pipeline.Reason(r).String()
		}
	}
	return verdictName(ret)
}

func TestRuleShadowingAndPromotion(t *testing.T) {
	d := openTest(t)
	applyState(t, d, basicModel(t))
	frame, e := vectorCase(t, "overlay_vm_cutover") // vni 5001 src 10.0.0.5 -> gray
	gray := decide(t, d, frame)
	if e.Pool != testvectors.PoolGray || !strings.HasPrefix(gray, "to 10.3.") {
		t.Fatalf("vector sends to %s (pool %d), want the gray pool", gray, e.Pool)
	}
	vmRule := basicModel(t).GrayRules[0] // priority 100, vni+src -> gray
	// A lower-priority rule with the same mask and value is shadowed...
	low := vmRule
	low.Priority, low.Pool = 40, testvectors.PoolBase
	if err := d.InsertRule(low); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d, frame); got != gray {
		t.Fatalf("after a shadowed insert: %s, want %s", got, gray)
	}
	if err := d.InsertRule(low); !errors.Is(err, ErrExists) {
		t.Fatalf("second insert of the same rule: %v, want ErrExists", err)
	}
	// ...and promoted when the better one goes.
	if err := d.DeleteRule(vmRule); err != nil {
		t.Fatal(err)
	}
	base := decide(t, d, frame)
	if !strings.HasPrefix(base, "to 10.2.") {
		t.Fatalf("after deleting the best rule: %s, want the base pool", base)
	}
	c, err := d.RuleCounter(low)
	if err != nil || c.Packets != 1 || c.Bytes != uint64(len(frame)) {
		t.Fatalf("promoted rule counter %+v %v, want 1 packet", c, err)
	}
	// Modify changes the action in place.
	low.Pool = testvectors.PoolGray
	if err := d.ModifyRule(low); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d, frame); got != gray {
		t.Fatalf("after modify: %s, want %s", got, gray)
	}
	if err := d.DeleteRule(low); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteRule(low); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if got := decide(t, d, frame); got != base {
		t.Fatalf("with no vm rule: %s, want %s", got, base)
	}
	if n := len(d.Rules()); n != len(basicModel(t).GrayRules)-1 {
		t.Fatalf("%d rules left, want %d", n, len(basicModel(t).GrayRules)-1)
	}
}

func TestRuleValidationAndMaskBound(t *testing.T) {
	d := openTest(t)
	r := model.GrayRule{Priority: 0, Action: SetPool}
	if err := d.InsertRule(r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("priority 0: %v, want ErrInvalid", err)
	}
	for i := range MaxMasks + 1 {
		r := model.GrayRule{Priority: int32(i + 1), Mask: pipeline.FlowKey{Src: ^uint32(0) << (31 - i%32), DPort: uint16(i / 32)}, Action: SetPool}
		err := d.InsertRule(r)
		if i < MaxMasks && err != nil {
			t.Fatalf("mask %d: %v", i, err)
		}
		if i == MaxMasks && !errors.Is(err, ErrFull) {
			t.Fatalf("mask %d: %v, want ErrFull", i, err)
		}
	}
	if d.MaskCount() != MaxMasks {
		t.Fatalf("%d masks, want %d", d.MaskCount(), MaxMasks)
	}
	// More rules on a mask in use are fine.
	r = model.GrayRule{Priority: 999, Match: pipeline.FlowKey{Src: 1 << 31}, Mask: pipeline.FlowKey{Src: 1 << 31}, Action: SetPool}
	if err := d.InsertRule(r); err != nil {
		t.Fatalf("rule on a mask in use: %v", err)
	}
	if err := d.SetBucket(70, pipeline.Buckets, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bucket %d: %v, want ErrInvalid", pipeline.Buckets, err)
	}
	if err := d.SetBuckets(70, pipeline.Buckets-1, []uint16{1, 2}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("buckets past the end: %v, want ErrInvalid", err)
	}
}

func TestPortDown(t *testing.T) {
	d := openTest(t)
	applyState(t, d, basicModel(t))
	frame, e := vectorCase(t, "overlay_default_pool")
	if err := d.DeletePort(e.Port); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d, frame); got != "PORT_DOWN" {
		t.Fatalf("port %d down: %s, want PORT_DOWN", e.Port, got)
	}
	if err := d.SetPort(e.Port, loIfindex); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d.Program(), frame); ret != xdpTX {
		t.Fatalf("port back on the ingress: %s, want TX", verdictName(ret))
	}
}

// TestPinnedRestart reopens pinned maps: tables, shadowed rules and counters
// survive, and the new process keeps deciding as the old one did.
func TestPinnedRestart(t *testing.T) {
	dir, d, ms := basicPinned(t)
	shadow := ms.GrayRules[0]
	shadow.Priority, shadow.Pool = 40, testvectors.PoolBase
	if err := d.InsertRule(shadow); err != nil {
		t.Fatal(err)
	}
	frame, _ := vectorCase(t, "overlay_vm_cutover")
	first := decide(t, d, frame)
	d2 := restart(t, d, dir)
	if got := decide(t, d2, frame); got != first {
		t.Fatalf("after reopen: %s, want %s", got, first)
	}
	if c, err := d2.VIPCounter(testvectors.VIP1); err != nil || c.Packets != 2 {
		t.Fatalf("vip counter after reopen %+v %v, want 2 packets", c, err)
	}
	if got, want := d2.Pools(), []uint16{testvectors.PoolBase, testvectors.PoolGray, 5}; !slices.Equal(got, want) {
		t.Fatalf("pools with buckets after reopen: %v, want %v", got, want)
	}
	if n := len(d2.Rules()); n != len(ms.GrayRules)+1 {
		t.Fatalf("%d rules after reopen, want %d", n, len(ms.GrayRules)+1)
	}
	// The shadowed rule was remembered: deleting the best promotes it.
	if err := d2.DeleteRule(ms.GrayRules[0]); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d2, frame); !strings.HasPrefix(got, "to 10.2.") {
		t.Fatalf("after deleting the best rule: %s, want the base pool", got)
	}
	// New entries take free counter cells, not used ones.
	if err := d2.SetVIP(netip.MustParseAddr("10.255.0.9"), VIP{ID: 9, DefaultPool: 1}); err != nil {
		t.Fatal(err)
	}
	if c, _ := d2.VIPCounter(testvectors.VIP1); c.Packets != 3 {
		t.Fatalf("vip 1 counter %d after adding a vip, want 3", c.Packets)
	}
}

func TestIncompatiblePin(t *testing.T) {
	dir := pinDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A vip map from "another version", with a wider value.
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "vip", Type: ebpf.Hash, KeySize: 4, ValueSize: 16,
		MaxEntries: pipeline.VIPTableSize, Flags: 1 /* BPF_F_NO_PREALLOC */})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(filepath.Join(dir, "vip")); err != nil {
		t.Fatal(err)
	}
	old.Close()
	_, err = Open(Options{PinDir: dir})
	if !errors.Is(err, ErrIncompatiblePin) || !strings.Contains(err.Error(), "vip: ValueSize: 16 changed to 8") ||
		!strings.Contains(err.Error(), "--repin") {
		t.Fatalf("Open over an incompatible pin: %v, want ErrIncompatiblePin naming vip's value size and --repin", err)
	}
	// asABI repins dir as a program of ABI abi would have left it: stamped
	// abi, without the map gone returns (when gone is not nil).
	asABI := func(abi uint32, gone func(*Dataplane) *ebpf.Map) {
		t.Helper()
		d, err := Open(Options{PinDir: dir, Repin: true})
		if err != nil {
			t.Fatalf("Open with Repin: %v", err)
		}
		defer d.Close()
		stampABI(t, d, abi)
		if gone != nil {
			if err := gone(d).Unpin(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Same sizes, other ABI stamp: refused too.
	asABI(ABI+1, nil)
	if _, err := Open(Options{PinDir: dir}); !errors.Is(err, ErrIncompatiblePin) || !strings.Contains(err.Error(), "ABI") {
		t.Fatalf("Open over another ABI: %v, want ErrIncompatiblePin naming the ABI", err)
	}
	// Pins of the ABI 1 program: no pool_slot, backend_select indexed by
	// pool id (same sizes). Both differences are listed.
	asABI(1, func(d *Dataplane) *ebpf.Map { return d.objs.PoolSlot })
	_, err = Open(Options{PinDir: dir})
	if !errors.Is(err, ErrIncompatiblePin) || !strings.Contains(err.Error(), fmt.Sprintf("ABI 1, this program has ABI %d", ABI)) ||
		!strings.Contains(err.Error(), "pool_slot: not pinned") {
		t.Fatalf("Open over ABI 1 pins: %v, want ErrIncompatiblePin naming the ABI and pool_slot", err)
	}
	t.Logf("over ABI 1 pins: %v", err)
	if _, err := os.Stat(filepath.Join(dir, "pool_slot")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused Open pinned pool_slot: %v", err)
	}
	// Pins of the ABI 2 program: no tss_filter.
	asABI(2, func(d *Dataplane) *ebpf.Map { return d.objs.TssFilter })
	_, err = Open(Options{PinDir: dir})
	if !errors.Is(err, ErrIncompatiblePin) || !strings.Contains(err.Error(), fmt.Sprintf("ABI 2, this program has ABI %d", ABI)) ||
		!strings.Contains(err.Error(), "tss_filter: not pinned") || !strings.Contains(err.Error(), "--repin") {
		t.Fatalf("Open over ABI 2 pins: %v, want ErrIncompatiblePin naming the ABI, tss_filter and --repin", err)
	}
	t.Logf("over ABI 2 pins: %v", err)
	d, err := Open(Options{PinDir: dir, Repin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Unpin(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if ents, err := os.ReadDir(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Unpin left pins behind: %v %v", ents, err)
	}
}

// migrationStart is basicPinned, and the verdict (first) on it of the vector
// overlay_vm_cutover (frame): where the migration tests start.
func migrationStart(t *testing.T) (dir string, d *Dataplane, ms *model.State, frame []byte, first string) {
	t.Helper()
	dir, d, ms = basicPinned(t)
	frame, _ = vectorCase(t, "overlay_vm_cutover")
	return dir, d, ms, frame, decide(t, d, frame)
}

// stampABI stamps d's meta with abi, as a program of that ABI leaves it.
func stampABI(t *testing.T, d *Dataplane, abi uint32) {
	t.Helper()
	if err := d.objs.Meta.Update(uint32(0), graygwMeta{Magic: magic, Abi: abi}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// wantMigrated fails unless d's meta is stamped with this program's ABI.
func wantMigrated(t *testing.T, d *Dataplane) {
	t.Helper()
	var m graygwMeta
	if err := d.objs.Meta.Lookup(uint32(0), &m); err != nil || m.Abi != ABI {
		t.Fatalf("meta after the migration %+v %v, want ABI %d", m, err, ABI)
	}
}

// unpin removes the pins of names under dir.
func unpin(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// asABI9 makes the pins under dir those an ABI 9 program leaves: as ABI 10's,
// with vip and backend pinned as vip_map and backends (only those
// named in renamed), meta stamped 9.
func asABI9(t *testing.T, d *Dataplane, dir string, renamed ...string) {
	t.Helper()
	asOlderABI(t, d, dir, 10)
	for _, old := range renamed {
		if err := os.Rename(filepath.Join(dir, renamedPins[old]), filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
	stampABI(t, d, 9)
}

// wantDrops fails unless d counted n packets of reason (after the migration).
func wantDrops(t *testing.T, d *Dataplane, reason pipeline.Reason, n uint64) {
	t.Helper()
	drops, err := d.DropCounters()
	if err != nil || drops[reason].Packets != n {
		t.Fatalf("drop_reasons[%s] after the migration %+v %v, want %d packets", reason, drops[reason], err, n)
	}
}

// olderPins[v] makes the pins under dir, those of ABI v+1, those an ABI v
// program leaves, holding d's values: each ABI bump, undone.
var olderPins = map[uint32]func(t *testing.T, d *Dataplane, dir string){
	// ABI 16 added select_cells.
	15: func(t *testing.T, d *Dataplane, dir string) { unpin(t, dir, "select_cells") },
	// ABI 15 added vip_index.
	14: func(t *testing.T, d *Dataplane, dir string) { unpin(t, dir, "vip_index") },
	// ABI 14 gave gray_masks6 values a filter.
	13: func(t *testing.T, d *Dataplane, dir string) {
		m := d.objs.GrayMasks6
		pinNarrow(t, dir, "gray_masks6", m, m.ValueSize()-8<<(filter6Log-6))
	},
	// ABI 13 added the IPv6 maps and the IPv6 end of backend values.
	12: func(t *testing.T, d *Dataplane, dir string) {
		unpin(t, dir, v6Maps...)
		pinNarrow(t, dir, "backend", d.objs.Backend, abi12BackendSize)
		pinNarrow(t, dir, "backend_cells", d.objs.BackendCells, abi12BackendSize)
	},
	// ABI 12 grew drop_reasons to 32 cells.
	11: func(t *testing.T, d *Dataplane, dir string) { pinDropReasons(t, d, dir, oldDropReasons[11]) },
	// ABI 11 added the 802.1Q maps and a 17th drop reason.
	10: func(t *testing.T, d *Dataplane, dir string) {
		unpin(t, dir, vlanMaps...)
		pinDropReasons(t, d, dir, oldDropReasons[10])
	},
}

// asOlderABI makes the pins under dir those an ABI abi program leaves,
// holding d's values: olderPins step by step down from the ABI d's meta
// holds, each step stamped. Called again, it finds the set already so.
func asOlderABI(t *testing.T, d *Dataplane, dir string, abi uint32) {
	t.Helper()
	var m graygwMeta
	if err := d.objs.Meta.Lookup(uint32(0), &m); err != nil {
		t.Fatal(err)
	}
	for v := m.Abi - 1; v >= abi; v-- {
		older := olderPins[v]
		if older == nil {
			t.Fatalf("no olderPins step for ABI %d", v)
		}
		older(t, d, dir)
		stampABI(t, d, v)
	}
}

// TestMigratesABI13Pins: ABI 14 gave gray_masks6 a Bloom filter. An agent
// upgraded over an ABI 13 pin set gets a new gray_masks6, rewritten from
// rule6_store: its IPv6 rules apply as before.
func TestMigratesABI13Pins(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	fillV6World(t, d)
	check(t, d.InsertRuleV6(rule6(100, 2, true, netip.PrefixFrom(vm6, 128), pool6Gray)))
	wantVerdict6(t, d, "before the migration", plain6(tcp6(1, 2)), "to "+under6Gray.String())
	asOlderABI(t, d, dir, 13)
	d2 := restart(t, d, dir)
	wantVerdict6(t, d2, "after the migration", plain6(tcp6(1, 2)), "to "+under6Gray.String())
	if n := d2.objs.GrayMasks6.ValueSize(); n != d.objs.GrayMasks6.ValueSize() {
		t.Fatalf("gray_masks6 values after the migration: %d bytes", n)
	}
	wantMigrated(t, d2)
}

// pinNarrow pins, as name under dir in place of m's pin, a map like m whose
// values are cut to size bytes, holding m's entries so cut: what an older
// program whose value ended there left.
func pinNarrow(t *testing.T, dir, name string, m *ebpf.Map, size uint32) {
	t.Helper()
	narrow, err := ebpf.NewMap(&ebpf.MapSpec{Type: m.Type(), KeySize: m.KeySize(), ValueSize: size,
		MaxEntries: m.MaxEntries(), Flags: m.Flags()})
	if err != nil {
		t.Fatal(err)
	}
	defer narrow.Close()
	k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
	for it := m.Iterate(); it.Next(&k, &v); {
		if err := narrow.Update(k, v[:size], ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	if err := narrow.Pin(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// abi12BackendSize is struct backend's size up to ABI 12.
const abi12BackendSize = 24

// TestMigratesABI12Pins: ABI 13 (IPv6) widened the backend values and added
// the IPv6 maps. An agent upgraded over an ABI 12 pin set keeps every
// backend (an IPv4 one: family 0), serves the same frames, and has the IPv6
// tables, empty.
func TestMigratesABI12Pins(t *testing.T) {
	dir, d, ms, frame, first := migrationStart(t)
	asOlderABI(t, d, dir, 12)
	d2 := restart(t, d, dir)
	if got := decide(t, d2, frame); got != first {
		t.Fatalf("after the migration: %s, want %s", got, first)
	}
	if bes, err := d2.Backends(); err != nil || !maps.Equal(bes, ms.Backends) {
		t.Fatalf("backends after the migration %v %v, want %v", bes, err, ms.Backends)
	}
	if vips, err := d2.VIPs(); err != nil || len(vips) != len(ms.VIPs) {
		t.Fatalf("vips after the migration %v %v, want the %d IPv4 ones", vips, err, len(ms.VIPs))
	}
	if n := d2.objs.Backend.ValueSize(); n <= abi12BackendSize {
		t.Fatalf("backend values after the migration: %d bytes", n)
	}
	wantMigrated(t, d2)
}

// pinDropReasons pins a drop_reasons of n cells holding d's first n counts
// in place of d's.
func pinDropReasons(t *testing.T, d *Dataplane, dir string, n uint32) {
	t.Helper()
	spec, err := loadGraygw()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps["drop_reasons"].Copy()
	ms.Pinning, ms.MaxEntries = ebpf.PinNone, n
	old, err := ebpf.NewMap(ms)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for i := range n {
		var cells []graygwCounter
		if err := d.objs.DropReasons.Lookup(i, &cells); err != nil {
			t.Fatal(err)
		}
		if err := old.Update(i, cells, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "drop_reasons")); err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(filepath.Join(dir, "drop_reasons")); err != nil {
		t.Fatal(err)
	}
}

// TestMigratesABI11Pins: ABI 12 (IPv6) grew drop_reasons from 17 cells to
// 32. An agent upgraded over an ABI 11 pin set keeps every table and
// counter, the 802.1Q ones and VLAN_NOT_ACCEPTED's count included, and its
// drop_reasons has the 32 cells.
func TestMigratesABI11Pins(t *testing.T) {
	dir, d, _, frame, first := migrationStart(t)
	tagged := testpkt.Tag(frame, 100)
	if got := decide(t, d, tagged); got != "VLAN_NOT_ACCEPTED" {
		t.Fatalf("tagged before the port accepts VID 100: %s", got)
	}
	var port uint32
	if err := d.objs.IfindexPort.Lookup(uint32(loIfindex), &port); err != nil {
		t.Fatal(err)
	}
	if err := d.SetVLANAccept(uint16(port), 100); err != nil {
		t.Fatal(err)
	}
	vipBefore, err := d.VIPCounter(testvectors.VIP1)
	if err != nil {
		t.Fatal(err)
	}
	asOlderABI(t, d, dir, 11)
	d2 := restart(t, d, dir)
	if got := decide(t, d2, tagged); got != first {
		t.Fatalf("tagged, accepted before the migration: %s, want %s", got, first)
	}
	wantDrops(t, d2, pipeline.VLANNotAccepted, 1)
	if n := d2.objs.DropReasons.MaxEntries(); n != pipeline.NumReasons {
		t.Fatalf("drop_reasons after the migration: %d cells, want %d", n, pipeline.NumReasons)
	}
	if c, err := d2.VIPCounter(testvectors.VIP1); err != nil || c.Packets != vipBefore.Packets+1 {
		t.Fatalf("vip counter after the migration %+v %v, want %d packets", c, err, vipBefore.Packets+1)
	}
	wantMigrated(t, d2)
}

// TestMigratesABI10Pins: ABI 11 (802.1Q) gave drop_reasons a 17th cell and
// added vlan_accept, ifindex_port and port_vlan. An agent upgraded over an
// ABI 10 pin set keeps every table and counter, drop counts included, gets
// the new maps (ifindex_port from the bound ports) and serves tagged frames
// once a port accepts their VID.
func TestMigratesABI10Pins(t *testing.T) {
	dir, d, _, frame, first := migrationStart(t)
	notVIP, _ := vectorCase(t, "pass_not_vip")
	if got := decide(t, d, notVIP); got != "NOT_VIP" {
		t.Fatalf("pass_not_vip: %s", got)
	}
	asOlderABI(t, d, dir, 10)
	d2 := restart(t, d, dir)
	if got := decide(t, d2, frame); got != first {
		t.Fatalf("after the migration: %s, want %s", got, first)
	}
	wantDrops(t, d2, pipeline.NotVIP, 1)
	if c, err := d2.VIPCounter(testvectors.VIP1); err != nil || c.Packets != 2 {
		t.Fatalf("vip counter after the migration %+v %v, want 2 packets", c, err)
	}
	wantMigrated(t, d2)
	// Every backend port is the loopback here: it names one of them.
	var port uint32
	ports, _ := d2.Ports()
	if err := d2.objs.IfindexPort.Lookup(uint32(loIfindex), &port); err != nil || ports[uint16(port)] != loIfindex {
		t.Fatalf("ifindex_port[lo] after the migration: %d %v, want a port bound to lo (%v)", port, err, ports)
	}
	tagged := testpkt.Tag(frame, 100)
	if got := decide(t, d2, tagged); got != "VLAN_NOT_ACCEPTED" {
		t.Fatalf("tagged before the port accepts VID 100: %s", got)
	}
	if err := d2.SetVLANAccept(uint16(port), 100); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, d2, tagged); got != first {
		t.Fatalf("tagged, accepted: %s, want %s", got, first)
	}
}

// TestMigratesABI9Pins: ABI 10 gave the maps vip_map and backends the P4
// tables' names. An agent upgraded over an ABI 9 pin set renames the two pins
// and keeps every table and counter (no --repin, no empty tables); a set
// that is not a whole ABI 9 one is refused naming --repin, and --repin leaves
// no pin of the old names.
func TestMigratesABI9Pins(t *testing.T) {
	dir, d, ms, frame, first := migrationStart(t)
	asABI9(t, d, dir, "vip_map", "backends")
	d2 := restart(t, d, dir)
	if got := decide(t, d2, frame); got != first {
		t.Fatalf("after the migration: %s, want %s", got, first)
	}
	if c, err := d2.VIPCounter(testvectors.VIP1); err != nil || c.Packets != 2 {
		t.Fatalf("vip counter after the migration %+v %v, want 2 packets", c, err)
	}
	if bes, err := d2.Backends(); err != nil || !maps.Equal(bes, ms.Backends) {
		t.Fatalf("backends after the migration %v %v, want %v", bes, err, ms.Backends)
	}
	for old, renamed := range renamedPins {
		if _, err := os.Stat(filepath.Join(dir, old)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pin %s still there after the migration: %v", old, err)
		}
		if _, err := os.Stat(filepath.Join(dir, renamed)); err != nil {
			t.Errorf("pin %s: %v", renamed, err)
		}
	}
	wantMigrated(t, d2)

	// Half an ABI 9 set (vip_map there, backends not): refused, nothing renamed.
	asABI9(t, d2, dir, "vip_map")
	d2.Close()
	_, err := Open(Options{PinDir: dir})
	if !errors.Is(err, ErrIncompatiblePin) || !strings.Contains(err.Error(), fmt.Sprintf("ABI 9, this program has ABI %d", ABI)) ||
		!strings.Contains(err.Error(), "vip: not pinned") || !strings.Contains(err.Error(), "--repin") {
		t.Fatalf("Open over half an ABI 9 set: %v, want ErrIncompatiblePin naming ABI 9, vip and --repin", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vip_map")); err != nil {
		t.Fatalf("the refused Open touched vip_map: %v", err)
	}
	d3, err := Open(Options{PinDir: dir, Repin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if _, err := os.Stat(filepath.Join(dir, "vip_map")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--repin left vip_map: %v", err)
	}
	if vips, err := d3.VIPs(); err != nil || len(vips) != 0 {
		t.Fatalf("VIPs after --repin %v %v, want none", vips, err)
	}
}

func TestReadBackAndCounterWrites(t *testing.T) {
	d := openTest(t)
	ms := basicModel(t)
	applyState(t, d, ms)
	vips, err := d.VIPs()
	if err != nil || len(vips) != len(ms.VIPs) || vips[testvectors.VIP1] != (VIP{ID: 1, DefaultPool: testvectors.PoolBase}) {
		t.Fatalf("VIPs() = %v, %v", vips, err)
	}
	tenants, err := d.Tenants()
	if err != nil || len(tenants) != len(ms.Tenants) || tenants[testvectors.VNIMixed] != ms.Tenants[testvectors.VNIMixed] {
		t.Fatalf("Tenants() = %v, %v", tenants, err)
	}
	ph, err := d.PoolHashes()
	if err != nil || ph[testvectors.PoolGray] != ms.PoolHash[testvectors.PoolGray] {
		t.Fatalf("PoolHashes() = %v, %v", ph, err)
	}
	bes, err := d.Backends()
	if err != nil || len(bes) != len(ms.Backends) || addr4(bes[21].UnderlayIP) != netip.MustParseAddr("10.3.0.21") || bes[21].Port != 3 {
		t.Fatalf("Backends() = %v, %v", bes, err)
	}
	ids, ok, err := d.Buckets(testvectors.PoolGray)
	if err != nil || !ok[5] || ids[5] != ms.BackendSelect[model.SelectKey{Pool: testvectors.PoolGray, Bucket: 5}] {
		t.Fatalf("Buckets() = %v %v, %v", ids[:6], ok[:6], err)
	}
	if _, ok, _ := d.Buckets(3); ok[0] {
		t.Fatal("pool 3 has a bucket it was never given")
	}
	ports, err := d.Ports()
	if err != nil || len(ports) != len(portsOf(ms)) {
		t.Fatalf("Ports() = %v, %v", ports, err)
	}

	want := Counter{Packets: 7, Bytes: 700}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.SetVIPCounter(testvectors.VIP1, want))
	must(d.SetBackendCounter(21, want))
	must(d.SetRuleCounter(ms.GrayRules[0], want))
	must(d.SetDropCounter(pipeline.TTLExpired, want))
	frame, _ := vectorCase(t, "overlay_vm_cutover")
	_, e := vectorCase(t, "overlay_vm_cutover")
	run(t, d.Program(), frame)
	n := uint64(len(frame))
	c1, _ := d.VIPCounter(testvectors.VIP1)
	c2, _ := d.BackendCounter(e.BackendID)
	c3, _ := d.RuleCounter(ms.GrayRules[0])
	drops, _ := d.DropCounters()
	if c1 != (Counter{Packets: 8, Bytes: 700 + n}) || drops[pipeline.TTLExpired] != want || c3 != (Counter{Packets: 8, Bytes: 700 + n}) {
		t.Fatalf("counters after set + one packet: vip %v rule %v ttl %v", c1, c3, drops[pipeline.TTLExpired])
	}
	if e.BackendID == 21 && c2 != (Counter{Packets: 8, Bytes: 700 + n}) {
		t.Fatalf("backend 21 counter %v", c2)
	}
}

// TestRebuildRepairs simulates a loader that died between two map writes of a
// rule operation: Open rewrites gray_rules and gray_masks from rule_store.
func TestRebuildRepairs(t *testing.T) {
	dir, d, ms := basicPinned(t)
	// Lose one installed entry, add a stray one, and hide every mask.
	var k graygwTssKey
	var v graygwRuleValue
	it := d.objs.GrayRules.Iterate()
	if !it.Next(&k, &v) {
		t.Fatal("no gray_rules entry")
	}
	if err := d.objs.GrayRules.Delete(&k); err != nil {
		t.Fatal(err)
	}
	stray := graygwTssKey{MaskId: 999}
	if err := d.objs.GrayRules.Update(&stray, &v, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.GrayMasks.Update(uint32(0), &graygwMaskTable{}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	d = restart(t, d, dir)
	if err := d.objs.GrayRules.Lookup(&stray, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("stray entry still there: %v", err)
	}
	vectorsAgree(t, d, ms, func(name string, ret uint32, want model.Result) {
		t.Errorf("%s after repair: %s, want %s %s", name, verdictName(ret), want.Verdict, want.Reason)
	})
}
