#!/usr/bin/env bash
# deps.sh: install what graygw needs to build, run and test on Debian 12, as root.
# Idempotent and quiet when everything is already there. Go comes from the Go module
# proxy's toolchain module (Debian 12's golang is too old for go.mod).
set -euo pipefail

GO_VERSION=${GO_VERSION:-1.26.8}
GO_ROOT=/usr/local/graygw-go
APT_PKGS=(clang llvm libbpf-dev bpftool bird2 etcd-server iproute2 iputils-ping tcpdump ethtool
          python3 python3-pip python3-venv python3-scapy curl unzip make git ca-certificates)

log() { printf 'deps: %s\n' "$*" >&2; }

source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
need_root "apt-get, network namespaces and XDP need it"
apt_install "${APT_PKGS[@]}"

# prometheus and promtool, for deploy/'s tests (alerting rules, the dashboard
# against a real Prometheus). The package starts its service when it installs:
# a policy-rc.d that refuses service starts keeps it from doing so (a machine
# that has its own policy keeps it).
if ! command -v promtool >/dev/null 2>&1; then
	log "installing prometheus (promtool), its service not started"
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends prometheus >/dev/null || log "prometheus not installed: deploy/'s tests skip"
	[ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
fi

go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	local v
	v=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	[ "$(printf '%s\n%s\n' "$GO_VERSION" "$v" | sort -V | head -1)" = "$GO_VERSION" ]
}
if ! go_ok; then
	if [ -x "$GO_ROOT/bin/go" ]; then
		export PATH="$GO_ROOT/bin:$PATH"
	fi
fi
if ! go_ok; then
	log "installing Go $GO_VERSION from the Go module proxy into $GO_ROOT"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	curl -fsSL -o "$tmp/go.zip" \
		"https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go${GO_VERSION}.linux-amd64.zip"
	unzip -q "$tmp/go.zip" -d "$tmp"
	rm -rf "$GO_ROOT"
	mv "$tmp/golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-amd64" "$GO_ROOT"
	chmod +x "$GO_ROOT"/bin/* "$GO_ROOT"/pkg/tool/*/* 2>/dev/null || true
	export PATH="$GO_ROOT/bin:$PATH"
	go_ok || { log "Go install failed"; exit 1; }
fi

# bpffs for pinned maps.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
echo "export PATH=\"$(dirname "$(command -v go)"):\$PATH\""
