#!/usr/bin/env bash
# relflip's benchmark (`make bench`), on this machine alone, against
# throwaway sshds on loopback started like the end-to-end harness's
# (tests/e2e/lib/hosts.bash: SetEnv SHLVL=1, LogLevel VERBOSE), five parts:
#
# a. A big artifact: a plain (uncompressed) tar holding one file of random
#    data (incompressible: gzip would only add CPU on both sides), deployed
#    by relflip to a fresh release id each run, against the bare OpenSSH
#    equivalent: sha256sum here, `sftp -b` put, then ONE ssh that checks the
#    SHA-256, unpacks into a temporary directory, renames it into releases/
#    and flips current with ln -s + mv -T. The bare script runs twice a
#    round: with OpenSSH's defaults ("bare") and with the key exchange that
#    relflip's libssh2 1.10 negotiates, curve25519-sha256 ("bare-c25519"):
#    OpenSSH 9.2's default sntrup761x25519-sha512 costs about 0.2 s per
#    connection here, and the bare script opens two. An `sftp put -f` alone
#    (it fsyncs; relflip's upload does not, since the server checks the
#    upload's SHA-256 before unpacking it) shows what a flush costs
#    transfer. The four alternate within the same run, the order rotating
#    every round; medians. relflip runs under /usr/bin/time -v for its peak
#    RSS. Then a bigger artifact once, to show that the RSS does not grow
#    with the size.
# b. The common case: a second deploy of a small web app (about 2,000 files,
#    5 MB, packed with relflip pack) with a migrate hook, a restart of the
#    sample app (tests/e2e/lib/app-ctl restart) and a health check with
#    expect_revision: median wall time, and the SSH connections and remote
#    commands each deploy opens, counted in the sshd log. The same work by
#    the bare script (sftp put + one ssh) alternates with it.
# c. scripts/bench-capistrano.sh: relflip against Capistrano 3 and the bare
#    OpenSSH script on a Flask + gunicorn app in git (2,012 files, 4.6 MB
#    tar.gz, one changed file per deploy, migrate, HUP, health check with
#    the revision): deploy and rollback, on loopback and through netem-proxy
#    (25 ms each way, 100 Mbit/s), with the exec channels, SFTP requests and
#    bytes each way of every run (issue 11, parts 2 and 3).
# d. scripts/bench-upload.sh: relflip's upload stage against sftp put for
#    1, 4, 16 and 64 MiB, loopback and WAN, in MB/s (issue 11, part 4).
# e. scripts/bench-fleet.sh --sizes "1 8 32 64" --parallel 64: wall time and
#    relflip's peak RSS for fleets of network-namespace hosts (issue 11,
#    part 5), under flock /tmp/relflip-netns.lock like the e2e tests.
# Each part's header says how it measures; see the scripts for details.
#
# Prints tables and the exact commands, and writes them, with the machine's
# load while the bench ran (sampled every 5 s), to build/bench-results.txt.
# Everything started is stopped by PID and every file made (under
# ${TMPDIR:-/tmp}) is removed at the end.
#
# How long: on this 2-core machine, shared with other engineers' tests at a
# load average of 8-10, a was about 4 min at 128 MiB (now 64 MiB by
# default), b 1.5 min, c 9-12 min, d 5-6 min with 5 runs (now 3), e 8 min
# with 3 timed runs per size (now 1), plus any wait for the netns lock:
# expect about 20-25 minutes there, and well under 15 on an idle machine.
# To shorten it: BENCH_PARTS (c alone is the Capistrano comparison),
# BENCH_RUNS=3, BENCH_WAN=0, BENCH_CURVE_WAN=0, BENCH_BIG_MIB=0.
#
# Knobs: BENCH_PARTS ("a b c d e": the parts to run, e.g. BENCH_PARTS=c),
# BENCH_RUNS (5, at least 3; a, b and c), BENCH_MIB (64), BENCH_BIG_MIB
# (256; 0 skips a'), BENCH_APP_FILES (2000), BENCH_APP_KB (5000), BENCH_WAN
# (1; 0: c on loopback only), BENCH_CURVE_RUNS (3, at least 3),
# BENCH_CURVE_WAN (1; 0: d on loopback only), BENCH_CURVE_MIB ("1 4 16 64"),
# BENCH_CAP (1; 0: no Capistrano rows), BENCH_INSTALL (1: apt-get install -y
# capistrano and tcpdump when missing; 0: skip the rows that need them,
# saying so), BENCH_WAN_DELAY_MS (25), BENCH_WAN_MBIT (100),
# BENCH_FLEET_SIZES ("1 8 32 64"), BENCH_FLEET_RUNS (1), BENCH_FLEET_LOCK_WAIT
# (300: seconds to wait for the netns lock before skipping e), BENCH_KEEP (1:
# keep the temporary directories for a look).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RELFLIP=${RELFLIP:-$ROOT/relflip}
RESULTS=$ROOT/build/bench-results.txt

