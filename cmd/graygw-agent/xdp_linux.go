//go:build linux

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/bpf"
)

const defaultPinDir = bpf.DefaultPinDir

func attachMode(s string) bpf.AttachMode {
	switch s {
	case "native":
		return bpf.AttachNative
	case "generic":
		return bpf.AttachGeneric
	}
	return bpf.AttachAuto
}

// openXDP loads (or reuses the pinned) XDP dataplane, attaches it to every port's
// interface and binds the ports. Ports bound by an earlier run and not given now
// are unbound.
func openXDP(c *config, log *slog.Logger) (*opened, error) {
	d, err := bpf.Open(bpf.Options{PinDir: c.pinDir, Repin: c.repin})
	if errors.Is(err, bpf.ErrIncompatiblePin) {
		return nil, fmt.Errorf("%w\n(if that is expected, e.g. after an upgrade that changed the maps, restart with --repin: maps start empty and the journal is replayed into them)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("load the XDP program: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	ports := make([]uint16, 0, len(c.ports))
	for p := range c.ports {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, p := range ports {
		ifname := c.ports[p]
		a, err := d.Attach(ifname, attachMode(c.xdpMode))
		if err != nil {
			return nil, fmt.Errorf("port %d: %w", p, err)
		}
		if err := d.SetPort(p, a.Ifindex); err != nil {
			return nil, fmt.Errorf("port %d: %w", p, err)
		}
		log.Info("port bound", "port", p, "interface", ifname, "ifindex", a.Ifindex, "xdp_mode", a.Mode.String(),
			"replaced_running_program", a.Replaced)
		if a.MirrorErr != nil {
			log.Warn("mirror path not attached: frames of set_pool_mirror rules will be lost on this port", "port", p,
				"interface", ifname, "err", a.MirrorErr)
		}
	}
	bound, err := d.Ports()
	if err != nil {
		return nil, err
	}
	for p, ifindex := range bound {
		if _, keep := c.ports[p]; keep {
			continue
		}
		name := fmt.Sprint(ifindex)
		if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
			name = ifc.Name
		}
		if err := d.DeletePort(p); err != nil {
			return nil, fmt.Errorf("unbind stale port %d: %w", p, err)
		}
		log.Warn("port no longer given: unbound (its packets now drop PORT_DOWN); the program stays attached to the interface until --detach",
			"port", p, "interface", name)
	}
	gen := journal.BootID()
	if gen == "" {
		log.Warn("no kernel boot id: the journal cannot tell a reboot from a restart")
	}
	ok = true
	return &opened{dp: xdp.New(d), generation: gen, close: d.Close}, nil
}

// detachXDP detaches the program from the --port interfaces and unbinds them.
func detachXDP(c *config, log *slog.Logger) error {
	d, err := bpf.Open(bpf.Options{PinDir: c.pinDir})
	if err != nil {
		return fmt.Errorf("load the XDP program: %w", err)
	}
	defer d.Close()
	var errs []error
	for p, ifname := range c.ports {
		if err := d.DeletePort(p); err != nil {
			errs = append(errs, err)
		}
		if err := d.Detach(ifname); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("detached", "port", p, "interface", ifname)
	}
	return errors.Join(errs...)
}
