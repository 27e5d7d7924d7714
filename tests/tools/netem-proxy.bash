# shellcheck shell=bash
# Start, steer and stop netem-proxy (tests/tools/netem-proxy.c) from bash:
# for the fault harness, the proxy's own test and benchmarks. Plain bash on
# top of tests/e2e/lib/hosts.bash (rf_poll, rf_track, rf_kill_pid): source
# that first, with RF_TMP set. Every process is tracked for rf_cleanup.
#
#   rf_proxy_start NAME TARGET_PORT [netem-proxy options...]
#       a proxy on 127.0.0.1 and a free port in front of 127.0.0.1:TARGET_PORT;
#       files in $RF_TMP/proxy-NAME.{ctl,state,ready,log}; sets
#       RF_PROXY_PORT and RF_PROXY_PID
#   rf_proxy_ctl NAME COMMAND    send cut|blackhole|resume|refuse|accept|
#       "delay MS"|"rate MBIT" and wait (bounded) until the proxy applied it
#   rf_proxy_stop NAME           SIGTERM by PID, bounded wait

RF_PROXY_BIN=${RF_PROXY_BIN:-$RF_ROOT/build/tools/netem-proxy}
export RF_PROXY_BIN

# rf_proxy_field NAME KEY: one key=value of the proxy's state file.
rf_proxy_field() {
	local w

	[[ -r $RF_TMP/proxy-$1.state ]] || return 1
	for w in $(<"$RF_TMP/proxy-$1.state"); do
		if [[ ${w%%=*} == "$2" ]]; then
			printf '%s\n' "${w#*=}"
			return 0
		fi
	done
	return 1
}

rf_proxy_start() {
	local name=$1 target=$2 f=$RF_TMP/proxy-$1 pid

	shift 2
	if [[ ! -x $RF_PROXY_BIN ]]; then
		rf_log "$RF_PROXY_BIN is not built (make tools)"
		return 1
	fi
	rm -f "$f.ready"
	"$RF_PROXY_BIN" --listen 127.0.0.1:0 --to "127.0.0.1:$target" \
		--control "$f.ctl" --state-file "$f.state" --ready-file "$f.ready" \
		--lifetime "${RF_PROXY_LIFETIME:-900}" "$@" \
		</dev/null >>"$f.log" 2>&1 3>&- &
	pid=$!
	rf_track proc "$pid" "proxy-$name"
	if ! rf_poll 10 test -s "$f.ready"; then
		rf_log "netem-proxy $name did not start (see $f.log)"
		rf_kill_pid "$pid"
		return 1
	fi
	read -r RF_PROXY_PORT <"$f.ready"
	RF_PROXY_PID=$pid
	printf '%s\n' "$pid" >"$f.pid"
	export RF_PROXY_PORT RF_PROXY_PID
}

rf_proxy_ctl() {
	local name=$1 cmd=$2 f=$RF_TMP/proxy-$1 seq

	seq=$(rf_proxy_field "$name" seq) || {
		rf_log "netem-proxy $name: no state file $f.state"
		return 1
	}
	printf '%s\n' "$cmd" >"$f.ctl"
	rf_poll 5 rf_proxy_seq_past "$name" "$seq" || {
		rf_log "netem-proxy $name did not apply '$cmd' within 5 s"
		return 1
	}
}

rf_proxy_seq_past() {
	local now

	now=$(rf_proxy_field "$1" seq) && ((now > $2))
}

rf_proxy_stop() {
	local pid

	[[ -r $RF_TMP/proxy-$1.pid ]] || return 0
	read -r pid <"$RF_TMP/proxy-$1.pid"
	rf_kill_pid "$pid"
	rm -f "$RF_TMP/proxy-$1.pid"
}
