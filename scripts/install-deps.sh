#!/bin/sh
# Install the Debian packages relflip needs, by purpose:
#
#   scripts/install-deps.sh [--list] [all|build|runtime]
#
#   build    compile relflip and make deb: the compiler and the -dev packages
#   runtime  run a relflip built elsewhere (a CI cache): the shared libraries
#            it links, by their Debian 12 names, which are make deb's Depends;
#            on Ubuntu 24.04 the t64 packages provide them
#   all      (the default; make runs it) build, plus what make check and
#            make demo use: cmocka, bats, sshd, Flask, gunicorn...
#
# --list prints the packages, one a line, and installs nothing.
# Idempotent: when every package is present (or provided by an installed
# one) it only checks, with one dpkg-query, and exits.
set -eu

BUILD="
build-essential
pkg-config
libssh2-1-dev
libarchive-dev
libcurl4-openssl-dev
libinih-dev
libssl-dev
libjson-c-dev
"

RUNTIME="
libssh2-1
libarchive13
libcurl4
libinih1
libssl3
libjson-c5
"

TEST="
libcmocka-dev
clang-14
libclang-rt-14-dev
bats
openssh-server
openssh-client
python3
python3-flask
python3-venv
python3-pip
gunicorn
iproute2
util-linux
procps
coreutils
tar
gzip
xz-utils
zstd
curl
wget
nginx
python3-yaml
man-db
groff-base
"

list=no
if [ "${1:-}" = --list ]; then
	list=yes
	shift
fi

case ${1:-all} in
build) PACKAGES=$BUILD ;;
runtime) PACKAGES=$RUNTIME ;;
all) PACKAGES="$BUILD $TEST" ;;
*)
	echo "usage: scripts/install-deps.sh [--list] [all|build|runtime]" >&2
	exit 2
	;;
esac

if [ "$list" = yes ]; then
	# shellcheck disable=SC2086
	printf '%s\n' $PACKAGES
	exit 0
fi

# The wanted packages that are neither installed (configured, maybe with
# triggers pending) nor provided by an installed package.
missing=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
	PACKAGES=$PACKAGES awk -F'|' '
	$1 ~ /^.[itW]/ {
		have[$2] = 1
		n = split($3, p, ", ")
		for (i = 1; i <= n; i++) {
			sub(/ .*/, "", p[i])
			have[p[i]] = 1
		}
	}
	END {
		n = split(ENVIRON["PACKAGES"], w, /[ \t\n]+/)
		for (i = 1; i <= n; i++)
			if (w[i] != "" && !(w[i] in have))
				printf " %s", w[i]
	}')

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
$SUDO apt-get update -qq
# env: sudo would drop an exported DEBIAN_FRONTEND.
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
