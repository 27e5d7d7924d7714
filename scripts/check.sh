#!/usr/bin/env bash
# Run relflip's test suites and sum them up: `make check` and friends.
#
#   scripts/check.sh all|unit|unit-asan|fuzz-smoke|e2e|e2e-asan
#
#   unit       every cmocka binary in build/tests/
#   unit-asan  the same built with ASan and UBSan, in build/asan/tests/
#   fuzz-smoke each libFuzzer target in build/fuzz/ over its committed corpus
#   e2e        tests/e2e/*.bats and tests/tools/*.bats against ./relflip
#              (needs root and build/tools/)
#   e2e-asan   the same files against build/asan/relflip
#   all        the include check, the fuzz smoke run, the unit suites
#              (plain and ASan+UBSan) and every bats file once: against
#              build/asan/relflip, except the files named in E2E_PLAIN
#
# make builds the binaries first; this script only runs them. The bats
# files run at the same time (E2E_JOBS at once), each printed whole when it
# ends, with its time. After each, what it left running (any process
# carrying its RF_PROC_TAG) and any namespace it left count as a failure,
# and so does a sanitizer report. The very last line is exactly
# "N passed, N failed". Exit 0 only when nothing failed and something ran.
# shellcheck disable=SC2030,SC2031 # the @unit job counts in a subshell, on purpose
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

mode=${1:-all}
passed=0
failed=0
skipped=0
failures=()

# Per-binary and per-file time limits, so that a hang fails instead of
# stalling CI. The files take a minute or two each on an idle machine;
# their limit leaves room for a machine shared with other work.
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
E2E_FILE_TIMEOUT=${E2E_FILE_TIMEOUT:-600}
export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}
# Bats files run at once: most of a file's time is waiting (for sshd, the
# app, health checks), so more than the cores.
E2E_JOBS=${E2E_JOBS:-6}
# Where the bats files make their files (TMPDIR): a directory of its own on
# /dev/shm when that is a tmpfs with a GiB free, else under ${TMPDIR:-/tmp}.
# On ext4 the inode allocator's search for a free inode, near thousands
# just removed, cost about a tenth of the suite's CPU time. E2E_TMPDIR
# names another parent.
E2E_TMPDIR=${E2E_TMPDIR:-}
# The bats files `all` runs against ./relflip, the build users get; every
# other file runs against the ASan+UBSan build, which compiles the same
# source and also reports what the plain build would let pass. Each file
# runs once: a file run against both builds costs twice the time and adds
# only what the optimiser does differently. docs, guide, people and pkg
# run ./relflip as a user would (the README's commands, --help and the
# man pages, a newcomer's session, the package); netem-proxy.bats tests a
# test tool, not relflip.
E2E_PLAIN=${E2E_PLAIN:-docs guide people pkg netem-proxy}

header() {
	printf '\n==> %s\n' "$*"
}

count() {
	passed=$((passed + $1))
	failed=$((failed + $2))
}

