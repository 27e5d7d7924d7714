#!/usr/bin/env bats
# Delta deploys, end to end: a host whose live release relflip verified
# gets only what changed, builds the release from a copy of the live one,
# and checks the whole tree; the base is never touched, and a base that
# does not verify means the full upload, by itself.

load lib/deploy-suite

# A tree of many files (every one different), as a web app's.
make_app() {
	local dir=$1 i

	mkdir -p "$dir/static" "$dir/lib/deep/er"
	for ((i = 0; i < 60; i++)); do
		printf 'module %d of the app\n' "$i" >"$dir/lib/m$i.py"
		printf 'body { margin: %dpx }\n' "$i" >"$dir/static/s$i.css"
	done
	printf 'deep\n' >"$dir/lib/deep/er/x.txt"
	ln -sf m1.py "$dir/lib/link.py"
	printf 'v1\n' >"$dir/index.html"
}

pack_dir() {
	"$RF_BIN" pack "$1" -o "$2" --revision "$3" >/dev/null 2>&1
}

# sha256 of every file and link under a release, sorted: its fingerprint.
fingerprint() {
	(cd "$1" && find . -type f -o -type l | LC_ALL=C sort |
		while read -r f; do
			if [[ -L $f ]]; then echo "L $(readlink "$f") $f"; else sha256sum "$f"; fi
		done)
}

# The file's sshd log: SFTP sessions opened so far.
sftp_sessions() {
	grep -c "subsystem 'sftp'" "$RF_FILE_TMP/file-sshd.log" || true
}

@test "a second deploy with one file changed sends only that: no upload, the base untouched" {
	local before after n0

	make_app "$RF_TMP/src"
	# Past 1 MiB a kept file is copied by cp, below it by tar: both,
	# and a mode each must keep.
	head -c 1200000 /dev/urandom >"$RF_TMP/src/static/big.bin"
	printf '#!/bin/sh\n' >"$RF_TMP/src/run.sh"
	chmod 755 "$RF_TMP/src/run.sh"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	before=$(fingerprint "$RF_APP/releases/v1")
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	[[ -s $RF_FILE_TMP/file-sshd.log ]] || rf_fail "no sshd log at $RF_FILE_TMP/file-sshd.log"
	n0=$(sftp_sessions)
	((n0 >= 1)) || rf_fail "the first deploy opened no SFTP session: the count proves nothing"
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "delta" "kept from v1"
	[[ $stderr != *"did not verify"* ]] || rf_fail "the delta fell back" "$stderr"
	[[ $(sftp_sessions) == "$n0" ]] || rf_fail "an SFTP session was opened for a delta deploy"
	[[ $(cat "$RF_APP/current/index.html") == v2 ]]
	[[ $(readlink "$RF_APP/current/lib/link.py") == m1.py ]]
	[[ $(cat "$RF_APP/current/lib/deep/er/x.txt") == deep ]]
	after=$(fingerprint "$RF_APP/releases/v1")
	[[ $before == "$after" ]] || rf_fail "the base release changed" "$(diff <(echo "$before") <(echo "$after"))"
	# Copies, never hard links into the base.
	[[ $(stat -c %h "$RF_APP/releases/v2/lib/m3.py") == 1 ]] || rf_fail "lib/m3.py is hard-linked"
	[[ $(stat -c %h "$RF_APP/releases/v2/static/big.bin") == 1 ]] || rf_fail "static/big.bin is hard-linked"
	cmp -s "$RF_TMP/src/static/big.bin" "$RF_APP/releases/v2/static/big.bin" || rf_fail "static/big.bin differs"
	[[ $(stat -c %a "$RF_APP/releases/v2/run.sh") == 755 ]] || rf_fail "run.sh lost its mode"
	rf_assert_record v2 live
	rf_assert_record v1 good
}

