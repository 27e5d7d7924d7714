#!/usr/bin/env bats
# Jump hosts, end to end. Servers are network namespaces whose only link
# is to a jump host's namespace (tests/e2e/lib/jump.bash): relflip on the
# runner reaches them through that jump host or not at all. Each test
# name states its cell of the matrix:
#
#   command | jump hosts         | servers | what is wrong        | expect
#   deploy  | 1 bastion          | 2       | nothing              | 0, 1 connection to the bastion
#   check   | 1 bastion          | 2       | one host at a time   | 0, still 1 connection to the bastion
#   check   | 2, chained         | 1       | nothing              | 0, 1 connection to each jump host
#   check   | 1 (ssh_config)     | 1       | nothing              | 0, alias + ProxyJump from ssh_config
#   check   | 1 bastion          | 2       | bastion key changed  | 4, names the bastion
#   check   | 1 bastion          | 2       | server key unknown   | 4, names the server
#   check   | 1 bastion          | 2       | bastion down         | 4, names the bastion
#   check   | 1 bastion          | 1       | forwarding forbidden | 4, names the bastion, hint
#   check   | 1 bastion          | 1       | server sshd down     | 4, names the server
#   check   | 1 bastion          | 2       | bastion never answers| 4 within connect_timeout
#
# The nodes are started once for the file (they cost more than most tests)
# and each test borrows them (rf_jump_use): its own known_hosts and
# authorized_keys, every /srv empty, an sshd a test stopped started again.
# Run under the machine-wide lock: flock /tmp/relflip-netns.lock bats ...

load lib/sshd
load lib/fleet
load lib/jump

# The nodes (jump.bash): a bastion B off the runner with servers S behind
# it; a bastion F that forbids TCP forwarding, with server FS behind it; a
# chain J1 -> J2 -> JS.
B=1
S=(2 3)
F=4
FS=5
J1=6
J2=7
JS=8

setup_file() {
	rf_file_setup
	RF_TMP=$RF_FILE_TMP RF_KNOWN_HOSTS=$RF_FILE_TMP/known_hosts nodes_up
}

# Parents first: a node's veth hangs off its parent's namespace. The
# runner cannot reach a node behind a jump host on its own.
nodes_up() {
	rf_jump_start "$B" &&
		rf_jump_start "${S[0]}" "$B" &&
		rf_jump_start "${S[1]}" "$B" &&
		rf_jump_start "$F" "" 's/^AllowTcpForwarding .*/AllowTcpForwarding no/' &&
		rf_jump_start "$FS" "$F" &&
		rf_jump_start "$J1" &&
		rf_jump_start "$J2" "$J1" &&
		rf_jump_start "$JS" "$J2" &&
		rf_jump_unreachable "${S[@]}" "$FS" "$J2" "$JS"
}

setup() {
	rf_tmp_setup
	rf_jump_use
}

# Fails when a namespace is left behind.
teardown_file() {
	rf_file_teardown
}

# The ssh config naming bastion BASTION (default B), as a person would
# write it.
bastion_ssh_config() {
	printf 'Host bastion\n  HostName %s\n  User root\n' "$(rf_host_addr "${1:-$B}")"
}

@test "deploy | 1 bastion | 2 servers | nothing wrong: live on both, exactly one connection to the bastion" {
	local art before

	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[@]}"
	# shellcheck disable=SC2034 # read by the rf_fleet_* helpers
	RF_FLEET_NUMS=([1]=${S[0]} [2]=${S[1]})
	# Megabytes, so that flow control through the bastion is exercised.
	art=$(rf_fleet_artifact r1 4000000)
	before=$(rf_jump_accepted "$B")
	rf_fleet_conn_mark 1 2

	run --separate-stderr relflip -c "$RF_CONFIG" deploy "$art" --revision r1
	rf_assert_status 0
	rf_fleet_assert_live r1 1 2
	rf_fleet_assert_record r1 live 1 2
	[[ $(($(rf_jump_accepted "$B") - before)) == 1 ]] ||
		rf_fail "expected 1 connection to the bastion, got $(($(rf_jump_accepted "$B") - before))" \
			"$(rf_show_run)"
	rf_fleet_assert_conns 1 1 2
}

@test "check | 1 bastion | 2 servers | one host at a time (max_parallel = 1): still exactly one connection to the bastion" {
	local before

	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[@]}" -- "[deploy]
max_parallel = 1"
	before=$(rf_jump_accepted "$B")

	run --separate-stderr relflip -c "$RF_CONFIG" -v check
	rf_assert_status 0
	rf_assert_stderr_has "ready: 2 of 2 hosts pass" \
		"h2: jump host bastion ($(rf_host_addr "$B"):22): shared connection"
	[[ $(($(rf_jump_accepted "$B") - before)) == 1 ]] ||
		rf_fail "expected 1 connection to the bastion, got $(($(rf_jump_accepted "$B") - before))"
}

@test "check | 2 jump hosts chained | 1 server | nothing wrong: passes, one connection to each jump host, -v shows the chain" {
	local c1 c2

	rf_jump_config --ssh "proxy_jump = root@$(rf_host_addr "$J1"),root@$(rf_host_addr "$J2"):22" "$JS"
	c1=$(rf_jump_accepted "$J1")
	c2=$(rf_jump_accepted "$J2")

	run --separate-stderr relflip -c "$RF_CONFIG" -v check
	rf_assert_status 0
	rf_assert_stderr_has "ready: 1 of 1 host pass" \
		"h1: jump chain ([ssh] proxy_jump): $(rf_host_addr "$J1") (root@$(rf_host_addr "$J1"):22) -> $(rf_host_addr "$J2")" \
		"h1: jump host $(rf_host_addr "$J2") ($(rf_host_addr "$J2"):22): connected in" \
		"kex curve25519-sha256" "host key ssh-ed25519 SHA256:"
	[[ $(($(rf_jump_accepted "$J1") - c1)) == 1 && $(($(rf_jump_accepted "$J2") - c2)) == 1 ]] ||
		rf_fail "expected 1 connection to each jump host"
}

