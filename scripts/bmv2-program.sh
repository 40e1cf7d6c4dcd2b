#!/usr/bin/env bash
# bmv2-program.sh: make sure build/p4/graygw.json, the v1model program BMv2 runs,
# exists and is newer than every file of p4src/; compile it when not (v1model
# only: P4C_TNA=0 scripts/p4c.sh, which also checks the P4Info). A fresh one is
# reused, so scripts/test.sh compiles once per run and the PTF suite and the
# mininet smoke on BMv2 run what it compiled.
#
# Run after `eval "$(bash scripts/p4tools.sh)"`. Exit status: 0 the program is
# up to date (reused or compiled); 1 the compile failed or the P4Info drifted;
# 2 it is missing or stale and p4c-bm2-ss is not installed (one line says so).
set -euo pipefail
cd "$(dirname "$0")/.."
json=build/p4/graygw.json
if [ -f "$json" ] && [ -z "$(find p4src -newer "$json" -print -quit)" ]; then
	echo "bmv2-program: reusing $json (newer than p4src/)"
	exit 0
fi
if ! command -v p4c-bm2-ss >/dev/null 2>&1; then
	echo "bmv2-program: $json is missing or older than p4src/, and p4c-bm2-ss is not installed to compile it (docs/p4-targets.md)"
	exit 2
fi
echo "bmv2-program: $json is missing or older than p4src/: compiling the v1model program (P4C_TNA=0 scripts/p4c.sh)"
P4C_TNA=0 P4_OUT="$PWD/build/p4" bash scripts/p4c.sh || {
	echo "bmv2-program: scripts/p4c.sh failed: the v1model program does not compile or its P4Info drifted" >&2
	exit 1
}
