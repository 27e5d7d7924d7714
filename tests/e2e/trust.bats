#!/usr/bin/env bats
# Trust, end to end: what validation approved is what lands; relflip never
# writes through a link, never adopts what it did not make, ends what it
# started when it stops, clears a lock in any shape, and keeps its records
# in agreement with current.

load lib/deploy-suite

# py_tar FILE CODE: a tarball written by python's tarfile; CODE adds the
# members to `t` with add(name, data) and link(name, target).
py_tar() {
	"$RF_PYTHON" - "$1" "$2" <<'EOF'
import io, sys, tarfile
out, code = sys.argv[1], sys.argv[2]
fmt = tarfile.PAX_FORMAT if "PAX" in code else tarfile.GNU_FORMAT
glob = {"path": "REVISION"} if "GLOBAL" in code else None
with tarfile.open(out, "w:gz", format=fmt, pax_headers=glob) as t:
    def add(name, data=b"x\n"):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))
    def link(name, target):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.SYMTYPE
        ti.linkname = target
        ti.mode = 0o777
        t.addfile(ti)
    def adddir(name):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        t.addfile(ti)
    exec(code)
EOF
}

# The records of the app: how many say live, and which.
live_records() {
	rf_py '
import glob, json, sys
live = [json.load(open(f))["id"] for f in glob.glob(sys.argv[1] + "/.relflip/releases/*.json")
        if json.load(open(f)).get("status") == "live"]
print(" ".join(sorted(live)))
' "$RF_APP"
}

@test "a tarball with a pax global header is refused before any server is touched, exit 3" {
	py_tar "$RF_TMP/g.tar.gz" '# GLOBAL PAX
add("index.html")'
	deploy "$RF_TMP/g.tar.gz" --revision v1
	rf_assert_status 3
	rf_assert_stderr_has "global"
	rf_assert_not_exists "$RF_APP"
}

@test "a git archive tarball (one comment-only global header) deploys" {
	local repo=$RF_TMP/repo

	mkdir -p "$repo"
	git -C "$repo" init -q
	printf 'hello\n' >"$repo/index.html"
	git -C "$repo" add index.html
	git -C "$repo" -c user.email=t@e -c user.name=t commit -qm one
	git -C "$repo" archive --format=tar.gz -o "$RF_TMP/git.tar.gz" HEAD
	deploy "$RF_TMP/git.tar.gz" --revision v1
	rf_assert_status 0
	rf_assert_current v1
	[[ -f $RF_APP/.relflip/releases/v1.manifest ]] || rf_fail "no manifest kept for v1"
}

@test "a releases/ID relflip did not make is never adopted: exit 6 every time, no record written" {
	mkdir -p "$RF_APP/releases/v1"
	echo "not ours" >"$RF_APP/releases/v1/index.html"
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "relflip did not make it"
	rf_assert_not_exists "$RF_APP/.relflip/releases/v1.json" "$RF_APP/current"
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_not_exists "$RF_APP/.relflip/releases/v1.json" "$RF_APP/current"
	[[ $(cat "$RF_APP/releases/v1/index.html") == "not ours" ]] || rf_fail "releases/v1 was changed"
}

@test "a releases/ID that is a link is refused and left as it is, exit 6" {
	mkdir -p "$RF_APP/releases" "$RF_TMP/elsewhere"
	ln -s "$RF_TMP/elsewhere" "$RF_APP/releases/v1"
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "not a directory relflip made"
	[[ $(readlink "$RF_APP/releases/v1") == "$RF_TMP/elsewhere" ]] || rf_fail "the link was replaced"
	[[ -z $(ls -A "$RF_TMP/elsewhere") ]] || rf_fail "something was written through the link"
	rf_assert_not_exists "$RF_APP/.relflip/releases/v1.json"
}

@test "REVISION shipped as a link is replaced by a file, never written through" {
	py_tar "$RF_TMP/r.tar.gz" 'add("app.py", b"print(1)\n"); link("REVISION", "app.py")'
	deploy "$RF_TMP/r.tar.gz" --revision v1
	rf_assert_status 0
	[[ $(cat "$RF_APP/releases/v1/app.py") == "print(1)" ]] || rf_fail "app.py was written through REVISION"
	[[ -f $RF_APP/releases/v1/REVISION && ! -L $RF_APP/releases/v1/REVISION ]] || rf_fail "REVISION is still a link"
	[[ $(cat "$RF_APP/releases/v1/REVISION") == "v1" ]]
}

@test "a shared path below a link in the release is refused, exit 6, and nothing moves" {
	rf_config --app "shared_dirs = conf/uploads"
	py_tar "$RF_TMP/s.tar.gz" 'adddir("data"); add("data/uploads", b"keep\n"); link("conf", "data")'
	deploy "$RF_TMP/s.tar.gz" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "symbolic link"
	rf_assert_not_exists "$RF_APP/current"
	rf_assert_record v1 failed
}

