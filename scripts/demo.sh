#!/usr/bin/env bash
# relflip in two minutes, on this machine alone: a throwaway sshd on
# loopback stands in for a server, the sample app from the end-to-end tests
# stands in for the web app, and ./relflip runs against them. Everything it
# starts is stopped by PID on the way out, and its temporary directory is
# removed. Run by `make demo`; needs root (sshd) and the packages from
# scripts/install-deps.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RELFLIP=${RELFLIP:-$ROOT/relflip}

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
		say "cleaning up: stopping the sshd and the app, removing $RF_TMP"
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
say "starting the sample app on 127.0.0.1:$app_port (what a restart would bounce)"
rf_app_start "$app_port" "$RF_APP"
note "it answers GET /health with 'ok <revision>'; no release is live yet"

say "writing the config: one host, app path $RF_APP"
rf_config --host demo "[service \"web\"]
restart = $RF_LIB/app-ctl restart $RF_APP $app_port

[health]
url = $(rf_app_url "$app_port")
expect_status = 200
interval = 0.2
retries = 20"
sed 's/^/    | /' "$RF_CONFIG"

say "relflip check: can a deploy go ahead? (the app path is missing: the first deploy creates it)"
rc=0
show "$RELFLIP" -c "$RF_CONFIG" check || rc=$?
if ((rc != 0)); then
	note "relflip check exited $rc: see the table and the error above"
	exit "$rc"
fi
note "exit 0: every host passes"

say "the same, as JSON events for CI (one object a line on stdout)"
show "$RELFLIP" -c "$RF_CONFIG" --json check 2>/dev/null

# ---------------------------------------------------------------------------
# Deploy walk-through. This is where the demo goes on once `relflip deploy`
# lands: pack and deploy v1, deploy v2, deploy a v3 whose health check fails
# so that relflip rolls back to v2 (exit 8), then `relflip releases`.
# The server, the app, the config (with its [service] restart line and
# [health] url) and the cleanup above are already what that part needs.
# ---------------------------------------------------------------------------
