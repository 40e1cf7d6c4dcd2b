"""Every drop reason (docs/pipeline.md section 9), with frames built here.

Each test sends broken or foreign frames, checks that nothing leaves the
gateway (and, on XDP, that the two "not for us" reasons reach the gateway's
kernel untouched), and reads drop_reasons through the controller (graygw
counters --kind drop): the reason counts each frame once, with its length in
bytes, and no other reason moves.

Not reachable here, and why:
  ETH_TRUNCATED  a veth cannot carry a frame shorter than an Ethernet header;
                 BPF_PROG_TEST_RUN covers it (agent/xdp, bpf/).
  NO_BACKEND     no valid intent compiles to a pool without buckets or to
                 buckets naming a missing backend (NoBackendNeverCompiled checks
                 the controller refuses the way there); the table-level group
                 (vectors_tables.py) drops it on the raw vector tables.
"""

import graygw as gg
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

OUTER = Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1])


def vxlan_head(flags=0x08):
    return OUTER / IP(src=gg.HV, dst=gg.VIP1) / UDP(sport=49152, dport=4789) / VXLAN(vni=6060, flags=flags)


def inner_eth(ethertype=0x0800):
    return Ether(src=gg.VM_MAC, dst=gg.ROUTER_MAC, type=ethertype)


class NotIPv4(gg.DropTest):
    """ARP, an experimental ethertype and tagged ARP frames are neither IPv4
    nor IPv6: not for us (XDP: to the kernel). (QinQ, also NOT_IPV4, is a
    shared vector: the kernel keeps its inner tag, which this module's kernel
    check does not expect. IPv6 is parsed: ipv6.py has its reasons.)"""
    reason = "NOT_IPV4"
    frames = [OUTER / ARP(op=1, psrc="10.1.0.10", pdst="10.1.0.1"),
              Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1], type=0x88b5) / Raw(bytes(IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=4789))),
              Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1], type=0x8100) / Raw(b"\x00\x05\x08\x06" + bytes(ARP(op=1, psrc="10.1.0.10", pdst="10.1.0.1")))]


class VLANNotAccepted(gg.DropTest):
    """A VIP's 802.1Q-tagged frame whose VID its port does not accept (the
    baseline accepts none): dropped and counted, not passed up."""
    reason = "VLAN_NOT_ACCEPTED"
    frames = [Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1], type=0x8100) / Raw(b"\x00\x05\x08\x00" + bytes(IP(src=gg.HV, dst=gg.VIP1) / UDP(sport=1, dport=2))),
              Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1], type=0x8100) / Raw(b"\xa0\x00\x08\x00" + bytes(IP(src=gg.HV, dst=gg.VIP1, ttl=1)))]


class IPv4Truncated(gg.DropTest):
    """Fewer than 20 bytes of IPv4 header."""
    reason = "IPV4_TRUNCATED"
    frames = [gg.cut(OUTER / IP(dst=gg.VIP1), 14 + 10), gg.cut(OUTER / IP(dst=gg.VIP1), 14 + 19)]


class NotVIP(gg.DropTest):
    """Not a VIP, even when broken further in: not for us."""
    reason = "NOT_VIP"
    frames = [OUTER / IP(src=gg.HV, dst="10.1.0.1") / UDP(sport=1, dport=2),
              gg.cut(OUTER / IP(src=gg.HV, dst="10.9.9.9") / UDP(sport=1, dport=4789) / VXLAN(vni=1), 14 + 20 + 8 + 3),
              OUTER / IP(src=gg.HV, dst="10.9.9.9", frag=5, flags="MF") / Raw(b"x" * 8)]


class IPv4Malformed(gg.DropTest):
    """To a VIP: IPv4 options (ihl 6) and a wrong version."""
    reason = "IPV4_MALFORMED"
    frames = [OUTER / IP(src=gg.HV, dst=gg.VIP1, options=[b"\x01\x01\x01\x00"]) / UDP(sport=1, dport=2),
              OUTER / IP(src=gg.HV, dst=gg.VIP1, version=6) / UDP(sport=1, dport=2)]


class IPv4Fragment(gg.DropTest):
    """To a VIP: a first fragment (MF) and a later one (offset)."""
    reason = "IPV4_FRAGMENT"
    frames = [OUTER / IP(src=gg.HV, dst=gg.VIP1, flags="MF") / UDP(sport=1, dport=4789) / Raw(b"x" * 16),
              OUTER / IP(src=gg.HV, dst=gg.VIP1, frag=185) / Raw(b"x" * 16)]


class L4Truncated(gg.DropTest):
    """To a VIP: TCP shorter than 20 bytes, UDP shorter than 8."""
    reason = "L4_TRUNCATED"
    frames = [gg.cut(OUTER / IP(src=gg.HV, dst=gg.VIP1) / TCP(sport=1, dport=80), 14 + 20 + 12),
              gg.cut(OUTER / IP(src=gg.HV, dst=gg.VIP1) / UDP(sport=1, dport=4789), 14 + 20 + 5)]


