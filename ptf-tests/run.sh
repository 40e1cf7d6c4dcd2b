#!/usr/bin/env bash
# run.sh: graygw's PTF dataplane suite, end to end, in two network namespaces.
#
#   PTF namespace (ptf, scapy)        gateway namespace
#     ptf1 ────────veth──────────── p1 ┐ graygw-agent: XDP on p1 p2 p3, P4Runtime
#     ptf2 ────────veth──────────── p2 ├ on 127.0.0.1:9559 (TARGET=bmv2:
#     ptf3 ────────veth──────────── p3 ┘ simple_switch_grpc on the same ports)
#                                        graygw-controller: API on a unix socket,
#                                        seeded with the vectors' basic state
#
# PTF port N is gateway port N. The tests program the gateway through the
# controller (the graygw CLI), and the "table-level" group through P4Runtime
# directly (docs/testing.md).
#
# Usage, as root, from anywhere in a clone:
#   ptf-tests/run.sh                  # the whole suite against the XDP agent
#   ptf-tests/run.sh vip drops        # PTF test specs: modules (groups) or module.Class
#   TARGET=bmv2 ptf-tests/run.sh      # against BMv2 (simple_switch_grpc); compiles
#                                     # build/p4/graygw.json when missing or stale;
#                                     # skipped (exit 0) without the P4 toolchain
#
# It installs what it needs (scripts/deps.sh, scripts/ptf-deps.sh), builds the
# Go binaries into build/bin, removes everything it started (by PID) and every
# namespace it created on exit, failure or Ctrl-C included, and exits non-zero
# when a test fails. Logs: build/ptf-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${TARGET:-xdp}

say() { printf 'ptf-tests: %s\n' "$*"; }
die() { printf 'ptf-tests: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: network namespaces, XDP and raw sockets need it"
case "$TARGET" in
xdp) ;;
bmv2)
	# PATH, $P4TOOLS, or the bundle beside the clone (scripts/p4tools.sh).
	eval "$(bash scripts/p4tools.sh)"
	if ! command -v simple_switch_grpc >/dev/null 2>&1; then
		say "SKIP: TARGET=bmv2 needs simple_switch_grpc (BMv2 with P4Runtime), which is not installed (docs/p4-targets.md); nothing run"
		exit 0
	fi
	# The v1model program, compiled when missing or older than p4src/, reused
	# otherwise (scripts/test.sh compiles once per run, before this).
	prc=0
	bash scripts/bmv2-program.sh || prc=$?
	case $prc in
	0) ;;
	2) say "SKIP: TARGET=bmv2 needs build/p4/graygw.json up to date with p4src/ (above); nothing run"; exit 0 ;;
	*) die "TARGET=bmv2: the v1model program does not compile (above)" ;;
	esac
	;;
*) die "TARGET must be xdp or bmv2, not $TARGET" ;;
esac

start=$(date +%s)
eval "$(bash scripts/deps.sh)"
eval "$(bash scripts/ptf-deps.sh)"
say "building the Go binaries into build/bin"
go build -o build/bin/ ./cmd/graygw ./cmd/graygw-agent ./cmd/graygw-controller ./ptf-tests/ptfctl

ID=gptf$$
NS_PTF=$ID-ptf
NS_GW=$ID-gw
PINS=/sys/fs/bpf/$ID
WORK=$(mktemp -d /tmp/graygw-ptf.XXXXXX)
LOGS=$ROOT/build/ptf-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
PIDS=()
NSS=()
SUMMARY=""

cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	# Newest first: the controller before the gateway it drives.
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	# The agent pins its maps and XDP links; deleting the namespaces deletes the
	# links' interfaces, removing the pins frees the rest.
	rm -rf "$PINS"
	for ((i = ${#NSS[@]} - 1; i >= 0; i--)); do
		ip netns del "${NSS[i]}" 2>/dev/null || true
	done
	cp -a "$WORK"/*.yaml "$WORK"/*.json "$LOGS"/ 2>/dev/null || true
	rm -rf "$WORK"
	say "cleaned up (logs in build/ptf-logs/); $(($(date +%s) - start))s in all"
	# PTF's summary as one line, last.
	[ -z "$SUMMARY" ] || echo "$SUMMARY"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in_gw() { nsenter --net="/run/netns/$NS_GW" -- "$@"; }
# A daemon in the gateway namespace, in the background: exec, so that $! is the
# daemon itself and cleanup's signal reaches it. (nsenter, not ip netns exec,
# which remounts /sys and would hide /sys/fs/bpf from the agent.)
start_in_gw() { exec nsenter --net="/run/netns/$NS_GW" -- "$@"; }

say "namespaces $NS_PTF and $NS_GW, veth pairs ptfN <-> pN"
for ns in "$NS_PTF" "$NS_GW"; do
	ip netns add "$ns"
	NSS+=("$ns")
	# No IPv6: its neighbour discovery and MLD chatter would reach PTF's ports.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
done
# The gateway's kernel gets what XDP passes (not for us); it must not route it.
ip netns exec "$NS_GW" sysctl -qw net.ipv4.ip_forward=0
for n in 1 2 3; do
	ip link add "ptf$n" netns "$NS_PTF" type veth peer name "p$n" netns "$NS_GW"
	ip -n "$NS_GW" link set "p$n" address "02:00:00:00:0$n:0$n"
	ip -n "$NS_PTF" link set "ptf$n" up
	ip -n "$NS_GW" link set "p$n" up
done
# Frames the gateway sends into a veth with XDP_TX reach its peer at once only
# when the peer runs an XDP program (ptfctl xdp-pass says why).
ip netns exec "$NS_PTF" build/bin/ptfctl xdp-pass ptf1 ptf2 ptf3

P4RT=127.0.0.1:9559
case "$TARGET" in
xdp)
	say "starting graygw-agent (XDP) in $NS_GW"
	start_in_gw build/bin/graygw-agent --port 1=p1 --port 2=p2 --port 3=p3 --pin-dir "$PINS" \
		--state-dir "$WORK/agent" --addr "$P4RT" >"$LOGS/agent.log" 2>&1 &
	PIDS+=($!)
	DEVICE_CONFIG=""
	;;
bmv2)
	say "starting simple_switch_grpc (no program; the controller pushes it) in $NS_GW"
	start_in_gw simple_switch_grpc --no-p4 --device-id 1 -i 1@p1 -i 2@p2 -i 3@p3 --log-file "$LOGS/bmv2" \
		-- --grpc-server-addr "$P4RT" >"$LOGS/bmv2.out" 2>&1 &
	PIDS+=($!)
	DEVICE_CONFIG="device_configs: {gw1: $ROOT/build/p4/graygw.json}"
	;;
esac
for i in $(seq 100); do
	in_gw bash -c "exec 3<>/dev/tcp/${P4RT%:*}/${P4RT#*:}" 2>/dev/null && break
	kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$LOGS"/agent.log "$LOGS"/bmv2.out 2>/dev/null; die "the gateway exited"; }
	[ "$i" = 100 ] && die "the gateway does not listen on $P4RT after 10s"
	sleep 0.1
done

build/bin/ptfctl intent -vectors testvectors/pipeline.json -state basic -p4runtime "$P4RT" \
	-iface 1=p1,2=p2,3=p3 -o "$WORK/baseline.yaml" -cases "$WORK/cases.json"
# The mirror state's intent, applied by vectors.py for its cases.
build/bin/ptfctl intent -vectors testvectors/pipeline.json -state mirror -p4runtime "$P4RT" \
	-iface 1=p1,2=p2,3=p3 -o "$WORK/intent-mirror.yaml" -cases "$WORK/cases-mirror.json"
# The vlan state's intent (ports with 802.1Q configuration), the same way.
build/bin/ptfctl intent -vectors testvectors/pipeline.json -state vlan -p4runtime "$P4RT" \
	-iface 1=p1,2=p2,3=p3 -o "$WORK/intent-vlan.yaml" -cases "$WORK/cases-vlan.json"
SOCK=$WORK/controller.sock
cat >"$WORK/controller.yaml" <<EOF
store: $WORK/controller.db
intent: $WORK/baseline.yaml
election_id: 10
interval: 30s
listen: {unix: $SOCK}
log: {level: info, format: text}
p4runtime: {$DEVICE_CONFIG}
EOF
say "starting graygw-controller in $NS_GW, seeded with the vectors' basic state"
start_in_gw build/bin/graygw-controller --config "$WORK/controller.yaml" >"$LOGS/controller.log" 2>&1 &
PIDS+=($!)
for i in $(seq 300); do
	if build/bin/graygw --controller "unix://$SOCK" --timeout 2s status -o json 2>/dev/null |
		"$GRAYGW_VENV/bin/python" -c 'import json,sys; g=json.load(sys.stdin)["gateways"]; sys.exit(not (g and all(x["in_sync"] and x["primary"] for x in g)))' 2>/dev/null; then
		break
	fi
	kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$LOGS/controller.log"; die "the controller exited"; }
	[ "$i" = 300 ] && { tail -20 "$LOGS/controller.log"; die "the gateway is not in sync after 30s"; }
	sleep 0.1
done
say "gateway in sync with the baseline intent after $(($(date +%s) - start))s"

params="target='$TARGET';bin='$ROOT/build/bin';controller='unix://$SOCK';gw_ns='$NS_GW';p4rt='$P4RT'"
params+=";vectors='$ROOT/testvectors/pipeline.json';vectors6='$ROOT/testvectors/ipv6.json';cases='$WORK/cases.json';work='$WORK'"
# PTF in the background (ip netns exec execs it: $! is PTF) so that a signal to
# this script is handled at once; its output is followed on the terminal.
ip netns exec "$NS_PTF" "$GRAYGW_VENV/bin/ptf" --test-dir "$ROOT/ptf-tests/tests" \
	--interface 1@ptf1 --interface 2@ptf2 --interface 3@ptf3 \
	--test-params "$params" --log-file "$LOGS/ptf.log" --test-case-timeout 300 "$@" >"$LOGS/ptf.out" 2>&1 &
PIDS+=($!)
tail -n +1 -f --pid="${PIDS[-1]}" "$LOGS/ptf.out" &
TAIL=$!
rc=0
wait "${PIDS[-1]}" || rc=$?
wait "$TAIL" 2>/dev/null || true

# PTF's summary is unittest's; say it as one line too (cleanup prints it last).
SUMMARY=$("$GRAYGW_VENV/bin/python" - "$LOGS/ptf.out" <<'EOF' || true
import re, sys
text = open(sys.argv[1], errors="replace").read()
ran = re.search(r"^Ran (\d+) tests? in ", text, re.M)
if ran:
    n = int(ran.group(1))
    counts = {k: int(v) for k, v in re.findall(r"(failures|errors|skipped|expected failures|unexpected successes)=(\d+)", text.split(ran.group(0))[-1])}
    failed = counts.get("failures", 0) + counts.get("errors", 0) + counts.get("unexpected successes", 0)
    skipped = counts.get("skipped", 0)
    print("ptf-tests: %d passed, %d failed, %d skipped" % (n - failed - skipped, failed, skipped))
EOF
)
[ "$rc" = 0 ] || say "FAILED (ptf exit $rc): see build/ptf-logs/"
exit "$rc"
