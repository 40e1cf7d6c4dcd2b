#!/usr/bin/env python3
"""Check that the Tofino build hashes exactly as the contract says.

    tofino_hash_check.py OUTDIR VECTORS [VECTORS6]

OUTDIR is bf-p4c's output directory for p4src/tna (build/p4/tna), VECTORS the
shared test vectors (testvectors/pipeline.json), VECTORS6 the IPv6 ones
(testvectors/ipv6.json; the IPv6 hashes are checked when the build has them). Exits 0 when every check holds,
1 naming the first that fails, 2 on bad input.

There is no Tofino here to send a packet through, so this reads what the
compiler configured the hash units with and evaluates it independently:

  1. pipe/context.json, dynamic_hash_calculations: each hash's algorithm (the
     parameters the driver programs the Galois matrix from) must be CRC-32
     IEEE 802.3 (polynomial 0x04C11DB7, reflected, init and xor-out
     0xFFFFFFFF) and its field list the contract's fields, in order.
  2. pipe/graygw_tna.bfa, the assembler's input: every crc_rev(...) of a hash
     places its fields (or slices of them) at bit offsets of one message. The
     offsets, read back, must give the contract's layout: the fields in order,
     most significant first, contiguous (the 18-byte bucket key, the 7-byte
     split key; IPv6: the 42-byte key6, whose four hashes, an address left out
     as 128 zero bits or not, share one layout, and the 19-byte split key).
     The hash group's seed (where the assembler folds the CRC's init) must
     equal the CRC of an all-zero message.
  3. A bitwise CRC written here from those parameters alone (not zlib), over
     the message the layout builds, must give every vector's bucket (low 12
     bits, over its hash_key) and split hash (low 16 bits, over vni ++ src of
     its frame), and agree with zlib.crc32 on 20,000 random keys.

What stays unverified: the Galois matrix the assembler derives from these
parameters (tofino.bin) and the silicon. docs/p4-targets.md, "Hash parity".
"""

import json
import random
import re
import sys
import zlib

CONTRACT = {
    "bucket": ["meta.hash_key.vni", "meta.hash_key.tenant", "meta.hash_key.src",
               "meta.hash_key.dst", "meta.hash_key.proto", "meta.hash_key.sport",
               "meta.hash_key.dport"],
}
BUCKET6 = ["meta.hash_key.vni", "meta.hash_key.tenant", "meta.flow6.src", "meta.flow6.dst",
           "meta.hash_key.proto", "meta.hash_key.sport", "meta.hash_key.dport"]
WIDTH = {"vni": 24, "tenant": 16, "src": 32, "dst": 32, "proto": 8, "sport": 16,
         "dport": 16, "src_addr": 32}
# IPv6 fields, by their full name (a 128-bit field sits in four 32-bit
# containers, named FIELD.0-31 ... FIELD.96-127 in the .bfa).
WIDTH128 = {"meta.flow6.src", "meta.flow6.dst", "hdr.inner_ipv6.src_addr", "hdr.ipv6.src_addr"}
IEEE = {"poly": 0x04C11DB7, "init": 0xFFFFFFFF, "final_xor": 0xFFFFFFFF}


def fail(msg):
    print("tofino_hash_check: FAIL: " + msg)
    sys.exit(1)


def reflect(v, n):
    return int(format(v, "0%db" % n)[::-1], 2)


def crc32(poly, init, final_xor, data):
    """Reflected CRC-32, bit by bit, from its parameters."""
    rpoly = reflect(poly, 32)
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (rpoly if crc & 1 else 0)
    return crc ^ final_xor


def base(name):
    """meta.hash_key.tenant.0-7 -> meta.hash_key.tenant; hdr.ipv4.src_addr(0..23) -> hdr.ipv4.src_addr."""
    name = re.sub(r"\(\d+\.\.\d+\)$", "", name)
    return re.sub(r"\.\d+-\d+$", "", name)


