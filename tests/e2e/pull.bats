#!/usr/bin/env bats
# The pull transfer, end to end: [artifact] url or deploy --url, where each
# server downloads the artifact itself from a real nginx (lib/nginx.bash)
# with curl or wget, resumes, checks its SHA-256 and unpacks it; relflip
# uploads nothing. Every failure asserts exit 6, what the person is told,
# that a URL's query never shows, and that current did not move. The last
# tests run four network-namespace hosts (run this file under
# flock /tmp/relflip-netns.lock).

load lib/sshd
load lib/deploy
load lib/fleet
load lib/nginx

setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
	rf_nginx_start nginx 127.0.0.1
	SSHD_LOG=$RF_FILE_TMP/file-sshd.log
	SSHD_MARK=$(wc -l <"$SSHD_LOG")
}

teardown_file() {
	rf_file_teardown
}

# deploy ARGS...: relflip -c $RF_CONFIG [--json] [-v] deploy ARGS, under run.
deploy() {
	local -a global=()

	while [[ $# -gt 0 && ($1 == --json || $1 == -v) ]]; do
		global+=("$1")
		shift
	done
	run --separate-stderr relflip -c "$RF_CONFIG" "${global[@]}" deploy "$@"
}

# publish ID [PATH]: an artifact for ID, served by nginx at PATH (default
# ID.tar.gz); sets ART.
publish() {
	ART=$(rf_artifact "$1")
	mkdir -p "$(dirname "$RF_NGINX_WWW/${2:-$1.tar.gz}")"
	cp "$ART" "$RF_NGINX_WWW/${2:-$1.tar.gz}"
}

# pull_config URL [MORE_ARTIFACT_LINES]: the test server's config with an
# [artifact] section.
pull_config() {
	rf_config "[artifact]
url = $1${2:+
$2}"
}

# The sshd log lines since setup: which sessions relflip's deploys opened.
sshd_log_since_setup() {
	tail -n "+$((SSHD_MARK + 1))" "$SSHD_LOG"
}

assert_no_sftp() {
	if sshd_log_since_setup | grep -q "subsystem 'sftp'"; then
		rf_fail "an SFTP session was opened:" "$(sshd_log_since_setup)"
	fi
}

# incoming_path ID FILE: where the artifact FILE of ID is downloaded.
incoming_path() {
	local sum

	sum=$(rf_sha256 "$2")
	echo "$RF_APP/.relflip/incoming/$1.${sum:0:12}.tar"
}

# big_artifact ID BYTES: an artifact for ID, index.html and BYTES of random
# data (which does not compress); sets ART.
big_artifact() {
	rf_src "$RF_TMP/big-$1"
	rf_random_file "$RF_TMP/big-$1/blob.bin" "$2"
	ART=$RF_TMP/art/$1-big.tar.gz
	mkdir -p "$RF_TMP/art"
	tar -C "$RF_TMP/big-$1" -czf "$ART" .
}

# A failed pull of ID after PREVIOUS went live: exit 6, current still
# PREVIOUS, no releases/ID, the log's last line a failed deploy of ID.
assert_pull_failed() {
	rf_assert_status 6
	rf_assert_current "$2"
	rf_assert_release_intact "$2"
	rf_assert_not_exists "$RF_APP/releases/$1"
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 2 "last['revision'] == '$1' and last['result'] == 'failed' and last['exit_code'] == 6"
}

# ---------------------------------------------------------------------------
# The server downloads
# ---------------------------------------------------------------------------

@test "with [artifact] url the server downloads the artifact from nginx: live, no SFTP session, nothing left in incoming" {
	publish v1
	# shellcheck disable=SC2016 # ${RELFLIP_RELEASE} is relflip's
	pull_config "$RF_NGINX_URL/\${RELFLIP_RELEASE}.tar.gz"

	deploy "$ART" --revision v1
	rf_assert_status 0
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v1 live
	[[ $(rf_record_field v1 checksum) == "sha256:$(rf_sha256 "$ART")" ]]
	rf_assert_stderr_has "pulled"
	grep -q '^GET /v1.tar.gz 200 ' "$RF_NGINX_LOG" ||
		rf_fail "nginx served no GET /v1.tar.gz:" "$(rf_nginx_requests)"
	assert_no_sftp
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] ||
		rf_fail "incoming/ is not empty:" "$(ls -la "$RF_APP/.relflip/incoming")"
	[[ -f $RF_APP/.relflip/releases/v1.manifest ]]
}

@test "deploy --url overrides the config; a deploy without a URL still uploads over SFTP" {
	rf_config
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 0
	# The assertion below can fail: an upload shows in the sshd log.
	sshd_log_since_setup | grep -q "subsystem 'sftp'" ||
		rf_fail "the upload opened no SFTP session?" "$(sshd_log_since_setup)"

	SSHD_MARK=$(wc -l <"$SSHD_LOG")
	publish v2 builds/app-v2.tar.gz
	pull_config "$RF_NGINX_URL/not-this-one.tar.gz"
	deploy "$ART" --revision v2 --url "$RF_NGINX_URL/builds/app-v2.tar.gz"
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_record v1 good
	grep -q '^GET /builds/app-v2.tar.gz 200 ' "$RF_NGINX_LOG" ||
		rf_fail "nginx served no GET /builds/app-v2.tar.gz:" "$(rf_nginx_requests)"
	! grep -q 'not-this-one' "$RF_NGINX_LOG"
	assert_no_sftp
}

@test "a partial download in incoming/ is resumed with a range request" {
	local part

	big_artifact v1 100000
	cp "$ART" "$RF_NGINX_WWW/v1.tar.gz"
	rf_config
	part=$(incoming_path v1 "$ART")
	mkdir -p "$(dirname "$part")"
	head -c 2000 "$ART" >"$part"

	deploy "$ART" --revision v1 --url "$RF_NGINX_URL/v1.tar.gz"
	rf_assert_status 0
	rf_assert_current v1
	rf_assert_stderr_has "(resumed)"
	grep -q '^GET /v1.tar.gz 206 [0-9]* "bytes=2000-"' "$RF_NGINX_LOG" ||
		rf_fail "no range request from byte 2000:" "$(rf_nginx_requests)"
	rf_assert_not_exists "$part"
}

@test "a complete download already in incoming/ is not fetched again" {
	local part

	publish v1
	rf_config
	part=$(incoming_path v1 "$ART")
	mkdir -p "$(dirname "$part")"
	cp "$ART" "$part"

	deploy "$ART" --revision v1 --url "$RF_NGINX_URL/v1.tar.gz"
	rf_assert_status 0
	rf_assert_current v1
	[[ ! -s $RF_NGINX_LOG ]] || rf_fail "nginx was asked:" "$(rf_nginx_requests)"
}

@test "[artifact] header_env: the header reaches nginx through curl's stdin, never a command line, an environment or relflip's output" {
	local pid seen=0 p

	publish v1 private/v1.tar.gz
	pull_config "$RF_NGINX_URL/private/\${RELFLIP_RELEASE}.tar.gz" "header_env = RF_PULL_AUTH"

	# Not set: a usage error before any server is touched.
	unset RF_PULL_AUTH
	deploy "$ART" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "header_env names RF_PULL_AUTH, which is not set"

	# The wrong token: nginx says 401, relflip says so.
	export RF_PULL_AUTH="Authorization: Bearer wrong-$RF_NGINX_TOKEN"
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "HTTP 401" "presigned URL has expired"
	[[ $output$stderr != *"wrong-$RF_NGINX_TOKEN"* ]] || rf_fail "the header was shown" "$(rf_show_run)"
	rf_assert_not_exists "$RF_APP/current"

	# The right one, downloading slowly enough to look at every process.
	rm -rf "$RF_APP"
	: >"$RF_NGINX_LOG"
	export RF_PULL_AUTH="Authorization: Bearer $RF_NGINX_TOKEN"
	big_artifact v1 150000
	cp "$ART" "$RF_NGINX_WWW/private/slow/v1.tar.gz"
	pull_config "$RF_NGINX_URL/private/slow/\${RELFLIP_RELEASE}.tar.gz" "header_env = RF_PULL_AUTH"
	rf_bg_relflip header -c "$RF_CONFIG" --json -v deploy "$ART" --revision v1
	# While curl downloads: no process shows the token in its arguments
	# or its environment.
	for ((p = 0; p < 200 && !seen; p++)); do
		for pid in $(pgrep -x curl); do
			grep -q -- '-K' "/proc/$pid/cmdline" 2>/dev/null || continue
			seen=1
			if grep -rqs -- "$RF_NGINX_TOKEN" /proc/[0-9]*/cmdline /proc/"$pid"/environ \
				/proc/"$(ps -o ppid= -p "$pid" | tr -d ' ')"/environ; then
				rf_fail "a process shows the token:" "$(ps -eo pid,args | grep -F -- "$RF_NGINX_TOKEN")"
			fi
		done
		((seen)) || rf_sleep 0.05
	done
	((seen)) || rf_fail "curl was never seen downloading"
	rf_bg_wait 60
	rf_assert_status 0
	rf_assert_current v1
	grep -q '^GET /private/slow/v1.tar.gz 200 [0-9]* "-" yes' "$RF_NGINX_LOG" ||
		rf_fail "nginx did not serve the download with the header:" "$(rf_nginx_requests)"
	[[ $output$stderr != *"$RF_NGINX_TOKEN"* ]] ||
		rf_fail "the token is in relflip's output (with -v and --json)" "$(rf_show_run)"
	[[ $stderr == *"curl -fsSL"* ]] || rf_fail "-v did not show the pull script" "$(rf_show_run)"
}

@test "--dry-run shows the pull script, with the URL but not its query and not the header, and changes nothing" {
	publish v1
	export RF_PULL_AUTH="Authorization: Bearer $RF_NGINX_TOKEN"
	pull_config "$RF_NGINX_URL/v1.tar.gz?X-Amz-Signature=sig-0a1b2c3d" "header_env = RF_PULL_AUTH"

	deploy "$ART" --revision v1 --dry-run
	rf_assert_status 0
	rf_assert_stdout_has "downloads the artifact" "curl -fsSL --retry 3" "-K -" \
		"U='$RF_NGINX_URL/v1.tar.gz?[redacted]'" "IFS= read -r H"
	[[ $output$stderr != *"$RF_NGINX_TOKEN"* ]] || rf_fail "the header was shown" "$(rf_show_run)"
	[[ $output$stderr != *sig-0a1b2c3d* ]] || rf_fail "the URL's signature was shown" "$(rf_show_run)"
	[[ ! -s $RF_NGINX_LOG ]] || rf_fail "a dry run downloaded:" "$(rf_nginx_requests)"
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_not_exists "$RF_APP/current"
}

@test "deploy --url URL --sha256 HEX: relflip fetches the artifact once to validate it, the server downloads it, no temporary file is left" {
	local sum

	publish v1
	rf_config
	sum=$(rf_sha256 "$ART")
	mkdir "$RF_TMP/runner-tmp"
	TMPDIR=$RF_TMP/runner-tmp deploy --url "$RF_NGINX_URL/v1.tar.gz" --sha256 "$sum" --revision v1
	rf_assert_status 0
	rf_assert_current v1
	rf_assert_record v1 live
	[[ $(rf_record_field v1 checksum) == "sha256:$sum" ]]
	rf_assert_stderr_has "fetched"
	[[ $(grep -c '^GET /v1.tar.gz 200 ' "$RF_NGINX_LOG") == 2 ]] ||
		rf_fail "expected two downloads (relflip's, the server's):" "$(rf_nginx_requests)"
	[[ -z $(ls -A "$RF_TMP/runner-tmp") ]] || rf_fail "left behind:" "$(ls -la "$RF_TMP/runner-tmp")"
	assert_no_sftp

	# Another checksum than the URL's: refused before any server is touched.
	TMPDIR=$RF_TMP/runner-tmp deploy --url "$RF_NGINX_URL/v1.tar.gz" --sha256 "${sum//?/0}" --revision v2
	rf_assert_status 3
	rf_assert_stderr_has "SHA-256 $sum" "not the ${sum//?/0} given with --sha256"
	rf_assert_not_exists "$RF_APP/releases/v2"
	[[ -z $(ls -A "$RF_TMP/runner-tmp") ]] || rf_fail "left behind:" "$(ls -la "$RF_TMP/runner-tmp")"
}

@test "usage errors of --url and --sha256 exit 2 and say what to do" {
	publish v1
	rf_config
	deploy --sha256 "$(rf_sha256 "$ART")" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "--sha256 names an artifact the servers download: it needs --url URL or [artifact] url"

	deploy "$ART" --sha256 "$(rf_sha256 "$ART")" --url "$RF_NGINX_URL/v1.tar.gz" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "give ARTIFACT or --sha256, not both"

	deploy --sha256 abc --url "$RF_NGINX_URL/v1.tar.gz" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "'abc' is not a SHA-256"

	deploy "$ART" --url "ftp://example.com/v1.tar.gz" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "not an http:// or https:// URL"

	deploy --url "$RF_NGINX_URL/v1.tar.gz" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "which artifact?"
	rf_assert_not_exists "$RF_APP"
}

# ---------------------------------------------------------------------------
# Failures: exit 6, current unchanged
# ---------------------------------------------------------------------------

@test "a 404 fails with exit 6, names the URL without its query, and current stays" {
	publish v1
	rf_config
	deploy "$ART" --revision v1
	rf_assert_status 0

	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2 --url "$RF_NGINX_URL/missing/v2.tar.gz?X-Amz-Signature=sig-77e1&X-Amz-Expires=60"
	assert_pull_failed v2 v1
	rf_assert_stderr_has "could not download the artifact: $RF_NGINX_URL/missing/v2.tar.gz?... answered HTTP 404" \
		"hint: publish the artifact at that URL first"
	[[ $output$stderr != *sig-77e1* ]] || rf_fail "the URL's signature was shown" "$(rf_show_run)"
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] || rf_fail "a 404 left a file:" "$(ls -la "$RF_APP/.relflip/incoming")"
}

