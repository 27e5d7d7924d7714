#!/usr/bin/env bats
# What relflip prints, for the person reading a CI log or a terminal: GitHub
# Actions annotations, groups and the step summary; no escape sequences in a
# pipe or under NO_COLOR; -q keeps errors only.

load lib/sshd
load lib/deploy

setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
	APP_PORT=$(rf_free_port)
	rf_app_start "$APP_PORT"
	rf_config "$(rf_health_ini "$APP_PORT")"
}

teardown_file() {
	rf_file_teardown
}

# gh_deploy ID ARTIFACT: a deploy as GitHub Actions runs it, with a summary
# file; sets SUMMARY.
gh_deploy() {
	SUMMARY=$RF_TMP/summary-$1.md
	: >"$SUMMARY"
	run --separate-stderr env GITHUB_ACTIONS=true GITHUB_STEP_SUMMARY="$SUMMARY" \
		GITHUB_SERVER_URL=https://github.example GITHUB_REPOSITORY=acme/shop \
		GITHUB_RUN_ID=42 GITHUB_ACTOR=alice \
		"$RF_BIN" -c "$RF_CONFIG" deploy "$2" --revision "$1"
}

@test "under GitHub Actions a deploy folds its stages and writes a step summary naming the release" {
	local art

	art=$(rf_artifact v1)
	gh_deploy v1 "$art"
	rf_assert_status 0
	# No hook printed anything: nothing to fold.
	[[ $output != *"::group::"* ]] || rf_fail "a group with nothing in it"
	grep -q '^### relflip deploy v1: done' "$SUMMARY" || rf_fail "summary title: $(cat "$SUMMARY")"
	grep -q '| release | `v1` |' "$SUMMARY" || rf_fail "summary lacks the release"
	grep -q '| actor | alice |' "$SUMMARY" || rf_fail "summary lacks the actor"
	grep -q 'https://github.example/acme/shop/actions/runs/42' "$SUMMARY" ||
		rf_fail "summary lacks the run URL"
	grep -q '^| local | ok | `v1` |' "$SUMMARY" || rf_fail "summary lacks the host row"
	# The run URL reached the release record too.
	grep -q 'actions/runs/42' "$RF_APP/.relflip/releases/v1.json"
}

@test "under GitHub Actions a failed health check raises an error annotation and the summary names the rollback" {
	local art

	gh_deploy v1 "$(rf_artifact v1)"
	rf_assert_status 0
	art=$(rf_artifact v2 HEALTH_STATUS=503)
	gh_deploy v2 "$art"
	rf_assert_status 8
	[[ $output == *"::error title=relflip health on local::health check failed on local: 503"* ]] ||
		rf_fail "no error annotation for the health check on stdout"
	grep -q '^### relflip deploy v2: health check failed, rolled back' "$SUMMARY" ||
		rf_fail "summary title: $(cat "$SUMMARY")"
	grep -q '| previous | `v1` |' "$SUMMARY" || rf_fail "summary lacks the previous release"
	grep -q 'Rollback:.*`v1`' "$SUMMARY" || rf_fail "summary lacks the rollback line"
	grep -q '^| local | rolled back | `v1` |' "$SUMMARY" || rf_fail "summary lacks the host row"
	rf_assert_current v1
}

@test "in a pipe relflip writes no escape sequences, also for a failure" {
	local art

	art=$(rf_artifact v1 HEALTH_STATUS=503)
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 8
	if printf '%s%s' "$output" "$stderr" | grep -q $'\033'; then
		rf_fail "an escape sequence in piped output"
	fi
	[[ $stderr == *"relflip: error: health check failed"* ]]
}

# on_tty CMD...: run CMD with a terminal on stdout and stderr (script(1)),
# its output in $RF_TMP/tty.out.
on_tty() {
	script -qfec "$(printf '%q ' "$@")" "$RF_TMP/tty.out" >/dev/null 2>&1 </dev/null || true
}

