#!/usr/bin/env bats
# relflip rollback, prune, releases and unlock, end to end: ./relflip
# against a real sshd on loopback and the sample app. Every test starts
# from a copy of a server that took five real deploys (v1..v4 good, v5
# live, each deployed in a later second), made once for the file. After
# every command: the exit code, what the person on call is told, where
# current points (always a valid symlink into releases/), the records,
# and exactly which lines the deploy log gained.

load lib/sshd
load lib/ops

# The golden server, and one sshd that every test's ops_server borrows.
setup_file() {
	rf_file_setup
	rf_file_sshd_start
	OPS_GOLDEN=$RF_FILE_TMP/golden
	export OPS_GOLDEN
	ops_build_golden "$OPS_GOLDEN"
}

teardown_file() {
	rf_file_teardown
}

# Let go of a hook left blocking on the server (the unlock test's), then
# the usual teardown.
teardown() {
	[[ -z ${RF_TMP:-} || ! -d $RF_TMP ]] || touch "$RF_TMP/hook-go"
	rf_teardown
}

# deploy_failing ID: a deploy of ID whose install hook fails: exit 7,
# current unchanged, the release recorded as failed.
deploy_failing() {
	local art before

	ops_config_file "$RF_TMP/failing.ini" '[hooks]
install = echo "install fails on purpose"; exit 3'
	art=$(ops_pack "$1")
	before=$(readlink "$RF_APP/current")
	OPS_LOG_BEFORE=$(ops_log_count)
	run --separate-stderr relflip -c "$RF_TMP/failing.ini" deploy "$art" --revision "$1"
	rf_assert_status 7
	ops_after 1 deploy
	[[ $(readlink "$RF_APP/current") == "$before" ]] || rf_fail "a failed deploy moved current"
	ops_assert_record "$1" failed
}

# deploy_good ID [CONFIG]: a deploy of ID that goes live.
deploy_good() {
	local art

	art=$(ops_pack "$1")
	OPS_LOG_BEFORE=$(ops_log_count)
	run --separate-stderr relflip -c "${2:-$RF_CONFIG}" deploy "$art" --revision "$1"
	rf_assert_status 0
	ops_after 1 deploy
	ops_assert_current "$1"
}

# ---------------------------------------------------------------------------
# rollback
# ---------------------------------------------------------------------------

@test "rollback goes to the newest good release before the live one and marks the one it left bad" {
	ops_server

	ops_run rollback
	rf_assert_status 0
	rf_assert_stderr_has "rolled back to v4" "v5"
	[[ $stderr != *migrations* ]] || rf_fail "a migrations warning without migrations" "$(rf_show_run)"
	ops_after 1 rollback 'new[0]["revision"] == "v4" and new[0]["previous"] == "v5"
		and new[0]["exit_code"] == 0 and new[0]["result"] == "ok"'
	ops_assert_current v4
	ops_assert_record v4 live
	ops_assert_record v5 bad
	[[ $(ops_record_field v5 reason) == *"rolled back by"* ]] ||
		rf_fail "v5's reason: $(ops_record_field v5 reason)"
	ops_assert_record v3 good
	ops_app_serves "ok v4"
	ops_assert_releases v1 v2 v3 v4 v5
}

@test "rollback --json: a start event, the switch stage, and a result naming both releases" {
	ops_server

	ops_run --json rollback
	rf_assert_status 0
	ops_events 'ev[0]["event"] == "start" and ev[0].get("command") == "rollback"'
	ops_events 'any(e["event"] == "stage" and e.get("stage") == "switch" and e.get("phase") == "end"
		and e.get("host") == "local" for e in ev)'
	ops_events 'ev[-1]["event"] == "result" and ev[-1]["status"] == "ok" and ev[-1]["exit_code"] == 0
		and ev[-1]["revision"] == "v4" and ev[-1]["previous"] == "v5"'
	ops_events 'all(__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in ev)'
	ops_after 1 rollback
	ops_assert_current v4
}