@test "other bytes at the URL: exit 6 with both checksums, the download removed, current stays" {
	local other

	publish v1
	rf_config
	deploy "$ART" --revision v1
	rf_assert_status 0

	ART=$(rf_artifact v2)
	other=$(rf_artifact v2 extra.txt=other)
	cp "$other" "$RF_NGINX_WWW/v2.tar.gz"
	deploy "$ART" --revision v2 --url "$RF_NGINX_URL/v2.tar.gz"
	assert_pull_failed v2 v1
	rf_assert_stderr_has "served local other bytes than the artifact validated" \
		"SHA-256 $(rf_sha256 "$other") there, $(rf_sha256 "$ART") here"
	rf_assert_not_exists "$(incoming_path v2 "$ART")"
}

@test "a slow server: the download stops at hook_timeout with exit 6, keeps what it got, and the next deploy resumes it" {
	local part size

	publish v1
	rf_config
	deploy "$ART" --revision v1
	rf_assert_status 0

	big_artifact v2 400000
	cp "$ART" "$RF_NGINX_WWW/slow/v2.tar.gz"
	cp "$ART" "$RF_NGINX_WWW/v2.tar.gz"
	rf_config "[deploy]
hook_timeout = 1"
	deploy "$ART" --revision v2 --url "$RF_NGINX_URL/slow/v2.tar.gz"
	assert_pull_failed v2 v1
	rf_assert_stderr_has "did not finish downloading $RF_NGINX_URL/slow/v2.tar.gz within 1" \
		"the next deploy resumes it"
	part=$(incoming_path v2 "$ART")
	size=$(stat -c %s "$part")
	((size > 0 && size < $(stat -c %s "$ART"))) || rf_fail "kept $size bytes of $(stat -c %s "$ART")"

	rf_config
	deploy "$ART" --revision v2 --url "$RF_NGINX_URL/v2.tar.gz"
	rf_assert_status 0
	rf_assert_current v2
	grep -q "^GET /v2.tar.gz 206 [0-9]* \"bytes=$size-\"" "$RF_NGINX_LOG" ||
		rf_fail "no range request from byte $size:" "$(rf_nginx_requests)"
}

