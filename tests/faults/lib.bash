# shellcheck shell=bash
# The fault harness: one cell = one relflip command, one stage, one fault.
#
#   fault_cell SCENARIO STAGE FAULT
#
# sets up a server (sshd on loopback, the sample app, a netem-proxy in front
# of sshd with a WAN-like delay), deploys the baseline straight to sshd (v2
# live; v1 under it for rollback, v0 and v1 for prune), then
# runs SCENARIO's relflip command through the proxy with --json; a watcher
# reads the events line by line and injects FAULT when STAGE begins. Then it
# restores the server, asserts the invariants, and runs the follow-ups. It
# prints one line: "CELL RESULT DETAIL" and returns 0 (pass), 1 (fail) or 2
# (skip: the stage never began). The server's files are kept (and their
# place printed) when the cell failed and FAULTS_KEEP=1, or always with
# FAULTS_KEEP=all.
#
# Scenarios (what the faulted command is):
#   deploy     deploy v3 (healthy) over v2
#   deploybad  deploy v3 whose health check fails: reaches rollback
#   rollback   relflip rollback (v2 -> v1)
#   prune      relflip prune --keep 1 (v0 goes)
#   longhook   deploy v3 whose install hook prints a line, then runs
#              `sleep 30` (with a marker): hit once that line came (the
#              hook is that long in the faulted run only: the baseline and
#              the follow-ups would spend 90 s in it)
#   disk       deploy v3 onto an app path on a small tmpfs
# Faults:
#   kill9      SIGKILL to relflip when the stage begins
#   term       SIGTERM to relflip when the stage begins
#   cut        the proxy resets the connection
#   blackhole  the proxy forwards nothing: relflip must give up by itself;
#              the proxy resumes afterwards
#   sshdkill   sshd (listener and per-connection processes) gets SIGKILL;
#              it is started again afterwards
#   full       (disk only) the tmpfs is filled to the last byte, with the
#              connection held meanwhile
#
# Invariants, after relflip exited (or was killed):
#   exit       not 1 (internal error) and not killed by a signal it did not
#              get; a failure says "relflip: error:" on stderr
#   bounded    relflip gave up within FAULTS_GIVEUP seconds (default 150:
#              the upload's I/O timeout is 120 s, plus grace); after a
#              black hole anywhere but in the upload, within
#              FAULTS_SILENCE_GIVEUP seconds of it (default 45: every other
#              remote step runs in the agent, and a server silent for 35 s
#              is given up on; plus 5 s of grace and 5 of slack)
#   state      invariants.py: current valid, one live record equal to
#              current, records and log parse
#   lock       released, or held with a readable holder (lock/info with
#              user= and since=); `relflip unlock` (or else --force) clears it
#   orphans    no process relflip started on the server (hooks, remote
#              steps: anything with the app path or the hook marker in its
#              command line, the sample app aside) within 5 s
#   redeploy   deploying the same revision again exits 0 and makes it live
#              (deploybad: the bad release again exits 8 with v2 live, or
#              9 with v3 live where the fault stopped the way back)
#   next       deploying a new revision exits 0 and makes it live; the
#              state invariants hold after it too
#
# Needs: tests/e2e/lib/hosts.bash and deploy.bash, tests/tools/netem-proxy.bash
# (sourced here), ./relflip and build/tools/netem-proxy, root.

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib/hosts.bash
source "$FAULTS_DIR/../e2e/lib/hosts.bash"
# shellcheck source=tests/e2e/lib/deploy.bash
source "$FAULTS_DIR/../e2e/lib/deploy.bash"
# shellcheck source=tests/tools/netem-proxy.bash
source "$FAULTS_DIR/../tools/netem-proxy.bash"

