# shellcheck shell=bash
# shellcheck disable=SC2034 # PORT, ALL and HOOKS are the test files'
# The shared part of fleet.bats and fleet-rollback.bats: the four hosts,
# started once per file, and the helpers their tests share. The tests are
# in two files so that the suite runs their halves at the same time.

load lib/sshd
load lib/fleet

# The port of the sample app inside every host (each has its own loopback).
PORT=8000
ALL=(1 2 3 4)

# The four hosts are started once for the file; each test gets them
# emptied (rf_fleet_use): /srv empty, nothing running but sshd.
setup_file() {
	rf_file_setup
	rf_fleet_file_up "${#ALL[@]}"
}

setup() {
	rf_tmp_setup
	rf_fleet_use
	# Apps started by a service restart line, for teardown to stop.
	rf_fleet_note_apps "$PORT" "${ALL[@]}"
}

# Fails when a namespace is left behind.
teardown_file() {
	rf_file_teardown
}

# deploy ID [RELFLIP OPTIONS...]: deploy a fresh artifact for ID, options
# (-H, -R, --json) before the command; leaves `status`, `output`, `stderr`.
deploy() {
	local id=$1 art

	shift
	art=$(rf_fleet_artifact "$id")
	run --separate-stderr relflip -c "$RF_CONFIG" "$@" deploy "$art" --revision "$id"
}

# The hooks of most tests: install logs the host it ran on in that host's
# /srv/install.log, migrate in /srv/migrate.log.
# shellcheck disable=SC2016 # expanded by the hooks' shell, on the host
HOOKS='[hooks]
install = echo "install $RELFLIP_HOST $RELFLIP_REVISION" >> /srv/install.log
migrate = echo "migrate $RELFLIP_HOST $RELFLIP_REVISION" >> /srv/migrate.log'

# rf_json_order EARLY LATE: over the last run's events, every event that
# matches EARLY (a Python expression over `e`) comes before every event
# that matches LATE, and both match at least one.
rf_json_order() {
	rf_json_query "(lambda a, b: bool(a) and bool(b) and max(a) < min(b))(
		[i for i, e in enumerate(ev) if $1],
		[i for i, e in enumerate(ev) if $2])"
}