# tty_screen: the lines $RF_TMP/tty.out leaves on a terminal, as a person
# sees them at the end: cursor-up, carriage return and erase followed,
# colours dropped; script(1)'s own first and last lines left out.
tty_screen() {
	rf_py '
import re, sys
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
data = data.split("\n", 1)[1] if data.startswith("Script started") else data
data = re.sub(r"\n?Script done.*$", "", data, flags=re.S)
lines, row, col = [""], 0, 0
i = 0
while i < len(data):
    m = re.match(r"\x1b\[(\d*)([A-Za-z])", data[i:])
    if m:
        n, op = int(m.group(1) or 1), m.group(2)
        if op == "A":
            row = max(0, row - n)
        elif op == "J":
            lines[row] = lines[row][:col]
            del lines[row + 1:]
        elif op == "K":
            lines[row] = lines[row][:col]
        i += m.end()
        continue
    c = data[i]
    i += 1
    if c == "\r":
        col = 0
    elif c == "\n":
        row += 1
        col = 0
        if row == len(lines):
            lines.append("")
    else:
        l = lines[row]
        lines[row] = l[:col] + c + l[col + 1:]
        col += 1
print("\n".join(l.rstrip() for l in lines).rstrip("\n"))
' "$RF_TMP/tty.out"
}

# hooks_config HOOKS_INI: the file's config (the app on $APP_PORT, its
# health check) with HOOKS_INI added.
hooks_config() {
	rf_config "$(rf_health_ini "$APP_PORT")

$1"
}

@test "on a terminal errors are coloured, and NO_COLOR or --no-color turn colour off" {
	on_tty "$RF_BIN" -c "$RF_CONFIG" rollback
	grep -q $'\033\\[31;1merror:' "$RF_TMP/tty.out" || rf_fail "no colour on a terminal: $(cat -v "$RF_TMP/tty.out")"

	on_tty env NO_COLOR=1 "$RF_BIN" -c "$RF_CONFIG" rollback
	grep -q 'relflip: error:' "$RF_TMP/tty.out" || rf_fail "no error line: $(cat -v "$RF_TMP/tty.out")"
	if grep -q $'\033\\[3[0-9]' "$RF_TMP/tty.out"; then
		rf_fail "colour under NO_COLOR: $(cat -v "$RF_TMP/tty.out")"
	fi

	on_tty "$RF_BIN" --no-color -c "$RF_CONFIG" rollback
	if grep -q $'\033\\[3[0-9]' "$RF_TMP/tty.out"; then
		rf_fail "colour under --no-color: $(cat -v "$RF_TMP/tty.out")"
	fi
}

@test "-q prints errors only; --json keeps stdout to JSON events" {
	local art line

	art=$(rf_artifact v1)
	run --separate-stderr "$RF_BIN" -q -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 0
	[[ -z $stderr ]] || rf_fail "-q printed: $stderr"
	art=$(rf_artifact v2 HEALTH_STATUS=503)
	run --separate-stderr "$RF_BIN" -q -c "$RF_CONFIG" deploy "$art" --revision v2
	rf_assert_status 8
	[[ $stderr == *"relflip: error: health check failed"* ]]
	[[ $stderr != *"  upload "* ]] || rf_fail "-q printed stage lines"

	run --separate-stderr "$RF_BIN" --json -c "$RF_CONFIG" releases
	rf_assert_status 0
	while IFS= read -r line; do
		"$RF_PYTHON" -c 'import json, sys; json.loads(sys.argv[1])' "$line" ||
			rf_fail "not JSON on stdout: $line"
	done <<<"$output"
}

