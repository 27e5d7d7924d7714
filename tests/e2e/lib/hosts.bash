# shellcheck shell=bash
# Throwaway servers for relflip's end-to-end tests and demo: sshd on loopback,
# the sample app, and network-namespace "hosts" for fleet tests.
#
# Plain bash, sourced by tests/e2e/lib/sshd.bash (bats) and scripts/demo.sh:
# nothing here depends on bats. Works with and without `set -euo pipefail`.
# The caller sets RF_TMP to a private directory first; everything made lives
# there, and every process started is recorded in $RF_TMP/.procs so that
# rf_cleanup can stop it by PID. No sleeps as synchronisation: every wait is
# a poll with a bound.

RF_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RF_ROOT=$(cd "$RF_LIB/../../.." && pwd)
if [[ -x /usr/bin/python3 ]]; then
	RF_PYTHON=${RF_PYTHON:-/usr/bin/python3}
else
	RF_PYTHON=${RF_PYTHON:-python3}
fi
RF_SSHD=${RF_SSHD:-/usr/sbin/sshd}
export RF_LIB RF_ROOT RF_PYTHON

rf_log() {
	printf 'rf: %s\n' "$*" >&2
}

# rf_sleep SECONDS: wait that long (fractions allowed) without starting a
# process: a timed read on a pipe of our own that never gets data. A fork
# and exec cost tens of milliseconds on a busy test machine, and polls
# sleep often.
rf_sleep() {
	if [[ -z ${RF_SLEEP_FD:-} || ! -e /proc/$BASHPID/fd/$RF_SLEEP_FD ]]; then
		exec {RF_SLEEP_FD}<> <(:)
	fi
	read -r -t "$1" -u "$RF_SLEEP_FD" _ || true
}

# rf_poll SECONDS CMD...: run CMD every 0.05 s until it succeeds; fail after
# SECONDS (fractions allowed).
rf_poll() {
	local limit=$1 now end

	shift
	now=${EPOCHREALTIME/./}
	end=$((now + $(rf_seconds_to_us "$limit")))
	while :; do
		if "$@"; then
			return 0
		fi
		now=${EPOCHREALTIME/./}
		if ((now >= end)); then
			return 1
		fi
		rf_sleep 0.05
	done
}

