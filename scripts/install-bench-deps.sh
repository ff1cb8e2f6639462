#!/usr/bin/env bash
# install-bench-deps.sh installs what bench/run needs beyond Go when any of
# it is missing, from Debian:
#
#   sipp        (sip-tester)          the call-setup ladders
#   rtpengine   (rtpengine-daemon)    the anchor relay, userspace only
#   matplotlib  (python3-matplotlib)  the plot
#   ss          (iproute2)            the soak's socket counts
#   perf        (linux-perf)          the profiles; optional: it may not
#                                     match a VM's kernel, and bench/run
#                                     runs without profiles when it is missing
#
# It is idempotent and does nothing (quickly) when everything is present;
# bench/run calls it first, so a fresh machine needs no step of its own.
# Needs root or sudo and apt-get to install.
set -euo pipefail

have() {
	case $1 in
	# bench/run plots with Debian's python (/usr/bin/python3), which a
	# pyenv or venv python3 earlier in PATH would not see.
	matplotlib) /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

declare -A pkg=(
	[sipp]=sip-tester
	[rtpengine]=rtpengine-daemon
	[matplotlib]=python3-matplotlib
	[ss]=iproute2
)
missing=()
for tool in "${!pkg[@]}"; do
	have "$tool" || missing+=("${pkg[$tool]}")
done
optional=()
have perf || optional+=(linux-perf)
if ((${#missing[@]} + ${#optional[@]} == 0)); then
	echo "install-bench-deps: all present (${!pkg[*]} perf)"
	exit 0
fi

. "$(dirname "$0")/apt.sh"
apt_setup install-bench-deps "${missing[@]}" "${optional[@]}"
if ((${#missing[@]} > 0)); then
	apt_install "${missing[@]}"
fi
if ((${#optional[@]} > 0)); then
	apt_install "${optional[@]}" ||
		echo "install-bench-deps: linux-perf not installed; bench/run skips the profiles" >&2
fi

# The Debian package may start a daemon with kernel forwarding; the bench
# runs its own userspace instance on loopback, so stop the service.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rtpengine-daemon 2>/dev/null; then
	as_root systemctl stop rtpengine-daemon
fi
