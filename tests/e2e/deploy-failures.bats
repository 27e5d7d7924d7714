#!/usr/bin/env bats
# relflip deploy when something fails, end to end, as in deploy.bats: hooks
# that fail or overrun, health checks and the way back, signals. Every test
# asserts the exit code, what stderr says, and what the server holds
# afterwards.

load lib/deploy-suite

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