# The core must not include the libraries: only the adapters do.
run_include_check() {
	local adapters=" src/remote-ssh.c src/http-curl.c src/tar-validate.c src/tar-pack.c src/conf-ini.c "
	local f hits=""

	adapters+="src/json-read.c "

	header "include check: only the adapters include libssh2, curl, libarchive, inih, json-c"
	shopt -s nullglob
	for f in src/*.c src/*/*.c include/*.h; do
		[[ $adapters == *" $f "* ]] && continue
		if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(libssh2|curl/|archive|ini\.h|json-c/|json\.h)' "$f"; then
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
# "[  FAILED  ] N test(s)" (every group's, summed); a binary that dies (or
# fails without saying how many) counts as one failure.
run_cmocka() {
	local bin=$1 out rc p f

	header "$bin"
	out=$(env -u CMOCKA_MESSAGE_OUTPUT timeout -k 5 "$UNIT_TIMEOUT" "$bin" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	# A binary may run several groups (test-agent: one per agent): summed.
	p=$(awk '/^\[  PASSED  \] [0-9]+ test/ { s += $4 } END { print s + 0 }' <<<"$out")
	f=$(awk '/^\[  FAILED  \] [0-9]+ test/ { s += $4 } END { print s + 0 }' <<<"$out")
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

# Each fuzz target once over its committed corpus (tests/fuzz/run.sh): one
# result a target; one that is not built fails, saying what is missing.
run_fuzz_smoke() {
	local t

	header "fuzz smoke: each target over tests/fuzz/corpus/TARGET/"
	for t in $(tests/fuzz/run.sh targets); do
		if tests/fuzz/run.sh smoke "$t"; then
			count 1 0
		else
			count 0 1
			failures+=("fuzz smoke: $t")
		fi
	done
}

# One bats file's TAP output in FILE: count "ok" and "not ok" lines ("#
# skip" apart); a run that reports fewer results than its plan, or fails
# without a "not ok", counts the difference (at least one) as failed.
count_bats_output() {
	local label=$1 out=$2 rc=$3 plan p=0 f=0 s=0 line

	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
	while IFS= read -r line; do
		case $line in
		"not ok "*) f=$((f + 1)) ;;
		"ok "*"# skip"*) s=$((s + 1)) ;;
		"ok "*) p=$((p + 1)) ;;
		esac
	done <"$out"
	if [[ -n $plan ]] && ((p + f + s < plan)); then
		echo "$label: $((plan - p - f - s)) of $plan tests reported no result: counted as failed"
		f=$((f + plan - p - f - s))
	fi
	if ((rc != 0 && f == 0)); then
		if ((rc == 124 || rc == 137)); then
			echo "$label: timed out after ${E2E_FILE_TIMEOUT}s: counted as 1 failed"
		else
			echo "$label: bats exited $rc without a failing test: counted as 1 failed"
		fi
		f=1
	fi
	count "$p" "$f"
	skipped=$((skipped + s))
	((f == 0)) || failures+=("$label: $f failed")
}

# The processes of this run that carry TAG (RF_PROC_TAG, which every
# process a bats file starts inherits, sshd sessions included: the test
# sshds set it with SetEnv), as PIDs; this script itself does not carry it.
tagged_pids() {
	grep -lzxF -- "RF_PROC_TAG=$1" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}

# check_left LABEL TAG NSLOG: what the bats file run as TAG left behind:
# processes (waited for a little: some are still exiting) and network
# namespaces (listed in NSLOG as they were made). Lists them, stops them
# (by PID: they carry the run's tag), and counts one failure.
check_left() {
	local label=$1 tag=$2 nslog=$3 pids=() left=() ns i

	for ((i = 0; i < 30; i++)); do
		mapfile -t pids < <(tagged_pids "$tag")
		((${#pids[@]} > 0)) || break
		sleep 0.1
	done
	if ((${#pids[@]} > 0)); then
		echo "$label: left ${#pids[@]} process(es) running:"
		ps -o pid=,ppid=,etime=,args= -p "$(
			IFS=,
			echo "${pids[*]}"
		)" | sed 's/^/    /'
		kill -TERM "${pids[@]}" 2>/dev/null
		for ((i = 0; i < 20; i++)); do
			[[ -n $(tagged_pids "$tag") ]] || break
			sleep 0.1
		done
		kill -KILL "${pids[@]}" 2>/dev/null
		left+=("${#pids[@]} processes")
	fi
	if [[ -s $nslog ]]; then
		while read -r ns; do
			[[ -e /run/netns/$ns ]] || continue
			echo "$label: left network namespace $ns"
			ip netns del "$ns" 2>/dev/null
			left+=("netns $ns")
		done <"$nslog"
	fi
	if ((${#left[@]} > 0)); then
		count 0 1
		failures+=("$label: left behind ${left[*]}")
	fi
}

# sanitizer_reports LABEL DIR: a sanitizer report in DIR (of a process a
# bats file started outside its tests: the tests check their own) counts
# as one failure.
sanitizer_reports() {
	local label=$1 dir=$2 f n=0

	for f in "$dir"/*; do
		[[ -f $f ]] || continue
		echo "$label: sanitizer report $f:"
		head -n 60 "$f" | sed 's/^/    /'
		n=$((n + 1))
	done
	if ((n > 0)); then
		count 0 1
		failures+=("$label: $n sanitizer report(s) outside the tests")
	fi
}

# unit_results DIR: print and count what a unit job left in DIR.
unit_results() {
	local p=0 f=1 s=0 line

	cat "$1/out"
	read -r p f s <"$1/counts" 2>/dev/null || echo "unit suites: no result: counted as 1 failed"
	count "$p" "$f"
	skipped=$((skipped + s))
	while IFS= read -r line; do
		[[ -z $line ]] || failures+=("$line")
	done <"$1/failures" 2>/dev/null
}

# The e2e files, longest first, then the others in name order: the suite is
# bound by the two cores, and a long file started late runs on alone at the
# end. Files that mostly wait (faults, netem-proxy: timeouts, a paced
# link) go early, beside the busy ones. Each file's time in one make check
# (six at a time, in this order): ops 47 s, ops-prune 46, hooks 45, faults
# 44, pull 42, output 41, fleet 40, deploy-failures 37, delta 37, deploy
# 36, fleet-rollback 30, people 25, netem-proxy 22; the rest under 24.
e2e_order() {
	local heavy=(deploy ops faults netem-proxy deploy-failures fleet ops-prune hooks pull output delta fleet-rollback people) f name
	local -A seen=()

	for name in "${heavy[@]}"; do
		for f in tests/e2e/$name.bats tests/tools/$name.bats; do
			[[ -f $f ]] || continue
			echo "$f"
			seen[$name]=1
		done
	done
	for f in tests/e2e/*.bats tests/tools/*.bats; do
		[[ -f $f ]] || continue
		name=${f##*/}
		name=${name%.bats}
		[[ -n ${seen[$name]:-} ]] || echo "$f"
	done
}

