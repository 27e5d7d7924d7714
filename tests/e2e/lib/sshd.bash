# shellcheck shell=bash
# bats helpers for relflip's end-to-end tests: one temporary directory per
# test, a real sshd on loopback, the sample app, and assertions on the
# server's layout. Load it from a .bats file with
#
#	load lib/sshd
#
# It defines a default setup (rf_tmp_setup) and teardown (rf_teardown); a
# file that needs more defines its own and calls these. The process and
# server helpers themselves are plain bash in hosts.bash (shared with
# scripts/demo.sh).

# shellcheck source=tests/e2e/lib/hosts.bash
source "$(dirname "${BASH_SOURCE[0]}")/hosts.bash"

bats_require_minimum_version 1.5.0

RF_BIN=${RF_BIN:-$RF_ROOT/relflip}
export RF_BIN

# rf_untrace_helpers: bats records where each command of a test runs (a
# DEBUG trap that set -T hands down to every function) so that it can say
# where a test failed; the helpers' loops and polls made that a quarter of
# the suite's CPU time. Each rf_ function becomes a wrapper that runs its
# body with set -T off for the length of the call: a failure inside a
# helper is reported at the test's line that called it (with the helper's
# name and a line of this file, where the wrappers are made). Once per
# test process (RF_UNTRACED is not exported), after the .bats file's loads.
rf_untrace_helpers() {
	[[ -z ${RF_UNTRACED:-} ]] || return 0
	RF_UNTRACED=1
	eval "$(declare -f $(compgen -A function rf_) |
		sed 's/^\(rf_[A-Za-z0-9_]*\) () *$/\1 () { local -; set +T; _rf_untraced_\1 "$@"; }\n_rf_untraced_\1 () /')"
}

# rf_tmp_setup: a fresh $RF_TMP for this test, under ${TMPDIR:-/tmp}, with
# srv/ (the parent of $RF_APP) in it. Clears what an earlier test exported.
# Under a sanitizer build (RF_SAN_DIR set), the test's sanitizer reports go
# to $RF_TMP/san/, which rf_teardown checks.
rf_tmp_setup() {
	local base=${TMPDIR:-/tmp}

	rf_untrace_helpers
	unset RF_PORT RF_KEY RF_KNOWN_HOSTS RF_SSHD_PID RF_SSHD_DIR RF_HOST_KEY \
		RF_CONFIG RF_APP_PID RF_SILENT_PORT RF_SILENT_PID
	RF_TMP=$(mktemp -d "$base/relflip-e2e.XXXXXX")
	mkdir "$RF_TMP/srv"
	RF_APP=$RF_TMP/srv/app
	RF_KNOWN_HOSTS=$RF_TMP/known_hosts
	: >"$RF_KNOWN_HOSTS"
	: >"$RF_TMP/relflip.log"
	export RF_TMP RF_APP RF_KNOWN_HOSTS
	if [[ -n ${RF_SAN_DIR:-} ]]; then
		mkdir -p "$RF_TMP/san"
		rf_san_options "$RF_TMP/san"
	fi
}

setup() {
	rf_tmp_setup
}

# rf_teardown: stop everything the test started, by PID. Remove $RF_TMP when
# the test passed (or was skipped); keep it when it failed, and print its
# path and the tails of the logs (bats shows this output under the failure).
# A sanitizer report from the test fails it, and is printed.
rf_teardown() {
	local f rc=0

	rf_cleanup
	rf_py_stop
	[[ -n ${RF_TMP:-} && -d $RF_TMP ]] || return 0
	if ! rf_san_check "$RF_TMP/san"; then
		rc=1
	elif [[ -n ${BATS_TEST_COMPLETED:-} || -n ${BATS_TEST_SKIPPED:-} ]]; then
		rm -rf "$RF_TMP"
		return 0
	fi
	rf_file_sshd_log_tail
	echo "# kept the test's files in $RF_TMP"
	for f in "$RF_TMP"/*.log "$RF_TMP"/srv/*.log "$RF_TMP"/hosts/*/sshd.log; do
		[[ -s $f ]] || continue
		echo "# --- tail of $f"
		tail -n 30 "$f" | sed 's/^/#   /'
	done
	return "$rc"
}

teardown() {
	rf_teardown
}

# ---------------------------------------------------------------------------
# Sanitizer builds. RF_BIN=build/asan/relflip with RF_SAN_DIR=DIR (what
# scripts/check.sh sets for its e2e-asan runs): every ASan or UBSan report
# goes to a file, never only to a stderr that a test may not look at; a
# test with a report fails (rf_teardown), and so does a file with one from
# outside its tests (setup_file: check.sh looks at DIR).
# ---------------------------------------------------------------------------