RF_BIN=${RF_BIN:-$RF_ROOT/relflip}
FAULTS_DELAY_MS=${FAULTS_DELAY_MS:-25}
FAULTS_RATE_MBIT=${FAULTS_RATE_MBIT:-50}
FAULTS_GIVEUP=${FAULTS_GIVEUP:-150}
FAULTS_SILENCE_GIVEUP=${FAULTS_SILENCE_GIVEUP:-45}
export RF_BIN

# The stages each scenario goes through, in order (DESIGN.md, and what
# today's relflip emits). A deploy's prune rides in the record round trip
# and has no begin event.
fault_stages() {
	case $1 in
	deploy) echo "connect lock preflight upload unpack link install migrate switch restart health record prune" ;;
	deploybad) echo "rollback" ;;
	rollback) echo "connect lock switch restart health record" ;;
	prune) echo "connect lock prune" ;;
	longhook) echo "install" ;;
	disk) echo "upload unpack record" ;;
	esac
}

fault_faults() {
	case $1 in
	longhook) echo "kill9 term cut sshdkill" ;;
	disk) echo "full" ;;
	*) echo "kill9 cut blackhole sshdkill" ;;
	esac
}

# ---------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------

# fc_config FILE PORT EXTRA: a relflip config for the cell's server through
# PORT (sshd's own, or the proxy's).
fc_config() {
	local file=$1 port=$2

	rf_config --file "$file" --port "$port" --timeout 5 "[service \"web\"]
restart = $RF_LIB/app-ctl restart \"\$RELFLIP_APP_PATH\" $APP_PORT

[health]
url = $(rf_app_url "$APP_PORT")
interval = 0.2
retries = 25
timeout = 2
deadline = 20

[deploy]
keep_releases = 2
hook_timeout = 40

[hooks]
install = $FC_INSTALL
migrate = sleep 0.2$FC_MARK"
}

# fc_setup SCENARIO: the server, the proxy, the app and the baseline.
fc_setup() {
	local scen=$1 small delay

	FC_MARK=$RANDOM$RANDOM
	FC_INSTALL="sleep 0.3$FC_MARK"
	[[ $scen == longhook ]] &&
		FC_INSTALL="echo hook-started; if [ -e '$RF_TMP/long-hook' ]; then sleep 30.$FC_MARK; fi; echo marker"
	if [[ $scen == disk ]]; then
		small=$RF_TMP/small
		rf_sshd_start_tmpfs 64m "$small" || return 1
		RF_APP=$small/app
	else
		# shellcheck disable=SC2119 # the default name
		rf_sshd_start || return 1
	fi
	export RF_APP
	FC_SSHD_PORT=$RF_PORT
	# The disk is filled while the proxy holds the stage's first command:
	# a longer delay leaves the watcher time for that on a loaded machine.
	delay=$FAULTS_DELAY_MS
	[[ $scen == disk ]] && delay=${FAULTS_DISK_DELAY_MS:-150}
	rf_proxy_start p "$RF_PORT" --delay-ms "$delay" \
		--rate-mbit "$FAULTS_RATE_MBIT" || return 1
	rf_known_hosts_add 127.0.0.1 "$RF_PROXY_PORT" "$RF_HOST_KEY"
	APP_PORT=$(rf_free_port)
	if [[ $scen == disk ]]; then
		# The app must see the tmpfs: start it through that sshd.
		printf '%s %s\n' "$RF_APP" "$APP_PORT" >>"$RF_TMP/.apps"
		rf_ssh "$RF_LIB/app-ctl start '$RF_APP' $APP_PORT" || return 1
	else
		rf_app_start "$APP_PORT" || return 1
	fi
	fc_config "$RF_TMP/direct.ini" "$FC_SSHD_PORT"
	fc_config "$RF_TMP/proxied.ini" "$RF_PROXY_PORT"
	# v2 live before the faulted run; rollback needs v1 under it, and
	# prune something to remove (v0) besides the rollback target.
	FC_BEFORE=v2
	case $scen in
	prune) fc_baseline v0 && fc_baseline v1 || return 1 ;;
	rollback) fc_baseline v1 || return 1 ;;
	esac
	fc_baseline v2
}

