#!/usr/bin/env bash
# bench-capistrano.sh: relflip against Capistrano 3 and the bare OpenSSH
# script on the common case (issue 11, parts 2 and 3), on loopback and on a
# WAN-shaped link. Part c. of `make bench` (scripts/bench.sh); runs alone too.
#
# The app: a Flask app served by gunicorn, written by bench/make-app.py
# (2,012 files, 5.7 MB, 4.6 MB as tar.gz), in a git repository: the
# runner's checkout, pushed to a bare repository standing in for the git
# host. Each round commits one changed file (BUILD) and every tool deploys
# that commit, then rolls it back:
#   relflip   `relflip pack` of the checkout at that commit into a plain
#             .tar (timed with the deploy: BENCH_RELFLIP_ARTIFACT, below),
#             `relflip deploy --revision SHA`; shared_dirs log
#             tmp/pids db, shared_files .env, migrate hook (migrate.py: a row
#             in a sqlite db), restart by HUP to gunicorn, health check with
#             expect_revision (interval 0.1 s). `relflip rollback`.
#   cap       Capistrano 3 (Debian's package; installed here when missing
#             unless BENCH_CAP_INSTALL=0) with bench/capistrano/: the stock
#             git strategy from the bare repository (file://, so the server
#             fetches locally, as from a git host next to it), linked_dirs and
#             linked_files as relflip's shared ones, keep_releases 5, the same
#             migrate, HUP and health check (a curl loop on the server, 0.1 s
#             apart, expecting current/REVISION in the body). `cap bench
#             deploy`, `cap bench deploy:rollback`. net-ssh checks the host key
#             against the bench's known_hosts (verify_host_key: :always).
#   bare      the bare OpenSSH script: the same git archive, sha256sum, one
#             `sftp -b` put and ONE ssh (check, unpack, link shared, REVISION,
#             migrate, flip, HUP, the same health loop, prune to 5). Rollback:
#             one ssh (flip to the previous release, HUP, health loop).
# The three alternate within each round, the order rotating; loopback rounds
# first, then the same through netem-proxy (tests/tools/netem-proxy.c,
# 25 ms each way, 100 Mbit/s per direction: BENCH_WAN_DELAY_MS,
# BENCH_WAN_MBIT). Medians.
#
# Counted for every run: SSH connections, exec channels, sftp sessions and
# direct-tcpip channels in the sshd log (LogLevel DEBUG1); SFTP requests in
# the sftp-server log (the Subsystem is /usr/lib/openssh/sftp-server -l
# DEBUG3 through a wrapper that sends its log to a file: internal-sftp
# logs to syslog only); TCP payload bytes each way, from a header-only
# tcpdump capture of the sshd's port (bench/wire-bytes.py: each byte once,
# retransmissions counted apart).
#
# The servers' side (each tool's app path, Capistrano's repository mirror)
# is a journaled ext4 on a loop device, as on a server (bench_server_fs in
# scripts/bench-lib.sh says why; BENCH_SERVER_FS=tmp keeps it in /tmp).
#
# relflip's artifact: a second deploy moves only what changed, so what the
# runner spends compressing the artifact is lost time; `relflip pack -o
# X.tar` (the packer the README shows) costs about 0.12 s here where `git
# archive --format=tar.gz` costs 0.35 s. BENCH_RELFLIP_ARTIFACT=git-tar.gz
# measures relflip with the bare script's `git archive --format=tar.gz`.
#
# Knobs: BENCH_RUNS (5, at least 3), BENCH_WAN (1; 0: loopback only),
# BENCH_CAP (1; 0: no Capistrano rows), BENCH_INSTALL (1: apt-get install -y
# capistrano and tcpdump when missing; 0: skip what needs them), BENCH_OUT
# (the results section goes there as well as to stdout), BENCH_KEEP (1: keep
# the temporary directory, logs and captures, for a look).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RELFLIP=${RELFLIP:-$ROOT/relflip}
BENCH_NAME=bench-capistrano
RUNS=${BENCH_RUNS:-5}
WAN=${BENCH_WAN:-1}
CAP=${BENCH_CAP:-1}
OUT=${BENCH_OUT:-}
SERVE=$ROOT/examples/flask-app/serve
TOOLS=(relflip cap bare)

# shellcheck source=tests/e2e/lib/hosts.bash
source "$ROOT/tests/e2e/lib/hosts.bash"
# shellcheck source=tests/tools/netem-proxy.bash
source "$ROOT/tests/tools/netem-proxy.bash"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

bench_checks BENCH_RUNS
for tool in git gunicorn curl sftp ssh sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "$BENCH_NAME: needs $tool (scripts/install-deps.sh installs it)" >&2
		exit 2
	}
done
/usr/bin/python3 -c 'import flask' 2>/dev/null || { echo "$BENCH_NAME: needs python3-flask" >&2; exit 2; }
[[ -x /usr/lib/openssh/sftp-server ]] || { echo "$BENCH_NAME: needs /usr/lib/openssh/sftp-server (openssh-sftp-server)" >&2; exit 2; }

# Capistrano: its rows are skipped, saying why, when it cannot run.
CAP_SKIPPED=
if [[ $CAP != 1 ]]; then
	CAP_SKIPPED="BENCH_CAP=$CAP"