# e2e_tmp_parent: the parent for this run's test files (see E2E_TMPDIR).
e2e_tmp_parent() {
	local avail

	if [[ -n $E2E_TMPDIR ]]; then
		echo "$E2E_TMPDIR"
		return
	fi
	if [[ -d /dev/shm && -w /dev/shm && $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
		avail=$(df --output=avail -B 1M /dev/shm 2>/dev/null | tail -n 1)
		if [[ $avail =~ ^\ *[0-9]+$ ]] && ((avail >= 1024)); then
			echo /dev/shm
			return
		fi
	fi
	echo "${TMPDIR:-/tmp}"
}

# The bats runs, E2E_JOBS at a time, each in the background with its output
# in a file; each is printed, counted and checked for what it left behind as
# it ends. A job is "FILE" (./relflip), "FILE asan" (build/asan/relflip,
# sanitizer reports checked), "@unit" or "@unit-asan" (the unit suites,
# which then run beside the bats files instead of before them). The unit
# jobs take no slot of the E2E_JOBS: most of their time is waiting for the
# agents' grace periods (test-agent), not for a core.
run_e2e_jobs() {
	local -a jobs=("$@")
	local -A pid_job=() job_dir=() job_start=()
	local work tests_tmp failed_before i=0 running=0 beside=0 job file kind
	local dir pid rc label tag

	work=$(mktemp -d "${TMPDIR:-/tmp}/relflip-check.XXXXXX")
	tests_tmp=$(mktemp -d "$(e2e_tmp_parent)/relflip-check-tests.XXXXXX")
	failed_before=$failed
	while ((i < ${#jobs[@]} || running > 0)); do
		while ((i < ${#jobs[@]} && running - beside < E2E_JOBS)); do
			job=${jobs[i]}
			file=${job% *}
			kind=plain
			[[ $job != *" asan" ]] || kind=asan
			dir=$work/$i
			mkdir -p "$dir/san"
			tag=relflip-check.$$.$i
			if [[ $job == @unit* ]]; then
				(
					passed=0 failed=0 skipped=0 failures=()
					if [[ $job == @unit ]]; then
						run_unit
					else
						run_unit_asan
					fi
					echo "$passed $failed $skipped" >"$dir/counts"
					printf '%s\n' "${failures[@]+"${failures[@]}"}" >"$dir/failures"
				) </dev/null >"$dir/out" 2>&1 &
				pid_job[$!]=$i
				job_dir[$i]=$dir
				job_start[$i]=$SECONDS
				running=$((running + 1))
				beside=$((beside + 1))
				i=$((i + 1))
				continue
			fi
			(
				export RF_PROC_TAG=$tag RF_NS_LOG=$dir/netns TMPDIR=$tests_tmp
				if [[ $kind == asan ]]; then
					export RF_BIN=$PWD/build/asan/relflip RF_SAN_DIR=$dir/san
					export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:log_path=$dir/san/asan
					export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$dir/san/ubsan
				fi
				timeout -k 10 "$E2E_FILE_TIMEOUT" bats --tap --timing "$file" \
					</dev/null >"$dir/out" 2>&1
				echo $? >"$dir/rc"
			) &
			pid_job[$!]=$i
			job_dir[$i]=$dir
			job_start[$i]=$SECONDS
			running=$((running + 1))
			i=$((i + 1))
		done
		wait -n -p pid
		running=$((running - 1))
		job=${pid_job[$pid]}
		dir=${job_dir[$job]}
		if [[ ${jobs[job]} == @unit* ]]; then
			beside=$((beside - 1))
			label="unit suites"
			[[ ${jobs[job]} == @unit ]] || label="unit suites, ASan+UBSan"
			header "$label ($((SECONDS - job_start[$job])) s, from ${job_start[$job]} s to $SECONDS s)"
			unit_results "$dir"
			continue
		fi
		file=${jobs[job]% *}
		label=$file
		[[ ${jobs[job]} != *" asan" ]] || label="$file (ASan+UBSan)"
		read -r rc <"$dir/rc" 2>/dev/null || rc=1
		header "$label ($((SECONDS - job_start[$job])) s, from ${job_start[$job]} s to $SECONDS s)"
		cat "$dir/out"
		count_bats_output "$label" "$dir/out" "$rc"
		sanitizer_reports "$label" "$dir/san"
		check_left "$label" "relflip-check.$$.$job" "$dir/netns"
	done
	rm -rf "$work"
	# A failed test keeps its files, and says where.
	if ((failed == failed_before)); then
		rm -rf "$tests_tmp"
	else
		header "the failed tests' files are kept under $tests_tmp"
	fi
}

run_e2e() {
	local file name f kind
	local -a jobs=() plain=()

	if ! command -v bats >/dev/null 2>&1; then
		header "e2e: bats is not installed (scripts/install-deps.sh)"
		count 0 1
		failures+=("e2e: bats missing")
		[[ $1 == both ]] && run_e2e_jobs @unit @unit-asan
		return
	fi
	if [[ ! -x ./relflip ]]; then
		echo "note: ./relflip is not built (make): the e2e tests will fail" >&2
	fi
	if [[ $1 != plain && ! -x build/asan/relflip ]]; then
		echo "note: build/asan/relflip is not built (make build/asan/relflip)" >&2
	fi
	read -r -a plain <<<"$E2E_PLAIN"
	while read -r file; do
		name=${file##*/}
		name=${name%.bats}
		case $1 in
		plain) jobs+=("$file") ;;
		asan-only) jobs+=("$file asan") ;;
		both)
			kind=" asan"
			for f in "${plain[@]}"; do
				[[ $f == "$name" ]] && kind= && break
			done
			jobs+=("$file$kind")
			;;
		esac
	done < <(e2e_order)
	if ((${#jobs[@]} == 0)); then
		header "e2e: no tests/e2e/*.bats"
	fi
	# The unit suites run beside the bats files, after the heaviest one.
	if [[ $1 == both ]]; then
		jobs=("${jobs[@]:0:1}" @unit @unit-asan "${jobs[@]:1}")
	fi
	run_e2e_jobs "${jobs[@]}"
}

case $mode in
all)
	run_include_check
	run_fuzz_smoke
	run_e2e both
	;;
unit) run_unit ;;
unit-asan) run_unit_asan ;;
fuzz-smoke) run_fuzz_smoke ;;
e2e) run_e2e plain ;;
e2e-asan) run_e2e asan-only ;;
-h | --help)
	sed -n '2,20s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "usage: scripts/check.sh all|unit|unit-asan|fuzz-smoke|e2e|e2e-asan" >&2
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
