#!/usr/bin/env bash
# test.sh: the README's test command (CI runs it through .ci/run). Installs what it
# needs, then runs every test:
#   1. the P4 compile, once per run (scripts/p4c.sh: v1model with p4test and
#      p4c-bm2-ss, the P4Info checked against the committed one, and TNA with
#      bf-p4c); everything below reuses build/p4/;
#   2. go vet, and the Go unit, fuzz-seed, BPF (BPF_PROG_TEST_RUN) and namespace
#      end-to-end tests, with GRAYGW_BMV2_JSON set to the compiled program (the
#      controller e2e tests and the differential test run BMv2 with it);
#   3. the PTF suite (ptf-tests/run.sh) against the XDP agent, then against BMv2;
#   4. the mininet lab's smoke check (topo/mininet/smoke.sh, about 10 s each) on
#      XDP, then on BMv2 (it skips, saying so, when mininet cannot be installed).
# Without a P4 toolchain (scripts/p4tools.sh finds none) every P4 part is skipped
# with one line. Needs root (namespaces, XDP). Exits non-zero when any part
# failed, after running the parts that do not depend on it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
eval "$(bash scripts/deps.sh)"
# PATH, $P4TOOLS or the bundle beside the clone; one line on stderr when none.
eval "$(bash scripts/p4tools.sh)"

failed=()
p4=ok
echo "== P4 compile"
if ! command -v p4c-bm2-ss >/dev/null 2>&1; then
	p4=absent
	echo "test.sh: P4 skipped: no P4 toolchain (scripts/p4tools.sh found no p4c-bm2-ss); no P4 compile, no BMv2 PTF or mininet (docs/p4-targets.md says how to get it)"
elif ! bash scripts/p4c.sh; then
	p4=failed
	failed+=("P4 compile (scripts/p4c.sh)")
fi
if [ "$p4" = ok ] && [ -f build/p4/graygw.json ]; then
	export GRAYGW_BMV2_JSON=$PWD/build/p4/graygw.json
fi
bmv2=yes
if [ "$p4" != ok ]; then
	bmv2=no
elif ! command -v simple_switch_grpc >/dev/null 2>&1; then
	bmv2=no
	echo "test.sh: BMv2 skipped: simple_switch_grpc is not installed (the P4 compile ran); no BMv2 PTF or mininet"
fi
echo "== P4: $(($(date +%s) - start))s so far"

echo "== go vet"
go vet ./... || failed+=("go vet")
echo "== go test"
# -p 1: the namespace tests attach XDP and create links; run packages one at a time.
go test -count=1 -p 1 -timeout 15m ./... || failed+=("go test")
echo "== go: $(($(date +%s) - start))s so far"

if [ -x ptf-tests/run.sh ]; then
	echo "== PTF on XDP"
	TARGET=xdp ptf-tests/run.sh || failed+=("PTF on XDP (ptf-tests/run.sh)")
	if [ "$bmv2" = yes ]; then
		echo "== PTF on BMv2"
		TARGET=bmv2 ptf-tests/run.sh || failed+=("PTF on BMv2 (TARGET=bmv2 ptf-tests/run.sh)")
	elif [ "$p4" = failed ]; then
		echo "test.sh: PTF and mininet on BMv2 not run: the P4 compile failed (above)"
	fi
fi
if [ -x topo/mininet/smoke.sh ]; then
	echo "== mininet smoke on XDP"
	topo/mininet/smoke.sh --target xdp || failed+=("mininet smoke on XDP (topo/mininet/smoke.sh)")
	if [ "$bmv2" = yes ]; then
		echo "== mininet smoke on BMv2"
		topo/mininet/smoke.sh --target bmv2 || failed+=("mininet smoke on BMv2 (topo/mininet/smoke.sh --target bmv2)")
	fi
fi
echo "== $(($(date +%s) - start))s in all"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "test.sh: all passed"
