#!/usr/bin/env bash
# The fault matrix: every scenario's stages x every fault, one cell each
# (tests/faults/lib.bash says what a cell does and asserts). `make soak`.
#
#   tests/faults/matrix.sh [-j N] [--slice] [--list] [PATTERN...]
#
#   -j N      cells run at once (default 3; black-hole cells mostly wait:
#             35 s of silence, or the upload's 120 s I/O timeout)
#   --slice   only the representative slice that `make check`
#             runs (tests/e2e/faults.bats)
#   --list    print the cells and exit
#   PATTERN   only cells whose name ("deploy:upload x cut") matches a
#             PATTERN (bash glob)
#
# Prints the count of cells, one line per cell as each ends ("CELL RESULT
# DETAIL", with one indented line per broken invariant), and last
# "N passed, N failed" (skips are counted apart). Exit 0 when none failed.
# FAULTS_KEEP=1 keeps a failed cell's server files (all: every cell's).
# RF_SSHD_AGENT=sh runs every cell against the shell's agent (the default
# is the Perl one, where perl is installed). Needs root.
set -u

cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/faults/lib.bash
source tests/faults/lib.bash

# The representative slice, as in tests/e2e/faults.bats: one cell per kind
# of fault, over the stages that matter most (the lock, the transfer, the
# switch, a hook); black holes take 40 s to 2 minutes a cell and stay in
# the soak.
FAULT_SLICE=(
	"deploy:lock x kill9"
	"deploy:upload x cut"
	"deploy:switch x sshdkill"
	"longhook:install x kill9"
	"disk:unpack x full"
)

jobs=3
slice=0
list=0
patterns=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-j) jobs=$2; shift 2 ;;
	--slice) slice=1; shift ;;
	--list) list=1; shift ;;
	-h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "matrix.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) patterns+=("$1"); shift ;;
	esac
done

cells=()
if ((slice)); then
	cells=("${FAULT_SLICE[@]}")
else
	for scen in deploy deploybad rollback prune longhook disk; do
		for stage in $(fault_stages "$scen"); do
			for fault in $(fault_faults "$scen"); do
				cells+=("$scen:$stage x $fault")
			done
		done
	done
fi
if ((${#patterns[@]} > 0)); then
	picked=()
	for c in "${cells[@]}"; do
		for p in "${patterns[@]}"; do
			# shellcheck disable=SC2053 # a glob on purpose
			if [[ $c == $p ]]; then
				picked+=("$c")
				break
			fi
		done
	done
	cells=("${picked[@]+"${picked[@]}"}")
fi
if ((list)); then
	printf '%s\n' "${cells[@]}"
	echo "${#cells[@]} cells"
	exit 0
fi
if [[ ! -x $RF_BIN || ! -x $RF_PROXY_BIN ]]; then
	echo "matrix.sh: build first: make relflip tools" >&2
	exit 2
fi
if ((EUID != 0)); then
	echo "matrix.sh: needs root (sshd, mount namespaces)" >&2
	exit 2
fi

echo "fault matrix: ${#cells[@]} cells, $jobs at a time"
results=$(mktemp -d "${TMPDIR:-/tmp}/relflip-matrix.XXXXXX")
started=$(rf_now_ms)

# run_one N CELL: one cell in its own process; its lines to results/N.
run_one() {
	local n=$1 scen stage fault rest

	scen=${2%%:*}
	rest=${2#*:}
	stage=${rest%% x *}
	fault=${rest##* x }
	(fault_cell "$scen" "$stage" "$fault" >"$results/$n.out" 2>"$results/$n.err"
	echo $? >"$results/$n.rc")
}

n=0
running=0
for c in "${cells[@]}"; do
	if ((running >= jobs)); then
		wait -n
		running=$((running - 1))
	fi
	n=$((n + 1))
	run_one "$n" "$c" &
	running=$((running + 1))
	# Lines of the cells done so far, in order of ending.
	for f in "$results"/*.rc; do
		[[ -e $f && ! -e ${f%.rc}.shown ]] || continue
		cat "${f%.rc}.out"
		: >"${f%.rc}.shown"
	done
done
wait
for f in "$results"/*.rc; do
	[[ -e $f && ! -e ${f%.rc}.shown ]] || continue
	cat "${f%.rc}.out"
	: >"${f%.rc}.shown"
done

passed=0 failed=0 skipped=0
for ((i = 1; i <= n; i++)); do
	rc=$(cat "$results/$i.rc" 2>/dev/null || echo 1)
	case $rc in
	0) passed=$((passed + 1)) ;;
	2) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done
echo
echo "fault matrix: $n cells in $((($(rf_now_ms) - started) / 1000)) s; $skipped skipped (stage never began)"
echo "$passed passed, $failed failed"
rm -rf "$results"
((failed == 0))
