#!/usr/bin/env bash
# relflip in two minutes, on this machine alone: a throwaway sshd on
# loopback stands in for a server, examples/flask-app (Flask under gunicorn,
# started and restarted by its ./serve script, as systemd would) stands in
# for the web app, and ./relflip runs against them: pack and deploy v1,
# deploy v2, deploy a broken v3 that fails its health check and is rolled
# back to v2 (exit 8, expected), then the layout left on the server.
# Everything it starts is stopped by PID on the way out (gunicorn through
# `serve stop`, which reads its pidfile), and its temporary directory is
# removed. Run by `make demo`; needs root (sshd) and the packages from
# scripts/install-deps.sh (python3-flask, gunicorn, curl).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RELFLIP=${RELFLIP:-$ROOT/relflip}
EXAMPLE=$ROOT/examples/flask-app

# shellcheck source=tests/e2e/lib/hosts.bash
source "$ROOT/tests/e2e/lib/hosts.bash"

say() {
	printf '\n==> %s\n' "$*"
}

note() {
	printf '    %s\n' "$*"
}

# Show a command, then run it; its output goes straight to the terminal.
show() {
	printf '\n    $ %s\n' "$*"
	"$@"
}

finish() {
	local rc=$?

	trap - EXIT INT TERM
	if [[ -n ${RF_TMP:-} && -d $RF_TMP ]]; then
		say "cleaning up: stopping gunicorn and the sshd, removing $RF_TMP"
		# The gunicorn that the restart hook started, by its pidfile,
		# through the same script (a no-op when none was started).
		if [[ -n ${app_port:-} ]]; then
			"$EXAMPLE/serve" stop "$RF_APP" "$app_port" 2>&1 | sed 's/^/    /' ||
				note "warning: could not stop gunicorn on port $app_port"
		fi
		rf_cleanup
		rm -rf "$RF_TMP"
	fi
	if ((rc == 0)); then
		say "demo done"
	else
		say "demo stopped (exit $rc)"
	fi
	exit "$rc"
}

if [[ ! -x $RELFLIP ]]; then
	echo "demo: $RELFLIP is not built; run make first" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "demo: run it as root: the throwaway sshd logs in as root" >&2
	exit 2
fi
if ! command -v gunicorn >/dev/null || ! command -v curl >/dev/null ||
	! /usr/bin/python3 -c 'import flask' 2>/dev/null; then
	echo "demo: needs gunicorn, curl and python3-flask: run scripts/install-deps.sh" >&2
	exit 2
fi

RF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/relflip-demo.XXXXXX")
trap finish EXIT
trap 'exit 130' INT TERM

RF_APP=$RF_TMP/srv/app
mkdir -p "$RF_TMP/srv"

port=$(rf_free_port)
say "starting a throwaway sshd on 127.0.0.1:$port"
RF_SSHD_PORT=$port rf_sshd_start sshd
note "its own host key, in $RF_KNOWN_HOSTS; a fresh ed25519 client key, $RF_KEY"
note "sshd (pid $RF_SSHD_PID) is up on 127.0.0.1:$RF_PORT; its log: $RF_TMP/sshd.log"

app_port=$(rf_free_port)
say "writing the config: one host, app path $RF_APP, the app on 127.0.0.1:$app_port"
note "hooks run in the new release; the restart runs in current, so ./serve is the"
note "live release's own copy of examples/flask-app/serve (gunicorn --chdir APP/current)"
rf_config --host demo "[hooks]
install = python3 -c 'import flask; print(\"flask\", flask.__version__, \"imports fine\")'
migrate = echo migrating

