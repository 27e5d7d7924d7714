#!/bin/sh
# Install the Debian packages that building, testing and the demo need.
# Idempotent: when every package is present it only checks and exits.
set -eu

PACKAGES="
build-essential
pkg-config
libssh2-1-dev
libarchive-dev
libcurl4-openssl-dev
libinih-dev
libssl-dev
libjson-c-dev
libcmocka-dev
clang-14
libclang-rt-14-dev
bats
openssh-server
openssh-client
python3
python3-flask
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
python3-yaml
man-db
groff-base
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
