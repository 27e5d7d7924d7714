# shellcheck shell=bash
# Helpers for tests/e2e/ops.bats and ops-prune.bats (rollback, prune,
# releases, unlock): a server holding five real deploys, made once per file
# and copied for each test, artifacts, hand-made records, locks and
# Capistrano layouts, and assertions on records and the deploy log. Load
# after lib/sshd:
#
#	load lib/sshd
#	load lib/ops
#
# shellcheck disable=SC2030,SC2031 # ops_build_golden sets RF_* in its own subshell on purpose
# shellcheck disable=SC2120 # ops_log_count APP is used from ops.bats

# The releases every test starts from, oldest first.
OPS_IDS=(v1 v2 v3 v4 v5)

# ops_pack ID [DIR]: a release tarball for ID from a small tree (index.html
# naming ID), built with `relflip pack`; prints its path.
ops_pack() {
	local id=$1 dir=${2:-$RF_TMP/art} src out

	mkdir -p "$dir"
	src=$dir/src-$id
	out=$dir/$id.tar.gz
	mkdir -p "$src"
	printf '<h1>%s</h1>\n' "$id" >"$src/index.html"
	"$RF_BIN" pack "$src" -o "$out" --revision "$id" >/dev/null 2>>"$RF_TMP/pack.log" 3>&- || {
		rf_log "relflip pack $src failed (see $RF_TMP/pack.log)"
		return 1
	}
	printf '%s\n' "$out"
}

# ops_service_ini PORT [EXPECT_REVISION]: the sample app on PORT as the
# "web" service of $RF_APP, and a fast health check on it.
ops_service_ini() {
	cat <<EOF
[service "web"]
restart = $RF_LIB/app-ctl restart $RF_APP $1

[health]
url = $(rf_app_url "$1")
expect_revision = ${2:-yes}
interval = 0.1
retries = 20
deadline = 5
EOF
}

# ops_config_file FILE [EXTRA_INI]: another config for the same server
# (rf_config --file, keeping RF_CONFIG as it was): the service and health
# of $OPS_PORT plus EXTRA_INI.
ops_config_file() {
	local keep=$RF_CONFIG

	rf_config --file "$1" "$(ops_service_ini "$OPS_PORT")${2:+

$2}"
	RF_CONFIG=$keep
	export RF_CONFIG
}

# ops_next_second: wait (bounded) until the wall clock's second changes,
# so that the next deploy's record times are later than the last one's.
ops_next_second() {
	local start

	start=$(date +%s)
	rf_poll 2 ops_second_after "$start"
}

ops_second_after() {
	(($(date +%s) > $1))
}

# ops_build_golden DIR: deploy v1..v5 for real (sample app, health check)
# through the file's sshd (or a throwaway one), each in a later second than the one before, and
# copy the app path to DIR. Runs in a subshell: nothing it starts or
# exports outlives it.
ops_build_golden() (
	local dest=$1 id art

	RF_TMP=$(dirname "$dest")/golden-build
	mkdir -p "$RF_TMP/srv"
	RF_APP=$RF_TMP/srv/app
	RF_KNOWN_HOSTS=$RF_TMP/known_hosts
	: >"$RF_KNOWN_HOSTS"
	export RF_TMP RF_APP RF_KNOWN_HOSTS
	trap rf_cleanup EXIT
	rf_sshd_any || exit 1
	OPS_PORT=$(rf_free_port)
	rf_app_start "$OPS_PORT" || exit 1
	rf_config "$(ops_service_ini "$OPS_PORT")"
	for id in "${OPS_IDS[@]}"; do
		art=$(ops_pack "$id") || exit 1
		[[ $id == v1 ]] || ops_next_second || exit 1
		if ! "$RF_BIN" -c "$RF_CONFIG" deploy "$art" --revision "$id" \
			>>"$RF_TMP/deploy.log" 2>&1 3>&-; then
			rf_log "golden: deploy $id failed:"
			cat "$RF_TMP/deploy.log" >&2
			exit 1
		fi
	done
	rf_cleanup
	cp -a "$RF_APP" "$dest"
)

# ops_server [EXTRA_INI]: this test's sshd (the file's, when it has one), a copy of the golden app path
# (v1..v4 good, v5 live) at $RF_APP, the sample app serving it on
# $OPS_PORT, and RF_CONFIG with the service, the health check and
# EXTRA_INI.
ops_server() {
	rf_sshd_any
	cp -a "$OPS_GOLDEN" "$RF_APP"
	OPS_PORT=$(rf_free_port)
	rf_app_start "$OPS_PORT"
	rf_config "$(ops_service_ini "$OPS_PORT")${1:+

$1}"
	export OPS_PORT
}

# ops_log_count [APP]: lines in APP/.relflip/log.jsonl (0 when missing).
ops_log_count() {
	local f=${1:-$RF_APP}/.relflip/log.jsonl

	if [[ -f $f ]]; then
		wc -l <"$f"
	else
		echo 0
	fi
}

