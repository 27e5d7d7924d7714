#!/usr/bin/env bash
# Run the libFuzzer targets that `make fuzz-build` puts in build/fuzz/.
#
#   tests/fuzz/run.sh targets         the target names, one a line
#   tests/fuzz/run.sh smoke TARGET    TARGET over its committed corpus, once
#   tests/fuzz/run.sh run [TARGET...] each for FUZZ_SECONDS (default 60)
#
# `run` fuzzes one target at a time, under nice, with -jobs=1: the job's
# output goes to build/fuzz/logs/TARGET/fuzz-0.log and new inputs to
# build/fuzz/corpus/TARGET/ (the committed corpus is only read). A crash,
# leak or timeout is written to build/fuzz/crashes/TARGET/ and fails the
# target; `build/fuzz/fuzz-TARGET FILE` replays it. Exit 0 only when every
# target passed.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
root=$PWD
src=tests/fuzz

targets() {
	local f

	for f in "$src"/fuzz-*.c; do
		f=${f##*/fuzz-}
		echo "${f%.c}"
	done
}

dict_of() {
	case $1 in
	record | log) echo "$src/json.dict" ;;
	*) echo "$src/$1.dict" ;;
	esac
}

# Why a target is not built, for the message that fails it.
missing_why() {
	local cc=${FUZZ_CC:-clang-14} rt

	if ! command -v "$cc" >/dev/null 2>&1; then
		echo "$cc is not installed"
		return
	fi
	rt=$("$cc" -print-runtime-dir 2>/dev/null)
	if [[ ! -f $rt/libclang_rt.fuzzer-x86_64.a ]]; then
		[[ -n $rt ]] || rt="the runtime directory of $cc"
		echo "the libFuzzer runtime libclang_rt.fuzzer-x86_64.a is not in $rt (libclang-rt-14-dev)"
		return
	fi
	echo "it did not build (run make fuzz-build to see why)"
}

# The options every run shares; the crash directory is made here.
common_opts() {
	local t=$1 dict

	mkdir -p "$root/build/fuzz/crashes/$t"
	echo "-artifact_prefix=$root/build/fuzz/crashes/$t/"
	echo "-timeout=10"
	echo "-rss_limit_mb=2048"
	dict=$(dict_of "$t")
	[[ -f $dict ]] && echo "-dict=$root/$dict"
}

check_built() {
	local t=$1 bin=build/fuzz/fuzz-$1

	if [[ ! -x $bin ]]; then
		echo "FAILED: fuzz $t: $bin is missing: $(missing_why)." \
			"Install the packages with scripts/install-deps.sh, then make fuzz-build."
		return 1
	fi
	if [[ ! -d $src/corpus/$t ]]; then
		echo "FAILED: fuzz $t: no committed corpus in $src/corpus/$t/"
		return 1
	fi
}

smoke() {
	local t=$1 out rc opts

	check_built "$t" || return 1
	mapfile -t opts < <(common_opts "$t")
	out=$(nice "build/fuzz/fuzz-$t" -runs=0 "${opts[@]}" \
		"$src/corpus/$t" 2>&1)
	rc=$?
	if ((rc != 0)); then
		printf '%s\n' "$out" | tail -n 40
		echo "FAILED: fuzz $t: an input of $src/corpus/$t/ failed (exit $rc)"
		return 1
	fi
	echo "ok: fuzz $t: $(grep -c . < <(ls "$src/corpus/$t")) inputs," \
		"$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*\(cov: [0-9]* ft: [0-9]*\).*/\1/p' <<<"$out" | tail -n 1)"
}

run_one() {
	local t=$1 secs=${FUZZ_SECONDS:-60} logdir rc opts

	check_built "$t" || return 1
	mapfile -t opts < <(common_opts "$t")
	logdir=$root/build/fuzz/logs/$t
	mkdir -p "$logdir" "$root/build/fuzz/corpus/$t"
	echo "==> fuzz $t for ${secs}s (log: ${logdir#"$root"/}/fuzz-0.log)"
	(cd "$logdir" && nice "$root/build/fuzz/fuzz-$t" -jobs=1 \
		-max_total_time="$secs" -print_final_stats=1 "${opts[@]}" \
		"$root/build/fuzz/corpus/$t" "$root/$src/corpus/$t" \
		>/dev/null 2>&1)
	rc=$?
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
		"$logdir/fuzz-0.log"
	if ((rc != 0)); then
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
			"$logdir/fuzz-0.log"
		echo "FAILED: fuzz $t (exit $rc): see build/fuzz/crashes/$t/"
		return 1
	fi
	echo "ok: fuzz $t"
}

mode=${1:-}
case $mode in
targets) targets ;;
smoke)
	[[ $# -eq 2 ]] || { echo "usage: $0 smoke TARGET" >&2; exit 2; }
	smoke "$2"
	;;
run)
	shift
	(($# > 0)) || set -- $(targets)
	failed=0
	for t in "$@"; do
		run_one "$t" || failed=$((failed + 1))
	done
	echo "fuzz: $(($# - failed)) of $# targets passed"
	((failed == 0))
	;;
*)
	sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