@test "a lock that is a plain file stops a deploy (exit 5, said so); unlock --force clears it" {
	mkdir -p "$RF_APP/.relflip"
	echo garbage >"$RF_APP/.relflip/lock"
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 5
	rf_assert_stderr_has "is not a directory relflip made" "unlock --force"
	# The age is the file's, not the time since 1970.
	[[ ! $stderr =~ renewed\ [0-9]{7,}s ]] || rf_fail "an absurd age:" "$stderr"
	run --separate-stderr relflip -c "$RF_CONFIG" unlock --force
	rf_assert_status 0
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	deploy "$ART" --revision v1
	rf_assert_status 0
}

@test "a lock directory without holder info is cleared by unlock --force" {
	mkdir -p "$RF_APP/.relflip/lock"
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 5
	rf_assert_stderr_has "holds no holder info"
	run --separate-stderr relflip -c "$RF_CONFIG" unlock --force
	rf_assert_status 0
	deploy "$ART" --revision v1
	rf_assert_status 0
}

@test "records that disagree with current (a run killed after its switch) are repaired by the next deploy" {
	deployed v1
	deployed v2
	# As a deploy of v1 killed between its switch and its record leaves it.
	ln -sfn releases/v1 "$RF_APP/current.tmp"
	mv -T "$RF_APP/current.tmp" "$RF_APP/current"
	[[ $(live_records) == v2 ]]
	run --separate-stderr relflip -c "$RF_CONFIG" releases
	rf_assert_status 0
	rf_assert_stderr_has "disagree"
	deployed v3
	rf_assert_stderr_has "repaired"
	[[ $(live_records) == v3 ]] || rf_fail "live records: $(live_records)"
	rf_assert_record v1 good
	rf_assert_record v2 good
}

# marker_running MARKER: a process with MARKER in its command line runs.
marker_running() {
	pgrep -f "$1" >/dev/null
}

marker_gone() {
	! pgrep -f "$1" >/dev/null
}

@test "kill -9 of relflip during a hook leaves nothing running on the server; after unlock the same deploy succeeds" {
	local marker=rf-hook-$$-$BATS_TEST_NUMBER pid

	rf_config "[hooks]
install = sleep 40 # $marker"
	ART=$(rf_artifact v1)
	"$RF_BIN" -c "$RF_CONFIG" deploy "$ART" --revision v1 >"$RF_TMP/bg.out" 2>&1 3>&- &
	pid=$!
	rf_track proc "$pid" relflip-bg
	rf_poll 20 marker_running "$marker" || rf_fail "the hook never started" "$(cat "$RF_TMP/bg.out")"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	rf_poll 10 marker_gone "$marker" || rf_fail "the hook outlived relflip:" "$(pgrep -af "$marker")"
	rf_assert_not_exists "$RF_APP/current"
	run --separate-stderr relflip -c "$RF_CONFIG" unlock
	rf_assert_status 0
	rf_config "[hooks]
install = true"
	deploy "$ART" --revision v1
	rf_assert_status 0
	rf_assert_current v1
}

@test "unlock refuses while the holder's step still runs; --force ends it" {
	local marker=rf-busy-$$-$BATS_TEST_NUMBER pid

	rf_config "[deploy]
lock_ttl = 1s
hook_timeout = 120

[hooks]
install = sleep 60 # $marker"
	ART=$(rf_artifact v1)
	"$RF_BIN" -c "$RF_CONFIG" deploy "$ART" --revision v1 >"$RF_TMP/bg.out" 2>&1 3>&- &
	pid=$!
	rf_track proc "$pid" relflip-bg
	rf_poll 20 marker_running "$marker" || rf_fail "the hook never started" "$(cat "$RF_TMP/bg.out")"
	rf_sleep 1.2 # past lock_ttl: stale by age, busy by fact
	run --separate-stderr env GITHUB_ACTOR=someone-else "$RF_BIN" -c "$RF_CONFIG" unlock
	rf_assert_status 5
	rf_assert_stderr_has "still runs on the server"
	marker_running "$marker" || rf_fail "unlock without --force ended the hook"
	run --separate-stderr env GITHUB_ACTOR=someone-else "$RF_BIN" -c "$RF_CONFIG" unlock --force
	rf_assert_status 0
	rf_poll 10 marker_gone "$marker" || rf_fail "--force did not end the hook"
	wait "$pid" 2>/dev/null || true
	rf_assert_not_exists "$RF_APP/current"
}

@test "check and deploy refuse a current outside releases/, exit 6" {
	mkdir -p "$RF_APP/releases" "$RF_TMP/handmade"
	ln -s "$RF_TMP/handmade" "$RF_APP/current"
	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 6
	rf_assert_stderr_has "outside releases/"
	ART=$(rf_artifact v1)
	deploy "$ART" --revision v1
	rf_assert_status 6
	rf_assert_stderr_has "outside"
	[[ $(readlink "$RF_APP/current") == "$RF_TMP/handmade" ]]
}