@test "on a terminal the running stage shows its elapsed time, and a hook's lines come under their stage" {
	local screen art

	hooks_config '[hooks]
install = echo first line; sleep 1.6; echo second line'
	art=$(rf_artifact v1)
	on_tty "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_current v1
	# While the hook was quiet, the live line counted the seconds.
	grep -aq "install   local …  \(.\[2m\)\{0,1\}1 s" "$RF_TMP/tty.out" ||
		rf_fail "no elapsed time on the live line:" "$(cat -v "$RF_TMP/tty.out")"
	# What stays on the screen: the heading, the hook's lines, the stage's
	# line; no live line left behind.
	screen=$(tty_screen)
	rf_py --stdin "$screen" '
import sys
lines = sys.stdin.read().splitlines()
def at(prefix):
    for n, l in enumerate(lines):
        if l.startswith(prefix):
            return n
    sys.exit("no line starting %r in:\n%s" % (prefix, "\n".join(lines)))
head = at("  install   local …")
first = at("    local | first line")
second = at("    local | second line")
done = at("  install   local ")
end = [n for n, l in enumerate(lines) if l.startswith("  install   local")]
if not head < first < second < end[-1]:
    sys.exit("out of order:\n" + "\n".join(lines))
if "…" in lines[end[-1]] or len(end) != 2:
    sys.exit("the live line is left, or the heading repeated:\n" + "\n".join(lines))
if not lines[-1].startswith("deployed v1"):
    sys.exit("the last line is not the verdict:\n" + "\n".join(lines))
' || rf_fail "the screen after the deploy:" "$screen"
}

@test "off a terminal a hook's lines come under their stage's heading, with no live line" {
	local art re

	hooks_config '[hooks]
install = echo first line; sleep 1.2; echo second line'
	art=$(rf_artifact v1)
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 0
	[[ $stderr == *$'\n  install   local …\n    local | first line\n    local | second line\n  install   local  '* ]] ||
		rf_fail "the hook's lines are not under their heading" "$(rf_show_run)"
	# A live line reads "…  1 s"; a stage that took 1.1 s is not one.
	[[ $stderr != *"…  "[0-9]*" s"* && $stderr != *$'\r'* && $stderr != *$'\033'* ]] ||
		rf_fail "a live line or an escape sequence off a terminal" "$(rf_show_run)"
	# The upload of a few hundred bytes is not timed to a rate.
	re=$'\n''  upload    local [0-9]+ B +[0-9]+ ms'
	[[ $stderr =~ $re ]] ||
		rf_fail "the upload line of a small artifact shows a rate" "$(rf_show_run)"
}

@test "under GitHub Actions a hook's output is folded and its stage's line stays outside the fold" {
	local art

	hooks_config '[hooks]
install = echo pip says hello'
	art=$(rf_artifact v1)
	run env GITHUB_ACTIONS=true "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 0
	[[ $output == *$'::group::relflip install local (output)\n    local | pip says hello\n::endgroup::\n  install   local  '* ]] ||
		rf_fail "the install output is not folded, or its line is inside" "$(rf_show_run)"
	[[ $output != *"::group::relflip upload"* ]] || rf_fail "a fold for a stage without output"
}

@test "a failed hook's hint is the command that runs it again, the same way" {
	local hint

	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0
	hooks_config '[hooks]
install = printf "%s %s %s\n" "$RELFLIP_REVISION" "$RELFLIP_PREVIOUS_REVISION" "$PWD" >>ran; exit 3'
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v2)" --revision v2
	rf_assert_status 7
	rf_assert_stderr_has "install hook failed with exit 3 on local" "hint: run it again on local as root: cd "
	hint=${stderr##*hint: run it again on local as root: }
	hint=${hint%%$'\n'*}
	# The server is this machine: run the hint's command as a person would.
	bash -c "$hint" && rf_fail "the command in the hint did not fail like the hook"
	[[ $(sed -n 1p "$RF_APP/releases/v2/ran") == "v2 v1 $RF_APP/releases/v2" ]] ||
		rf_fail "the hook ran as: $(cat "$RF_APP/releases/v2/ran")"
	[[ $(sed -n 2p "$RF_APP/releases/v2/ran") == "v2 v1 $RF_APP/releases/v2" ]] ||
		rf_fail "the hint ran it as: $(sed -n 2p "$RF_APP/releases/v2/ran")"
}

