# shellcheck shell=bash
# Helpers for tests/e2e/jump.bats: servers that only a jump host can reach.
#
# A node is a hosts.bash host (network namespace $RF_NS_PREFIX-S on a free
# subnet S picked by rf_host_net_up, its own sshd on 169.254.S.2:22, /srv
# mounted from $RF_TMP/hosts/N/srv, host key in known_hosts), except that
# the near end of its veth pair may hang off another node's namespace
# instead of the test's: then only that node reaches it. So a bastion hangs
# off the test's namespace (the runner reaches it), and the servers hang off
# the bastion's (only the bastion reaches them). N is the node's name in the
# test (rf_host_ns, rf_host_addr and rf_host_veth work on it). The caller
# loads lib/sshd and lib/fleet first; everything is tracked in
# $RF_TMP/.procs, so rf_cleanup stops and removes it.
#
# The nodes of a file are started once, in setup_file (RF_TMP set to
# $RF_FILE_TMP around rf_jump_start), and each test borrows them in setup
# (rf_jump_use), as rf_fleet_use does for a fleet.

# rf_jump_in PARENT CMD...: run CMD in node PARENT's namespace, or in the
# test's own when PARENT is empty.
rf_jump_in() {
	local parent=$1

	shift
	if [[ -z $parent ]]; then
		"$@"
	else
		ip netns exec "$(rf_host_ns "$parent")" "$@"
	fi
}

# rf_jump_banner PARENT N: node N's sshd sends its version line, within 2 s,
# to a connection made from where PARENT is. Bounded even where the test's
# namespace has a default route that accepts any connection and stays
# silent.
rf_jump_banner() {
	# shellcheck disable=SC2016 # $1 is the inner bash's
	rf_jump_in "$1" timeout 3 bash -c \
		'exec 9<>"/dev/tcp/$1/22" && read -r -t 2 line <&9 && [[ $line == SSH-2.0-* ]]' \
		rf-banner "$(rf_host_addr "$2")" </dev/null 2>/dev/null 3>&-
}

rf_jump_sshd_up() {
	rf_pid_alive "$1" || return 0
	rf_jump_banner "$2" "$3"
}

# rf_jump_start N [PARENT [SED]]: make node N and start its sshd, linked to
# PARENT's namespace (the test's when empty). SED, when given, edits the
# node's sshd_config (e.g.
# 's/^AllowTcpForwarding .*/AllowTcpForwarding no/').
rf_jump_start() {
	local n=$1 parent=${2:-} edit=${3:-} dir=$RF_TMP/hosts/$1 pns veth net addr

	mkdir -p "$dir/srv" /run/sshd
	rf_client_key
	printf '%s\n' "$parent" >"$dir/parent"
	rf_host_net_up "$n" || return 1
	if [[ -n $parent ]]; then
		# rf_host_net_up put the near end in the test's namespace: move
		# it to the parent's (which drops its address), so that only
		# the parent reaches the node. The namespace's name keeps the
		# subnet taken meanwhile.
		pns=$(rf_host_ns "$parent")
		veth=$(rf_host_veth "$n")
		net=$(rf_host_net "$n")
		if ! { ip link set "$veth" netns "$pns" &&
			ip -n "$pns" addr add "169.254.$net.1/30" dev "$veth" &&
			ip -n "$pns" link set "$veth" up; }; then
			rf_log "node $n: could not move $veth into node $parent's namespace $pns"
			return 1
		fi
	fi
	addr=$(rf_host_addr "$n")
	rf_keygen "$dir/host_ed25519_key"
	rf_sshd_write_config "$dir" "$addr" 22
	[[ -z $edit ]] || sed -i "$edit" "$dir/sshd_config"
	rf_sshd_check "$dir/sshd_config" "$dir/sshd.log" || {
		rf_log "node $n: sshd -t rejected $dir/sshd_config (see $dir/sshd.log)"
		return 1
	}
	rf_known_hosts_add "$addr" 22 "$dir/host_ed25519_key.pub"
	rf_jump_sshd_launch "$n"
}

# rf_jump_sshd_launch N: start node N's sshd (made by rf_jump_start) and
# wait, bounded, until it answers where its parent is. Also what brings
# back an sshd that a test stopped.
rf_jump_sshd_launch() {
	local n=$1 dir=$RF_TMP/hosts/$1 parent pid

	read -r parent <"$dir/parent"
	if [[ -z $parent ]]; then
		rf_host_sshd_launch "$n"
		return
	fi
	# ip netns exec, unshare and sh all exec: $! ends up being sshd's PID.
	# shellcheck disable=SC2016 # $1-$4 are sh's, not ours
	ip netns exec "$(rf_host_ns "$n")" unshare --mount --propagation private \
		sh -c 'mount --bind "$1" /srv && exec "$2" $4 -D -e -f "$3"' \
		rf-node "$dir/srv" "$RF_SSHD" "$dir/sshd_config" "${RF_SSHD_R:-}" \
		</dev/null >>"$dir/sshd.log" 2>&1 3>&- &
	pid=$!
	rf_track hostsshd "$pid" "$n"
	echo "$pid" >"$dir/sshd.launch-pid"
	if ! rf_poll 10 rf_jump_sshd_up "$pid" "$parent" "$n"; then
		rf_log "node $n: sshd did not answer from node $parent within 10 s (see $dir/sshd.log)"
		return 1
	fi
	rf_pid_alive "$pid" || {
		rf_log "node $n: sshd exited (see $dir/sshd.log)"
		return 1
	}
}

