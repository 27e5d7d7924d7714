#!/usr/bin/env bats
# relflip deploy, end to end: ./relflip against a real sshd on loopback, the
# sample app for health checks. Every test asserts the exit code, what the
# person reading stderr is told, and what the server holds afterwards:
# where current points, the releases, their records and the deploy log.

load lib/sshd
load lib/deploy

# One sshd for the file; each test has its own app path ($RF_APP, which
# does not exist yet), keys and known_hosts.
setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
	rf_config
}

teardown_file() {
	rf_file_teardown
}

# deploy ARGS...: relflip -c $RF_CONFIG [global options] deploy ARGS, under
# `run`; global options (--json, -q) go before "deploy".
deploy() {
	local -a global=()

	while [[ $# -gt 0 && $1 == --json ]]; do
		global+=("$1")
		shift
	done
	run --separate-stderr relflip -c "$RF_CONFIG" "${global[@]}" deploy "$@"
}

# deployed ID [NAME=CONTENT]...: deploy a fresh artifact for ID with the
# current config and assert it went live. Sets ART to the artifact.
deployed() {
	ART=$(rf_artifact "$@")
	deploy "$ART" --revision "$1"
	rf_assert_status 0
	rf_assert_current "$1"
}

# The health config for the sample app on $APP_PORT (started here, serving
# whatever current is now), plus EXTRA_INI.
with_app() {
	APP_PORT=$(rf_free_port)
	rf_app_start "$APP_PORT"
	rf_config "$(rf_health_ini "$APP_PORT" "${1:-}")${2:+

$2}"
}

# A release that failed before the switch: current unchanged, lock gone,
# record failed, the previous release untouched.
assert_failed_before_switch() {
	local id=$1 previous=$2

	if [[ -n $previous ]]; then
		rf_assert_current "$previous"
		rf_assert_release_intact "$previous"
		rf_assert_record "$previous" live
	else
		rf_assert_not_exists "$RF_APP/current"
	fi
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_record "$id" failed
}

# ---------------------------------------------------------------------------
# The happy path
# ---------------------------------------------------------------------------

@test "first deploy creates the layout, runs the hooks once, goes live and serves v1" {
	local env line

	with_app "expect_revision = yes" '[hooks]
install = echo installing; printf "%s\n" "$RELFLIP_REVISION" > installed.txt; env | grep "^RELFLIP_" | sort > hook-env.txt; pwd -P > hook-pwd.txt
migrate = echo "migrated $RELFLIP_REVISION" >> "$RELFLIP_APP_PATH/shared/migrations"'
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "deployed v1" "installing"
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v1 live
	[[ $(rf_record_field v1 checksum) == "sha256:$(rf_sha256 "$ART")" ]] ||
		rf_fail "record checksum $(rf_record_field v1 checksum), artifact $(rf_sha256 "$ART")"
	[[ $(rf_record_field v1 migrated) == True ]]
	[[ -s $RF_APP/releases/v1/DEPLOYED_AT ]]
	[[ -d $RF_APP/shared ]]
	rf_assert_log 1 'last["result"] == "ok" and last["exit_code"] == 0 and
		last["revision"] == "v1" and last["command"] == "deploy" and last["host"] == "local"'
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	# install ran in the release, with the documented environment.
	[[ $(cat "$RF_APP/releases/v1/installed.txt") == v1 ]]
	[[ $(cat "$RF_APP/releases/v1/hook-pwd.txt") == "$(realpath "$RF_APP/releases/v1")" ]]
	env=$(cat "$RF_APP/releases/v1/hook-env.txt")
	for line in "RELFLIP_APP_PATH=$RF_APP" "RELFLIP_RELEASE_PATH=$RF_APP/releases/v1" \
		"RELFLIP_REVISION=v1" "RELFLIP_HOST=local"; do
		[[ $'\n'$env$'\n' == *$'\n'"$line"$'\n'* ]] || rf_fail "no $line in the hook's environment:" "$env"
	done
	[[ $env == *RELFLIP_PREVIOUS_REVISION=* ]] || rf_fail "no RELFLIP_PREVIOUS_REVISION:" "$env"
	# migrate ran exactly once.
	[[ $(cat "$RF_APP/shared/migrations") == "migrated v1" ]] ||
		rf_fail "migrations: $(cat "$RF_APP/shared/migrations")"
	# The restarted app serves the new release.
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

@test "second deploy makes v2 live and v1 good; --json events all parse and end with the result" {
	deployed v1

	ART=$(rf_artifact v2)
	deploy --json "$ART" --revision v2
	rf_assert_status 0
	rf_assert_stderr_has "deployed v2"
	rf_assert_json_lines
	rf_json_query 'ev[0]["event"] == "start"'
	rf_json_query '(ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0
		and ev[-1]["status"] == "ok" and ev[-1]["revision"] == "v2"
		and ev[-1]["previous"] == "v1")'
	rf_json_query 'all("time" in e and "event" in e for e in ev)'
	rf_json_query 'any(e["event"] == "stage" and e.get("stage") == "switch"
		and e.get("phase") == "end" and e.get("host") == "local"
		and isinstance(e.get("duration_ms"), int) for e in ev)'
	rf_json_query 'sum(e["event"] == "result" for e in ev) == 1'
	rf_assert_current v2
	rf_assert_release_intact v1
	rf_assert_release_intact v2
	rf_assert_record v1 good
	rf_assert_record v2 live
	rf_assert_log 2 'last["result"] == "ok" and last["revision"] == "v2" and last["previous"] == "v1"
		and log[0]["revision"] == "v1"'
}