@test "check | 1 bastion from ssh_config | 1 server | nothing wrong: an alias with HostName and ProxyJump in ssh_config reaches it" {
	rf_jump_config --ssh-config "$(bastion_ssh_config)
Host app-server
  HostName $(rf_host_addr "${S[0]}")
  ProxyJump bastion" "${S[0]}"
	sed -i "s/^address = .*/address = app-server/" "$RF_CONFIG"

	run --separate-stderr relflip -c "$RF_CONFIG" -v check
	rf_assert_status 0
	rf_assert_stderr_has "ssh config $RF_TMP/ssh_config:5: HostName $(rf_host_addr "${S[0]}") (Host app-server)" \
		"h1: jump chain (ssh config ProxyJump): bastion (root@$(rf_host_addr "$B"):22)"
}

@test "check | 1 bastion | 2 servers | bastion host key CHANGED: exit 4 naming the bastion, nothing behind it reached" {
	local c1

	rf_jump_known_hosts_wrong "$B"
	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[@]}"
	c1=$(rf_jump_accepted "${S[0]}")

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "h1: host key of jump host bastion ($(rf_host_addr "$B"):22) has CHANGED" \
		"h2: host key of jump host bastion" \
		"hint: if the server was rebuilt, run ssh-keygen -R '$(rf_host_addr "$B")' -f $RF_KNOWN_HOSTS"
	[[ $(rf_jump_accepted "${S[0]}") == "$c1" ]] || rf_fail "a server behind the bastion was reached"
}

@test "check | 1 bastion | 2 servers | server host key unknown: exit 4 naming that server, a keyscan hint through the bastion" {
	rf_jump_known_hosts_drop "${S[1]}"
	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[@]}"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "host key of h2 ($(rf_host_addr "${S[1]}"):22) is unknown: ssh-ed25519 SHA256:" \
		"add the key: ssh -p 22 root@$(rf_host_addr "$B") ssh-keyscan -p 22 $(rf_host_addr "${S[1]}") >> $RF_KNOWN_HOSTS" \
		"not ready: 1 of 2 hosts pass (exit 4)"
	[[ $stderr != *"h1: host key"* ]] || rf_fail "h1 failed too" "$(rf_show_run)"
}

@test "check | 1 bastion | 2 servers | bastion down: exit 4, connection refused naming the bastion for every server" {
	rf_jump_stop "$B"
	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[@]}"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "h1: cannot connect to jump host bastion ($(rf_host_addr "$B"):22): Connection refused" \
		"h2: cannot connect to jump host bastion" \
		"hint: is sshd running and the port right? try: ssh -p 22 root@$(rf_host_addr "$B")" \
		"not ready: 0 of 2 hosts pass (exit 4)"
}

@test "check | 1 bastion | 1 server | bastion forbids TCP forwarding: exit 4 naming the bastion, with the sshd_config fix" {
	rf_jump_config --ssh-config "$(bastion_ssh_config "$F")" \
		--ssh "proxy_jump = bastion" "$FS"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "cannot connect to h1 ($(rf_host_addr "$FS"):22) through jump host bastion: it refuses to forward connections" \
		"administratively prohibited" \
		"hint: allow TCP forwarding on bastion for its login user: AllowTcpForwarding yes in its sshd_config, or permitopen=\"$(rf_host_addr "$FS"):22\""
}

@test "check | 1 bastion | 1 server | server sshd down: exit 4 naming the server, the bastion could not connect there" {
	rf_jump_stop "${S[0]}"
	rf_jump_config --ssh-config "$(bastion_ssh_config)" \
		--ssh "proxy_jump = bastion" "${S[0]}"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "cannot connect to h1 ($(rf_host_addr "${S[0]}"):22) through jump host bastion: it could not connect there" \
		"hint: is sshd running on h1, and the address and port right as seen from bastion? try: ssh -J root@$(rf_host_addr "$B"):22 -p 22 root@$(rf_host_addr "${S[0]}")"
}

@test "check | 1 bastion | 2 servers | bastion never answers: exit 4 for both within one connect_timeout" {
	local started elapsed

	rf_silent_listener
	rf_jump_config --ssh "proxy_jump = root@127.0.0.1:$RF_SILENT_PORT" "${S[@]}"
	sed -i 's/^connect_timeout = .*/connect_timeout = 1/' "$RF_CONFIG"

	started=$(rf_now_ms)
	run --separate-stderr relflip -c "$RF_CONFIG" check
	elapsed=$(($(rf_now_ms) - started))
	rf_assert_status 4
	rf_assert_stderr_has "h1: cannot connect to jump host 127.0.0.1 (127.0.0.1:$RF_SILENT_PORT): timed out after 1 s" \
		"h2: cannot connect to jump host 127.0.0.1" "not ready: 0 of 2 hosts pass (exit 4)"
	((elapsed < 4000)) || rf_fail "check took $elapsed ms with connect_timeout = 1"
}