# fc_art ID [NAME=CONTENT]...: the cell's artifact for ID, made once; a
# megabyte of random data, so that the upload takes a while.
fc_art() {
	local id=$1 f=$RF_TMP/art/$1.tar.gz src=$RF_TMP/art/src-$1

	shift
	if [[ ! -f $f ]]; then
		mkdir -p "$RF_TMP/art"
		rf_src "$src" "$@"
		rf_random_file "$src/data.bin" $((1024 * 1024))
		"$RF_BIN" pack "$src" -o "$f" --revision "$id" >/dev/null \
			2>>"$RF_TMP/pack.log" 3>&- || return 1
	fi
	printf '%s\n' "$f"
}

# fc_baseline ID: deploy ID straight to sshd; it must go live.
fc_baseline() {
	local art rc=0

	art=$(fc_art "$1") || return 1
	"$RF_BIN" -c "$RF_TMP/direct.ini" deploy "$art" --revision "$1" \
		</dev/null >>"$RF_TMP/baseline.log" 2>&1 3>&- || rc=$?
	if ((rc != 0)); then
		rf_log "baseline deploy of $1 exited $rc (see $RF_TMP/baseline.log)"
		return 1
	fi
}

# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

# fc_sshd_kill: SIGKILL to sshd's listener and every sshd process under
# it (the per-connection ones), not to what they run: an sshd crash.
fc_sshd_kill() {
	local pids pid

	pids=$(fc_descendants "$RF_SSHD_PID")
	kill -KILL "$RF_SSHD_PID" 2>/dev/null
	for pid in $pids; do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == sshd ]] &&
			kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# fc_descendants PID: every process under PID (children first level down).
fc_descendants() {
	local kids k

	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	for k in $kids; do
		echo "$k"
		fc_descendants "$k"
	done
}

# fc_sshd_restart: start sshd again with the same config, key and port
# (the tmpfs one inside a fresh namespace: the tmpfs is gone with the old).
fc_sshd_restart() {
	local dir=$RF_SSHD_DIR pid

	wait "$RF_SSHD_PID" 2>/dev/null
	"$RF_SSHD" -D -e -f "$dir/sshd_config" </dev/null >>"$RF_TMP/sshd.log" 2>&1 3>&- &
	pid=$!
	rf_track sshd "$pid" sshd
	RF_SSHD_PID=$pid
	rf_poll 10 rf_sshd_up "$pid" "$FC_SSHD_PORT" 127.0.0.1 && rf_pid_alive "$pid"
}

# fc_fill_disk: fill the tmpfs the app path lives on, from inside sshd's
# mount namespace (fast: no SSH round trip).
fc_fill_disk() {
	# shellcheck disable=SC2016 # $1 is sh's
	nsenter -t "$RF_SSHD_PID" -m -- sh -c \
		'cat /dev/zero > "$1/filler" 2>/dev/null; true' fill "$RF_TMP/small"
}

fc_unfill_disk() {
	nsenter -t "$RF_SSHD_PID" -m -- rm -f "$RF_TMP/small/filler"
}

# fc_inject FAULT PID: the fault, now.
fc_inject() {
	case $1 in
	kill9) kill -KILL "$2" ;;
	term) kill -TERM "$2" ;;
	cut) rf_proxy_ctl p cut ;;
	blackhole) rf_proxy_ctl p blackhole ;;
	sshdkill) fc_sshd_kill ;;
	full)
		# Hold the stage's first command in the proxy (it is still in
		# the proxy's delay) while the disk fills, so that it meets a
		# full disk.
		rf_proxy_ctl p blackhole
		fc_fill_disk
		rf_proxy_ctl p resume
		;;
	esac
}

