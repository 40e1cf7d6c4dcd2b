#!/usr/bin/env bash
# agent.sh (run by scripts/bench.sh, or alone): the P4Runtime agent's write and
# read benchmarks, Memory dataplane (the baseline) then XDP (root), raw output
# with the commands and the machine into bench/agent.txt. bench/agent.md reads
# them (XDP / Memory ratios); nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || eval "$(bash scripts/deps.sh)"
{
	echo "# $(date -u +%Y-%m-%d) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);" \
		"$(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# go test -run '^\$' -bench . -benchtime 3s ./agent/server"
	go test -run '^$' -bench . -benchtime 3s ./agent/server
	echo "# go test -run '^\$' -bench . -benchtime 3s ./agent/xdp   (root)"
	go test -run '^$' -bench . -benchtime 3s ./agent/xdp
} 2>&1 | tee bench/agent.txt
