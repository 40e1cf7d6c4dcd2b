#!/usr/bin/env bash
# xdp-profile.sh: where graygw's XDP time goes, from perf samples on the JIT image
# (bench/xdp.md's per-step table). For each path of the 10,000-rule state it runs
# ../shared/xdpbench on graygw alone, records the harness's CPU with perf, and has
# bpf/cmd/xdpprof attribute the samples taken in graygw_xdp to its C functions; the
# samples in the kernel's hash-map lookup code are counted beside them (none on the
# IPv4 paths since ABI 15: vip_index is an array; before, the vip lookup). Only the harness process's samples count. Prints a markdown table: per step, its share of the samples and
# that share of the path's net ns (measured by the same harness run).
# usage (root, from the repository): scripts/xdp-profile.sh [RUNS]
# XDPBENCH=DIR: the harness (default ../shared/xdpbench).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
HARNESS=${XDPBENCH:-$(cd .. && pwd)/shared/xdpbench}
RUNS=${1:-40}
work=$(mktemp -d /tmp/xprof.XXXX)
pins=/sys/fs/bpf/xprof-$$
trap 'rm -rf "$pins"; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
(cd "$HARNESS" && go build -o "$work/xdpbench" .)
go build -o "$work/xdpprof" ./bpf/cmd/xdpprof
go run ./bpf/cmd/xdpbench -pin "$pins" -frames "$work" > "$work/paths"
cpu=$(($(nproc) - 1))
grep -E "${PATHS:-.}" "$work/paths" > "$work/paths.sel"
while read -r name expect label; do
	# perf samples the harness's CPU in the middle of its run; xdpprof reads the JIT
	# line table while graygw_xdp is still loaded.
	"$work/xdpbench" -obj bpf/graygw_bpfel.o -prog graygw_xdp -pin-path "$pins" -pkt "$work/$name.hex" \
		-expect "$expect" -name graygw -runs "$RUNS" -cpu "$cpu" > "$work/$name.out" 2>&1 &
	bench=$!
	sleep 3
	perf record -q -C "$cpu" -e cpu-clock -F 20000 -o "$work/$name.data" -- sleep 8 > /dev/null 2>&1
	"$work/xdpprof" -perf "$work/$name.data" -src bpf -top 0 -pid "$bench" > "$work/$name.prof"
	wait "$bench"
	perf report -i "$work/$name.data" --pid "$bench" --sort sym --stdio -F overhead,sym 2>/dev/null |
		awk '/\] (htab_map_hash|lookup_nulls_elem_raw|__htab_map_lookup_elem|memcmp)$/ { gsub("%", "", $1); s += $1 } END { print s + 0 }' > "$work/$name.htab"
	perf report -i "$work/$name.data" --pid "$bench" --sort sym --stdio -F overhead,sym 2>/dev/null |
		awk '/_graygw_xdp$/ { gsub("%", "", $1); s += $1 } END { print s + 0 }' > "$work/$name.prog"
	echo "$name|$label|$(awk '/^graygw /{for(i=1;i<=NF;i++) if($i ~ /^net_ns/){split($i,a,"=");print a[2]}}' "$work/$name.out")" >> "$work/index"
done < "$work/paths.sel"
python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
steps = [  # step, the C functions (inlined) it is made of
    ("parse (outer Ethernet, 802.1Q tag, IPv4, L4; VXLAN, inner Ethernet/IPv4, ports)", {"parse", "parse_inner", "ports", "outer_ip"}),
    ("VIP: `vip_index` probe (vip_of; kernel's htab code, none on IPv4 since ABI 15)", {"vip_of", "@htab"}),
    ("graygw_xdp's own lines (the lookup call and its return, checks, glue)", {"graygw_xdp"}),
    ("802.1Q: vlan_accepted (tagged only), port_tag, tag_frame", {"vlan_accepted", "port_tag", "tag_frame", "out_tci"}),
    ("tenant: tenant_dir, tenant_pages", {"tenant_of"}),
    ("gray rules: mask walk, tss_bit, filter, rule_index/rule_cells", {"best_rule", "tss_bit", "find_rule", "select_pool", "split_hash"}),
    ("bucket hash (CRC32 of the pool's fields)", {"bucket_of", "flow_crc16_out", "flow_crc16"}),
    ("select: pool_slot, select_cells, backend_cells", {"lookup_backend", "backend_at"}),
    ("rewrite: MACs, daddr, TTL, IPv4 and L4 checksums", {"rewrite", "rewrite_at", "ipv4_csum", "ipv4_forward", "csum_fold_", "csum_update32", "csum_update32_be"}),
    ("counters: vip, rule, backend (lookup + packets/bytes)", {"count", "verdict"}),
]
paths = [l.rstrip("\n").split("|") for l in open(os.path.join(work, "index"))]
cols = {}
for name, label, net in paths:
    prog = float(open(os.path.join(work, name + ".prog")).read())
    htab = float(open(os.path.join(work, name + ".htab")).read())
    share = {}
    for l in open(os.path.join(work, name + ".prof")):
        if l.startswith("#") or "%" not in l:
            continue
        pct, fn = l.split("%", 1)
        share[fn.strip()] = share.get(fn.strip(), 0) + float(pct) * prog / (prog + htab)
    share["@htab"] = 100 * htab / (prog + htab)
    cols[name] = (share, float(net or 0))
print("| step | " + " | ".join(l for _, l, _ in paths) + " |")
print("|---|" + "---:|" * len(paths))
for step, fns in steps:
    row = []
    for name, _, _ in paths:
        share, net = cols[name]
        s = sum(v for k, v in share.items() if k in fns)
        row.append("%.0f%% (%.1f ns)" % (s, s * net / 100))
    print("| " + step + " | " + " | ".join(row) + " |")
known = set().union(*[f for _, f in steps])
row = []
for name, _, _ in paths:
    share, net = cols[name]
    s = sum(v for k, v in share.items() if k not in known)
    row.append("%.0f%% (%.1f ns)" % (s, s * net / 100))
print("| other (lines outside a function) | " + " | ".join(row) + " |")
print("| **net ns of the run** | " + " | ".join("**%.1f**" % cols[n][1] for n, _, _ in paths) + " |")
PY
