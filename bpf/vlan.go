package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/graygw/graygw/pipeline"
)

// 802.1Q (docs/pipeline.md §1, §8; docs/xdp.md, "VLANs"): vlan_accept is a
// bitmap over (port, VID), port_vlan one word per port.

const (
	vids           = 1 << pipeline.VIDBits
	portVLANTagged = 0x10000 // PORT_VLAN_TAGGED
)

func checkPortVID(port, vid uint16) error {
	if port >= MaxPorts || vid >= vids {
		return fmt.Errorf("bpf: port %d vid %d: %w: port < %d, vid < %d", port, vid, ErrInvalid, MaxPorts, vids)
	}
	return nil
}

// SetVLANAccept makes port accept the tagged frames of vid (a vlan_accept
// entry): without it such a frame to a VIP drops VLAN_NOT_ACCEPTED.
func (d *Dataplane) SetVLANAccept(port, vid uint16) error {
	return d.setVLANAccept(port, vid, true)
}

// DeleteVLANAccept removes the vlan_accept entry of (port, vid).
func (d *Dataplane) DeleteVLANAccept(port, vid uint16) error {
	return d.setVLANAccept(port, vid, false)
}

func (d *Dataplane) setVLANAccept(port, vid uint16, on bool) error {
	if err := checkPortVID(port, vid); err != nil {
		return err
	}
	bit := uint32(port)*vids + uint32(vid)
	d.mu.Lock() // read-modify-write of a word other VIDs share
	defer d.mu.Unlock()
	var w uint32
	if err := d.objs.VlanAccept.Lookup(bit/32, &w); err != nil {
		return fmt.Errorf("bpf: vlan_accept: %w", err)
	}
	if on {
		w |= 1 << (bit % 32)
	} else {
		w &^= 1 << (bit % 32)
	}
	if err := d.objs.VlanAccept.Update(bit/32, w, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("bpf: vlan_accept: %w", err)
	}
	return nil
}

// VLANAccepts returns the (port, VID) pairs vlan_accept holds, as port -> VIDs.
func (d *Dataplane) VLANAccepts() (map[uint16][]uint16, error) {
	out := map[uint16][]uint16{}
	var (
		key   uint32
		word  uint32
		words = d.objs.VlanAccept.Iterate()
	)
	for words.Next(&key, &word) {
		for b := range uint32(32) {
			if word&(1<<b) != 0 {
				bit := key*32 + b
				out[uint16(bit/vids)] = append(out[uint16(bit/vids)], uint16(bit%vids))
			}
		}
	}
	if err := words.Err(); err != nil {
		return nil, fmt.Errorf("bpf: vlan_accept: %w", err)
	}
	return out, nil
}

// SetPortVLAN makes the frames port sends leave tagged with vid (a port_vlan
// entry); without one they leave untagged. VID 0 cannot be sent (it is the
// cells' "untagged"): the controller sends 1-4094.
func (d *Dataplane) SetPortVLAN(port, vid uint16) error {
	if err := checkPortVID(port, vid); err != nil {
		return err
	}
	if vid == 0 {
		return fmt.Errorf("bpf: port_vlan %d: %w: VID 0 is not a port's VID", port, ErrInvalid)
	}
	return d.setPortVLAN(port, portVLANTagged|uint32(vid))
}

// DeletePortVLAN removes port's port_vlan entry: it sends untagged.
func (d *Dataplane) DeletePortVLAN(port uint16) error {
	if err := checkPortVID(port, 0); err != nil {
		return err
	}
	return d.setPortVLAN(port, 0)
}

// setPortVLAN writes port's port_vlan word and republishes the cells of the
// port's backends with the VID (packets read it there, not in port_vlan):
// each backend's frames switch tags with its cell, whole.
func (d *Dataplane) setPortVLAN(port uint16, word uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.PortVlan.Update(uint32(port), word, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("bpf: port_vlan %d: %w", port, err)
	}
	vid := uint16(0)
	if word&portVLANTagged != 0 {
		vid = uint16(word & (vids - 1))
	}
	for id := range d.backends {
		var b graygwBackend
		if err := d.objs.Backend.Lookup(id, &b); err != nil {
			return fmt.Errorf("bpf: port_vlan %d: backend %d: %w", port, id, err)
		}
		if b.Port != port || b.Vlan == vid {
			continue
		}
		b.Vlan = vid
		if err := d.objs.Backend.Update(id, &b, ebpf.UpdateExist); err != nil {
			return fmt.Errorf("bpf: port_vlan %d: backend %d: %w", port, id, err)
		}
		if err := d.publishBackend(uint16(id), &b); err != nil {
			return fmt.Errorf("bpf: port_vlan %d: %w", port, err)
		}
	}
	return nil
}

// portVID is port's VID as backend cells carry it: 0 for an untagged port.
func (d *Dataplane) portVID(port uint16) (uint16, error) {
	var w uint32
	if err := d.objs.PortVlan.Lookup(uint32(port), &w); err != nil {
		return 0, fmt.Errorf("port_vlan %d: %w", port, err)
	}
	vid, _ := vidOf(w)
	return vid, nil
}

// vidOf is the VID of a port_vlan word, and whether the port is tagged (an
// untagged port's VID is 0).
func vidOf(w uint32) (uint16, bool) {
	if w&portVLANTagged == 0 {
		return 0, false
	}
	return uint16(w & (vids - 1)), true
}

// PortVLANs returns the port_vlan entries: port -> VID.
func (d *Dataplane) PortVLANs() (map[uint16]uint16, error) {
	return readPorts(d.objs.PortVlan, "port_vlan", vidOf)
}

// bindIfindex keeps ifindex_port, the inverse of port_ifindex, in step when
// port moves from interface old (0: none) to new (0: none).
func (d *Dataplane) bindIfindex(port uint16, old, new uint32) error {
	if old != 0 && old != new {
		if err := d.objs.IfindexPort.Delete(old); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: port %d: ifindex_port: %w", port, err)
		}
	}
	if new != 0 {
		if err := d.objs.IfindexPort.Update(new, uint32(port), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: port %d: ifindex_port: %w", port, err)
		}
	}
	return nil
}
