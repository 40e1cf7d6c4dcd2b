//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/graygw/graygw/pipeline"
)

// Options configure Open.
type Options struct {
	// PinDir is the bpffs directory the maps (and links) are pinned under;
	// DefaultPinDir when empty.
	PinDir string
	// NoPin loads private maps that nothing else sees and that vanish on
	// Close: for tests and benchmarks.
	NoPin bool
	// Repin removes existing map pins first, so tables and counters start
	// empty (the fix for ErrIncompatiblePin). Pinned links are kept.
	Repin bool
}

// Dataplane is the loaded XDP program and its maps. Its methods are safe for
// concurrent use; each table write is one or a few map updates ordered so that
// every packet sees either the old or the new decision (docs/xdp.md).
type Dataplane struct {
	objs   graygwObjects
	pinDir string // "" when NoPin
	ncpu   int

	mu       sync.Mutex
	vip4     vipTable[uint32]      // vip (tables.go)
	vidx     vipIndex              // vip_index, what packets read of vip (vipindex.go)
	vip6     vipTable[graygwAddr6] // vip_v6
	tss6     tss6                  // gray_rules_v6 (rules6.go)
	backends map[uint32]uint32     // backend id -> counter slot
	beSlots  slots
	cells    beCells // backend_ver and backend_cells (backends.go)
	tss      tss
	index    ruleIndex                   // rule_index and rule_cells (ruleindex.go)
	tdir     tenantDir                   // tenant_dir and tenant_pages (tenants.go)
	sel      selectSlots                 // pool_slot and backend_select (pools.go)
	poolHash map[uint16]pipeline.FlowKey // pool_hash entries, mirrored in pool_slot words
	fresh    bool                        // the maps were created by this Open, not reused
	links    map[string]link.Link        // unpinned links (NoPin), by interface name

	graceOuter, graceInner *ebpf.Map // private; updating graceOuter waits for running programs
}