# fc_restore FAULT: make the server reachable again for the follow-ups.
fc_restore() {
	case $1 in
	blackhole) rf_proxy_ctl p resume ;;
	sshdkill) fc_sshd_restart ;;
	full) fc_unfill_disk ;;
	esac
}

# ---------------------------------------------------------------------------
# The faulted run
# ---------------------------------------------------------------------------

# fc_command SCENARIO: the relflip arguments of the faulted command.
fc_command() {
	case $1 in
	deploy | longhook | disk) FC_ARGS=(deploy "$(fc_art v3)" --revision v3) ;;
	deploybad) FC_ARGS=(deploy "$(fc_art v3 HEALTH_STATUS=503)" --revision v3) ;;
	rollback) FC_ARGS=(rollback) ;;
	prune) FC_ARGS=(prune --keep 1) ;;
	esac
}

# fc_run STAGE FAULT: relflip FC_ARGS through the proxy, its events read by
# the watcher, which injects FAULT when STAGE begins (for the long hook:
# when the hook printed its first line, so that it runs). Sets FC_RC (exit
# status), FC_FIRED (1 when the fault was injected), FC_LATE (1 when the
# stage still ended ok afterwards), FC_HUNG (1 when relflip had to be
# killed after FAULTS_GIVEUP s), FC_MS (run time), FC_FIRED_MS (when the
# fault was in place, in ms from the start).
fc_run() {
	local stage=$1 fault=$2 fifo=$RF_TMP/events.fifo pid line t0 deadline
	local begin end

	begin="\"stage\": \"$stage\", \"phase\": \"begin\""
	# The long hook is hit once it runs: at its first line of output.
	[[ $FC_SCEN == longhook ]] && begin='"line": "hook-started"'
	end="\"stage\": \"$stage\", \"phase\": \"end\""
	FC_FIRED=0 FC_LATE=0 FC_HUNG=0 FC_FIRED_MS=0 FC_RC=
	rm -f "$fifo"
	mkfifo "$fifo"
	t0=$(rf_now_ms)
	env --default-signal=INT,TERM "$RF_BIN" -c "$RF_TMP/proxied.ini" --json "${FC_ARGS[@]}" \
		</dev/null >"$fifo" 2>"$RF_TMP/run.err" 3>&- &
	pid=$!
	rf_track proc "$pid" relflip
	deadline=$((t0 + FAULTS_GIVEUP * 1000))
	exec 8<"$fifo"
	while :; do
		if IFS= read -r -t 1 line <&8; then
			printf '%s\n' "$line" >>"$RF_TMP/run.json"
			if ((!FC_FIRED)) && [[ $line == *"$begin"* ]]; then
				fc_inject "$fault" "$pid"
				FC_FIRED=1
				FC_FIRED_MS=$(($(rf_now_ms) - t0))
				printf '%s fault %s injected\n' "$(rf_now_ms)" "$fault" >>"$RF_TMP/run.json.notes"
			elif ((FC_FIRED)) && [[ $line == *"$end"* && $line == *'"ok": true'* ]]; then
				FC_LATE=1
			fi
			continue
		fi
		# EOF (relflip closed stdout) or a quiet second.
		if rf_pid_dead "$pid"; then
			# Drain what is left in the pipe.
			while IFS= read -r -t 0.2 line <&8; do
				printf '%s\n' "$line" >>"$RF_TMP/run.json"
			done
			break
		fi
		if (($(rf_now_ms) > deadline)); then
			FC_HUNG=1
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	exec 8<&-
	FC_RC=0
	wait "$pid" || FC_RC=$?
	FC_MS=$(($(rf_now_ms) - t0))
}

# ---------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------

FC_BROKEN=()

fc_broken() {
	FC_BROKEN+=("$*")
}

# fc_app_sh CMD: a shell command where the app path is (through sshd for
# the tmpfs, which only sshd's namespace sees).
fc_app_sh() {
	if [[ $FC_SCEN == disk ]]; then
		nsenter -t "$RF_SSHD_PID" -m -- sh -c "$1"
	else
		sh -c "$1"
	fi
}

