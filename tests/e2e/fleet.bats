#!/usr/bin/env bats
# relflip on a fleet, end to end: four servers, each a network namespace
# with its own sshd, loopback and /srv (tests/e2e/lib/hosts.bash), all
# reached through their own SSH connection. Every test asserts the exit
# code, what each host's current points at, what each host's app serves,
# the release records, and how many SSH connections each host's sshd
# accepted (exactly one per host per command that touches it). Deploys
# here; rollbacks, role selection and disagreeing hosts in
# fleet-rollback.bats (the hosts and helpers: lib/fleet-suite.bash).

load lib/fleet-suite

@test "a deploy to 4 hosts makes the release live everywhere: install on all, migrate once on the primary, one SSH connection per host" {
	local n

	# The primary is h3, not the first host: migrate must go where the
	# role says.
	rf_fleet_config --roles 1=web --roles 3="web primary" "${ALL[@]}" -- \
		"$(rf_fleet_health_ini "$PORT")
$HOOKS"

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v1
	rf_assert_status 0
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v1" "${ALL[@]}"
	rf_fleet_assert_record v1 live "${ALL[@]}"
	for n in "${ALL[@]}"; do
		[[ $(rf_fleet_count "$(rf_fleet_srv "$n")/install.log" "install h$n v1") == 1 ]] ||
			rf_fail "install did not run exactly once on h$n:" "$(cat "$(rf_fleet_srv "$n")/install.log" 2>&1)"
	done
	[[ $(cat "$RF_TMP"/hosts/*/srv/migrate.log 2>/dev/null | wc -l) == 1 ]] ||
		rf_fail "migrate ran other than once:" "$(grep -H . "$RF_TMP"/hosts/*/srv/migrate.log)"
	[[ $(cat "$(rf_fleet_srv 3)/migrate.log") == "migrate h3 v1" ]] ||
		rf_fail "migrate did not run on the primary h3:" "$(grep -H . "$RF_TMP"/hosts/*/srv/migrate.log)"

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2
	rf_assert_status 0
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_fleet_assert_live v2 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v2" "${ALL[@]}"
	rf_fleet_assert_record v2 live "${ALL[@]}"
	rf_fleet_assert_record v1 good "${ALL[@]}"
	for n in "${ALL[@]}"; do
		[[ $(rf_fleet_count "$(rf_fleet_srv "$n")/install.log" "install h$n v2") == 1 ]] ||
			rf_fail "install of v2 did not run exactly once on h$n:" "$(cat "$(rf_fleet_srv "$n")/install.log" 2>&1)"
		# The service restarted once per deploy on every host.
		[[ $(rf_fleet_restarts "$n" "web h$n") == 2 ]] ||
			rf_fail "expected 2 restarts on h$n:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
	[[ $(cat "$RF_TMP"/hosts/*/srv/migrate.log | wc -l) == 2 ]] ||
		rf_fail "migrate ran other than once per deploy:" "$(grep -H . "$RF_TMP"/hosts/*/srv/migrate.log)"
	[[ $(rf_fleet_count "$(rf_fleet_srv 3)/migrate.log" "migrate h3 v2") == 1 ]] ||
		rf_fail "migrate of v2 did not run on h3:" "$(grep -H . "$RF_TMP"/hosts/*/srv/migrate.log)"
}

@test "an unhealthy host in the second batch switches every host back to the previous release, exit 8, release bad on all 4" {
	local n

	rf_fleet_config --deploy "batch = 2" "${ALL[@]}" -- \
		"$(rf_fleet_health_ini "$PORT")
[hooks]
install = [ \"\$RELFLIP_HOST\" != h4 ] || [ \"\$RELFLIP_REVISION\" != v2 ] || echo 503 > HEALTH_STATUS"
	deploy v1
	rf_assert_status 0
	rf_fleet_assert_live v1 "${ALL[@]}"

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2 --json
	rf_assert_status 8
	rf_assert_stderr_has "h4"
	rf_fleet_assert_conns 1 "${ALL[@]}"
	# Every host, the first batch's included, is back on v1, restarted.
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v1" "${ALL[@]}"
	rf_fleet_assert_record v2 bad "${ALL[@]}"
	rf_fleet_assert_record v1 live "${ALL[@]}"
	for n in "${ALL[@]}"; do
		rf_assert_current_valid "$(rf_fleet_app "$n")"
		[[ -f $(rf_fleet_app "$n" releases/v2/REVISION) ]] ||
			rf_fail "releases/v2 on h$n is not intact"
		# v1's deploy, v2's switch, and the way back.
		[[ $(rf_fleet_restarts "$n" "web h$n") == 3 ]] ||
			rf_fail "expected 3 restarts on h$n:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
	# Batches: h1-h2 switched and passed health before h3-h4 switched;
	# the second batch (h3-h4) switched, then h4 failed its check.
	rf_json_order 'e.get("event") == "stage" and e.get("stage") == "health"
		and e.get("host") in ("h1", "h2") and e.get("phase") == "end" and e.get("ok")' \
		'e.get("event") == "stage" and e.get("stage") == "switch"
		and e.get("host") in ("h3", "h4")'
	rf_json_query 'any(e.get("event") == "stage" and e.get("stage") == "health"
		and e.get("host") == "h4" and e.get("phase") == "end" and e.get("ok") is False for e in ev)'
	rf_json_query '(ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 8
		and ev[-1]["status"] == "rolled_back")'
}

@test "when the way back fails too on one host, the deploy exits 9 and the summary says why" {
	local line

	# v2's install hook on h4 also breaks h4's v1, the way back.
	rf_fleet_config --deploy "batch = 2" "${ALL[@]}" -- \
		"$(rf_fleet_health_ini "$PORT")
[hooks]
install = [ \"\$RELFLIP_HOST\" != h4 ] || [ \"\$RELFLIP_REVISION\" != v2 ] || { echo 503 > HEALTH_STATUS; echo 503 > ../\$RELFLIP_PREVIOUS_REVISION/HEALTH_STATUS; }"
	deploy v1
	rf_assert_status 0

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2
	rf_assert_status 9
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_assert_stderr_has "h4"
	# Every host went back to v1; on the others v1 is healthy again.
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v1" 1 2 3
	rf_fleet_assert_record v2 bad "${ALL[@]}"
	# The last error line names both failures: the health check that
	# failed forward, and the way back that failed.
	line=$(grep "way back" <<<"$stderr" | tail -n 1)
	[[ $line == *"error: "*health*h4*"way back"* ]] ||
		rf_fail "the exit-9 summary does not say what failed first: '$line'" "$(rf_show_run)"
}

@test "an unreachable host stops the deploy before anything changes on any host, exit 4, naming it" {
	rf_fleet_config "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")
$HOOKS"
	deploy v1
	rf_assert_status 0

	# h3's sshd goes away: connection refused on its address, port 22.
	rf_kill_pid "$(rf_fleet_sshd_pid 3)"
	rf_fleet_snapshot "${ALL[@]}"
	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2
	rf_assert_status 4
	# The hosts that did answer were connected to once, no more.
	rf_fleet_assert_conns 1 1 2 4
	rf_fleet_assert_conns 0 3
	rf_assert_stderr_has "h3" "Connection refused"
	rf_fleet_assert_unchanged "${ALL[@]}"
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v1" 1 2 4
	# What the person on call reads last must not claim that nothing is
	# live anywhere.
	rf_fleet_assert_summary_live "${ALL[@]}"
	[[ $(cat "$RF_TMP"/hosts/*/srv/install.log | grep -c v2) == 0 ]] ||
		rf_fail "install of v2 ran somewhere:" "$(grep -H v2 "$RF_TMP"/hosts/*/srv/install.log)"
}

@test "a deploy lock held on one host stops the deploy before anything changes on any host, exit 5, naming the holder" {
	local lock

	rf_fleet_config "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")
$HOOKS"
	deploy v1
	rf_assert_status 0

	lock=$(rf_fleet_app 3 .relflip/lock)
	mkdir "$lock"
	printf '%s\n' "user=alice@ci-runner-7" "runner=ci-runner-7" "pid=4242" \
		"run_url=https://ci.example.com/runs/99" "revision=v9" "command=deploy" \
		"token=0123456789abcdef" "since=$(date +%s)" >"$lock/info"
	rf_fleet_snapshot "${ALL[@]}"
	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2
	rf_assert_status 5
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_assert_stderr_has "h3" "alice@ci-runner-7" "4242" "https://ci.example.com/runs/99"
	rf_fleet_assert_unchanged "${ALL[@]}"
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_summary_live "${ALL[@]}"
	[[ -f $lock/info ]] || rf_fail "the holder's lock on h3 was removed"
	[[ $(cat "$RF_TMP"/hosts/*/srv/install.log | grep -c v2) == 0 ]] ||
		rf_fail "install of v2 ran somewhere:" "$(grep -H v2 "$RF_TMP"/hosts/*/srv/install.log)"
}

@test "-H selects hosts: only h2 and h3 get the release, the others are not even connected to" {
	rf_fleet_config "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")
[hooks]
install = echo \"install \$RELFLIP_HOST\" >> /srv/install.log"

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v1 -H h2 -H h3
	rf_assert_status 0
	rf_fleet_assert_conns 1 2 3
	rf_fleet_assert_conns 0 1 4
	rf_fleet_assert_live v1 2 3
	rf_fleet_assert_serves "$PORT" "ok v1" 2 3
	rf_fleet_assert_record v1 live 2 3
	rf_fleet_assert_no_app 1 4
	[[ $(cat "$RF_TMP"/hosts/*/srv/install.log | wc -l) == 2 ]] ||
		rf_fail "install ran outside h2 and h3:" "$(grep -H . "$RF_TMP"/hosts/*/srv/install.log)"

	# A host that is not in the config is an error, before any connection.
	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2 -H h2 -H h9
	rf_assert_status 2
	rf_assert_stderr_has "h9"
	rf_fleet_assert_conns 0 "${ALL[@]}"
	rf_fleet_assert_live v1 2 3
}

@test "hosts are worked on in parallel, never more than max_parallel at once" {
	mkdir -p "$RF_TMP/par"
	# The install hook counts the hooks running at once in a directory all
	# hosts share (the test's own filesystem: only /srv is per host), when
	# it starts and once three run at once (or all four have started, or
	# 10 s passed: a bounded poll), then ends.
	rf_fleet_config --deploy "max_parallel = 3" "${ALL[@]}" -- "[hooks]
install = P=$RF_TMP/par; touch \$P/run.\$RELFLIP_HOST \$P/started.\$RELFLIP_HOST; set -- \$P/run.*; echo \$# >> \$P/seen; i=0; while :; do set -- \$P/run.*; r=\$#; set -- \$P/started.*; [ \$r -ge 3 ] || [ \$# -ge 4 ] || [ \$i -ge 200 ] && break; sleep 0.05; i=\$((i + 1)); done; set -- \$P/run.*; echo \$# >> \$P/seen; rm \$P/run.\$RELFLIP_HOST"

	deploy v1
	rf_assert_status 0
	rf_fleet_assert_live v1 "${ALL[@]}"
	[[ $(sort -n "$RF_TMP/par/seen" | tail -n 1) == 3 ]] ||
		rf_fail "expected at most, and at some point exactly, 3 hooks at once; saw:" "$(tr '\n' ' ' <"$RF_TMP/par/seen")"
}

@test "a migrate hook on several hosts needs exactly one primary host: none or two is a config error, exit 2" {
	rf_fleet_config --roles 1=web "${ALL[@]}" -- "$HOOKS"
	rf_fleet_snapshot "${ALL[@]}"
	deploy v1
	rf_assert_status 2
	rf_assert_stderr_has "primary"

	rf_fleet_config --roles 1=web --roles 2="web primary" --roles 4="primary" "${ALL[@]}" -- "$HOOKS"
	deploy v1
	rf_assert_status 2
	rf_assert_stderr_has "primary" "h2" "h4"
	rf_fleet_assert_unchanged "${ALL[@]}"
}