# rf_jump_unreachable N...: the runner gets no SSH answer from any node N
# on its own (they are all behind a jump host). Asked at once: each
# question takes its whole 2 s bound when nothing answers.
rf_jump_unreachable() {
	local n pids=() bad=() i=0

	for n in "$@"; do
		rf_jump_banner "" "$n" &
		pids+=("$!")
	done
	for n in "$@"; do
		if wait "${pids[i]}"; then
			bad+=("$n ($(rf_host_addr "$n"))")
		fi
		i=$((i + 1))
	done
	((${#bad[@]} == 0)) || rf_fail "nodes reachable without their jump host: ${bad[*]}"
}

# rf_jump_use: in setup, after rf_tmp_setup: this test's nodes are the
# file's (started in setup_file), as rf_jump_start left them: every /srv
# empty, nothing running in a namespace but its sshd (started again when a
# test stopped it), every host key in this test's known_hosts, and
# $RF_TMP/hosts the file's node directories.
rf_jump_use() {
	local dir n

	if ! compgen -G "${RF_FILE_TMP:-/nonexistent}/hosts/*/sshd.launch-pid" >/dev/null; then
		rf_log "rf_jump_use: the file has no nodes (rf_jump_start in setup_file)"
		return 1
	fi
	rf_file_keys
	ln -sfn "$RF_FILE_TMP/hosts" "$RF_TMP/hosts"
	for dir in "$RF_FILE_TMP"/hosts/*; do
		n=${dir##*/}
		RF_TMP=$RF_FILE_TMP rf_jump_node_reset "$n" || return 1
		rf_known_hosts_add "$(rf_host_addr "$n")" 22 "$dir/host_ed25519_key.pub"
	done
}

# rf_jump_node_reset N (with RF_TMP the directory that started it): stop
# every process in node N's namespace but its sshd, empty its /srv, and
# start its sshd again when it is not running.
rf_jump_node_reset() {
	local n=$1 dir=$RF_TMP/hosts/$1 sshd pid

	read -r sshd <"$dir/sshd.launch-pid"
	for pid in $(ip netns pids "$(rf_host_ns "$n")" 2>/dev/null); do
		[[ $pid == "$sshd" ]] || rf_kill_pid "$pid"
	done
	# Not /srv itself: it is the source of the node's bind mount.
	find "$dir/srv" -mindepth 1 -delete
	rf_pid_alive "$sshd" || rf_jump_sshd_launch "$n"
}

# rf_jump_stop N: stop node N's sshd (its namespace stays: nothing
# listens there any more; the next test's rf_jump_use starts it again).
rf_jump_stop() {
	local pid

	read -r pid <"$RF_TMP/hosts/$1/sshd.launch-pid"
	rf_kill_pid "$pid"
}

# rf_jump_accepted N: SSH connections node N's sshd accepted so far.
rf_jump_accepted() {
	rf_fleet_count "$RF_TMP/hosts/$1/sshd.log" "Accepted publickey"
}

# rf_jump_known_hosts_drop N: remove node N's key from known_hosts.
rf_jump_known_hosts_drop() {
	local addr

	addr=$(rf_host_addr "$1")
	sed -i "/^${addr//./\\.} /d" "$RF_KNOWN_HOSTS"
}

# rf_jump_known_hosts_wrong N: list another key for node N.
rf_jump_known_hosts_wrong() {
	rf_jump_known_hosts_drop "$1"
	rf_keygen "$RF_TMP/other_key_$1"
	rf_known_hosts_add "$(rf_host_addr "$1")" 22 "$RF_TMP/other_key_$1.pub"
}

# rf_jump_config [--ssh LINE]... [--ssh-config TEXT] N... [-- EXTRA]: a
# relflip config for servers N... (sections hK for the K-th), app path
# RF_HOST_APP, [ssh] config = $RF_TMP/ssh_config holding TEXT (empty by
# default), and the extra [ssh] lines given (proxy_jump, usually).
rf_jump_config() {
	local n k=1 extra='' sshcfg='' line
	local -a servers=() ssh_lines=()

	while [[ $# -gt 0 ]]; do
		case $1 in
		--ssh) ssh_lines+=("$2"); shift 2 ;;
		--ssh-config) sshcfg=$2; shift 2 ;;
		--) extra=${2:-}; break ;;
		*) servers+=("$1"); shift ;;
		esac
	done
	rf_client_key
	printf '%s\n' "$sshcfg" >"$RF_TMP/ssh_config"
	{
		echo "[app]"
		echo "path = $RF_HOST_APP"
		echo
		echo "[ssh]"
		echo "user = root"
		echo "identity = $RF_KEY"
		echo "known_hosts = $RF_KNOWN_HOSTS"
		echo "connect_timeout = 5"
		echo "config = $RF_TMP/ssh_config"
		for line in "${ssh_lines[@]}"; do echo "$line"; done
		for n in "${servers[@]}"; do
			echo
			echo "[host \"h$k\"]"
			echo "address = $(rf_host_addr "$n")"
			if ((k == 1)); then echo "roles = web primary"; else echo "roles = web"; fi
			k=$((k + 1))
		done
		if [[ -n $extra ]]; then
			echo
			printf '%s\n' "$extra"
		fi
	} >"$RF_TMP/relflip.ini"
	RF_CONFIG=$RF_TMP/relflip.ini
	export RF_CONFIG
}
