"""IPv6 through the controller: IPv6 VIPs, IPv6 underlay, inner IPv6 rules.

The module adds to the baseline intent (graygw apply) an IPv6 VIP, vip-6
(fd00:ff::1), whose default pool pool6-base has IPv6 underlay backends behind
ports 1 and 2, and a gray pool pool6-gray (hash_fields [vni, src]) behind port
3; tearDownModule puts the baseline back. The tests move IPv6 VMs, prefixes and
flows with the operator's commands (graygw cutover --vm 6001/fd00:1::5,
--prefix, --flow tcp/[fd00:1::5]:33001/[fd00:1::1]:22, --percent) and check on
the wire: the exact frame the oracle computes over what the gateway holds, and,
recomputed here independently of the Go model (scapy, zlib): the L4 checksums
after the rewrite (outer UDP of VXLAN over IPv6, plain TCP/UDP/ICMPv6), the hop
limit, the 42-byte key6 with the pool's masks, its CRC32 and bucket, and
split_hash6. Frames with an IPv6 outer header, with an inner IPv6 one behind an
IPv4 VIP, and with an IPv4 flow behind the IPv6 VIP; every IPv6 drop reason an
intent can reach, counted once in drop_reasons. BACKEND_FAMILY and NO_BACKEND
need tables no valid intent compiles to: ipv6_tables.py reaches them.
"""

import graygw as gg
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

VIP6_NAME = "vip-6"
BASE6, GRAY6 = "pool6-base", "pool6-gray"
BASE6_ID, GRAY6_ID = 61, 62
PROTO = {"tcp": 6, "udp": 17, "icmpv6": 58, "icmp": 1}


def add_ipv6(doc):
    """The baseline intent plus vip-6 and its two IPv6-underlay pools. The
    baseline's rules name no VIP (both of its VIPs serve pool-1); beside a
    VIP of another default pool and family they are vip-1's."""
    for r in doc.get("gray_rules") or []:
        r["match"].setdefault("vip", "vip-1")
    doc["gateways"][0]["bgp_next_hop_v6"] = "fd00:10::1"
    doc["vips"].append({"name": VIP6_NAME, "id": 6, "address": gg.VIP6, "default_pool": BASE6})
    doc["pools"].append({"name": BASE6, "id": BASE6_ID, "cluster": "base", "backends": [
        {"name": "be6-61", "id": 61, "underlay_ip": "fd00:2::61", "mac": "02:00:00:00:3d:3d", "port": 1},
        {"name": "be6-62", "id": 62, "underlay_ip": "fd00:2::62", "mac": "02:00:00:00:3e:3e", "port": 1},
        {"name": "be6-63", "id": 63, "underlay_ip": "fd00:2::63", "mac": "02:00:00:00:3f:3f", "port": 2}]})
    doc["pools"].append({"name": GRAY6, "id": GRAY6_ID, "cluster": "gray", "hash_fields": ["vni", "src"], "backends": [
        {"name": "be6-71", "id": 71, "underlay_ip": "fd00:3::71", "mac": "02:00:00:00:47:47", "port": 3},
        {"name": "be6-72", "id": 72, "underlay_ip": "fd00:3::72", "mac": "02:00:00:00:48:48", "port": 3}]})


def setUpModule():
    gg.wait_in_sync()
    gg.edit(add_ipv6, name="ipv6")
    gg.wait_in_sync()


def tearDownModule():
    gg.apply(gg.baseline(), name="restore-baseline")
    gg.wait_in_sync()


def tenant_of(vni):
    """The id of the intent's tenant owning vni (0: none)."""
    doc = gg.yaml.safe_load(gg.intent()[1])
    return next((int(t["id"]) for t in doc.get("tenants") or [] if vni in t.get("vnis") or []), 0)


def pools(test, frames):
    ds, outs = test.check_batch(frames)
    return [d["pool_base"] for d in ds], ds, outs


