#!/usr/bin/env bash
# xdp-ab.sh: interleaved A/B of two revisions of graygw's XDP program, each beside
# Katran in the same ../shared/xdpbench process, over the 10,000-rule state each
# revision pins for itself (`xdpbench -pin`). Per alternation and path: the old
# revision's run, then the new one's; each prints graygw's and Katran's net ns and
# their ratio. What counts is the ratio's change within an alternation (the same
# minute of a shared machine), not the ns. Prints markdown.
# usage (root, from the repository): scripts/xdp-ab.sh OLD_REV [NEW_REV] [ALTERNATIONS] [ROUNDS]
# NEW_REV defaults to the working tree; XDPBENCH=DIR: the harness (default ../shared/xdpbench).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
OLD=${1:?usage: scripts/xdp-ab.sh OLD_REV [NEW_REV] [ALTERNATIONS] [ROUNDS]}
NEW=${2:-}
ALTS=${3:-3}
ROUNDS=${4:-7}
HARNESS=${XDPBENCH:-$(cd .. && pwd)/shared/xdpbench}
KATRAN=$HARNESS/katran/balancer.o
[ -f "$KATRAN" ] || { echo "xdp-ab: no Katran object at $KATRAN" >&2; exit 2; }
work=$(mktemp -d /tmp/xab.XXXX)
pins=/sys/fs/bpf/xab-$$
trees=()
cleanup() {
	rm -rf "$pins-old" "$pins-new"
	for t in "${trees[@]}"; do git worktree remove --force "$t" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT
(cd "$HARNESS" && go build -o "$work/harness" .)
# side REV NAME: the revision's object and the state its xdpbench pins.
side() {
	local tree=.
	if [ -n "$1" ]; then
		tree=$work/tree-$2
		git worktree add --detach "$tree" "$1" >/dev/null 2>&1
		trees+=("$tree")
	fi
	(cd "$tree" && go build -o "$work/xdpbench-$2" ./bpf/cmd/xdpbench)
	cp "$tree/bpf/graygw_bpfel.o" "$work/$2.o"
	mkdir -p "$work/frames-$2"
	"$work/xdpbench-$2" -pin "$pins-$2" -frames "$work/frames-$2" > "$work/paths-$2"
}
side "$OLD" old
side "$NEW" new

echo "| alternation | path | old: graygw / Katran net ns | old ratio | new: graygw / Katran net ns | new ratio | load |"
echo "|---:|---|---:|---:|---:|---:|---:|"
net() { awk -v who="$1" '$1 == who { for (i = 1; i <= NF; i++) if ($i ~ /^net_ns/) { split($i, a, "="); print a[2] } }' "$2"; }
for a in $(seq "$ALTS"); do
	while read -r name expect label; do
		row="| $a | $label"
		for v in old new; do
			"$work/harness" -katran "$KATRAN" -katran-syn=false -obj "$work/$v.o" -prog graygw_xdp \
				-pin-path "$pins-$v" -pkt "$work/frames-$v/$name.hex" -expect "$expect" -name graygw \
				-runs "$ROUNDS" > "$work/$v.out"
			g=$(net graygw "$work/$v.out")
			k=$(net katran "$work/$v.out")
			row="$row | $g / $k | $(awk -v g="$g" -v k="$k" 'BEGIN { printf "%.3f", g / k }')"
		done
		echo "$row | $(cut -d' ' -f1 /proc/loadavg) |"
	done < "$work/paths-new"
done