PARTS=${BENCH_PARTS:-a b c d e}
RUNS=${BENCH_RUNS:-5}
MIB=${BENCH_MIB:-64}
BIG_MIB=${BENCH_BIG_MIB:-256}
APP_FILES=${BENCH_APP_FILES:-2000}
APP_KB=${BENCH_APP_KB:-5000}
FLEET_SIZES=${BENCH_FLEET_SIZES:-1 8 32 64}
FLEET_RUNS=${BENCH_FLEET_RUNS:-1}
FLEET_LOCK_WAIT=${BENCH_FLEET_LOCK_WAIT:-300}
TOOLS=(relflip bare bare-c25519)
# Set by part b, shown by report_ab.
B_FILES='' B_BYTES='' B_ART_BYTES=''

BENCH_NAME=bench
# shellcheck source=tests/e2e/lib/hosts.bash
source "$ROOT/tests/e2e/lib/hosts.bash"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

# want PART: is it in BENCH_PARTS?
want() {
	[[ " $PARTS " == *" $1 "* ]]
}

bench_checks BENCH_RUNS
for tool in /usr/bin/time sftp ssh sha256sum tar curl; do
	command -v "$tool" >/dev/null || {
		echo "bench: needs $tool (packages time, openssh-client, coreutils, tar, curl)" >&2
		exit 2
	}
done
for part in $PARTS; do
	[[ $part == [abcde] ]] || { echo "bench: BENCH_PARTS: parts a b c d e, not '$part'" >&2; exit 2; }
done

bench_tmp relflip-bench # DATA: case <tab> tool.metric <tab> run <tab> value
mkdir -p "$RF_TMP/srv" "$RF_TMP/runs" "$RF_TMP/art" "$ROOT/build"
bench_t0=$(rf_now_ms)
LOAD_START=$(load_now)
CPU_START=$(cpu_busy)

# The machine's load while the bench runs: /proc/loadavg every 5 s.
while :; do
	cat /proc/loadavg
	sleep 5
done >"$RF_TMP/loadavg" 2>/dev/null </dev/null 3>&- &
rf_track proc $! load-sampler

# sshd_count FROM PATTERN: lines of the sshd log matching PATTERN written
# after line FROM.
sshd_count() {
	log_count "$SSHD_LOG" "$1" "$2"
}

# Record the connections, exec channels and sftp sessions since line FROM.
record_sessions() {
	local case=$1 tool=$2 run=$3 from=$4

	record "$case" "$tool.conns" "$run" "$(sshd_count "$from" 'Accepted publickey for')"
	record "$case" "$tool.cmds" "$run" "$(sshd_count "$from" 'Starting session: command for')"
	record "$case" "$tool.sftp" "$run" "$(sshd_count "$from" "Starting session: subsystem 'sftp' for")"
}

wall_of() { # CASE TOOL RUN
	awk -F'\t' -v c="$1" -v m="$2.wall" -v r="$3" '$1 == c && $2 == m && $3 == r { print $4 }' "$DATA"
}

# ---------------------------------------------------------------------------
say "machine: $(nproc) CPUs, load average $LOAD_START; $(ssh -V 2>&1); libssh2 $(dpkg-query -W -f='${Version}' libssh2-1 2>/dev/null || echo '?'); $("$RELFLIP" --version 2>&1 | head -n 1)"
if awk -v l="$LOAD_START" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	note "warning: the machine is busy (load $LOAD_START on $(nproc) CPUs): expect noisy figures"
fi

# ssh_opts TOOL: OpenSSH options for that variant of the bare script.
ssh_opts() {
	OPTS=("${RF_SSH_OPTS[@]}")
	if [[ $1 == bare-c25519 ]]; then
		OPTS+=(-o KexAlgorithms=curve25519-sha256)
	fi
}

# ---------------------------------------------------------------------------
# The deployers.

# relflip_deploy CASE RUN CONFIG ARTIFACT ID: one relflip deploy under
# /usr/bin/time -v, its JSON events kept; records wall (process), result
# (the result event's duration_ms), each stage's duration_ms, rss, and
# whether the record stage pruned.
relflip_deploy() {
	local case=$1 run=$2 cfg=$3 art=$4 id=$5 base rc=0 from

	base=$RF_TMP/runs/$case-relflip-$run
	from=$(log_lines "$SSHD_LOG")
	timed /usr/bin/time -v -o "$base.time" "$RELFLIP" -c "$cfg" --json \
		deploy "$art" --revision "$id" >"$base.json" 2>"$base.err" || rc=$?
	if ((rc != 0)); then
		tail -n 20 "$base.err" >&2
		die "relflip deploy $id exited $rc (expected 0); see above"
	fi
	record "$case" relflip.wall "$run" "$LAST_S"
	relflip_metrics "$base.json" "$base.time" >"$base.metrics" || die "relflip deploy $id: no result in $base.json"
	while read -r metric value; do
		record "$case" "relflip.$metric" "$run" "$value"
	done <"$base.metrics"
	LAST_RELFLIP_LOG=("$from" "$(log_lines "$SSHD_LOG")")
	record_sessions "$case" relflip "$run" "$from"
}