@test "redeploying the same artifact under the same id uploads nothing" {
	deployed v1
	echo "left by a person" >"$RF_APP/releases/v1/marker"

	deploy --json "$ART" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "already there"
	rf_json_query 'not any(e["event"] == "progress" and e.get("bytes", 0) > 0 for e in ev)'
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] ||
		rf_fail "incoming is not empty:" "$(ls -la "$RF_APP/.relflip/incoming")"
	# The release directory was not replaced.
	[[ -f $RF_APP/releases/v1/marker ]]
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v1 live
	rf_assert_log 2 'last["result"] == "ok" and last["revision"] == "v1"'
}

@test "another artifact under an existing id is refused, exit 6, current unchanged" {
	deployed v1
	rf_snapshot v1 "$RF_APP/releases/v1"
	ART=$(rf_artifact v1 extra.txt=different)

	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "another artifact"
	rf_assert_current v1
	rf_assert_unchanged v1
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] ||
		rf_fail "incoming is not empty:" "$(ls -la "$RF_APP/.relflip/incoming")"
	rf_assert_log 2 'last["exit_code"] == 6 and last["result"] != "ok"'
	# The live release's record still describes the artifact it came from.
	rf_assert_record v1 live
	[[ $(rf_record_field v1 checksum) == "sha256:$(rf_sha256 "$RF_TMP/art/v1.tar.gz")" ]] ||
		rf_fail "the record of v1 now has checksum $(rf_record_field v1 checksum)," \
			"v1 was deployed from sha256:$(rf_sha256 "$RF_TMP/art/v1.tar.gz")"
	# So the real v1 can still be redeployed.
	deploy "$RF_TMP/art/v1.tar.gz" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "already there"
	rf_assert_current v1
	rf_assert_record v1 live
}

# ---------------------------------------------------------------------------
# Rejected artifacts: exit 3, before touching the server
# ---------------------------------------------------------------------------

# rejected FILE TEXT...: deploying FILE exits 3, says TEXT, creates nothing.
rejected() {
	local file=$1

	shift
	rf_snapshot srv "$RF_TMP/srv"
	deploy "$file" --revision v1
	rf_assert_status 3
	rf_assert_stderr_has "$@"
	rf_assert_not_exists "$RF_APP"
	rf_assert_unchanged srv
}

@test "an artifact with an absolute path is rejected, exit 3" {
	rf_hostile_tar absolute "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "/tmp/relflip-e2e-absolute" "absolute"
}

@test "an artifact with a '..' component is rejected, exit 3" {
	rf_hostile_tar dotdot "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "lib/../../escaped" ".."
}

@test "an artifact with a symlink leaving the release is rejected, exit 3" {
	rf_hostile_tar symlink-out "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "evil" "leaves the release"
}

@test "an artifact with a hard link to a file outside is rejected, exit 3" {
	rf_hostile_tar hardlink-out "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "evil" "hard link"
}

@test "an artifact with a device node is rejected, exit 3" {
	rf_hostile_tar device "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "evil" "device"
}

@test "an artifact with a FIFO is rejected, exit 3" {
	rf_hostile_tar fifo "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "evil" "FIFO"
}

@test "an artifact with a setuid file is rejected, exit 3" {
	rf_hostile_tar setuid "$RF_TMP/evil.tar.gz"
	rejected "$RF_TMP/evil.tar.gz" "bin/su" "setuid"
}

@test "random bytes are not an artifact, exit 3" {
	head -c 65536 /dev/urandom >"$RF_TMP/random.tar.gz"
	rejected "$RF_TMP/random.tar.gz" "not a tar"
}