elif ! command -v cap >/dev/null && ! bench_install capistrano; then
	CAP_SKIPPED=$INSTALL_FAILED
fi
if [[ -n $CAP_SKIPPED ]]; then
	TOOLS=(relflip bare)
	note "the Capistrano rows are skipped: $CAP_SKIPPED"
fi

# On exit, before bench_finish stops the rest by PID: each gunicorn,
# gracefully, through the script that started it.
bench_stop_extra() {
	local tool

	for tool in "${!APP[@]}"; do
		"$SERVE" stop "${APP[$tool]}" "${PORT[$tool]}" >/dev/null 2>&1 || true
	done
}

declare -A APP=() PORT=()
bench_tmp relflip-bench-cap
mkdir -p "$RF_TMP/runs" "$RF_TMP/art"
bench_server_fs "$RF_TMP/srv"
t_start=$(rf_now_ms)
LOAD_START=$(load_now)

say "c. relflip vs Capistrano 3 vs bare OpenSSH: the sshd (LogLevel DEBUG1, sftp-server -l DEBUG3 to a file)"
SFTP_LOG=$RF_TMP/sftp-server.log
cat >"$RF_TMP/sftp-logged" <<EOF
#!/bin/sh
# sftp-server logging every request to a file: internal-sftp logs to syslog only.
exec /usr/lib/openssh/sftp-server -e -l DEBUG3 2>>'$SFTP_LOG'
EOF
chmod 755 "$RF_TMP/sftp-logged"
bench_sshd_start sshd DEBUG1 "$RF_TMP/sftp-logged"
SSHD_LOG=$BENCH_SSHD_LOG
rf_ssh_opts
note "sshd on 127.0.0.1:$BENCH_SSHD_PORT, log $SSHD_LOG"
WIRE_SKIPPED=
if ! command -v tcpdump >/dev/null && ! bench_install tcpdump; then
	WIRE_SKIPPED=$INSTALL_FAILED
elif wire_start "$BENCH_SSHD_PORT"; then
	note "tcpdump captures the TCP headers to and from port $BENCH_SSHD_PORT: $WIRE_PCAP"
fi
[[ -z $WIRE_SKIPPED ]] || note "bytes on the wire are not counted: $WIRE_SKIPPED"

# ---------------------------------------------------------------------------
say "the app: bench/make-app.py in a git repository (the runner's checkout) and a bare one (the git host)"
SRC=$RF_TMP/src
ORIGIN=$RF_TMP/origin.git
"$RF_PYTHON" "$ROOT/bench/make-app.py" "$SRC" >/dev/null
APP_FILES=$(find "$SRC" -type f | wc -l)
APP_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
# Fixed names and dates: the same commits, so the same SHAs, every run.
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
git_commit() { # N MESSAGE
	GIT_AUTHOR_DATE="@$((1700000000 + $1)) +0000" GIT_COMMITTER_DATE="@$((1700000000 + $1)) +0000" \
		git -C "$SRC" commit -q -m "$2"
}
git -C "$SRC" init -q -b main
git -C "$SRC" add -A
git_commit 0 "benchapp"
git init -q --bare -b main "$ORIGIN"
git -C "$SRC" remote add origin "$ORIGIN"
git -C "$SRC" push -q origin main
git -C "$SRC" archive --format=tar.gz -o "$RF_TMP/art/size.tar.gz" HEAD
APP_GZ=$(stat -c %s "$RF_TMP/art/size.tar.gz")
rm -f "$RF_TMP/art/size.tar.gz"
note "$APP_FILES files, $APP_BYTES bytes; git archive --format=tar.gz: $APP_GZ bytes"

# commit N: the one changed file of deploy N, committed and pushed; SHA is
# the new commit.
commit() {
	printf '%s\n' "$1" >"$SRC/BUILD"
	git -C "$SRC" add BUILD
	git_commit "$1" "build $1"
	git -C "$SRC" push -q origin main
	SHA=$(git -C "$SRC" rev-parse HEAD)
}

# ---------------------------------------------------------------------------
# The servers' side: an app path and a gunicorn port per tool, the same
# shared/.env in each.
for tool in "${TOOLS[@]}"; do
	APP[$tool]=$RF_TMP/srv/$tool
	PORT[$tool]=$(rf_free_port)
	mkdir -p "${APP[$tool]}/shared"
	printf 'SECRET_KEY=bench\n' >"${APP[$tool]}/shared/.env"
done
mkdir -p "${APP[bare]}/releases" "${APP[bare]}/.incoming"

pidfile() { # TOOL
	printf '%s/shared/tmp/pids/gunicorn-%s.pid' "${APP[$1]}" "${PORT[$1]}"
}

# The health check of Capistrano and of the bare script, on the server:
# relflip's expect_revision, 0.1 s apart, at most 100 tries (bench/capistrano
# /config/deploy.rb has the same line).
health_loop() { # TOOL
	printf '%s' "want=\$(cat ${APP[$1]}/current/REVISION) && i=0 && until curl -fsS --max-time 5 http://127.0.0.1:${PORT[$1]}/health 2>/dev/null | grep -qF \"\$want\"; do i=\$((i + 1)); [ \$i -le 100 ] || { echo \"unhealthy: want \$want\" >&2; exit 1; }; sleep 0.1; done"
}