# fc_leftovers: processes relflip started on the server that still run:
# whatever a session of the cell's sshd started (fc_session_pids: the
# agent, its steps and their children, orphaned or not), and anything with
# the hook marker or the app path in its command line. app.py, which the
# service restart is meant to leave running, apart. One "PID CMD" a line.
fc_leftovers() {
	local pid cmd
	local -A seen=()

	for pid in $(fc_session_pids) $(pgrep -f -- "$FC_MARK|$RF_APP"); do
		[[ -z ${seen[$pid]:-} ]] || continue
		seen[$pid]=1
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		cmd=$(tr '\0\n' '  ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
		[[ -z $cmd || $cmd == *app.py* || $cmd == *pgrep* ]] && continue
		# Our own helpers (nsenter, this shell) are not the server's.
		[[ $cmd == nsenter* || $cmd == *fault_cell* || $cmd == *matrix.sh* ]] && continue
		printf '%s %s\n' "$pid" "${cmd:0:100}"
	done
}

# fc_session_pids: the processes whose SSH_CONNECTION names the cell's
# sshd port: every remote step runs in the agent, a shell whose
# command line names neither the app path nor the hook, and what a
# session starts keeps that variable even once its parents are gone.
fc_session_pids() {
	[[ -n ${FC_SSHD_PORT:-} ]] || return 0
	grep -lzxE -- "SSH_CONNECTION=[^ ]+ [0-9]+ [^ ]+ $FC_SSHD_PORT" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}

fc_no_leftovers() {
	[[ -z $(fc_leftovers) ]]
}

# fc_check_exit FAULT STAGE: the exit status fits the fault.
fc_check_exit() {
	local fault=$1 stage=$2

	case $fault in
	full)
		if [[ $stage == upload || $stage == unpack ]] && ((FC_RC != 6)); then
			fc_broken "exit: $FC_RC with the disk full during $stage (DESIGN: 6): $(fc_err_line)"
		fi
		if ((FC_RC != 0)) && ! grep -E '^(relflip: error|hint):' "$RF_TMP/run.err" |
			grep -qiE 'no space|disk( is)? full|not enough disk|ENOSPC'; then
			fc_broken "message: does not say the disk is full: $(fc_err_line)"
		fi
		;;
	kill9)
		((FC_RC == 137)) || fc_broken "exit: $FC_RC after SIGKILL (expected 137)"
		return
		;;
	term)
		((FC_RC == 130 || FC_RC == 0)) ||
			fc_broken "exit: $FC_RC after SIGTERM (DESIGN: 130, current valid, lock released)"
		;;
	esac
	if ((FC_HUNG)); then
		fc_broken "bounded: relflip still ran after ${FAULTS_GIVEUP}s; killed"
		return
	fi
	if [[ $fault == blackhole && $stage != upload ]] &&
		((FC_MS - FC_FIRED_MS > FAULTS_SILENCE_GIVEUP * 1000)); then
		fc_broken "bounded: relflip ran $(((FC_MS - FC_FIRED_MS) / 1000)) s into the black hole at $stage (allowed: ${FAULTS_SILENCE_GIVEUP} s; a server silent for 35 s is given up on)"
	fi
	if ((FC_RC == 1)); then
		fc_broken "exit: 1 (internal error): $(fc_err_line)"
	elif ((FC_RC > 128 && FC_RC != 130)); then
		fc_broken "exit: $FC_RC (died of signal $((FC_RC - 128)))"
	elif ((FC_RC != 0)) && ! grep -q '^relflip: error:' "$RF_TMP/run.err"; then
		fc_broken "exit: $FC_RC with no 'relflip: error:' line on stderr"
	fi
}

fc_err_line() {
	grep -m1 '^relflip: error:' "$RF_TMP/run.err" | cut -c1-160
}