@test "a missing artifact is rejected, exit 3, before any host is contacted" {
	# A port nothing listens on: a connection attempt would say so.
	rf_config --port "$(rf_free_port)"
	deploy "$RF_TMP/nothere.tgz" --revision v1
	rf_assert_status 3
	rf_assert_stderr_has "cannot open '$RF_TMP/nothere.tgz': No such file or directory" \
		"hint: deploy the tarball relflip pack wrote"
	[[ $stderr != *connect* ]] || rf_fail "it connected first:" "$stderr"
	rf_assert_not_exists "$RF_APP"
}

@test "a truncated gzip artifact is rejected, exit 3" {
	local size

	rf_random_file "$RF_TMP/src/data.bin" 262144
	"$RF_BIN" pack "$RF_TMP/src" -o "$RF_TMP/full.tar.gz" --revision v1 >/dev/null 3>&-
	size=$(stat -c %s "$RF_TMP/full.tar.gz")
	head -c $((size / 2)) "$RF_TMP/full.tar.gz" >"$RF_TMP/truncated.tar.gz"
	rejected "$RF_TMP/truncated.tar.gz" "truncated.tar.gz"
}

# ---------------------------------------------------------------------------
# Revision ids and refs
# ---------------------------------------------------------------------------

@test "an invalid revision id is a usage error, exit 2, and touches nothing" {
	local id

	ART=$(rf_artifact v1)
	for id in "../x" ".hidden" "a/b" "a b" "$(printf 'x%.0s' {1..65})"; do
		deploy "$ART" --revision "$id"
		rf_assert_status 2
		rf_assert_stderr_has "not a valid release id"
		rf_assert_not_exists "$RF_APP"
	done
}

@test "a deploy without any revision is a usage error, exit 2; GITHUB_SHA is the default" {
	ART=$(rf_artifact v7)
	unset GITHUB_SHA

	deploy "$ART"
	rf_assert_status 2
	rf_assert_stderr_has "revision"
	rf_assert_not_exists "$RF_APP"

	GITHUB_SHA=v7 deploy "$ART"
	rf_assert_status 0
	rf_assert_current v7
	rf_assert_record v7 live
}

@test "a ref outside allowed_refs is refused, exit 10; an allowed one deploys; GITHUB_REF is the default" {
	rf_config --app "allowed_refs = refs/heads/main"
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1 --ref refs/heads/feature
	rf_assert_status 10
	rf_assert_stderr_has "refs/heads/feature"
	rf_assert_not_exists "$RF_APP"

	GITHUB_REF=refs/heads/feature deploy "$ART" --revision v1
	rf_assert_status 10
	rf_assert_stderr_has "refs/heads/feature"
	rf_assert_not_exists "$RF_APP"

	deploy "$ART" --revision v1 --ref refs/heads/main
	rf_assert_status 0
	rf_assert_current v1
	[[ $(rf_record_field v1 ref) == refs/heads/main ]]

	ART=$(rf_artifact v2)
	GITHUB_REF=refs/heads/main deploy "$ART" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	[[ $(rf_record_field v2 ref) == refs/heads/main ]]
	rf_assert_log 2 'last["exit_code"] == 0'
}

# ---------------------------------------------------------------------------
# The deploy lock
# ---------------------------------------------------------------------------

# hold_lock SINCE: someone else's lock, as another relflip leaves it.
hold_lock() {
	mkdir -p "$RF_APP/.relflip/lock"
	printf '%s\n' "user=alice@ci" "runner=ci" "pid=1" "run_url=" "command=deploy" \
		"revision=old" "token=someone-elses" "since=$1" >"$RF_APP/.relflip/lock/info"
}

@test "a lock held by someone else stops the deploy, exit 5, names the holder and stays" {
	deployed v1
	hold_lock "$(date +%s)"
	rf_snapshot app "$RF_APP"
	ART=$(rf_artifact v2)

	deploy "$ART" --revision v2
	rf_assert_status 5
	rf_assert_stderr_has "alice"
	[[ -f $RF_APP/.relflip/lock/info ]]
	grep -qx "user=alice@ci" "$RF_APP/.relflip/lock/info"
	rf_assert_current v1
	rf_assert_record v1 live
	rf_assert_not_exists "$RF_APP/releases/v2"
	rf_assert_unchanged app
}

@test "a stale lock still stops the deploy, exit 5, and the hint says how to unlock" {
	deployed v1
	rf_config "[deploy]
lock_ttl = 60"
	hold_lock "$(date -d '2 hours ago' +%s)"
	touch -d '2 hours ago' "$RF_APP/.relflip/lock/info" "$RF_APP/.relflip/lock"
	rf_snapshot app "$RF_APP"
	ART=$(rf_artifact v2)

	deploy "$ART" --revision v2
	rf_assert_status 5
	rf_assert_stderr_has "alice" "stale" "unlock"
	[[ -f $RF_APP/.relflip/lock/info ]]
	rf_assert_current v1
	rf_assert_unchanged app
}

