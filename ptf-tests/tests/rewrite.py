"""Step 8: the backend rewrite, checksums and TTL.

Every forwarded frame is checked here field by field with scapy, independently
of the oracle: new MACs (the backend's next hop, the gateway port's own MAC),
the outer destination the backend's underlay address, TTL one less, a valid
IPv4 header checksum whatever was received, the outer UDP checksum 0 on VXLAN,
a valid TCP/UDP checksum on plain traffic (0 kept for UDP without one),
everything else byte for byte unchanged, the length too.
"""

import struct

import graygw as gg
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

HDR = 14 + 20  # Ethernet + IPv4 without options


def ones_complement(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def l4_checksum_ok(frame, proto):
    """The TCP/UDP checksum over the IPv4 pseudo-header of frame is valid."""
    ip = frame[14:HDR]
    seg = frame[HDR:14 + struct.unpack("!H", ip[2:4])[0]]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, len(seg))
    return ones_complement(pseudo + seg) == 0xffff


class RewriteTest(gg.GatewayTest):
    def check_rewrite(self, sent, out, d):
        sent, out = bytes(sent), bytes(out)
        doc = gg.yaml.safe_load(gg.intent()[1])
        be = gg.backends(doc)[d["backend_id"]]
        port_mac = doc["gateways"][0]["ports"][be["port"]]["mac"].lower()
        self.assertEqual(len(out), len(sent), "the frame keeps its length")
        self.assertEqual(d["port"], be["port"])
        self.assertEqual(out[0:6], bytes.fromhex(be["mac"].replace(":", "")), "dst MAC: the backend's next hop")
        self.assertEqual(out[6:12], bytes.fromhex(port_mac.replace(":", "")), "src MAC: the gateway port's")
        self.assertEqual(out[12:14], sent[12:14])
        o, s = out[14:HDR], sent[14:HDR]
        self.assertEqual(gg.socket.inet_ntoa(o[16:20]), be["underlay_ip"], "outer dst: the backend's underlay address")
        self.assertEqual(o[8], s[8] - 1, "TTL decremented")
        self.assertEqual(ones_complement(o), 0xffff, "IPv4 header checksum valid")
        self.assertEqual(o[:8] + o[9:10] + o[12:16], s[:8] + s[9:10] + s[12:16], "other IPv4 fields unchanged")
        proto = s[9]
        if proto == 17 and struct.unpack("!H", sent[HDR + 2:HDR + 4])[0] == 4789:
            self.assertEqual(out[HDR:HDR + 6], sent[HDR:HDR + 6], "outer UDP ports and length unchanged")
            self.assertEqual(out[HDR + 6:HDR + 8], b"\0\0", "outer UDP checksum 0 on VXLAN")
            self.assertEqual(out[HDR + 8:], sent[HDR + 8:], "VXLAN and the inner frame unchanged")
        elif proto == 17 and sent[HDR + 6:HDR + 8] == b"\0\0":
            self.assertEqual(out[HDR:], sent[HDR:], "UDP without a checksum keeps 0, payload unchanged")
        elif proto in (6, 17):
            csum_at = HDR + (16 if proto == 6 else 6)
            self.assertTrue(l4_checksum_ok(out, proto), "L4 checksum valid for the new destination")
            self.assertEqual(out[HDR:csum_at] + out[csum_at + 2:], sent[HDR:csum_at] + sent[csum_at + 2:],
                             "only the L4 checksum changes after the IPv4 header")
        else:
            self.assertEqual(out[HDR:], sent[HDR:], "no L4 change for protocol %d" % proto)


class RewriteEveryKind(RewriteTest):
    """Overlay (TCP, UDP, ICMP inner), plain TCP, UDP, UDP without checksum,
    ICMP and GRE, several sources so that both base ports are used."""

    def runTest(self):
        frames = []
        for i in range(4):
            src = "192.168.50.%d" % (10 + i)
            frames += [gg.overlay(6050, src, proto="tcp"), gg.overlay(6050, src, proto="udp", dport=53),
                       gg.overlay(6050, src, proto="icmp")]
            psrc = "10.50.0.%d" % (10 + i)
            frames += [gg.plain(psrc, "tcp", 1000 + i, 443, payload=b"p" * (1 + i * 97)), gg.plain(psrc, "udp", 2000 + i, 53)]
            udp0 = gg.plain(psrc, "udp", 3000 + i, 123)
            udp0 = Ether(bytes(udp0))
            udp0[UDP].chksum = 0
            frames += [udp0, gg.plain(psrc, "icmp", 7, 0), Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1]) /
                       IP(src=psrc, dst=gg.VIP1, proto=47) / Raw(b"\x00\x00\x08\x00gre-payload")]
        ds, outs = self.check_batch(frames)
        ports = set()
        for f, d, o in zip(frames, ds, outs):
            self.assertEqual(d["verdict"], "forward", d)
            self.check_rewrite(f, o, d)
            ports.add(d["port"])
        self.assertEqual(ports, {1, 2}, "base backends behind both ports (XDP_TX and redirect)")


class RewriteGray(RewriteTest):
    """The same rewrite toward the gray cluster (port 3)."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6051", "--pool", "pool-2")
        frames = [gg.overlay(6051, "192.168.51.%d" % i, proto=p) for i in (5, 6, 7) for p in ("tcp", "udp", "icmp")]
        ds, outs = self.check_batch(frames)
        for f, d, o in zip(frames, ds, outs):
            self.assertEqual(d["port"], 3)
            self.check_rewrite(f, o, d)


class BadOuterChecksumCorrected(RewriteTest):
    """A wrong received IPv4 checksum is not checked, and leaves recomputed."""

    def runTest(self):
        f = Ether(bytes(gg.plain("10.52.0.1", "tcp", 1111, 80)))
        f[IP].chksum = 0x1234
        d, out = self.forward(f)
        self.check_rewrite(f, out, d)


class TTL(RewriteTest):
    """TTL 255, 64 and 2 leave decremented; 1 and 0 are dropped TTL_EXPIRED."""

    def runTest(self):
        for ttl in (255, 64, 2):
            f = gg.overlay(6053, "192.168.53.5", ttl=ttl)
            d, out = self.forward(f)
            self.assertEqual(bytes(out)[22], ttl - 1)
            self.check_rewrite(f, out, d)
        for ttl in (1, 0):
            f = bytes(gg.overlay(6053, "192.168.53.5", ttl=ttl))
            d = gg.expect([f])[0]
            self.assertEqual((d["verdict"], d["reason"]), ("drop", "TTL_EXPIRED"))
            with self.counted("TTL_EXPIRED", len(f)):
                self.check_decision(f, d)


class AnyIngressPort(RewriteTest):
    """The decision does not depend on the port a frame comes in on: from
    ports 2 and 3 the frames leave as from port 1 (a backend behind the ingress
    port is reached with XDP_TX on XDP)."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vm", "6054/192.168.54.9", "--pool", "pool-2")
        frames = [gg.overlay(6054, "192.168.54.%d" % i, proto="tcp", sport=5000 + i) for i in range(2, 10)]
        for ingress in (2, 3):
            ds, outs = self.check_batch([Ether(bytes(f)) for f in frames], ingress=ingress)
            for f, d, o in zip(frames, ds, outs):
                self.check_rewrite(f, o, d)
            self.assertIn(3, [d["port"] for d in ds])
