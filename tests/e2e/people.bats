#!/usr/bin/env bats
# relflip status, log, exec, lock/unlock and setup, end to end: ./relflip
# against a real sshd on loopback and the sample app, each test on a copy
# of a server that took five real deploys (v1..v4 good, v5 live).

# The golden server, its sshd and the shared deploys, as in ops.bats.
load lib/ops-suite

# st_json EXPR: EXPR (Python, over `st`, the run's one status event) holds.
st_json() {
	rf_assert_json_lines
	rf_json_query "[e for e in ev if e['event'] == 'status'][0] and (lambda st: $1)([e for e in ev if e['event'] == 'status'][0])"
}

@test "status shows the live release, since when, by whom, the rollback target and a free lock; --json says the same" {
	ops_server

	ops_run status
	rf_assert_status 0
	rf_assert_stdout_has "local" "v5" "root" "v4" "free"
	ops_after 0

	ops_run --json status
	rf_assert_status 0
	st_json 'st["host"] == "local" and st["live"] == "v5" and st["actor"] == "root"
		and st["rollback_target"] == "v4" and st["lock"] == "free" and st["since"].startswith("20")'
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
}

@test "status on an unreachable host: exit 4, saying which" {
	ops_server
	rf_config --port "$(rf_free_port)" --timeout 2

	ops_run status
	rf_assert_status 4
	rf_assert_stderr_has "local"
}

@test "lock freezes: status shows it, deploy, rollback and prune refuse it with exit 5 naming the message and who, unlock lifts it" {
	local art

	ops_server
	art=$(ops_pack v6)

	ops_run lock -m "audit freeze until Monday"
	rf_assert_status 0
	rf_assert_stderr_has "frozen"
	[[ -f $RF_APP/.relflip/lock/info ]] || rf_fail "no lock after relflip lock"
	ops_assert_log_added 1 lock 'new[0]["message"] == "audit freeze until Monday"'

	ops_run status
	rf_assert_status 0
	rf_assert_stdout_has "FROZEN by $(ops_me) since " "audit freeze until Monday"
	ops_run --json status
	st_json 'st["lock"] == "frozen" and st["lock_message"] == "audit freeze until Monday"
		and st["lock_by"] == "'"$(ops_me)"'"'

	ops_run deploy "$art" --revision v6
	rf_assert_status 5
	rf_assert_stderr_has "frozen by $(ops_me)" "audit freeze until Monday" "unlock"
	ops_assert_current v5
	rf_assert_not_exists "$RF_APP/releases/v6"

	ops_run rollback
	rf_assert_status 5
	rf_assert_stderr_has "frozen by $(ops_me)" "audit freeze until Monday"
	ops_assert_current v5
	ops_assert_record v5 live

	ops_run prune --keep 1
	rf_assert_status 5
	rf_assert_stderr_has "audit freeze until Monday"
	ops_assert_releases v1 v2 v3 v4 v5

	# A second freeze is refused too: the host is already frozen.
	ops_run lock -m "another"
	rf_assert_status 5
	rf_assert_stderr_has "audit freeze until Monday"

	ops_run unlock
	rf_assert_status 0
	rf_assert_stderr_has "lifted the freeze" "audit freeze until Monday"
	ops_after 1 unlock

	ops_run deploy "$art" --revision v6
	rf_assert_status 0
	ops_after 1 deploy
	ops_assert_current v6
}

@test "lock without -m, with an empty or a control-character message: exit 2, nothing frozen" {
	ops_server

	ops_run lock
	rf_assert_status 2
	rf_assert_stderr_has "-m MESSAGE is required"
	ops_run lock -m ""
	rf_assert_status 2
	ops_run lock -m $'two\nlines'
	rf_assert_status 2
	ops_run lock -m "$(printf 'x%.0s' {1..201})"
	rf_assert_status 2
	rf_assert_not_exists "$RF_APP/.relflip/lock"
}

@test "lock while a deploy holds the lock: exit 5, the deploy's lock left as it was" {
	ops_server
	ops_lock_by someone@ci 4242

	ops_run lock -m "freeze"
	rf_assert_status 5
	rf_assert_stderr_has "someone@ci"
	grep -q '^user=someone@ci$' "$RF_APP/.relflip/lock/info" || rf_fail "the deploy's lock was changed"
	grep -q '^command=deploy$' "$RF_APP/.relflip/lock/info" || rf_fail "the deploy's lock was changed"
}

@test "log -n N: the newest N events oldest first, with who, what, release and result; --json one log event each" {
	ops_server

	ops_run log -n 2
	rf_assert_status 0
	rf_assert_stdout_has "v4 (was v3)" "v5 (was v4)" "root" "deploy" "ok"
	[[ $output != *"v3 (was v2)"* ]] || rf_fail "log -n 2 showed a third event" "$(rf_show_run)"
	[[ $(grep -c deploy <<<"$output") -eq 2 ]] || rf_fail "log -n 2: not two lines" "$(rf_show_run)"

	ops_run --json log -n 3
	rf_assert_status 0
	rf_assert_json_lines
	rf_json_query '[e["revision"] for e in ev if e["event"] == "log"] == ["v3", "v4", "v5"]'
	rf_json_query 'all(e["host"] == "local" and e["command"] == "deploy" and e["result"] == "ok"
		and e["actor"] == "root" for e in ev if e["event"] == "log")'

	ops_run log
	rf_assert_status 0
	rf_assert_stdout_has "v1" "v5 (was v4)"
}

