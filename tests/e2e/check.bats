#!/usr/bin/env bats
# relflip check, end to end: ./relflip against a real sshd on loopback.
# Every test asserts the exit code and what the person reading stderr is
# told, and that check changed nothing on the server.

load lib/sshd

# One sshd for the file; each test has its own app path, keys and
# known_hosts (rf_sshd_use).
setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
}

teardown_file() {
	rf_file_teardown
}

# A config for the server; the app path ($RF_APP) does not exist yet.
server() {
	rf_config "$@"
}

# An app path laid out as a deploy leaves it: releases/r1, current -> it.
deployed_layout() {
	rf_make_release r1
	rf_make_current r1
}

@test "check passes on a deployed host and names it" {
	server
	deployed_layout
	rf_snapshot app "$RF_APP"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
	rf_assert_stderr_has "local"
	rf_assert_unchanged app
	rf_assert_current_valid

	# The tools item names the agent steps run in: Perl here, the shell's
	# where the server asks for it.
	run --separate-stderr relflip -c "$RF_CONFIG" --json check
	rf_assert_status 0
	rf_json_query 'any(e.get("item") == "tools" and "steps run in the Perl agent" in e["detail"] for e in ev)'
	printf 'environment="RELFLIP_AGENT=sh" %s\n' "$(cat "$RF_TMP/client_key.pub")" >"$RF_TMP/authorized_keys"
	run --separate-stderr relflip -c "$RF_CONFIG" --json check
	rf_assert_status 0
	rf_json_query 'any(e.get("item") == "tools" and "steps run in the shell" in e["detail"] for e in ev)'
}

@test "check --json prints one event a line, check events and a result" {
	server
	deployed_layout

	run --separate-stderr relflip -c "$RF_CONFIG" --json check
	rf_assert_status 0
	rf_assert_json_lines
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	rf_json_query 'ev[0]["event"] == "start"'
	# connect, host key and auth each reported, for host "local", passing.
	rf_json_query 'all(any(e["event"] == "check" and e.get("host") == "local"
		and e.get("item") == i and (e.get("ok") is True or e.get("result") == "ok")
		for e in ev) for i in ("connect", "hostkey", "auth"))'
	rf_json_query 'all("time" in e for e in ev)'
	# Human text stays on stderr: stdout is nothing but events.
	rf_assert_stderr_has "local"
}

@test "check passes on a missing app path whose parent is writable, and creates nothing" {
	server
	rf_assert_not_exists "$RF_APP"
	rf_snapshot srv "$RF_TMP/srv"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
	rf_assert_stderr_has "will be created"
	rf_assert_not_exists "$RF_APP"
	rf_assert_unchanged srv
}

@test "check refuses an unknown host key, shows its fingerprint and exits 4" {
	server
	: >"$RF_KNOWN_HOSTS"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "is unknown" "SHA256:"
	# relflip never adds keys on its own.
	[[ ! -s $RF_KNOWN_HOSTS ]] || rf_fail "known_hosts was written:" "$(cat "$RF_KNOWN_HOSTS")"
	rf_assert_not_exists "$RF_APP"
}

@test "check refuses a changed host key, says how to fix it and exits 4" {
	server
	rf_keygen "$RF_TMP/other_host_key"
	: >"$RF_KNOWN_HOSTS"
	rf_known_hosts_add 127.0.0.1 "$RF_PORT" "$RF_TMP/other_host_key.pub"
	cp "$RF_KNOWN_HOSTS" "$RF_TMP/known_hosts.before"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "has CHANGED" "ssh-keygen -R"
	cmp "$RF_KNOWN_HOSTS" "$RF_TMP/known_hosts.before"
	rf_assert_not_exists "$RF_APP"
}

@test "check accepts a hashed known_hosts entry" {
	server
	ssh-keygen -q -H -f "$RF_KNOWN_HOSTS" >/dev/null 2>&1
	rm -f "$RF_KNOWN_HOSTS.old"
	# The entry really is hashed now.
	grep -q '^|1|' "$RF_KNOWN_HOSTS"
	if grep -qF "127.0.0.1" "$RF_KNOWN_HOSTS"; then
		rf_fail "known_hosts still names the host in clear"
	fi

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
}

@test "check reports a key the server does not accept as an authentication failure, exit 4" {
	server
	rf_keygen "$RF_TMP/stranger_key"
	rf_config --identity "$RF_TMP/stranger_key"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "authentication"
	rf_assert_not_exists "$RF_APP"
}

