# shellcheck shell=bash
# Helpers for tests/e2e/deploy.bats: artifacts (good and hostile), a server
# whose app path sits on a small tmpfs, the sample app wired as a service,
# and assertions on what a deploy leaves on the server (release records,
# the deploy log). Load after lib/sshd:
#
#	load lib/sshd
#	load lib/deploy

# rf_src DIR [NAME=CONTENT]...: a small app tree in DIR (index.html, plus
# the files given), for rf_pack.
rf_src() {
	local dir=$1 kv

	shift
	mkdir -p "$dir"
	printf '<h1>hello</h1>\n' >"$dir/index.html"
	for kv in "$@"; do
		mkdir -p "$(dirname "$dir/${kv%%=*}")"
		printf '%s\n' "${kv#*=}" >"$dir/${kv%%=*}"
	done
}

# rf_random_file FILE BYTES: FILE (and its directory) with BYTES random
# bytes: data that does not compress.
rf_random_file() {
	mkdir -p "$(dirname "$1")"
	head -c "$2" /dev/urandom >"$1"
}

# rf_artifact ID [NAME=CONTENT]...: pack a release tarball for ID with
# `relflip pack`, from a fresh tree; prints its path
# ($RF_TMP/art/ID.tar.gz, or ID-2.tar.gz... when that exists).
rf_artifact() {
	local id=$1 src out n=1

	shift
	mkdir -p "$RF_TMP/art"
	out=$RF_TMP/art/$id.tar.gz
	while [[ -e $out ]]; do
		n=$((n + 1))
		out=$RF_TMP/art/$id-$n.tar.gz
	done
	src=$RF_TMP/art/src-${out##*/}
	rf_src "$src" "$@"
	"$RF_BIN" pack "$src" -o "$out" --revision "$id" >/dev/null 2>>"$RF_TMP/pack.log" 3>&- || {
		rf_log "relflip pack $src failed (see $RF_TMP/pack.log)"
		return 1
	}
	printf '%s\n' "$out"
}

# rf_hostile_tar KIND FILE: write a tarball with one hostile member (and a
# harmless index.html first) with python's tarfile. KIND is one of
# absolute, dotdot, symlink-out, hardlink-out, device, fifo, setuid.
rf_hostile_tar() {
	"$RF_PYTHON" - "$1" "$2" <<'EOF'
import io, sys, tarfile

kind, out = sys.argv[1], sys.argv[2]


def reg(name, data=b"x\n", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 315532800
    return ti, io.BytesIO(data)


with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as t:
    t.addfile(*reg("index.html", b"<h1>hello</h1>\n"))
    if kind == "absolute":
        t.addfile(*reg("/tmp/relflip-e2e-absolute"))
    elif kind == "dotdot":
        t.addfile(*reg("lib/../../escaped"))
    elif kind in ("symlink-out", "hardlink-out", "device", "fifo"):
        ti = tarfile.TarInfo("evil")
        ti.mtime = 315532800
        if kind == "symlink-out":
            ti.type, ti.linkname = tarfile.SYMTYPE, "../../../../etc"
        elif kind == "hardlink-out":
            ti.type, ti.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "device":
            ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
        else:
            ti.type, ti.mode = tarfile.FIFOTYPE, 0o644
        t.addfile(ti)
    elif kind == "setuid":
        t.addfile(*reg("bin/su", b"#!/bin/sh\n", 0o4755))
    else:
        sys.exit("unknown kind " + kind)
EOF
}

# rf_sha256 FILE: the file's SHA-256, hex.
rf_sha256() {
	local sum

	read -r sum _ < <(sha256sum "$1")
	printf '%s\n' "$sum"
}

# rf_health_ini PORT [MORE_HEALTH_LINES]: [service "web"] restarting the
# sample app on PORT for the app path, and [health] on its URL, with short
# intervals so that a failing check gives up within a few seconds.
rf_health_ini() {
	local port=$1

	cat <<EOF
[service "web"]
restart = $RF_LIB/app-ctl restart "\$RELFLIP_APP_PATH" $port

[health]
url = $(rf_app_url "$port")
interval = 0.1
retries = 5
timeout = 2
deadline = 10${2:+
$2}
EOF
}

# rf_record_field ID FIELD [APP]: one field of APP/.relflip/releases/ID.json,
# parsed as JSON (Python's repr for non-strings, e.g. True).
rf_record_field() {
	rf_py '
import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
if text.count("\n") > 1 or not text.strip():
    sys.exit("%s is not one line: %r" % (sys.argv[1], text))
v = json.loads(text)[sys.argv[2]]
print(v if isinstance(v, str) else repr(v))
' "${3:-$RF_APP}/.relflip/releases/$1.json" "$2"
}

# rf_assert_record ID STATUS [APP]: the release record of ID exists, is one
# JSON object with that id, and has STATUS.
rf_assert_record() {
	local id=$1 want=$2 app=${3:-$RF_APP} got rid

	got=$(rf_record_field "$id" status "$app") || {
		rf_fail "no readable record for $id in $app/.relflip/releases:" \
			"$(ls -la "$app/.relflip/releases" 2>&1)"
		return 1
	}
	rid=$(rf_record_field "$id" id "$app")
	[[ $rid == "$id" ]] || {
		rf_fail "record $id.json has id '$rid'"
		return 1
	}
	[[ $got == "$want" ]] || rf_fail "release $id: expected status $want, got $got:" \
		"$(cat "$app/.relflip/releases/$id.json")"
}

# rf_log_count [APP]: lines in APP/.relflip/log.jsonl (0 when missing).
rf_log_count() {
	local f=${1:-$RF_APP}/.relflip/log.jsonl

	if [[ -f $f ]]; then
		wc -l <"$f"
	else
		echo 0
	fi
}

# rf_assert_log N [PYTHON_EXPR [APP]]: the deploy log has exactly N lines,
# each a JSON object, and EXPR (over `last`, the last line's object, and
# `log`, all of them) holds.
rf_assert_log() {
	local n=$1 expr=${2:-True} app=${3:-$RF_APP}

	rf_py '
import json, os, sys
path, n, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path).read().splitlines() if os.path.exists(path) else []
if len(lines) != n:
    sys.exit("%s: expected %d lines, got %d:\n%s" % (path, n, len(lines), "\n".join(lines)))
log = [json.loads(l) for l in lines]
last = log[-1] if log else None
if not eval("(" + expr + ")"):
    sys.exit("%s: %s does not hold:\n%s" % (path, expr, "\n".join(lines)))
' "$app/.relflip/log.jsonl" "$n" "$expr"
}

# rf_assert_current ID [APP]: current is valid and points at releases/ID.
rf_assert_current() {
	local app=${2:-$RF_APP}

	rf_assert_current_valid "$app" || return 1
	[[ $(readlink "$app/current") == "releases/$1" ]] ||
		rf_fail "expected $app/current -> releases/$1, got -> $(readlink "$app/current")"
}

# rf_assert_release_intact ID [APP]: releases/ID is a directory with its
# REVISION (holding ID) and index.html.
rf_assert_release_intact() {
	local app=${2:-$RF_APP} rev

	[[ -d $app/releases/$1 ]] || {
		rf_fail "$app/releases/$1 is missing:" "$(ls -la "$app/releases" 2>&1)"
		return 1
	}
	[[ -f $app/releases/$1/index.html ]] || {
		rf_fail "$app/releases/$1/index.html is missing"
		return 1
	}
	read -r rev <"$app/releases/$1/REVISION" || true
	[[ $rev == "$1" ]] || rf_fail "$app/releases/$1/REVISION holds '$rev'"
}

# rf_app_body PORT: what the sample app on PORT answers (status ignored).
rf_app_body() {
	curl -s --max-time 5 "$(rf_app_url "$1")"
}

# rf_app_serves PORT TEXT: the app on PORT answers with TEXT in its body.
rf_app_serves() {
	[[ $(rf_app_body "$1") == *"$2"* ]]
}

# rf_sshd_start_tmpfs SIZE DIR: like rf_sshd_start, but sshd runs in its own
# mount namespace where a tmpfs of SIZE (e.g. 2m) is mounted on DIR (made
# here, empty from the test's side). Only sshd and what it runs see the
# tmpfs: look at it with rf_ssh. The namespace, and the tmpfs, go away with
# sshd (stopped by PID in teardown).
rf_sshd_start_tmpfs() {
	local size=$1 mnt=$2 name=sshd-tmpfs dir log port pid try

	dir=$RF_TMP/$name
	log=$RF_TMP/$name.log
	mkdir -p "$dir" "$mnt" /run/sshd
	chmod 0755 /run/sshd
	rf_client_key
	rf_keygen "$dir/host_ed25519_key"
	for try in 1 2 3; do
		port=$(rf_free_port 127.0.0.1)
		rf_sshd_write_config "$dir" 127.0.0.1 "$port"
		if ! "$RF_SSHD" -t -f "$dir/sshd_config" 2>>"$log"; then
			rf_log "sshd -t rejected $dir/sshd_config (see $log)"
			return 1
		fi
		rf_known_hosts_add 127.0.0.1 "$port" "$dir/host_ed25519_key.pub"
		# unshare and sh exec: $! is sshd's PID.
		# shellcheck disable=SC2016 # $1-$4 are sh's
		unshare --mount --propagation private \
			sh -c 'mount -t tmpfs -o "size=$1" tmpfs "$2" && exec "$3" -D -e -f "$4"' \
			rf-tmpfs "$size" "$mnt" "$RF_SSHD" "$dir/sshd_config" \
			</dev/null >>"$log" 2>&1 3>&- &
		pid=$!
		rf_track sshd "$pid" "$name"
		if rf_poll 10 rf_sshd_up "$pid" "$port" 127.0.0.1 && rf_pid_alive "$pid"; then
			break
		fi
		rf_kill_pid "$pid"
		rf_log "sshd on port $port (tmpfs) did not come up (try $try; see $log)"
		pid=
	done
	[[ -n $pid ]] || return 1
	RF_PORT=$port
	RF_SSHD_PID=$pid
	RF_SSHD_DIR=$dir
	RF_HOST_KEY=$dir/host_ed25519_key.pub
	export RF_PORT RF_SSHD_PID RF_SSHD_DIR RF_HOST_KEY
}

# rf_bg_relflip NAME ARGS...: start $RF_BIN ARGS in the background with
# SIGINT at its default (bash makes background jobs ignore it), stdout in
# $RF_TMP/NAME.out and stderr in $RF_TMP/NAME.err; tracked for teardown.
# Sets RF_BG_PID. Collect its exit status with rf_bg_wait.
rf_bg_relflip() {
	local name=$1

	shift
	env --default-signal=INT,TERM "$RF_BIN" "$@" \
		</dev/null >"$RF_TMP/$name.out" 2>"$RF_TMP/$name.err" 3>&- &
	RF_BG_PID=$!
	rf_track proc "$RF_BG_PID" "relflip-$name"
}

# rf_bg_wait [SECONDS]: wait, bounded (default 60 s), for the relflip that
# rf_bg_relflip started; sets `status` to its exit status, `stderr` and
# `output` to what it printed, and appends it to $RF_TMP/relflip.log.
rf_bg_wait() {
	local name limit=${1:-60}

	name=$(awk -v p="$RF_BG_PID" '$1 == "proc" && $2 == p { print $3 }' "$RF_TMP/.procs")
	name=${name#relflip-}
	if ! rf_poll "$limit" rf_pid_dead "$RF_BG_PID"; then
		rf_log "relflip $RF_BG_PID still running after $limit s"
		kill -KILL "$RF_BG_PID" 2>/dev/null || true
	fi
	status=0
	wait "$RF_BG_PID" || status=$?
	output=$(cat "$RF_TMP/$name.out")
	stderr=$(cat "$RF_TMP/$name.err")
	{
		printf '$ relflip (background %s)\n--- stdout\n%s\n--- stderr\n%s\n--- exit %d\n\n' \
			"$name" "$output" "$stderr" "$status"
	} >>"$RF_TMP/relflip.log"
}

# rf_file_has FILE TEXT: FILE contains TEXT (for polling a log).
rf_file_has() {
	grep -qF -- "$2" "$1" 2>/dev/null
}
