# shellcheck shell=bash
# shellcheck disable=SC2034 # LAST_S, BENCH_* and *_SKIPPED are for the caller
# What relflip's bench scripts share (scripts/bench.sh, bench-capistrano.sh,
# bench-upload.sh): output, timing, the per-run data file, counting in the
# sshd log and on the wire, the sshd and the WAN proxy. Source it
# after tests/e2e/lib/hosts.bash, with BENCH_NAME set (the prefix of error
# messages) and, before record(), DATA (the data file: case <tab> metric
# <tab> run <tab> value).

# Each bench script makes its own client key and known_hosts in its RF_TMP:
# none inherited from a calling script (hosts.bash exports them).
unset RF_KEY RF_KNOWN_HOSTS

# The WAN-shaped link: one-way delay and rate of netem-proxy.
WAN_DELAY_MS=${BENCH_WAN_DELAY_MS:-25}
WAN_MBIT=${BENCH_WAN_MBIT:-100}

say() {
	printf '\n==> %s\n' "$*"
}

note() {
	printf '    %s\n' "$*"
}

die() {
	printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
	exit 1
}

record() {
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$DATA"
}

# us_to_s MICROSECONDS: seconds with three decimals.
us_to_s() {
	printf '%d.%03d' $(($1 / 1000000)) $((($1 % 1000000) / 1000))
}

# timed CMD...: run CMD and return its status; LAST_S is its wall time in
# seconds (EPOCHREALTIME).
timed() {
	local t0 t1 rc=0

	t0=${EPOCHREALTIME/./}
	"$@" || rc=$?
	t1=${EPOCHREALTIME/./}
	LAST_S=$(us_to_s $((t1 - t0)))
	return "$rc"
}

# log_lines FILE: its length in lines now (0 when it does not exist yet).
log_lines() {
	if [[ -e $1 ]]; then
		wc -l <"$1"
	else
		echo 0
	fi
}

# log_count FILE FROM PATTERN: lines matching PATTERN (grep -E) written
# after line FROM.
log_count() {
	tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -c -E -- "$3" || true
}

# bench_checks [KNOB]: what every bench script needs, or exit 2: a built
# $RELFLIP, root (the throwaway sshds log in as root), and RUNS (set from
# KNOB, default BENCH_RUNS) of 3 or more.
bench_checks() {
	local knob=${1:-BENCH_RUNS}

	if [[ ! -x $RELFLIP ]]; then
		echo "$BENCH_NAME: $RELFLIP is not built; run make first" >&2
		exit 2
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "$BENCH_NAME: run it as root: the throwaway sshd logs in as root" >&2
		exit 2
	fi
	if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 3)); then
		echo "$BENCH_NAME: $knob must be 3 or more (medians), not '$RUNS'" >&2
		exit 2
	fi
}

# bench_tmp NAME: RF_TMP, a new ${TMPDIR:-/tmp}/NAME.XXXXXX, and DATA, an
# empty data file in it. On exit, bench_stop_extra runs when the script
# defines it, then everything started is stopped by PID (rf_cleanup) and
# RF_TMP removed, unless BENCH_KEEP=1.
bench_tmp() {
	RF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	trap bench_finish EXIT
	trap 'exit 130' INT TERM
	DATA=$RF_TMP/data.tsv
	: >"$DATA"
}

bench_finish() {
	local rc=$?

	trap - EXIT INT TERM
	if [[ -n ${RF_TMP:-} && -d $RF_TMP ]]; then
		say "cleaning up: $BENCH_NAME's processes, by PID; $RF_TMP"
		if declare -F bench_stop_extra >/dev/null; then
			bench_stop_extra
		fi
		rf_cleanup
		if [[ -n ${BENCH_SRV_MOUNT:-} ]]; then
			umount "$BENCH_SRV_MOUNT" 2>/dev/null || umount -l "$BENCH_SRV_MOUNT" ||
				note "could not unmount $BENCH_SRV_MOUNT"
			rm -f "$RF_TMP/srv.img"
		fi
		if [[ ${BENCH_KEEP:-0} == 1 ]]; then
			note "kept $RF_TMP (BENCH_KEEP=1)"
		else
			rm -rf "$RF_TMP"
		fi
	fi
	((rc == 0)) || say "$BENCH_NAME stopped (exit $rc)"
	exit "$rc"
}

