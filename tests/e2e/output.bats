#!/usr/bin/env bats
# What relflip prints, for the person reading a CI log or a terminal: GitHub
# Actions annotations, groups and the step summary; no escape sequences in a
# pipe or under NO_COLOR; -q keeps errors only.

load lib/sshd
load lib/deploy

setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
	APP_PORT=$(rf_free_port)
	rf_app_start "$APP_PORT"
	rf_config "$(rf_health_ini "$APP_PORT")"
}

teardown_file() {
	rf_file_teardown
}

# gh_deploy ID ARTIFACT: a deploy as GitHub Actions runs it, with a summary
# file; sets SUMMARY.
gh_deploy() {
	SUMMARY=$RF_TMP/summary-$1.md
	: >"$SUMMARY"
	run --separate-stderr env GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$SUMMARY" \
		GITHUB_SERVER_URL=https://github.example GITHUB_REPOSITORY=acme/shop \
		GITHUB_RUN_ID=42 GITHUB_ACTOR=alice \
		"$RF_BIN" -c "$RF_CONFIG" deploy "$2" --revision "$1"
}

@test "under GitHub Actions a deploy folds its stages and writes a step summary naming the release" {
	local art

	art=$(rf_artifact v1)
	gh_deploy v1 "$art"
	rf_assert_status 0
	[[ $output == *"::group::relflip upload"* ]] || rf_fail "no upload group on stdout"
	[[ $output == *"::endgroup::"* ]] || rf_fail "groups are not closed"
	grep -q '^### relflip deploy v1: done' "$SUMMARY" || rf_fail "summary title: $(cat "$SUMMARY")"
	grep -q '| release | `v1` |' "$SUMMARY" || rf_fail "summary lacks the release"
	grep -q '| actor | alice |' "$SUMMARY" || rf_fail "summary lacks the actor"
	grep -q 'https://github.example/acme/shop/actions/runs/42' "$SUMMARY" ||
		rf_fail "summary lacks the run URL"
	grep -q '^| local | ok | `v1` |' "$SUMMARY" || rf_fail "summary lacks the host row"
	# The run URL reached the release record too.
	grep -q 'actions/runs/42' "$RF_APP/.relflip/releases/v1.json"
}

@test "under GitHub Actions a failed health check raises an error annotation and the summary names the rollback" {
	local art

	gh_deploy v1 "$(rf_artifact v1)"
	rf_assert_status 0
	art=$(rf_artifact v2 HEALTH_STATUS=503)
	gh_deploy v2 "$art"
	rf_assert_status 8
	[[ $output == *"::error title=relflip health on local::health check failed on local: 503"* ]] ||
		rf_fail "no error annotation for the health check on stdout"
	grep -q '^### relflip deploy v2: health check failed, rolled back' "$SUMMARY" ||
		rf_fail "summary title: $(cat "$SUMMARY")"
	grep -q '| previous | `v1` |' "$SUMMARY" || rf_fail "summary lacks the previous release"
	grep -q 'Rollback:.*`v1`' "$SUMMARY" || rf_fail "summary lacks the rollback line"
	grep -q '^| local | rolled back | `v1` |' "$SUMMARY" || rf_fail "summary lacks the host row"
	rf_assert_current v1
}

@test "in a pipe relflip writes no escape sequences, also for a failure" {
	local art

	art=$(rf_artifact v1 HEALTH_STATUS=503)
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 8
	if printf '%s%s' "$output" "$stderr" | grep -q $'\033'; then
		rf_fail "an escape sequence in piped output"
	fi
	[[ $stderr == *"relflip: error: health check failed"* ]]
}

# on_tty CMD...: run CMD with a terminal on stdout and stderr (script(1)),
# its output in $RF_TMP/tty.out.
on_tty() {
	script -qfec "$(printf '%q ' "$@")" "$RF_TMP/tty.out" >/dev/null 2>&1 </dev/null || true
}

@test "on a terminal errors are coloured, and NO_COLOR or --no-color turn colour off" {
	on_tty "$RF_BIN" -c "$RF_CONFIG" rollback
	grep -q $'\033\\[31;1merror:' "$RF_TMP/tty.out" || rf_fail "no colour on a terminal: $(cat -v "$RF_TMP/tty.out")"

	on_tty env NO_COLOR=1 "$RF_BIN" -c "$RF_CONFIG" rollback
	grep -q 'relflip: error:' "$RF_TMP/tty.out" || rf_fail "no error line: $(cat -v "$RF_TMP/tty.out")"
	if grep -q $'\033\\[3[0-9]' "$RF_TMP/tty.out"; then
		rf_fail "colour under NO_COLOR: $(cat -v "$RF_TMP/tty.out")"
	fi

	on_tty "$RF_BIN" --no-color -c "$RF_CONFIG" rollback
	if grep -q $'\033\\[3[0-9]' "$RF_TMP/tty.out"; then
		rf_fail "colour under --no-color: $(cat -v "$RF_TMP/tty.out")"
	fi
}

@test "-q prints errors only; --json keeps stdout to JSON events" {
	local art line

	art=$(rf_artifact v1)
	run --separate-stderr "$RF_BIN" -q -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 0
	[[ -z $stderr ]] || rf_fail "-q printed: $stderr"
	art=$(rf_artifact v2 HEALTH_STATUS=503)
	run --separate-stderr "$RF_BIN" -q -c "$RF_CONFIG" deploy "$art" --revision v2
	rf_assert_status 8
	[[ $stderr == *"relflip: error: health check failed"* ]]
	[[ $stderr != *"  upload "* ]] || rf_fail "-q printed stage lines"

	run --separate-stderr "$RF_BIN" --json -c "$RF_CONFIG" releases
	rf_assert_status 0
	while IFS= read -r line; do
		"$RF_PYTHON" -c 'import json, sys; json.loads(sys.argv[1])' "$line" ||
			rf_fail "not JSON on stdout: $line"
	done <<<"$output"
}
