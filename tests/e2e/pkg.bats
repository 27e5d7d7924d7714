#!/usr/bin/env bats
# make deb: the Debian package holds the binary, both man pages, the bash
# completion and the docs; its Depends names the libraries the binary
# links, the same list as scripts/install-deps.sh runtime; two builds of
# one commit are identical; lintian finds nothing (when it is installed).
# No sshd, no network. Skips when dpkg-deb or dpkg-dev is missing.

# make deb once for the file: it compiles relflip with Debian's flags.
setup_file() {
	local root

	root=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	command -v dpkg-deb >/dev/null 2>&1 || return 0
	command -v dpkg-shlibdeps >/dev/null 2>&1 || return 0
	# Not the parent make's jobserver (make check), whose pipes are gone.
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$root" --no-print-directory \
		deb SKIP_DEPS=1 >"$BATS_FILE_TMPDIR/make-deb.log" 2>&1 ||
		echo "make deb failed: $BATS_FILE_TMPDIR/make-deb.log" >"$BATS_FILE_TMPDIR/failed"
}

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	VERSION=$(sed -n 's/^VERSION := //p' "$ROOT/Makefile")
}

# The package setup_file built, or a skip when the tools are missing.
need_deb() {
	command -v dpkg-deb >/dev/null 2>&1 ||
		skip "dpkg-deb is not installed (Debian package dpkg)"
	command -v dpkg-shlibdeps >/dev/null 2>&1 ||
		skip "dpkg-shlibdeps is not installed (Debian package dpkg-dev)"
	if [[ -e $BATS_FILE_TMPDIR/failed ]]; then
		cat "$BATS_FILE_TMPDIR/make-deb.log"
		return 1
	fi
	DEB=$ROOT/build/deb/relflip_${VERSION}_$(dpkg --print-architecture).deb
}

# The Depends field as package names, one a line, sorted.
depends_names() {
	dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -e 's/^ *//' -e 's/[ (].*//' | sort
}

@test "make deb names the package for the Makefile's VERSION and prints its path" {
	need_deb
	[ -f "$DEB" ]
	[ "$(tail -n 1 "$BATS_FILE_TMPDIR/make-deb.log")" = "build/deb/${DEB##*/}" ]
	[ "$(dpkg-deb -f "$DEB" Package)" = relflip ]
	[ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ]
	[ "$(dpkg-deb -f "$DEB" Architecture)" = "$(dpkg --print-architecture)" ]
	[ "$(dpkg-deb -f "$DEB" Installed-Size)" -gt 0 ]
}

@test "the package holds the binary, both man pages, the completion and the docs, all root's" {
	local listing path missing=""

	need_deb
	listing=$(dpkg-deb -c "$DEB")
	for path in ./usr/bin/relflip \
		./usr/share/man/man1/relflip.1.gz \
		./usr/share/man/man5/relflip.ini.5.gz \
		./usr/share/bash-completion/completions/relflip \
		./usr/share/doc/relflip/copyright \
		./usr/share/doc/relflip/changelog.gz \
		./usr/share/doc/relflip/examples/example.ini; do
		grep -Eq " $path\$" <<<"$listing" || missing+=" $path"
	done
	[[ -z $missing ]] || { echo "missing from the package:$missing"; return 1; }
	grep -Eq '^-rwxr-xr-x root/root .* \./usr/bin/relflip$' <<<"$listing"
	if grep -v ' root/root ' <<<"$listing"; then
		echo "files not owned by root/root (above)"
		return 1
	fi
}

@test "the packaged binary runs, and is stripped and hardened" {
	local bin=$BATS_TEST_TMPDIR/x/usr/bin/relflip

	need_deb
	dpkg-deb -x "$DEB" "$BATS_TEST_TMPDIR/x"
	run "$bin" --version
	[ "$status" -eq 0 ]
	[[ $output == "relflip $VERSION (commit "* ]]
	run readelf -SW "$bin"
	[[ $output != *" .symtab "* ]] || { echo "not stripped"; return 1; }
	run readelf -dW "$bin"
	[[ $output == *BIND_NOW* ]] || { echo "no -z now"; return 1; }
	run readelf -lW "$bin"
	[[ $output == *GNU_RELRO* ]] || { echo "no relro"; return 1; }
	# _FORTIFY_SOURCE: the checked variants of the libc calls.
	nm -D "$bin" | grep -q '__[a-z]*_chk' || { echo "no fortified call"; return 1; }
}

# The package that ships each library the binary links (its NEEDED
# entries, as the loader resolves them) or loads when it needs it
# (libcurl, see src/http-curl.c), from dpkg's file lists.
linked_packages() {
	local bin=$1 soname lib

	for soname in $(readelf -dW "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p') libcurl.so.4; do
		lib=$({ ldd "$bin"; ldconfig -p | sed 's/ (.*)//'; } |
			awk -v s="$soname" '$1 == s && $2 == "=>" { print $3; exit }')
		lib=$(readlink -f "$lib")
		# merged /usr: dpkg may know the file by its /lib name
		{ dpkg -S "$lib" 2>/dev/null || dpkg -S "${lib#/usr}"; } | sed -n '1s/[:,].*//p'
	done | sort -u
}

@test "Depends names every library the binary links, as install-deps.sh runtime does" {
	local names want

	need_deb
	names=$(depends_names)
	echo "Depends: $(dpkg-deb -f "$DEB" Depends)"
	dpkg-deb -x "$DEB" "$BATS_TEST_TMPDIR/x"
	[ "$(linked_packages "$BATS_TEST_TMPDIR/x/usr/bin/relflip")" = "$names" ]
	for want in $("$ROOT/scripts/install-deps.sh" --list runtime) libc6; do
		grep -qx "$want" <<<"$names" || { echo "Depends lacks $want"; return 1; }
	done
	# ... and nothing else: the runtime list is complete.
	[ "$(wc -l <<<"$names")" -eq "$(("$("$ROOT/scripts/install-deps.sh" --list runtime | wc -l)" + 1))" ]
	# Each with the minimum version its symbols need: (>= ...).
	[ "$(dpkg-deb -f "$DEB" Depends | grep -o '(>= [^)]*)' | wc -l)" -eq "$(wc -l <<<"$names")" ]
}

@test "two builds of one commit give the same package" {
	local first

	need_deb
	first=$(sha256sum <"$DEB")
	run env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ROOT" --no-print-directory deb SKIP_DEPS=1
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$(sha256sum <"$DEB")" = "$first" ]
}

@test "lintian finds nothing, at any level" {
	need_deb
	command -v lintian >/dev/null 2>&1 || skip "lintian is not installed (Debian package lintian)"
	run lintian --info --display-info --display-experimental --pedantic "$DEB"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ -z $(grep -v 'running with root privileges' <<<"$output") ]]
}

@test "build-deb.sh without a version, and install-deps.sh with an unknown list, exit 2 with a usage line" {
	run "$ROOT/packaging/deb/build-deb.sh"
	[ "$status" -eq 2 ]
	[[ $output == "usage: packaging/deb/build-deb.sh VERSION"* ]]
	run "$ROOT/scripts/install-deps.sh" --list test
	[ "$status" -eq 2 ]
	[ "$output" = "usage: scripts/install-deps.sh [--list] [all|build|runtime]" ]
}
