#!/usr/bin/python3
"""Check the forwarded cases of ipv6.json without the Go model.

An independent reading of docs/pipeline.md (§1 flow fields, §6 key6 and
split_hash6, §8 the IPv6 rewrite), with scapy parsing the frames and zlib
computing CRC32: for every forwarded case, the flow fields scapy finds give
the expectation's hash key (masked as §6 says), CRC, bucket and backend; the
output frame carries the backend's MACs and underlay address, the hop limit
minus one, and an L4 checksum that scapy's own computation accepts when it
accepted the received one; nothing else changed. Prints one line per problem and exits 1 if any.

Usage: check_ipv6.py [ipv6.json]
"""

import ipaddress
import json
import struct
import sys
import zlib

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

problems = []


def fail(case, msg):
    problems.append(f"{case}: {msg}")


def flow_of(frame):
    """(family, outer6, vni, src, dst, proto, sport, dport) of a frame, per §1."""
    eth = Ether(frame)
    outer = eth[Dot1Q].payload if Dot1Q in eth else eth.payload
    outer6 = isinstance(outer, IPv6)
    l4 = outer.payload
    if isinstance(l4, UDP) and l4.dport == 4789:
        vx = VXLAN(bytes(l4.payload))
        inner = Ether(bytes(vx.payload)).payload
        vni = vx.vni
    else:
        inner, vni = outer, 0
    if isinstance(inner, IPv6):
        proto, nxt = inner.nh, inner.payload
        if isinstance(nxt, IPv6ExtHdrFragment):
            return 6, outer6, vni, inner.src, inner.dst, nxt.nh, 0, 0
        src, dst, fam = inner.src, inner.dst, 6
    else:
        proto, nxt = inner.proto, inner.payload
        src, dst, fam = inner.src, inner.dst, 4
        if inner.flags.MF or inner.frag:
            return fam, outer6, vni, src, dst, proto, 0, 0
    if proto in (6, 17):
        sport, dport = struct.unpack("!HH", bytes(nxt)[:4])
    else:
        sport = dport = 0
    return fam, outer6, vni, src, dst, proto, sport, dport


def addr_bytes(a):
    return ipaddress.ip_address(a).packed


def key_of(state, pool, vni, tenant, src, dst, proto, sport, dport, fam):
    """The masked hash key of §6 (key6 for an IPv6 flow)."""
    m = {"vni_mask": 0xFFFFFF, "tenant_mask": 0xFFFF, "src_mask": 0xFFFFFFFF, "dst_mask": 0xFFFFFFFF,
         "proto_mask": 0xFF, "sport_mask": 0xFFFF, "dport_mask": 0xFFFF}
    for ph in state["pool_hash"]:
        if ph["pool_id"] == pool:
            m = {k: ph.get(k, 0) for k in m}
    s, d = addr_bytes(src), addr_bytes(dst)
    if fam == 6:  # an address mask of 0 leaves it out, any other value keeps it whole
        s = s if m["src_mask"] else bytes(16)
        d = d if m["dst_mask"] else bytes(16)
    else:
        s = struct.pack("!I", struct.unpack("!I", s)[0] & m["src_mask"])
        d = struct.pack("!I", struct.unpack("!I", d)[0] & m["dst_mask"])
    return (struct.pack("!I", vni & m["vni_mask"])[1:] + struct.pack("!H", tenant & m["tenant_mask"]) + s + d
            + bytes([proto & m["proto_mask"]]) + struct.pack("!HH", sport & m["sport_mask"], dport & m["dport_mask"]))


def checksum_ok(pkt, layer, field="chksum"):
    """scapy's own checksum of the (first) layer equals the one in the frame."""
    got = getattr(pkt[layer], field)
    if layer is UDP and got == 0:
        return True
    clone = pkt.copy()
    delattr(clone[layer], field)
    return getattr(Ether(bytes(clone))[layer], field) == got


