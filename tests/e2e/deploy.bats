#!/usr/bin/env bats
# relflip deploy, end to end: ./relflip against a real sshd on loopback, the
# sample app for health checks. Every test asserts the exit code, what the
# person reading stderr is told, and what the server holds afterwards:
# where current points, the releases, their records and the deploy log.

load lib/deploy-suite

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
