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

# rf_tmp_setup: a fresh $RF_TMP for this test, under ${TMPDIR:-/tmp}, with
# srv/ (the parent of $RF_APP) in it. Clears what an earlier test exported.
rf_tmp_setup() {
	local base=${TMPDIR:-/tmp}

	unset RF_PORT RF_KEY RF_KNOWN_HOSTS RF_SSHD_PID RF_SSHD_DIR RF_HOST_KEY \
		RF_CONFIG RF_APP_PID RF_SILENT_PORT RF_SILENT_PID
	RF_TMP=$(mktemp -d "$base/relflip-e2e.XXXXXX")
	mkdir -p "$RF_TMP/srv"
	RF_APP=$RF_TMP/srv/app
	RF_KNOWN_HOSTS=$RF_TMP/known_hosts
	: >"$RF_KNOWN_HOSTS"
	: >"$RF_TMP/relflip.log"
	export RF_TMP RF_APP RF_KNOWN_HOSTS
}

setup() {
	rf_tmp_setup
}

# rf_teardown: stop everything the test started, by PID. Remove $RF_TMP when
# the test passed (or was skipped); keep it when it failed, and print its
# path and the tails of the logs (bats shows this output under the failure).
rf_teardown() {
	local f

	rf_cleanup
	[[ -n ${RF_TMP:-} && -d $RF_TMP ]] || return 0
	if [[ -n ${BATS_TEST_COMPLETED:-} || -n ${BATS_TEST_SKIPPED:-} ]]; then
		rm -rf "$RF_TMP"
		return 0
	fi
	echo "# kept the test's files in $RF_TMP"
	for f in "$RF_TMP"/*.log "$RF_TMP"/srv/*.log "$RF_TMP"/hosts/*/sshd.log; do
		[[ -s $f ]] || continue
		echo "# --- tail of $f"
		tail -n 30 "$f" | sed 's/^/#   /'
	done
	return 0
}

teardown() {
	rf_teardown
}

# relflip ARGS...: run the binary under test ($RF_BIN), with its stdout and
# stderr passed through unchanged and a copy of both in $RF_TMP/relflip.log.
# Use as: run --separate-stderr relflip -c "$RF_CONFIG" check
relflip() {
	local out err rc=0

	if [[ ! -x $RF_BIN ]]; then
		echo "relflip binary $RF_BIN is not built (make)" >&2
		return 127
	fi
	out=$(mktemp "$RF_TMP/.out.XXXXXX")
	err=$(mktemp "$RF_TMP/.err.XXXXXX")
	"$RF_BIN" "$@" >"$out" 2>"$err" 3>&- || rc=$?
	{
		printf '$ relflip'
		printf ' %q' "$@"
		printf '\n--- stdout\n'
		cat "$out"
		printf -- '--- stderr\n'
		cat "$err"
		printf -- '--- exit %d\n\n' "$rc"
	} >>"$RF_TMP/relflip.log"
	cat "$out"
	cat "$err" >&2
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
	printf '%s\n' "$output" | "$RF_PYTHON" -c '
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
	printf '%s\n' "$output" | "$RF_PYTHON" -c '
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