def l4_checksum_ok(ip):
    """Whether the L4 checksum of the layer after scapy IPv6 header ip is
    the one scapy computes from scratch (pseudo-header included): (ok, got,
    computed)."""
    l4 = ip.payload
    field = "cksum" if hasattr(l4, "cksum") else "chksum"
    got = getattr(l4, field)
    fresh = IPv6(bytes(ip))
    setattr(fresh.payload, field, None)
    want = getattr(IPv6(bytes(fresh)).payload, field)
    return got == want, got, want


class IPv6Test(gg.GatewayTest):
    """Checks every IPv6 test shares."""

    def check_rewrite6(self, sent, out, d):
        """out is sent rewritten for decision d's backend: the outer IPv6
        destination is the backend's underlay, the hop limit one less, the
        MACs the backend's and its port's, every L4 checksum still valid."""
        be = gg.backends()[d["backend_id"]]
        s, o = Ether(bytes(sent)), Ether(bytes(out))
        self.assertEqual((o.dst, o.src), (be["mac"], gg.PORT_MAC[be["port"]]))
        self.assertEqual(o[IPv6].dst, be["underlay_ip"])
        self.assertEqual(o[IPv6].src, s[IPv6].src)
        self.assertEqual(o[IPv6].hlim, s[IPv6].hlim - 1, "the hop limit is decremented")
        l4 = o[IPv6].payload
        if not isinstance(l4, (TCP, UDP, ICMPv6EchoRequest)):
            return
        if isinstance(l4, UDP) and s[IPv6].payload.chksum == 0:
            self.assertEqual(l4.chksum, 0, "a zero UDP checksum stays zero")
            return
        ok, got, want = l4_checksum_ok(o[IPv6])
        self.assertTrue(ok, "%s checksum %#x after the rewrite, %#x computed" % (type(l4).__name__, got, want))


class PlainIPv6(IPv6Test):
    """Plain IPv6 to vip-6 (TCP, UDP, UDP with a zero checksum, ICMPv6 echo,
    another next header): forwarded to pool6-base with the outer destination
    rewritten, the hop limit decremented and each checksum updated (ICMPv6's
    covers the pseudo-header); the key6 is the outer flow's, vni 0 with VNI
    0's tenant."""

    def runTest(self):
        udp0 = gg.plain6("fd00:9::5", proto="udp", sport=5353, dport=53)
        udp0[UDP].chksum = 0  # RFC 6935: stays 0 through the rewrite
        frames = [gg.plain6("fd00:9::5"), gg.plain6("fd00:9::5", proto="udp", sport=5353, dport=53), udp0,
                  gg.plain6("fd00:9::6", proto="icmpv6", sport=77, dport=0),
                  Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1]) / IPv6(src="fd00:9::7", dst=gg.VIP6, nh=59) / Raw(b"x" * 12)]
        got, ds, outs = pools(self, frames)
        self.assertEqual(got, [BASE6_ID] * len(frames))
        tenant0 = tenant_of(0)  # plain traffic is VNI 0's
        for f, d, o in zip(frames, ds, outs):
            self.assertTrue(d["ipv6"], "a plain IPv6 packet is an IPv6 flow")
            self.check_rewrite6(f, o, d)
            ip = Ether(bytes(f))[IPv6]
            l4 = ip.payload
            sport, dport = (l4.sport, l4.dport) if isinstance(l4, (TCP, UDP)) else (0, 0)
            key = gg.flow_key6(0, tenant0, ip.src, ip.dst, ip.nh, sport, dport)
            crc, bucket = gg.bucket(key)
            self.assertEqual((d["hash_key"], d["crc"], d["bucket"]), (key.hex(), crc, bucket))