# rf_san_options DIR: sanitizer reports of the processes started from now on
# go to DIR/asan.PID and DIR/ubsan.PID; the first error ends the process.
rf_san_options() {
	ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:log_path=$1/asan
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$1/ubsan
	export ASAN_OPTIONS UBSAN_OPTIONS
}

# rf_san_check DIR: no sanitizer report in DIR; prints the ones there.
rf_san_check() {
	local f bad=0

	[[ -d $1 ]] || return 0
	for f in "$1"/*; do
		[[ -f $f ]] || continue
		bad=1
		echo "# sanitizer report $f:"
		head -n 60 "$f" | sed 's/^/#   /'
	done
	return "$bad"
}

# ---------------------------------------------------------------------------
# Servers shared by the tests of one file. Starting an sshd, and more so
# a fleet of network-namespace hosts, costs more than most tests; a file starts
# them once in setup_file and each test borrows them in setup, with its own
# $RF_TMP, app path, known_hosts and authorized_keys, so tests stay
# independent:
#
#	setup_file() {
#		rf_file_setup
#		rf_file_sshd_start	# and/or: rf_fleet_file_up 8
#	}
#	setup() {
#		rf_tmp_setup
#		rf_sshd_use		# and/or: rf_fleet_use
#	}
#	teardown_file() {
#		rf_file_teardown
#	}
#
# A test that needs a server of its own (a tmpfs, an sshd it stops) still
# calls rf_sshd_start. A file's server that a test stopped is started again
# by the next test's rf_sshd_use or rf_fleet_use.
# ---------------------------------------------------------------------------

# rf_file_setup: in setup_file: $RF_FILE_TMP for what the file's tests
# share, with the client key in it. Exports RF_FILE_TMP.
rf_file_setup() {
	rf_untrace_helpers
	RF_FILE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/relflip-e2e-file.XXXXXX")
	export RF_FILE_TMP
	RF_TMP=$RF_FILE_TMP RF_KNOWN_HOSTS=$RF_FILE_TMP/known_hosts rf_client_key
}

# rf_file_teardown: in teardown_file: stop every server of the file, by PID,
# remove its namespaces and $RF_FILE_TMP. Fails when a namespace is left.
rf_file_teardown() {
	local left

	[[ -n ${RF_FILE_TMP:-} && -d $RF_FILE_TMP ]] || return 0
	RF_TMP=$RF_FILE_TMP rf_cleanup
	left=$(rf_leftover_ns)
	rm -rf "$RF_FILE_TMP"
	if [[ -n $left ]]; then
		echo "# network namespaces left behind: $left"
		return 1
	fi
}

# rf_file_sshd_start: in setup_file, after rf_file_setup: the file's sshd
# on 127.0.0.1 and a free port (rf_sshd_start; files in
# $RF_FILE_TMP/file-sshd/, log in $RF_FILE_TMP/file-sshd.log).
rf_file_sshd_start() {
	RF_TMP=$RF_FILE_TMP RF_KNOWN_HOSTS=$RF_FILE_TMP/known_hosts \
		rf_sshd_start file-sshd || return 1
	echo "$RF_PORT" >"$RF_FILE_TMP/file-sshd.port"
	echo "$RF_SSHD_PID" >"$RF_FILE_TMP/file-sshd.pid"
}

# rf_file_keys: this test's $RF_KEY is the file's client key (copied into
# $RF_TMP), and the file's servers read this test's
# $RF_TMP/authorized_keys, which holds that key: a test may add keys to it,
# or empty it, as with a server of its own.
rf_file_keys() {
	local key pub mask

	IFS= read -r -d '' key <"$RF_FILE_TMP/client_key" || true
	read -r pub <"$RF_FILE_TMP/client_key.pub"
	mask=$(umask)
	umask 077
	printf '%s' "$key" >"$RF_TMP/client_key"
	umask "$mask"
	printf '%s\n' "$pub" >"$RF_TMP/client_key.pub"
	printf '%s\n' "$pub" >"$RF_TMP/authorized_keys"
	ln -sfn "$RF_TMP/authorized_keys" "$RF_FILE_TMP/authorized_keys"
	RF_KEY=$RF_TMP/client_key
	export RF_KEY
}

# rf_sshd_use: in setup, after rf_tmp_setup: this test's server is the
# file's sshd (rf_file_sshd_start). Exports what rf_sshd_start does (RF_PORT,
# RF_KEY, RF_KNOWN_HOSTS with the host key, RF_SSHD_PID, RF_SSHD_DIR,
# RF_HOST_KEY, RF_APP) without starting anything, unless a test stopped it.
rf_sshd_use() {
	local dir=$RF_FILE_TMP/file-sshd port pid

	if [[ ! -r ${RF_FILE_TMP:-}/file-sshd.port ]]; then
		rf_log "rf_sshd_use: the file has no sshd (rf_file_sshd_start in setup_file)"
		return 1
	fi
	read -r port <"$RF_FILE_TMP/file-sshd.port"
	read -r pid <"$RF_FILE_TMP/file-sshd.pid"
	if ! rf_pid_alive "$pid"; then
		RF_TMP=$RF_FILE_TMP RF_KNOWN_HOSTS=$RF_FILE_TMP/known_hosts \
			RF_SSHD_PORT=$port rf_sshd_start file-sshd || return 1
		port=$RF_PORT
		pid=$RF_SSHD_PID
		echo "$port" >"$RF_FILE_TMP/file-sshd.port"
		echo "$pid" >"$RF_FILE_TMP/file-sshd.pid"
	fi
	rf_file_keys
	rf_known_hosts_add 127.0.0.1 "$port" "$dir/host_ed25519_key.pub"
	RF_PORT=$port
	RF_SSHD_PID=$pid
	RF_SSHD_DIR=$dir
	RF_HOST_KEY=$dir/host_ed25519_key.pub
	RF_APP=${RF_APP:-$RF_TMP/srv/app}
	export RF_PORT RF_SSHD_PID RF_SSHD_DIR RF_HOST_KEY RF_APP
}

# rf_sshd_any: the file's sshd when the file started one (rf_sshd_use), else
# one of the test's own (rf_sshd_start): for helpers that serve both kinds
# of file.
rf_sshd_any() {
	if [[ -r ${RF_FILE_TMP:-}/file-sshd.port ]]; then
		rf_sshd_use
	else
		rf_sshd_start
	fi
}

# rf_file_sshd_log_tail: the end of the file sshd's log, in $RF_TMP/sshd.log
# (for a failed test's report).
rf_file_sshd_log_tail() {
	[[ -n ${RF_FILE_TMP:-} && -s $RF_FILE_TMP/file-sshd.log && ! -e $RF_TMP/sshd.log ]] || return 0
	tail -n 30 "$RF_FILE_TMP/file-sshd.log" >"$RF_TMP/sshd.log"
}

# relflip ARGS...: run the binary under test ($RF_BIN), with its stdout and
# stderr passed through unchanged and a copy of both in $RF_TMP/relflip.log.
# Use as: run --separate-stderr relflip -c "$RF_CONFIG" check
relflip() {
	local out err o='' e='' rc=0

	if [[ ! -x $RF_BIN ]]; then
		echo "relflip binary $RF_BIN is not built (make)" >&2
		return 127
	fi
	# Read back with builtins: every process counts on a busy machine.
	out=$RF_TMP/.out.$BASHPID.$SRANDOM
	err=$RF_TMP/.err.$BASHPID.$SRANDOM
	"$RF_BIN" "$@" >"$out" 2>"$err" 3>&- || rc=$?
	IFS= read -r -d '' o <"$out" || true
	IFS= read -r -d '' e <"$err" || true
	{
		printf '$ relflip'
		printf ' %q' "$@"
		printf '\n--- stdout\n%s' "$o"
		printf -- '--- stderr\n%s' "$e"
		printf -- '--- exit %d\n\n' "$rc"
	} >>"$RF_TMP/relflip.log"
	printf '%s' "$o"
	printf '%s' "$e" >&2
	rm -f "$out" "$err"
	return "$rc"
}

# ---------------------------------------------------------------------------
# Assertions. Each prints what it saw on failure and returns non-zero.
# ---------------------------------------------------------------------------

# rf_fail MESSAGE...: print and fail.
rf_fail() {
	printf '%s\n' "$@" >&2
	return 1
}

# rf_show_run: what the last `run` captured, for failure messages.
rf_show_run() {
	printf 'exit status: %s\n' "${status:-?}"
	printf -- '--- stdout:\n%s\n' "${output:-}"
	printf -- '--- stderr:\n%s\n' "${stderr:-}"
}

# rf_assert_status N: the last `run` exited with N.
rf_assert_status() {
	if [[ ${status:-} != "$1" ]]; then
		rf_fail "expected exit status $1, got ${status:-?}" "$(rf_show_run)"
	fi
}

# rf_assert_stderr_has TEXT...: every TEXT is in the last run's stderr
# (the merged output when run without --separate-stderr).
rf_assert_stderr_has() {
	local t text=${stderr-$output}

	for t in "$@"; do
		if [[ $text != *"$t"* ]]; then
			rf_fail "expected '$t' on stderr" "$(rf_show_run)"
			return 1
		fi
	done
}

# rf_assert_stdout_has TEXT...: likewise for stdout.
rf_assert_stdout_has() {
	local t

	for t in "$@"; do
		if [[ ${output:-} != *"$t"* ]]; then
			rf_fail "expected '$t' on stdout" "$(rf_show_run)"
			return 1
		fi
	done
}

# rf_assert_not_exists PATH...
rf_assert_not_exists() {
	local p

	for p in "$@"; do
		if [[ -e $p || -L $p ]]; then
			rf_fail "expected $p not to exist, but it does:" "$(ls -la "$p" 2>&1)"
			return 1
		fi
	done
}

# rf_assert_current_valid [APP]: APP/current is a symlink whose target
# resolves to a directory directly under APP/releases.
rf_assert_current_valid() {
	local app=${1:-$RF_APP} target real releases

	if [[ ! -L $app/current ]]; then
		rf_fail "$app/current is not a symlink:" "$(ls -la "$app" 2>&1)"
		return 1
	fi
	target=$(readlink "$app/current")
	real=$(realpath -e "$app/current" 2>/dev/null) || {
		rf_fail "$app/current -> $target does not resolve"
		return 1
	}
	releases=$(realpath -e "$app/releases" 2>/dev/null) || {
		rf_fail "$app/releases is missing"
		return 1
	}
	if [[ ! -d $real || $(dirname "$real") != "$releases" ]]; then
		rf_fail "$app/current -> $target is not a directory under releases/"
		return 1
	fi
}

# rf_current_release [APP]: the id current points at.
rf_current_release() {
	basename "$(readlink "${1:-$RF_APP}/current")"
}

# rf_tree DIR: a listing of DIR's names, types, modes, link targets and
# file contents' checksums, for "nothing changed" comparisons. Directory
# times are left out on purpose.
rf_tree() {
	local dir=$1

	if [[ ! -e $dir && ! -L $dir ]]; then
		echo "(missing)"
		return 0
	fi
	(
		cd "$dir" &&
			find . -printf '%p %y %m %l\n' | LC_ALL=C sort &&
			find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2
	)
}

# rf_snapshot NAME DIR / rf_assert_unchanged NAME: record DIR's tree and
# later assert it is still the same.
rf_snapshot() {
	printf '%s\n' "$2" >"$RF_TMP/.snap-$1.dir"
	rf_tree "$2" >"$RF_TMP/.snap-$1"
}

rf_assert_unchanged() {
	local dir

	read -r dir <"$RF_TMP/.snap-$1.dir"
	if ! rf_tree "$dir" | diff -u "$RF_TMP/.snap-$1" - >&2; then
		rf_fail "$dir changed (diff above: - before, + after)"
	fi
}

# rf_make_release ID [APP]: a release directory the way a deploy leaves it
# (REVISION inside), without relflip: for tests that need existing layout.
rf_make_release() {
	local id=$1 app=${2:-$RF_APP}

	mkdir -p "$app/releases/$id" "$app/shared"
	printf '%s\n' "$id" >"$app/releases/$id/REVISION"
}

# rf_make_current ID [APP]: point current at releases/ID (atomically).
rf_make_current() {
	local id=$1 app=${2:-$RF_APP}

	ln -sfn "releases/$id" "$app/.current.tmp"
	mv -T "$app/.current.tmp" "$app/current"
}

# rf_json_lines: every line of the last run's stdout is a JSON object;
# prints nothing, fails with the bad line.
rf_assert_json_lines() {
	rf_py --stdin "$output"$'\n' '
import json, sys
n = 0
for n, line in enumerate(sys.stdin, 1):
    line = line.rstrip("\n")
    try:
        obj = json.loads(line)
    except ValueError as e:
        sys.exit("stdout line %d is not JSON (%s): %r" % (n, e, line))
    if not isinstance(obj, dict):
        sys.exit("stdout line %d is not a JSON object: %r" % (n, line))
if n == 0:
    sys.exit("no JSON lines on stdout")
' || {
		rf_fail "$(rf_show_run)"
		return 1
	}
}

# rf_json_query EXPR: evaluate a Python expression over the last run's
# events (`ev`, a list of dicts) and print the result; fails if it is falsy.
# e.g. rf_json_query 'ev[-1]["event"] == "result"'
rf_json_query() {
	rf_py --stdin "$output"$'\n' '
import json, sys
ev = [json.loads(l) for l in sys.stdin if l.strip()]
r = eval(sys.argv[1])
print(r)
sys.exit(0 if r else 1)
' "$1" || {
		rf_fail "JSON query failed: $1" "$(rf_show_run)"
		return 1
	}
}