# bench_server_fs DIR: the servers' side of the bench (app paths, releases)
# on a file system like a server's. This machine's root file system is ext4
# without a journal, where ext4 makes each file created soon after a delete
# wait on the inode table (recently_deleted): unpacking 2,000 files there
# takes 3 to 5 times as long as on a journaled ext4, for every tool alike,
# and varies with what was deleted just before. So DIR gets a journaled
# ext4 of its own, on a loop device over $RF_TMP/srv.img, when
# BENCH_SERVER_FS is "ext4" (the default) and mkfs.ext4 and mount allow it;
# BENCH_SERVER_FS=tmp keeps DIR where RF_TMP is. Sets SERVER_FS to what was
# used, for the report.
bench_server_fs() {
	local dir=$1 img=$RF_TMP/srv.img

	mkdir -p "$dir"
	SERVER_FS="the file system of ${TMPDIR:-/tmp}"
	[[ ${BENCH_SERVER_FS:-ext4} == ext4 ]] || return 0
	if ! command -v mkfs.ext4 >/dev/null || ((EUID != 0)); then
		SERVER_FS+=": no journaled ext4 (needs root and mkfs.ext4)"
		return 0
	fi
	if truncate -s 8G "$img" && mkfs.ext4 -q -F -O has_journal "$img" &&
		mount -o loop "$img" "$dir"; then
		BENCH_SRV_MOUNT=$dir
		SERVER_FS="journaled ext4 on a loop device (BENCH_SERVER_FS=ext4; =tmp for ${TMPDIR:-/tmp})"
	else
		rm -f "$img"
		SERVER_FS+=": the journaled ext4 could not be made or mounted"
	fi
}

