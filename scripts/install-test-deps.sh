#!/usr/bin/env bash
# install-test-deps.sh installs the tools the tests run when any is missing:
#
#   sipp         (Debian sip-tester)  SIP/RTP traffic for the e2e tests
#   tshark                            loopback capture of the RTP cloak sends
#   sox, espeak-ng                    prompt generation (scripts/gen-prompts.sh)
#   lame                              the archive's MP3 downloads (package mp3),
#                                     also a runtime requirement of serve
#   multimon-ng                       independent DTMF decoding
#   kamailio                          the proxy in front of cloak (e2e TestKamailio*)
#   kamailio-tls-modules              its tls module: the front door's TLS
#                                     listener (e2e TestDeployFrontDoorTLS)
#   baresip      (Debian baresip-core) a real softphone: RTCP e2e tests
#   curl, ss (iproute2), python3      the CI soak (bench/ci-soak.sh)
#   postgresql                        initdb/pg_ctl for the archive's PostgreSQL
#                                     tests (a throwaway cluster per test run)
#   prometheus, promtool (prometheus) a real scraper of /metrics, and its linter
#                                     (e2e TestPrometheusScrapesCalls, metrics/)
#   systemd-analyze (systemd)         checks deploy/systemd/cloak.service
#                                     (e2e TestDeploySystemdUnitVerifies)
#   chromium                          headless browser for the web console's
#                                     tests (e2e TestConsole*, via chromedp)
#
# It is idempotent and does nothing (quickly) when every tool is present.
# apt-get runs noninteractively; tshark's debconf question (may non-root
# users capture?) is preseeded to "no" so it cannot block.
set -euo pipefail

declare -A pkg=(
	[sipp]=sip-tester
	[tshark]=tshark
	[sox]=sox
	[lame]=lame
	[espeak-ng]=espeak-ng
	[multimon-ng]=multimon-ng
	[kamailio]=kamailio
	[baresip]=baresip-core
	[curl]=curl
	[ss]=iproute2
	[python3]=python3
	[prometheus]=prometheus
	[promtool]=prometheus
	[systemd-analyze]=systemd
	[chromium]=chromium
)

tools=("${!pkg[@]}")
missing=()
for tool in "${tools[@]}"; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg[$tool]}")
done
# Debian keeps initdb off PATH, under /usr/lib/postgresql/VERSION/bin.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1; then
	tools+=(initdb)
	missing+=(postgresql)
fi
# Kamailio's tls module is a package of its own.
if ! compgen -G '/usr/lib/*/kamailio/modules/tls.so' >/dev/null; then
	tools+=(kamailio-tls)
	missing+=(kamailio-tls-modules)
fi
if ((${#missing[@]} == 0)); then
	echo "install-test-deps: all present (${tools[*]})"
	exit 0
fi

. "$(dirname "$0")/apt.sh"
apt_setup install-test-deps "${missing[@]}"
# tshark's debconf question (may non-root users capture?) is answered first.
echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
apt_install "${missing[@]}"