# bare_remote APP ID SHA [EXTRA [AFTER]]: the bare script's one remote
# command: check, unpack into a temporary directory, rename into releases/,
# EXTRA in the new release (migrate), flip current, then AFTER (restart and
# health check).
bare_remote() {
	local app=$1 id=$2 sha=$3 extra=${4:-} after=${5:-}

	printf '%s' "set -e; cd '$app'; echo '$sha  .incoming/$id.tar' | sha256sum -c --status; tmp=\$(mktemp -d releases/.tmp-$id.XXXXXX); tar -xf .incoming/$id.tar -C \"\$tmp\"; chmod 755 \"\$tmp\"; mv -T \"\$tmp\" releases/$id; rm -f .incoming/$id.tar; ${extra:+( cd releases/$id && $extra ); }ln -sfn releases/$id .current.tmp && mv -T .current.tmp current${after:+; $after}"
}

# bare_deploy TOOL CASE RUN APP ARTIFACT ID [EXTRA [AFTER]]: sha256sum here,
# sftp put, one ssh. Records wall (the three together), sha, put, ssh.
bare_deploy() {
	local tool=$1 case=$2 run=$3 app=$4 art=$5 id=$6 extra=${7:-} after=${8:-}
	local base t0 t1 sha from

	base=$RF_TMP/runs/$case-$tool-$run
	ssh_opts "$tool"
	from=$(log_lines "$SSHD_LOG")
	t0=${EPOCHREALTIME/./}
	timed sha256sum "$art" >"$base.sha"
	record "$case" "$tool.sha" "$run" "$LAST_S"
	read -r sha _ <"$base.sha"
	printf 'put %s %s/.incoming/%s.tar\n' "$art" "$app" "$id" >"$base.batch"
	timed sftp -q "${OPTS[@]}" -P "$RF_PORT" -b "$base.batch" root@127.0.0.1 \
		>"$base.out" 2>&1 </dev/null || die "$tool: sftp put of $id failed: $(tail -n 5 "$base.out")"
	record "$case" "$tool.put" "$run" "$LAST_S"
	timed ssh "${OPTS[@]}" -p "$RF_PORT" root@127.0.0.1 \
		"$(bare_remote "$app" "$id" "$sha" "$extra" "$after")" \
		>>"$base.out" 2>&1 </dev/null || die "$tool: the ssh step of $id failed: $(tail -n 5 "$base.out")"
	record "$case" "$tool.ssh" "$run" "$LAST_S"
	t1=${EPOCHREALTIME/./}
	record "$case" "$tool.wall" "$run" "$(us_to_s $((t1 - t0)))"
	record_sessions "$case" "$tool" "$run" "$from"
	[[ $(readlink "$app/current") == "releases/$id" ]] || die "$tool: $app/current is not releases/$id"
}

# sftp_noop CASE RUN: an sftp session that transfers nothing, with each
# variant's options: what connecting costs.
sftp_noop() {
	local tool base=$RF_TMP/runs/noop

	echo 'pwd' >"$base.batch"
	for tool in bare bare-c25519; do
		ssh_opts "$tool"
		timed sftp -q "${OPTS[@]}" -P "$RF_PORT" -b "$base.batch" root@127.0.0.1 \
			>/dev/null 2>&1 </dev/null || die "the no-op sftp session failed"
		record "$1" "$tool.noop" "$2" "$LAST_S"
	done
}

# put_fsync CASE RUN ARTIFACT: the upload alone, flushed to disk: `put -f`,
# with the key exchange relflip negotiates (relflip does not fsync: the
# checksum on the server guards the file). Records sftp-fsync.put.
put_fsync() {
	local base=$RF_TMP/runs/$1-sftp-fsync-$2 dest=$RF_TMP/srv/sftp-fsync.tar

	ssh_opts bare-c25519
	printf 'put -f %s %s\n' "$3" "$dest" >"$base.batch"
	timed sftp -q "${OPTS[@]}" -P "$RF_PORT" -b "$base.batch" root@127.0.0.1 \
		>"$base.out" 2>&1 </dev/null || die "sftp put -f failed: $(tail -n 5 "$base.out")"
	record "$1" sftp-fsync.put "$2" "$LAST_S"
	rm -f "$dest"
}

# Outside the measured time: write back what the last deploy wrote.
settle() {
	sync
}

# ---------------------------------------------------------------------------
# a. the big artifact

