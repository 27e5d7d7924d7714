#!/usr/bin/env bats
# The representative slice of the fault matrix (tests/faults/matrix.sh,
# whose whole runs in `make soak`): one cell per kind of fault, each
# asserting every invariant of tests/faults/lib.bash. Part of make check
# (about 40 s, 15 s of CPU); FAULTS=0 leaves it out. Black-hole cells are
# left to the soak: relflip waits out 35 s of silence there, or the
# upload's 120 s I/O timeout.
#
# One test per cell, one cell at a time: each stays well within the
# per-test time limit of scripts/check.sh (120 s; five cells at once took
# about that long on a busy 2-core machine), and a failure names its cell.

bats_require_minimum_version 1.5.0

# slice_cell CELL: run CELL of the slice (matrix.sh --slice CELL) in its own
# process (the harness is plain bash, not written for bats' set -e); it must
# pass: one that never reached its stage fails too.
slice_cell() {
	local line

	if [[ ${FAULTS:-1} == 0 ]]; then
		skip "fault slice: FAULTS=0 leaves it out (make soak runs the whole matrix)"
	fi
	run "$BATS_TEST_DIRNAME/../faults/matrix.sh" --slice "$1"
	while IFS= read -r line; do
		[[ $line != *" x "* && $line != "      - "* ]] || echo "# $line" >&3
	done <<<"$output"
	if [[ $status != 0 || $output != *"1 passed, 0 failed"* ]]; then
		printf '%s\n' "$output"
		return 1
	fi
}

@test "fault slice: the cells below are matrix.sh's slice" {
	local want got

	want=$(sed -n 's/^@test "fault slice: \(.* x [a-z0-9]*\)".*/\1/p' "$BATS_TEST_FILENAME" | sort)
	got=$("$BATS_TEST_DIRNAME/../faults/matrix.sh" --slice --list | grep ' x ' | sort)
	[[ $want == "$got" ]] || {
		printf 'this file:\n%s\nmatrix.sh --slice --list:\n%s\n' "$want" "$got"
		return 1
	}
}

@test "fault slice: deploy:lock x kill9" {
	slice_cell "deploy:lock x kill9"
}

@test "fault slice: deploy:upload x cut" {
	slice_cell "deploy:upload x cut"
}

@test "fault slice: deploy:switch x sshdkill" {
	slice_cell "deploy:switch x sshdkill"
}

@test "fault slice: longhook:install x kill9" {
	slice_cell "longhook:install x kill9"
}

@test "fault slice: disk:unpack x full" {
	slice_cell "disk:unpack x full"
}