@test "with lock_wait the deploy waits for a lock released meanwhile, exit 0" {
	local holder

	deployed v1
	rf_config "[deploy]
lock_wait = 2"
	hold_lock "$(date +%s)"
	ART=$(rf_artifact v2)
	# The holder's info is a FIFO that relflip reads when it finds the lock
	# held: the other deploy finishes (the lock goes) only once relflip has
	# tried and is waiting, so the deploy below must have waited.
	mv "$RF_APP/.relflip/lock/info" "$RF_TMP/holder-info"
	mkfifo "$RF_APP/.relflip/lock/info"
	(
		cat "$RF_TMP/holder-info" >"$RF_APP/.relflip/lock/info"
		rm -rf "$RF_APP/.relflip/lock"
	) </dev/null >/dev/null 2>&1 3>&- &
	holder=$!
	rf_track proc "$holder"

	rf_bg_relflip wait -c "$RF_CONFIG" deploy "$ART" --revision v2
	rf_poll 20 rf_pid_dead "$holder" ||
		rf_fail "relflip did not read the held lock within 20 s:" "$(cat "$RF_TMP/wait.err")"
	rf_bg_wait 30
	rf_assert_status 0
	rf_assert_current v2
	rf_assert_record v2 live
	rf_assert_record v1 good
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 2 'last["exit_code"] == 0 and last["revision"] == "v2"'
}

# ---------------------------------------------------------------------------
# Disk, upload, resume
# ---------------------------------------------------------------------------

@test "an artifact larger than the free disk is refused before upload, exit 6" {
	local small=$RF_TMP/small left

	rf_sshd_start_tmpfs 2m "$small"
	RF_APP=$small/app
	rf_config --path "$RF_APP"
	rf_random_file "$RF_TMP/src/data.bin" $((5 * 1024 * 1024))
	"$RF_BIN" pack "$RF_TMP/src" -o "$RF_TMP/big.tar.gz" --revision v1 >/dev/null 3>&-

	deploy "$RF_TMP/big.tar.gz" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "not enough disk"
	# The tmpfs is only visible through that sshd: nothing was uploaded,
	# nothing unpacked, and the lock is gone.
	left=$(rf_ssh "cd '$small' && find . -type f ! -name log.jsonl ! -path './app/.relflip/releases/*'; du -sk . | cut -f1")
	[[ $left =~ ^[0-9]+$ ]] || rf_fail "files left on the tmpfs:" "$left"
	((left < 64)) || rf_fail "$left KiB used on the tmpfs"
	rf_ssh "test ! -e '$RF_APP/releases/v1' && test ! -e '$RF_APP/.relflip/lock' && test ! -e '$RF_APP/current'" ||
		rf_fail "release, lock or current left:" "$(rf_ssh "find '$small'")"
}

@test "an interrupted upload is resumed from the partial file" {
	local sha half

	rf_random_file "$RF_TMP/src/data.bin" $((1024 * 1024))
	"$RF_BIN" pack "$RF_TMP/src" -o "$RF_TMP/v1.tar.gz" --revision v1 >/dev/null 3>&-
	sha=$(rf_sha256 "$RF_TMP/v1.tar.gz")
	half=$(($(stat -c %s "$RF_TMP/v1.tar.gz") / 2))
	mkdir -p "$RF_APP/.relflip/incoming"
	head -c "$half" "$RF_TMP/v1.tar.gz" >"$RF_APP/.relflip/incoming/v1.${sha:0:12}.tar"

	deploy "$RF_TMP/v1.tar.gz" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "(resumed)"
	rf_assert_current v1
	rf_assert_record v1 live
	cmp "$RF_TMP/src/data.bin" "$RF_APP/releases/v1/data.bin"
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] ||
		rf_fail "incoming is not empty:" "$(ls -la "$RF_APP/.relflip/incoming")"
}

# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------

@test "a failing install hook stops the deploy before the switch, exit 7" {
	deployed v1
	rf_config '[hooks]
install = echo "install says hello"; exit 3'
	ART=$(rf_artifact v2)

	deploy "$ART" --revision v2
	rf_assert_status 7
	rf_assert_stderr_has "install hook failed" "install says hello"
	assert_failed_before_switch v2 v1
	rf_assert_log 2 'last["exit_code"] == 7 and last["revision"] == "v2" and last["result"] != "ok"'
}