@test "rollback --to an older good release goes there, past the newer good ones" {
	ops_server

	ops_run rollback --to v2
	rf_assert_status 0
	rf_assert_stderr_has "rolled back to v2"
	ops_after 1 rollback 'new[0]["revision"] == "v2" and new[0]["previous"] == "v5"'
	ops_assert_current v2
	ops_assert_record v2 live
	ops_assert_record v5 bad
	ops_assert_record v4 good
	ops_assert_record v3 good
	ops_app_serves "ok v2"
}

@test "rollback --to a bad release works, with a warning saying when and why it was marked bad" {
	local when

	ops_server
	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_record v5 bad
	when=$(ops_record_field v5 deactivated)

	ops_run rollback --to v5
	rf_assert_status 0
	rf_assert_stderr_has "warning" "v5" "bad" "$when" "rolled back by"
	ops_after 1 rollback 'new[0]["revision"] == "v5" and new[0]["previous"] == "v4"'
	ops_assert_current v5
	ops_assert_record v5 live
	ops_app_serves "ok v5"
}

@test "rollback --to a failed release (it never went live) is refused with exit 2 and changes nothing" {
	ops_server
	deploy_failing v6
	rf_snapshot app "$RF_APP"

	ops_run rollback --to v6
	rf_assert_status 2
	rf_assert_stderr_has "v6" "failed"
	ops_after 0
	rf_assert_unchanged app
	ops_assert_current v5
	ops_app_serves "ok v5"
}

@test "rollback --to a staged release (a deploy in progress) is refused with exit 2" {
	ops_server
	ops_write_record v6 staged
	rf_snapshot app "$RF_APP"

	ops_run rollback --to v6
	rf_assert_status 2
	rf_assert_stderr_has "v6" "staged"
	ops_after 0
	rf_assert_unchanged app
	ops_assert_current v5
}

@test "rollback --to a release that is not there, or not a release id, is refused with exit 2" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run rollback --to v42
	rf_assert_status 2
	rf_assert_stderr_has "v42"
	ops_after 0

	ops_run rollback --to ../v1
	rf_assert_status 2
	ops_after 0
	rf_assert_unchanged app
	ops_assert_current v5
}

@test "two rollbacks in a row go further back (v5 -> v4 -> v3), never back to the broken release" {
	ops_server

	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_current v4

	ops_run rollback
	rf_assert_status 0
	rf_assert_stderr_has "rolled back to v3"
	ops_after 1 rollback 'new[0]["revision"] == "v3" and new[0]["previous"] == "v4"'
	ops_assert_current v3
	ops_assert_record v3 live
	ops_assert_record v4 bad
	ops_assert_record v5 bad
	ops_app_serves "ok v3"
}

@test "after a failed deploy and a good one, rollback skips the failed release" {
	ops_server
	deploy_failing v6
	deploy_good v7
	ops_app_serves "ok v7"

	ops_run rollback
	rf_assert_status 0
	rf_assert_stderr_has "rolled back to v5"
	ops_after 1 rollback 'new[0]["revision"] == "v5" and new[0]["previous"] == "v7"'
	ops_assert_current v5
	ops_assert_record v6 failed
	ops_assert_record v7 bad
	ops_assert_record v5 live
	ops_app_serves "ok v5"
}

