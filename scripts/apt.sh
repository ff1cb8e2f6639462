# apt.sh is sourced by the install-*-deps.sh scripts: the part of "install
# what is missing from Debian" that they share. It is not run on its own.
#
#   apt_setup NAME PKG...  checks that packages can be installed here (root
#                          or sudo, apt-get), fails naming NAME and PKGs when
#                          not, and runs apt-get update once
#   apt_install PKG...     installs noninteractively, keeping existing
#                          config files, without recommended packages
#   as_root CMD...         runs CMD as root (sudo -n when not root)

apt_sudo=()

as_root() { "${apt_sudo[@]}" "$@"; }

apt_setup() {
	local name=$1
	shift
	if ((EUID != 0)); then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "$name: need root or sudo to install: $*" >&2
			exit 1
		fi
		apt_sudo=(sudo -n)
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "$name: no apt-get; install by hand: $*" >&2
		exit 1
	fi
	echo "$name: installing $*"
	as_root apt-get update -q
}

apt_install() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
