#!/usr/bin/env bats
# relflip prune, releases and unlock, and a Capistrano layout, end to end,
# as in ops.bats (same golden server, same assertions after every command).

load lib/ops-suite

# ---------------------------------------------------------------------------
# prune
# ---------------------------------------------------------------------------

# assert_removed N ID...: stderr says "removed N releases (IDS), X freed"
# with exactly these ids, in any order.
assert_removed() {
	local n=$1 re ids

	shift
	re="removed $n releases?( \(([^)]*)\))?, [0-9.]+ ?[KMGT]?i?B freed"
	[[ $stderr =~ $re ]] || {
		rf_fail "expected 'removed $n releases (...), X freed'" "$(rf_show_run)"
		return 1
	}
	ids=$(id_set <<<"${BASH_REMATCH[2]}")
	[[ $ids == "$(id_set <<<"$*")" ]] ||
		rf_fail "removed '$ids', expected '$*'" "$(rf_show_run)"
}

# id_set: the words of stdin (separated by spaces or commas), sorted, on
# one line.
id_set() {
	tr ' ,' '\n\n' | { grep -v '^$' || true; } | LC_ALL=C sort | tr '\n' ' '
}

@test "prune --keep 1 keeps the live release and the rollback target, and removes the rest with their records" {
	ops_server

	ops_run prune --keep 1
	rf_assert_status 0
	assert_removed 3 v1 v2 v3
	ops_after 1 prune
	ops_assert_releases v4 v5
	ops_assert_current v5
	rf_assert_not_exists "$RF_APP/.relflip/releases/v1.json" "$RF_APP/.relflip/releases/v2.json" \
		"$RF_APP/.relflip/releases/v3.json"
	ops_assert_record v4 good
	ops_assert_record v5 live
	ops_app_serves "ok v5"
}

@test "prune without --keep keeps [deploy] keep_releases: the live one and the newest good ones" {
	ops_server '[deploy]
keep_releases = 3'

	ops_run --json prune
	rf_assert_status 0
	assert_removed 2 v1 v2
	ops_events 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	ops_after 1 prune
	ops_assert_releases v3 v4 v5
	ops_assert_current v5
}

@test "a deploy prunes to keep_releases, and its log line says how many it removed" {
	ops_server '[deploy]
keep_releases = 3'

	ops_run deploy "$(ops_pack v6)" --revision v6
	rf_assert_status 0
	rf_assert_stderr_has "record    local pruned 3"
	ops_after 1 deploy 'new[0]["pruned"] == 3'
	ops_assert_releases v4 v5 v6
	ops_assert_current v6
}

@test "prune never removes a staged release" {
	ops_server
	ops_write_record v6 staged

	ops_run prune --keep 1
	rf_assert_status 0
	assert_removed 3 v1 v2 v3
	ops_after 1 prune
	ops_assert_releases v4 v5 v6
	ops_assert_record v6 staged
}

@test "prune leaves directories that are not release ids alone and says so, with or without --adopt" {
	ops_server
	mkdir -p "$RF_APP/releases/foreign dir" "$RF_APP/releases/not-an-id!"
	echo keep >"$RF_APP/releases/foreign dir/data"
	echo keep >"$RF_APP/releases/not-an-id!/data"

	ops_run prune --keep 1
	rf_assert_status 0
	rf_assert_stderr_has "foreign dir" "not-an-id!" "not a relflip release: left alone"
	assert_removed 3 v1 v2 v3
	ops_after 1 prune
	ops_assert_releases v4 v5 "foreign dir" "not-an-id!"

	ops_run prune --keep 1 --adopt
	rf_assert_status 0
	rf_assert_stderr_has "not a relflip release: left alone"
	[[ $stderr =~ removed\ 0\ releases ]] || rf_fail "expected nothing removed" "$(rf_show_run)"
	ops_after 1 prune
	ops_assert_releases v4 v5 "foreign dir" "not-an-id!"
	[[ $(cat "$RF_APP/releases/foreign dir/data" "$RF_APP/releases/not-an-id!/data") == $'keep\nkeep' ]]
}

@test "prune removes failed releases beyond keep_failed, the newest failed one kept" {
	ops_server
	deploy_failing v6
	ops_next_second
	deploy_failing v7

	ops_run prune
	rf_assert_status 0
	assert_removed 1 v6
	ops_after 1 prune
	ops_assert_releases v1 v2 v3 v4 v5 v7
	ops_assert_record v7 failed
	rf_assert_not_exists "$RF_APP/.relflip/releases/v6.json"
}

@test "prune removes hundreds of old releases in one go" {
	ops_server
	ops_old_releases 300

	ops_run prune --keep 5
	rf_assert_status 0
	rf_assert_stderr_has "removed 300 releases"
	ops_after 1 prune 'new[0].get("removed") in (None, 300)'
	ops_assert_releases v1 v2 v3 v4 v5
	ops_assert_current v5
	[[ $(find "$RF_APP/.relflip/releases" -name 'o*.json' | wc -l) == 0 ]] ||
		rf_fail "records of pruned releases are left"
}

