# shellcheck shell=bash
# Helpers for tests/e2e/fleet*.bats and scripts/bench-fleet.sh: a fleet of
# network-namespace hosts (hosts.bash, rf_host_*) started in parallel, a
# config with per-host roles, artifacts, and assertions over every host's
# app tree, release records and sshd log.
#
# Plain bash on top of hosts.bash (no bats needed), so the benchmark can use
# it too. The caller sets RF_TMP and sources hosts.bash (or loads lib/sshd)
# first. Every process started is tracked by PID in $RF_TMP/.procs as
# hosts.bash does, so rf_cleanup stops it.
#
# Hosts are known by their index K (1, 2, ...): the config names them hK.
# Each is a hosts.bash host number (its namespace and $RF_TMP/hosts/NUM),
# picked by rf_fleet_up among the numbers this RF_TMP has not used yet;
# rf_host_start picks each host's subnet among those free on the machine,
# so two runs never talk to each other's servers.

RF_FLEET_NUMS=() # index K -> host number

# rf_fleet_num K: host K's number (K itself when rf_fleet_up did not run).
rf_fleet_num() {
	echo "${RF_FLEET_NUMS[$1]:-$1}"
}

# rf_fleet_number_free NUM: this RF_TMP has no host NUM yet.
rf_fleet_number_free() {
	[[ ! -e $RF_TMP/hosts/$1 ]]
}