make_artifact() {
	local mib=$1 dir=$RF_TMP/art/src-$1

	mkdir -p "$dir"
	head -c "${mib}M" /dev/urandom >"$dir/payload.bin"
	tar -cf "$RF_TMP/art/artifact-$mib.tar" -C "$dir" payload.bin
	rm -rf "$dir"
	cat "$RF_TMP/art/artifact-$mib.tar" >/dev/null # into the page cache
	note "$RF_TMP/art/artifact-$mib.tar: $(stat -c %s "$RF_TMP/art/artifact-$mib.tar") bytes"
}

# deploy_a TOOL CASE RUN ARTIFACT ID
deploy_a() {
	if [[ $1 == relflip ]]; then
		relflip_deploy "$2" "$3" "$CFG_A" "$4" "$5"
	elif [[ $1 == sftp-fsync ]]; then
		put_fsync "$2" "$3" "$4"
	else
		bare_deploy "$1" "$2" "$3" "$RF_TMP/srv/$1-a" "$4" "$5"
	fi
}

part_a() {
	say "a. the artifact: a plain tar (no compression) of one ${MIB} MiB file from /dev/urandom"
	make_artifact "$MIB"
	ART=$RF_TMP/art/artifact-$MIB.tar

	APP_A=$RF_TMP/srv/app-a
	for tool in bare bare-c25519; do
		mkdir -p "$RF_TMP/srv/$tool-a/releases" "$RF_TMP/srv/$tool-a/.incoming"
	done
	# No [health]: the bare script checks nothing either (relflip warns).
	# keep_releases high so that no prune runs inside the measured deploys:
	# the bare script prunes nothing.
	rf_config --file "$RF_TMP/a.ini" --path "$APP_A" --host bench "[deploy]
keep_releases = 1000"
	CFG_A=$RF_TMP/a.ini

	TOOLS_A=("${TOOLS[@]}" sftp-fsync)
	say "a. $RUNS rounds of relflip, bare, bare-c25519 and an sftp put -f alone, in an order that rotates each round"
	for ((i = 1; i <= RUNS; i++)); do
		for k in 0 1 2 3; do
			settle
			deploy_a "${TOOLS_A[(i + k) % 4]}" a "$i" "$ART" "a-$i"
		done
		sftp_noop a "$i"
		note "round $i: relflip $(wall_of a relflip "$i") s, bare $(wall_of a bare "$i") s, bare-c25519 $(wall_of a bare-c25519 "$i") s"
	done
	rm -f "$ART"
	# Free the disk: those releases are not needed any more.
	rm -rf "$APP_A/releases" "$RF_TMP"/srv/bare*-a/releases
	mkdir -p "$RF_TMP"/srv/bare{,-c25519}-a/releases

	if ((BIG_MIB > 0)); then
		say "a'. a ${BIG_MIB} MiB artifact, once each"
		make_artifact "$BIG_MIB"
		for tool in "${TOOLS[@]}"; do
			settle
			deploy_a "$tool" big 1 "$RF_TMP/art/artifact-$BIG_MIB.tar" big-1
		done
		note "relflip $(wall_of big relflip 1) s, bare $(wall_of big bare 1) s, bare-c25519 $(wall_of big bare-c25519 1) s"
		rm -f "$RF_TMP/art/artifact-$BIG_MIB.tar"
		rm -rf "$APP_A/releases" "$RF_TMP"/srv/bare*-a/releases
	fi
}

# ---------------------------------------------------------------------------
# b. the common case

declare -A APP_B=() PORT_B=()

# The bare script's migrate (it writes REVISION too, as relflip does), and
# its restart and health check: curl on the server, bounded retries, as
# relflip fetches the URL on the server's side.
bare_b_extra() { # ID
	printf '%s' "echo $1 > REVISION; echo migrate"
}
bare_b_after() { # TOOL ID
	printf '%s' "$RF_LIB/app-ctl restart ${APP_B[$1]} ${PORT_B[$1]}; for i in \$(seq 50); do [ \"\$(curl -fs $(rf_app_url "${PORT_B[$1]}"))\" = 'ok $2' ] && exit 0; sleep 0.1; done; echo unhealthy >&2; exit 1"
}

# deploy_b TOOL CASE RUN ID
deploy_b() {
	if [[ $1 == relflip ]]; then
		relflip_deploy "$2" "$3" "$CFG_B" "$ART_B" "$4"
	else
		bare_deploy "$1" "$2" "$3" "${APP_B[$1]}" "$ART_B" "$4" \
			"$(bare_b_extra "$4")" "$(bare_b_after "$1" "$4")"
	fi
}