# fc_check_lock: released, or held with readable holder info and cleared
# by unlock (plain, else --force). Sets FC_LOCK_LEFT.
fc_check_lock() {
	local info rc=0 how

	FC_LOCK_LEFT=
	fc_app_sh "test -e '$RF_APP/.relflip/lock'" || return 0
	info=$(fc_app_sh "cat '$RF_APP/.relflip/lock/info'" 2>/dev/null)
	FC_LOCK_LEFT=held
	if [[ $info != *user=* || $info != *since=* ]]; then
		fc_broken "lock: held without readable holder info (lock/info: '${info:0:80}')"
	fi
	how=unlock
	"$RF_BIN" -c "$RF_TMP/direct.ini" unlock </dev/null >>"$RF_TMP/follow.log" 2>&1 3>&- || rc=$?
	if ((rc != 0)); then
		how="unlock --force"
		rc=0
		"$RF_BIN" -c "$RF_TMP/direct.ini" unlock --force </dev/null \
			>>"$RF_TMP/follow.log" 2>&1 3>&- || rc=$?
	fi
	if fc_app_sh "test -e '$RF_APP/.relflip/lock'"; then
		fc_broken "lock: still there after relflip unlock --force (exit $rc)"
	fi
	FC_LOCK_LEFT="held, cleared by $how"
}

# fc_follow NAME ID WANT_RC WANT_LIVE [NAME=CONTENT]...: deploy ID straight
# to sshd (the proxy is done with); it must exit WANT_RC and leave current
# at WANT_LIVE.
fc_follow() {
	local name=$1 id=$2 want=$3 want_live=$4 art rc=0 live

	shift 4
	art=$(fc_art "$id" "$@")
	"$RF_BIN" -c "$RF_TMP/direct.ini" deploy "$art" --revision "$id" \
		</dev/null >>"$RF_TMP/follow.log" 2>&1 3>&- || rc=$?
	live=$(fc_app_sh "readlink '$RF_APP/current'")
	if ((rc != want)); then
		fc_broken "$name: deploy $id exited $rc, not $want: $(grep '^relflip: error:' "$RF_TMP/follow.log" | tail -n 1 | cut -c1-160)"
	elif [[ $live != "releases/$want_live" ]]; then
		fc_broken "$name: deploy $id exited $rc but current -> $live, not releases/$want_live"
	fi
}

# fc_check_state [WHEN]: invariants.py on the app path.
fc_check_state() {
	local out when=${1:-}

	if [[ $FC_SCEN == disk ]]; then
		out=$(nsenter -t "$RF_SSHD_PID" -m -- "$RF_PYTHON" "$FAULTS_DIR/invariants.py" \
			"$RF_APP" "$FC_BEFORE" 2>&1)
	else
		out=$("$RF_PYTHON" "$FAULTS_DIR/invariants.py" "$RF_APP" "$FC_BEFORE" 2>&1)
	fi
	while IFS= read -r line; do
		[[ -n $line ]] && fc_broken "state$when: $line"
	done <<<"$out"
}

# ---------------------------------------------------------------------------
# The cell
# ---------------------------------------------------------------------------

fc_kill_leftovers() {
	local pid

	for pid in $(fc_leftovers | cut -d' ' -f1); do
		kill -KILL "$pid" 2>/dev/null
	done
}

# fc_cleanup: stop what the cell started, by PID (the tmpfs app only
# through sshd's namespace, where its pidfile is).
fc_cleanup() {
	local app port

	if [[ $FC_SCEN == disk && -f $RF_TMP/.apps ]] && rf_pid_alive "${RF_SSHD_PID:-}"; then
		while read -r app port; do
			nsenter -t "$RF_SSHD_PID" -m -- "$RF_LIB/app-ctl" stop "$app" "$port"
		done <"$RF_TMP/.apps"
		rm -f "$RF_TMP/.apps"
	fi
	fc_kill_leftovers
	rf_cleanup
}

