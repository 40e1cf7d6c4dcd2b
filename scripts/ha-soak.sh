#!/usr/bin/env bash
# ha-soak.sh: the long variant of the HA failover tests (docs/ha.md), for the
# figures published there; CI runs each once. Needs root, etcd and BIRD 2
# (scripts/deps.sh installs them).
#   ROUNDS (default 10): how many times each failover test runs (and how many
#   elections the BGP continuity test goes through, alternating the leader).
# Prints each test's measured lines; the full log goes to $LOG
# (default build/ha-soak.log). Takes about ROUNDS x 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
rounds=${ROUNDS:-10}
log=${LOG:-build/ha-soak.log}
mkdir -p "$(dirname "$log")"
: >"$log"
status=0
GRAYGW_HA_BGP_ROUNDS=$rounds go test -count=1 -v -timeout 60m -run 'TestBGPContinuityAcrossAnElection' ./cmd/graygw-speaker >>"$log" 2>&1 || status=1
go test -count="$rounds" -v -timeout 120m -run 'TestHAFailoverUnderTraffic|TestHAEtcdTroubleUnderTraffic|TestHARolloutSurvivesLeaderKill|TestHAControllersSpeakingBGP' \
	./cmd/graygw-controller >>"$log" 2>&1 || status=1
grep -E '^(--- |ok|FAIL)|ha_lab_test.go|ha_failover_lab_test.go|ha_bgp_lab_test.go:88' "$log" | grep -v 'running step' || true
[ $status -eq 0 ] && echo "ha-soak: all passed ($rounds rounds); log: $log" || echo "ha-soak: FAILED; log: $log" >&2
exit $status
