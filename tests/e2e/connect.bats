#!/usr/bin/env bats
# Connecting, end to end, on loopback: what relflip says when connecting
# goes wrong in the ways newcomers trip over (known_hosts entries and
# files, a key variable holding the wrong thing), and the ssh config
# ([ssh] config): an alias honoured, relflip's own keys winning, a named
# file that is missing. Every test asserts the exit code and the message.

load lib/sshd

server() {
	rf_sshd_start
	rf_config "$@"
}

@test "a plain known_hosts entry with another key, for a server on another port, is a CHANGED key, exit 4" {
	server
	rf_keygen "$RF_TMP/other_host_key"
	: >"$RF_KNOWN_HOSTS"
	rf_known_hosts_add 127.0.0.1 22 "$RF_TMP/other_host_key.pub"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "host key of local (127.0.0.1:$RF_PORT) has CHANGED" \
		"$RF_KNOWN_HOSTS lists another ssh-ed25519 key for 127.0.0.1" \
		"hint: if the server was rebuilt, run ssh-keygen -R 127.0.0.1 -f $RF_KNOWN_HOSTS and add the new key as [127.0.0.1]:$RF_PORT"
}

@test "a known_hosts file that does not exist is named as missing, with where it was looked for, exit 4" {
	server --known-hosts "$RF_TMP/no/such/known_hosts"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "host key of local (127.0.0.1:$RF_PORT) is unknown: the known_hosts file $RF_TMP/no/such/known_hosts does not exist" \
		"hint: check [ssh] known_hosts; or check the fingerprint"
}

@test "identity_env holding a public key says so, without printing it, exit 4" {
	server --no-identity --ssh "identity_env = TEST_KEY"
	export TEST_KEY
	TEST_KEY=$(cat "$RF_KEY.pub")

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "\$TEST_KEY holds a public key (ssh-ed25519 AAAA...), not a private key" \
		"hint: put the private key in \$TEST_KEY"
	[[ $stderr != *"$(cut -d' ' -f2 "$RF_KEY.pub")"* ]] || rf_fail "the key was printed"
	[[ $stderr != *"offset out of bounds"* ]] || rf_fail "libssh2's PEM error leaked through"
}

@test "identity_env holding a file name says to name the file with identity, exit 4" {
	server --no-identity --ssh "identity_env = TEST_KEY"
	export TEST_KEY=$RF_KEY

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "\$TEST_KEY holds a file name, not the key's text" \
		"hint: name the file with [ssh] identity = FILE instead of identity_env"
	[[ $stderr != *"$RF_KEY"* ]] || rf_fail "the variable's value was printed"
}

@test "an ssh config alias gives the address, port and user; relflip's own port wins over its Port" {
	server
	printf 'Host myserver\n  HostName 127.0.0.1\n  Port %s\n  User root\n' "$RF_PORT" >"$RF_TMP/ssh_config"
	rf_config --ssh "config = $RF_TMP/ssh_config" --address myserver
	# Without [ssh] port and user, the ssh config's Port and User apply.
	sed -i -e '/^port = /d' -e '/^user = /d' "$RF_CONFIG"

	run --separate-stderr relflip -c "$RF_CONFIG" -v check
	rf_assert_status 0
	rf_assert_stderr_has "local: ssh config $RF_TMP/ssh_config:2: HostName 127.0.0.1 (Host myserver)" \
		"local: root@127.0.0.1:$RF_PORT connected in"

	# [ssh] port set: it wins, even when the ssh config says otherwise.
	printf 'Host myserver\n  HostName 127.0.0.1\n  Port 1\n  User root\n' >"$RF_TMP/ssh_config"
	rf_config --ssh "config = $RF_TMP/ssh_config" --address myserver
	run --separate-stderr relflip -c "$RF_CONFIG" -v check
	rf_assert_status 0
	rf_assert_stderr_has "local: [ssh] port $RF_PORT wins over the ssh config's Port 1"
}

@test "[ssh] config naming a missing file is a config error naming the line, exit 2" {
	server --ssh "config = $RF_TMP/missing_ssh_config"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 2
	rf_assert_stderr_has "relflip.ini:10: [ssh] config: cannot read '$RF_TMP/missing_ssh_config': No such file or directory"
}

@test "a bad Port in the ssh config is a config error naming its file and line, exit 2; config = none ignores the file" {
	server
	printf 'Host *\n  Port many\n' >"$RF_TMP/ssh_config"
	rf_config --ssh "config = $RF_TMP/ssh_config"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 2
	rf_assert_stderr_has "$RF_TMP/ssh_config:2: Port: 'many' is not a port (1-65535)" \
		"hint: fix the ssh config, or set [ssh] config = none"

	rf_config --ssh "config = none"
	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
}