@test "after a partial upload rollback still works, and prune clears the partial upload" {
	local art sum tmpdir

	ops_server
	# What an interrupted deploy of v6 leaves: half of its upload in
	# incoming/ (named as relflip names it) and a half-unpacked directory.
	art=$(ops_pack v6)
	sum=$(sha256sum "$art")
	sum=${sum%% *}
	head -c "$(($(stat -c %s "$art") / 2))" "$art" >"$RF_APP/.relflip/incoming/v6.${sum:0:12}.tar"
	tmpdir=$RF_APP/releases/.tmp-v6-0123456789abcdef0123456789abcdef
	mkdir -p "$tmpdir"
	echo half >"$tmpdir/index.html"

	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_current v4
	ops_app_serves "ok v4"

	ops_run prune
	rf_assert_status 0
	ops_after 1 prune
	rf_assert_not_exists "$tmpdir"
	[[ -z $(ls -A "$RF_APP/.relflip/incoming") ]] ||
		rf_fail "incoming/ still holds:" "$(ls -la "$RF_APP/.relflip/incoming")"
	ops_assert_releases v1 v2 v3 v4 v5
	ops_assert_current v4
}

@test "rollback --to a newer release is a roll-forward: the release it leaves stays good" {
	ops_server
	ops_run rollback --to v3
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_record v5 bad

	ops_run rollback --to v4
	rf_assert_status 0
	ops_after 1 rollback 'new[0]["revision"] == "v4" and new[0]["previous"] == "v3"'
	ops_assert_current v4
	ops_assert_record v4 live
	ops_assert_record v3 good
	ops_assert_record v5 bad
	ops_app_serves "ok v4"
}

@test "rollback whose health check fails switches back to where it started and exits 8" {
	ops_server
	echo 503 >"$RF_APP/releases/v4/HEALTH_STATUS"

	ops_run rollback
	rf_assert_status 8
	rf_assert_stderr_has "health" "v4"
	ops_after 1 rollback 'new[0]["exit_code"] == 8 and new[0]["result"] != "ok"'
	ops_assert_current v5
	ops_assert_record v5 live
	ops_assert_record v4 bad
	ops_app_serves "ok v5"
	ops_assert_releases v1 v2 v3 v4 v5
}

@test "rollback whose health check fails and whose way back fails too exits 9" {
	ops_server
	# v5, live, is what is broken; v4 turns out broken as well.
	echo 503 >"$RF_APP/releases/v5/HEALTH_STATUS"
	echo 503 >"$RF_APP/releases/v4/HEALTH_STATUS"

	ops_run rollback
	rf_assert_status 9
	rf_assert_current_valid
	ops_assert_log_added 1 rollback 'new[0]["exit_code"] == 9 and new[0]["revision"] == "v4"'
	ops_assert_record v4 bad
	ops_assert_releases v1 v2 v3 v4 v5
	# The person needed is told what failed first: v4's health check.
	[[ $stderr != *"error: ,"* ]] || rf_fail "the error lost its first part" "$(rf_show_run)"
	rf_assert_stderr_has "v4"
}

@test "rollback from a release that ran migrations warns that the database was not rolled back" {
	ops_server
	ops_config_file "$RF_TMP/migrate.ini" '[hooks]
migrate = echo "migrating to $RELFLIP_REVISION"'
	deploy_good v6 "$RF_TMP/migrate.ini"
	[[ $(ops_record_field v6 migrated) == True ]] || rf_fail "v6 is not recorded as migrated"

	ops_run --json rollback
	rf_assert_status 0
	rf_assert_stderr_has "ran migrations: the database was not rolled back" "v6"
	ops_events 'any(e["event"] == "warning" and "the database was not rolled back" in e.get("message", "")
		for e in ev)'
	ops_after 1 rollback
	ops_assert_current v5
	ops_assert_record v6 bad
}

@test "rollback --dry-run prints the plan and changes nothing" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run rollback --dry-run
	rf_assert_status 0
	[[ "$output$stderr" == *"releases/v4"* ]] || rf_fail "no plan to switch to v4" "$(rf_show_run)"
	ops_after 0
	rf_assert_unchanged app
	ops_app_serves "ok v5"
}

@test "rollback --dry-run --json keeps stdout to JSON events" {
	ops_server
	rf_snapshot app "$RF_APP"

	ops_run --json rollback --dry-run
	rf_assert_status 0
	rf_assert_json_lines
	ops_events 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	ops_after 0
	rf_assert_unchanged app
}

