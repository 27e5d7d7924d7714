#!/usr/bin/env bats
# netem-proxy, the WAN-shaped fault proxy of the fault harness: delay, rate,
# and the faults (cut, black hole, refuse, resume), against a real sshd on
# loopback and a plain TCP target (tcp-bench.py). Lower bounds on time are
# hard (the proxy must never be faster than the link it emulates); upper
# bounds are loose, since the machine is shared.

load ../e2e/lib/sshd
load netem-proxy

setup() {
	rf_tmp_setup
	export RF_PROXY_LIFETIME=120
}

# A cut or a black hole leaves the remote sleeper running on the test's
# sshd (nothing tells it its connection is gone): stop it, whether the test
# got that far or not.
teardown() {
	stop_remote_sleeper
	stop_remote_sleeper second
	rf_teardown
}

# A plain TCP target (echo, sink, source) on a free port: BENCH_PORT.
bench_target() {
	"$RF_PYTHON" "$RF_ROOT/tests/tools/tcp-bench.py" serve "$RF_TMP/bench.ready" \
		</dev/null >>"$RF_TMP/bench.log" 2>&1 3>&- &
	rf_track proc "$!" bench
	rf_poll 10 test -s "$RF_TMP/bench.ready" || rf_fail "tcp-bench did not start"
	read -r BENCH_PORT <"$RF_TMP/bench.ready"
}

bench() {
	"$RF_PYTHON" "$RF_ROOT/tests/tools/tcp-bench.py" "$@"
}

# ssh through the proxy: the proxy's port with the sshd's host key.
proxied_ssh() {
	rf_ssh_opts
	ssh "${RF_SSH_OPTS[@]}" -p "$RF_PROXY_PORT" root@127.0.0.1 "$@" </dev/null
}

# remote_sleeper [NAME]: a remote command that says "started" and sleeps
# 30 s under a PID it records in $RF_TMP/NAME.pid (NAME defaults to
# remote), so that the test stops it by PID (a cut leaves it running).
remote_sleeper() {
	echo "echo \$\$ >'$RF_TMP/${1:-remote}.pid'; echo started; exec sleep 30"
}

# remote_sleeping [NAME]: that remote sleeper runs (its shell became the
# sleep). Sets REMOTE_PID.
remote_sleeping() {
	local comm

	REMOTE_PID=
	read -r REMOTE_PID 2>/dev/null <"$RF_TMP/${1:-remote}.pid" || return 1
	read -r comm 2>/dev/null <"/proc/$REMOTE_PID/comm" || return 1
	[[ $comm == sleep ]] && rf_pid_alive "$REMOTE_PID"
}

# stop_remote_sleeper [NAME]: stop it, by PID, while that PID is still the
# sleep (never another process).
stop_remote_sleeper() {
	if remote_sleeping "$@"; then
		rf_kill_pid "$REMOTE_PID"
	fi
	return 0
}