@test "a dead server (nothing listening): exit 6, says the server cannot reach it, current stays" {
	local port

	publish v1
	rf_config
	deploy "$ART" --revision v1
	rf_assert_status 0

	port=$(rf_free_port)
	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2 --url "http://127.0.0.1:$port/v2.tar.gz"
	assert_pull_failed v2 v1
	rf_assert_stderr_has "local cannot reach http://127.0.0.1:$port/v2.tar.gz" \
		"Couldn't connect to server" "check DNS, routes and proxies from local"
}

# ---------------------------------------------------------------------------
# Servers without curl: an sshd whose sessions get a PATH without it
# ---------------------------------------------------------------------------

# sshd_without TOOL...: this test's own sshd, whose sessions' PATH has every
# command of /usr/bin but TOOL...; RF_PORT and the config point at it.
sshd_without() {
	rf_sshd_start_path "$@" || return 1
	[[ $(rf_ssh 'command -v curl || echo none') == none ]] || rf_fail "curl is still on the PATH"
}

@test "a server with wget and no curl downloads with wget, resuming; with header_env it needs curl" {
	local part

	sshd_without curl
	big_artifact v1 100000
	cp "$ART" "$RF_NGINX_WWW/v1.tar.gz"
	rf_config
	part=$(incoming_path v1 "$ART")
	mkdir -p "$(dirname "$part")"
	head -c 1000 "$ART" >"$part"
	deploy "$ART" --revision v1 --url "$RF_NGINX_URL/v1.tar.gz"
	rf_assert_status 0
	rf_assert_current v1
	grep -q '^GET /v1.tar.gz 206 [0-9]* "bytes=1000-"' "$RF_NGINX_LOG" ||
		rf_fail "wget did not resume from byte 1000:" "$(rf_nginx_requests)"

	ART=$(rf_artifact v2)
	export RF_PULL_AUTH="Authorization: Bearer $RF_NGINX_TOKEN"
	pull_config "$RF_NGINX_URL/v2.tar.gz" "header_env = RF_PULL_AUTH"
	deploy "$ART" --revision v2
	assert_pull_failed v2 v1
	rf_assert_stderr_has "no curl on local: a download with [artifact] header_env needs curl" \
		"hint: install curl on local"
}

