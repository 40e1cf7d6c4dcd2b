#!/usr/bin/env bash
# demo.sh: the README's main job. Installs what it needs, builds graygw, and runs
# a gray-release gateway end to end in network namespaces it creates (and removes):
# BIRD learns the VIP from the controller's BGP speaker, VMs' VXLAN traffic flows
# through the XDP gateway, a rollout moves one VPC VM by VM with probes, and the
# counters show traffic moving from base to gray. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/deps.sh)"
go build -o bin/ ./cmd/...
exec ./bin/graygw-demo --bin bin "$@"