@test "prune --dry-run says what it would remove and changes nothing" {
	ops_server
	mkdir -p "$RF_APP/releases/.tmp-v6-0123456789abcdef0123456789abcdef"
	echo part >"$RF_APP/.relflip/incoming/v6.0123456789ab.tar"
	rf_snapshot app "$RF_APP"

	ops_run prune --keep 1 --dry-run
	rf_assert_status 0
	rf_assert_stderr_has "would remove 3 releases"
	# The paths, and the command that would remove them (man relflip).
	rf_assert_stdout_has "local: would remove these, with rm -rf -- in $RF_APP:" \
		"releases/.tmp-v6-0123456789abcdef0123456789abcdef" ".relflip/incoming/v6.0123456789ab.tar"
	ops_after 0
	rf_assert_unchanged app
}

@test "prune says why each release it kept beyond --keep stays: live, rollback target, keep_failed" {
	ops_server
	deploy_failing v6

	ops_run prune --keep 1
	rf_assert_status 0
	rf_assert_stderr_has "local: kept 3 releases, more than --keep 1: v6 failed (keep_failed 1), v5 live, v4 the rollback target"
	ops_assert_releases v4 v5 v6

	# Within --keep, nothing to explain.
	ops_run prune --keep 5
	rf_assert_status 0
	[[ $stderr != *"more than --keep"* ]] || rf_fail "explained a prune within --keep" "$(rf_show_run)"
}

@test "prune --dry-run --json keeps stdout to JSON events" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run --json prune --keep 1 --dry-run
	rf_assert_status 0
	rf_assert_json_lines
	ops_events 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	ops_after 0
	rf_assert_unchanged app
}

# ---------------------------------------------------------------------------
# releases
# ---------------------------------------------------------------------------

@test "releases lists every release with its status and marks the live one with *" {
	ops_server
	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	deploy_failing v6
	ops_write_record v7 staged
	rf_make_release handmade
	mkdir -p "$RF_APP/releases/foreign dir"
	rf_snapshot app "$RF_APP"

	ops_run releases
	rf_assert_status 0
	printf '%s\n' "$output" | "$RF_PYTHON" -c '
import sys
want = {"v1": "good", "v2": "good", "v3": "good", "v4": "live", "v5": "bad",
        "v6": "failed", "v7": "staged", "handmade": "unknown"}
got, starred = {}, []
for line in sys.stdin:
    t = line.split()
    if t and t[0] == "*":
        t = t[1:]
        starred.append(t[0] if t else "")
    if t and t[0] in want:
        got[t[0]] = t[1] if len(t) > 1 else ""
if got != want:
    sys.exit("statuses: got %r, expected %r" % (got, want))
if starred != ["v4"]:
    sys.exit("lines marked *: %r, expected exactly v4" % starred)
' || rf_fail "$(rf_show_run)"
	ops_after 0
	rf_assert_unchanged app
}

@test "releases --json prints one release event per release, live true exactly once, fields from the records" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run --json releases
	rf_assert_status 0
	rf_assert_json_lines
	ops_events 'sorted(e["id"] for e in ev if e["event"] == "release") == ["v1", "v2", "v3", "v4", "v5"]'
	ops_events '[e["id"] for e in ev if e["event"] == "release" and e["live"] is True] == ["v5"]'
	ops_events 'all(e.get("host") == "local" and all(k in e for k in ("id", "status", "live",
		"deployed_at", "actor", "ref", "checksum", "size")) for e in ev if e["event"] == "release")'
	ops_events 'all(e["status"] == ("live" if e["id"] == "v5" else "good") for e in ev if e["event"] == "release")'
	ops_events "[e['checksum'] for e in ev if e['event'] == 'release' and e['id'] == 'v3'] == ['$(ops_record_field v3 checksum)']"
	ops_after 0
	rf_assert_unchanged app
}

@test "releases --json starts with a start event and ends with a result event" {
	ops_server

	ops_run --json releases
	rf_assert_status 0
	ops_events 'ev[0]["event"] == "start"'
	ops_events 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	ops_after 0
}

# ---------------------------------------------------------------------------
# unlock
# ---------------------------------------------------------------------------

