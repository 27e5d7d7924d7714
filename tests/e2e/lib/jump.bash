# shellcheck shell=bash
# Helpers for tests/e2e/jump.bats: servers that only a jump host can reach.
#
# A node is a hosts.bash-style host (network namespace, its own sshd on
# 169.254.N.2:22, /srv mounted from $RF_TMP/hosts/N/srv, host key in
# known_hosts), except that its veth pair may hang off another node's
# namespace instead of the test's: then only that node reaches it. So a
# bastion hangs off the test's namespace (the runner reaches it), and the
# servers hang off the bastion's (only the bastion reaches them). Node
# numbers come from rf_jump_alloc, picked as rf_fleet_up picks them, in
# their own range, so that they never collide with another run's. The
# caller loads lib/sshd and lib/fleet first; everything is tracked in
# $RF_TMP/.procs, so rf_cleanup stops and removes it.

RF_JUMP_LOW=${RF_JUMP_LOW:-233}
RF_JUMP_HIGH=${RF_JUMP_HIGH:-250}
RF_JUMP_NUMS=() # picked by rf_jump_alloc, in order

# rf_jump_alloc COUNT: pick COUNT free node numbers into RF_JUMP_NUMS and
# make their namespaces at once, under the fleet lock, so that no other
# run picks them meanwhile.
rf_jump_alloc() {
	local count=$1 num lockfd rc=0

	RF_JUMP_NUMS=()
	exec {lockfd}>>"$RF_FLEET_LOCK"
	if ! flock -w 120 "$lockfd"; then
		rf_log "rf_jump_alloc: $RF_FLEET_LOCK is held for over 120 s"
		exec {lockfd}>&-
		return 1
	fi
	for ((num = RF_JUMP_LOW; num <= RF_JUMP_HIGH && ${#RF_JUMP_NUMS[@]} < count; num++)); do
		rf_fleet_number_free "$num" || continue
		ip netns add "$(rf_host_ns "$num")" || continue
		rf_track netns "$(rf_host_ns "$num")" "$(rf_host_veth "$num")"
		RF_JUMP_NUMS+=("$num")
	done
	if ((${#RF_JUMP_NUMS[@]} < count)); then
		rf_log "rf_jump_alloc: only ${#RF_JUMP_NUMS[@]} free numbers in $RF_JUMP_LOW-$RF_JUMP_HIGH"
		rc=1
	fi
	flock -u "$lockfd"
	exec {lockfd}>&-
	return "$rc"
}

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

# rf_jump_ssh PARENT N CMD...: ssh to node N from where PARENT is.
rf_jump_ssh() {
	local parent=$1 n=$2

	shift 2
	rf_ssh_opts
	rf_jump_in "$parent" ssh "${RF_SSH_OPTS[@]}" -p 22 \
		"root@$(rf_host_addr "$n")" "$@" </dev/null
}

rf_jump_sshd_up() {
	rf_pid_alive "$1" || return 0
	rf_jump_ssh "$2" "$3" true 2>/dev/null
}

# rf_jump_start N [PARENT [SED]]: start node N (its namespace made by
# rf_jump_alloc), linked to PARENT's namespace (the test's when empty).
# SED, when given, edits the node's sshd_config (e.g.
# 's/^AllowTcpForwarding .*/AllowTcpForwarding no/').
rf_jump_start() {
	local n=$1 parent=${2:-} edit=${3:-} ns veth peer addr dir pid

	ns=$(rf_host_ns "$n")
	veth=$(rf_host_veth "$n")
	peer=${veth}p
	addr=$(rf_host_addr "$n")
	dir=$RF_TMP/hosts/$n
	mkdir -p "$dir/srv" /run/sshd
	rf_client_key

	ip -n "$ns" link set lo up
	if [[ -z $parent ]]; then
		ip link add "$veth" type veth peer name "$peer" netns "$ns"
		ip addr add "169.254.$n.1/30" dev "$veth"
		ip link set "$veth" up
	else
		ip -n "$(rf_host_ns "$parent")" link add "$veth" type veth \
			peer name "$peer" netns "$ns"
		ip -n "$(rf_host_ns "$parent")" addr add "169.254.$n.1/30" dev "$veth"
		ip -n "$(rf_host_ns "$parent")" link set "$veth" up
	fi
	ip -n "$ns" addr add "$addr/30" dev "$peer"
	ip -n "$ns" link set "$peer" up

	rf_keygen "$dir/host_ed25519_key"
	rf_sshd_write_config "$dir" "$addr" 22
	[[ -z $edit ]] || sed -i "$edit" "$dir/sshd_config"
	"$RF_SSHD" -t -f "$dir/sshd_config" 2>>"$dir/sshd.log" || {
		rf_log "node $n: sshd -t rejected $dir/sshd_config"
		return 1
	}
	rf_known_hosts_add "$addr" 22 "$dir/host_ed25519_key.pub"
	# shellcheck disable=SC2016 # $1-$3 are sh's, not ours
	ip netns exec "$ns" unshare --mount --propagation private \
		sh -c 'mount --bind "$1" /srv && exec "$2" -D -e -f "$3"' \
		rf-node "$dir/srv" "$RF_SSHD" "$dir/sshd_config" \
		</dev/null >>"$dir/sshd.log" 2>&1 3>&- &
	pid=$!
	rf_track hostsshd "$pid" "$n"
	echo "$pid" >"$dir/sshd.launch-pid"
	if ! rf_poll 10 rf_jump_sshd_up "$pid" "$parent" "$n"; then
		rf_log "node $n: sshd did not accept ssh within 10 s (see $dir/sshd.log)"
		return 1
	fi
	rf_pid_alive "$pid" || {
		rf_log "node $n: sshd exited (see $dir/sshd.log)"
		return 1
	}
}

# rf_jump_stop N: stop node N's sshd (its namespace stays: nothing
# listens there any more).
rf_jump_stop() {
	rf_kill_pid "$(cat "$RF_TMP/hosts/$1/sshd.launch-pid")"
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
