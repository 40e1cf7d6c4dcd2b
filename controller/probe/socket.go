package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// open creates the AF_PACKET socket inside the probe host's namespace and
// resolves the interface, its MAC and address (of the VIP's family), and the
// gateway's MAC (ARP or neighbour discovery).
func (p *Prober) open() error {
	return inNetNS(p.cfg.NetNS, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("%w: netlink: %w", ErrSocket, err)
		}
		defer h.Close()
		var link netlink.Link
		var nextHop netip.Addr
		routes, rerr := h.RouteGet(p.cfg.VIP.AsSlice())
		if rerr == nil && len(routes) > 0 {
			r := routes[0]
			nextHop = p.cfg.VIP
			if gw, ok := netip.AddrFromSlice(r.Gw); ok && r.Gw != nil {
				nextHop = gw.Unmap()
			}
			if p.cfg.Interface == "" {
				if link, err = h.LinkByIndex(r.LinkIndex); err != nil {
					return fmt.Errorf("%w: interface of the route to %v: %w", ErrSocket, p.cfg.VIP, err)
				}
			}
		}
		if p.cfg.Interface != "" {
			if link, err = h.LinkByName(p.cfg.Interface); err != nil {
				return fmt.Errorf("%w: interface %q in namespace %q: %w", ErrSocket, p.cfg.Interface, p.cfg.NetNS, err)
			}
		}
		if link == nil {
			return fmt.Errorf("%w: no route to the VIP %v in namespace %q (give the interface and gateway MAC)", ErrSocket, p.cfg.VIP, p.cfg.NetNS)
		}
		attrs := link.Attrs()
		p.ifindex = attrs.Index
		if len(attrs.HardwareAddr) != 6 {
			return fmt.Errorf("%w: interface %s has no Ethernet address", ErrSocket, attrs.Name)
		}
		copy(p.srcMAC[:], attrs.HardwareAddr)
		p.source = p.cfg.Source
		fam, famName, ethProto := netlink.FAMILY_V4, "IPv4", uint16(unix.ETH_P_IP)
		if p.cfg.VIP.Is6() {
			fam, famName, ethProto = netlink.FAMILY_V6, "IPv6", unix.ETH_P_IPV6
		}
		if !p.source.IsValid() {
			addrs, err := h.AddrList(link, fam)
			for _, a := range addrs {
				ip, ok := netip.AddrFromSlice(a.IP)
				if ip = ip.Unmap(); ok && !ip.IsLinkLocalUnicast() {
					p.source = ip // the first one, not link-local (IPv6)
					break
				}
			}
			if !p.source.IsValid() {
				return fmt.Errorf("%w: interface %s has no %s address (set the source): %v", ErrSocket, attrs.Name, famName, err)
			}
		}
		if p.cfg.GatewayMAC != "" {
			if p.gwMAC, err = parseMAC(p.cfg.GatewayMAC); err != nil {
				return fmt.Errorf("%w: gateway_mac: %w", ErrConfig, err)
			}
		} else {
			if !nextHop.IsValid() {
				return fmt.Errorf("%w: no route to the VIP %v: cannot find the gateway's MAC (set it)", ErrSocket, p.cfg.VIP)
			}
			if p.gwMAC, err = resolveMAC(h, attrs.Index, fam, nextHop); err != nil {
				return err
			}
		}
		// Replies come back over the VIP's family: the backends answer the
		// hypervisor's VTEP address.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(ethProto)))
		if err != nil {
			return fmt.Errorf("%w: AF_PACKET socket (needs CAP_NET_RAW): %w", ErrSocket, err)
		}
		tv := unix.Timeval{Usec: 20_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("%w: SO_RCVTIMEO: %w", ErrSocket, err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethProto), Ifindex: p.ifindex}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("%w: bind to %s: %w", ErrSocket, attrs.Name, err)
		}
		p.fd = fd
		return nil
	})
}

// resolveMAC finds nextHop's MAC in the neighbour table of the link; when it is
// not there it asks the kernel to resolve it (an empty UDP datagram to the
// discard port of nextHop, the one address it is sent to) and waits up to a
// second.
func resolveMAC(h *netlink.Handle, ifindex, family int, nextHop netip.Addr) ([6]byte, error) {
	var m [6]byte
	lookup := func() bool {
		neighs, err := h.NeighList(ifindex, family)
		if err != nil {
			return false
		}
		for _, n := range neighs {
			ip, ok := netip.AddrFromSlice(n.IP)
			if ok && ip.Unmap() == nextHop && len(n.HardwareAddr) == 6 &&
				n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
				copy(m[:], n.HardwareAddr)
				return true
			}
		}
		return false
	}
	if lookup() {
		return m, nil
	}
	if c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: nextHop.AsSlice(), Port: 9}); err == nil {
		_, _ = c.Write(nil)
		c.Close()
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if lookup() {
			return m, nil
		}
	}
	return m, fmt.Errorf("%w: the MAC of next hop %v is unknown (set the gateway MAC)", ErrSocket, nextHop)
}

// inNetNS runs f on a thread inside the namespace ns ("" = the current one). A
// thread that cannot be switched back is not returned to the runtime.
func inNetNS(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("%w: current namespace: %w", ErrSocket, err)
			return
		}
		defer orig.Close()
		var target netns.NsHandle
		if strings.Contains(ns, "/") {
			target, err = netns.GetFromPath(ns)
		} else {
			target, err = netns.GetFromName(ns)
		}
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("%w: namespace %q: %w", ErrSocket, ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("%w: enter namespace %q: %w", ErrSocket, ns, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("%w: leave namespace %q: %w", ErrSocket, ns, err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