[service \"web\"]
restart = ./serve restart $RF_APP $app_port

[health]
url = $(rf_app_url "$app_port")
expect_status = 200
expect_revision = yes
interval = 0.2
retries = 10"
sed 's/^/    | /' "$RF_CONFIG"

say "relflip check: can a deploy go ahead? (the app path is missing: the first deploy creates it)"
rc=0
show "$RELFLIP" -c "$RF_CONFIG" check || rc=$?
if ((rc != 0)); then
	note "relflip check exited $rc: see the table and the error above"
	exit "$rc"
fi
note "exit 0: every host passes (nothing answers the health URL before the first deploy)"

say "the same, as JSON events for CI (one object a line on stdout)"
show "$RELFLIP" -c "$RF_CONFIG" --json check 2>/dev/null

# ---------------------------------------------------------------------------
# Deploy walk-through: pack and deploy v1, deploy v2, deploy a v3 whose
# health check fails so that relflip rolls back to v2 (exit 8), then the
# state on the server.
# ---------------------------------------------------------------------------

# show_app: what the app answers on /health, as a user would see it.
show_app() {
	local url

	url=$(rf_app_url "$app_port")
	printf '\n    $ curl -s %s\n' "$url"
	curl -s --max-time 5 -w '(HTTP %{http_code})\n' "$url" | sed 's/^/    /'
}

# deploy_step ARTIFACT REVISION EXPECTED_EXIT: deploy; the demo stops unless
# relflip exits with EXPECTED_EXIT.
deploy_step() {
	local rc=0

	show "$RELFLIP" -c "$RF_CONFIG" deploy "$1" --revision "$2" || rc=$?
	if ((rc != $3)); then
		note "relflip deploy $2 exited $rc, expected $3: the demo stops here"
		exit $((rc == 0 ? 1 : rc))
	fi
	note "exit $rc, as expected"
}

build=$RF_TMP/build
mkdir -p "$build"

say "relflip pack: v1 of examples/flask-app, a reproducible tarball with REVISION added"
show "$RELFLIP" pack "$EXAMPLE" -o "$build/app-v1.tar.gz" --revision v1
tar -tvzf "$build/app-v1.tar.gz" | sed 's/^/      /'

say "deploy v1: the first deploy creates the layout; the restart hook starts gunicorn"
deploy_step "$build/app-v1.tar.gz" v1 0

say "the app answers with the revision it read from REVISION at start-up"
show_app

say "deploy v2: a second release next to v1; current flips, gunicorn restarts, health sees v2"
show "$RELFLIP" pack "$EXAMPLE" -o "$build/app-v2.tar.gz" --revision v2
deploy_step "$build/app-v2.tar.gz" v2 0
show_app

say "deploy v3, broken on purpose: a BROKEN file in the release makes /health answer 503"
cp -R "$EXAMPLE" "$build/src-v3"
touch "$build/src-v3/BROKEN"
show "$RELFLIP" pack "$build/src-v3" -o "$build/app-v3.tar.gz" --revision v3
note "expected: install, migrate, switch and restart pass, the health check fails,"
note "relflip switches back to v2, restarts and checks it, marks v3 bad, and exits 8"
deploy_step "$build/app-v3.tar.gz" v3 8

say "the server's app path now: $RF_APP (the insides of releases/*/ and shared/ left out)"
(
	cd "$RF_APP"
	find . -mindepth 1 -maxdepth 3 \( -path './releases/*/*' -o -path './shared/*' \) -prune -o -print |
		sort | while IFS= read -r p; do
		if [[ -L $p ]]; then
			printf '    %s -> %s\n' "$p" "$(readlink "$p")"
		elif [[ -d $p ]]; then
			printf '    %s/\n' "$p"
		elif [[ $p == ./.relflip/releases/*.json ]]; then
			printf '    %-30s status: %s\n' "$p" \
				"$(sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' "$p")"
		elif [[ $p == ./.relflip/log.jsonl ]]; then
			printf '    %-30s %s lines\n' "$p" "$(wc -l <"$p")"
		else
			printf '    %s\n' "$p"
		fi
	done
)
note "current -> $(readlink "$RF_APP/current"), whose REVISION says $(cat "$RF_APP/current/REVISION")"
note "releases/v2/ holds: $(cd "$RF_APP/releases/v2" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort | tr '\n' ' ')"

say "what the person on call sees: relflip releases (from .relflip/releases/*.json)"
"$RELFLIP" -c "$RF_CONFIG" -q releases

say "the deploy log, .relflip/log.jsonl: one line per deploy, appended"
sed 's/^/    /' "$RF_APP/.relflip/log.jsonl"

say "and the app still serves v2"
show_app
body=$(curl -s --max-time 5 "$(rf_app_url "$app_port")" || true)
if [[ $body != "ok v2" ]]; then
	note "expected 'ok v2' after the rollback, got '$body'"
	exit 1
fi