class OverlayIPv6(IPv6Test):
    """VXLAN over IPv6 with inner IPv6 (TCP, UDP, ICMPv6) to vip-6: the
    default pool's backends, chosen by the bucket of the full key6 (tenant
    filled in from the VNI), spread over the pool; the outer UDP checksum is
    valid after the rewrite."""

    def runTest(self):
        fl = [(6020, "fd00:20::%x" % (5 + i % 3), "fd00:1::%x" % (1 + i % 5), ("tcp", "udp", "icmp")[i % 3], 20000 + i, 80 + i % 3)
              for i in range(30)]
        frames = [gg.overlay6(v, s, d, p, sp, dp) for v, s, d, p, sp, dp in fl]
        got, ds, outs = pools(self, frames)
        self.assertEqual(got, [BASE6_ID] * len(fl))
        for (v, s, d, p, sp, dp), f, dec, o in zip(fl, frames, ds, outs):
            self.check_rewrite6(f, o, dec)
            if p == "icmp":
                proto, sp, dp = 58, 0, 0
            else:
                proto = PROTO[p]
            key = gg.flow_key6(v, gg.PTF_TENANT, s, d, proto, sp, dp)
            crc, bucket = gg.bucket(key)
            self.assertEqual((dec["hash_key"], dec["crc"], dec["bucket"]), (key.hex(), crc, bucket))
        self.assertGreater(len({d["backend_id"] for d in ds}), 1, "30 flows all on one backend")


class CutoverVMv6(IPv6Test):
    """--vm 6001/fd00:1::5 moves one IPv6 VM of vip-6 to pool6-gray (its TCP,
    UDP and ICMPv6 flows, on one gray backend: the pool hashes [vni, src], key6
    masked so); its neighbour, the same address in another VNI and the IPv4
    VM 192.168.1.5 of the same VNI stay. The rule counts the moved frames;
    rollback --step puts the VM back."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vm", "6001/fd00:1::5", "--pool", GRAY6, "--vip", VIP6_NAME, "--name", "vm6-a")
        r0 = gg.counters("rule")
        moved = [gg.overlay6(6001, "fd00:1::5"), gg.overlay6(6001, "fd00:1::5", proto="udp", dport=53),
                 gg.overlay6(6001, "fd00:1::5", proto="icmp", sport=9, dport=0)]
        stay = [gg.overlay6(6001, "fd00:1::6"), gg.overlay6(6009, "fd00:1::5"), gg.overlay6(6001, "192.168.1.5", "192.168.1.1")]
        got, ds, outs = pools(self, moved + stay)
        self.assertEqual(got, [GRAY6_ID] * 3 + [BASE6_ID] * 3)
        self.assertEqual(len({d["backend_id"] for d in ds[:3]}), 1, "one VM on several gray backends")
        key = gg.masked(gg.flow_key6(6001, 0, "fd00:1::5"), ["vni", "src"])
        for d, f, o in zip(ds[:3], moved, outs):
            self.assertEqual((d["hash_key"], d["bucket"]), (key.hex(), gg.bucket(key)[1]))
            self.check_rewrite6(f, o, d)
        r1 = gg.counters("rule")
        self.assertEqual(r1["vm6-a"][0] - r0.get("vm6-a", (0, 0))[0], 3)
        gg.change("rollback", "--step")
        got, _, _ = pools(self, moved)
        self.assertEqual(got, [BASE6_ID] * 3, "rollback --step puts the VM back")


class CutoverPrefixV6(IPv6Test):
    """--prefix fd00:1::/120 in VNI 6001 moves that subnet's VMs only."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6001", "--prefix", "fd00:1::/120", "--pool", GRAY6, "--vip", VIP6_NAME)
        got, _, _ = pools(self, [gg.overlay6(6001, "fd00:1::5"), gg.overlay6(6001, "fd00:1::ff"),
                                 gg.overlay6(6001, "fd00:1::100"), gg.overlay6(6002, "fd00:1::5")])
        self.assertEqual(got, [GRAY6_ID, GRAY6_ID, BASE6_ID, BASE6_ID])