def piece_bits(name):
    """The field bits a piece covers, (lo, hi) inclusive, or None for the whole
    field: a container slice FIELD.LO-HI, a bit range of it (A..B, relative to
    the slice), or both."""
    m = re.search(r"\.(\d+)-(\d+)(\((\d+)\.\.(\d+)\))?$", name)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if m.group(3):
            return lo + int(m.group(4)), lo + int(m.group(5))
        return lo, hi
    m = re.search(r"\((\d+)\.\.(\d+)\)$", name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def field_width(name):
    if base(name) in WIDTH128:
        return 128
    return WIDTH[base(name).rsplit(".", 1)[1]]


def bfa_layouts(bfa):
    """Every CRC message in the .bfa: width -> (params, {offset: piece}), seeds by group."""
    layouts = []
    for m in re.finditer(r"crc_rev\((0x[0-9a-f]+), (0x[0-9a-f]+), (0x[0-9a-f]+), (\d+), \{([^}]*)\}", bfa):
        # The polynomial in Koopman form: 0x82608edb = 0x104c11db7 >> 1.
        koopman, init, fin, width = (int(m.group(i), 0) for i in range(1, 5))
        pieces = {}
        for p in m.group(5).split(","):
            if p.strip():
                off, name = p.split(":", 1)
                pieces[int(off)] = name.strip()
        layouts.append((((koopman << 1 | 1) & 0xFFFFFFFF, init, fin, width), pieces))
    return layouts


def message_order(pieces, width):
    """Reads a message layout back into [(field, width)], most significant first,
    checking that the pieces tile the message with each field contiguous."""
    bits = [None] * width  # bits[i] = (field, field bit) at message bit i (0 = LSB)
    for off, name in pieces:
        f = base(name)
        lo, hi = piece_bits(name) or (0, field_width(name) - 1)
        for b in range(lo, hi + 1):
            i = off + (b - lo)
            # Two terms may feed the same bit, with the same field bit
            # (one message over several input-crossbar groups).
            if i >= width or bits[i] not in (None, (f, b)):
                fail("piece %s at %d overlaps or overflows a %d-bit message" % (name, off, width))
            bits[i] = (f, b)
    if None in bits:
        fail("message bit %d is not fed by any field" % bits.index(None))
    order, i = [], width - 1
    while i >= 0:
        f, b = bits[i]
        w = field_width(f)
        if b != w - 1:
            fail("%s does not start at its most significant bit at message bit %d" % (f, i))
        for k in range(w):
            if bits[i - k] != (f, w - 1 - k):
                fail("%s is not contiguous in the message" % f)
        order.append((f, w))
        i -= w
    return order


def split_key6(f):
    """vni(3) ++ src(16) of an IPv6 flow's frame: inner IPv6 in VXLAN over
    either outer family, or plain IPv6 (VNI 0)."""
    if f[12:14] == b"\x81\x00":
        f = f[:12] + f[16:]
    et = f[12:14]
    if et == b"\x86\xdd":
        l4, proto = 14 + 40, f[14 + 6]
    else:
        l4, proto = 14 + 20, f[14 + 9]
    if proto == 17 and int.from_bytes(f[l4 + 2:l4 + 4], "big") == 4789:
        vx = l4 + 8
        inner = vx + 8 + 14
        return f[vx + 4:vx + 7] + f[inner + 8:inner + 24]
    return bytes(3) + f[14 + 8:14 + 24]


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        sys.exit(2)
    out, vectors = sys.argv[1], sys.argv[2]
    try:
        ctx = json.load(open(out + "/pipe/context.json"))
        bfa = open(out + "/pipe/graygw_tna.bfa").read()
        vec = json.load(open(vectors))
        vec6 = json.load(open(sys.argv[3])) if len(sys.argv) == 4 else None
    except (OSError, ValueError) as e:
        print("tofino_hash_check: %s" % e)
        sys.exit(2)

    # 1. The algorithm and field list of each hash, as the driver sees them.
    hashes = {d["name"]: d for d in ctx["dynamic_hash_calculations"]}
    want = {
        "GrayIngress.bucket_hasher.configure": CONTRACT["bucket"],
        "GrayIngress.split_overlay_hasher.configure": ["meta.flow.vni", "hdr.inner_ipv4.src_addr"],
        "GrayIngress.split_plain_hasher.configure": ["meta.flow.vni", "hdr.ipv4.src_addr"],
    }
    # IPv6 (issue 19): key6 whole, without src, without dst, without either
    # (a pool mask of 0 leaves the address out: 128 zero bits), and the split
    # hash over vni ++ src(128).
    z = lambda i: "constant%d_128_128w0" % i
    want6 = {
        "GrayIngress.bucket6_hasher.configure": BUCKET6,
        "GrayIngress.bucket6_nosrc_hasher.configure": BUCKET6[:2] + [z(0), BUCKET6[3]] + BUCKET6[4:],
        "GrayIngress.bucket6_nodst_hasher.configure": BUCKET6[:3] + [z(0)] + BUCKET6[4:],
        "GrayIngress.bucket6_noaddr_hasher.configure": BUCKET6[:2] + [z(0), z(1)] + BUCKET6[4:],
        "GrayIngress.split_overlay6_hasher.configure": ["meta.flow.vni", "hdr.inner_ipv6.src_addr"],
        "GrayIngress.split_plain6_hasher.configure": ["meta.flow.vni", "hdr.ipv6.src_addr"],
    }
    ipv6 = any(n in hashes for n in want6)
    if ipv6:
        want.update(want6)
    # Exactly these: the mirror reuses them (its sampling is the split hash,
    # its copy's bucket the bucket hash), so a new hash must be added here.
    if sorted(hashes) != sorted(want):
        fail("context.json hashes %s, want exactly %s" % (sorted(hashes), sorted(want)))
    for name, fields in want.items():
        d = hashes.get(name)
        if d is None:
            fail("context.json has no hash %s" % name)
        algo = [a for a in d["algorithms"] if a.get("is_default")]
        if len(algo) != 1:
            fail("%s: %d default algorithms" % (name, len(algo)))
        a = algo[0]
        got = {"poly": int(a["poly"], 16) & 0xFFFFFFFF, "init": int(a["init"], 16),
               "final_xor": int(a["final_xor"], 16)}
        if a["type"] != "crc" or not a["reverse"] or got != IEEE:
            fail("%s: algorithm %s, want CRC-32 IEEE (reflected 0x04C11DB7, init/xor-out 0xFFFFFFFF)" % (name, a))
        fl = [f["name"] for f in d["field_lists"][0]["fields"]]
        if fl != fields:
            fail("%s: field list %s, want %s" % (name, fl, fields))
    print("context.json: %d hashes are CRC-32 IEEE over the contract's fields, in order" % len(want))

    # 2. The message layouts and seeds the assembler gets.
    layouts = bfa_layouts(bfa)
    by_msg = {}
    for params, pieces in layouts:
        if params[:3] != (IEEE["poly"], IEEE["init"], IEEE["final_xor"]):
            fail("crc_rev with parameters %s" % (params,))
        by_msg.setdefault(tuple(sorted({base(p) for p in pieces.values()})), []).append((params[3], pieces))
    def layout_of(fields, bits):
        # A hash is spread over several crc_rev terms (one per input-crossbar
        # group): every term of its width over these fields only is part of
        # its message (key6's fields include the IPv4 key's but for the
        # addresses: the width tells them apart).
        parts = [x for k, v in by_msg.items() if set(k) <= set(fields) for x in v if x[0] == bits]
        width = {w for w, _ in parts}
        if len(width) != 1:
            fail("no single message for %s in the .bfa" % fields)
        merged = []
        for _, pieces in parts:
            merged.extend(pieces.items())
        return width.pop(), merged
    def check_order(fields, bits, widths=False):
        # The message's fields, most significant first, must be fields (with
        # widths: each at its full width too).
        width, pieces = layout_of(fields, bits)
        order = message_order(pieces, width)
        got, want = ((order, [(f, field_width(f)) for f in fields]) if widths else
                     ([f for f, _ in order], fields))
        if got != want:
            fail("the .bfa lays out %s, want %s" % (got, want))
    for fields, bits in [(CONTRACT["bucket"], 144), (["meta.flow.vni", "hdr.inner_ipv4.src_addr"], 56),
                         (["meta.flow.vni", "hdr.ipv4.src_addr"], 56)]:
        check_order(fields, bits)
    print(".bfa: the bucket key is vni|tenant|src|dst|proto|sport|dport (144 bits), "
          "the split key vni|src (56 bits), most significant first")
    if ipv6:
        # The four key6 hashes share one 336-bit layout (the constants are
        # the absent bits of the three others); key6 itself covers it all.
        check_order(BUCKET6, 336, widths=True)
        for fields in [["meta.flow.vni", "hdr.inner_ipv6.src_addr"], ["meta.flow.vni", "hdr.ipv6.src_addr"]]:
            check_order(fields, 152)
        print(".bfa: key6 is vni|tenant|src|dst|proto|sport|dport (336 bits), "
              "the split key vni|src (152 bits), most significant first")
    crc = lambda data: crc32(IEEE["poly"], IEEE["init"], IEEE["final_xor"], data)
    seeds = {int(s, 16) for s in re.findall(r"seed: (0x[0-9a-f]+)", bfa)}

    def check_seeds(key_len, split_len, what):
        # The bucket hash keeps the low 12 bits, the split hash the low 16
        # (in either half of its group).
        zk, zs = crc(bytes(key_len)) & 0xFFF, crc(bytes(split_len)) & 0xFFFF
        if zk not in seeds:
            fail("no hash group seed %#x (the CRC of %d zero bytes, low 12 bits)" % (zk, key_len))
        if zs not in seeds and zs << 16 not in seeds:
            fail("no hash group seed %#x (the CRC of %d zero bytes, low 16 bits)" % (zs, split_len))
        print(".bfa: seeds %#x and %#x are the CRC of an all-zero %s" % (zk, zs, what))
    check_seeds(18, 7, "key")
    if ipv6:
        check_seeds(42, 19, "key6 and split key6")

    # 3. The vectors and random keys.
    def check_cases(cases, split_key):
        # Checks every case's bucket and, where split_key gives one, its
        # split hash; returns how many of each it checked.
        nb = ns = 0
        for c in cases:
            e = c["expect"]
            if e.get("hash_key"):
                key = bytes.fromhex(e["hash_key"])
                if crc(key) & 0xFFF != e["bucket"]:
                    fail("%s: bucket %d from the compiler's hash, vector says %d" % (c["name"], crc(key) & 0xFFF, e["bucket"]))
                nb += 1
            k = split_key(c)
            if k is not None:
                if crc(k) & 0xFFFF != e["split_hash"]:
                    fail("%s: split hash %#x from the compiler's hash, vector says %#x" % (c["name"], crc(k) & 0xFFFF, e["split_hash"]))
                ns += 1
        return nb, ns

    def split_key4(c):
        if not c["expect"].get("split_hash"):
            return None
        f = bytes.fromhex(c["packet"])
        if f[12:14] == b"\x81\x00":  # an 802.1Q tag: the key is the untagged frame's
            f = f[:12] + f[16:]
        if f[23] == 17 and int.from_bytes(f[36:38], "big") == 4789:
            return f[46:49] + f[50 + 14 + 12:50 + 14 + 16]   # vni, inner src
        return bytes(3) + f[26:30]                          # 0, outer src

    def split_key6_of(c):
        e = c["expect"]
        return split_key6(bytes.fromhex(c["packet"])) if e.get("split_hash") and e.get("ipv6") else None

    nb, ns = check_cases(vec["cases"], split_key4)
    if nb == 0 or ns == 0:
        fail("the vectors have %d bucket and %d split cases; expected some of each" % (nb, ns))
    nb6 = ns6 = 0
    if ipv6 and vec6 is not None:
        nb6, ns6 = check_cases(vec6["cases"], split_key6_of)
        if nb6 == 0 or ns6 == 0:
            fail("the IPv6 vectors have %d bucket and %d split cases; expected some of each" % (nb6, ns6))
    rnd = random.Random(1)
    for _ in range(20000):
        key = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((7, 18, 19, 42))))
        if crc(key) != zlib.crc32(key):
            fail("the bitwise CRC disagrees with zlib on %s" % key.hex())
    print("vectors: %d buckets and %d split hashes equal (IPv6: %d and %d); 20000 random keys equal zlib.crc32" % (nb, ns, nb6, ns6))
    print("tofino_hash_check: OK")


if __name__ == "__main__":
    main()
