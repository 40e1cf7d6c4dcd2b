#!/usr/bin/env python3
"""xdp-ablate.py: where graygw's XDP time goes, by ablation (bench/xdp.md's cost table).

Builds variants of bpf/graygw.c that stop after each pipeline step (returning XDP_TX, with
every field computed so far folded into the return so the compiler keeps it), plus the whole
program without counters and with a fixed bucket hash, and times each with ../shared/xdpbench
over maps pinned by `go run ./bpf/cmd/xdpbench -pin PINS -frames FRAMES` (the 10,000-rule
state). Interleaved passes; prints the median net ns per variant. The difference between
consecutive cut points is the cost of the step between them.

usage (root, from the repository): scripts/xdp-ablate.py PINS FRAMES [FRAME_NAME] [PASSES]
XDPBENCH_BIN: the built harness (default: builds ../shared/xdpbench into FRAMES).
"""
import os
import re
import subprocess
import sys

pins, frames = sys.argv[1], sys.argv[2]
frame = sys.argv[3] if len(sys.argv) > 3 else "grayhit"
passes = int(sys.argv[4]) if len(sys.argv) > 4 else 3
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
harness = os.environ.get("XDPBENCH_BIN")
if not harness:
    harness = os.path.join(frames, "xdpbench")
    subprocess.run(["go", "build", "-o", harness, "."], check=True,
                   cwd=os.path.join(os.path.dirname(repo), "shared", "xdpbench"))

src = open(os.path.join(repo, "bpf", "graygw.c")).read()
use = ("(p.flow.src ^ p.flow.dst ^ p.flow.vni ^ p.flow.sport ^ p.flow.dport ^ p.flow.proto ^ "
       "p.outer_dst ^ p.ttl ^ p.flow.tenant %s) == 0x12345 ? XDP_DROP : XDP_TX")


def cut(after, extra=""):
    """Return src cut after the one line that starts with after."""
    lines = src.split("\n")
    at = [i for i, l in enumerate(lines) if l.startswith(after)]
    assert len(at) == 1, after
    return "\n".join(lines[:at[0] + 1] + ["\treturn " + (use % extra) + ";"] + lines[at[0] + 1:])


def sub(a, b):
    assert src.count(a) == 1, a
    return src.replace(a, b, 1)


variants = {
    "whole program": src,
    "cut after parse": sub("\t/* VIP first: a packet not for a VIP is not ours, however broken. */",
                           "\treturn " + (use % "") + ";\n"),
    "cut after vip (+ its counter)": cut("\tcount(&vip_counters, hit->slot, bytes);", "^ hit->vip_id ^ hit->default_pool"),
    "cut after tenant": cut("\tp.flow.tenant = tenant_of(p.flow.vni);", "^ hit->vip_id"),
    "cut after gray rules (+ rule counter)": cut("\tpool = select_pool(", "^ pool ^ r.action ^ r.slot ^ r.priority ^ r.threshold ^ r.mirror_pool ^ r.sample ^ r.mirror_id"),
    "cut after hash, select, backend": cut("\t\treturn verdict(DROP_NO_BACKEND, bytes);", "^ be->underlay_ip ^ be->port ^ be->slot"),
    "cut after backend counter, port": cut("\t\treturn verdict(DROP_PORT_DOWN, bytes);", "^ be->underlay_ip ^ *ifindex"),
    "whole, no counters": sub("\t\tc->packets++;\n\t\tc->bytes += bytes;\n", ""),
    "whole, bucket hash fixed": sub("return flow_crc16_out(f, word, POOL_HASH_SHIFT) & (BUCKETS - 1);",
                                    "return (f->src ^ f->vni) & (BUCKETS - 1);"),
}
if "\t\treturn verdict(DROP_VLAN_NOT_ACCEPTED, bytes);" in src:  # 802.1Q (ABI 11)
    variants["cut after 802.1Q accept"] = cut("\t\treturn verdict(DROP_VLAN_NOT_ACCEPTED, bytes);", "^ hit->vip_id")
objs = {}
for name, code in variants.items():
    tag = re.sub(r"[^a-z0-9]+", "_", name)
    c, o = os.path.join(frames, f"abl_{tag}.c"), os.path.join(frames, f"abl_{tag}.o")
    open(c, "w").write(code)
    subprocess.run(["clang", "-O2", "-g", "-Wall", "-target", "bpfel", "-idirafter", "/usr/include/x86_64-linux-gnu",
                    "-idirafter", "/usr/include/aarch64-linux-gnu", "-I" + os.path.join(repo, "bpf"), "-c", c, "-o", o],
                   check=True)
    objs[name] = o
res, refused = {}, {}
for _ in range(passes):
    for name, o in objs.items():
        if name in refused:
            continue
        p = subprocess.run([harness, "-obj", o, "-prog", "graygw_xdp", "-pin-path", pins,
                            "-pkt", os.path.join(frames, frame + ".hex"), "-expect", "XDP_TX", "-name", "v", "-runs", "7"],
                           capture_output=True, text=True)
        m = re.search(r"^v .*net_ns/pkt=([0-9.]+)", p.stdout, re.M)
        if not m:  # a cut can change what the verifier must explore past its limit
            refused[name] = (p.stdout + p.stderr).strip().splitlines()[-1][:160]
            continue
        res.setdefault(name, []).append(float(m.group(1)))
for name in objs:
    if name in refused:
        print(f"{name:40s}   n/a  ({refused[name]})")
        continue
    xs = sorted(res[name])
    print(f"{name:40s} {xs[len(xs) // 2]:6.1f}  (rounds' medians {xs})")