hup() { # TOOL
	printf '%s' "kill -HUP \"\$(cat $(pidfile "$1"))\""
}

# relflip's configs: LINK lo or wan (the port), MODE full or bootstrap (the
# first deploy, before gunicorn runs: no restart, no health check).
relflip_ini() { # LINK MODE
	local port=$BENCH_SSHD_PORT extra file=$RF_TMP/relflip-$1-$2.ini

	if [[ -e $file ]]; then
		echo "$file"
		return
	fi
	[[ $1 == lo ]] || port=$BENCH_PROXY_PORT
	extra="[deploy]
keep_releases = 5

[hooks]
migrate = python3 migrate.py"
	if [[ $2 == full ]]; then
		extra+="

[service \"web\"]
restart = $(hup relflip)

[health]
url = http://127.0.0.1:${PORT[relflip]}/health
expect_status = 200
expect_revision = yes
interval = 0.1
retries = 100
timeout = 5"
	fi
	rf_config --file "$file" --path "${APP[relflip]}" --port "$port" --host bench \
		--app "shared_dirs = log tmp/pids db" --app "shared_files = .env" "$extra"
	echo "$file"
}

# ---------------------------------------------------------------------------
# Counting, around each timed run.

count_begin() {
	C_SSHD=$(log_lines "$SSHD_LOG")
	C_SFTP=$(log_lines "$SFTP_LOG")
	C_T0=$EPOCHREALTIME
}

count_end() { # CASE TOOL RUN
	local case=$1 tool=$2 run=$3

	record "$case" "$tool.conns" "$run" "$(log_count "$SSHD_LOG" "$C_SSHD" 'Accepted publickey for')"
	record "$case" "$tool.execs" "$run" "$(log_count "$SSHD_LOG" "$C_SSHD" 'Starting session: command for')"
	record "$case" "$tool.sftp" "$run" "$(log_count "$SSHD_LOG" "$C_SSHD" "Starting session: subsystem 'sftp'")"
	record "$case" "$tool.tcpip" "$run" "$(log_count "$SSHD_LOG" "$C_SSHD" 'server_request_direct_tcpip: originator')"
	record "$case" "$tool.sftpreq" "$run" "$(log_count "$SFTP_LOG" "$C_SFTP" 'request [0-9]+: sent ')"
	# By type: each request's first line, "request N: TYPE ...".
	tail -n +"$((C_SFTP + 1))" "$SFTP_LOG" 2>/dev/null |
		sed -n -E '/request [0-9]+: sent /d; s/.*request [0-9]+: ([a-z-]+).*/\1/p' |
		sort | uniq -c | while read -r n type; do
		record "$case" "$tool.sftp_$type" "$run" "$n"
	done
	[[ -n $WIRE_SKIPPED ]] || wire_window "$case,$tool,$run" "$C_T0" "$EPOCHREALTIME"
}

# check_serves TOOL SHA: the app answers with that revision.
check_serves() {
	local body

	body=$(curl -s --max-time 5 "http://127.0.0.1:${PORT[$1]}/health" || true)
	[[ $body == "ok $2" ]] || die "$1: the app answers '$body', expected 'ok $2'"
}

# ---------------------------------------------------------------------------
# The deployers. deploy_TOOL CASE RUN LINK SHA; rollback_TOOL CASE RUN LINK.
# CASE "" is a run not measured (bootstrap and warm-up).

ssh_port() { # LINK
	if [[ $1 == lo ]]; then echo "$BENCH_SSHD_PORT"; else echo "$BENCH_PROXY_PORT"; fi
}

archive() { # SHA ART
	git -C "$SRC" archive --format=tar.gz -o "$2" "$1"
}

# relflip's artifact of SHA in ART (see BENCH_RELFLIP_ARTIFACT above); SRC
# is checked out at SHA, the commit just made.
RELFLIP_ARTIFACT=${BENCH_RELFLIP_ARTIFACT:-pack.tar}
case $RELFLIP_ARTIFACT in
pack.tar) RELFLIP_ART_NAME=relflip.tar ;;
git-tar.gz) RELFLIP_ART_NAME=relflip.tar.gz ;;
*) die "BENCH_RELFLIP_ARTIFACT: pack.tar or git-tar.gz, not '$RELFLIP_ARTIFACT'" ;;
esac
relflip_artifact() { # SHA ART
	if [[ $RELFLIP_ARTIFACT == pack.tar ]]; then
		"$RELFLIP" pack "$SRC" -o "$2" --revision "$1" >/dev/null 2>"$RF_TMP/pack.err" ||
			die "relflip pack failed: $(tail -n 5 "$RF_TMP/pack.err")"
	else
		archive "$@"
	fi
}

# RELFLIP_END is when relflip exited (microseconds): the wall time stops
# there, before its events are read.
relflip_run() { # CASE RUN LINK MODE ARGS...: relflip, its events kept
	local case=$1 run=$2 link=$3 mode=$4 base ini rc=0

	shift 4
	base=$RF_TMP/runs/${case:-warm}-relflip-$run-$1
	ini=$(relflip_ini "$link" "$mode")
	"$RELFLIP" -c "$ini" --json "$@" >"$base.json" 2>"$base.err" || rc=$?
	RELFLIP_END=${EPOCHREALTIME/./}
	if ((rc != 0)); then
		tail -n 20 "$base.err" >&2
		die "relflip $* exited $rc (expected 0); see above"
	fi
	[[ -z $case ]] && return 0
	relflip_metrics "$base.json" >"$base.metrics" || die "relflip $*: no result in $base.json"
	while read -r metric value; do
		record "$case" "relflip.$metric" "$run" "$value"
	done <"$base.metrics"
}