# bench_install PACKAGE: apt-get install -y it (BENCH_INSTALL=1, the
# default); returns 1, with INSTALL_FAILED saying why, when that is off or
# fails.
bench_install() {
	local log

	if [[ ${BENCH_INSTALL:-1} != 1 ]]; then
		INSTALL_FAILED="$1 is not installed and BENCH_INSTALL=${BENCH_INSTALL} (apt-get install $1)"
		return 1
	fi
	say "installing Debian's $1 package for the bench (apt-get install -y $1)"
	log=$(mktemp "${TMPDIR:-/tmp}/bench-install.XXXXXX")
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >"$log" 2>&1; then
		INSTALL_FAILED="apt-get install -y $1 failed: $(tail -n 1 "$log")"
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

# cpu_busy: jiffies the machine's CPUs spent not idle, since boot.
cpu_busy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# load_now: the 1-minute load average.
load_now() {
	local l

	read -r l _ </proc/loadavg
	echo "$l"
}

# bench_sshd_start NAME LOGLEVEL [SUBSYSTEM]: an sshd on 127.0.0.1 and a free
# port with the end-to-end harness's config (tests/e2e/lib/hosts.bash), but
# its own LogLevel and, when given, its own sftp Subsystem line. Its host key
# goes into $RF_KNOWN_HOSTS; tracked for rf_cleanup. Sets BENCH_SSHD_PORT,
# BENCH_SSHD_LOG and BENCH_SSHD_HOSTKEY.
bench_sshd_start() {
	local name=$1 level=$2 subsystem=${3:-} dir=$RF_TMP/$1 port pid

	mkdir -p "$dir" /run/sshd
	chmod 0755 /run/sshd
	rf_client_key
	rf_keygen "$dir/host_ed25519_key"
	port=$(rf_free_port 127.0.0.1)
	rf_sshd_write_config "$dir" 127.0.0.1 "$port"
	sed -i "s/^LogLevel .*/LogLevel $level/" "$dir/sshd_config"
	if [[ -n $subsystem ]]; then
		sed -i "s|^Subsystem sftp .*|Subsystem sftp $subsystem|" "$dir/sshd_config"
	fi
	BENCH_SSHD_LOG=$RF_TMP/$name.log
	"$RF_SSHD" -t -f "$dir/sshd_config" 2>>"$BENCH_SSHD_LOG" ||
		die "sshd -t rejected $dir/sshd_config (see $BENCH_SSHD_LOG)"
	rf_known_hosts_add 127.0.0.1 "$port" "$dir/host_ed25519_key.pub"
	"$RF_SSHD" -D -e -f "$dir/sshd_config" </dev/null >>"$BENCH_SSHD_LOG" 2>&1 3>&- &
	pid=$!
	rf_track sshd "$pid" "$name"
	if ! rf_poll 10 rf_sshd_up "$pid" "$port" 127.0.0.1 || ! rf_pid_alive "$pid"; then
		die "sshd $name on port $port did not accept ssh within 10 s (see $BENCH_SSHD_LOG)"
	fi
	BENCH_SSHD_PORT=$port
	BENCH_SSHD_HOSTKEY=$dir/host_ed25519_key.pub
}

# bench_proxy_start SSHD_PORT: the WAN-shaped link, netem-proxy
# (tests/tools/netem-proxy.c, built by `make tools`) with BENCH_WAN_DELAY_MS
# each way (default 25) and BENCH_WAN_MBIT (default 100), in front of the
# sshd; the sshd's host key is added to known_hosts under the proxy's port
# too. Sets BENCH_PROXY_PORT; returns 1, with WAN_SKIPPED saying why, when
# there is no proxy to run.
bench_proxy_start() {
	if [[ ! -x $RF_PROXY_BIN ]]; then
		WAN_SKIPPED="$RF_PROXY_BIN is not built (make tools builds it from tests/tools/netem-proxy.c)"
		return 1
	fi
	rf_proxy_start wan "$1" --delay-ms "$WAN_DELAY_MS" --rate-mbit "$WAN_MBIT" ||
		die "netem-proxy did not start (see $RF_TMP/proxy-wan.log)"
	BENCH_PROXY_PORT=$RF_PROXY_PORT
	rf_known_hosts_add 127.0.0.1 "$BENCH_PROXY_PORT" "$BENCH_SSHD_HOSTKEY"
}

# The bytes on the wire: a header-only tcpdump capture of the sshd's port on
# lo for the whole bench; bench/wire-bytes.py counts, per time window, the
# TCP payload each way, each byte once (retransmissions apart).

# wire_start PORT: start the capture; returns 1, with WIRE_SKIPPED saying
# why, when tcpdump is missing or does not start.
wire_start() {
	local pid

	WIRE_PCAP=$RF_TMP/wire.pcap
	WIRE_WINDOWS=$RF_TMP/wire.windows
	: >"$WIRE_WINDOWS"
	if ! command -v tcpdump >/dev/null; then
		WIRE_SKIPPED="tcpdump is not installed (apt-get install tcpdump)"
		return 1
	fi
	tcpdump -i lo -n -s 128 -B 8192 -U -Z root -w "$WIRE_PCAP" "tcp port $1" \
		</dev/null >"$RF_TMP/tcpdump.log" 2>&1 3>&- &
	pid=$!
	rf_track proc "$pid" tcpdump
	if ! rf_poll 10 grep -q 'listening on' "$RF_TMP/tcpdump.log" || ! rf_pid_alive "$pid"; then
		WIRE_SKIPPED="tcpdump did not start: $(tail -n 1 "$RF_TMP/tcpdump.log")"
		rf_kill_pid "$pid"
		return 1
	fi
	WIRE_PID=$pid
	WIRE_PORT=$1
}

# wire_window KEY T0 T1: count the packets captured between T0 and T1
# (EPOCHREALTIME values) under KEY.
wire_window() {
	printf '%s %s %s\n' "$1" "$2" "$3" >>"$WIRE_WINDOWS"
}

# wire_stop: stop the capture (tcpdump flushes on SIGTERM); WIRE_DROPPED is
# what it says the kernel dropped.
wire_stop() {
	[[ -n ${WIRE_PID:-} ]] || return 0
	rf_kill_pid "$WIRE_PID"
	WIRE_PID=
	WIRE_DROPPED=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$RF_TMP/tcpdump.log")
}

# wire_counts: "KEY UP DOWN UP_RETRANS DOWN_RETRANS UP_PACKETS DOWN_PACKETS"
# for each window.
wire_counts() {
	"$RF_PYTHON" "$RF_ROOT/bench/wire-bytes.py" "$WIRE_PCAP" "$WIRE_PORT" "$WIRE_WINDOWS"
}

# relflip_metrics JSON [TIME]: from relflip's --json events (and
# /usr/bin/time -v's report), "metric value" lines: result (seconds, from
# the result event's duration_ms), each stage's seconds (summed when a stage
# shows up more than once), pruned (1 when the record stage pruned) and rss
# (MiB). Fails when there is no successful result event.
relflip_metrics() {
	"$RF_PYTHON" - "$@" <<'PY'
import json, re, sys
stages, details, result = {}, {}, None
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if e.get("event") == "stage" and e.get("phase") == "end":
        stages[e["stage"]] = stages.get(e["stage"], 0) + e.get("duration_ms", 0)
        details[e["stage"]] = e.get("detail", "")
    elif e.get("event") == "result":
        result = e
if result is None or result.get("exit_code") != 0:
    sys.exit("no successful result event in " + sys.argv[1])
print("result", result["duration_ms"] / 1000)
for s, ms in stages.items():
    print(s, ms / 1000)
print("pruned", 1 if "pruned" in details.get("record", "") else 0)
if len(sys.argv) > 2:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read())
    print("rss", int(m.group(1)) / 1024)
PY
}
