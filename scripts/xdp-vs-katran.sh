#!/usr/bin/env bash
# xdp-vs-katran.sh: graygw's XDP program beside Katran's balancer, in one harness and
# one run per path (../shared/xdpbench, BPF_PROG_TEST_RUN through its frame-restoring
# wrapper), over the 10,000-rule state in six masks; then throughput through native
# XDP on a veth pair for both. Prints markdown (bench/xdp.md's Katran sections).
# usage (root, from the repository): scripts/xdp-vs-katran.sh [RUNS] [VETH_FRAMES]
# XDPBENCH=DIR: the harness (default ../shared/xdpbench, with katran/balancer.o).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
HARNESS=${XDPBENCH:-$(cd .. && pwd)/shared/xdpbench}
RUNS=${1:-15}
VETH=${2:-300000}
KATRAN=$HARNESS/katran/balancer.o
[ -f "$KATRAN" ] || { echo "xdp-vs-katran: no Katran object at $KATRAN" >&2; exit 2; }
work=$(mktemp -d /tmp/xvk.XXXX)
pins=/sys/fs/bpf/xvk-$$
holder=
cleanup() {
	if [ -n "$holder" ]; then kill -CONT "$holder" 2>/dev/null || true; kill "$holder" 2>/dev/null || true; fi
	rm -rf "$pins" "$work"
}
trap cleanup EXIT
(cd "$HARNESS" && go build -o "$work/xdpbench" .)
go run ./bpf/cmd/xdpbench -pin "$pins" -frames "$work" > "$work/paths"

echo "## Side by side with Katran (10,000 gray rules in six masks)"
echo
echo "Made by \`scripts/xdp-vs-katran.sh $RUNS $VETH\` (root) on $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo),"
echo "kernel $(uname -r), $(nproc) CPUs shared with other work (load average $(cut -d' ' -f1 /proc/loadavg) at the start), $(date -u +%F)."
echo "One ../shared/xdpbench run per graygw path, each with Katran's connection-table hit path"
echo "(ACK of an established flow) in the same process and interleaved rounds; net ns = the"
echo "kernel's ns/packet minus the frame-restoring wrapper's (its floor line), and for Katran,"
echo "which changes the frame length, minus one bpf_xdp_adjust_head call. Spread: min and max"
echo "of $RUNS rounds, net the same way. graygw runs over the maps pinned by \`xdpbench -pin\` (every port the"
echo "loopback: XDP_TX, as Katran)."
echo
echo "| graygw path | graygw net ns (min-max) | Katran net ns (min-max) | graygw / Katran |"
echo "|---|---:|---:|---:|"
while read -r name expect label; do
	"$work/xdpbench" -katran "$KATRAN" -katran-syn=false -obj bpf/graygw_bpfel.o -prog graygw_xdp \
		-pin-path "$pins" -pkt "$work/$name.hex" -expect "$expect" -name graygw -runs "$RUNS" > "$work/$name.out"
	awk -v label="$label" '
		function field(line, key,   i, n, a) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (index(a[i], key "=") == 1) return substr(a[i], length(key) + 2); return "" }
		# min and max net of what the harness took off the median: the
		# wrapper floor, and for Katran (it changes the frame length) one
		# bpf_xdp_adjust_head call too.
		function spread(line,   s, off) { match(line, /[0-9.]+\/[0-9.]+\/[0-9.]+ over/); split(substr(line, RSTART, RLENGTH - 5), s, "/")
			off = field(line, "ns/pkt") - field(line, "net_ns/pkt"); return sprintf("%.0f-%.0f", s[1] - off, s[3] - off) }
		/^katran / { k = field($0, "net_ns/pkt"); ks = spread($0) }
		/^graygw / { g = field($0, "net_ns/pkt"); gs = spread($0) }
		END { printf "| %s | %.1f (%s) | %.1f (%s) | %.2f |\n", label, g, gs, k, ks, g / k }
	' "$work/$name.out"
done < "$work/paths"

echo
echo "## Throughput through native XDP on veth, graygw and Katran"
echo
# Katran's balancer, set up by the harness, held loaded (stopped) while it is attached.
"$work/xdpbench" -katran "$KATRAN" -katran-syn=false -runs 1000000 -repeat 1000 -dump-pkt "$work/katran.hex" > "$work/holder.log" 2>&1 &
holder=$!
for _ in $(seq 120); do grep -q '^katran ' "$work/holder.log" 2>/dev/null && break; sleep 0.5; done
kill -STOP "$holder"
id=$(bpftool -j prog show 2>/dev/null | python3 -c 'import json,sys; print(max(p["id"] for p in json.load(sys.stdin) if p.get("name") == "balancer_ingress"))')
go run ./bpf/cmd/xdpbench -veth "$VETH" -rounds 9 -veth-prog-id "$id" -veth-pkt "$work/katran.hex" \
	-veth-name "Katran, connection-table hit"