class CutoverFlowV6(IPv6Test):
    """--flow tcp/[fd00:1::5]:33001/[fd00:1::1]:22 moves exactly one IPv6
    5-tuple: the next source port, UDP and another destination stay."""

    @gg.autocleanup
    def runTest(self):
        gg.change("cutover", "--vni", "6001", "--flow", "tcp/[fd00:1::5]:33001/[fd00:1::1]:22", "--pool", GRAY6,
                  "--vip", VIP6_NAME)
        got, _, _ = pools(self, [gg.overlay6(6001, "fd00:1::5", "fd00:1::1", "tcp", 33001, 22),
                                 gg.overlay6(6001, "fd00:1::5", "fd00:1::1", "tcp", 33002, 22),
                                 gg.overlay6(6001, "fd00:1::5", "fd00:1::1", "udp", 33001, 22),
                                 gg.overlay6(6001, "fd00:1::5", "fd00:1::2", "tcp", 33001, 22)])
        self.assertEqual(got, [GRAY6_ID, BASE6_ID, BASE6_ID, BASE6_ID])


class SplitV6(IPv6Test):
    """--percent 50 of VNI 6004 on vip-6: an IPv6 VM is gray exactly when its
    split_hash6 (CRC32 of vni ++ the 16-byte source, computed here) is below
    the threshold."""

    @gg.autocleanup
    def runTest(self):
        vms = ["fd00:4::%x" % i for i in range(1, 41)]
        gg.change("cutover", "--vni", "6004", "--percent", "50", "--pool", GRAY6, "--vip", VIP6_NAME, "--name", "pct6")
        got, ds, _ = pools(self, [gg.overlay6(6004, vm) for vm in vms])
        self.assertEqual([d["split_hash"] for d in ds], [gg.split_hash6(6004, vm) for vm in vms])
        self.assertEqual(got, [GRAY6_ID if gg.split_hash6(6004, vm) < 32768 else BASE6_ID for vm in vms])
        self.assertTrue(0 < got.count(GRAY6_ID) < len(vms), "a 50%% split of %d VMs put %d gray" % (len(vms), got.count(GRAY6_ID)))


class IPv4FlowBehindIPv6VIP(IPv6Test):
    """VXLAN over IPv6 carrying inner IPv4: an IPv4 flow (the 18-byte key,
    gray_rules) served by vip-6's IPv6-underlay pools; --vm 6001/192.168.1.5
    on vip-6 moves it."""

    @gg.autocleanup
    def runTest(self):
        f = gg.overlay6(6001, "192.168.1.5", "192.168.1.1", "tcp", 40000, 80)
        ds, outs = self.check_batch([f])
        d, o = ds[0], outs[0]
        self.assertEqual((d["pool_base"], d["ipv6"]), (BASE6_ID, False))
        key = gg.flow_key(6001, gg.PTF_TENANT, "192.168.1.5", "192.168.1.1", 6, 40000, 80)
        self.assertEqual((d["hash_key"], d["bucket"]), (key.hex(), gg.bucket(key)[1]))
        self.check_rewrite6(f, o, d)
        gg.change("cutover", "--vm", "6001/192.168.1.5", "--pool", GRAY6, "--vip", VIP6_NAME)
        got, _, _ = pools(self, [f, gg.overlay6(6001, "192.168.1.6", "192.168.1.1")])
        self.assertEqual(got, [GRAY6_ID, BASE6_ID])