// Open loads the program and creates its maps, or reuses the maps pinned under
// the pin directory (a restarted agent keeps every table and counter). It
// rebuilds its bookkeeping from the reused maps. Pins written by a program
// with another layout give an error wrapping ErrIncompatiblePin.
func Open(opts Options) (*Dataplane, error) {
	spec, err := loadGraygw()
	if err != nil {
		return nil, fmt.Errorf("bpf: load spec: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("bpf: possible CPUs: %w", err)
	}
	d := &Dataplane{ncpu: ncpu}
	var copts ebpf.CollectionOptions
	if opts.NoPin {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	} else {
		d.pinDir = opts.PinDir
		if d.pinDir == "" {
			d.pinDir = DefaultPinDir
		}
		if err := os.MkdirAll(d.pinDir, 0o700); err != nil {
			return nil, fmt.Errorf("bpf: pin directory: %w", err)
		}
		if opts.Repin {
			if err := removeMapPins(d.pinDir, spec); err != nil {
				return nil, err
			}
		} else if err := migratePins(d.pinDir, spec); err != nil {
			return nil, err
		}
		if err := checkPins(d.pinDir, spec); err != nil {
			return nil, err
		}
		copts.Maps.PinPath = d.pinDir
	}
	if err := spec.LoadAndAssign(&d.objs, &copts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("bpf: %w: %w (remove the pins under %s: graygw-agent --repin)", ErrIncompatiblePin, err, d.pinDir)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("bpf: load: %w\n%+v", err, ve) // the whole verifier log
		}
		return nil, fmt.Errorf("bpf: load: %w", err)
	}
	// The IPv6 programs graygw_xdp tail-calls (PROG_XDP6, PROG_XDP64).
	for i, p := range []*ebpf.Program{d.objs.GraygwXdp6, d.objs.GraygwXdp64} {
		if err := d.objs.Progs.Update(uint32(progXDP6+i), p, ebpf.UpdateAny); err != nil {
			d.objs.Close()
			return nil, fmt.Errorf("bpf: progs[%d]: %w", i, err)
		}
	}
	if d.graceOuter, d.graceInner, err = newGrace(); err != nil {
		d.objs.Close()
		return nil, err
	}
	// The ABI check, the bookkeeping from the maps, then the maps packets
	// read derived from others (select_cells once pools and backends are).
	for _, step := range []func() error{d.checkMeta, d.rebuild, d.rebuildVIPIndex, d.rebuildSelectCells} {
		if err := step(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// checkPins compares every existing pin with the map the program expects and
// lists all differences at once: map layouts, the ABI stamped in meta, and,
// when meta is stamped (a complete set was pinned), maps missing from the set
// (pins of an older program lack the maps added since).
func checkPins(dir string, spec *ebpf.CollectionSpec) error {
	var diffs, missing []string
	stamped := false
	for _, name := range slices.Sorted(maps.Keys(spec.Maps)) {
		ms := spec.Maps[name]
		if ms.Pinning != ebpf.PinByName {
			continue
		}
		path := filepath.Join(dir, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return fmt.Errorf("bpf: pinned map %s: %w", path, err)
		}
		if err := ms.Compatible(m); err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %v", name, strings.TrimSuffix(err.Error(), ": "+ebpf.ErrMapIncompatible.Error())))
		} else if name == "meta" {
			var v graygwMeta
			if err := m.Lookup(uint32(0), &v); err != nil {
				m.Close()
				return fmt.Errorf("bpf: pinned map %s: %w", path, err)
			}
			stamped = v != graygwMeta{}
			if stamped && v != (graygwMeta{Magic: magic, Abi: ABI}) {
				diffs = append(diffs, fmt.Sprintf("meta: magic %#x ABI %d, this program has ABI %d", v.Magic, v.Abi, ABI))
			}
		}
		m.Close()
	}
	if stamped {
		for _, name := range missing {
			diffs = append(diffs, name+": not pinned")
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("bpf: %w: %s (remove the pins under %s: graygw-agent --repin)", ErrIncompatiblePin, strings.Join(diffs, "; "), dir)
	}
	return nil
}

// removeMapPins removes the pins of spec's maps, and those of maps renamed
// since (renamedPins), so a repin leaves no stale file.
func removeMapPins(dir string, spec *ebpf.CollectionSpec) error {
	var names []string
	for name, ms := range spec.Maps {
		if ms.Pinning == ebpf.PinByName {
			names = append(names, name)
		}
	}
	for old := range renamedPins {
		names = append(names, old)
	}
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bpf: repin: %w", err)
		}
	}
	return nil
}

// renamedPins are the maps ABI 10 renamed to their P4 tables' names (old pin
// name -> new); migratePins moves an ABI 9 set's pins.
var renamedPins = map[string]string{"vip_map": "vip", "backends": "backend"}

// vlanMaps are the maps ABI 11 added (802.1Q); migratePins creates them.
var vlanMaps = []string{"vlan_accept", "ifindex_port", "port_vlan"}

// oldDropReasons is drop_reasons' size by the ABI that pinned it: ABI 11 gave
// it a cell for VLAN_NOT_ACCEPTED, ABI 12 grew it to 32 (IPv6).
var oldDropReasons = map[uint32]uint32{9: 16, 10: 16, 11: 17, 12: 32, 13: 32, 14: 32, 15: 32}

// v6Maps are the maps ABI 13 added (IPv6); migratePins creates them empty.
var v6Maps = []string{"vip_v6", "gray_masks6", "gray_rules_v6", "rule6_store", "vip6_counters", "rule6_counters"}

// rebuiltMaps are the maps whose value ABI 14 changed and that Open rewrites
// whole from others (gray_masks6, from rule6_store): migratePins pins an
// empty one over an ABI 13 set's.
var rebuiltMaps = []string{"gray_masks6"}

// derivedMaps are the maps ABI 15 and 16 added that Open fills whole from
// others (vip_index, from vip; select_cells, from backend_select and
// backend_ver): migratePins creates them empty where missing.
var derivedMaps = []string{"vip_index", "select_cells"}

// widenedMaps are the maps whose value ABI 13 grew at its end (backend:
// the IPv6 underlay and the family, whose 0 is IPv4); migratePins copies
// every value zero-extended.
var widenedMaps = []string{"backend", "backend_cells"}

// migratePins upgrades a complete ABI 9 to 15 pin set in place, so an
// upgraded agent keeps every table and counter (the running program holds
// the maps, not the names): ABI 10 renamed two maps (an ABI 9 set's pins get
// the new names); ABI 11 added the 802.1Q maps (created empty, but
// ifindex_port, which is filled from port_ifindex); ABI 11 and 12 grew
// drop_reasons (a new map with every CPU's counts copied); ABI 13 added the
// IPv6 maps (created empty) and widened the backend values (copied
// zero-extended); ABI 14 changed gray_masks6's value (a new one, empty:
// Open rewrites it); ABI 15 and 16 added vip_index and select_cells
// (created empty: Open fills them). A grown map is pinned over the old one: what the old
// program counts between the copy and its replacement is lost, and a
// backend written meanwhile too (the agent writes none while it starts).
// The new pins come first, meta last. Any other set is left as it is for
// checkPins to judge.
func migratePins(dir string, spec *ebpf.CollectionSpec) error {
	meta, err := ebpf.LoadPinnedMap(filepath.Join(dir, "meta"), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bpf: pinned map meta: %w", err)
	}
	defer meta.Close()
	var v graygwMeta
	if err := meta.Lookup(uint32(0), &v); err != nil || v.Magic != magic || oldDropReasons[v.Abi] == 0 {
		return nil // unreadable, or not ABI 9 to 15: checkPins reports it
	}
	// pinOf is where the old set pins a map of this ABI's name.
	pinOf := func(name string) string { return filepath.Join(dir, name) }
	if v.Abi == 9 {
		for old, renamed := range renamedPins {
			if _, err := os.Stat(filepath.Join(dir, old)); err != nil {
				return nil // not a complete ABI 9 set
			}
			if _, err := os.Stat(filepath.Join(dir, renamed)); err == nil {
				return nil // both names: checkPins reports it
			}
		}
		pinOf = func(name string) string {
			for old, renamed := range renamedPins {
				if renamed == name {
					return filepath.Join(dir, old)
				}
			}
			return filepath.Join(dir, name)
		}
	}
	// An ABI 11 to 13 set has the 802.1Q maps, an older one has none of
	// them; an ABI 13 set has the IPv6 maps, an older one none.
	var addMaps []string
	for _, name := range vlanMaps {
		_, err := os.Stat(filepath.Join(dir, name))
		if (err == nil) != (v.Abi >= 11) {
			return nil // not a complete set of its ABI: checkPins reports it
		}
	}
	for _, name := range v6Maps {
		_, err := os.Stat(filepath.Join(dir, name))
		if (err == nil) != (v.Abi >= 13) {
			return nil
		}
	}
	if v.Abi < 11 {
		addMaps = append(addMaps, vlanMaps...)
	}
	if v.Abi < 13 {
		addMaps = append(addMaps, v6Maps...)
	}
	for _, name := range derivedMaps {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			addMaps = append(addMaps, name)
		}
	}
	fail := func(err error) error {
		return fmt.Errorf("bpf: migrate the ABI %d pins under %s: %w (graygw-agent --repin starts empty instead)", v.Abi, dir, err)
	}
	drops, err := ebpf.LoadPinnedMap(filepath.Join(dir, "drop_reasons"), nil)
	if err != nil {
		return nil // checkPins reports it
	}
	defer drops.Close()
	if drops.MaxEntries() != oldDropReasons[v.Abi] {
		return nil
	}

	// Everything is built before a pin changes.
	fresh := func(name string) (*ebpf.Map, error) {
		ms := spec.Maps[name].Copy()
		ms.Pinning = ebpf.PinNone
		return ebpf.NewMap(ms)
	}
	built := map[string]*ebpf.Map{} // the new maps and the grown ones, by name
	defer func() {
		for _, m := range built {
			m.Close()
		}
	}()
	var replaced []string // the grown maps: pinned over the old ones
	if drops.MaxEntries() != pipeline.NumReasons {
		m, err := fresh("drop_reasons")
		if err != nil {
			return fail(err)
		}
		built["drop_reasons"] = m
		replaced = append(replaced, "drop_reasons")
		for i := range drops.MaxEntries() {
			var cells []graygwCounter
			if err := drops.Lookup(i, &cells); err != nil {
				return fail(fmt.Errorf("drop_reasons[%d]: %w", i, err))
			}
			if err := m.Update(i, cells, ebpf.UpdateAny); err != nil {
				return fail(fmt.Errorf("drop_reasons[%d]: %w", i, err))
			}
		}
	}
	for _, name := range widenedMaps {
		if v.Abi >= 13 {
			break
		}
		m, err := fresh(name)
		if err != nil {
			return fail(err)
		}
		built[name] = m
		replaced = append(replaced, name)
		if err := copyWidened(pinOf(name), m); err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, name := range rebuiltMaps {
		if v.Abi != 13 {
			break // older sets get it with the other IPv6 maps
		}
		m, err := fresh(name)
		if err != nil {
			return fail(err)
		}
		built[name] = m
		replaced = append(replaced, name)
	}
	for _, name := range addMaps {
		m, err := fresh(name)
		if err != nil {
			return fail(err)
		}
		built[name] = m
	}
	if ifindexPort := built["ifindex_port"]; ifindexPort != nil && v.Abi < 11 {
		ports, err := ebpf.LoadPinnedMap(filepath.Join(dir, "port_ifindex"), nil)
		if err != nil {
			return fail(err)
		}
		defer ports.Close()
		for p := range uint32(MaxPorts) {
			var ifx uint32
			if err := ports.Lookup(p, &ifx); err != nil {
				return fail(fmt.Errorf("port_ifindex[%d]: %w", p, err))
			}
			if ifx != 0 {
				if err := ifindexPort.Update(ifx, p, ebpf.UpdateAny); err != nil {
					return fail(fmt.Errorf("ifindex_port: %w", err))
				}
			}
		}
	}

	// The new maps' pins (no old program reads them), then the grown maps
	// in the old ones' places, then the renamed pins, then meta.
	var pinned []string
	undo := func() {
		for _, name := range pinned {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	for _, name := range addMaps {
		if err := built[name].Pin(filepath.Join(dir, name)); err != nil {
			undo()
			return fail(err)
		}
		pinned = append(pinned, name)
	}
	// bpffs renames no pin over another: the old pin goes first. Should the
	// new one fail after that, the set is refused (--repin).
	for i, name := range replaced {
		if err := os.Remove(pinOf(name)); err != nil {
			if i == 0 {
				undo()
			}
			return fail(err)
		}
		if err := built[name].Pin(filepath.Join(dir, name)); err != nil {
			return fail(err)
		}
	}
	if v.Abi == 9 {
		var done []string
		for old, renamed := range renamedPins {
			if slices.Contains(replaced, renamed) {
				continue // pinned under its new name already
			}
			if err := os.Rename(filepath.Join(dir, old), filepath.Join(dir, renamed)); err != nil {
				for _, o := range done {
					_ = os.Rename(filepath.Join(dir, renamedPins[o]), filepath.Join(dir, o))
				}
				return fail(err)
			}
			done = append(done, old)
		}
	}
	v.Abi = ABI
	if err := meta.Update(uint32(0), &v, ebpf.UpdateExist); err != nil {
		return fail(fmt.Errorf("meta: %w", err))
	}
	return nil
}

// copyWidened copies every entry of the map pinned at path into m, whose
// values are longer: each old value zero-extended.
func copyWidened(path string, m *ebpf.Map) error {
	old, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return err
	}
	defer old.Close()
	if old.KeySize() != m.KeySize() || old.ValueSize() > m.ValueSize() {
		return fmt.Errorf("key %d value %d bytes, cannot widen to key %d value %d", old.KeySize(), old.ValueSize(), m.KeySize(), m.ValueSize())
	}
	k := make([]byte, old.KeySize())
	v := make([]byte, old.ValueSize())
	wide := make([]byte, m.ValueSize())
	it := old.Iterate()
	for it.Next(&k, &v) {
		clear(wide)
		copy(wide, v)
		if err := m.Update(k, wide, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return it.Err()
}

// checkMeta stamps fresh maps with the ABI, and refuses maps stamped with
// another one: a layout change that kept every size would pass checkPins.
func (d *Dataplane) checkMeta() error {
	var m graygwMeta
	if err := d.objs.Meta.Lookup(uint32(0), &m); err != nil {
		return fmt.Errorf("bpf: meta: %w", err)
	}
	switch {
	case m.Magic == magic && m.Abi == ABI:
		return nil
	case m.Magic == 0 && m.Abi == 0:
		d.fresh = true
		m = graygwMeta{Magic: magic, Abi: ABI}
		if err := d.objs.Meta.Update(uint32(0), &m, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: meta: %w", err)
		}
		return nil
	}
	return fmt.Errorf("bpf: %w: maps under %s have magic %#x ABI %d, this program has ABI %d (remove the pins: graygw-agent --repin)",
		ErrIncompatiblePin, d.pinDir, m.Magic, m.Abi, ABI)
}

// Close releases the program and map handles. Pinned maps and links stay, so
// attached interfaces keep forwarding with the current tables.
// With NoPin, Close also detaches the interfaces it attached.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	for name, l := range d.links {
		l.Close()
		delete(d.links, name)
	}
	d.mu.Unlock()
	for _, m := range []*ebpf.Map{d.graceOuter, d.graceInner} {
		if m != nil {
			m.Close()
		}
	}
	return d.objs.Close()
}

// Unpin removes the map pins (and link pins) under the pin directory: once the
// last handle is closed the maps are gone. For tests and --repin tooling.
func (d *Dataplane) Unpin() error {
	if d.pinDir == "" {
		return nil
	}
	var errs []error
	for _, m := range d.maps() {
		if err := m.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	links, _ := filepath.Glob(filepath.Join(d.pinDir, linkPinStem+"*"))
	for _, l := range links {
		if err := os.Remove(l); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bpf: unpin: %w", err)
	}
	_ = os.Remove(d.pinDir) // only if empty
	return nil
}

// PinDir returns the pin directory, "" for private maps.
func (d *Dataplane) PinDir() string { return d.pinDir }

// Program returns the XDP program (for BPF_PROG_TEST_RUN and tail calls).
func (d *Dataplane) Program() *ebpf.Program { return d.objs.GraygwXdp }

// maps returns every map of the program, read off the generated struct so
// that a map added to the C is never left out (of Unpin, say).
func (d *Dataplane) maps() []*ebpf.Map {
	var out []*ebpf.Map
	v := reflect.ValueOf(&d.objs.graygwMaps).Elem()
	for i := range v.NumField() {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil {
			out = append(out, m)
		}
	}
	return out
}

// slots allocates counter cells: the lowest free index, in amortized O(1).
type slots struct {
	used []bool
	hint int // no free index below hint
}

func newSlots(n int) slots { return slots{used: make([]bool, n)} }

// take marks i used (rebuild); false when i is out of range.
func (s *slots) take(i uint32) bool {
	if int(i) >= len(s.used) {
		return false
	}
	s.used[i] = true
	return true
}

func (s *slots) alloc() (uint32, bool) {
	for i := s.hint; i < len(s.used); i++ {
		if !s.used[i] {
			s.used[i], s.hint = true, i+1
			return uint32(i), true
		}
	}
	return 0, false
}

func (s *slots) free(i uint32) {
	s.used[i] = false
	s.hint = min(s.hint, int(i))
}
