# apt.sh: sourced by the install scripts (deps.sh, ptf-deps.sh), which define
# log() first.

# need_root WHY: exit 1, saying WHY root is needed, unless running as root.
need_root() {
	if [ "$(id -u)" != 0 ]; then
		log "run as root ($1)"
		exit 1
	fi
}

# apt_install PKG...: install, quietly and without recommends, the Debian
# packages among PKG that are not installed yet; nothing when all are.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}