@test "a failing install hook on the first deploy leaves no current, exit 7" {
	rf_config '[hooks]
install = exit 3'
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1
	rf_assert_status 7
	rf_assert_stderr_has "install hook failed"
	assert_failed_before_switch v1 ""
	rf_assert_log 1 'last["exit_code"] == 7'
}

@test "a failing migrate hook stops the deploy before the switch, exit 7" {
	deployed v1
	rf_config '[hooks]
install = true
migrate = echo "no database"; exit 1'
	ART=$(rf_artifact v2)

	deploy "$ART" --revision v2
	rf_assert_status 7
	rf_assert_stderr_has "migrate" "no database"
	assert_failed_before_switch v2 v1
	rf_assert_log 2 'last["exit_code"] == 7'
}

# hook_over_its_limit ID PREVIOUS: deploy ID with an install hook that
# sleeps past hook_timeout = 1: exit 7 within seconds, the hook and its
# children gone, nothing changed (PREVIOUS still live).
hook_over_its_limit() {
	local id=$1 previous=$2 started elapsed marker

	# A sleep no other process on this machine runs.
	marker="sleep 30.$RF_PORT"
	rf_config "[deploy]
hook_timeout = 1

[hooks]
install = $marker"
	ART=$(rf_artifact "$id")
	started=$(rf_now_ms)
	deploy "$ART" --revision "$id"
	elapsed=$(($(rf_now_ms) - started))
	rf_assert_status 7
	rf_assert_stderr_has "timed out"
	((elapsed < 15000)) || rf_fail "the deploy took $elapsed ms with hook_timeout = 1"
	rf_poll 3 eval "! pgrep -f '$marker' >/dev/null" ||
		rf_fail "the hook still runs:" "$(pgrep -af "$marker")"
	assert_failed_before_switch "$id" "$previous"
}

@test "a hook over hook_timeout is killed with its children, exit 7, within seconds" {
	deployed v1
	hook_over_its_limit v2 v1
}

# agent-parent.sh, shipped in the artifact for the install hook: prints the
# agent's process above the step, "relflip-agent" (Perl) or "timeout" (the
# shell's agent runs each step under timeout(1)).
AGENT_PARENT='p=$$
while [ "$p" -gt 1 ]; do
	c=$(cat /proc/$p/comm)
	case $c in relflip-agent | timeout) echo "agent-parent=$c"; exit 0 ;; esac
	p=$(cut -d " " -f 4 /proc/$p/stat)
done
echo "agent-parent=none"'

@test "the shell's agent, where the server asks for it, deploys and ends a hook over its limit the same" {
	rf_config "[hooks]
install = sh agent-parent.sh"
	deployed v1 "agent-parent.sh=$AGENT_PARENT"
	rf_assert_stderr_has "agent-parent=relflip-agent"

	printf 'environment="RELFLIP_AGENT=sh" %s\n' "$(cat "$RF_TMP/client_key.pub")" >"$RF_TMP/authorized_keys"
	deployed v2 "agent-parent.sh=$AGENT_PARENT"
	rf_assert_stderr_has "agent-parent=timeout"
	rf_assert_record v1 good
	hook_over_its_limit v3 v2
}

# without_libcurl ARGS...: relflip ARGS under `run`, in a mount namespace
# of its own where libcurl.so.4 is an empty file, as on a runner that lacks
# libcurl4.
without_libcurl() {
	local lib

	lib=$(ldconfig -p | awk '$1 == "libcurl.so.4" { print $NF; exit }')
	lib=$(readlink -f "$lib")
	[[ -f $lib ]] || rf_fail "no libcurl.so.4 to hide"
	run --separate-stderr unshare --mount sh -c \
		'mount --bind /dev/null "$1" && shift && exec "$@"' sh \
		"$lib" "$RF_BIN" "$@"
}

@test "without libcurl: pack and a deploy without [health] work; a deploy or rollback with [health] stops early, exit 1" {
	rf_src "$RF_TMP/src"
	without_libcurl pack "$RF_TMP/src" -o "$RF_TMP/v1.tar" --revision v1
	rf_assert_status 0
	with_app
	without_libcurl -c "$RF_CONFIG" deploy "$RF_TMP/v1.tar" --revision v1
	rf_assert_status 1
	rf_assert_stderr_has "the health check needs libcurl, which cannot be loaded" \
		"libcurl.so.4: file too short" "apt-get install libcurl4"
	[[ $stderr != *"lock "* ]] || rf_fail "it went on to the lock:" "$stderr"
	rf_assert_not_exists "$RF_APP/current"
	rf_assert_not_exists "$RF_APP/releases/v1"
	rf_config
	without_libcurl -c "$RF_CONFIG" deploy "$RF_TMP/v1.tar" --revision v1
	rf_assert_status 0
	rf_assert_current v1
	deployed v2
	# A rollback with [health] stops as early: still on v2, unlocked.
	with_app
	without_libcurl -c "$RF_CONFIG" rollback
	rf_assert_status 1
	rf_assert_stderr_has "the health check needs libcurl, which cannot be loaded"
	rf_assert_current v2
	rf_assert_not_exists "$RF_APP/.relflip/lock"
}