# sshd_saw_resets COUNT: the test's sshd accepted COUNT sessions, and
# its log says each of them (by its client port) was reset.
sshd_saw_resets() {
	local log=$RF_TMP/sshd.log port
	local -a ports

	mapfile -t ports < <(sed -n 's/^Accepted publickey for root from 127\.0\.0\.1 port \([0-9]*\) .*/\1/p' "$log")
	((${#ports[@]} == $1)) || return 1
	for port in "${ports[@]}"; do
		grep -qE "port $port\b.*(reset|Broken pipe)|(reset|Broken pipe).*port $port\b" "$log" || return 1
	done
}

with_sshd_behind_proxy() {
	rf_sshd_start
	rf_proxy_start p "$RF_PORT" "$@"
	rf_known_hosts_add 127.0.0.1 "$RF_PROXY_PORT" "$RF_HOST_KEY"
}

@test "usage errors exit 2 and say what is wrong" {
	run "$RF_PROXY_BIN"
	[[ $status == 2 && $output == *"usage: netem-proxy"* ]] || rf_fail "$output"
	run "$RF_PROXY_BIN" --listen 127.0.0.1:0 --to 127.0.0.1:22 --delay-ms fast
	[[ $status == 2 && $output == *"--delay-ms 'fast': expected a number"* ]] || rf_fail "$output"
	run "$RF_PROXY_BIN" --listen nocolon --to 127.0.0.1:22
	[[ $status == 2 && $output == *"--listen 'nocolon': expected HOST:PORT"* ]] || rf_fail "$output"
	run "$RF_PROXY_BIN" --help
	[[ $status == 0 && $output == *"blackhole"* ]] || rf_fail "$output"
}

@test "25 ms one-way: every round trip takes 50 ms or more, ssh true at least 4 of them" {
	local t0 ms rtt

	bench_target
	rf_proxy_start b "$BENCH_PORT" --delay-ms 25
	run bench rtt 127.0.0.1 "$RF_PROXY_PORT" 5
	rf_assert_status 0
	for rtt in $output; do
		[[ ${rtt%.*} -ge 50 && ${rtt%.*} -lt 500 ]] || rf_fail "round trip of $rtt ms:" "$output"
	done

	with_sshd_behind_proxy --delay-ms 25
	t0=$(rf_now_ms)
	proxied_ssh true
	ms=$(($(rf_now_ms) - t0))
	((ms >= 200)) || rf_fail "ssh true through the proxy took $ms ms, less than 4 round trips"
}

@test "4 MiB each way is paced to the rate: 100 Mbit/s and 10 Mbit/s, never faster" {
	local dir secs mbit rate

	bench_target
	for rate in 100 10; do
		rf_proxy_start "r$rate" "$BENCH_PORT" --delay-ms 25 --rate-mbit "$rate"
		for dir in up down; do
			run bench "$dir" 127.0.0.1 "$RF_PROXY_PORT" 4194304
			rf_assert_status 0
			read -r secs mbit <<<"$output"
			echo "# $rate Mbit/s $dir: $secs s, $mbit Mbit/s" >&3
			# A 20 ms bucket may burst once: 4 MiB at the rate, less
			# one bucket, plus one round trip, is the fastest allowed.
			"$RF_PYTHON" -c '
import sys
secs, rate = float(sys.argv[1]), float(sys.argv[2])
floor = (4194304 * 8 / (rate * 1e6)) * 0.92 + 0.05
if secs < floor:
    sys.exit("%.3f s is faster than %g Mbit/s allows (%.3f s)" % (secs, rate, floor))
if secs > floor * 2.5:
    sys.exit("%.3f s is far slower than %g Mbit/s (%.3f s)" % (secs, rate, floor))
' "$secs" "$rate"
		done
		rf_proxy_stop "r$rate"
	done
}

@test "cut resets every connection at once; new connections work" {
	local t0 ms rc pid err name
	local -A ssh_pid=()

	with_sshd_behind_proxy --delay-ms 5
	for name in remote second; do
		proxied_ssh "$(remote_sleeper "$name")" >"$RF_TMP/$name.out" 2>"$RF_TMP/$name.err" &
		ssh_pid[$name]=$!
		rf_track proc "$!" "ssh-$name"
	done
	# The cut must find both sessions busy: their commands running on
	# the server, ssh waiting for them, the proxy holding both.
	for name in remote second; do
		rf_poll 10 remote_sleeping "$name" ||
			rf_fail "the remote command of ssh $name did not start:" "$(cat "$RF_TMP/$name.err")"
		rf_pid_alive "${ssh_pid[$name]}" ||
			rf_fail "ssh $name ended before the cut:" "$(cat "$RF_TMP/$name.err")"
	done
	[[ $(rf_proxy_field p conns) == 2 ]] || rf_fail "state before the cut: $(cat "$RF_TMP/proxy-p.state")"
	t0=$(rf_now_ms)
	rf_proxy_ctl p cut
	for name in remote second; do
		pid=${ssh_pid[$name]}
		rf_poll 3 rf_pid_dead "$pid" || rf_fail "ssh $name still runs 3 s after the cut"
		ms=$(($(rf_now_ms) - t0))
		rc=0
		wait "$pid" || rc=$?
		err=$(cat "$RF_TMP/$name.err")
		# A reset, not an orderly close: ssh fails on its socket, it is
		# not told that the connection closed.
		((rc == 255)) || rf_fail "ssh $name exited $rc after the cut" "$err"
		[[ $err == *"reset"* || $err == *"Broken pipe"* ]] && [[ $err != *"closed by remote host"* ]] ||
			rf_fail "ssh $name did not see a reset:" "$err"
		((ms < 3000)) || rf_fail "ssh $name took $ms ms to notice the cut"
	done
	[[ $(rf_proxy_field p cuts) == 1 && $(rf_proxy_field p conns) == 0 ]] ||
		rf_fail "state: $(cat "$RF_TMP/proxy-p.state")"
	# The server's side of both was reset as well: sshd drops the sessions.
	rf_poll 5 sshd_saw_resets 2 ||
		rf_fail "sshd did not see both resets:" "$(tail -n 12 "$RF_TMP/sshd.log")"
	stop_remote_sleeper
	stop_remote_sleeper second
	run proxied_ssh "echo again"
	[[ $status == 0 && $output == again ]] || rf_fail "a new connection after the cut failed:" "$output"
	[[ $(rf_proxy_field p accepted) == 3 ]] || rf_fail "state: $(cat "$RF_TMP/proxy-p.state")"
}

@test "blackhole hangs the peers until their own timeouts; resume lets a held connection in" {
	local t0 ms rc=0 ssh_pid

	with_sshd_behind_proxy --delay-ms 5
	proxied_ssh -o ServerAliveInterval=1 -o ServerAliveCountMax=2 "$(remote_sleeper)" \
		>"$RF_TMP/ssh.out" 2>"$RF_TMP/ssh.err" &
	ssh_pid=$!
	rf_track proc "$ssh_pid" ssh
	rf_poll 10 remote_sleeping || rf_fail "the remote command did not start:" "$(cat "$RF_TMP/ssh.err")"
	t0=$(rf_now_ms)
	rf_proxy_ctl p blackhole
	wait "$ssh_pid" || rc=$?
	ms=$(($(rf_now_ms) - t0))
	((rc == 255)) || rf_fail "ssh exited $rc in the black hole" "$(cat "$RF_TMP/ssh.err")"
	((ms >= 2000)) || rf_fail "ssh gave up after $ms ms: the black hole let something through"
	# The proxy still holds the socket: nothing was closed.
	[[ $(rf_proxy_field p mode) == blackhole ]]
	stop_remote_sleeper

	# A connection made in the black hole is accepted and held, and goes
	# through once the proxy resumes.
	proxied_ssh -o ConnectTimeout=20 "echo through" >"$RF_TMP/ssh2.out" 2>&1 &
	ssh_pid=$!
	rf_track proc "$ssh_pid" ssh2
	rf_poll 10 eval '(( $(rf_proxy_field p accepted) >= 2 ))' || rf_fail "no second connection"
	[[ ! -s $RF_TMP/ssh2.out ]] || rf_fail "got through the black hole:" "$(cat "$RF_TMP/ssh2.out")"
	rf_proxy_ctl p resume
	wait "$ssh_pid" || rf_fail "ssh after resume failed:" "$(cat "$RF_TMP/ssh2.out")"
	[[ $(cat "$RF_TMP/ssh2.out") == through ]] || rf_fail "$(cat "$RF_TMP/ssh2.out")"
}

@test "refuse closes the listener (connection refused), accept opens it again on the same port" {
	with_sshd_behind_proxy
	rf_port_open 127.0.0.1 "$RF_PROXY_PORT"
	rf_proxy_ctl p refuse
	[[ $(rf_proxy_field p listen) == off ]]
	run proxied_ssh true
	[[ $status == 255 && $output == *"refused"* ]] || rf_fail "$output"
	rf_proxy_ctl p accept
	proxied_ssh true
}

@test "signals: USR1 cuts, USR2 black-holes, HUP resumes; TERM exits 0 and removes its files" {
	local f=$RF_TMP/proxy-p

	with_sshd_behind_proxy
	kill -USR2 "$RF_PROXY_PID"
	rf_poll 5 eval '[[ $(rf_proxy_field p mode) == blackhole ]]'
	kill -HUP "$RF_PROXY_PID"
	rf_poll 5 eval '[[ $(rf_proxy_field p mode) == forward ]]'
	kill -USR1 "$RF_PROXY_PID"
	rf_poll 5 eval '[[ $(rf_proxy_field p cuts) == 1 ]]'
	proxied_ssh true
	kill -TERM "$RF_PROXY_PID"
	wait "$RF_PROXY_PID" || rf_fail "netem-proxy exited $? on SIGTERM"
	rf_assert_not_exists "$f.ctl" "$f.state" "$f.ready"
}