# ops_run ARGS...: `run --separate-stderr relflip -c $RF_CONFIG ARGS`,
# noting the deploy log's length first (for ops_after).
ops_run() {
	OPS_LOG_BEFORE=$(ops_log_count)
	run --separate-stderr relflip -c "$RF_CONFIG" "$@"
}

# ops_after N [COMMAND [EXPR]]: what must hold after every command:
# current is a valid symlink into releases/, no lock is left behind, and
# the log gained exactly N lines since ops_run, each one JSON object with
# "command" == COMMAND; EXPR (Python, over `new`, the new lines' objects)
# holds too.
ops_after() {
	local n=$1 command=${2:-} expr=${3:-True}

	rf_assert_current_valid || return 1
	if [[ -e $RF_APP/.relflip/lock ]]; then
		rf_fail "the lock was left behind:" "$(cat "$RF_APP/.relflip/lock/info" 2>&1)" \
			"$(rf_show_run)"
		return 1
	fi
	ops_assert_log_added "$n" "$command" "$expr"
}

# ops_assert_log_added N [COMMAND [EXPR [APP [BEFORE]]]]: the log of APP
# gained exactly N lines since BEFORE (default $OPS_LOG_BEFORE), each with
# "command" == COMMAND and a "host"; EXPR over `new` holds.
ops_assert_log_added() {
	local n=$1 command=${2:-} expr=${3:-True} app=${4:-$RF_APP}
	local before=${5:-$OPS_LOG_BEFORE}

	rf_py '
import json, os, sys
path, before, n, command, expr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = open(path).read().splitlines() if os.path.exists(path) else []
added = lines[before:]
if len(lines) < before or len(added) != n:
    sys.exit("%s: expected %d new lines (had %d), got %d:\n%s"
             % (path, n, before, len(lines) - before, "\n".join(added)))
new = []
for l in added:
    try:
        new.append(json.loads(l))
    except ValueError as e:
        sys.exit("%s: not JSON (%s): %r" % (path, e, l))
for o in new:
    if command and o.get("command") != command:
        sys.exit("%s: expected \"command\": %r in %r" % (path, command, o))
    if not o.get("host"):
        sys.exit("%s: no host in %r" % (path, o))
if not eval("(" + expr + ")"):
    sys.exit("%s: %s does not hold for the new lines:\n%s" % (path, expr, "\n".join(added)))
' "$app/.relflip/log.jsonl" "$before" "$n" "$command" "$expr" || {
		rf_fail "$(rf_show_run)"
		return 1
	}
}

# ops_record_field ID FIELD [APP]: one field of the record of ID (Python's
# repr for what is not a string: True, None, 141).
ops_record_field() {
	rf_py '
import json, sys
with open(sys.argv[1]) as f:
    v = json.loads(f.read())[sys.argv[2]]
print(v if isinstance(v, str) else repr(v))
' "${3:-$RF_APP}/.relflip/releases/$1.json" "$2"
}

# ops_assert_record ID STATUS [APP]: the record of ID has STATUS.
ops_assert_record() {
	local got

	got=$(ops_record_field "$1" status "${3:-}") || {
		rf_fail "no readable record for $1:" "$(ls -la "${3:-$RF_APP}/.relflip/releases" 2>&1)"
		return 1
	}
	[[ $got == "$2" ]] || rf_fail "release $1: expected status $2, got $got:" \
		"$(cat "${3:-$RF_APP}/.relflip/releases/$1.json")"
}

# ops_assert_current ID [APP]: current is valid and points at releases/ID.
ops_assert_current() {
	local app=${2:-$RF_APP}

	rf_assert_current_valid "$app" || return 1
	[[ $(readlink "$app/current") == "releases/$1" ]] ||
		rf_fail "expected $app/current -> releases/$1, got -> $(readlink "$app/current")"
}

# ops_assert_releases NAME...: releases/ holds exactly these entries (any
# order), nothing more, nothing less.
ops_assert_releases() {
	local want got

	want=$(printf '%s\n' "$@" | LC_ALL=C sort)
	got=$(cd "$RF_APP/releases" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort)
	[[ $want == "$got" ]] || rf_fail "releases/ holds:" "$got" "expected:" "$want" "$(rf_show_run)"
}

# ops_app_serves TEXT: the sample app answers with TEXT in its body.
ops_app_serves() {
	local body

	body=$(curl -s --max-time 5 "$(rf_app_url "$OPS_PORT")")
	[[ $body == *"$1"* ]] || rf_fail "the app answers '$body', expected '$1'"
}

