#!/usr/bin/env bash
# smoke.sh: the mininet topology's smoke check (graygw_topo.py --check), for CI:
# installs what it needs (scripts/deps.sh, scripts/ptf-deps.sh: mininet, bird2),
# builds the Go binaries into build/bin, runs the check bounded in time, and
# removes whatever a killed run left (graygw_topo.py --clean). Root only.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(bash scripts/deps.sh)"
bash scripts/ptf-deps.sh >/dev/null
go build -o build/bin/ ./cmd/graygw ./cmd/graygw-agent ./cmd/graygw-controller
trap '/usr/bin/python3 topo/mininet/graygw_topo.py --clean >/dev/null' EXIT
# The script tears down on SIGTERM; SIGKILL 15s later if it does not.
timeout --kill-after=15 300 /usr/bin/python3 topo/mininet/graygw_topo.py --check "$@"