@test "unlock removes this runner's own lock, left by a deploy killed with SIGKILL" {
	local art me

	ops_server
	me=$(ops_me)
	ops_config_file "$RF_TMP/blocking.ini" "[hooks]
install = touch '$RF_TMP/hook-started'; i=0; while [ ! -e '$RF_TMP/hook-go' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done"
	art=$(ops_pack v6)
	ops_bg deploy -c "$RF_TMP/blocking.ini" deploy "$art" --revision v6
	rf_poll 30 test -e "$RF_TMP/hook-started" || rf_fail "the install hook did not start" \
		"$(cat "$RF_TMP/deploy.err")"
	kill -KILL "$OPS_BG_PID"
	wait "$OPS_BG_PID" || true
	touch "$RF_TMP/hook-go"
	[[ -d $RF_APP/.relflip/lock ]] || rf_fail "the killed deploy left no lock"
	grep -qx "user=$me" "$RF_APP/.relflip/lock/info" ||
		rf_fail "the lock is not $me's:" "$(cat "$RF_APP/.relflip/lock/info")"

	# The lock holds off a rollback meanwhile.
	OPS_LOG_BEFORE=$(ops_log_count)
	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 5
	ops_assert_current v5
	ops_assert_log_added 0

	ops_run unlock
	rf_assert_status 0
	rf_assert_stderr_has "yours" "$me"
	ops_after 1 unlock
	rf_assert_not_exists "$RF_APP/.relflip/lock"

	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_current v4
}

@test "unlock removes a stale lock: not renewed for lock_ttl" {
	ops_server '[deploy]
lock_ttl = 60'
	ops_lock_by someone@elsewhere 4242 "2 hours ago"

	ops_run unlock
	rf_assert_status 0
	rf_assert_stderr_has "stale" "someone@elsewhere"
	ops_after 1 unlock
	ops_assert_current v5
}

@test "unlock refuses a fresh lock of another runner with exit 5 and a hint; --force removes it and names the holder" {
	local since

	ops_server '[deploy]
lock_ttl = 60'
	ops_lock_by someone@elsewhere 4242
	since=$(sed -n 's/^since=//p' "$RF_APP/.relflip/lock/info")
	since=$(date -u -d "@$since" +%Y-%m-%dT%H:%M:%S)
	rf_snapshot app "$RF_APP"

	ops_run rollback
	rf_assert_status 5
	rf_assert_stderr_has "someone@elsewhere"
	rf_assert_current_valid
	ops_assert_log_added 0

	ops_run unlock
	rf_assert_status 5
	rf_assert_stderr_has "someone@elsewhere" "hint" "--force"
	ops_assert_log_added 0
	rf_assert_unchanged app

	ops_run unlock --force
	rf_assert_status 0
	rf_assert_stderr_has "someone@elsewhere" "$since"
	ops_after 1 unlock
	ops_assert_current v5
}

@test "unlock without a lock exits 0 and changes nothing" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run unlock
	rf_assert_status 0
	ops_after 0
	rf_assert_unchanged app
}

# ---------------------------------------------------------------------------
# A server set up for Capistrano
# ---------------------------------------------------------------------------

# A Capistrano layout at $RF_APP, the sample app serving it, and a config
# whose health check does not expect the release id (REVISION holds a SHA).
capistrano_server() {
	rf_sshd_any
	ops_capistrano
	OPS_PORT=$(rf_free_port)
	rf_app_start "$OPS_PORT"
	rf_config "$(ops_service_ini "$OPS_PORT" no)"
}

@test "a Capistrano layout: releases lists its releases as unknown, rollback --to the older one works" {
	capistrano_server
	ops_app_serves "ok $OPS_CAP_NEW_SHA"

	ops_run releases
	rf_assert_status 0
	[[ $output =~ \*\ +$OPS_CAP_NEW\ +unknown ]] || rf_fail "expected '* $OPS_CAP_NEW unknown'" "$(rf_show_run)"
	[[ $output =~ \ $OPS_CAP_OLD\ +unknown ]] || rf_fail "expected '$OPS_CAP_OLD unknown'" "$(rf_show_run)"
	ops_after 0

	ops_run rollback --to "$OPS_CAP_OLD"
	rf_assert_status 0
	ops_after 1 rollback "new[0][\"revision\"] == \"$OPS_CAP_OLD\""
	ops_assert_current "$OPS_CAP_OLD"
	ops_app_serves "ok $OPS_CAP_OLD_SHA"
	[[ -f $RF_APP/releases/$OPS_CAP_NEW/public/index.html && -d $RF_APP/shared/log ]]
}

@test "a Capistrano layout: prune --keep 1 leaves it alone; --adopt keeps the way back, removes older ones, never current" {
	capistrano_server
	# A third, older release from before relflip.
	cp -a "$RF_APP/releases/$OPS_CAP_OLD" "$RF_APP/releases/20231201120000"
	touch -d 2023-12-01 "$RF_APP/releases/20231201120000/REVISION" "$RF_APP/releases/20231201120000"

	ops_run prune --keep 1
	rf_assert_status 0
	assert_removed 0
	ops_after 1 prune
	ops_assert_releases 20231201120000 "$OPS_CAP_OLD" "$OPS_CAP_NEW"

	# The newest adopted release before current is the only way back.
	ops_run prune --keep 1 --adopt
	rf_assert_status 0
	assert_removed 1 20231201120000
	ops_after 1 prune
	ops_assert_releases "$OPS_CAP_OLD" "$OPS_CAP_NEW"
	ops_assert_current "$OPS_CAP_NEW"
	[[ -f $RF_APP/releases/$OPS_CAP_NEW/public/index.html && -d $RF_APP/shared/log ]]
	ops_app_serves "ok $OPS_CAP_NEW_SHA"
}
