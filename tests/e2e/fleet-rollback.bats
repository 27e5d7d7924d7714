#!/usr/bin/env bats
# relflip on a fleet, end to end, as in fleet.bats (same four hosts, same
# assertions): rollbacks, role selection and hosts that disagree.

load lib/fleet-suite

@test "a rollback that fails its health check in the second batch switches every host back where it was, exit 8" {
	rf_fleet_config --deploy "batch = 2" "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")"
	deploy v1
	rf_assert_status 0
	deploy v2
	rf_assert_status 0
	echo 503 >"$(rf_fleet_app 4 releases/v1/HEALTH_STATUS)"

	rf_fleet_conn_mark "${ALL[@]}"
	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 8
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_assert_stderr_has "h4"
	rf_fleet_assert_live v2 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v2" "${ALL[@]}"
	rf_fleet_assert_record v2 live "${ALL[@]}"
}

@test "a rollback with the lock held on one host changes nothing on any host, exit 5" {
	local lock

	rf_fleet_config "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")"
	deploy v1
	rf_assert_status 0
	deploy v2
	rf_assert_status 0
	lock=$(rf_fleet_app 3 .relflip/lock)
	mkdir "$lock"
	printf '%s\n' "user=bob@laptop" "pid=777" "command=deploy" "revision=v9" \
		"since=$(date +%s)" >"$lock/info"
	rf_fleet_snapshot "${ALL[@]}"

	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 5
	rf_assert_stderr_has "h3" "bob@laptop"
	rf_fleet_assert_unchanged "${ALL[@]}"
	rf_fleet_assert_live v2 "${ALL[@]}"
	rf_fleet_assert_summary_live "${ALL[@]}"
}

@test "-R selects hosts by role, and a service restarts only on hosts with its roles" {
	local n

	rf_fleet_config --roles 1="web primary" --roles 2=web \
		--roles 3=worker --roles 4=worker \
		"${ALL[@]}" -- "[service \"web\"]
roles = web
restart = echo \"web \$RELFLIP_HOST\" >> /srv/restarts.log && $RF_LIB/app-ctl restart \"\$RELFLIP_APP_PATH\" $PORT

[service \"worker\"]
roles = worker
restart = echo \"worker \$RELFLIP_HOST\" >> /srv/restarts.log && $RF_LIB/app-ctl restart \"\$RELFLIP_APP_PATH\" $PORT

[health]
url = http://127.0.0.1:$PORT/health
expect_revision = yes
interval = 0.1
retries = 40
timeout = 2
deadline = 15"

	deploy v1
	rf_assert_status 0
	rf_fleet_assert_live v1 "${ALL[@]}"
	for n in 1 2; do
		[[ $(rf_fleet_restarts "$n" "web h$n") == 1 && $(rf_fleet_restarts "$n" worker) == 0 ]] ||
			rf_fail "h$n (web): expected web restarted once, worker never:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
	for n in 3 4; do
		[[ $(rf_fleet_restarts "$n" "worker h$n") == 1 && $(rf_fleet_restarts "$n" web) == 0 ]] ||
			rf_fail "h$n (worker): expected worker restarted once, web never:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done

	rf_fleet_conn_mark "${ALL[@]}"
	deploy v2 -R worker
	rf_assert_status 0
	rf_fleet_assert_conns 1 3 4
	rf_fleet_assert_conns 0 1 2
	rf_fleet_assert_live v2 3 4
	rf_fleet_assert_live v1 1 2
	rf_fleet_assert_serves "$PORT" "ok v2" 3 4
	rf_fleet_assert_serves "$PORT" "ok v1" 1 2
	for n in 1 2; do
		rf_assert_not_exists "$(rf_fleet_app "$n" releases/v2)"
		[[ $(rf_fleet_restarts "$n") == 1 ]] ||
			rf_fail "h$n was restarted by a worker deploy:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
	for n in 3 4; do
		[[ $(rf_fleet_restarts "$n" "worker h$n") == 2 && $(rf_fleet_restarts "$n" web) == 0 ]] ||
			rf_fail "h$n (worker): expected worker restarted twice, web never:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
}

@test "rollback on the fleet brings every host back to the previous release, batch by batch" {
	local n

	rf_fleet_config --deploy "batch = 50%" "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")"
	deploy v1
	rf_assert_status 0
	deploy v2
	rf_assert_status 0
	rf_fleet_assert_live v2 "${ALL[@]}"

	rf_fleet_conn_mark "${ALL[@]}"
	run --separate-stderr relflip -c "$RF_CONFIG" --json rollback
	rf_assert_status 0
	rf_fleet_assert_conns 1 "${ALL[@]}"
	rf_fleet_assert_live v1 "${ALL[@]}"
	rf_fleet_assert_serves "$PORT" "ok v1" "${ALL[@]}"
	rf_fleet_assert_record v2 bad "${ALL[@]}"
	rf_fleet_assert_record v1 live "${ALL[@]}"
	for n in "${ALL[@]}"; do
		[[ $(rf_fleet_restarts "$n" "web h$n") == 3 ]] ||
			rf_fail "expected 3 restarts on h$n:" "$(cat "$(rf_fleet_srv "$n")/restarts.log" 2>&1)"
	done
	# 50% of 4: h1-h2 switched back and healthy before h3-h4 switched.
	rf_json_order 'e.get("event") == "stage" and e.get("stage") == "health"
		and e.get("host") in ("h1", "h2") and e.get("phase") == "end" and e.get("ok")' \
		'e.get("event") == "stage" and e.get("stage") == "switch"
		and e.get("host") in ("h3", "h4")'
}

