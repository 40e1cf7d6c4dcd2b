#!/usr/bin/env bash
# test.sh: the README's test command. Installs what it needs, then runs every test:
# go vet, the Go unit, fuzz-seed, BPF (BPF_PROG_TEST_RUN) and namespace end-to-end
# tests, and the PTF suite where present. Needs root (namespaces, XDP).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"

echo "== go vet"
go vet ./...
echo "== go test"
# -p 1: the namespace tests attach XDP and create links; run packages one at a time.
go test -count=1 -p 1 -timeout 15m ./...
if [ -x ptf-tests/run.sh ]; then
	echo "== PTF"
	ptf-tests/run.sh
fi