# ---------------------------------------------------------------------------
# Health checks and the way back
# ---------------------------------------------------------------------------

@test "failing health check rolls back to the previous release and exits 8" {
	with_app
	deployed v1
	rf_app_serves "$APP_PORT" "ok v1"
	ART=$(rf_artifact v2 HEALTH_STATUS=503)

	deploy "$ART" --revision v2
	rf_assert_status 8
	rf_assert_stderr_has "health check failed" "503" "current -> releases/v1"
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v2 bad
	rf_assert_record v1 live
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 2 'last["exit_code"] == 8 and last["revision"] == "v2" and last["previous"] == "v1"'
	# Restarted on the way back: it serves v1 again, healthy.
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

@test "a first deploy failing its health check leaves no current, says the services may still run it, exit 8" {
	with_app
	ART=$(rf_artifact v1 HEALTH_STATUS=503)

	deploy "$ART" --revision v1
	rf_assert_status 8
	rf_assert_stderr_has "health check failed" "current removed" \
		"; current removed on local (nothing was live there before) (exit 8)"
	[[ $stderr != *"switched back"* ]] || rf_fail "a first deploy said it switched back" "$(rf_show_run)"
	# The restart started the app from v1: the person must know it runs.
	rf_assert_stderr_has "may still run it"
	rf_assert_not_exists "$RF_APP/current"
	rf_assert_record v1 bad
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 1 'last["exit_code"] == 8'
}

@test "health failing on the way back too exits 9 and asks for a person" {
	with_app
	deployed v1
	# v1 goes bad behind relflip's back.
	echo 500 >"$RF_APP/releases/v1/HEALTH_STATUS"
	ART=$(rf_artifact v2 HEALTH_STATUS=503)

	deploy "$ART" --revision v2
	rf_assert_status 9
	# Both failures are told: v2's (503) and then v1's on the way back (500).
	rf_assert_stderr_has "a person is needed" "500" "503" "relflip: error: health check failed"
	rf_assert_current_valid
	rf_assert_record v2 bad
	rf_assert_release_intact v1
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 2 'last["exit_code"] == 9'
}

@test "a failing restart after the switch: its output under restart, exit 8, back on the previous release" {
	local ini

	with_app
	deployed v1
	# The restart prints, then fails, the first time only (the way back's
	# restart is the app's own, so that v1 is served again).
	ini=$(rf_health_ini "$APP_PORT")
	rf_config "${ini%%restart = *}restart = if [ ! -e '$RF_TMP/failed-once' ]; then touch '$RF_TMP/failed-once'; echo restart-said-this; echo broken-on-purpose >&2; exit 5; fi; ${ini#*restart = }"
	ART=$(rf_artifact v2)

	deploy --json "$ART" --revision v2
	rf_assert_status 8
	rf_assert_stderr_has "restarting web: restart hook failed with exit 5 on local: broken-on-purpose" \
		"switched back"
	# The events in order: the switch ended, the restart's output, the
	# restart failed; then the way back.
	rf_py '
import json, sys
ev = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
def at(pred):
    return next(i for i, e in enumerate(ev) if pred(e))
sw = at(lambda e: e.get("stage") == "switch" and e.get("phase") == "end" and e["ok"])
said = at(lambda e: "restart-said-this" in json.dumps(e))
rs = at(lambda e: e.get("stage") == "restart" and e.get("phase") == "end")
assert sw < said < rs, (sw, said, rs)
assert ev[said].get("stage") == "restart", ev[said]
assert not ev[rs]["ok"] and "broken-on-purpose" in ev[rs]["detail"], ev[rs]
' "$output" || rf_fail "events out of order" "$(rf_show_run)"
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v2 bad
	rf_assert_record v1 live
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

@test "an app still serving the old release fails expect_revision and rolls back, exit 8" {
	with_app "expect_revision = yes"
	deployed v1
	rf_app_serves "$APP_PORT" "ok v1"
	# A restart line that restarts nothing.
	rf_config "$(rf_health_ini "$APP_PORT" "expect_revision = yes" | sed 's|^restart = .*|restart = true|')"
	ART=$(rf_artifact v2)

	deploy "$ART" --revision v2
	rf_assert_status 8
	if [[ $stderr != *"old release"* && $stderr != *"does not mention"* ]]; then
		rf_fail "expected 'old release' or 'does not mention' on stderr" "$(rf_show_run)"
	fi
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_record v2 bad
	rf_assert_record v1 live
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

# ---------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------

@test "SIGINT before the switch cleans up, unlocks and exits 130 with current unchanged" {
	local marker

	deployed v1
	marker="sleep 5.$RF_PORT"
	rf_config "[hooks]
install = echo hook-started; $marker"
	ART=$(rf_artifact v2)

	rf_bg_relflip int -c "$RF_CONFIG" deploy "$ART" --revision v2
	rf_poll 20 rf_file_has "$RF_TMP/int.err" hook-started ||
		rf_fail "the install hook did not start:" "$(cat "$RF_TMP/int.err")"
	kill -INT "$RF_BG_PID"
	rf_bg_wait 20
	rf_assert_status 130
	rf_assert_current v1
	rf_assert_release_intact v1
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_record v2 failed
	rf_assert_record v1 live
	rf_assert_log 2 'last["exit_code"] == 130 and last["revision"] == "v2"'
	# Cleaned up: the hook relflip started does not run on, unlocked.
	rf_poll 3 eval "! pgrep -f '$marker' >/dev/null" ||
		rf_fail "the install hook still runs after relflip exited:" "$(pgrep -af "$marker")"
}

@test "SIGINT after the switch lets the deploy finish its check, current valid, lock released" {
	local live gate ini

	with_app
	deployed v1
	# The restart (it runs once current has moved) says it started, then
	# waits (20 s at most) until the test has sent SIGINT.
	gate="touch '$RF_TMP/restart-began'; i=0; while [ ! -e '$RF_TMP/restart-go' ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i + 1)); done; "
	ini=$(rf_health_ini "$APP_PORT")
	rf_config "${ini%%restart = *}restart = $gate${ini#*restart = }"
	grep -qF "restart = $gate" "$RF_CONFIG"
	ART=$(rf_artifact v2)

	rf_bg_relflip int -c "$RF_CONFIG" deploy "$ART" --revision v2
	rf_poll 20 test -e "$RF_TMP/restart-began" ||
		rf_fail "no restart after the switch:" "$(cat "$RF_TMP/int.err")"
	kill -INT "$RF_BG_PID"
	touch "$RF_TMP/restart-go"
	rf_bg_wait 30
	if [[ $status != 0 && $status != 130 ]]; then
		rf_fail "expected exit 0 (or 130), got $status" "$(rf_show_run)"
	fi
	rf_assert_current_valid
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	live=$(rf_current_release)
	rf_assert_record "$live" live
	if [[ $status == 0 ]]; then
		[[ $live == v2 ]] || rf_fail "exit 0 but current -> $live"
	fi
	# The health check was finished: the app serves what current says.
	[[ $(rf_app_body "$APP_PORT") == "ok $live" ]] ||
		rf_fail "current -> $live but the app says: $(rf_app_body "$APP_PORT")"
	rf_assert_log 2 "last['revision'] == 'v2' and last['exit_code'] == $status"
}

# ---------------------------------------------------------------------------
# Quoting, dry run, shared files
# ---------------------------------------------------------------------------

@test "an app path with a space and a quote, and a punctuated id, deploy fine" {
	RF_APP="$RF_TMP/srv/it's app"
	rf_config --path "$RF_APP" --app "shared_dirs = log" "[hooks]
install = printf '%s' \"\$RELFLIP_REVISION\" > rev.txt"
	ART=$(rf_artifact v1.0_rc-1)

	deploy "$ART" --revision v1.0_rc-1
	rf_assert_status 0
	rf_assert_current v1.0_rc-1
	rf_assert_release_intact v1.0_rc-1
	rf_assert_record v1.0_rc-1 live
	cmp "$RF_APP/releases/v1.0_rc-1/rev.txt" <(printf '%s' v1.0_rc-1)
	[[ -L $RF_APP/releases/v1.0_rc-1/log ]]
	rf_assert_log 1 'last["exit_code"] == 0'
	rf_assert_not_exists "$RF_TMP/srv/it" "$RF_TMP/srv/app"
}

@test "shell metacharacters in shared_dirs are refused or taken literally, never run" {
	local pwn=/tmp/relflip-pwned-$$-$RF_PORT

	# One entry with a space, as a quoted INI value; then words that would
	# run a command if a remote shell saw them unquoted.
	rf_config --app "shared_dirs = \"x;touch $pwn-a\""
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	if [[ $status != 0 && $status != 2 ]]; then
		rf_fail "expected exit 2 (refused) or 0 (taken literally)" "$(rf_show_run)"
	fi
	rf_assert_not_exists "$pwn-a"

	rf_config --app "shared_dirs = x;>$RF_TMP/pwned-b \$(>$RF_TMP/pwned-c) \`>$RF_TMP/pwned-d\` 'x'>$RF_TMP/pwned-e"
	deploy "$ART" --revision v1
	if [[ $status != 0 && $status != 2 ]]; then
		rf_fail "expected exit 2 (refused) or 0 (taken literally)" "$(rf_show_run)"
	fi
	rf_assert_not_exists "$pwn-a" "$RF_TMP/pwned-b" "$RF_TMP/pwned-c" "$RF_TMP/pwned-d" \
		"$RF_TMP/pwned-e"
	if [[ $status == 0 ]]; then
		# Taken literally: directories with those odd names, under shared/.
		[[ -d $RF_APP/shared/x\;\>$RF_TMP/pwned-b && -d $RF_APP/shared/\$\(\>$RF_TMP/pwned-c\) ]] ||
			rf_fail "exit 0, but the shared dirs were not made as named:" "$(find "$RF_APP/shared")"
		[[ -L $RF_APP/releases/v1/x\;\>$RF_TMP/pwned-b ]] ||
			rf_fail "no link in the release:" "$(find "$RF_APP/releases/v1")"
	fi
	[[ -z $(find "$RF_TMP" /tmp -maxdepth 1 -name '*pwned*' 2>/dev/null) ]] ||
		rf_fail "pwned:" "$(find "$RF_TMP" /tmp -maxdepth 1 -name '*pwned*')"
	if [[ -e $RF_APP/current ]]; then
		rf_assert_current_valid
	fi
}

@test "--dry-run on a missing app path prints the plan with the remote commands and creates nothing" {
	rf_snapshot srv "$RF_TMP/srv"
	ART=$(rf_artifact v1)

	run --separate-stderr relflip -c "$RF_CONFIG" deploy "$ART" --revision v1 --dry-run
	rf_assert_status 0
	rf_assert_stdout_has "mv -T" "v1" "$RF_APP"
	rf_assert_not_exists "$RF_APP"
	rf_assert_unchanged srv
}

@test "--dry-run on a deployed host changes nothing: no lock, no log line, no upload" {
	deployed v1
	rf_snapshot app "$RF_APP"
	ART=$(rf_artifact v2)

	run --separate-stderr relflip -c "$RF_CONFIG" deploy "$ART" --revision v2 --dry-run
	rf_assert_status 0
	rf_assert_stdout_has "mv -T" "v2"
	rf_assert_stderr_has "free (a dry run takes no lock)"
	rf_assert_unchanged app
	rf_assert_current v1
	rf_assert_log 1
	rf_assert_not_exists "$RF_APP/.relflip/lock" "$RF_APP/releases/v2"
}

@test "shared dirs and files are linked into each release and survive the next deploy; a missing shared file is exit 6" {
	local r

	rf_config --app "shared_dirs = log" --app "shared_files = .env"
	# A missing shared file stops the deploy before anything changes.
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "shared_files missing" "shared/.env"
	rf_assert_not_exists "$RF_APP/shared/.env" "$RF_APP/releases/v1" "$RF_APP/current"
	install -m 0640 /dev/null "$RF_APP/shared/.env"
	deployed v1
	echo "line from v1" >"$RF_APP/shared/log/app.log"
	echo "SECRET=1" >"$RF_APP/shared/.env"

	ART=$(rf_artifact v2 log/.keep=placeholder)
	deploy "$ART" --revision v2
	rf_assert_status 0
	rf_assert_current v2
	for r in v1 v2; do
		[[ -L $RF_APP/releases/$r/log && -L $RF_APP/releases/$r/.env ]] ||
			rf_fail "releases/$r: log or .env is not a symlink:" "$(ls -la "$RF_APP/releases/$r")"
		[[ $(realpath "$RF_APP/releases/$r/log") == "$(realpath "$RF_APP/shared/log")" ]]
		[[ $(realpath "$RF_APP/releases/$r/.env") == "$(realpath "$RF_APP/shared/.env")" ]]
	done
	[[ -d $RF_APP/shared/log && -f $RF_APP/shared/.env ]]
	[[ $(cat "$RF_APP/releases/v2/log/app.log") == "line from v1" ]]
	[[ $(cat "$RF_APP/current/.env") == "SECRET=1" ]]
	rf_assert_record v1 good
	rf_assert_record v2 live
}
