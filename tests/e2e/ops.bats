#!/usr/bin/env bats
# relflip rollback, end to end: ./relflip against a real sshd on loopback
# and the sample app. Every test starts from a copy of a server that took
# five real deploys (v1..v4 good, v5 live, each deployed in a later
# second), made once for the file. After every command: the exit code, what
# the person on call is told, where current points (always a valid symlink
# into releases/), the records, and exactly which lines the deploy log
# gained. prune, releases and unlock, the same way: ops-prune.bats (the
# golden server and shared helpers: lib/ops-suite.bash).

load lib/ops-suite

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