@test "check refuses an RSA client key and asks for ed25519 or ECDSA, exit 4" {
	server
	rf_keygen "$RF_TMP/rsa_key" rsa
	cat "$RF_TMP/rsa_key.pub" >>"$RF_TMP/authorized_keys"
	rf_config --identity "$RF_TMP/rsa_key"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "ed25519 or ECDSA"
}

@test "check takes the key text from identity_env and never prints it" {
	local line leaked=0

	server --no-identity --ssh "identity_env = TEST_KEY"
	export TEST_KEY
	TEST_KEY=$(cat "$RF_KEY")

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
	local all="$output$stderr"

	run --separate-stderr relflip -c "$RF_CONFIG" -v --json check
	rf_assert_status 0
	all+="$output$stderr"
	[[ -n $all ]]
	# No line of the key's body, nor the whole key, in any output.
	while IFS= read -r line; do
		[[ $line == -----* || -z $line ]] && continue
		if [[ $all == *"$line"* ]]; then
			echo "key line leaked: $line"
			leaked=1
		fi
	done <"$RF_KEY"
	((leaked == 0))
	if grep -qF -f <(grep -v -e '^-----' -e '^$' "$RF_KEY") "$RF_TMP/relflip.log"; then
		rf_fail "key text found in $RF_TMP/relflip.log"
	fi

	# The same key with its line breaks lost, as `echo $VAR` leaves it: an
	# auth failure (exit 4) that says so, still without the key's text.
	TEST_KEY=$(tr -d '\n' <"$RF_KEY")
	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "\$TEST_KEY holds the private key on one line: its line breaks were lost" \
		'pass it quoted ("$TEST_KEY", never echo $TEST_KEY)'
	[[ $stderr != *"${TEST_KEY:40:20}"* ]] || rf_fail "key text in the error" "$(rf_show_run)"
}

@test "check reports nobody listening as Connection refused, exit 4" {
	local port

	rf_client_key
	port=$(rf_free_port)
	rf_config --port "$port"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 4
	rf_assert_stderr_has "Connection refused"
}

@test "check gives up on a server that never answers after connect_timeout, exit 4" {
	local started elapsed

	rf_client_key
	rf_silent_listener
	rf_config --port "$RF_SILENT_PORT" --timeout 1

	started=$(rf_now_ms)
	run --separate-stderr relflip -c "$RF_CONFIG" check
	elapsed=$(($(rf_now_ms) - started))
	rf_assert_status 4
	rf_assert_stderr_has "timed out"
	((elapsed < 5000)) || rf_fail "check took $elapsed ms with connect_timeout = 1"
}

@test "check fails on an app path that cannot be created, exit 6" {
	server --path /proc/relflip-test/app

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 6
	if [[ $stderr != *"not writable"* && $stderr != *"cannot be created"* ]]; then
		rf_fail "expected 'not writable' or 'cannot be created'" "$(rf_show_run)"
	fi
	rf_assert_not_exists /proc/relflip-test
}

@test "check reports a current that is a real directory and leaves it alone, exit 6" {
	server
	mkdir -p "$RF_APP/releases" "$RF_APP/current"
	echo "hand-made" >"$RF_APP/current/index.html"
	rf_snapshot app "$RF_APP"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 6
	rf_assert_stderr_has "real directory"
	rf_assert_unchanged app
}

@test "check fails on a server without the SFTP subsystem an upload needs, exit 6, and says what to add" {
	RF_SSHD_SFTP=no rf_sshd_start nosftp
	server

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 6
	rf_assert_stderr_has "no SFTP" "cannot start SFTP on local" "an upload needs it" \
		"Subsystem sftp in sshd_config"
	rf_assert_not_exists "$RF_APP"
}

@test "check reports a held deploy lock, keeps it, exit 5" {
	server
	deployed_layout
	mkdir -p "$RF_APP/.relflip/lock"
	rf_snapshot app "$RF_APP"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 5
	rf_assert_stderr_has "locked"
	[[ -d $RF_APP/.relflip/lock ]]
	rf_assert_unchanged app
	rf_assert_current_valid
}

@test "an unknown config key is an error naming the file and line, exit 2" {
	cat >"$RF_TMP/relflip.ini" <<-EOF
		[app]
		path = $RF_APP
		colour = blue

		[host "local"]
		address = 127.0.0.1
	EOF

	run --separate-stderr relflip -c "$RF_TMP/relflip.ini" check
	rf_assert_status 2
	rf_assert_stderr_has "relflip.ini:3:" "colour"
}