@test "each failure ends with a hint of its own: health, lock, artifact, ref" {
	local art

	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0

	# Health (8): the body's first line says why; the hint points at the app's log.
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v2 HEALTH_STATUS=503)" --revision v2
	rf_assert_status 8
	rf_assert_stderr_has '503 Service Unavailable, body "unhealthy v2", after' \
		"hint: why is in the app's own log on local"

	# Lock (5): who holds it, how to wait, how to unlock; the hint's
	# command names the config given with -c, so that pasting it acts on
	# the same servers.
	mkdir "$RF_APP/.relflip/lock"
	printf '%s\n' "user=alice@ci" "pid=1" "command=deploy" "revision=old" \
		"token=someone-elses" "since=$(date +%s)" >"$RF_APP/.relflip/lock/info"
	art=$(rf_artifact v3)
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v3
	rf_assert_status 5
	rf_assert_stderr_has "held: alice@ci (pid 1)" "lock_wait = 5m" "relflip -c $RF_CONFIG -H local unlock" "unlock --force"
	rm -rf "$RF_APP/.relflip/lock"

	# Artifact (6): one id, one artifact.
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "deployed from another artifact" "hint: a release id names one artifact: build with a new --revision"

	# Ref (10): none given, or a short name.
	rf_config --app "allowed_refs = refs/heads/main refs/tags/v*" "$(rf_health_ini "$APP_PORT")"
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v3
	rf_assert_status 10
	rf_assert_stderr_has "no ref given, and allowed_refs is set" "hint: pass --ref refs/heads/main"
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision v3 --ref main
	rf_assert_status 10
	rf_assert_stderr_has "ref 'main' is not allowed" "did you mean --ref refs/heads/main?"
}

@test "Ctrl-C during a hook: one error, the record written, and the hint says where things stand" {
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0
	hooks_config "[hooks]
install = echo hook-started; sleep 7.$RF_PORT"
	rf_bg_relflip int -c "$RF_CONFIG" deploy "$(rf_artifact v2)" --revision v2
	rf_poll 20 rf_file_has "$RF_TMP/int.err" hook-started ||
		rf_fail "the install hook did not start:" "$(cat "$RF_TMP/int.err")"
	kill -INT "$RF_BG_PID"
	rf_bg_wait 20
	rf_assert_status 130
	[[ $(grep -c '^relflip: error:' <<<"$stderr") == 1 ]] || rf_fail "not one error line:" "$stderr"
	rf_assert_stderr_has "interrupted during install on local (exit 130)" \
		"hint: current is unchanged on every host; v2 is marked failed and the lock is released"
	[[ $stderr != *"record    FAILED"* ]] || rf_fail "the record is said to have failed:" "$stderr"
	[[ $stderr == *$'\n'"  record    local "* ]] || rf_fail "no record line:" "$stderr"
	rf_assert_record v2 failed
	rf_assert_not_exists "$RF_APP/.relflip/lock"
}

@test "an app path that cannot be made: one clean line, and a hint with the real user and path" {
	: >"$RF_TMP/srv/plain-file"
	rf_config --path "$RF_TMP/srv/plain-file/app"
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 6
	# The stage line shows the error as far as its width allows (it depends
	# on the length of $RF_TMP), the error line whole: once each, at most.
	! grep -q 'mkdir.*mkdir' <<<"$stderr" || rf_fail "mkdir's error twice in a line:" "$stderr"
	(($(grep -c 'mkdir' <<<"$stderr") <= 2)) || rf_fail "mkdir's error more than once (stage line, error):" "$stderr"
	[[ $stderr != *'\x0a'* ]] || rf_fail "a multi-line error in one line:" "$stderr"
	rf_assert_stderr_has "cannot create the layout under $RF_TMP/srv/plain-file/app on local: mkdir: " \
		"hint: give root the app path, as root on local: install -d -o root $RF_TMP/srv/plain-file/app"
}

@test "-v shows the SSH negotiation, each stage's script line by line, and the health requests" {
	run --separate-stderr "$RF_BIN" -v -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "connected in" "kex " "host key ssh-ed25519 SHA256:" "auth key file" \
		"debug: lock_one: local: lock: " "debug:   |   if mv -T \"\$N\" \"\$R/lock\"" \
		"local: unpack+link: " \
		"GET $(rf_app_url "$APP_PORT"), try " ': 200, body "ok v1", good'
	run --separate-stderr "$RF_BIN" -v -c "$RF_CONFIG" check
	rf_assert_status 0
	rf_assert_stderr_has "debug: " "kex " "GET $(rf_app_url "$APP_PORT"), try 1: 200"
}