class IPv6FlowBehindIPv4VIP(gg.GatewayTest):
    """VXLAN over IPv4 carrying inner IPv6 to vip-1: an IPv6 flow (key6,
    gray_rules_v6) served by the IPv4 pools; --vm 6001/fd00:1::5 on vip-1
    moves it to pool-2; the IPv4 VM of the same VNI stays."""

    @gg.autocleanup
    def runTest(self):
        f = gg.overlay6(6001, "fd00:1::5", vip=gg.VIP1)
        (d,) = self.check_batch([f])[0]
        self.assertEqual((d["pool_base"], d["ipv6"]), (gg.BASE_POOL, True))
        key = gg.flow_key6(6001, gg.PTF_TENANT, "fd00:1::5", "fd00:1::1", 6, 40000, 80)
        self.assertEqual((d["hash_key"], d["bucket"]), (key.hex(), gg.bucket(key)[1]))
        gg.change("cutover", "--vm", "6001/fd00:1::5", "--pool", "pool-2", "--vip", "vip-1")
        got, _, _ = pools(self, [f, gg.overlay6(6001, "fd00:1::6", vip=gg.VIP1), gg.overlay(6001, "192.168.1.5")])
        self.assertEqual(got, [gg.GRAY_POOL, gg.BASE_POOL, gg.BASE_POOL])


class TaggedIPv6(IPv6Test):
    """802.1Q on IPv6: port 1 accepts VID 100 and port 3 tags with VID 300 (the
    intent's ports): a tagged IPv6 frame to vip-6 is served with the tag
    stripped towards port 1/2's backends and with VID 300 on port 3; a VID
    port 1 does not accept is dropped, VLAN_NOT_ACCEPTED."""

    @gg.autocleanup
    def runTest(self):
        def vlans(doc):
            ports = doc["gateways"][0]["ports"]
            ports[1]["vlan"] = {"accept": [100]}
            ports[3]["vlan"] = {"tag": 300}
        gg.edit(vlans, name="vlan6")
        gg.change("cutover", "--vm", "6001/fd00:1::7", "--pool", GRAY6, "--vip", VIP6_NAME)

        def tagged(f, vid):
            e = Ether(bytes(f))
            return Ether(src=e.src, dst=e.dst) / Dot1Q(vlan=vid) / e.payload
        frames = [tagged(gg.overlay6(6001, "fd00:1::5"), 100), tagged(gg.overlay6(6001, "fd00:1::7"), 100),
                  gg.overlay6(6001, "fd00:1::7")]
        got, ds, outs = pools(self, frames)
        self.assertEqual(got, [BASE6_ID, GRAY6_ID, GRAY6_ID])
        self.assertNotEqual(bytes(outs[0])[12:14], b"\x81\x00", "towards an untagged port the tag is stripped")
        for o in outs[1:]:
            self.assertEqual(Ether(bytes(o))[Dot1Q].vlan, 300, "port 3 tags with VID 300")
        f = bytes(tagged(gg.overlay6(6001, "fd00:1::5"), 101))
        d = gg.expect([f])[0]
        self.assertEqual(d["reason"], "VLAN_NOT_ACCEPTED")
        with self.counted("VLAN_NOT_ACCEPTED", len(f)):
            self.check_decision(f, d)


# -- drop reasons ---------------------------------------------------------------

OUTER6 = Ether(src=gg.SRC_MAC, dst=gg.PORT_MAC[1])


def vxlan6_head(vip=gg.VIP6):
    outer = IPv6(src=gg.HV6, dst=vip) if ":" in vip else IP(src=gg.HV, dst=vip)
    return OUTER6 / outer / UDP(sport=49152, dport=4789) / VXLAN(vni=6060, flags=0x08) / Ether(src=gg.VM_MAC, dst=gg.ROUTER_MAC)


class IPv6NotVIP(gg.DropTest):
    """IPv6 to an address that is no IPv6 VIP (even an IPv4-mapped VIP, or
    broken further in): not for us (XDP: to the kernel)."""
    reason = "NOT_VIP"
    frames = [OUTER6 / IPv6(src=gg.HV6, dst="fd00:ff::2") / UDP(sport=1, dport=2),
              OUTER6 / IPv6(src=gg.HV6, dst="::ffff:10.255.0.1") / UDP(sport=1, dport=2),
              OUTER6 / IPv6(src=gg.HV6, dst="fd00:ff::2") / IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2)]