def check_case(state, case):
    name, e = case["name"], case["expect"]
    frame = bytes.fromhex(case["packet"])
    fam, outer6, vni, src, dst, proto, sport, dport = flow_of(frame)
    if e.get("ipv6", False) != (fam == 6):
        fail(name, f"flow family {fam}, expectation ipv6={e.get('ipv6', False)}")
    tenant = next((t["tenant_id"] for t in state["vni_tenant"] if t["vni"] == vni), 0)
    if e["tenant_id"] != tenant:
        fail(name, f"tenant {e['tenant_id']}, vni_tenant gives {tenant}")
    key = key_of(state, e["pool"], vni, tenant, src, dst, proto, sport, dport, fam)
    if key.hex() != e["hash_key"]:
        fail(name, f"hash key {e['hash_key']}, docs give {key.hex()}")
    crc = zlib.crc32(key)
    if crc != e["crc"] or crc & 4095 != e["bucket"]:
        fail(name, f"crc {e['crc']:#x} bucket {e['bucket']}, zlib gives {crc:#x} {crc & 4095}")
    fill = next(f["fill"] for f in state["backend_select"] if f["pool_id"] == e["pool"])
    be_id = fill[e["bucket"] % len(fill)]
    if be_id != e["backend_id"]:
        fail(name, f"backend {e['backend_id']}, the fill gives {be_id}")
    if e["split_hash"] and fam == 6:
        split = zlib.crc32(struct.pack("!I", vni)[1:] + addr_bytes(src)) & 0xFFFF
        if split != e["split_hash"]:
            fail(name, f"split_hash {e['split_hash']}, zlib gives {split}")
    be = next(b for b in state["backend"] if b["backend_id"] == be_id)

    out, inp = Ether(bytes.fromhex(e["packet"])), Ether(frame)
    if out.dst != be["dmac"] or out.src != be["smac"]:
        fail(name, f"MACs {out.dst} {out.src}, backend {be['dmac']} {be['smac']}")
    o_ip = out[Dot1Q].payload if Dot1Q in out else out.payload
    i_ip = inp[Dot1Q].payload if Dot1Q in inp else inp.payload
    if not outer6:
        return  # the IPv4 rewrite is the basic vectors' (and PTF rewrite.py's)
    if o_ip.dst != str(ipaddress.ip_address(be["underlay_ip"])) or o_ip.hlim != i_ip.hlim - 1:
        fail(name, f"outer dst {o_ip.dst} hlim {o_ip.hlim}, want {be['underlay_ip']} {i_ip.hlim - 1}")
    # A checksum valid on the way in (a cut frame's is not) is valid on the way out.
    for layer in (TCP, UDP):
        if isinstance(o_ip.payload, layer) and checksum_ok(inp, layer) and not checksum_ok(out, layer):
            fail(name, f"{layer.__name__} checksum {o_ip.payload.chksum:#06x} is not scapy's")
    if isinstance(o_ip.payload, UDP) and (i_ip.payload.chksum == 0) != (o_ip.payload.chksum == 0):
        fail(name, "a zero UDP checksum was filled in, or a non-zero one zeroed")
    if ICMPv6EchoRequest in out and not checksum_ok(out, ICMPv6EchoRequest, "cksum"):
        fail(name, "ICMPv6 checksum is not scapy's")
    # Bar the outer dst, hop limit and L4 checksum, the IP packet is unchanged.
    ob, ib = bytearray(bytes(o_ip)), bytearray(bytes(i_ip))
    for b in (ob, ib):
        b[7] = 0
        b[24:40] = bytes(16)
        off = {6: 40 + 16, 17: 40 + 6, 58: 40 + 2}.get(b[6])
        if off is not None and len(b) >= off + 2:
            b[off:off + 2] = b"\0\0"
    if ob != ib:
        fail(name, "the rewrite changed more than dst, hop limit and the L4 checksum")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "ipv6.json"
    with open(path) as f:
        vf = json.load(f)
    n = 0
    for case in vf["cases"]:
        if case["expect"]["verdict"] == "forward":
            check_case(vf["states"][case["state"]], case)
            n += 1
    for p in problems:
        print(p)
    print(f"{n} forwarded cases checked, {len(problems)} problems")
    sys.exit(1 if problems or n == 0 else 0)


if __name__ == "__main__":
    main()