rf_seconds_to_us() {
	local s=$1 int frac

	int=${s%%.*}
	if [[ $s == *.* ]]; then
		frac=${s#*.}000000
		frac=${frac:0:6}
	else
		frac=000000
	fi
	echo $((10#${int:-0} * 1000000 + 10#$frac))
}

# Milliseconds since the epoch, for measuring how long a command took.
rf_now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# rf_py [--stdin TEXT] SNIPPET ARGS...: what `python3 -c SNIPPET ARGS` does
# (stdin TEXT, default none), through one Python process that the first
# call starts (lib/pyserve.py) and later calls reuse, subshells included:
# a Python start costs more than the checks the helpers make with it.
rf_py() {
	local text='' code olen elen out='' err='' LC_ALL=C

	if [[ $1 == --stdin ]]; then
		text=$2
		shift 2
	fi
	if ! rf_py_running && ! rf_py_start; then
		"$RF_PYTHON" -S -c "$@" <<<"$text"
		return
	fi
	printf '%s\0' "$(($# + 2))" "$PWD" "$text" "$@" >&"${RF_PYCO[1]}"
	if ! read -r code olen elen <&"${RF_PYCO[0]}"; then
		rf_log "rf_py: lib/pyserve.py stopped answering"
		return 1
	fi
	((olen == 0)) || IFS= read -r -N "$olen" out <&"${RF_PYCO[0]}"
	((elen == 0)) || IFS= read -r -N "$elen" err <&"${RF_PYCO[0]}"
	printf '%s' "$out"
	printf '%s' "$err" >&2
	return "$code"
}

# rf_py_running: this shell can talk to a running lib/pyserve.py.
rf_py_running() {
	[[ -n ${RF_PYCO_PID:-} && -n ${RF_PYCO[1]:-} && -e /proc/$BASHPID/fd/${RF_PYCO[1]} ]] &&
		rf_pid_alive "$RF_PYCO_PID"
}

rf_py_start() {
	coproc RF_PYCO { exec "$RF_PYTHON" -S "$RF_LIB/pyserve.py" 3>&- 2>/dev/null; }
	[[ -n ${RF_PYCO_PID:-} ]]
}

# rf_py_stop: end this shell's lib/pyserve.py (it ends by itself when the
# shell that started it exits, too).
rf_py_stop() {
	local pid=${RF_PYCO_PID:-} fd=${RF_PYCO[1]:-}

	[[ -n $pid ]] || return 0
	[[ -z $fd ]] || exec {fd}>&-
	rf_poll 2 rf_pid_dead "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	unset RF_PYCO_PID
}

# rf_pid_alive PID: the process exists and is not a zombie.
rf_pid_alive() {
	local stat

	[[ $1 =~ ^[0-9]+$ ]] || return 1
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

rf_pid_dead() {
	! rf_pid_alive "$1"
}

# rf_kill_pid PID: SIGTERM, wait up to 5 s, then SIGKILL; reap it when it is
# our child.
rf_kill_pid() {
	local pid=$1

	[[ $pid =~ ^[0-9]+$ ]] || return 0
	if rf_pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! rf_poll 5 rf_pid_dead "$pid"; then
			rf_log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			rf_poll 2 rf_pid_dead "$pid" || rf_log "pid $pid survived SIGKILL"
		fi
	fi
	wait "$pid" 2>/dev/null || true
	return 0
}

# rf_track KIND PID [DETAIL]: remember a process for rf_cleanup.
rf_track() {
	printf '%s %s %s\n' "$1" "$2" "${3:-}" >>"$RF_TMP/.procs"
}

# A free TCP port on ADDRESS (default 127.0.0.1; the address is not needed
# to pick one): a random port below the kernel's ephemeral range (so no
# outgoing connection is using it) that no socket of this machine has as
# its local or remote port, read from /proc/net/tcp{,6}. Pure bash: no
# process started (it is called once per app and per server).
rf_free_port() {
	local port try

	for ((try = 0; try < 100; try++)); do
		port=$((20000 + SRANDOM % 12000))
		if ! rf_port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	rf_log "rf_free_port: no free port found in 100 tries"
	return 1
}

# rf_port_in_use PORT: some TCP socket here has PORT at either end.
rf_port_in_use() {
	local hex f text

	printf -v hex ':%04X ' "$1"
	for f in /proc/net/tcp /proc/net/tcp6; do
		[[ -r $f ]] || continue
		text=
		read -r -d '' text <"$f" || true
		[[ $text != *"$hex"* ]] || return 0
	done
	return 1
}

# Is something listening on ADDRESS:PORT? (bash's /dev/tcp: no extra process.)
rf_port_open() {
	(exec 9<>"/dev/tcp/$1/$2") 2>/dev/null
}

rf_keygen() {
	local file=$1 type=${2:-ed25519}

	rm -f "$file" "$file.pub"
	if [[ $type == rsa ]]; then
		ssh-keygen -q -t rsa -b 2048 -N '' -C "relflip-test-$type" -f "$file"
	else
		ssh-keygen -q -t "$type" -N '' -C "relflip-test-$type" -f "$file"
	fi
}

# The client key every test server accepts: $RF_TMP/client_key, listed in
# $RF_TMP/authorized_keys. Made once per RF_TMP.
rf_client_key() {
	RF_KEY=$RF_TMP/client_key
	RF_KNOWN_HOSTS=${RF_KNOWN_HOSTS:-$RF_TMP/known_hosts}
	if [[ ! -f $RF_KEY ]]; then
		rf_keygen "$RF_KEY"
		cat "$RF_KEY.pub" >>"$RF_TMP/authorized_keys"
	fi
	[[ -e $RF_KNOWN_HOSTS ]] || : >"$RF_KNOWN_HOSTS"
	export RF_KEY RF_KNOWN_HOSTS
}

# Options for plain ssh(1) against the test servers: no user config, strict
# host keys from our known_hosts, our key only, never a prompt.
rf_ssh_opts() {
	RF_SSH_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes
		-o "UserKnownHostsFile=$RF_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
		-o IdentitiesOnly=yes -o IdentityAgent=none -i "$RF_KEY"
		-o ConnectTimeout=5 -o LogLevel=ERROR)
}

# rf_ssh [-p PORT] [-a ADDRESS] CMD...: run a command on a test server
# (default: the last one rf_sshd_start made).
rf_ssh() {
	local port=${RF_PORT:-22} addr=${RF_ADDRESS:-127.0.0.1}

	while [[ $# -gt 0 ]]; do
		case $1 in
		-p) port=$2; shift 2 ;;
		-a) addr=$2; shift 2 ;;
		*) break ;;
		esac
	done
	rf_ssh_opts
	ssh "${RF_SSH_OPTS[@]}" -p "$port" "root@$addr" "$@" </dev/null
}

# rf_sshd_write_config DIR ADDRESS PORT: DIR/sshd_config for a test server
# whose host key is DIR/host_ed25519_key.
# RF_SSHD_SFTP=no leaves out the SFTP subsystem.
rf_sshd_write_config() {
	local dir=$1 addr=$2 port=$3 sftp='Subsystem sftp internal-sftp'

	[[ ${RF_SSHD_SFTP:-yes} == yes ]] || sftp='# no SFTP subsystem (RF_SSHD_SFTP=no)'
	cat >"$dir/sshd_config" <<EOF
ListenAddress $addr
Port $port
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $RF_TMP/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
$sftp
SetEnv SHLVL=1${RF_PROC_TAG:+ RF_PROC_TAG=$RF_PROC_TAG}${RF_SSHD_AGENT:+ RELFLIP_AGENT=$RF_SSHD_AGENT}
# A test can ask for the shell's agent: environment="RELFLIP_AGENT=sh" in
# its authorized_keys (deploy.bats does); RF_SSHD_AGENT=sh asks it for
# every session of the sshds started meanwhile (the fault matrix's soak).
PermitUserEnvironment RELFLIP_AGENT
AllowTcpForwarding yes
LogLevel VERBOSE
MaxStartups 100
MaxSessions 100
EOF
}

# rf_known_hosts_add ADDRESS PORT PUBKEY_FILE: the known_hosts line, in the
# form ssh writes it ("[addr]:port" unless the port is 22).
rf_known_hosts_add() {
	local addr=$1 port=$2 key kt kb

	read -r kt kb _ <"$3"
	if [[ $port == 22 ]]; then
		key=$addr
	else
		key="[$addr]:$port"
	fi
	printf '%s %s %s\n' "$key" "$kt" "$kb" >>"$RF_KNOWN_HOSTS"
}

# rf_sshd_check CONFIG LOG: sshd accepts CONFIG (sshd -t, complaints to
# LOG). Exports RF_SSHD_R: -r when this sshd can serve each connection from
# a fork, without executing itself anew (OpenSSH 9.2 can): a test run makes
# hundreds of SSH connections, and an exec of sshd costs more than the
# connection itself. Empty when it cannot.
rf_sshd_check() {
	if "$RF_SSHD" -r -t -f "$1" 2>/dev/null; then
		RF_SSHD_R=-r
	else
		RF_SSHD_R=
		"$RF_SSHD" -t -f "$1" 2>>"$2" || return 1
	fi
	export RF_SSHD_R
}

rf_ssh_ready() {
	rf_ssh -p "$1" -a "$2" true 2>/dev/null
}

# rf_ssh_banner PORT ADDRESS: an SSH server answers on ADDRESS:PORT with its
# version line. What the start helpers poll for: bash's /dev/tcp and read,
# no process and no key exchange (an ssh login costs a few hundred ms on a
# busy machine; the tests themselves prove that logins work).
rf_ssh_banner() {
	local fd line=

	exec {fd}<>"/dev/tcp/$2/$1" || return 1
	read -r -t 2 line <&"$fd" || true
	exec {fd}<&-
	[[ $line == SSH-2.0-* ]]
} 2>/dev/null

# rf_sshd_start [NAME]: a throwaway sshd on 127.0.0.1 and a free port, with
# its own host key, accepting $RF_KEY for root. Files in $RF_TMP/NAME/, log in
# $RF_TMP/NAME.log (NAME defaults to "sshd"). Exports RF_PORT, RF_KEY,
# RF_KNOWN_HOSTS, RF_SSHD_PID, RF_SSHD_DIR, RF_HOST_KEY (the host's public
# key file) and RF_APP ($RF_TMP/srv/app, not created; its parent is).
# RF_SSHD_PORT, when set, is the port tried first.
rf_sshd_start() {
	local name=${1:-sshd} dir port pid try log

	dir=$RF_TMP/$name
	log=$RF_TMP/$name.log
	mkdir -p "$dir" "$RF_TMP/srv" /run/sshd
	chmod 0755 /run/sshd
	rf_client_key
	rf_keygen "$dir/host_ed25519_key"
	for try in 1 2 3; do
		if [[ $try == 1 && -n ${RF_SSHD_PORT:-} ]]; then
			port=$RF_SSHD_PORT
		else
			port=$(rf_free_port 127.0.0.1)
		fi
		rf_sshd_write_config "$dir" 127.0.0.1 "$port"
		if ! rf_sshd_check "$dir/sshd_config" "$log"; then
			rf_log "sshd -t rejected $dir/sshd_config (see $log)"
			return 1
		fi
		rf_known_hosts_add 127.0.0.1 "$port" "$dir/host_ed25519_key.pub"
		# Redirect every inherited descriptor (bats watches fd 3).
		"$RF_SSHD" ${RF_SSHD_R:+"$RF_SSHD_R"} -D -e -f "$dir/sshd_config" \
			</dev/null >>"$log" 2>&1 3>&- &
		pid=$!
		rf_track sshd "$pid" "$name"
		# A port taken between rf_free_port and bind(2) makes sshd exit:
		# stop polling as soon as it is gone, and try another port.
		if rf_poll 10 rf_sshd_up "$pid" "$port" 127.0.0.1; then
			break
		fi
		if rf_pid_alive "$pid"; then
			rf_log "sshd $pid on port $port did not accept ssh within 10 s (see $log)"
			rf_kill_pid "$pid"
			return 1
		fi
		wait "$pid" 2>/dev/null || true
		rf_log "sshd on port $port exited (try $try; see $log)"
		pid=
	done
	if [[ -z $pid ]]; then
		return 1
	fi
	RF_PORT=$port
	RF_SSHD_PID=$pid
	RF_SSHD_DIR=$dir
	RF_HOST_KEY=$dir/host_ed25519_key.pub
	RF_APP=${RF_APP:-$RF_TMP/srv/app}
	export RF_PORT RF_SSHD_PID RF_SSHD_DIR RF_HOST_KEY RF_APP
}

# rf_sshd_start_path [TOOL...]: this test's own sshd, whose sessions' PATH
# is RF_SSHD_BIN:/usr/sbin:/sbin, RF_SSHD_BIN holding every command of
# /usr/bin but TOOL... (a test may put wrappers there); RF_PORT points at it.
rf_sshd_start_path() {
	local dir=$RF_TMP/sshd-path bin=$RF_TMP/sshd-path/bin port pid tool

	mkdir -p "$bin" /run/sshd
	ln -s /usr/bin/* "$bin/"
	for tool in "$@"; do
		rm -f "$bin/$tool"
	done
	RF_SSHD_BIN=$bin
	rf_keygen "$dir/host_ed25519_key"
	port=$(rf_free_port)
	rf_sshd_write_config "$dir" 127.0.0.1 "$port"
	sed -i "s|^SetEnv |SetEnv PATH=$bin:/usr/sbin:/sbin |" "$dir/sshd_config"
	rf_sshd_check "$dir/sshd_config" "$dir/sshd.log" || return 1
	rf_known_hosts_add 127.0.0.1 "$port" "$dir/host_ed25519_key.pub"
	"$RF_SSHD" -D -e -f "$dir/sshd_config" </dev/null >>"$dir/sshd.log" 2>&1 3>&- &
	pid=$!
	rf_track sshd "$pid" sshd-path
	rf_poll 10 rf_sshd_up "$pid" "$port" 127.0.0.1 && rf_pid_alive "$pid" || return 1
	RF_PORT=$port
}

# Poll step of rf_sshd_start: succeed once ssh gets in, or stop early when
# sshd has died (the caller looks at the PID again).
rf_sshd_up() {
	rf_pid_alive "$1" || return 0
	rf_ssh_banner "$2" "$3"
}

# rf_sshd_stop [NAME]: stop the sshd(s) rf_sshd_start made (all of them
# without NAME), by PID, with a bounded wait.
rf_sshd_stop() {
	local kind pid detail

	[[ -f $RF_TMP/.procs ]] || return 0
	while read -r kind pid detail; do
		[[ $kind == sshd ]] || continue
		[[ -z ${1:-} || $detail == "$1" ]] || continue
		rf_kill_pid "$pid"
	done <"$RF_TMP/.procs"
}

# rf_config [OPTIONS] [EXTRA_INI_TEXT]: write a relflip config for the test
# server to $RF_TMP/relflip.ini and export RF_CONFIG. EXTRA_INI_TEXT
# ([health], [hooks], [service ...] sections) goes at the end. Options
# change the generated lines:
#   --path P          [app] path (default $RF_APP)
#   --app LINE        another line in [app]
#   --port N          [ssh] port (default $RF_PORT)
#   --identity F      [ssh] identity (default $RF_KEY); --no-identity: none
#   --known-hosts F   (default $RF_KNOWN_HOSTS)
#   --timeout S       connect_timeout (default 5)
#   --ssh LINE        another line in [ssh]
#   --host NAME       the host section's name (default local)
#   --address A       its address (default 127.0.0.1)
#   --host-line LINE  another line in the host section
#   --file F          write F instead (RF_CONFIG is set to it)
rf_config() {
	local path=${RF_APP:-} port=${RF_PORT:-22} identity=${RF_KEY:-}
	local known=${RF_KNOWN_HOSTS:-} timeout=5 host=local address=127.0.0.1
	local file=$RF_TMP/relflip.ini extra='' line
	local -a app_lines=() ssh_lines=() host_lines=()

	while [[ $# -gt 0 ]]; do
		case $1 in
		--path) path=$2; shift 2 ;;
		--app) app_lines+=("$2"); shift 2 ;;
		--port) port=$2; shift 2 ;;
		--identity) identity=$2; shift 2 ;;
		--no-identity) identity=; shift ;;
		--known-hosts) known=$2; shift 2 ;;
		--timeout) timeout=$2; shift 2 ;;
		--ssh) ssh_lines+=("$2"); shift 2 ;;
		--host) host=$2; shift 2 ;;
		--address) address=$2; shift 2 ;;
		--host-line) host_lines+=("$2"); shift 2 ;;
		--file) file=$2; shift 2 ;;
		--) shift; break ;;
		-*) rf_log "rf_config: unknown option $1"; return 2 ;;
		*) break ;;
		esac
	done
	extra=${1:-}
	{
		echo "[app]"
		echo "path = $path"
		for line in "${app_lines[@]}"; do echo "$line"; done
		echo
		echo "[ssh]"
		echo "user = root"
		echo "port = $port"
		[[ -z $identity ]] || echo "identity = $identity"
		echo "known_hosts = $known"
		echo "connect_timeout = $timeout"
		for line in "${ssh_lines[@]}"; do echo "$line"; done
		echo
		echo "[host \"$host\"]"
		echo "address = $address"
		for line in "${host_lines[@]}"; do echo "$line"; done
		if [[ -n $extra ]]; then
			echo
			printf '%s\n' "$extra"
		fi
	} >"$file"
	RF_CONFIG=$file
	export RF_CONFIG
}

# rf_app_start PORT [APP_PATH]: the sample app for APP_PATH (default $RF_APP)
# on 127.0.0.1:PORT, detached, through app-ctl (as a service restart line
# would); waits, bounded, until it accepts connections. Exports RF_APP_PID.
rf_app_start() {
	local port=$1 app=${2:-$RF_APP}

	printf '%s %s\n' "$app" "$port" >>"$RF_TMP/.apps"
	"$RF_LIB/app-ctl" start "$app" "$port" 3>&- || return 1
	if ! rf_poll 10 rf_port_open 127.0.0.1 "$port"; then
		rf_log "the app did not listen on 127.0.0.1:$port within 10 s"
		return 1
	fi
	read -r RF_APP_PID <"$(dirname "$app")/app-$port.pid"
	export RF_APP_PID
}

# rf_app_stop [PORT [APP_PATH]]: stop that app; without PORT (or with ""),
# every app rf_app_start started (and any a service restart line started
# since in its place), by their pidfiles.
rf_app_stop() {
	local app port

	if [[ -n ${1:-} ]]; then
		"$RF_LIB/app-ctl" stop "${2:-$RF_APP}" "$1"
		return
	fi
	[[ -f $RF_TMP/.apps ]] || return 0
	while read -r app port; do
		rf_app_kill "${app%/*}/app-$port.pid"
	done <"$RF_TMP/.apps"
}

# rf_app_url PORT: the health URL of the app on PORT.
rf_app_url() {
	echo "http://127.0.0.1:$1/health"
}

# rf_silent_listener: a TCP listener on 127.0.0.1 that accepts connections
# and never says a word (an SSH port behind a black hole). Exports
# RF_SILENT_PORT and RF_SILENT_PID.
rf_silent_listener() {
	local portfile=$RF_TMP/silent.port

	rm -f "$portfile"
	"$RF_PYTHON" -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.replace(tmp, sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)' "$portfile" </dev/null >>"$RF_TMP/silent.log" 2>&1 3>&- &
	RF_SILENT_PID=$!
	rf_track listener "$RF_SILENT_PID"
	if ! rf_poll 10 test -s "$portfile"; then
		rf_log "the silent listener did not start"
		return 1
	fi
	read -r RF_SILENT_PORT <"$portfile"
	export RF_SILENT_PORT RF_SILENT_PID
}

# ---------------------------------------------------------------------------
# Network-namespace hosts, for fleet tests.
#
# rf_host_start N (1-250) makes host N: a network namespace joined to the
# test by a veth pair, the test side 169.254.S.1/30 and the host side
# 169.254.S.2 (link-local, inside interfaces the test made: nothing leaves
# the machine). N is the host's name in the test (its directory, its
# section hN in rf_host_config); S, its subnet, is picked by rf_host_start
# among the ones no namespace on this machine uses, under a lock, so that
# any number of runs, and host N of two runs, can exist at once. The
# namespace is $RF_NS_PREFIX-S, the test's veth ${RF_NS_PREFIX}vS.
# sshd listens on 169.254.S.2:22 in the namespace, inside its own mount
# namespace where $RF_TMP/hosts/N/srv is mounted on /srv, so every host has
# the same app path, RF_HOST_APP (/srv/relflip-app), and the test can look
# at host N's files in $RF_TMP/hosts/N/srv. Each host has its own host key,
# accepts $RF_KEY, and its loopback is its own (an app on 127.0.0.1:8000 in
# every host). Needs root.
# ---------------------------------------------------------------------------

RF_HOST_APP=/srv/relflip-app
RF_NS_PREFIX=${RF_NS_PREFIX:-rf$$}
RF_HOSTNET_LOCK=${RF_HOSTNET_LOCK:-/tmp/relflip-hostnet.lock}
export RF_HOST_APP RF_NS_PREFIX RF_HOSTNET_LOCK

# rf_host_net N: host N's subnet number S (N itself before rf_host_start).
rf_host_net() {
	local net=

	if [[ -r $RF_TMP/hosts/$1/net ]]; then
		read -r net <"$RF_TMP/hosts/$1/net"
	fi
	echo "${net:-$1}"
}

rf_host_ns() {
	echo "$RF_NS_PREFIX-$(rf_host_net "$1")"
}

rf_host_addr() {
	echo "169.254.$(rf_host_net "$1").2"
}

rf_host_veth() {
	echo "${RF_NS_PREFIX}v$(rf_host_net "$1")"
}

# rf_host_dir N [PATH]: where host N's /srv (or PATH under the app path) is,
# seen from the test.
rf_host_dir() {
	if [[ $# -gt 1 ]]; then
		echo "$RF_TMP/hosts/$1/srv/relflip-app/$2"
	else
		echo "$RF_TMP/hosts/$1/srv"
	fi
}

# rf_host_net_free S: no address of this (the test's) namespace is in
# 169.254.S.0/24, and no namespace is named after S.
rf_host_net_free() {
	local addrs=$2

	[[ $addrs != *" 169.254.$1."* ]] || return 1
	! compgen -G "/run/netns/*-$1" >/dev/null
}

# rf_host_net_up N: pick host N's subnet and make its namespace and veth
# pair, under $RF_HOSTNET_LOCK (held for the few ip(8) calls only). Picks
# from 250 down, away from the low numbers older test code used fixed.
rf_host_net_up() {
	local n=$1 lockfd net addrs ns veth rc=1

	exec {lockfd}>>"$RF_HOSTNET_LOCK"
	if ! flock -w 120 "$lockfd"; then
		rf_log "host $n: $RF_HOSTNET_LOCK held for over 120 s"
		exec {lockfd}>&-
		return 1
	fi
	addrs=" $(ip -o -4 addr show 2>/dev/null | awk '{ print $4 }' | tr '\n' ' ')"
	for ((net = 250; net >= 1; net--)); do
		rf_host_net_free "$net" "$addrs" && break
	done
	if ((net < 1)); then
		rf_log "host $n: every subnet 169.254.1-250.0/30 is in use"
	else
		echo "$net" >"$RF_TMP/hosts/$n/net"
		ns=$RF_NS_PREFIX-$net
		veth=${RF_NS_PREFIX}v$net
		if ip netns add "$ns" {lockfd}>&-; then
			rf_track netns "$ns" "$veth"
			# For scripts/check.sh, which checks none is left.
			[[ -z ${RF_NS_LOG:-} ]] || echo "$ns" >>"$RF_NS_LOG"
			ip -n "$ns" link set lo up {lockfd}>&- &&
				ip link add "$veth" type veth peer name "${veth}p" netns "$ns" {lockfd}>&- &&
				ip addr add "169.254.$net.1/30" dev "$veth" {lockfd}>&- &&
				ip link set "$veth" up {lockfd}>&- &&
				ip -n "$ns" addr add "169.254.$net.2/30" dev "${veth}p" {lockfd}>&- &&
				ip -n "$ns" link set "${veth}p" up {lockfd}>&- &&
				rc=0
		fi
	fi
	flock -u "$lockfd"
	exec {lockfd}>&-
	return "$rc"
}

rf_host_start() {
	local n=$1 dir

	if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 250)); then
		rf_log "rf_host_start: host number 1-250, not '$n'"
		return 2
	fi
	dir=$RF_TMP/hosts/$n
	mkdir -p "$dir/srv" /run/sshd
	rf_client_key
	rf_host_net_up "$n" || return 1
	rf_keygen "$dir/host_ed25519_key"
	rf_sshd_write_config "$dir" "$(rf_host_addr "$n")" 22
	rf_sshd_check "$dir/sshd_config" "$dir/sshd.log" || {
		rf_log "sshd -t rejected $dir/sshd_config"
		return 1
	}
	rf_known_hosts_add "$(rf_host_addr "$n")" 22 "$dir/host_ed25519_key.pub"
	rf_host_sshd_launch "$n"
}

# rf_host_sshd_launch N: start host N's sshd in its namespace (made by
# rf_host_start) and wait, bounded, until it answers. Also what brings back
# an sshd that a test stopped.
rf_host_sshd_launch() {
	local n=$1 dir=$RF_TMP/hosts/$1 addr pid

	addr=$(rf_host_addr "$n")
	# ip netns exec, unshare and sh all exec: $! ends up being sshd's PID.
	# shellcheck disable=SC2016 # $1-$3 are sh's, not ours
	ip netns exec "$(rf_host_ns "$n")" unshare --mount --propagation private \
		sh -c 'mount --bind "$1" /srv && exec "$2" $4 -D -e -f "$3"' \
		rf-host "$dir/srv" "$RF_SSHD" "$dir/sshd_config" "${RF_SSHD_R:-}" \
		</dev/null >>"$dir/sshd.log" 2>&1 3>&- &
	pid=$!
	rf_track hostsshd "$pid" "$n"
	echo "$pid" >"$dir/sshd.launch-pid"
	if ! rf_poll 10 rf_host_sshd_up "$pid" "$addr"; then
		rf_log "host $n: sshd did not accept ssh within 10 s (see $dir/sshd.log)"
		return 1
	fi
	if ! rf_pid_alive "$pid"; then
		rf_log "host $n: sshd exited (see $dir/sshd.log)"
		return 1
	fi
}

rf_host_sshd_up() {
	rf_pid_alive "$1" || return 0
	rf_ssh_banner 22 "$2"
}

# rf_host_ssh N CMD...: run CMD on host N (inside its namespaces).
rf_host_ssh() {
	local n=$1

	shift
	rf_ssh -p 22 -a "$(rf_host_addr "$n")" "$@"
}

# rf_host_app_start N PORT: the sample app in host N, on its own
# 127.0.0.1:PORT, for RF_HOST_APP; bounded wait until it listens.
rf_host_app_start() {
	local n=$1 port=$2

	printf '%s %s\n' "$n" "$port" >>"$RF_TMP/.hostapps"
	rf_host_ssh "$n" "$RF_LIB/app-ctl start $RF_HOST_APP $port" || return 1
	if ! rf_poll 10 rf_host_ssh "$n" "exec 9<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
		rf_log "host $n: the app did not listen on port $port within 10 s"
		return 1
	fi
}

# rf_host_config N... [-- EXTRA_INI_TEXT]: a config with one [host "hN"] per
# host, roles "web" (and "primary" on the first), app path RF_HOST_APP.
rf_host_config() {
	local n first=1 extra=''
	local -a hosts=()

	while [[ $# -gt 0 ]]; do
		if [[ $1 == -- ]]; then
			extra=${2:-}
			break
		fi
		hosts+=("$1")
		shift
	done
	rf_client_key
	{
		echo "[app]"
		echo "path = $RF_HOST_APP"
		echo
		echo "[ssh]"
		echo "user = root"
		echo "port = 22"
		echo "identity = $RF_KEY"
		echo "known_hosts = $RF_KNOWN_HOSTS"
		echo "connect_timeout = 5"
		for n in "${hosts[@]}"; do
			echo
			echo "[host \"h$n\"]"
			echo "address = $(rf_host_addr "$n")"
			if ((first)); then
				echo "roles = web primary"
				first=0
			else
				echo "roles = web"
			fi
		done
		if [[ -n $extra ]]; then
			echo
			printf '%s\n' "$extra"
		fi
	} >"$RF_TMP/relflip.ini"
	RF_CONFIG=$RF_TMP/relflip.ini
	export RF_CONFIG
}

# rf_host_stop_all: stop every process in every host namespace made (sshd,
# apps, anything a hook left), then remove the namespaces and interfaces.
rf_host_stop_all() {
	local kind ns veth pid n port

	if [[ -f $RF_TMP/.hostapps ]]; then
		while read -r n port; do
			rf_app_kill "$(rf_host_dir "$n")/app-$port.pid"
		done <"$RF_TMP/.hostapps"
	fi
	[[ -f $RF_TMP/.procs ]] || return 0
	while read -r kind pid _; do
		[[ $kind == hostsshd ]] && rf_kill_pid "$pid"
	done <"$RF_TMP/.procs"
	while read -r kind ns veth; do
		[[ $kind == netns ]] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			rf_kill_pid "$pid"
		done
		ip link del "$veth" 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done <"$RF_TMP/.procs"
}

# rf_leftover_ns: the namespaces of this RF_NS_PREFIX still there (none
# once rf_cleanup ran for every RF_TMP that made some).
rf_leftover_ns() {
	ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$RF_NS_PREFIX-[0-9]+$" || true
}

# rf_app_kill PIDFILE: what `app-ctl stop` does, in bash: stop the sample
# app of PIDFILE (when that PID still is an app.py) and remove PIDFILE.
rf_app_kill() {
	local pid='' args=()

	[[ -e $1 ]] || return 0
	read -r pid <"$1" || true
	if rf_pid_alive "$pid"; then
		mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline"
		[[ " ${args[*]} " != *app.py* ]] || rf_kill_pid "$pid"
	fi
	rm -f "$1"
}

# rf_app_sweep: stop every sample app whose pidfile is where the helpers put
# app paths under $RF_TMP: the apps a service restart line started, too.
rf_app_sweep() {
	local f

	for f in "$RF_TMP"/srv/app-*.pid "$RF_TMP"/*/srv/app-*.pid \
		"$RF_TMP"/hosts/*/srv/app-*.pid; do
		rf_app_kill "$f"
	done
}

# rf_cleanup: stop everything this RF_TMP started, by PID. Safe to call
# twice, and from an EXIT trap.
rf_cleanup() {
	local kind pid detail

	[[ -n ${RF_TMP:-} && -d $RF_TMP ]] || return 0
	rf_app_stop "" || true
	rf_app_sweep || true
	rf_host_stop_all || true
	if [[ -f $RF_TMP/.procs ]]; then
		while read -r kind pid detail; do
			case $kind in
			sshd | listener | proc) rf_kill_pid "$pid" ;;
			esac
		done <"$RF_TMP/.procs"
	fi
	return 0
}