# rf_fleet_up COUNT [LOW HIGH]: have COUNT hosts, indexes 1..COUNT: start the
# ones not started yet on host numbers between LOW and HIGH (default
# 11-229) that this RF_TMP has not used, several at once. Sets
# RF_FLEET_NUMS.
rf_fleet_up() {
	local count=$1 low=${2:-11} high=${3:-229} num k
	local -a nums=()

	k=$((${#RF_FLEET_NUMS[@]} + 1))
	((k <= count)) || return 0
	for ((num = low; num <= high && k + ${#nums[@]} <= count; num++)); do
		rf_fleet_number_free "$num" && nums+=("$num")
	done
	if ((k + ${#nums[@]} <= count)); then
		rf_log "rf_fleet_up: only ${#nums[@]} free host numbers in $low-$high, $((count - k + 1)) wanted"
		return 1
	fi
	for num in "${nums[@]}"; do
		RF_FLEET_NUMS[k]=$num
		k=$((k + 1))
	done
	rf_fleet_start_nums "${nums[@]}"
}

# rf_fleet_start_nums NUM...: start the hosts NUM... (rf_host_start), several
# at once (RF_FLEET_JOBS at a time, default 8). Fails, naming them, when
# any host did not come up; what did come up is tracked for rf_cleanup
# either way.
rf_fleet_start_nums() {
	local jobs=${RF_FLEET_JOBS:-8} n rc=0 running=0
	local -a pids=() names=() failed=()
	local i

	# Made once, before the parallel starts race to make it.
	rf_client_key
	mkdir -p /run/sshd
	for n in "$@"; do
		if ((running >= jobs)); then
			# Wait for the oldest still running.
			i=$((${#pids[@]} - running))
			wait "${pids[$i]}" || failed+=("${names[$i]}")
			running=$((running - 1))
		fi
		(rf_host_start "$n") </dev/null 3>&- &
		pids+=("$!")
		names+=("$n")
		running=$((running + 1))
	done
	for ((i = ${#pids[@]} - running; i < ${#pids[@]}; i++)); do
		wait "${pids[$i]}" || failed+=("${names[$i]}")
	done
	if ((${#failed[@]} > 0)); then
		rf_log "hosts that did not start: ${failed[*]}"
		rc=1
	fi
	return "$rc"
}

# rf_fleet_seq N: 1 2 ... N
rf_fleet_seq() {
	local i

	for ((i = 1; i <= $1; i++)); do
		printf '%s ' "$i"
	done
}

# rf_fleet_srv K: host K's /srv, seen from the test.
rf_fleet_srv() {
	echo "$RF_TMP/hosts/$(rf_fleet_num "$1")/srv"
}

# rf_fleet_app K [PATH]: host K's app path (or PATH under it), seen from the
# test.
rf_fleet_app() {
	if [[ $# -gt 1 ]]; then
		echo "$(rf_fleet_srv "$1")/relflip-app/$2"
	else
		echo "$(rf_fleet_srv "$1")/relflip-app"
	fi
}

# rf_fleet_ssh K CMD...: run CMD on host K (rf_host_ssh).
rf_fleet_ssh() {
	local k=$1

	shift
	rf_host_ssh "$(rf_fleet_num "$k")" "$@"
}

# rf_fleet_sshd_pid K: the PID of host K's sshd.
rf_fleet_sshd_pid() {
	cat "$RF_TMP/hosts/$(rf_fleet_num "$1")/sshd.launch-pid"
}

# rf_fleet_config [--roles N=ROLES]... [--deploy LINE]... HOST... [-- EXTRA]:
# write $RF_TMP/relflip.ini (export RF_CONFIG) for the hosts HOST... (host
# numbers; sections named hN). Roles default to "web", plus "primary" on
# the first host; --roles N=ROLES sets host N's roles line (empty: none).
# --deploy adds a line to [deploy]. EXTRA is INI text put at the end.
rf_fleet_config() {
	local n first=1 extra='' line
	local -a hosts=() deploy=()
	local -A roles=()

	while [[ $# -gt 0 ]]; do
		case $1 in
		--roles) roles[${2%%=*}]=${2#*=}; shift 2 ;;
		--deploy) deploy+=("$2"); shift 2 ;;
		--) extra=${2:-}; break ;;
		*) hosts+=("$1"); shift ;;
		esac
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
		if ((${#deploy[@]} > 0)); then
			echo
			echo "[deploy]"
			for line in "${deploy[@]}"; do echo "$line"; done
		fi
		for n in "${hosts[@]}"; do
			echo
			echo "[host \"h$n\"]"
			echo "address = $(rf_host_addr "$(rf_fleet_num "$n")")"
			if [[ -n ${roles[$n]+set} ]]; then
				[[ -z ${roles[$n]} ]] || echo "roles = ${roles[$n]}"
			elif ((first)); then
				echo "roles = web primary"
			else
				echo "roles = web"
			fi
			first=0
		done
		if [[ -n $extra ]]; then
			echo
			printf '%s\n' "$extra"
		fi
	} >"$RF_TMP/relflip.ini"
	RF_CONFIG=$RF_TMP/relflip.ini
	export RF_CONFIG
}

# rf_fleet_health_ini PORT: [service "web"] restarting the sample app on
# PORT (inside each host: its own loopback) and logging the restart to
# /srv/restarts.log on that host; [health] on the app's URL, with short
# intervals so that a failing check gives up within about 4 s, and enough
# tries for a cold Python start on a busy machine.
rf_fleet_health_ini() {
	local port=$1

	cat <<EOF
[service "web"]
restart = echo "web \$RELFLIP_HOST \$RELFLIP_REVISION" >> /srv/restarts.log && $RF_LIB/app-ctl restart "\$RELFLIP_APP_PATH" $port

[health]
url = http://127.0.0.1:$port/health
expect_revision = yes
interval = 0.1
retries = 40
timeout = 2
deadline = 15
EOF
}

# rf_fleet_artifact ID [BYTES]: a release tarball for ID in $RF_TMP/art/
# (index.html, and BYTES of random data in blob.bin when given); prints
# its path. Made with tar(1) alone, not relflip pack.
rf_fleet_artifact() {
	local id=$1 bytes=${2:-} src out

	src=$RF_TMP/art/src-$id
	out=$RF_TMP/art/$id.tar.gz
	rm -rf "$src"
	mkdir -p "$src"
	printf '<h1>hello from %s</h1>\n' "$id" >"$src/index.html"
	if [[ -n $bytes ]]; then
		head -c "$bytes" /dev/urandom >"$src/blob.bin"
	fi
	tar -C "$src" --owner=0 --group=0 --numeric-owner -czf "$out" . || return 1
	printf '%s\n' "$out"
}

# rf_fleet_note_apps PORT K...: list host K's app on PORT for rf_cleanup
# (hosts.bash stops the apps named in .hostapps), for apps that a service
# restart line starts rather than rf_host_app_start.
rf_fleet_note_apps() {
	local port=$1 k

	shift
	for k in "$@"; do
		printf '%s %s\n' "$(rf_fleet_num "$k")" "$port" >>"$RF_TMP/.hostapps"
	done
}

# rf_fleet_live N: the release host N's current points at ("none" when
# there is no current).
rf_fleet_live() {
	local l

	l=$(readlink "$(rf_fleet_app "$1")/current" 2>/dev/null) || {
		echo none
		return 0
	}
	echo "${l##*/}"
}

# rf_fleet_assert_live ID N...: on every host N, current is a symlink to
# releases/ID that resolves to a directory holding REVISION = ID.
rf_fleet_assert_live() {
	local id=$1 n app rev bad=()

	shift
	for n in "$@"; do
		app=$(rf_fleet_app "$n")
		if [[ ! -L $app/current || $(readlink "$app/current") != "releases/$id" ]]; then
			bad+=("h$n:$(rf_fleet_live "$n")")
			continue
		fi
		rev=$(cat "$app/current/REVISION" 2>/dev/null) || rev='(no REVISION)'
		[[ $rev == "$id" ]] || bad+=("h$n:REVISION=$rev")
	done
	if ((${#bad[@]} > 0)); then
		rf_fail "expected $id live on h${*// / h}; got: ${bad[*]}"
		return 1
	fi
}

# rf_fleet_assert_no_app N...: host N has no app path at all.
rf_fleet_assert_no_app() {
	local n bad=()

	for n in "$@"; do
		[[ ! -e $(rf_fleet_app "$n") ]] || bad+=("h$n")
	done
	((${#bad[@]} == 0)) || rf_fail "expected no app path on: ${bad[*]}" \
		"$(for n in "${bad[@]}"; do ls -la "$(rf_fleet_app "${n#h}")"; done 2>&1)"
}

# rf_fleet_serves N PORT TEXT: the app on host N answers TEXT in its body.
# Asked from inside host N's network namespace (its loopback is its own),
# without an SSH connection: it would cost more than the question.
rf_fleet_serves() {
	local body

	body=$(ip netns exec "$(rf_host_ns "$(rf_fleet_num "$1")")" \
		curl -s --max-time 5 "http://127.0.0.1:$2/health" 2>/dev/null) || true
	[[ $body == *"$3"* ]]
}

# rf_fleet_assert_serves PORT TEXT N...: every host's app answers TEXT.
rf_fleet_assert_serves() {
	local port=$1 text=$2 n bad=()

	shift 2
	for n in "$@"; do
		rf_fleet_serves "$n" "$port" "$text" || bad+=("h$n")
	done
	((${#bad[@]} == 0)) || rf_fail "the app does not answer '$text' on: ${bad[*]}"
}

# rf_fleet_record_field N ID FIELD: a field of host N's record of release ID.
rf_fleet_record_field() {
	rf_py '
import json, sys
with open(sys.argv[1]) as f:
    v = json.load(f)[sys.argv[2]]
print(v if isinstance(v, str) else repr(v))
' "$(rf_fleet_app "$1")/.relflip/releases/$2.json" "$3"
}

# rf_fleet_assert_record ID STATUS N...: every host N has a record of
# release ID with that status.
rf_fleet_assert_record() {
	local id=$1 want=$2 n got bad=()

	shift 2
	for n in "$@"; do
		got=$(rf_fleet_record_field "$n" "$id" status 2>/dev/null) || got='(no record)'
		[[ $got == "$want" ]] || bad+=("h$n:$got")
	done
	((${#bad[@]} == 0)) || rf_fail "expected release $id recorded $want on h${*// / h}; got: ${bad[*]}"
}

# rf_fleet_count FILE TEXT: lines of FILE holding TEXT (0 when missing).
rf_fleet_count() {
	local c

	c=$(grep -cF -- "$2" "$1" 2>/dev/null) || true
	echo "${c:-0}"
}

# rf_fleet_accepted N: SSH connections host N's sshd accepted so far (it
# logs "Accepted publickey" once per authenticated connection).
rf_fleet_accepted() {
	rf_fleet_count "$RF_TMP/hosts/$(rf_fleet_num "$1")/sshd.log" "Accepted publickey"
}

# rf_fleet_conn_mark N...: remember every host's accepted count, for
# rf_fleet_assert_conns.
rf_fleet_conn_mark() {
	local n

	: >"$RF_TMP/.conn-mark"
	for n in "$@"; do
		printf '%s %s\n' "$n" "$(rf_fleet_accepted "$n")" >>"$RF_TMP/.conn-mark"
	done
}

# rf_fleet_conns N: connections host N accepted since rf_fleet_conn_mark.
rf_fleet_conns() {
	local n before

	before=$(awk -v n="$1" '$1 == n { print $2 }' "$RF_TMP/.conn-mark")
	n=$(rf_fleet_accepted "$1")
	echo $((n - ${before:-0}))
}

# rf_fleet_assert_conns COUNT N...: every host N accepted exactly COUNT SSH
# connections since rf_fleet_conn_mark.
rf_fleet_assert_conns() {
	local want=$1 n got bad=()

	shift
	for n in "$@"; do
		got=$(rf_fleet_conns "$n")
		[[ $got == "$want" ]] || bad+=("h$n:$got")
	done
	((${#bad[@]} == 0)) ||
		rf_fail "expected exactly $want SSH connection(s) per host; got: ${bad[*]}"
}

# rf_fleet_snapshot N...: record every host's app tree (rf_tree) for
# rf_fleet_assert_unchanged.
rf_fleet_snapshot() {
	local n

	for n in "$@"; do
		rf_tree "$(rf_fleet_app "$n")" >"$RF_TMP/.fsnap-$n"
	done
}

# rf_fleet_assert_unchanged N...: every host's app tree is as
# rf_fleet_snapshot recorded it; prints the diff of each that changed.
rf_fleet_assert_unchanged() {
	local n bad=()

	for n in "$@"; do
		if ! rf_tree "$(rf_fleet_app "$n")" | diff -u "$RF_TMP/.fsnap-$n" - >&2; then
			echo "(h$n, diff above: - before, + after)" >&2
			bad+=("h$n")
		fi
	done
	((${#bad[@]} == 0)) || rf_fail "app trees changed on: ${bad[*]}"
}

# rf_fleet_restarts N [SERVICE]: restarts logged on host N (of SERVICE).
rf_fleet_restarts() {
	rf_fleet_count "$(rf_fleet_srv "$1")/restarts.log" "${2:-}"
}

# rf_fleet_leftover_ns: the namespaces of this RF_NS_PREFIX still there
# (none once rf_cleanup ran).
rf_fleet_leftover_ns() {
	rf_leftover_ns
}

# rf_fleet_summary_live N [TEXT]: the LIVE column of host N's row in the
# per-host summary table relflip prints at the end (HOST RESULT LIVE
# DURATION), in TEXT (default: the last run's stderr).
rf_fleet_summary_live() {
	printf '%s\n' "${2-${stderr-$output}}" | awk -v h="h$1" '
		/HOST +RESULT +LIVE/ { t = 1; next }
		t && $1 == h { live = $(NF - 2) }
		END { print live }'
}

# rf_fleet_assert_summary_live N...: in the last run's summary table, no
# host N whose current points at a release is said to have none live (the
# table may say it does not know, but not that nothing is live).
rf_fleet_assert_summary_live() {
	local n got bad=()

	for n in "$@"; do
		got=$(rf_fleet_summary_live "$n")
		if [[ $got == none && $(rf_fleet_live "$n") != none ]]; then
			bad+=("h$n (live: $(rf_fleet_live "$n"))")
		fi
	done
	((${#bad[@]} == 0)) || rf_fail "the summary table says LIVE none for hosts with a live release: ${bad[*]}" \
		"$(rf_show_run)"
}

# ---------------------------------------------------------------------------
# A fleet shared by the tests of one file (see "Servers shared by the tests
# of one file" in sshd.bash): started once in setup_file, emptied for each
# test in setup.
# ---------------------------------------------------------------------------

# rf_fleet_file_up COUNT: in setup_file, after rf_file_setup: COUNT hosts
# (rf_fleet_up) in $RF_FILE_TMP, for every test of the file.
rf_fleet_file_up() {
	local k

	RF_TMP=$RF_FILE_TMP RF_KNOWN_HOSTS=$RF_FILE_TMP/known_hosts rf_fleet_up "$1" || return 1
	for k in "${!RF_FLEET_NUMS[@]}"; do
		echo "$k ${RF_FLEET_NUMS[k]}"
	done >"$RF_FILE_TMP/fleet-nums"
}

# rf_fleet_use: in setup, after rf_tmp_setup: this test's fleet is the file's
# (rf_fleet_file_up), as rf_fleet_up would leave it: every host's /srv
# empty, nothing running in its namespace but its sshd (started again when
# a test stopped it), its host key in this test's known_hosts, and
# $RF_TMP/hosts the file's host directories. Sets RF_FLEET_NUMS.
rf_fleet_use() {
	local k num pids=() failed=()

	if [[ ! -r ${RF_FILE_TMP:-}/fleet-nums ]]; then
		rf_log "rf_fleet_use: the file has no fleet (rf_fleet_file_up in setup_file)"
		return 1
	fi
	RF_FLEET_NUMS=()
	while read -r k num; do
		RF_FLEET_NUMS[k]=$num
	done <"$RF_FILE_TMP/fleet-nums"
	rf_file_keys
	ln -sfn "$RF_FILE_TMP/hosts" "$RF_TMP/hosts"
	for num in "${RF_FLEET_NUMS[@]}"; do
		RF_TMP=$RF_FILE_TMP rf_fleet_host_reset "$num" </dev/null 3>&- &
		pids+=("$!")
	done
	for k in "${!pids[@]}"; do
		wait "${pids[k]}" || failed+=("${RF_FLEET_NUMS[k + 1]}")
	done
	for num in "${RF_FLEET_NUMS[@]}"; do
		rf_known_hosts_add "$(rf_host_addr "$num")" 22 "$RF_TMP/hosts/$num/host_ed25519_key.pub"
	done
	if ((${#failed[@]} > 0)); then
		rf_log "rf_fleet_use: hosts that could not be reset: ${failed[*]}"
		return 1
	fi
}

# rf_fleet_host_reset NUM (with RF_TMP the directory that started it): stop
# every process in host NUM's namespace but its sshd, empty its /srv, and
# start its sshd again when it is not running.
rf_fleet_host_reset() {
	local num=$1 dir=$RF_TMP/hosts/$1 sshd pid

	read -r sshd <"$dir/sshd.launch-pid"
	for pid in $(ip netns pids "$(rf_host_ns "$num")" 2>/dev/null); do
		[[ $pid == "$sshd" ]] || rf_kill_pid "$pid"
	done
	# Not /srv itself: it is the source of the host's bind mount.
	find "$dir/srv" -mindepth 1 -delete
	rf_pid_alive "$sshd" || rf_host_sshd_launch "$num"
}