@test "files added, removed and in new directories merge into the new manifest: still a delta" {
	local want got

	make_app "$RF_TMP/src"
	# Names whose order trips a numeric or locale-aware compare: the
	# server merges the edits into the base's manifest bytewise.
	mkdir -p "$RF_TMP/src/n" "$RF_TMP/src/a-b" "$RF_TMP/src/a/b"
	printf '9\n' >"$RF_TMP/src/n/9"
	printf '10\n' >"$RF_TMP/src/n/10"
	printf 'x\n' >"$RF_TMP/src/a-b/x"
	printf 'y\n' >"$RF_TMP/src/a/b/y"
	printf 'dot\n' >"$RF_TMP/src/a.b"
	printf 'e\n' >"$RF_TMP/src/"$'\303\251t\303\251.txt'
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	rm "$RF_TMP/src/n/10" "$RF_TMP/src/a.b" "$RF_TMP/src/lib/m5.py"
	printf '100\n' >"$RF_TMP/src/n/100"
	printf '8\n' >"$RF_TMP/src/n/8"
	mkdir -p "$RF_TMP/src/a/c/d"
	printf 'new\n' >"$RF_TMP/src/a/c/d/new.txt"
	printf 'z\n' >"$RF_TMP/src/a-b/z"
	printf 'f\n' >"$RF_TMP/src/"$'\303\251t\303\251-2.txt'
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "delta" "kept from v1"
	[[ $stderr != *"did not verify"* ]] || rf_fail "the delta fell back" "$stderr"
	want=$(fingerprint "$RF_TMP/src")
	got=$(fingerprint "$RF_APP/releases/v2" | grep -v -e ' \./REVISION$' -e ' \./DEPLOYED_AT$')
	[[ $want == "$got" ]] || rf_fail "v2 is not the source tree" "$(diff <(echo "$want") <(echo "$got"))"
	[[ -e $RF_APP/releases/v1/n/10 && -e $RF_APP/releases/v1/a.b ]] || rf_fail "the base lost files"
}

@test "the same artifact again as a new release: a delta of nothing, verified" {
	local sftp

	make_app "$RF_TMP/src"
	tar -C "$RF_TMP/src" -czf "$RF_TMP/app.tgz" .
	deploy "$RF_TMP/app.tgz" --revision v1
	rf_assert_status 0
	sftp=$(sftp_sessions)
	deploy "$RF_TMP/app.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "0 changed"
	[[ $stderr != *"did not verify"* ]] || rf_fail "the empty delta fell back" "$stderr"
	[[ $(sftp_sessions) == "$sftp" ]] || rf_fail "the second deploy opened SFTP"
	[[ $(fingerprint "$RF_APP/releases/v1" | grep -v -e REVISION -e DEPLOYED_AT) == \
		"$(fingerprint "$RF_APP/releases/v2" | grep -v -e REVISION -e DEPLOYED_AT)" ]] ||
		rf_fail "v2 is not v1's tree"
}

# hashed: how many files the server's sha256sum was given since the log
# was emptied (the wrapper on the test sshd's PATH logs each call).
hashed() {
	awk '{ n += $1 } END { print n + 0 }' "$RF_TMP/hashed"
}

