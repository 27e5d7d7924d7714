# shellcheck shell=bash
# The shared part of deploy.bats and deploy-failures.bats (two files so
# that the suite runs their halves at the same time), also loaded by
# hooks.bats, delta.bats and trust.bats: ./relflip deploy against one real
# sshd for the file, the sample app for health checks, and the helpers
# that run a deploy. A file that needs more set-up defines its own
# setup() after loading this.

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
