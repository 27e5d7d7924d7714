# shellcheck shell=bash
# shellcheck disable=SC2034 # OPS_LOG_BEFORE is read by lib/ops.bash (ops_after)
# The shared part of ops.bats, ops-prune.bats and people.bats: the golden
# server made once per file, the sshd its tests borrow, and the deploys they
# share. ops.bats and ops-prune.bats are two files so that the suite runs
# their halves at the same time.

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