# ops_write_record ID STATUS [APP]: a record for ID written by hand, in the
# format of the real ones (v5's, copied), created now, not yet activated;
# and releases/ID with REVISION when there is no such directory.
ops_write_record() {
	local id=$1 status=$2 app=${3:-$RF_APP}

	[[ -d $app/releases/$id ]] || rf_make_release "$id" "$app"
	rf_py '
import json, sys, time
src, dst, rid, status = sys.argv[1:5]
with open(src) as f:
    rec = json.loads(f.read())
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
rec.update(id=rid, status=status, created=now, activated=None, deactivated=None,
           migrated=False, reason="")
with open(dst, "w") as f:
    f.write(json.dumps(rec) + "\n")
' "$app/.relflip/releases/v5.json" "$app/.relflip/releases/$id.json" "$id" "$status"
}

# ops_old_releases N [APP]: N old good releases, o0001..oN, made by hand:
# a directory with REVISION each and a record in the format of v5's, all
# deployed (one a second) a day before the others.
ops_old_releases() {
	"$RF_PYTHON" - "${2:-$RF_APP}" "$1" <<'EOF'
import json, os, sys, time
app, n = sys.argv[1], int(sys.argv[2])
with open(os.path.join(app, ".relflip/releases/v5.json")) as f:
    tmpl = json.loads(f.read())
base = int(time.time()) - 86400 - n
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
for i in range(1, n + 1):
    rid = "o%04d" % i
    os.mkdir(os.path.join(app, "releases", rid))
    with open(os.path.join(app, "releases", rid, "REVISION"), "w") as f:
        f.write(rid + "\n")
    rec = dict(tmpl)
    rec.update(id=rid, status="good", created=iso(base + i), activated=iso(base + i),
               deactivated=iso(base + i + 1), migrated=False, reason="")
    with open(os.path.join(app, ".relflip/releases", rid + ".json"), "w") as f:
        f.write(json.dumps(rec) + "\n")
EOF
}

# ops_lock_by USER PID [AGE]: a deploy lock as another runner's relflip
# leaves it (the info file's fields as relflip writes them), renewed AGE
# ago (a touch -d date, e.g. "2 hours ago"; default now).
ops_lock_by() {
	local user=$1 pid=$2 age=${3:-} dir=$RF_APP/.relflip/lock since

	since=$(date +%s)
	[[ -z $age ]] || since=$(date -d "$age" +%s)
	mkdir -p "$dir"
	cat >"$dir/info" <<EOF
user=$user
runner=${user#*@}
pid=$pid
run_url=https://ci.example.com/runs/77
revision=v9
command=deploy
token=0123456789abcdef0123456789abcdef
since=$since
EOF
	[[ -z $age ]] || touch -d "$age" "$dir/info" "$dir"
}

# ops_me: user@host as relflip names this runner in a lock.
ops_me() {
	local user=${GITHUB_ACTOR:-${USER:-}}

	[[ -n $user ]] || user=$(id -un)
	printf '%s@%s\n' "$user" "$(hostname)"
}

# ops_capistrano [APP]: a server as Capistrano leaves it: two releases
# with REVISION files (git SHAs, dated a day apart), current -> the newer
# one, shared/, and no .relflip/.
OPS_CAP_OLD=20240101120000
OPS_CAP_NEW=20240102120000
OPS_CAP_OLD_SHA=0a1b2c3d4e5f60718293a4b5c6d7e8f901234567
OPS_CAP_NEW_SHA=9f8e7d6c5b4a39281706f5e4d3c2b1a098765432
ops_capistrano() {
	local app=${1:-$RF_APP}

	mkdir -p "$app/releases/$OPS_CAP_OLD/public" "$app/releases/$OPS_CAP_NEW/public" \
		"$app/shared/log"
	printf '%s\n' "$OPS_CAP_OLD_SHA" >"$app/releases/$OPS_CAP_OLD/REVISION"
	printf '%s\n' "$OPS_CAP_NEW_SHA" >"$app/releases/$OPS_CAP_NEW/REVISION"
	printf 'old\n' >"$app/releases/$OPS_CAP_OLD/public/index.html"
	printf 'new\n' >"$app/releases/$OPS_CAP_NEW/public/index.html"
	touch -d '2024-01-01 12:00:00 UTC' "$app/releases/$OPS_CAP_OLD/REVISION" \
		"$app/releases/$OPS_CAP_OLD"
	touch -d '2024-01-02 12:00:00 UTC' "$app/releases/$OPS_CAP_NEW/REVISION" \
		"$app/releases/$OPS_CAP_NEW"
	ln -s "releases/$OPS_CAP_NEW" "$app/current"
}

# ops_bg NAME ARGS...: relflip ARGS in the background, stdout and stderr in
# $RF_TMP/NAME.out and .err, tracked for teardown; sets OPS_BG_PID.
ops_bg() {
	local name=$1

	shift
	"$RF_BIN" "$@" </dev/null >"$RF_TMP/$name.out" 2>"$RF_TMP/$name.err" 3>&- &
	OPS_BG_PID=$!
	rf_track proc "$OPS_BG_PID" "relflip-$name"
}

# ops_events EXPR: every line of the last run's stdout is a JSON object,
# and rf_json_query EXPR holds over them.
ops_events() {
	rf_assert_json_lines && rf_json_query "($1)" >/dev/null
}
