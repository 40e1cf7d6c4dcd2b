#!/usr/bin/env bash
# test.sh: the README's test command (CI runs it through .ci/run). Installs what it
# needs, then runs every test: go vet, the Go unit, fuzz-seed, BPF
# (BPF_PROG_TEST_RUN) and namespace end-to-end tests, the PTF suite against the XDP
# agent (ptf-tests/run.sh) and the mininet lab's smoke check
# (topo/mininet/smoke.sh, about 10 s; it skips, saying so, when mininet cannot be
# installed). Needs root (namespaces, XDP). Exits non-zero when any part failed,
# after running the parts that do not depend on it.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"

echo "== go vet"
go vet ./...
echo "== go test"
# -p 1: the namespace tests attach XDP and create links; run packages one at a time.
go test -count=1 -p 1 -timeout 15m ./...

failed=()
if [ -x ptf-tests/run.sh ]; then
	echo "== PTF"
	ptf-tests/run.sh || failed+=("PTF (ptf-tests/run.sh)")
fi
if [ -x topo/mininet/smoke.sh ]; then
	echo "== mininet smoke"
	topo/mininet/smoke.sh || failed+=("mininet smoke (topo/mininet/smoke.sh)")
fi
if [ ${#failed[@]} -gt 0 ]; then
	printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "test.sh: all passed"
