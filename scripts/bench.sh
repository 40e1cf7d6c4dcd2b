#!/usr/bin/env bash
# bench.sh (make bench): run graygw's benchmarks and write their results, each with
# the command that produced it, under bench/. Needs root for the XDP benchmark.
# Figures are ratios against a baseline measured in the same process; nothing here
# asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
mkdir -p bench

echo "== XDP per-packet cost (bench/xdp.md)"
go run ./bpf/cmd/xdpbench -o bench/xdp.md
if [ -f ../shared/xdpbench/katran/balancer.o ]; then
	echo "== XDP beside Katran (appended to bench/xdp.md)"
	{ echo; bash scripts/xdp-vs-katran.sh; } >> bench/xdp.md
else
	echo "== XDP beside Katran: skipped (no ../shared/xdpbench/katran/balancer.o)"
fi

echo "== Maglev build (bench/maglev.txt)"
{
	echo "# go test ./controller/maglev -run '^\$' -bench . -benchtime 200x"
	go test ./controller/maglev -run '^$' -bench . -benchtime 200x
} | tee bench/maglev.txt

for extra in scripts/bench.d/*.sh; do
	[ -e "$extra" ] || continue
	echo "== $extra"
	bash "$extra"
done