part_b() {
	say "b. a small web app: $APP_FILES files, about $APP_KB KB, packed with relflip pack"
	SRC_B=$RF_TMP/art/webapp
	"$RF_PYTHON" - "$SRC_B" "$APP_FILES" "$APP_KB" <<'PY'
import base64, os, random, sys
root, files, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
per = kb * 1000 // files
for n in range(files):
    d = os.path.join(root, "app", "module%02d" % (n // 50))
    os.makedirs(d, exist_ok=True)
    # base64 text of random bytes: gzip keeps about 75% of it, like a mix
    # of code and assets.
    raw = base64.encodebytes(rng.randbytes(per * 3 // 4 + 1))[:per]
    with open(os.path.join(d, "file%04d.py" % n), "wb") as f:
        f.write(raw)
PY
	ART_B=$RF_TMP/art/webapp.tar.gz
	"$RELFLIP" pack "$SRC_B" -o "$ART_B" >"$RF_TMP/pack.out" 2>&1 ||
		die "relflip pack failed: $(cat "$RF_TMP/pack.out")"
	sed 's/^/    /' "$RF_TMP/pack.out"
	B_FILES=$(find "$SRC_B" -type f | wc -l)
	B_BYTES=$(du -sb "$SRC_B" | cut -f1)
	B_ART_BYTES=$(stat -c %s "$ART_B")
	rm -rf "$SRC_B"

	for tool in "${TOOLS[@]}"; do
		APP_B[$tool]=$RF_TMP/srv/$tool-b
		PORT_B[$tool]=$(rf_free_port)
		rf_app_start "${PORT_B[$tool]}" "${APP_B[$tool]}"
		[[ $tool == relflip ]] || mkdir -p "${APP_B[$tool]}/releases" "${APP_B[$tool]}/.incoming"
	done
	rf_config --file "$RF_TMP/b.ini" --path "${APP_B[relflip]}" --host bench "[hooks]
migrate = echo migrate

[service \"web\"]
restart = $RF_LIB/app-ctl restart ${APP_B[relflip]} ${PORT_B[relflip]}

[health]
url = $(rf_app_url "${PORT_B[relflip]}")
expect_status = 200
expect_revision = yes
interval = 0.1
retries = 50"
	CFG_B=$RF_TMP/b.ini

	say "b. first deploys (not measured): they create the layouts"
	for tool in "${TOOLS[@]}"; do
		deploy_b "$tool" bwarm 0 b-0
	done

	say "b. $RUNS second deploys each, the order rotating each round"
	for ((i = 1; i <= RUNS; i++)); do
		for k in 0 1 2; do
			settle
			deploy_b "${TOOLS[(i + k) % 3]}" b "$i" "b-$i"
		done
		note "round $i: relflip $(wall_of b relflip "$i") s, bare $(wall_of b bare "$i") s, bare-c25519 $(wall_of b bare-c25519 "$i") s"
	done
	for tool in "${TOOLS[@]}"; do
		body=$(curl -s --max-time 5 "$(rf_app_url "${PORT_B[$tool]}")" || true)
		[[ $body == "ok b-$RUNS" ]] || die "$tool: the app answers '$body', expected 'ok b-$RUNS'"
	done
}

# ---------------------------------------------------------------------------
# The results of parts a and b.
report_ab() {
	"$RF_PYTHON" - "$DATA" <<PY
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, metric, run, value = line.rstrip("\n").split("\t")
    rows.setdefault((case, metric), []).append(float(value))

def med(case, metric):
    v = rows.get((case, metric))
    return statistics.median(v) if v else None

def rng(case, metric):
    v = rows.get((case, metric))
    return "%.3f-%.3f" % (min(v), max(v)) if v else ""

def s(x):
    return "-" if x is None else "%.3f s" % x

def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)

def line(label, case, metric):
    print("   %-46s %-10s %s" % (label, s(med(case, metric)), rng(case, metric)))

mib = ${MIB}
mb = mib * 1.048576
print("bare = OpenSSH defaults (kex sntrup761x25519-sha512, chacha20-poly1305);")
print("bare-c25519 = the same with -o KexAlgorithms=curve25519-sha256, the kex relflip (libssh2 1.10) negotiates")
print()
if ("a", "relflip.wall") in rows:
    print("a. %d MiB artifact (plain tar, one random file: incompressible), a fresh release id each run;" % mib)
    print("   median (min-max) of %d rounds, relflip / bare / bare-c25519 / sftp put -f alternating" % len(rows[("a", "relflip.wall")]))
    print("   %-46s %-10s %s" % ("", "median", "min-max"))
    line("relflip deploy, result duration_ms", "a", "relflip.result")
    line("relflip deploy, process wall", "a", "relflip.wall")
    for st, label in [("validate", "validate (local read + checksum)"), ("connect", "connect"),
                      ("probe", "probe (the layout, read-only)"), ("lock", "lock"), ("preflight", "preflight"),
                      ("upload", "upload stage (SFTP)"),
                      ("unpack", "unpack stage (checksum, untar, rename)"), ("link", "link"),
                      ("switch", "switch"), ("record", "record")]:
        if ("a", "relflip." + st) in rows:
            line("  " + label, "a", "relflip." + st)
    for tool in ("bare", "bare-c25519"):
        line(tool + " script, whole", "a", tool + ".wall")
        line("  sha256sum (local)", "a", tool + ".sha")
        line("  sftp -b put (process wall)", "a", tool + ".put")
        line("  ssh: check, untar, rename, flip", "a", tool + ".ssh")
        line("  a no-op sftp session (connect cost)", "a", tool + ".noop")
    line("sftp put -f alone (with fsync), c25519", "a", "sftp-fsync.put")
    print("   %-46s %.1f MiB (max %.1f)" % ("relflip peak RSS (/usr/bin/time -v)", med("a", "relflip.rss"), max(rows[("a", "relflip.rss")])))
    rw, rr, up = med("a", "relflip.wall"), med("a", "relflip.result"), med("a", "relflip.upload")
    print()
    print("   RATIOS (relflip / OpenSSH; below 1: relflip is faster). Neither relflip's upload nor sftp's")
    print("   plain put fsyncs (relflip verifies the SHA-256 on the server instead); put -f does.")
    for tool in ("bare", "bare-c25519"):
        bw, put, noop = med("a", tool + ".wall"), med("a", tool + ".put"), med("a", tool + ".noop")
        print("   vs %-12s whole deploy %s (result duration_ms) / %s (process wall);" % (tool + ":", ratio(rr, bw), ratio(rw, bw)))
        print("   %-15s upload stage / sftp put %s (sftp process wall) / %s (sftp put minus a no-op session)" % ("", ratio(up, put), ratio(up, put - noop)))
    pf, noopc = med("a", "sftp-fsync.put"), med("a", "bare-c25519.noop")
    print("   against a flushed put (same kex):  upload stage / sftp put -f %s (sftp process wall) / %s (minus a no-op session)"
          % (ratio(up, pf), ratio(up, pf - noopc)))
    print("   throughput: relflip upload %.0f MB/s; sftp put %.0f MB/s (%.0f MB/s net of connecting), OpenSSH defaults"
          % (mb / up, mb / med("a", "bare.put"), mb / (med("a", "bare.put") - med("a", "bare.noop"))))
if ("big", "relflip.wall") in rows:
    big = ${BIG_MIB}
    print()
    print("a'. %d MiB artifact, once each" % big)
    print("   relflip: wall %s (result %s), upload %s, unpack %s, peak RSS %.1f MiB"
          % (s(med("big", "relflip.wall")), s(med("big", "relflip.result")), s(med("big", "relflip.upload")),
             s(med("big", "relflip.unpack")), med("big", "relflip.rss")))
    for tool in ("bare", "bare-c25519"):
        print("   %-12s wall %s (sha256sum %s, sftp put %s, ssh %s); relflip / it: %s, upload / sftp put: %s"
              % (tool + ":", s(med("big", tool + ".wall")), s(med("big", tool + ".sha")), s(med("big", tool + ".put")),
                 s(med("big", tool + ".ssh")), ratio(med("big", "relflip.wall"), med("big", tool + ".wall")),
                 ratio(med("big", "relflip.upload"), med("big", tool + ".put"))))
    print("   relflip peak RSS: %.1f MiB at %d MiB vs %.1f MiB at %d MiB: it does not grow with the artifact"
          % (med("big", "relflip.rss"), big, med("a", "relflip.rss"), mib))
if ("b", "relflip.wall") in rows:
    print()
    print("b. second deploy of a small web app ($B_FILES files, $B_BYTES bytes unpacked, tar.gz $B_ART_BYTES bytes):")
    print("   migrate hook, app restart (app-ctl), health check with expect_revision; median (min-max) of %d" % len(rows[("b", "relflip.wall")]))
    line("relflip deploy, process wall", "b", "relflip.wall")
    line("relflip deploy, result duration_ms", "b", "relflip.result")
    for st in ("validate", "connect", "probe", "lock", "preflight", "upload", "unpack", "link", "migrate",
               "switch", "restart", "health", "record"):
        if ("b", "relflip." + st) in rows:
            line("  " + st, "b", "relflip." + st)
    for tool in ("bare", "bare-c25519"):
        line(tool + " script, whole", "b", tool + ".wall")
    print("   relflip / bare: %s; relflip / bare-c25519: %s (process wall)"
          % (ratio(med("b", "relflip.wall"), med("b", "bare.wall")), ratio(med("b", "relflip.wall"), med("b", "bare-c25519.wall"))))
    print("   relflip's record stage pruned old releases in %d of %d runs (keep_releases = 5; no separate prune stage event)"
          % (sum(rows[("b", "relflip.pruned")]), len(rows[("b", "relflip.pruned")])))
    def one(v):
        return "%g" % v[0] if min(v) == max(v) else "%g-%g" % (min(v), max(v))
    print()
    print("   per deploy, counted in the sshd log (LogLevel VERBOSE), every run:")
    print("     %-12s %-12s %-22s %s" % ("", "connections", "exec channels", "sftp sessions"))
    for tool in ("relflip", "bare", "bare-c25519"):
        print("     %-12s %-12s %-22s %s" % (tool, one(rows[("b", tool + ".conns")]), one(rows[("b", tool + ".cmds")]),
                                            one(rows[("b", tool + ".sftp")])))
    print("     connections: 'Accepted publickey for'; exec channels: sshd 9.2 logs one")
    print("     'Starting session: command for USER from ADDR port P id N' per exec request (VERBOSE;")
    print("     'Close session: ...' when it ends); sftp: \"Starting session: subsystem 'sftp' for ...\".")
    print("     Not logged at VERBOSE: the health check's direct-tcpip channel. No 'session opened'")
    print("     lines: that is PAM's, and the harness's sshd runs with UsePAM no.")
print()
print("per-run figures, seconds, in run order:")
for case in ("a", "big", "b"):
    for metric in ("relflip.wall", "relflip.upload", "relflip.unpack", "relflip.lock", "relflip.record",
                   "bare.wall", "bare.put", "bare-c25519.wall", "bare-c25519.put", "sftp-fsync.put"):
        v = rows.get((case, metric))
        if v:
            print("   %-4s %-18s %s" % (case, metric, " ".join("%.3f" % x for x in v)))
PY
	cat <<EOF

Exact commands (\$T is the bench's temporary directory, PORT the sshd's or the app's):
EOF
	want a && cat <<EOF
  artifact a:  head -c ${MIB}M /dev/urandom >payload.bin; tar -cf artifact-$MIB.tar payload.bin
  relflip a:   /usr/bin/time -v ./relflip -c a.ini --json deploy artifact-$MIB.tar --revision a-N
               a.ini: [app] path; [ssh] user = root, port, identity, known_hosts; one [host];
               [deploy] keep_releases = 1000; no [health]. Stage times from the stage "end"
               events' duration_ms, the whole from the result event's duration_ms.
  bare a:      sha256sum artifact-$MIB.tar
               sftp -q -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \\
                    -o UserKnownHostsFile=\$T/known_hosts -o GlobalKnownHostsFile=/dev/null \\
                    -o IdentitiesOnly=yes -o IdentityAgent=none -i \$T/client_key \\
                    -o ConnectTimeout=5 -o LogLevel=ERROR [-o KexAlgorithms=curve25519-sha256] \\
                    -P PORT -b BATCH root@127.0.0.1
                 BATCH: put artifact-$MIB.tar APP/.incoming/a-N.tar
               ssh (the same options) -p PORT root@127.0.0.1 \\
                 '$(bare_remote APP a-N SHA256)'
  no-op sftp:  the same sftp, BATCH: pwd
  put -f:      the same sftp with -o KexAlgorithms=curve25519-sha256, BATCH: put -f artifact-$MIB.tar \$T/srv/sftp-fsync.tar
EOF
	want b || return 0
	cat <<EOF
  b web app:   $B_FILES files of base64 text in app/moduleNN/; relflip pack webapp -o webapp.tar.gz
  relflip b:   ./relflip -c b.ini --json deploy webapp.tar.gz --revision b-N (under /usr/bin/time -v)
               b.ini adds: [hooks] migrate = echo migrate
                           [service "web"] restart = tests/e2e/lib/app-ctl restart APP PORT
                           [health] url = http://127.0.0.1:PORT/health, expect_status = 200,
                                    expect_revision = yes, interval = 0.1, retries = 50
  bare b:      sha256sum and sftp put as in a, then ssh ... root@127.0.0.1 \\
                 '$(bare_remote APP b-N SHA256 "$(bare_b_extra b-N)" "$(bare_b_after bare b-N)" | sed "s|${APP_B[bare]}|APP|g; s|${PORT_B[bare]}|PORT|g; s|$RF_LIB|tests/e2e/lib|g")'
  sshd log lines of relflip's last deploy in b:
EOF
	sed -n "$((LAST_RELFLIP_LOG[0] + 1)),${LAST_RELFLIP_LOG[1]}p" "$SSHD_LOG" |
		grep -E 'Accepted publickey|Starting session|Disconnected' | sed 's/^/    /'
}

# fleet_part: part e, under the netns lock the e2e tests take (waiting at
# most BENCH_FLEET_LOCK_WAIT seconds for it); bench-fleet.sh's table
# (stdout) is the section, its progress (stderr) goes to the terminal.
fleet_part() {
	local rc=0

	{
		echo "e. fleet (issue 11, part 5): relflip deploys to network-namespace hosts, max_parallel 64"
		echo "   scripts/bench-fleet.sh --sizes \"$FLEET_SIZES\" --runs $FLEET_RUNS --parallel 64 (a 4 MiB random"
		echo "   artifact; every stage; per size a warm-up deploy, then $FLEET_RUNS timed (BENCH_FLEET_RUNS));"
		echo "   peak RSS from /usr/bin/time -v, the largest of the timed runs"
		echo
	} >"$BENCH_OUT"
	# flock exits 75 (-E) when the lock stayed held for FLEET_LOCK_WAIT (-w).
	flock -E 75 -w "$FLEET_LOCK_WAIT" /tmp/relflip-netns.lock "$ROOT/scripts/bench-fleet.sh" \
		--sizes "$FLEET_SIZES" --runs "$FLEET_RUNS" --parallel 64 >>"$BENCH_OUT" || rc=$?
	if ((rc == 75)); then
		echo "   skipped: /tmp/relflip-netns.lock stayed held (other e2e runs) for ${FLEET_LOCK_WAIT} s" >>"$BENCH_OUT"
		note "part e skipped: /tmp/relflip-netns.lock stayed held for ${FLEET_LOCK_WAIT} s (BENCH_FLEET_LOCK_WAIT)"
		return 0
	fi
	return "$rc"
}

# ---------------------------------------------------------------------------
# The run.

if want a || want b; then
	say "a./b.: a throwaway sshd on loopback (the harness's config: SetEnv SHLVL=1, LogLevel VERBOSE)"
	rf_sshd_start sshd
	SSHD_LOG=$RF_TMP/sshd.log
	rf_ssh_opts
	note "sshd pid $RF_SSHD_PID on 127.0.0.1:$RF_PORT, log $SSHD_LOG"
	if want a; then
		part_a
	fi
	if want b; then
		part_b
	fi
	report_ab >"$RF_TMP/part-ab.txt"
	rf_app_stop ""
	rf_sshd_stop sshd
fi

# run_part PART CMD...: a part run by CMD, its results section written to
# $BENCH_OUT ($RF_TMP/part-PART.txt). A part that fails is reported, and the
# bench goes on with the next one.
failed_parts=()
run_part() {
	local part=$1 rc=0

	shift
	BENCH_OUT=$RF_TMP/part-$part.txt BENCH_RUNS=$RUNS "$@" || rc=$?
	if ((rc != 0)); then
		failed_parts+=("$part (exit $rc)")
		note "part $part exited $rc: see above; the bench goes on"
	fi
}

if want c; then
	run_part c "$ROOT/scripts/bench-capistrano.sh"
fi
if want d; then
	run_part d "$ROOT/scripts/bench-upload.sh"
fi
if want e; then
	say "e. fleet: scripts/bench-fleet.sh --sizes \"$FLEET_SIZES\" --runs $FLEET_RUNS --parallel 64 (under /tmp/relflip-netns.lock)"
	run_part e fleet_part
fi

bench_s=$((($(rf_now_ms) - bench_t0) / 1000))
LOAD_END=$(load_now)
CPU_BUSY=$(awk -v b="$(($(cpu_busy) - CPU_START))" -v s="$bench_s" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" \
	'BEGIN { if (s > 0) printf "%.0f%%", 100 * b / hz / s / n; else print "-" }')
say "results"
{
	echo "relflip bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
		"$(ssh -V 2>&1 | cut -d, -f1), libssh2 $(dpkg-query -W -f='${Version}' libssh2-1 2>/dev/null)," \
		"$("$RELFLIP" --version 2>&1 | head -n 1)"
	echo "parts: $PARTS; BENCH_RUNS=$RUNS; whole bench: ${bench_s} s"
	sort -n "$RF_TMP/loadavg" | awk -v start="$LOAD_START" -v end="$LOAD_END" -v busy="$CPU_BUSY" -v n="$(nproc)" '
		{ v[NR] = $1 }
		END {
			printf "machine load while it ran: 1-minute load average %s at the start, %s at the end; every 5 s: " \
				"min %s, median %s, max %s (%d CPUs); CPUs busy over the bench: %s (every process)\n",
				start, end, v[1], v[int((NR + 1) / 2)], v[NR], n, busy
			if (v[int((NR + 1) / 2)] > n / 2)
				print "WARNING: the machine was busy with other work: the figures are noisy; rerun on a quiet machine"
		}'
	for part in ab c d e; do
		if [[ -s $RF_TMP/part-$part.txt ]]; then
			echo
			cat "$RF_TMP/part-$part.txt"
		fi
	done
	if ((${#failed_parts[@]} > 0)); then
		echo
		echo "FAILED parts: ${failed_parts[*]}"
	fi
} | tee "$RESULTS"
note "written to $RESULTS"
((${#failed_parts[@]} == 0)) || exit 1