@test "rollback refuses hosts that disagree on the live release (exit 2, each host named); --to brings them together" {
	local app1 app2 n1 n2

	rf_host_start 231
	rf_host_start 232
	app1=$(rf_host_dir 231)/relflip-app
	app2=$(rf_host_dir 232)/relflip-app
	cp -a "$OPS_GOLDEN" "$app1"
	cp -a "$OPS_GOLDEN" "$app2"
	rf_make_current v4 "$app2"
	rf_host_config 231 232
	RF_APP=$app1
	rf_snapshot app1 "$app1"
	rf_snapshot app2 "$app2"
	n2=$(ops_log_count "$app2")

	ops_run rollback
	rf_assert_status 2
	[[ $stderr =~ h231[^a-z0-9]+v5 && $stderr =~ h232[^a-z0-9]+v4 ]] ||
		rf_fail "each host and its live release should be named" "$(rf_show_run)"
	ops_after 0
	rf_assert_unchanged app1
	# app2's records said v5 was live while current points at v4, as a
	# run killed after its switch leaves them: the lock set them right.
	ops_assert_record v4 live "$app2"
	ops_assert_record v5 good "$app2"
	rf_assert_stderr_has "repaired"
	rf_snapshot app2 "$app2"

	ops_run releases
	rf_assert_status 0
	[[ $stderr == *[Dd][Ii][Ss][Aa][Gg][Rr][Ee][Ee]* ]] || rf_fail "no warning that the hosts disagree" "$(rf_show_run)"
	rf_assert_stdout_has h231 h232
	ops_run --json releases
	rf_assert_status 0
	ops_events 'sorted((e["host"], e["id"]) for e in ev if e["event"] == "release" and e["live"])
		== [("h231", "v5"), ("h232", "v4")]'
	ops_after 0
	rf_assert_unchanged app1
	rf_assert_unchanged app2

	n1=$(ops_log_count "$app1")
	ops_run rollback --to v4
	rf_assert_status 0
	ops_assert_current v4 "$app1"
	ops_assert_current v4 "$app2"
	ops_assert_log_added 1 rollback 'new[0]["revision"] == "v4"' "$app1" "$n1"
	ops_assert_log_added 1 rollback 'new[0]["revision"] == "v4"' "$app2" "$n2"
	ops_assert_record v5 bad "$app1"
	ops_assert_record v4 live "$app2"
	rf_assert_not_exists "$app1/.relflip/lock" "$app2/.relflip/lock"
}

@test "rollback goes to the release live just before, even when two deploys fell within one second" {
	local fast keep zzz aaa mmm id records=

	ops_server
	keep=$RF_CONFIG
	rf_config --file "$RF_TMP/fast.ini"
	fast=$RF_CONFIG
	RF_CONFIG=$keep
	zzz=$(ops_pack zzz)
	aaa=$(ops_pack aaa)
	mmm=$(ops_pack mmm)
	# zzz then aaa, both early in one second (records keep whole seconds),
	# then mmm: aaa is what was live before mmm.
	ops_next_second
	"$RF_BIN" -c "$fast" -q deploy "$zzz" --revision zzz 2>>"$RF_TMP/fast.log" 3>&-
	"$RF_BIN" -c "$fast" -q deploy "$aaa" --revision aaa 2>>"$RF_TMP/fast.log" 3>&-
	ops_next_second
	"$RF_BIN" -c "$fast" -q deploy "$mmm" --revision mmm 2>>"$RF_TMP/fast.log" 3>&-
	ops_assert_current mmm
	for id in zzz aaa mmm; do
		records+="$id: created $(ops_record_field "$id" created), activated $(ops_record_field "$id" activated); "
	done

	ops_run rollback
	rf_assert_status 0
	ops_after 1 rollback
	ops_assert_current aaa || rf_fail "records before the rollback: $records"
	ops_assert_record zzz good
}

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
