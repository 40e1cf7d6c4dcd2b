#!/usr/bin/env bash
# p4tools.sh: find the P4 toolchain (p4c with its BMv2 and Tofino backends, BMv2's
# simple_switch_grpc) and print the `export` lines that put it on PATH, for
#
#   eval "$(bash scripts/p4tools.sh)"
#
# Where it looks, in order:
#   1. PATH (p4lang's packages, a source build installed system-wide);
#   2. $P4TOOLS/bin (a source build or an unpacked bundle under a prefix of yours);
#   3. a prebuilt bundle next to the clone, ../shared/p4tools/install.sh (this
#      project's build machines carry one; it unpacks into /opt/p4tools, as root).
# When none of them has p4c-bm2-ss it says so in one line on stderr, prints nothing,
# and exits 0: callers check `command -v` and skip their P4 part with their own line.
# It never fails the caller's script. Versions tested: docs/p4-targets.md.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'p4tools: %s\n' "$*" >&2; }

found() {
	# $1: a bin directory holding the tools, or "" when PATH already has them.
	if [ -n "$1" ]; then
		echo "export PATH=\"$1:\$PATH\""
		echo "export P4TOOLS=\"$(dirname "$1")\""
	fi
	exit 0
}

command -v p4c-bm2-ss >/dev/null 2>&1 && found ""
if [ -n "${P4TOOLS:-}" ] && [ -x "$P4TOOLS/bin/p4c-bm2-ss" ]; then
	found "$P4TOOLS/bin"
fi
[ -x /opt/p4tools/bin/p4c-bm2-ss ] && found /opt/p4tools/bin

bundle="$ROOT/../shared/p4tools/install.sh"
if [ -f "$bundle" ] && [ "$(id -u)" = 0 ]; then
	log "installing the prebuilt bundle from $(cd "$(dirname "$bundle")" && pwd) into /opt/p4tools"
	if out=$(bash "$bundle" 2>/dev/null) && [ -x /opt/p4tools/bin/p4c-bm2-ss ]; then
		echo "$out" | grep '^export '
		exit 0
	fi
	log "the bundle did not install; see its README.md"
fi
log "no P4 toolchain (p4c-bm2-ss not on PATH nor under \$P4TOOLS): P4 compiles and BMv2 runs are skipped; docs/p4-targets.md says how to get p4c and BMv2"
exit 0