deploy_relflip() { # CASE RUN LINK SHA [MODE]
	local case=$1 run=$2 link=$3 sha=$4 mode=${5:-full} art=$RF_TMP/art/$RELFLIP_ART_NAME t0

	# The bench's own check, outside the time: a runner's checkout is at
	# the commit it deploys.
	[[ $RELFLIP_ARTIFACT != pack.tar || $(git -C "$SRC" rev-parse HEAD) == "$sha" ]] ||
		die "the checkout is not at $sha"
	t0=${EPOCHREALTIME/./}
	timed relflip_artifact "$sha" "$art"
	[[ -z $case ]] || record "$case" relflip.archive "$run" "$LAST_S"
	relflip_run "$case" "$run" "$link" "$mode" deploy "$art" --revision "$sha"
	[[ -z $case ]] || record "$case" relflip.wall "$run" "$(us_to_s $((RELFLIP_END - t0)))"
	rm -f "$art"
}

rollback_relflip() { # CASE RUN LINK
	local t0=${EPOCHREALTIME/./}

	relflip_run "$1" "$2" "$3" full rollback
	[[ -z $1 ]] || record "$1" relflip.wall "$2" "$(us_to_s $((RELFLIP_END - t0)))"
}

cap_run() { # CASE RUN LINK TASK [ENV...]
	local case=$1 run=$2 link=$3 task=$4 base rc=0

	shift 4
	base=$RF_TMP/runs/${case:-warm}-cap-$run-${task//:/-}
	(cd "$RF_TMP/cap" && env BENCH_SSH_PORT="$(ssh_port "$link")" "$@" cap bench "$task") \
		>"$base.out" 2>&1 </dev/null || rc=$?
	if ((rc != 0)); then
		tail -n 20 "$base.out" >&2
		die "cap bench $task exited $rc (expected 0); see above and $RF_TMP/cap/capistrano.log"
	fi
}

deploy_cap() { # CASE RUN LINK SHA [MODE]
	local env=()

	[[ ${5:-full} == full ]] || env=(BENCH_BOOTSTRAP=1)
	C_CAPLOG=$(log_lines "$CAP_LOG")
	timed cap_run "$1" "$2" "$3" deploy "${env[@]}"
	[[ -z $1 ]] && return 0
	record "$1" cap.wall "$2" "$LAST_S"
	record "$1" cap.logged "$2" "$(log_count "$CAP_LOG" "$C_CAPLOG" ' Running ')"
	# The commands of the last deploy measured, for the report.
	tail -n +"$((C_CAPLOG + 1))" "$CAP_LOG" |
		grep -E ' Running | INFO Uploading .* 100\.0%$' >"$RF_TMP/cap-deploy-commands" || true
}

rollback_cap() { # CASE RUN LINK
	C_CAPLOG=$(log_lines "$CAP_LOG")
	timed cap_run "$1" "$2" "$3" deploy:rollback
	[[ -z $1 ]] && return 0
	record "$1" cap.wall "$2" "$LAST_S"
	record "$1" cap.logged "$2" "$(log_count "$CAP_LOG" "$C_CAPLOG" ' Running ')"
}

# The bare script's remote commands.
bare_deploy_remote() { # SHA SUM [AFTER]
	local a=${APP[bare]} id=$1

	printf '%s' "set -e; cd '$a'; echo '$2  .incoming/$id.tar.gz' | sha256sum -c --status; tmp=\$(mktemp -d releases/.tmp-$id.XXXXXX); tar -xzf .incoming/$id.tar.gz -C \"\$tmp\"; chmod 755 \"\$tmp\"; for d in log tmp/pids db; do mkdir -p \"shared/\$d\" \"\$tmp/\$(dirname \"\$d\")\"; rm -rf \"\$tmp/\$d\"; ln -s \"\$PWD/shared/\$d\" \"\$tmp/\$d\"; done; ln -sfn \"\$PWD/shared/.env\" \"\$tmp/.env\"; echo $id > \"\$tmp/REVISION\"; mv -T \"\$tmp\" releases/$id; rm -f .incoming/$id.tar.gz; (cd releases/$id && python3 migrate.py); ln -sfn releases/$id .current.tmp && mv -T .current.tmp current; echo $id >> .deploys; ${3:+$3; }tail -n 5 .deploys > .keep; for r in releases/*; do grep -qxF \"\${r#releases/}\" .keep || rm -rf \"\$r\"; done; rm -f .keep"
}

bare_rollback_remote() {
	printf '%s' "set -e; cd '${APP[bare]}'; cur=\$(tail -n 1 .deploys); prev=\$(tail -n 2 .deploys | head -n 1); [ -n \"\$prev\" ] && [ \"\$prev\" != \"\$cur\" ] || { echo 'no release to roll back to' >&2; exit 1; }; ln -sfn \"releases/\$prev\" .current.tmp && mv -T .current.tmp current; sed -i '\$d' .deploys; $(hup bare); $(health_loop bare)"
}

deploy_bare() { # CASE RUN LINK SHA [MODE]
	local case=$1 run=$2 link=$3 sha=$4 mode=${5:-full} art=$RF_TMP/art/bare.tar.gz
	local base port sum after t0

	base=$RF_TMP/runs/${case:-warm}-bare-$run
	port=$(ssh_port "$link")
	[[ $mode == full ]] && after="$(hup bare); $(health_loop bare)"
	t0=${EPOCHREALTIME/./}
	archive "$sha" "$art"
	read -r sum _ < <(sha256sum "$art")
	printf 'put %s %s/.incoming/%s.tar.gz\n' "$art" "${APP[bare]}" "$sha" >"$base.batch"
	sftp -q "${RF_SSH_OPTS[@]}" -P "$port" -b "$base.batch" root@127.0.0.1 >"$base.out" 2>&1 </dev/null ||
		die "bare: sftp put of $sha failed: $(tail -n 5 "$base.out")"
	ssh "${RF_SSH_OPTS[@]}" -p "$port" root@127.0.0.1 "$(bare_deploy_remote "$sha" "$sum" "${after:-}")" \
		>>"$base.out" 2>&1 </dev/null || die "bare: the ssh step of $sha failed: $(tail -n 5 "$base.out")"
	[[ -z $case ]] || record "$case" bare.wall "$run" "$(us_to_s $((${EPOCHREALTIME/./} - t0)))"
	rm -f "$art"
}

rollback_bare() { # CASE RUN LINK
	local base=$RF_TMP/runs/${1:-warm}-bare-$2-rollback

	timed ssh "${RF_SSH_OPTS[@]}" -p "$(ssh_port "$3")" root@127.0.0.1 "$(bare_rollback_remote)" \
		>"$base.out" 2>&1 </dev/null || die "bare: the rollback failed: $(tail -n 5 "$base.out")"
	[[ -z $1 ]] || record "$1" bare.wall "$2" "$LAST_S"
}

# ---------------------------------------------------------------------------
# Capistrano's project: bench/capistrano/, its settings from the environment.
CAP_LOG=$RF_TMP/cap/capistrano.log
if [[ -z $CAP_SKIPPED ]]; then
	cp -R "$ROOT/bench/capistrano" "$RF_TMP/cap"
	mkdir -p "$RF_TMP/cap-tmp"
	export BENCH_REPO_URL=file://$ORIGIN BENCH_DEPLOY_TO=${APP[cap]} BENCH_TMP_DIR=$RF_TMP/cap-tmp
	export BENCH_LOG=$CAP_LOG BENCH_APP_PORT=${PORT[cap]} BENCH_SSH_KEY=$RF_KEY
	export BENCH_KNOWN_HOSTS=$RF_KNOWN_HOSTS
	note "$(cap --version 2>&1 | head -n 1); ruby $(ruby -e 'print RUBY_VERSION'); net-ssh $(ruby -rnet/ssh -e 'print Net::SSH::Version::STRING' 2>/dev/null || echo '?')"
fi

say "first deploys (not measured): the layouts, then gunicorn started from each current/"
commit_n=0
SHA=$(git -C "$SRC" rev-parse HEAD)
for tool in "${TOOLS[@]}"; do
	"deploy_$tool" "" 0 lo "$SHA" bootstrap
	"$SERVE" start "${APP[$tool]}" "${PORT[$tool]}" >"$RF_TMP/runs/serve-$tool.out" 2>&1 ||
		die "gunicorn for $tool did not start: $(tail -n 5 "$RF_TMP/runs/serve-$tool.out")"
	read -r pid <"$(pidfile "$tool")"
	rf_track proc "$pid" "gunicorn-$tool"
	check_serves "$tool" "$SHA"
done
note "gunicorn for ${TOOLS[*]} on ports ${PORT[*]}, each serving $SHA"

# round LINK N: commit N, every tool deploys it, then every tool rolls it
# back, in an order rotating with N; CASE "" when N is 0 (a warm-up).
round() {
	local link=$1 n=$2 k tool prev case_d='' case_r='' line=''

	prev=$SHA
	commit_n=$((commit_n + 1))
	commit "$commit_n"
	if ((n > 0)); then
		case_d=$link-deploy
		case_r=$link-rollback
	fi
	for ((k = 0; k < ${#TOOLS[@]}; k++)); do
		tool=${TOOLS[(n + k) % ${#TOOLS[@]}]}
		sync
		count_begin
		"deploy_$tool" "$case_d" "$n" "$link" "$SHA"
		[[ -z $case_d ]] || count_end "$case_d" "$tool" "$n"
		check_serves "$tool" "$SHA"
	done
	for ((k = 0; k < ${#TOOLS[@]}; k++)); do
		tool=${TOOLS[(n + k) % ${#TOOLS[@]}]}
		sync
		count_begin
		"rollback_$tool" "$case_r" "$n" "$link"
		[[ -z $case_r ]] || count_end "$case_r" "$tool" "$n"
		check_serves "$tool" "$prev"
	done
	SHA=$prev
	if ((n > 0)); then
		for tool in "${TOOLS[@]}"; do
			line+="$tool $(awk -F'\t' -v c="$case_d" -v m="$tool.wall" -v r="$n" '$1 == c && $2 == m && $3 == r { print $4 }' "$DATA") s"
			line+=" / $(awk -F'\t' -v c="$case_r" -v m="$tool.wall" -v r="$n" '$1 == c && $2 == m && $3 == r { print $4 }' "$DATA") s, "
		done
		note "$link round $n (deploy / rollback): ${line%, }; load $(load_now)"
	fi
}

say "loopback: a warm-up round, then $RUNS rounds of deploy and rollback (${TOOLS[*]}, rotating)"
round lo 0
for ((i = 1; i <= RUNS; i++)); do
	round lo "$i"
done

WAN_SKIPPED=
if [[ $WAN != 1 ]]; then
	WAN_SKIPPED="BENCH_WAN=$WAN"
elif bench_proxy_start "$BENCH_SSHD_PORT"; then
	say "WAN: netem-proxy on 127.0.0.1:$BENCH_PROXY_PORT (${WAN_DELAY_MS} ms each way, ${WAN_MBIT} Mbit/s) in front of the sshd; $RUNS rounds"
	for ((i = 1; i <= RUNS; i++)); do
		round wan "$i"
	done
	rf_proxy_stop wan
fi
[[ -z $WAN_SKIPPED ]] || note "the WAN columns are skipped: $WAN_SKIPPED"
if [[ -z $WIRE_SKIPPED ]]; then
	wire_stop
	while read -r key up down upr downr uppk downpk; do
		IFS=, read -r case tool run <<<"$key"
		record "$case" "$tool.up" "$run" "$up"
		record "$case" "$tool.down" "$run" "$down"
		record "$case" "$tool.upretrans" "$run" "$upr"
		record "$case" "$tool.downretrans" "$run" "$downr"
		record "$case" "$tool.uppk" "$run" "$uppk"
		record "$case" "$tool.downpk" "$run" "$downpk"
	done < <(wire_counts)
fi

# ---------------------------------------------------------------------------
t_total=$((($(rf_now_ms) - t_start) / 1000))
LOAD_END=$(load_now)
say "results"
# cap_commands: what Capistrano ran in its last measured deploy, from its
# log, numbered, the paths shortened.
cap_commands() {
	[[ -s $RF_TMP/cap-deploy-commands ]] || return 0
	echo "               the commands of one Capistrano deploy, from its log (one exec channel each):"
	sed -E -e 's/^ *(INFO|DEBUG) (\[[0-9a-f]+\] )?//; s/ on 127\.0\.0\.1$//; s/ [0-9.]+%$//' \
		-e "s|${APP[cap]}|APP|g; s|$RF_TMP|\$T|g; s|:${PORT[cap]}/|:PORT/|g; s|-${PORT[cap]}\.pid|-PORT.pid|g" \
		-e 's|([/ ])[0-9]{14}|\1RELEASE|g; s|[0-9a-f]{40}|SHA|g; s|git-ssh-[0-9a-f]+\.sh|git-ssh-RANDOM.sh|g' \
		"$RF_TMP/cap-deploy-commands" | awk '{ printf "               %2d %s\n", NR, $0 }'
}

report() {
	R_TOOLS="${TOOLS[*]}" R_CAP_SKIPPED=$CAP_SKIPPED R_WAN_SKIPPED=$WAN_SKIPPED \
		R_WIRE_SKIPPED=$WIRE_SKIPPED R_WIRE_DROPPED=${WIRE_DROPPED:-} \
		R_APP="$APP_FILES files, $APP_BYTES bytes, git archive --format=tar.gz $APP_GZ bytes" \
		R_SERVER_FS=$SERVER_FS R_ART=$RELFLIP_ARTIFACT \
		R_WAN="${WAN_DELAY_MS} ms each way, ${WAN_MBIT} Mbit/s" "$RF_PYTHON" - "$DATA" <<'PY'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, metric, run, value = line.rstrip("\n").split("\t")
    rows.setdefault((case, metric), []).append(float(value))
tools = os.environ["R_TOOLS"].split()
links = [l for l in ("lo", "wan") if (l + "-deploy", "relflip.wall") in rows]

def med(case, metric):
    v = rows.get((case, metric))
    return statistics.median(v) if v else None

def rng(case, metric):
    v = rows.get((case, metric))
    return "%.2f-%.2f" % (min(v), max(v)) if v else ""

def s(x):
    return "-" if x is None else "%.2f s" % x

def ratio(a, b):
    return "-" if a is None or not b else "%.2fx" % (a / b)

def one(v):
    return "%g" % v[0] if min(v) == max(v) else "%g-%g" % (min(v), max(v))

name = {"relflip": "relflip", "cap": "Capistrano 3", "bare": "bare OpenSSH script"}
print("c. relflip vs Capistrano 3 vs the bare OpenSSH script: the common case (issue 11, part 3)")
print("   app: Flask + gunicorn, %s;" % os.environ["R_APP"])
print("   one changed file per deploy; migrate (sqlite), HUP to gunicorn, health check expecting the revision.")
print("   Wall time of each tool's process(es), relflip's including its pack (%s) and the bare script's"
      % ("relflip pack -o relflip.tar" if os.environ["R_ART"] == "pack.tar" else "git archive --format=tar.gz"))
print("   including git archive --format=tar.gz; the servers' side on %s;" % os.environ["R_SERVER_FS"])
print("   median (min-max) of %d runs per cell, the %d tools alternating, the order rotating." % (
    len(rows[("lo-deploy", "relflip.wall")]), len(tools)))
print("   loopback: 127.0.0.1; WAN: netem-proxy, %s each direction." % os.environ["R_WAN"])
if os.environ["R_CAP_SKIPPED"]:
    print("   Capistrano rows skipped: " + os.environ["R_CAP_SKIPPED"])
if os.environ["R_WAN_SKIPPED"]:
    print("   WAN columns skipped: " + os.environ["R_WAN_SKIPPED"])
print()
hdr = "   %-28s" % ""
for l in links:
    hdr += " | %-32s" % ("loopback" if l == "lo" else "WAN (%s)" % os.environ["R_WAN"])
print(hdr)
hdr = "   %-28s" % ""
for l in links:
    hdr += " | %-8s %-11s %-11s" % ("median", "min-max", "/ Capistrano")
print(hdr)
for op in ("deploy", "rollback"):
    for t in tools:
        line = "   %-28s" % ("%s %s" % (name[t], op))
        for l in links:
            c = "%s-%s" % (l, op)
            line += " | %-8s %-11s %-11s" % (s(med(c, t + ".wall")), rng(c, t + ".wall"),
                                             ratio(med(c, t + ".wall"), med(c, "cap.wall")) if "cap" in tools else "-")
        print(line)
if "cap" in tools:
    print()
    for l in links:
        d = med(l + "-deploy", "relflip.wall") / med(l + "-deploy", "cap.wall")
        r = med(l + "-rollback", "relflip.wall") / med(l + "-rollback", "cap.wall")
        print("   goal 0.25x of Capistrano (%s): deploy %.2fx, rollback %.2fx: %s" % (
            "loopback" if l == "lo" else "WAN", d, r, "met" if d <= 0.25 and r <= 0.25 else "NOT met"))
print()
print("   per run (all runs: one value when every run agrees, else min-max):")
print("   %-28s %-5s %-6s %-6s %-5s %-8s %-7s %-22s %s" % ("", "link", "conns", "execs", "sftp", "sftp req", "tunnels",
                                                       "KiB up (retransmitted)", "KiB down (retransmitted)"))
for op in ("deploy", "rollback"):
    for t in tools:
        for l in links:
            c = "%s-%s" % (l, op)
            def kib(d):
                v = rows.get((c, t + "." + d))
                if not v:
                    return "-"
                return "%.1f (%.1f)" % (statistics.median(v) / 1024, med(c, t + "." + d + "retrans") / 1024)
            print("   %-28s %-5s %-6s %-6s %-5s %-8s %-7s %-22s %s" % (
                "%s %s" % (name[t], op), l, one(rows[(c, t + ".conns")]), one(rows[(c, t + ".execs")]),
                one(rows[(c, t + ".sftp")]), one(rows[(c, t + ".sftpreq")]), one(rows[(c, t + ".tcpip")]),
                kib("up"), kib("down")))
for op in ("deploy", "rollback"):
    for l in links:
        c = "%s-%s" % (l, op)
        types = sorted(k[1][len("relflip.sftp_"):] for k in rows if k[0] == c and k[1].startswith("relflip.sftp_"))
        if types:
            print("   relflip %s SFTP requests by type (%s, median): %s" % (op, l, ", ".join(
                "%s %g" % (t, med(c, "relflip.sftp_" + t)) for t in types)))
if "cap" in tools:
    for l in links:
        print("   Capistrano: %s commands in its log ('Running' lines) per deploy, %s per rollback (%s)" % (
            one(rows[(l + "-deploy", "cap.logged")]), one(rows[(l + "-rollback", "cap.logged")]), l))
up = rows.get(("lo-deploy", "relflip.up"))  # one changed file
if up:
    m = statistics.median(up) / 1024
    print("   relflip's upload for one changed file: %.0f KiB up per deploy; target <= 64 KiB: %s" % (
        m, "met" if m <= 64 else "NOT met (delta uploads are not in yet)"))
print()
print("   relflip's stages, median seconds (from the stage events' duration_ms):")
stages = ("validate", "connect", "probe", "lock", "preflight", "upload", "unpack", "link", "migrate", "switch",
          "restart", "health", "rollback", "record", "prune")
for op in ("deploy", "rollback"):
    for l in links:
        c = "%s-%s" % (l, op)
        parts = ["%s %.3f" % (st, med(c, "relflip." + st)) for st in stages if (c, "relflip." + st) in rows]
        extra = ", pack %.3f" % med(c, "relflip.archive") if (c, "relflip.archive") in rows else ""
        print("     %-8s %-4s result %.3f%s; %s" % (op, l, med(c, "relflip.result"), extra, ", ".join(parts)))
for l in links:
    p = rows.get((l + "-deploy", "relflip.pruned"))
    if p:
        print("     (%s: the record stage pruned old releases in %d of %d deploys: each rollback leaves a bad release," % (
            l, sum(p), len(p)))
        print("     and keep_failed = 1)")
print()
print("   how it was counted: conns = 'Accepted publickey for' lines in the sshd log; execs = 'Starting")
print("   session: command for' (one per exec channel); sftp = \"Starting session: subsystem 'sftp'\";")
print("   tunnels = 'server_request_direct_tcpip: originator' (DEBUG1; relflip's health check);")
print("   sftp req = 'request N: sent' lines of sftp-server -l DEBUG3 (one per reply, so one per request);")
print("   KiB = TCP payload to and from the sshd's port (the SSH stream: encrypted, with its framing), median of")
print("   the runs, from a header-only tcpdump capture on lo, each byte once per connection (bench/wire-bytes.py);")
print("   in brackets what TCP sent again (loopback under load retransmits whole 64 KiB segments); on the WAN")
print("   link, the proxy-to-sshd leg, which carries the same stream.")
if os.environ["R_WIRE_SKIPPED"]:
    print("   bytes not counted: " + os.environ["R_WIRE_SKIPPED"])
elif os.environ["R_WIRE_DROPPED"] not in ("", "0"):
    print("   WARNING: tcpdump says the kernel dropped %s packets: the byte counts are low" % os.environ["R_WIRE_DROPPED"])
print("   Capistrano's git fetch reads the bare repository on the server's own disk (file://): no bytes on the link.")
print()
print("per-run figures, seconds, in run order:")
for l in links:
    for op in ("deploy", "rollback"):
        for t in tools:
            v = rows.get(("%s-%s" % (l, op), t + ".wall"))
            if v:
                print("   %-4s %-9s %-8s %s" % (l, op, t, " ".join("%.3f" % x for x in v)))
PY
	cat <<EOF
   whole part c: ${t_total} s; 1-minute load average ${LOAD_START} at its start, ${LOAD_END} at its end

Exact commands (APP the tool's app path on the server, PORT its gunicorn's, SSH the sshd's port or the proxy's):
  app:         python3 bench/make-app.py src; git init -b main; git add -A; git commit; push to a bare origin.git
  each round:  echo N > BUILD; git commit -m "build N" BUILD; git push origin main
  relflip:     $(if [[ $RELFLIP_ARTIFACT == pack.tar ]]; then echo "./relflip pack src -o relflip.tar --revision SHA"; else echo "git archive --format=tar.gz -o relflip.tar.gz SHA"; fi)
               ./relflip -c relflip.ini --json deploy $RELFLIP_ART_NAME --revision SHA
               ./relflip -c relflip.ini --json rollback
$(sed -e "s|${APP[relflip]}|APP|g; s|${PORT[relflip]}|PORT|g; s|port = $BENCH_SSHD_PORT|port = SSH|; s|$RF_TMP|\$T|g; s/^/               | /" "$(relflip_ini lo full)")
  bare:        git archive --format=tar.gz -o bare.tar.gz SHA; sha256sum bare.tar.gz
               sftp -q ${RF_SSH_OPTS[*]//$RF_TMP/\$T} -P SSH -b BATCH root@127.0.0.1
                 BATCH: put bare.tar.gz APP/.incoming/SHA.tar.gz
               ssh (the same options) -p SSH root@127.0.0.1 '$(bare_deploy_remote SHA SUM "$(hup bare); $(health_loop bare)" | sed "s|${APP[bare]}|APP|g; s|${PORT[bare]}|PORT|g")'
    rollback:  ssh (the same options) -p SSH root@127.0.0.1 '$(bare_rollback_remote | sed "s|${APP[bare]}|APP|g; s|${PORT[bare]}|PORT|g")'
  Capistrano:  cp -R bench/capistrano \$T/cap; cd \$T/cap; cap bench deploy; cap bench deploy:rollback
               environment: BENCH_REPO_URL=file://\$T/origin.git BENCH_DEPLOY_TO=APP BENCH_APP_PORT=PORT
               BENCH_SSH_PORT=SSH BENCH_SSH_KEY=\$T/client_key BENCH_KNOWN_HOSTS=\$T/known_hosts
               BENCH_TMP_DIR=\$T/cap-tmp BENCH_LOG=\$T/cap/capistrano.log
$(cap_commands)
  gunicorn:    examples/flask-app/serve start APP PORT (gunicorn --chdir APP/current, 2 workers, pidfile
               APP/shared/tmp/pids/gunicorn-PORT.pid), started by the bench after each tool's first deploy
  WAN:         build/tools/netem-proxy --listen 127.0.0.1:0 --to 127.0.0.1:SSHD --delay-ms $WAN_DELAY_MS --rate-mbit $WAN_MBIT
  sshd:        the e2e harness's sshd_config with LogLevel DEBUG1 and
               Subsystem sftp \$T/sftp-logged (exec /usr/lib/openssh/sftp-server -e -l DEBUG3 2>>LOG)
  bytes:       tcpdump -i lo -n -s 128 -B 8192 -U -Z root -w wire.pcap 'tcp port SSHD' (the whole part), then
               python3 bench/wire-bytes.py wire.pcap SSHD WINDOWS (one window per run: its start and end times)
EOF
}
if [[ -n $OUT ]]; then
	report | tee "$OUT"
else
	report
fi