# fault_cell SCENARIO STAGE FAULT: run the cell in a fresh RF_TMP; print
# its line; 0 pass, 1 fail, 2 skip.
fault_cell() {
	local scen=$1 stage=$2 fault=$3 cell="$1:$2 x $3" result detail left r
	local base=${TMPDIR:-/tmp} same

	FC_SCEN=$scen
	FC_BROKEN=()
	FC_SSHD_PORT=
	RF_TMP=$(mktemp -d "$base/relflip-fault.XXXXXX")
	mkdir -p "$RF_TMP/srv"
	RF_APP=$RF_TMP/srv/app
	RF_KNOWN_HOSTS=$RF_TMP/known_hosts
	: >"$RF_KNOWN_HOSTS"
	unset RF_PORT RF_SSHD_PID RF_KEY
	export RF_TMP RF_APP RF_KNOWN_HOSTS

	if ! fc_setup "$scen" 2>>"$RF_TMP/setup.log"; then
		printf '%-28s %-5s %s\n' "$cell" SETUP "set-up failed: $(tail -n 1 "$RF_TMP/setup.log") ($RF_TMP)"
		fc_cleanup
		return 1
	fi
	fc_command "$scen"
	: >"$RF_TMP/long-hook"
	fc_run "$stage" "$fault" 2>>"$RF_TMP/setup.log"
	rm -f "$RF_TMP/long-hook"
	if ((!FC_FIRED)); then
		r=2
		result=SKIP
		detail="stage '$stage' never began (exit $FC_RC)"
	else
		fc_restore "$fault" 2>>"$RF_TMP/setup.log" ||
			fc_broken "harness: could not restore after $fault"
		fc_check_exit "$fault" "$stage"
		if ! rf_poll 5 fc_no_leftovers; then
			left=$(fc_leftovers | head -n 3 | cut -d' ' -f2- | tr '\n' ';')
			fc_broken "orphans: still running 5 s after relflip ended: $left"
			fc_kill_leftovers
		fi
		fc_check_state
		fc_check_lock
		# The same revision again (the live one before, for rollback and
		# prune), then a new one.
		case $scen in
		rollback | prune) same=v2 ;;
		*) same=v3 ;;
		esac
		if [[ $scen == deploybad ]]; then
			# The bad release again: back to v2, exit 8. Where the
			# fault stopped the way back, v3 is live, and a failed
			# redeploy of the live release has no release to go
			# back to but itself: exit 9, v3 stays.
			if [[ $(fc_app_sh "readlink '$RF_APP/current'") == releases/v3 ]]; then
				fc_follow redeploy v3 9 v3 HEALTH_STATUS=503
			else
				fc_follow redeploy v3 8 v2 HEALTH_STATUS=503
			fi
		else
			fc_follow redeploy "$same" 0 "$same"
		fi
		fc_follow next v4 0 v4
		FC_BEFORE=v4 fc_check_state " after the follow-ups"
		if ((${#FC_BROKEN[@]} == 0)); then
			r=0
			result=ok
		else
			r=1
			result=FAIL
		fi
		detail="exit $FC_RC, ${FC_MS} ms"
		((FC_LATE)) && detail+=", stage ended ok after the fault"
		[[ -n $FC_LOCK_LEFT ]] && detail+=", lock $FC_LOCK_LEFT"
		for left in "${FC_BROKEN[@]}"; do
			detail+=$'\n'"      - $left"
		done
	fi
	printf '%-28s %-5s %s\n' "$cell" "$result" "$detail"
	fc_cleanup
	if [[ ${FAULTS_KEEP:-} == all ]] || { ((r == 1)) && [[ ${FAULTS_KEEP:-} == 1 ]]; }; then
		printf '      (kept %s)\n' "$RF_TMP"
	else
		rm -rf "$RF_TMP"
	fi
	return "$r"
}
