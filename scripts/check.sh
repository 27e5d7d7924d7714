#!/usr/bin/env bash
# Run relflip's test suites and sum them up: `make check` and friends.
#
#   scripts/check.sh all|unit|unit-asan|e2e
#
#   unit       every cmocka binary in build/tests/
#   unit-asan  the same built with ASan and UBSan, in build/asan/tests/
#   e2e        tests/e2e/*.bats and tests/tools/*.bats, one bats run per file
#              (needs ./relflip and build/tools/, root)
#   all        the core/adapter include check, then the three above
#
# make builds the binaries first; this script only runs them. Each suite's
# own output is printed as it runs; the very last line is exactly
# "N passed, N failed". Exit 0 only when nothing failed and something ran.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

mode=${1:-all}
passed=0
failed=0
skipped=0
failures=()

# Per-binary and per-file time limits, so that a hang fails instead of
# stalling CI; the whole of `all` stays well under 10 minutes.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
E2E_FILE_TIMEOUT=${E2E_FILE_TIMEOUT:-480}
export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

header() {
	printf '\n==> %s\n' "$*"
}

count() {
	passed=$((passed + $1))
	failed=$((failed + $2))
}

# The core must not include the libraries: only the adapters do.
run_include_check() {
	local adapters=" src/remote-ssh.c src/http-curl.c src/tar-archive.c src/conf-ini.c "
	local f hits=""

	header "include check: only the adapters include libssh2, curl, libarchive, inih"
	shopt -s nullglob
	for f in src/*.c src/*/*.c include/*.h; do
		[[ $adapters == *" $f "* ]] && continue
		if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(libssh2|curl/|archive|ini\.h)' "$f"; then
			hits+=" $f"
		fi
	done
	shopt -u nullglob
	if [[ -z $hits ]]; then
		echo "ok: no library header outside the adapters"
		count 1 0
	else
		echo "FAILED: library headers included outside the adapters:$hits"
		count 0 1
		failures+=("include check:$hits")
	fi
}

# One cmocka binary: print its output, count "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)"; a binary that dies (or fails without saying how
# many) counts as one failure.
run_cmocka() {
	local bin=$1 out rc p f

	header "$bin"
	out=$(env -u CMOCKA_MESSAGE_OUTPUT timeout -k 5 "$UNIT_TIMEOUT" "$bin" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if ((rc != 0 && f == 0)); then
		if ((rc == 124 || rc == 137)); then
			echo "$bin: timed out after ${UNIT_TIMEOUT}s: counted as 1 failed"
		else
			echo "$bin: exited $rc without a test failure report (crash?): counted as 1 failed"
		fi
		f=1
	fi
	count "$p" "$f"
	((f == 0)) || failures+=("$bin: $f failed")
}

run_unit_dir() {
	local dir=$1 label=$2 bin n=0

	shopt -s nullglob
	for bin in "$dir"/test-*; do
		[[ -f $bin && -x $bin ]] || continue
		run_cmocka "$bin"
		n=$((n + 1))
	done
	shopt -u nullglob
	if ((n == 0)); then
		header "$label: no test binaries in $dir/ (run make first)"
	fi
}

run_unit() {
	run_unit_dir build/tests unit
}

run_unit_asan() {
	ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:halt_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		run_unit_dir build/asan/tests unit-asan
}

# One bats file in TAP: count "ok" and "not ok" lines ("# skip" apart); a run
# that reports fewer results than its plan, or fails without a "not ok",
# counts the difference (at least one) as failed.
run_bats_file() {
	local file=$1 out rc plan p=0 f=0 s=0 line

	header "$file"
	out=$(timeout -k 10 "$E2E_FILE_TIMEOUT" bats --tap "$file" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' <<<"$out" | head -n 1)
	while IFS= read -r line; do
		case $line in
		"not ok "*) f=$((f + 1)) ;;
		"ok "*"# skip"*) s=$((s + 1)) ;;
		"ok "*) p=$((p + 1)) ;;
		esac
	done <<<"$out"
	if [[ -n $plan ]] && ((p + f + s < plan)); then
		echo "$file: $((plan - p - f - s)) of $plan tests reported no result: counted as failed"
		f=$((f + plan - p - f - s))
	fi
	if ((rc != 0 && f == 0)); then
		if ((rc == 124 || rc == 137)); then
			echo "$file: timed out after ${E2E_FILE_TIMEOUT}s: counted as 1 failed"
		else
			echo "$file: bats exited $rc without a failing test: counted as 1 failed"
		fi
		f=1
	fi
	count "$p" "$f"
	skipped=$((skipped + s))
	((f == 0)) || failures+=("$file: $f failed")
}

run_e2e() {
	local file n=0

	if ! command -v bats >/dev/null 2>&1; then
		header "e2e: bats is not installed (scripts/install-deps.sh)"
		count 0 1
		failures+=("e2e: bats missing")
		return
	fi
	if [[ ! -x ./relflip ]]; then
		echo "note: ./relflip is not built (make): the e2e tests will fail" >&2
	fi
	shopt -s nullglob
	for file in tests/e2e/*.bats tests/tools/*.bats; do
		run_bats_file "$file"
		n=$((n + 1))
	done
	shopt -u nullglob
	((n > 0)) || header "e2e: no tests/e2e/*.bats"
}

case $mode in
all)
	run_include_check
	run_unit
	run_unit_asan
	run_e2e
	;;
unit) run_unit ;;
unit-asan) run_unit_asan ;;
e2e) run_e2e ;;
-h | --help)
	sed -n '2,12s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "usage: scripts/check.sh all|unit|unit-asan|e2e" >&2
	exit 2
	;;
esac

header "summary"
if ((skipped > 0)); then
	echo "$skipped skipped (not counted)"
fi
for line in "${failures[@]+"${failures[@]}"}"; do
	echo "failed: $line"
done
if ((passed + failed == 0)); then
	echo "no tests ran"
fi
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
