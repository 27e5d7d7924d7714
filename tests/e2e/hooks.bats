#!/usr/bin/env bats
# [hooks] around the switch and on the runner, and the [notify] webhook, end
# to end: ./relflip against a real sshd on loopback, the sample app for
# health checks, and a local webhook receiver (lib/webhook.py) that records
# what it is sent. Each hook appends a line to $HOOKLOG saying which hook
# it is, the revisions it was given, where it ran and where current
# pointed, so that the order and the places can be checked.

load lib/deploy-suite

# The suite's setup, plus the hook log and the runner's directory.
setup() {
	rf_tmp_setup
	rf_sshd_use
	rf_config
	HOOKLOG=$RF_TMP/hooks.log
	: >"$HOOKLOG"
	# The runner's hooks run where relflip was started: here.
	RUNNER_DIR=$RF_TMP/runner
	mkdir "$RUNNER_DIR"
	cd "$RUNNER_DIR"
	NOTIFY_INI=
	CONFIG_OPTS=()
}

# hooks_ini [NAME=COMMAND]...: a [hooks] section where install,
# before_switch, after_switch, after_deploy and on_failure each append a
# line to $HOOKLOG; NAME=COMMAND runs COMMAND after that line instead of
# nothing (NAME= alone: no such hook). The runner's hooks also keep their
# stdin in $RF_TMP/NAME.json.
hooks_ini() {
	local -A extra=() off=()
	local kv h line

	for kv in "$@"; do
		if [[ -z ${kv#*=} ]]; then
			off[${kv%%=*}]=1
		else
			extra[${kv%%=*}]=${kv#*=}
		fi
	done
	echo "[hooks]"
	[[ -n ${off[install]:-} ]] || echo "install = echo install >> '$HOOKLOG'"
	for h in before_switch after_switch; do
		[[ -z ${off[$h]:-} ]] || continue
		line="$h = echo \"$h \$RELFLIP_REVISION \$RELFLIP_PREVIOUS_REVISION \$RELFLIP_HOST \$(pwd -P) \$(readlink \"\$RELFLIP_APP_PATH/current\")\" >> '$HOOKLOG'"
		echo "$line${extra[$h]:+; ${extra[$h]}}"
	done
	for h in after_deploy on_failure; do
		[[ -z ${off[$h]:-} ]] || continue
		line="$h = cat > '$RF_TMP/$h.json'; echo \"$h \$RELFLIP_COMMAND \$RELFLIP_RESULT \$RELFLIP_EXIT_CODE \$RELFLIP_REVISION \$RELFLIP_PREVIOUS_REVISION \$(pwd -P)\" >> '$HOOKLOG'"
		echo "$line${extra[$h]:+; ${extra[$h]}}"
	done
}

# with_hooks [NAME=COMMAND]...: the sample app as the service (its restart
# also logs "restart"), [health] on it, hooks_ini's [hooks], and
# $NOTIFY_INI; rf_config gets the options in CONFIG_OPTS.
with_hooks() {
	local health logged

	APP_PORT=$(rf_free_port)
	rf_app_start "$APP_PORT"
	health=$(rf_health_ini "$APP_PORT")
	logged="restart = echo restart >> '$HOOKLOG'; "
	health=${health/restart = /$logged}
	rf_config "${CONFIG_OPTS[@]}" "$health

$(hooks_ini "$@")${NOTIFY_INI:+

$NOTIFY_INI}"
}

# The hook log's lines, as one string.
hooklog() {
	cat "$HOOKLOG"
}

# assert_hooklog LINE...: the hook log is exactly these lines.
assert_hooklog() {
	local want

	want=$(printf '%s\n' "$@")
	[[ $(hooklog) == "${want%$'\n'}" ]] ||
		rf_fail "hook log:" "$(hooklog)" "--- expected:" "$want" "$(rf_show_run)"
}

# The app's release directories, as the hooks see them (pwd -P).
release_dir() {
	printf '%s/releases/%s' "$(realpath "$RF_APP")" "$1"
}

# webhook_start [--status N | --hang]: lib/webhook.py on a free port,
# recording into $WEBHOOK_LOG; sets WEBHOOK_PORT and WEBHOOK_TOKEN, and
# NOTIFY_INI to a [notify] url with the token in its path (on = always).
webhook_start() {
	WEBHOOK_PORT=$(rf_free_port)
	WEBHOOK_LOG=$RF_TMP/webhook.jsonl
	WEBHOOK_TOKEN=xoxb-T0KEN-$SRANDOM$SRANDOM
	: >"$WEBHOOK_LOG"
	"$RF_PYTHON" "$RF_LIB/webhook.py" --port "$WEBHOOK_PORT" \
		--log "$WEBHOOK_LOG" "$@" >"$RF_TMP/webhook.log" 2>&1 3>&- &
	rf_track proc $! webhook
	rf_poll 10 rf_port_open 127.0.0.1 "$WEBHOOK_PORT" ||
		rf_fail "the webhook did not listen on $WEBHOOK_PORT within 10 s"
	NOTIFY_INI="[notify]
url = http://127.0.0.1:$WEBHOOK_PORT/services/T0/B0/$WEBHOOK_TOKEN
on = ${NOTIFY_ON:-always}"
}

# webhook_count N: the webhook got exactly N requests.
webhook_count() {
	local n

	n=$(wc -l <"$WEBHOOK_LOG")
	((n == $1)) || rf_fail "the webhook got $n requests, expected $1:" "$(cat "$WEBHOOK_LOG")"
}

# webhook_last PYTHON_EXPR [ARG]...: over the last request (`req`: method,
# path, content_type, body), its body parsed (`p`) and p["relflip"] (`r`);
# the ARGs are sys.argv[3:].
webhook_last() {
	rf_py '
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not reqs:
    sys.exit("the webhook got no request")
req = reqs[-1]
p = json.loads(req["body"])
r = p.get("relflip")
if not eval("(" + sys.argv[2] + ")"):
    sys.exit("%s does not hold for %s" % (sys.argv[2], req))
' "$WEBHOOK_LOG" "$@"
}

# assert_no_token: the webhook's token is nowhere in what relflip printed.
assert_no_token() {
	[[ $output$stderr != *"$WEBHOOK_TOKEN"* ]] ||
		rf_fail "the webhook token was shown" "$(rf_show_run)"
	[[ $output$stderr != *"/services/T0/B0/"* ]] ||
		rf_fail "the webhook URL's path was shown" "$(rf_show_run)"
}

# runner_json NAME EXPR: $RF_TMP/NAME.json (a runner hook's stdin) is one
# line, a JSON object `r`, and EXPR holds.
runner_json() {
	rf_py '
import json, sys
text = open(sys.argv[1]).read()
if text.count("\n") != 1 or not text.endswith("\n"):
    sys.exit("%s is not one line: %r" % (sys.argv[1], text))
r = json.loads(text)
if not eval("(" + sys.argv[2] + ")"):
    sys.exit("%s does not hold for %s" % (sys.argv[2], text))
' "$RF_TMP/$1.json" "$2"
}

# ---------------------------------------------------------------------------
# Hooks around the switch, and after the deploy
# ---------------------------------------------------------------------------

@test "hooks run in order, each where it belongs; after_deploy reads the result event on stdin and its output is shown" {
	with_hooks "after_deploy=echo told the tracker"
	deployed v1
	: >"$HOOKLOG"
	rm -f "$RF_TMP/after_deploy.json" "$RF_TMP/on_failure.json"

	ART=$(rf_artifact v2)
	deploy --json "$ART" --revision v2
	rf_assert_status 0
	assert_hooklog "install" \
		"before_switch v2 v1 local $(release_dir v2) releases/v1" \
		"restart" \
		"after_switch v2 v1 local $(release_dir v2) releases/v2" \
		"after_deploy deploy ok 0 v2 v1 $(realpath "$RUNNER_DIR")"
	rf_assert_stderr_has "runner | told the tracker"
	# The rows' order in the events: the hooks between the right stages.
	rf_json_query '(lambda s: s.index("install") < s.index("before_switch") < s.index("switch")
		< s.index("restart") < s.index("after_switch") < s.index("health") < s.index("record"))(
		[e["stage"] for e in ev if e["event"] == "stage" and e.get("phase") == "begin"
		 and e.get("host") == "local"])'
	# after_deploy runs on the runner (no host), after the record, before the result.
	rf_json_query '(lambda i: ev[i]["event"] == "stage" and "host" not in ev[i]
		and ev[i + 1:][-1]["event"] == "result")(
		[k for k, e in enumerate(ev) if e.get("stage") == "after_deploy"][0])'
	rf_json_query 'any(e["event"] == "output" and e.get("host") == "runner"
		and e.get("line") == "told the tracker" for e in ev)'
	# Its stdin: the result event, as --json printed it (but for the time).
	runner_json after_deploy 'r["event"] == "result" and r["status"] == "ok" and r["exit_code"] == 0
		and r["revision"] == "v2" and r["previous"] == "v1" and isinstance(r["duration_ms"], int)'
	rf_py --stdin "$output" '
import json, sys
result = [json.loads(l) for l in sys.stdin if l.strip()][-1]
hook = json.load(open(sys.argv[1]))
del result["time"], hook["time"]
if result != hook:
    sys.exit("the hook read %r, the result event is %r" % (hook, result))
' "$RF_TMP/after_deploy.json"
	rf_assert_not_exists "$RF_TMP/on_failure.json"
	rf_assert_current v2
	rf_assert_record v2 live
}

@test "a failing before_switch stops before any switch: exit 7, current unchanged, on_failure told (its own failure changes nothing)" {
	with_hooks 'before_switch=[ "$RELFLIP_REVISION" != v2 ] || { echo cache cold >&2; exit 3; }' \
		"on_failure=echo paging >&2; exit 5"
	deployed v1
	: >"$HOOKLOG"
	rm -f "$RF_TMP/after_deploy.json" "$RF_TMP/on_failure.json"

	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2
	rf_assert_status 7
	rf_assert_stderr_has "before_switch hook failed with exit 3 on local: cache cold" \
		"current is unchanged" "runner | paging" \
		"warning: the on_failure hook failed on the runner (exit 5: paging); it does not change the exit code"
	assert_hooklog "install" \
		"before_switch v2 v1 local $(release_dir v2) releases/v1" \
		"on_failure deploy failed 7 v2 v1 $(realpath "$RUNNER_DIR")"
	runner_json on_failure 'r["status"] == "failed" and r["exit_code"] == 7 and r["revision"] == "v2"'
	rf_assert_not_exists "$RF_TMP/after_deploy.json"
	rf_assert_current v1
	rf_assert_record v1 live
	rf_assert_record v2 failed
	rf_assert_release_intact v1
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	rf_assert_log 2 'last["exit_code"] == 7 and last["result"] == "failed"'
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

@test "a failing after_switch counts as a failed check: exit 8, back on the previous release, on_failure told" {
	with_hooks 'after_switch=[ "$RELFLIP_REVISION" != v2 ] || { echo purge refused >&2; exit 4; }'
	deployed v1
	: >"$HOOKLOG"
	rm -f "$RF_TMP/after_deploy.json" "$RF_TMP/on_failure.json"

	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2
	rf_assert_status 8
	rf_assert_stderr_has "after_switch hook failed with exit 4 on local: purge refused" \
		"switched back local" "current -> releases/v1"
	# The way back restarts, and runs neither hook again.
	assert_hooklog "install" \
		"before_switch v2 v1 local $(release_dir v2) releases/v1" \
		"restart" \
		"after_switch v2 v1 local $(release_dir v2) releases/v2" \
		"restart" \
		"on_failure deploy rolled_back 8 v2 v1 $(realpath "$RUNNER_DIR")"
	runner_json on_failure 'r["status"] == "rolled_back" and r["exit_code"] == 8 and r["previous"] == "v1"'
	rf_assert_not_exists "$RF_TMP/after_deploy.json"
	rf_assert_current v1
	rf_assert_record v2 bad
	rf_assert_record v1 live
	rf_assert_not_exists "$RF_APP/.relflip/lock"
	[[ $(rf_app_body "$APP_PORT") == "ok v1" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
}

@test "a failing after_deploy is a warning: the deploy is done and exits 0" {
	with_hooks "after_deploy=echo sentry down >&2; exit 6" "on_failure="
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "deployed v1" "runner | sentry down" \
		"warning: the after_deploy hook failed on the runner (exit 6: sentry down); the deploy itself is done: exit 0 stands"
	rf_assert_current v1
	rf_assert_record v1 live
}

@test "--dry-run shows before_switch, after_switch and the runner's plan, and runs none of them" {
	webhook_start
	with_hooks
	deployed v1
	webhook_count 1
	: >"$HOOKLOG"

	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2 --dry-run
	rf_assert_status 0
	rf_assert_stdout_has "before_switch" "after_switch" "RELFLIP_RELEASE_PATH='$RF_APP/releases/v2'" \
		"echo \"before_switch \$RELFLIP_REVISION" "echo \"after_switch \$RELFLIP_REVISION" \
		"plan on the runner" "after_deploy" "on_failure" "notify" "POST the result to the [notify] url"
	[[ $output == *"before_switch"*"  switch "*"restart"*"after_switch"*"health"* ]] ||
		rf_fail "the rows are not in order" "$(rf_show_run)"
	assert_no_token
	[[ ! -s $HOOKLOG ]] || rf_fail "a hook ran under --dry-run:" "$(hooklog)"
	webhook_count 1
	rf_assert_current v1
	rf_assert_not_exists "$RF_APP/releases/v2"
}

# ---------------------------------------------------------------------------
# Rollback
# ---------------------------------------------------------------------------

@test "rollback runs before_switch and after_switch in the target release, not after_deploy, and tells the webhook" {
	webhook_start
	with_hooks
	deployed v1
	deployed v2
	: >"$HOOKLOG"

	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 0
	assert_hooklog "before_switch v1 v2 local $(release_dir v1) releases/v2" \
		"restart" \
		"after_switch v1 v2 local $(release_dir v1) releases/v1"
	rf_assert_current v1
	webhook_count 3
	webhook_last 'r["status"] == "ok" and r["revision"] == "v1" and r["previous"] == "v2"
		and p["text"].startswith("relflip rollback of %s to v1 on 1 host" % sys.argv[3])' "$RF_APP"
	assert_no_token
}

@test "a rollback whose before_switch fails changes nothing: exit 7, its target stays good, on_failure told" {
	# Refused only when leaving v2: the rollback to v1.
	with_hooks 'before_switch=[ "$RELFLIP_PREVIOUS_REVISION" != v2 ] || { echo not now >&2; exit 9; }'
	deployed v1
	deployed v2
	rf_assert_record v1 good
	: >"$HOOKLOG"

	run --separate-stderr relflip -c "$RF_CONFIG" rollback
	rf_assert_status 7
	rf_assert_stderr_has "before_switch hook failed with exit 9 on local: not now"
	assert_hooklog "before_switch v1 v2 local $(release_dir v1) releases/v2" \
		"on_failure rollback failed 7 v1 v2 $(realpath "$RUNNER_DIR")"
	rf_assert_current v2
	rf_assert_record v2 live
	rf_assert_record v1 good
	rf_assert_log 3 'last["command"] == "rollback" and last["result"] == "failed" and last["exit_code"] == 7'
	rf_assert_not_exists "$RF_APP/.relflip/lock"
}

# ---------------------------------------------------------------------------
# The webhook
# ---------------------------------------------------------------------------

@test "notify on = always: a JSON POST with text and the result after a good deploy and a rolled back one; the URL's token never shown" {
	webhook_start
	with_hooks "on_failure=" "after_deploy="
	deployed v1
	webhook_count 1
	webhook_last 'req["method"] == "POST" and req["content_type"] == "application/json"
		and req["path"].endswith(sys.argv[3]) and r["event"] == "result"
		and r["status"] == "ok" and r["exit_code"] == 0 and r["revision"] == "v1" and r["previous"] is None
		and p["text"].startswith("relflip deploy of v1 to ") and ": ok in " in p["text"]' "$WEBHOOK_TOKEN"
	assert_no_token

	ART=$(rf_artifact v2 HEALTH_STATUS=503)
	deploy "$ART" --revision v2 -v
	rf_assert_status 8
	webhook_count 2
	webhook_last 'r["status"] == "rolled_back" and r["exit_code"] == 8 and r["revision"] == "v2"
		and r["previous"] == "v1" and "rolled back to v1 (exit 8): health check failed" in p["text"]'
	assert_no_token
	rf_assert_current v1
}

@test "notify on = failure: nothing after a good deploy, a POST after a failed one" {
	NOTIFY_ON=failure webhook_start
	with_hooks 'before_switch=[ "$RELFLIP_REVISION" != v2 ] || exit 3'
	deployed v1
	webhook_count 0

	ART=$(rf_artifact v2)
	deploy "$ART" --revision v2
	rf_assert_status 7
	webhook_count 1
	webhook_last 'r["status"] == "failed" and r["exit_code"] == 7 and r["revision"] == "v2"
		and "failed, current unchanged (exit 7): before_switch hook failed" in p["text"]'
	assert_no_token
}

@test "a dead webhook only warns, at once: the deploy exits 0" {
	local port

	port=$(rf_free_port)
	NOTIFY_INI="[notify]
url = http://127.0.0.1:$port/services/T0/B0/dead-T0KEN"
	with_hooks
	ART=$(rf_artifact v1)

	deploy --json "$ART" --revision v1
	rf_assert_status 0
	rf_assert_stderr_has "warning: the [notify] webhook was not told of this deploy" \
		"the deploy's result stands (exit 0)"
	[[ $output$stderr != *dead-T0KEN* ]] || rf_fail "the token was shown" "$(rf_show_run)"
	# A refused connection is known at once: no waiting out the 5 s limit.
	rf_json_query '[e["duration_ms"] for e in ev if e.get("stage") == "notify"
		and e.get("phase") == "end" and not e["ok"]][0] < 1500'
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	rf_assert_current v1
}

@test "a webhook that never answers costs 5 s at most and only warns" {
	local t0 elapsed

	webhook_start --hang
	with_hooks
	ART=$(rf_artifact v1)

	t0=$(rf_now_ms)
	deploy --json "$ART" --revision v1
	elapsed=$(($(rf_now_ms) - t0))
	rf_assert_status 0
	rf_assert_stderr_has "warning: the [notify] webhook was not told of this deploy" "timed out"
	webhook_count 1
	assert_no_token
	# The notify stage took the 5 s limit, not more.
	rf_json_query '[e["duration_ms"] for e in ev if e.get("stage") == "notify"
		and e.get("phase") == "end"][0] in range(4500, 7000)'
	rf_json_query 'ev[-1]["event"] == "result" and ev[-1]["exit_code"] == 0'
	((elapsed < 30000)) || rf_fail "the deploy took $elapsed ms"
	rf_assert_current v1
}

@test "no secret reaches the webhook or on_failure's stdin: key text and a token from the environment, redacted in the text" {
	local keyline

	webhook_start
	# The token comes from the environment, the key from identity_env;
	# the failing hook prints both, so both would be in the failure's text.
	export RF_HOOK_SECRET=$WEBHOOK_TOKEN TEST_KEY
	TEST_KEY=$(cat "$RF_KEY")
	keyline=$(sed -n 2p "$RF_KEY")
	[[ -n $keyline && $keyline != -----* ]] || rf_fail "no key body line in $RF_KEY"
	NOTIFY_INI="[notify]
url = http://127.0.0.1:$WEBHOOK_PORT/services/T0/B0/\${RF_HOOK_SECRET}"
	CONFIG_OPTS=(--no-identity --ssh "identity_env = TEST_KEY")
	with_hooks "before_switch=echo \"\$(sed -n 2p '$RF_KEY') $WEBHOOK_TOKEN\" >&2; exit 3"
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1
	rf_assert_status 7
	rf_assert_stderr_has "before_switch hook failed with exit 3 on local: [redacted] [redacted]"
	webhook_count 1
	webhook_last 'req["path"].endswith(sys.argv[3]) and r["exit_code"] == 7
		and "before_switch hook failed with exit 3 on local: [redacted] [redacted]" in p["text"]
		and sys.argv[4] not in req["body"] and sys.argv[3] not in req["body"]' \
		"$WEBHOOK_TOKEN" "$keyline"
	runner_json on_failure 'r["exit_code"] == 7'
	[[ $(<"$RF_TMP/on_failure.json") != *"$keyline"* &&
		$(<"$RF_TMP/on_failure.json") != *"$WEBHOOK_TOKEN"* ]] ||
		rf_fail "a secret on on_failure's stdin:" "$(<"$RF_TMP/on_failure.json")"
	[[ $output$stderr != *"$keyline"* ]] || rf_fail "the key was shown" "$(rf_show_run)"
	assert_no_token
	rf_assert_not_exists "$RF_APP/current"
}

@test "a [notify] url that is no http URL: exit 2 before any connection, and the URL is not echoed" {
	NOTIFY_INI="[notify]
url = htp://127.0.0.1/services/T0/B0/typo-T0KEN"
	with_hooks
	ART=$(rf_artifact v1)

	deploy "$ART" --revision v1
	rf_assert_status 2
	rf_assert_stderr_has "[notify] url: the value is not an http:// or https:// URL (not shown: a webhook's URL is often its credential"
	[[ $output$stderr != *typo-T0KEN* ]] || rf_fail "the token was shown" "$(rf_show_run)"
	[[ ! -s $HOOKLOG ]] || rf_fail "a hook ran:" "$(hooklog)"
	rf_assert_not_exists "$RF_APP/releases/v1"
}

@test "the [notify] url written out in the file is a secret from the start: a hook that prints it or its path shows [redacted]" {
	local path

	webhook_start
	path=127.0.0.1:$WEBHOOK_PORT/services/T0/B0/$WEBHOOK_TOKEN
	with_hooks "after_switch=echo \"posting to http://$path and $path\""
	ART=$(rf_artifact v1)

	deploy --json "$ART" --revision v1
	rf_assert_status 0
	rf_json_query 'any(e["event"] == "output" and e.get("host") == "local" and e.get("line")
		== "posting to [redacted] and 127.0.0.1:%s[redacted]" % '"$WEBHOOK_PORT"' for e in ev)'
	assert_no_token
	webhook_count 1
	webhook_last 'r["status"] == "ok"'
}
