//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// AttachMode says how the program is hooked into an interface.
type AttachMode int

// Attach modes.
const (
	// AttachAuto tries native (driver) XDP and falls back to generic.
	AttachAuto AttachMode = iota
	// AttachNative is driver-mode XDP: the fast path, before any skb.
	AttachNative
	// AttachGeneric is skb-mode XDP, for drivers without XDP support.
	AttachGeneric
)

// String returns "auto", "native" or "generic".
func (m AttachMode) String() string {
	switch m {
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return "auto"
}

// Attachment is what Attach did.
type Attachment struct {
	Ifindex int
	Mode    AttachMode // native or generic: what the kernel reports
	// Replaced is true when a link pinned by an earlier process was updated to
	// this program in place (no moment without a program).
	Replaced bool
	// MirrorErr is why graygw_tc could not be attached (a kernel without tcx,
	// before 6.6): the interface serves, but its mirrored frames lose their
	// copy and their served frame too (docs/xdp.md, "Mirror"). nil when it is.
	MirrorErr error
}

func (d *Dataplane) linkPin(ifname string) string {
	return filepath.Join(d.pinDir, linkPinStem+ifname)
}

// tcName names the tcx link of ifname: its pin (under link_, so Unpin finds
// it) and its key among unpinned links.
func tcName(ifname string) string { return "tc_" + ifname }

// attachTC hooks graygw_tc into ifname's tcx ingress, where the frames the
// XDP program mirrors arrive (docs/xdp.md, "Mirror"); a pinned link of an
// earlier process is updated in place. Called with d.mu held.
func (d *Dataplane) attachTC(ifname string, ifindex int) error {
	if d.pinDir != "" {
		if l, err := link.LoadPinnedLink(d.linkPin(tcName(ifname)), nil); err == nil {
			defer l.Close()
			if err := l.Update(d.objs.GraygwTc); err != nil {
				return fmt.Errorf("bpf: attach %s: update pinned tc link: %w", ifname, err)
			}
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bpf: attach %s: pinned tc link: %w", ifname, err)
		}
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.GraygwTc, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("bpf: attach %s tcx ingress: %w", ifname, err)
	}
	if d.pinDir != "" {
		defer l.Close() // the pin holds it
		if err := l.Pin(d.linkPin(tcName(ifname))); err != nil {
			return fmt.Errorf("bpf: attach %s: pin tc link: %w", ifname, err)
		}
		return nil
	}
	if d.links == nil {
		d.links = map[string]link.Link{}
	}
	d.links[tcName(ifname)] = l
	return nil
}

// detachTC removes ifname's tcx link, if any. Called with d.mu held.
func (d *Dataplane) detachTC(ifname string) error {
	if l, ok := d.links[tcName(ifname)]; ok {
		delete(d.links, tcName(ifname))
		return l.Close()
	}
	if d.pinDir == "" {
		return nil
	}
	l, err := link.LoadPinnedLink(d.linkPin(tcName(ifname)), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Unpin()
}

// Attach hooks the program into interface ifname. With pinned maps the link
// is pinned too (link_<ifname> under the pin directory), so the program stays
// attached after the process exits; a later Attach by a restarted process
// swaps its program into that link atomically. With NoPin the link lives until
// Detach or Close.
func (d *Dataplane) Attach(ifname string, mode AttachMode) (Attachment, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return Attachment{}, fmt.Errorf("bpf: attach %s: %w", ifname, err)
	}
	a := Attachment{Ifindex: ifc.Index}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pinDir != "" {
		if l, err := link.LoadPinnedLink(d.linkPin(ifname), nil); err == nil {
			defer l.Close()
			if err := l.Update(d.objs.GraygwXdp); err != nil {
				return a, fmt.Errorf("bpf: attach %s: update pinned link: %w", ifname, err)
			}
			a.MirrorErr = d.attachTC(ifname, ifc.Index)
			a.Replaced = true
			a.Mode, err = attachedMode(ifc.Index)
			return a, err
		} else if !errors.Is(err, os.ErrNotExist) {
			return a, fmt.Errorf("bpf: attach %s: pinned link: %w", ifname, err)
		}
	}
	var l link.Link
	if mode != AttachGeneric {
		l, err = link.AttachXDP(link.XDPOptions{Program: d.objs.GraygwXdp, Interface: ifc.Index, Flags: link.XDPDriverMode})
		if err != nil && mode == AttachNative {
			return a, fmt.Errorf("bpf: attach %s native: %w", ifname, err)
		}
	}
	if l == nil {
		l, err = link.AttachXDP(link.XDPOptions{Program: d.objs.GraygwXdp, Interface: ifc.Index, Flags: link.XDPGenericMode})
		if err != nil {
			return a, fmt.Errorf("bpf: attach %s generic: %w", ifname, err)
		}
	}
	a.MirrorErr = d.attachTC(ifname, ifc.Index)
	if d.pinDir != "" {
		if err := l.Pin(d.linkPin(ifname)); err != nil {
			l.Close()
			return a, fmt.Errorf("bpf: attach %s: pin link: %w", ifname, err)
		}
		l.Close() // the pin holds it
	} else {
		if d.links == nil {
			d.links = map[string]link.Link{}
		}
		d.links[ifname] = l
	}
	a.Mode, err = attachedMode(ifc.Index)
	return a, err
}

// Detach unhooks the program from ifname (and removes its link pin).
func (d *Dataplane) Detach(ifname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.detachTC(ifname); err != nil {
		return fmt.Errorf("bpf: detach %s tc: %w", ifname, err)
	}
	if l, ok := d.links[ifname]; ok {
		delete(d.links, ifname)
		if err := l.Close(); err != nil {
			return fmt.Errorf("bpf: detach %s: %w", ifname, err)
		}
		return nil
	}
	if d.pinDir == "" {
		return fmt.Errorf("bpf: detach %s: %w", ifname, ErrNotAttached)
	}
	l, err := link.LoadPinnedLink(d.linkPin(ifname), nil)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bpf: detach %s: %w", ifname, ErrNotAttached)
	}
	if err != nil {
		return fmt.Errorf("bpf: detach %s: %w", ifname, err)
	}
	defer l.Close()
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("bpf: detach %s: %w", ifname, err)
	}
	return nil
}

// attachedMode asks the kernel how XDP is attached to ifindex.
func attachedMode(ifindex int) (AttachMode, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return AttachAuto, fmt.Errorf("bpf: attach mode of %d: %w", ifindex, err)
	}
	x := l.Attrs().Xdp
	switch {
	case x == nil || !x.Attached:
		return AttachAuto, fmt.Errorf("bpf: attach mode of %d: %w", ifindex, ErrNotAttached)
	case x.AttachMode == nl.XDP_ATTACHED_SKB:
		return AttachGeneric, nil
	}
	return AttachNative, nil
}