class IPv6Truncated(gg.DropTest):
    """Fewer than 40 bytes of IPv6 header, before the VIP lookup."""
    reason = "IPV6_TRUNCATED"
    frames = [gg.cut(OUTER6 / IPv6(dst=gg.VIP6), 14 + 20), gg.cut(OUTER6 / IPv6(dst=gg.VIP6), 14 + 39)]


class IPv6Malformed(gg.DropTest):
    """To vip-6 with a version nibble other than 6."""
    reason = "IPV6_MALFORMED"
    frames = [OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6, version=4) / UDP(sport=1, dport=2),
              OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6, version=7) / UDP(sport=1, dport=4789)]


class IPv6Extension(gg.DropTest):
    """To vip-6 behind an outer extension header: hop-by-hop, routing,
    fragment, AH, destination options (not supported on the outer header)."""
    reason = "IPV6_EXTENSION"
    frames = [OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6) / ext / UDP(sport=1, dport=4789) / Raw(b"x" * 8)
              for ext in (IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(), IPv6ExtHdrFragment(m=1),
                          AH(nh=17, payloadlen=4, spi=1, seq=1, icv=b"\x00" * 12), IPv6ExtHdrDestOpt())]


class L4TruncatedV6(gg.DropTest):
    """To vip-6: TCP shorter than 20 bytes, UDP shorter than 8, ICMPv6
    shorter than 4."""
    reason = "L4_TRUNCATED"
    frames = [gg.cut(OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6) / TCP(sport=1, dport=80), 14 + 40 + 12),
              gg.cut(OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6) / UDP(sport=1, dport=4789), 14 + 40 + 5),
              gg.cut(OUTER6 / IPv6(src=gg.HV6, dst=gg.VIP6) / ICMPv6EchoRequest(), 14 + 40 + 3)]


class InnerIPv6Malformed(gg.DropTest):
    """Inner IPv6 whose version is not 6, over both outer families."""
    reason = "INNER_IPV6_MALFORMED"
    frames = [vxlan6_head() / IPv6(src="fd00:60::5", dst="fd00:60::1", version=5) / UDP(sport=1, dport=2),
              vxlan6_head(gg.VIP1) / IPv6(src="fd00:60::5", dst="fd00:60::1", version=4) / UDP(sport=1, dport=2)]


class InnerIPv6Extension(gg.DropTest):
    """Inner IPv6 with a hop-by-hop, routing, AH or destination options header
    (never passed on with ports 0, so a port rule cannot silently miss it)."""
    reason = "INNER_IPV6_EXTENSION"
    frames = [vxlan6_head(vip) / IPv6(src="fd00:60::5", dst="fd00:60::1") / ext / TCP(sport=1, dport=22)
              for vip, ext in ((gg.VIP6, IPv6ExtHdrHopByHop()), (gg.VIP6, IPv6ExtHdrRouting()),
                               (gg.VIP1, AH(nh=6, payloadlen=4, spi=1, seq=1, icv=b"\x00" * 12)),
                               (gg.VIP1, IPv6ExtHdrDestOpt()))]


class InnerIPv6Truncated(gg.DropTest):
    """Inner IPv6 header, fragment header or ports cut short."""
    reason = "INNER_TRUNCATED"
    _head = len(bytes(vxlan6_head()))
    _full = vxlan6_head() / IPv6(src="fd00:60::5", dst="fd00:60::1") / TCP(sport=1, dport=2)
    _frag = vxlan6_head() / IPv6(src="fd00:60::5", dst="fd00:60::1") / IPv6ExtHdrFragment(nh=6) / TCP(sport=1, dport=2)
    frames = [gg.cut(_full, _head + 30), gg.cut(_full, _head + 40 + 3), gg.cut(_frag, _head + 40 + 5)]


class HopLimitExpired(gg.DropTest):
    """Outer hop limit 1 and 0 to vip-6, overlay and plain."""
    reason = "TTL_EXPIRED"
    frames = [gg.overlay6(6060, "fd00:60::5", hlim=1), gg.plain6("fd00:60::5", hlim=0)]