class VXLANTruncated(gg.DropTest):
    """VXLAN header shorter than 8 bytes."""
    reason = "VXLAN_TRUNCATED"
    frames = [gg.cut(vxlan_head(), 14 + 20 + 8 + 4), gg.cut(vxlan_head(), 14 + 20 + 8)]


class VXLANBadFlags(gg.DropTest):
    """VXLAN without the I flag (the VNI is not valid)."""
    reason = "VXLAN_BAD_FLAGS"
    frames = [vxlan_head(flags=0x00) / inner_eth() / IP(src="192.168.1.5", dst="192.168.1.1") / UDP(),
              vxlan_head(flags=0x80) / inner_eth() / IP(src="192.168.1.5", dst="192.168.1.1") / UDP()]


class InnerTruncated(gg.DropTest):
    """Inner Ethernet, inner IPv4 or inner ports cut short."""
    reason = "INNER_TRUNCATED"
    _full = vxlan_head() / inner_eth() / IP(src="192.168.1.5", dst="192.168.1.1") / TCP(sport=1, dport=2)
    frames = [gg.cut(_full, 50 + 10), gg.cut(_full, 50 + 14 + 12), gg.cut(_full, 50 + 14 + 20 + 3)]


class InnerNotIPv4(gg.DropTest):
    """The inner frame is ARP or another ethertype, neither IPv4 nor IPv6
    (inner IPv6 is a flow: ipv6.py)."""
    reason = "INNER_NOT_IPV4"
    frames = [vxlan_head() / Ether(src=gg.VM_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.168.1.5", pdst="192.168.1.1"),
              vxlan_head() / Ether(src=gg.VM_MAC, dst=gg.ROUTER_MAC, type=0x88b5) / Raw(bytes(IPv6(src="fd00::5", dst="fd00::1") / UDP()))]


class InnerIPv4Malformed(gg.DropTest):
    """Inner IPv4 with options, or not version 4."""
    reason = "INNER_IPV4_MALFORMED"
    frames = [vxlan_head() / inner_eth() / IP(src="192.168.1.5", dst="192.168.1.1", options=[b"\x01" * 8]) / UDP(),
              vxlan_head() / inner_eth() / IP(src="192.168.1.5", dst="192.168.1.1", version=5) / UDP()]


class TTLExpired(gg.DropTest):
    """Outer TTL 1 and 0, overlay and plain."""
    reason = "TTL_EXPIRED"
    frames = [gg.overlay(6060, "192.168.60.5", ttl=1), gg.plain("10.60.0.5", ttl=0)]


class PortDown(gg.GatewayTest):
    """A backend behind a gateway port that has no interface (declared in the
    intent, not bound by the gateway). XDP drops its traffic PORT_DOWN. A P4
    target has no such reason (the program cannot know which ports exist): on
    BMv2 the program forwards to port 4 (the backend's counter counts it, no
    drop reason moves) and simple_switch, which has no interface at port 4,
    discards it. On both the frame comes out nowhere."""

    @gg.autocleanup
    def runTest(self):
        def dead_port(doc):
            doc["gateways"][0]["ports"][4] = {"interface": "p4", "mac": "02:00:00:00:04:04"}
            doc["pools"].append({"name": "pool-dead", "id": 40, "cluster": "gray", "backends": [
                {"name": "be-40", "id": 40, "underlay_ip": "10.4.0.40", "mac": "02:00:00:00:28:28", "port": 4}]})
            doc["gray_rules"].append({"name": "to-dead", "match": {"vni": 6061}, "pool": "pool-dead"})
        self.assertTrue(gg.edit(dead_port)["applied"])
        f = bytes(gg.overlay(6061, "192.168.61.5"))
        d = gg.expect([f])[0]
        self.assertEqual((d["verdict"], d["port"], d["backend_id"]), ("forward", 4, 40), "the model forwards to port 4")
        if gg.TARGET == "xdp":
            with self.counted("PORT_DOWN", len(f)):
                self.send(f)
                self.verify_nothing_out()
            return
        bes0 = gg.counters("backend")
        with self.counted(None, len(f)):
            self.send(f)
            self.verify_nothing_out()
        bes1 = gg.counters("backend")
        self.assertEqual(bes1["be-40"][0] - bes0.get("be-40", (0, 0))[0], 1,
                         "the program forwards the frame to be-40 (its backend_counter counts it)")


class NoBackendNeverCompiled(gg.GatewayTest):
    """The controller refuses an intent whose pool could leave buckets empty
    (every backend drained): NO_BACKEND cannot be reached through it."""

    @gg.autocleanup
    def runTest(self):
        v0, _ = gg.intent()
        doc = gg.yaml.safe_load(gg.intent()[1])
        for b in gg.pool_of(doc, "pool-2")["backends"]:
            b["weight"] = 0
        path = gg.os.path.join(gg.WORK, "no-weight.yaml")
        with open(path, "w") as fh:
            gg.yaml.safe_dump(doc, fh, sort_keys=False)
        code, out, err = gg.cli("apply", "-f", path, "--actor", "ptf", ok=(3,))
        self.assertIn("weight", out + err)
        self.assertEqual(gg.intent()[0], v0)
