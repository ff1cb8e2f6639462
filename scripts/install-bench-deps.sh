#!/usr/bin/env bash
# install-bench-deps.sh: what bench/run needs beyond Go, from Debian:
# sipp (sip-tester), rtpengine's userspace daemon, matplotlib for the plot,
# perf for the profiles. Run as root; `apt-get update` first on a fresh box.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends sip-tester rtpengine-daemon python3-matplotlib iproute2
# perf is linux-perf on Debian; it may not match a VM's kernel, and the
# bench runs without profiles when it is missing.
apt-get install -y --no-install-recommends linux-perf || echo "install-bench-deps: linux-perf not installed; bench/run skips the profiles" >&2
# The Debian package starts a daemon with kernel forwarding; the bench runs
# its own userspace instance on loopback, so stop the service if it runs.
if command -v systemctl >/dev/null && systemctl is-active --quiet rtpengine-daemon 2>/dev/null; then
	systemctl stop rtpengine-daemon
fi