@test "releases: the table alone on stdout, aligned within 120 columns for 40-character ids, full ids in --json" {
	local sha=15c99f10f106c3c3cfe6f85516cc4e78b9799755 line

	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact "$sha")" --revision "$sha" --ref refs/heads/a-rather-long-branch-name
	rf_assert_status 0
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" releases
	rf_assert_status 0
	# No connect or probe lines: stderr has nothing to say.
	[[ -z $stderr ]] || rf_fail "releases printed more than the table:" "$stderr"
	rf_py --stdin "$output" '
import sys
lines = sys.stdin.read().splitlines()
head = [l for l in lines if l.lstrip().startswith("ID ")]
rows = [l for l in lines if l[2:3] in ("*", " ") and len(l.split()) > 3 and not l.lstrip().startswith("ID ")]
if len(head) != 1 or len(rows) != 2:
    sys.exit("no table:\n" + "\n".join(lines))
h = head[0]
for col in ("STATUS", "DEPLOYED AT", "BY", "REF", "ARTIFACT"):
    at = h.index(col)
    for r in rows:
        if r[at - 1] != " " or r[at] == " ":
            sys.exit("column %s not aligned:\n%s" % (col, "\n".join([h] + rows)))
if "SIZE" in h:
    sys.exit("SIZE is still the header: " + h)
for l in lines:
    if len(l) > 120:
        sys.exit("wider than 120 columns: %d: %s" % (len(l), l))
if not any(r.split()[1] == "15c99f10f106c3c3cfe6f85516cc4e78b9799755" for r in rows):
    sys.exit("the 40-character id is not whole:\n" + "\n".join(rows))
if not any("refs/heads/a-rather…" in r for r in rows):
    sys.exit("the long ref is not cut:\n" + "\n".join(rows))
' || rf_fail "the table:" "$output"

	run --separate-stderr "$RF_BIN" --json -c "$RF_CONFIG" releases
	rf_assert_status 0
	rf_json_query '[e["ref"] for e in ev if e["event"] == "release" and e["live"]] == ["refs/heads/a-rather-long-branch-name"]'
}

@test "check after a good deploy: public_url serves the live release, no warning" {
	rf_config "$(rf_health_ini "$APP_PORT" "public_url = $(rf_app_url "$APP_PORT")
expect_revision = yes")"
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" deploy "$(rf_artifact v1)" --revision v1
	rf_assert_status 0
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" check
	rf_assert_status 0
	rf_assert_stderr_has "public_url $(rf_app_url "$APP_PORT") answers 200, serves v1"
	[[ $stderr != *warning* ]] || rf_fail "check warned after a good deploy" "$(rf_show_run)"

	# The live app turns unhealthy: exit 8, and check changes nothing.
	echo 503 >"$RF_APP/releases/v1/HEALTH_STATUS"
	rf_snapshot app "$RF_APP"
	run --separate-stderr "$RF_BIN" -c "$RF_CONFIG" check
	rf_assert_status 8
	rf_assert_current v1
	rf_assert_unchanged app
}

@test "pack: what it packed, then the digest; the name picks the compression, an unknown one is refused" {
	rf_src "$RF_TMP/src"
	run "$RF_BIN" pack "$RF_TMP/src" -o "$RF_TMP/p.tar.zst" --revision v1
	rf_assert_status 0
	[[ ${lines[0]} == "packed $RF_TMP/src: 2 files, "*", zstd)" ]] || rf_fail "first line:" "$output"
	[[ ${lines[1]} =~ ^[0-9a-f]{64}\ \ [0-9]+\ bytes\ \ $RF_TMP/p.tar.zst$ ]] || rf_fail "second line:" "$output"
	[[ $(file -b "$RF_TMP/p.tar.zst") == Zstandard* ]] || rf_fail "not zstd: $(file -b "$RF_TMP/p.tar.zst")"
	run --separate-stderr "$RF_BIN" pack "$RF_TMP/src" -o "$RF_TMP/p.zip"
	rf_assert_status 2
	rf_assert_stderr_has "cannot tell the compression from the name; end it in .tar.gz"
	rf_assert_not_exists "$RF_TMP/p.zip"
}