@test "a port out of range is an error saying what is valid, exit 2" {
	cat >"$RF_TMP/relflip.ini" <<-EOF
		[app]
		path = $RF_APP

		[ssh]
		port = 70000

		[host "local"]
		address = 127.0.0.1
	EOF

	run --separate-stderr relflip -c "$RF_TMP/relflip.ini" check
	rf_assert_status 2
	rf_assert_stderr_has "relflip.ini:5:" "1-65535"
}

@test "an unknown command exits 2, and a command prefix is not accepted" {
	run --separate-stderr relflip frobnicate
	rf_assert_status 2
	[[ -n $stderr ]]

	# "che" must not run check (or anything else).
	run --separate-stderr relflip -c "$RF_TMP/none.ini" che
	rf_assert_status 2
}

@test "check --help prints usage on stdout and exits 0" {
	run --separate-stderr relflip check --help
	rf_assert_status 0
	[[ ${output,,} == *usage* ]] || rf_fail "no usage on stdout" "$(rf_show_run)"
	rf_assert_stdout_has "check"
}

@test "check fetches the health URL on the server's side and reports the app's answer" {
	local port

	server
	deployed_layout
	port=$(rf_free_port)
	rf_app_start "$port"
	rf_config "[health]
url = $(rf_app_url "$port")"

	run --separate-stderr relflip -c "$RF_CONFIG" --json check
	rf_assert_status 0
	rf_json_query 'any(e["event"] == "check" and e.get("item") == "health"
		and (e.get("ok") is True or e.get("result") == "ok") for e in ev)'
	# The app really was asked.
	grep -q 'GET /health' "$RF_TMP/srv/app-$port.log"
}

@test "check names the fix when the server refuses the health tunnel, exit 8, and changes nothing" {
	local port key=$RF_TMP/nofwd_key

	server
	deployed_layout
	port=$(rf_free_port)
	rf_app_start "$port"
	# A key of its own that may open tunnels only to a port nobody uses:
	# sshd answers "administratively prohibited", as AllowTcpForwarding no.
	ssh-keygen -q -t ed25519 -N '' -C nofwd -f "$key"
	echo "permitopen=\"127.0.0.1:1\" $(<"$key.pub")" >>"$RF_FILE_TMP/authorized_keys"
	rf_config --identity "$key" "[health]
url = $(rf_app_url "$port")"
	rf_snapshot app "$RF_APP"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 8
	rf_assert_stderr_has 'refuses to open a tunnel to 127.0.0.1:' \
		'hint: allow TCP forwarding for the deploy user: AllowTcpForwarding yes (or local)' \
		"permitopen=\"127.0.0.1:$port\""
	rf_assert_unchanged app
	rf_assert_current_valid
}

@test "check warns about a restart that reloads while expect_revision is off, and not once it is on" {
	local port

	server
	deployed_layout
	port=$(rf_free_port)
	rf_app_start "$port"
	rf_config "[service \"web\"]
restart = kill -HUP \"\$(cat /run/app.pid)\"
[service \"worker\"]
restart = true
[health]
url = $(rf_app_url "$port")"
	rf_snapshot app "$RF_APP"

	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
	rf_assert_stderr_has 'warning' '[service "web"] restart reloads (HUP)' \
		'expect_revision = yes'
	[[ $stderr != *'service "worker"'* ]] || rf_fail "worker's restart is no reload" "$(rf_show_run)"
	rf_assert_unchanged app

	rf_config "[service \"web\"]
restart = kill -HUP \"\$(cat /run/app.pid)\"
[health]
url = $(rf_app_url "$port")
expect_revision = yes"
	run --separate-stderr relflip -c "$RF_CONFIG" check
	rf_assert_status 0
	[[ $stderr != *'restart reloads'* ]] || rf_fail "no warning expected with expect_revision" "$(rf_show_run)"
}

@test "check covers every host of a fleet, each in its own network namespace" {
	rf_host_start 1
	rf_host_start 2
	mkdir -p "$(rf_host_dir 1)/relflip-app/.relflip/lock"
	rf_host_config 1 2

	run --separate-stderr relflip -c "$RF_CONFIG" --json check
	rf_assert_status 5
	rf_assert_stderr_has "h1" "h2" "locked"
	rf_json_query 'any(e["event"] == "check" and e.get("host") == "h2"
		and e.get("item") == "lock" and (e.get("ok") is True or e.get("result") == "ok") for e in ev)'
	rf_json_query 'any(e["event"] == "check" and e.get("host") == "h1"
		and e.get("item") == "lock" and not (e.get("ok") is True or e.get("result") == "ok") for e in ev)'
	# Only host 1's app path was touched by the test, and check made nothing.
	rf_assert_not_exists "$(rf_host_dir 2)/relflip-app"
}
