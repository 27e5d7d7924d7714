#!/usr/bin/env bash
# Build a Debian binary package of relflip: `make deb` runs this.
#
#   packaging/deb/build-deb.sh VERSION
#
# Writes build/deb/relflip_VERSION_ARCH.deb and prints its path last. The
# binary is compiled afresh in build/deb/src, a copy of the sources, with
# Debian's hardening flags (dpkg-buildflags), so the package never carries
# a ./relflip built with other flags (the ASan build, CFLAGS=-O0...).
# Needs dpkg-dev (build-essential brings it) and the build packages of
# scripts/install-deps.sh build; not debhelper, not lintian.
# packaging/deb/README.md explains the layout and the choices.
set -euo pipefail

version=${1:-}
if [[ -z $version ]]; then
	echo "usage: packaging/deb/build-deb.sh VERSION (make deb passes the Makefile's)" >&2
	exit 2
fi

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$top/packaging/deb
out=$top/build/deb
src=$out/src
# The staging tree sits where dpkg-shlibdeps expects a package's files:
# debian/PACKAGE inside a source tree (build/deb/tree).
tree=$out/tree
root=$tree/debian/relflip
umask 022

missing=""
for tool in dpkg-deb dpkg-shlibdeps dpkg-buildflags dpkg-architecture strip gzip make; do
	command -v "$tool" >/dev/null 2>&1 || missing+=" $tool"
done
if [[ -n $missing ]]; then
	echo "build-deb: missing:$missing" >&2
	echo "hint: apt-get install dpkg-dev binutils make gzip (build-essential has them all)" >&2
	exit 1
fi

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
commit=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# File dates, the changelog's date and the archive's members all come
# from the last commit, so that two builds of one commit are identical.
SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

# The copy: replaced wholesale so that a deleted source file is gone, with
# the modification times kept so that build/deb/src/build stays valid.
mkdir -p "$src"
rm -rf "$src/Makefile" "$src/src" "$src/include" "$src/docs"
cp -pR "$top/Makefile" "$top/src" "$top/include" "$top/docs" "$src/"

# Debian's flags, computed where the compiler runs (-ffile-prefix-map
# names that directory). The Makefile has no CPPFLAGS: they go in CFLAGS.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags=$(cd "$src" && echo "$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)")
ldflags=$(cd "$src" && dpkg-buildflags --get LDFLAGS)

# install builds relflip first, with the same flags in the same make run
# (version.o is rebuilt on every run, so a separate run would relink).
rm -rf "$tree"
MAKEFLAGS="" make -C "$src" -j"${DEB_JOBS:-$(nproc)}" --no-print-directory install \
	SKIP_DEPS=1 PREFIX=/usr DESTDIR="$root" GIT_COMMIT="$commit" \
	CFLAGS="$cflags" LDFLAGS="$ldflags"

doc=$root/usr/share/doc/relflip
install -D -m 0644 "$top/contrib/relflip.bash-completion" \
	"$root/usr/share/bash-completion/completions/relflip"
install -d "$doc/examples"
install -m 0644 "$top/README.md" "$top"/docs/*.md "$doc/"
install -m 0644 "$top"/config/*.ini "$doc/examples/"
install -m 0644 "$here/copyright" "$doc/copyright"
# lintian reads "ment" in the binary as a misspelling: it is the tail of the
# "comment" pax key, which the compiler stores as two immediate words.
install -D -m 0644 "$here/lintian-overrides" \
	"$root/usr/share/lintian/overrides/relflip"
{
	printf 'relflip (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Release %s, commit %s: its history is the git log.\n\n' "$version" "$commit"
	printf ' -- %s  %s\n' "$(sed -n 's/^Maintainer: //p' "$here/control.in")" \
		"$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$doc/changelog"

# Debian policy: manual pages and the changelog compressed, other documents
# over 4 KiB too (what dh_compress does); examples stay as they are.
gzip -9n "$root"/usr/share/man/man*/*
gzip -9n "$doc/changelog"
find "$doc" -maxdepth 1 -type f -size +4k ! -name copyright -exec gzip -9n {} +
# What dh_strip does, without the separate debug symbols package.
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
	"$root/usr/bin/relflip"

# The runtime dependencies, from the libraries the binary links
# (DT_NEEDED) and those libraries' shlibs and symbols files: exactly what
# debhelper's ${shlibs:Depends} would say. dpkg-shlibdeps runs in the
# source tree and reads its debian/control: a minimal one will do; it
# finds the package's root by its DEBIAN directory.
install -d "$root/DEBIAN"
printf 'Source: relflip\n\nPackage: relflip\nArchitecture: any\n' >"$tree/debian/control"
depends=$(cd "$tree" && dpkg-shlibdeps -O "$root/usr/bin/relflip" |
	sed -n 's/^shlibs:Depends=//p')
if [[ -z $depends ]]; then
	echo "build-deb: dpkg-shlibdeps found no dependencies for usr/bin/relflip" >&2
	exit 1
fi
# libcurl is loaded when the first HTTP request needs it (dlopen), so
# it is no NEEDED entry: named here, at the version that first has
# CURLOPT_PROTOCOLS_STR, which src/http-curl.c sets.
depends=$(printf '%s\n' "libcurl4 (>= 7.85.0)" "${depends//, /$'\n'}" |
	LC_ALL=C sort | paste -sd, | sed 's/,/, /g')

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
	-e "s/@INSTALLED_SIZE@/$size/" "$here/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
touch -d "@$SOURCE_DATE_EPOCH" "$root/DEBIAN" "$root/DEBIAN"/*

deb=$out/relflip_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "Depends: $depends"
echo "${deb#"$top"/}"
