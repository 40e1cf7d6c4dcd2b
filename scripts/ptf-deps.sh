#!/usr/bin/env bash
# ptf-deps.sh: what the PTF suite (ptf-tests/) and the mininet topology
# (topo/mininet/) need on Debian 12, as root, on top of scripts/deps.sh: a few
# Debian packages, and PTF from PyPI in a venv made from Debian's python3 with
# its system packages (scapy, mininet, netifaces and yaml come from apt; Debian
# refuses pip into the system python). Idempotent and quiet when all is there.
# Prints the venv's path as an export line: eval "$(bash scripts/ptf-deps.sh)".
set -euo pipefail

PTF_VERSION=${PTF_VERSION:-0.12.0}
VENV=${GRAYGW_VENV:-/opt/graygw-venv}
# python3-netifaces from apt: PyPI has no wheel of netifaces for Python 3.11, and
# building it would need a C compiler and python3-dev.
APT_PKGS=(python3 python3-venv python3-pip python3-scapy python3-netifaces python3-yaml
          iproute2 ethtool util-linux mininet bird2 iputils-ping)

log() { printf 'ptf-deps: %s\n' "$*" >&2; }

source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
need_root "apt-get, /opt"
# No recommends: mininet recommends Open vSwitch, which the topology does not use.
apt_install "${APT_PKGS[@]}"

ptf_ok() {
	[ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/ptf" ] &&
		"$VENV/bin/python" - "$PTF_VERSION" <<-'EOF' 2>/dev/null
		import importlib.metadata, sys
		import scapy, ptf  # scapy from Debian, through --system-site-packages
		sys.exit(importlib.metadata.version("ptf") != sys.argv[1])
		EOF
}
if ! ptf_ok; then
	log "installing ptf==$PTF_VERSION from PyPI into $VENV"
	rm -rf "$VENV"
	/usr/bin/python3 -m venv --system-site-packages "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check --no-input "ptf==$PTF_VERSION"
	ptf_ok || { log "ptf install into $VENV failed"; exit 1; }
fi
echo "export GRAYGW_VENV=\"$VENV\""