@test "a delta hashes only what it brought while the base's snapshot holds; a base touched since is hashed whole" {
	local n

	rf_sshd_start_path sha256sum
	# In its place, one that logs how many files it is given (its
	# arguments but "--").
	printf '#!/bin/sh\nn=0; for a; do [ "$a" = -- ] || n=$((n + 1)); done\necho $n >>%s\nexec /usr/bin/sha256sum "$@"\n' \
		"$RF_TMP/hashed" >"$RF_SSHD_BIN/sha256sum"
	chmod 755 "$RF_SSHD_BIN/sha256sum"
	rf_config
	make_app "$RF_TMP/src"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	[[ -s $RF_APP/.relflip/releases/v1.stat ]] || rf_fail "no snapshot kept for v1"

	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	: >"$RF_TMP/hashed"
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "2 changed"
	n=$(hashed)
	((n == 2)) || rf_fail "the server hashed $n files for a delta of 2"

	# Its own mode again: the content is the same, the ctime is not.
	chmod 644 "$RF_APP/releases/v2/lib/m3.py"
	printf 'v3\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v3.tgz" v3
	: >"$RF_TMP/hashed"
	deploy "$RF_TMP/v3.tgz" --revision v3
	rf_assert_status 0
	rf_assert_current v3
	[[ $stderr != *"did not verify"* ]] || rf_fail "the delta fell back" "$stderr"
	n=$(hashed)
	((n >= 120)) || rf_fail "a base touched since its snapshot: $n files hashed, not all"
	[[ $(fingerprint "$RF_TMP/src") == "$(fingerprint "$RF_APP/releases/v3" |
		grep -v -e ' \./REVISION$' -e ' \./DEPLOYED_AT$')" ]] || rf_fail "v3 is not the source tree"

	run relflip -c "$RF_CONFIG" prune --keep 1
	rf_assert_status 0
	rf_assert_not_exists "$RF_APP/.relflip/releases/v1.stat"
	[[ -s $RF_APP/.relflip/releases/v3.stat ]] || rf_fail "prune took the live release's snapshot"
}

@test "a base changed behind relflip's back does not verify: the full upload, by itself" {
	make_app "$RF_TMP/src"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	echo "hand edit" >>"$RF_APP/releases/v1/lib/m7.py"
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "did not verify (not as the manifest says: lib/m7.py): uploading the whole artifact"
	[[ $stderr != *'\x0a'* ]] || rf_fail "the server's message kept its newline" "$stderr"
	[[ $(cat "$RF_APP/current/lib/m7.py") == "module 7 of the app" ]] || rf_fail "the edit leaked into v2"
	[[ $(tail -n 1 "$RF_APP/releases/v1/lib/m7.py") == "hand edit" ]] || rf_fail "the base was touched"
}

@test "a base file deleted behind relflip's back stops the copy: the full upload, nothing left over" {
	make_app "$RF_TMP/src"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	rm "$RF_APP/releases/v1/lib/m3.py" "$RF_APP/releases/v1/lib/m8.py"
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_stderr_has "did not verify" "uploading the whole artifact"
	[[ $(cat "$RF_APP/current/lib/m3.py") == "module 3 of the app" ]] || rf_fail "v2 lacks lib/m3.py"
	[[ -z $(find "$RF_APP/releases" "$RF_APP/.relflip/incoming" -mindepth 1 -maxdepth 1 \( -name '.tmp-*' -o -name 'v2.*' \)) ]] ||
		rf_fail "the failed copy left files:" "$(ls -la "$RF_APP/releases" "$RF_APP/.relflip/incoming")"
}

@test "a live release without a manifest (made by 0.1 or by hand) gets the full upload" {
	make_app "$RF_TMP/src"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	rm "$RF_APP/.relflip/releases/v1.manifest"
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	[[ $stderr != *"kept from"* ]] || rf_fail "a delta from an unverified base" "$stderr"
}

@test "shared paths the artifact also ships travel in the delta, never copied through the link" {
	rf_config --app "shared_dirs = log"
	make_app "$RF_TMP/src"
	mkdir -p "$RF_TMP/src/log"
	printf 'placeholder\n' >"$RF_TMP/src/log/.keep"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	echo "from v1" >"$RF_APP/shared/log/app.log"
	printf 'v2\n' >"$RF_TMP/src/index.html"
	pack_dir "$RF_TMP/src" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_stderr_has "kept from v1"
	[[ $stderr != *"did not verify"* ]] || rf_fail "the delta fell back" "$stderr"
	[[ -L $RF_APP/releases/v2/log ]]
	[[ $(cat "$RF_APP/current/log/app.log") == "from v1" ]]
}

@test "when most of the artifact changed, the full upload" {
	make_app "$RF_TMP/src"
	pack_dir "$RF_TMP/src" "$RF_TMP/v1.tgz" v1
	deploy "$RF_TMP/v1.tgz" --revision v1
	rf_assert_status 0
	rm -rf "$RF_TMP/src2"
	mkdir -p "$RF_TMP/src2"
	head -c 200000 /dev/urandom >"$RF_TMP/src2/blob.bin"
	pack_dir "$RF_TMP/src2" "$RF_TMP/v2.tgz" v2
	deploy "$RF_TMP/v2.tgz" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	[[ $stderr != *"kept from"* ]] || rf_fail "a delta with nothing in common" "$stderr"
	rf_assert_stderr_has "the whole artifact: nothing in common with v1"
}