@test "hosts that disagree on the live release: releases warns DISAGREE with each host's live one, a plain rollback refuses, exit 2" {
	local n

	rf_fleet_config "${ALL[@]}" -- "$(rf_fleet_health_ini "$PORT")"
	deploy v1
	rf_assert_status 0
	deploy v2
	rf_assert_status 0
	deploy v3 -H h1
	rf_assert_status 0
	rf_fleet_assert_live v3 1
	rf_fleet_assert_live v2 2 3 4

	rf_fleet_conn_mark "${ALL[@]}"
	run --separate-stderr relflip -c "$RF_CONFIG" releases
	rf_assert_status 0
	rf_assert_stderr_has "DISAGREE"
	rf_fleet_assert_conns 1 "${ALL[@]}"
	# Each host's live release is shown, in the listing and the warning.
	[[ $output =~ h1\ [^$'\n']*live:\ v3 ]] || rf_fail "h1's live v3 not shown" "$(rf_show_run)"
	for n in 2 3 4; do
		[[ $output =~ h$n\ [^$'\n']*live:\ v2 ]] || rf_fail "h$n's live v2 not shown" "$(rf_show_run)"
	done
	rf_assert_stderr_has "h1: v3" "h2: v2" "h4: v2"

	# Selected hosts that agree: no warning.
	run --separate-stderr relflip -c "$RF_CONFIG" -H h2 -H h3 releases
	rf_assert_status 0
	[[ $stderr != *DISAGREE* ]] || rf_fail "warned on hosts that agree" "$(rf_show_run)"

	rf_fleet_snapshot "${ALL[@]}"
	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 2
	rf_assert_stderr_has "h1: v3" "h2: v2" "h4: v2"
	rf_fleet_assert_unchanged "${ALL[@]}"

	# Rolling back the odd one out with -H brings the fleet together.
	rf_fleet_conn_mark "${ALL[@]}"
	run --separate-stderr relflip -c "$RF_CONFIG" -H h1 rollback
	rf_assert_status 0
	rf_fleet_assert_conns 1 1
	rf_fleet_assert_conns 0 2 3 4
	rf_fleet_assert_live v2 "${ALL[@]}"
	rf_fleet_assert_record v3 bad 1
	run --separate-stderr relflip -c "$RF_CONFIG" releases
	rf_assert_status 0
	[[ $stderr != *DISAGREE* ]] || rf_fail "warned on hosts that agree" "$(rf_show_run)"
}