@test "log skips a torn line with a warning; bad -n is exit 2" {
	ops_server
	printf '{"time": "2026-' >>"$RF_APP/.relflip/log.jsonl"

	ops_run log -n 5
	rf_assert_status 0
	rf_assert_stderr_has "1 line of $RF_APP/.relflip/log.jsonl skipped" "torn"
	rf_assert_stdout_has "v5 (was v4)"

	for n in 0 -1 abc 10001; do
		ops_run log -n "$n"
		rf_assert_status 2
		rf_assert_stderr_has "-n '$n'"
	done
}

@test "exec runs in current/ with RELFLIP_* set, output prefixed by the host, exit code passed on" {
	ops_server

	# shellcheck disable=SC2016 # expanded by the remote shell, on purpose
	ops_run exec -- sh -c 'echo "rev=$RELFLIP_REVISION prev=$RELFLIP_PREVIOUS_REVISION host=$RELFLIP_HOST"; cat index.html; pwd -P'
	rf_assert_status 0
	rf_assert_stderr_has "local | rev=v5 prev=v4 host=local" "local | <h1>v5</h1>" "local | $RF_APP/releases/v5"

	ops_run exec -- ls "a dir; touch $RF_TMP/pwned"
	[[ $status -ne 0 ]] || rf_fail "ls of a missing dir succeeded" "$(rf_show_run)"
	rf_assert_not_exists "$RF_TMP/pwned"

	ops_run exec -- sh -c 'exit 3'
	rf_assert_status 3
	rf_assert_stderr_has "exited 3 on local"

	ops_run --json exec -- sh -c 'exit 7'
	rf_assert_status 7
	rf_assert_json_lines
	rf_json_query '[e for e in ev if e["event"] == "exec"][0]["host"] == "local"'
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 7'
}

@test "exec on a host with no live release is an error for that host (exit 6); exec with no command is exit 2" {
	ops_server
	rm "$RF_APP/current"

	ops_run exec -- touch "$RF_TMP/ran"
	rf_assert_status 6
	rf_assert_stderr_has "local"
	rf_assert_not_exists "$RF_TMP/ran"

	ops_run exec
	rf_assert_status 2
	rf_assert_stderr_has "no command"
	ops_run exec --
	rf_assert_status 2
}

@test "exec is not stopped by a freeze" {
	ops_server
	ops_run lock -m "freeze"
	rf_assert_status 0

	ops_run exec -- true
	rf_assert_status 0
}

@test "setup creates the layout and shared_dirs, lists missing shared_files, and a second run changes nothing" {
	rf_sshd_any
	rf_config --app "shared_dirs = log tmp/cache" --app "shared_files = .env config/db.yml"

	ops_run setup
	rf_assert_status 0
	for d in releases shared/log shared/tmp/cache .relflip/releases .relflip/incoming; do
		[[ -d $RF_APP/$d ]] || rf_fail "setup did not create $d" "$(rf_show_run)"
	done
	rf_assert_stderr_has ".env" "config/db.yml"
	rf_assert_not_exists "$RF_APP/shared/.env"
	rf_assert_not_exists "$RF_APP/current"
	rf_snapshot

	ops_run setup
	rf_assert_status 0
	rf_assert_stderr_has "already there" ".env"
	rf_assert_unchanged

	touch "$RF_APP/shared/.env"
	ops_run --json setup
	rf_assert_status 0
	rf_assert_json_lines
	rf_json_query 'any(e["event"] == "setup" for e in ev)'
	[[ $output != *'.env'* ]] || rf_fail "a present shared file listed as missing" "$(rf_show_run)"
	[[ $output == *'db.yml'* ]] || rf_fail "the missing shared file not listed" "$(rf_show_run)"
}

@test "setup where a directory cannot be made: exit 6 naming it" {
	rf_sshd_any
	mkdir -p "$RF_APP"
	: >"$RF_APP/shared"
	rf_config --app "shared_dirs = log"

	ops_run setup
	rf_assert_status 6
	rf_assert_stderr_has "shared"
}

@test "lock and unlock with --json: JSON lines and a result event each" {
	ops_server

	ops_run --json lock -m "json freeze"
	rf_assert_status 0
	rf_assert_json_lines
	rf_json_query 'ev[0]["command"] == "lock" and ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'

	ops_run --json deploy "$(ops_pack v6)" --revision v6
	rf_assert_status 5
	rf_assert_json_lines
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 5'
	[[ $output == *"json freeze"* ]] || rf_fail "the JSON of a refused deploy does not name the freeze" "$(rf_show_run)"

	ops_run --json unlock
	rf_assert_status 0
	rf_assert_json_lines
	rf_assert_not_exists "$RF_APP/.relflip/lock"
}