@test "a server with neither curl nor wget: exit 6 naming both" {
	sshd_without curl wget
	publish v1
	rf_config
	deploy "$ART" --revision v1 --url "$RF_NGINX_URL/v1.tar.gz"
	rf_assert_status 6
	rf_assert_stderr_has "neither curl nor wget on local" "hint: install curl on local"
	rf_assert_not_exists "$RF_APP/current"
	rf_assert_not_exists "$RF_APP/releases/v1"
	rf_assert_log 1 "last['result'] == 'failed' and last['exit_code'] == 6"
}

# ---------------------------------------------------------------------------
# Four hosts: what the runner sends, pull against upload
# ---------------------------------------------------------------------------

# veth_tx K...: bytes sent so far from the runner into hosts K... (the
# runner side of their veth pairs), summed.
veth_tx() {
	local k sum=0 v

	for k in "$@"; do
		read -r v <"/sys/class/net/$(rf_host_veth "$(rf_fleet_num "$k")")/statistics/tx_bytes"
		sum=$((sum + v))
	done
	echo "$sum"
}

@test "four hosts, a 4 MB artifact: each host pulls from its own nginx, and the runner sends a fraction of what an upload sends" {
	local k port push pull t0 sftp

	rf_fleet_up 4
	rf_fleet_artifact v1 $((4 * 1024 * 1024)) >/dev/null
	ART=$RF_TMP/art/v1.tar.gz
	# Each host's store is on its own loopback, all on one port so that one
	# URL names them all: its downloads never cross the veth, which then
	# carries only what relflip sends.
	port=$(rf_free_port)
	for k in 1 2 3 4; do
		rf_nginx_start --ns "$(rf_host_ns "$(rf_fleet_num "$k")")" --port "$port" "nginx-h$k" 127.0.0.1
		cp "$ART" "$RF_NGINX_WWW/v1.tar.gz"
	done
	rf_fleet_config 1 2 3 4 -- "[artifact]
url = $RF_NGINX_URL/\${RELFLIP_RELEASE}.tar.gz"

	t0=$(veth_tx 1 2 3 4)
	run --separate-stderr relflip -c "$RF_CONFIG" deploy "$ART" --revision v1
	rf_assert_status 0
	pull=$(($(veth_tx 1 2 3 4) - t0))
	rf_fleet_assert_live v1 1 2 3 4

	# An artifact of the same size uploaded (no [artifact]), as release v2:
	# its blob is new, so that no host gets a delta from v1.
	rf_fleet_config 1 2 3 4
	ART=$(rf_fleet_artifact v2 $((4 * 1024 * 1024)))
	t0=$(veth_tx 1 2 3 4)
	run --separate-stderr relflip -c "$RF_CONFIG" deploy "$ART" --revision v2
	rf_assert_status 0
	push=$(($(veth_tx 1 2 3 4) - t0))
	rf_fleet_assert_live v2 1 2 3 4

	sftp=0
	for k in 1 2 3 4; do
		sftp=$((sftp + $(grep -c "subsystem 'sftp'" "$(rf_fleet_srv "$k")/../sshd.log" || true)))
	done
	[[ $sftp == 4 ]] || rf_fail "expected one SFTP session per host, all from the upload: $sftp"
	echo "# 4 hosts, $(stat -c %s "$ART") B artifact: runner sent $pull B pulling, $push B uploading" >&3
	echo "pull=$pull push=$push artifact=$(stat -c %s "$ART")" >>"${RF_PULL_BYTES_LOG:-/dev/null}"
	((pull * 20 < push)) || rf_fail "pulling sent $pull bytes, uploading $push"
	((push > 4 * $(stat -c %s "$ART"))) || rf_fail "uploading sent only $push bytes"
}
