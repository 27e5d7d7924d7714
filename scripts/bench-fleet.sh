#!/usr/bin/env bash
# bench-fleet.sh: how relflip's deploy scales with the number of servers.
#
#   scripts/bench-fleet.sh [--sizes "1 8 32 64"] [--runs 3] [--parallel 64]
#                          [--also-default] [--app-restart] [--mib 4]
#
# Simulated servers are network-namespace hosts (tests/e2e/lib/hosts.bash):
# each has its own sshd, loopback and /srv. For every fleet size it times
# `runs` full deploys of a fresh release (a 4 MiB artifact of random,
# incompressible data) after one untimed warm-up deploy, and prints a
# Markdown table: median wall time, the ratio to the 1-server median,
# relflip's own CPU time and peak RSS (/usr/bin/time -v), and the SSH
# connections each server's sshd accepted per deploy ("Accepted publickey"
# lines in its log: the server side's count).
#
# A full deploy here is every stage relflip has: connect, lock, preflight,
# upload, unpack, link, install hook, switch, service restart, health check
# through each host's SSH tunnel, record, prune. The sample app runs on
# every host from the start; the restart line only logs, unless
# --app-restart, which restarts the app (a Python cold start per host, on
# the same two cores as everything else) and checks that it serves the new
# release (expect_revision). --also-default adds a run at the largest size
# with the default max_parallel (16).
#
# Needs root (namespaces) and a built ./relflip (make). Everything it starts
# is stopped by PID, and its namespaces removed, on exit, also on failure or
# Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tests/e2e/lib/hosts.bash
source "$root/tests/e2e/lib/hosts.bash"
# shellcheck source=tests/e2e/lib/fleet.bash
source "$root/tests/e2e/lib/fleet.bash"

sizes="1 8 32 64"
runs=3
parallel=64
also_default=0
app_restart=0
mib=4
port=8000
RF_BIN=${RF_BIN:-$root/relflip}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--parallel) parallel=$2; shift 2 ;;
	--also-default) also_default=1; shift ;;
	--app-restart) app_restart=1; shift ;;
	--mib) mib=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "bench-fleet: unknown option $1" >&2; usage 2 ;;
	esac
done

[[ $(id -u) == 0 ]] || { echo "bench-fleet: needs root (network namespaces)" >&2; exit 2; }
[[ -x $RF_BIN ]] || { echo "bench-fleet: $RF_BIN is not built (make)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench-fleet: needs /usr/bin/time (GNU time)" >&2; exit 2; }

rf_fail() {
	printf '%s\n' "$@" >&2
	return 1
}

RF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/relflip-bench.XXXXXX")
RF_KNOWN_HOSTS=$RF_TMP/known_hosts
: >"$RF_KNOWN_HOSTS"
export RF_TMP RF_KNOWN_HOSTS

finish() {
	local rc=$? left

	trap - EXIT INT TERM
	rf_cleanup
	left=$(rf_fleet_leftover_ns)
	if [[ -n $left ]]; then
		echo "bench-fleet: namespaces left behind: $left" >&2
		rc=1
	fi
	if ((rc == 0)); then
		rm -rf "$RF_TMP"
	else
		echo "bench-fleet: kept $RF_TMP for a look" >&2
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

say() {
	printf '%s\n' "$*" >&2
}

started=0 # hosts 1..started are up

# grow N: start hosts started+1..N (on free host numbers), and the sample
# app in each.
grow() {
	local want=$1 k t0

	((want > started)) || return 0
	t0=$(rf_now_ms)
	if ! RF_FLEET_JOBS=8 rf_fleet_up "$want" 11 229; then
		say "could not start hosts $((started + 1))-$want (see $RF_TMP/hosts/*/sshd.log)"
		return 1
	fi
	for ((k = started + 1; k <= want; k++)); do
		rf_fleet_note_apps "$port" "$k"
		rf_fleet_ssh "$k" "$RF_LIB/app-ctl start $RF_HOST_APP $port" >/dev/null || return 1
	done
	for ((k = started + 1; k <= want; k++)); do
		rf_poll 20 rf_fleet_ssh "$k" "exec 9<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || {
			say "host h$k: the app did not listen"
			return 1
		}
	done
	say "hosts h1-h$want up ($(($(rf_now_ms) - t0)) ms for h$((started + 1))-h$want)"
	started=$want
}

# config N MAX_PARALLEL: a config for hosts 1..N.
config() {
	local n=$1 mp=$2 restart health

	if ((app_restart)); then
		restart="echo restart >> /srv/restarts.log && $RF_LIB/app-ctl restart \"\$RELFLIP_APP_PATH\" $port"
		health="expect_revision = yes"
	else
		restart="echo restart >> /srv/restarts.log"
		health="expect_revision = no"
	fi
	# shellcheck disable=SC2046 # the host numbers are words
	rf_fleet_config --deploy "max_parallel = $mp" $(rf_fleet_seq "$n") -- "[hooks]
install = test -s blob.bin

[service \"web\"]
restart = $restart

[health]
url = http://127.0.0.1:$port/health
$health
interval = 0.1
retries = 100
timeout = 5
deadline = 60"
}

# time_field FILE NAME: a field of /usr/bin/time -v's report.
time_field() {
	awk -F': ' -v k="$2" '$1 ~ "^[ \t]*" k "$" { print $2 }' "$1"
}

median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

art=$RF_TMP/art/bench.tar.gz
rev=0
declare -A med=()
rows=()
stage_rows=()
stage_list="validate connect lock preflight upload unpack link install switch restart health record"

# bench N MAX_PARALLEL: warm-up plus `runs` timed deploys to hosts 1..N;
# appends a table row.
bench() {
	local n=$1 mp=$2 i t0 ms rc tf cpu rss maxrss=0 conns min max c h
	local -a walls=() cpus=() conns=() cores=() fleets=()
	local -A stagelog=()
	local lf busy0 busy fleet0 fleet

	config "$n" "$mp"
	for ((i = 0; i <= runs; i++)); do
		rev=$((rev + 1))
		make_artifact
		# shellcheck disable=SC2046 # the host numbers are words
		rf_fleet_conn_mark $(rf_fleet_seq "$n")
		tf=$RF_TMP/time.$n.$mp.$i
		lf=$RF_TMP/deploy.$n.$mp.$i.log
		busy0=$(cpu_busy)
		fleet0=$(fleet_cpu "$n")
		t0=$(rf_now_ms)
		rc=0
		/usr/bin/time -v -o "$tf" "$RF_BIN" --no-color -c "$RF_CONFIG" deploy "$art" \
			--revision "b$rev" >"$lf" 2>&1 || rc=$?
		ms=$(($(rf_now_ms) - t0))
		busy=$(($(cpu_busy) - busy0))
		# The servers' side: once sshd has reaped its session processes,
		# their CPU time is in its children's times.
		rf_poll 10 fleet_reaped "$n" || say "  (some sshd sessions still open after 10 s)"
		fleet=$(($(fleet_cpu "$n") - fleet0))
		cat "$lf" >>"$RF_TMP/relflip.log"
		if ((rc != 0)); then
			say "deploy of b$rev to $n hosts (max_parallel $mp) exited $rc:"
			tail -n 20 "$lf" >&2
			return 1
		fi
		# A delta would measure copies on the servers, not uploads.
		if grep -q 'kept from' "$lf"; then
			say "b$rev went to some host as a delta; this bench measures full uploads"
			return 1
		fi
		# Every host serves, and switched to, the new release.
		for ((h = 1; h <= n; h++)); do
			[[ $(rf_fleet_live "$h") == "b$rev" ]] || {
				say "h$h is on $(rf_fleet_live "$h") after deploying b$rev"
				return 1
			}
		done
		((i > 0)) || { say "  $n hosts, max_parallel $mp: warm-up ${ms} ms"; continue; }
		cpu=$(awk '/User time|System time/ { s += $NF } END { printf "%.2f", s }' "$tf")
		rss=$(time_field "$tf" "Maximum resident set size \\(kbytes\\)")
		((rss > maxrss)) && maxrss=$rss
		walls+=("$ms")
		cpus+=("$cpu")
		fleets+=("$(awk -v t="$fleet" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')")
		# Cores busy on the whole machine (relflip, and every simulated
		# server's sshd, shell and tar) over the deploy.
		cores+=("$(awk -v b="$busy" -v ms="$ms" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", b / hz / (ms / 1000) }')")
		stagelog[$ms]=$lf
		min=
		max=
		for ((h = 1; h <= n; h++)); do
			c=$(rf_fleet_conns "$h")
			[[ -z $min || $c -lt $min ]] && min=$c
			[[ -z $max || $c -gt $max ]] && max=$c
		done
		say "  $n hosts, max_parallel $mp: run $i ${ms} ms, relflip CPU ${cpu} s, RSS $((rss / 1024)) MiB, SSH connections per host ${min}-${max}"
		conns+=("$min-$max")
	done
	local m
	m=$(median "${walls[@]}")
	med[$n:$mp]=$m
	rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |' "$n" "$mp" \
		"$(printf '%s ' "${walls[@]}" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " " : ""), $i / 1000 }')" \
		"$(awk -v m="$m" 'BEGIN { printf "%.2f", m / 1000 }')" \
		"RATIO:$n:$mp" "$(median "${cpus[@]}")" "$(median "${fleets[@]}")" "$(median "${cores[@]}")" \
		"$(awk -v r="$maxrss" 'BEGIN { print r / 1024 }')" \
		"$(printf '%s\n' "${conns[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//')")")
	stage_rows+=("| $n | $mp | $(stages "${stagelog[$m]}") |")
}

# stages LOG: the durations of the stages in a deploy's human output (summed
# over batches), as table cells.
stages() {
	awk -v list="$stage_list" '
		BEGIN { n = split(list, names, " ") }
		/^  [a-z]+ / {
			st = $1
			v = $(NF - 1); u = $NF
			if (u == "ms") t[st] += v / 1000
			else if (u == "s") t[st] += v
		}
		END {
			for (i = 1; i <= n; i++)
				printf "%s%s", (i > 1 ? " | " : ""), (names[i] in t ? sprintf("%.2f", t[names[i]]) : "-")
		}' "$1"
}

# fleet_cpu N: CPU time (clock ticks) of the sshd of hosts 1..N and of every
# session process it has reaped (a deploy's shells, sftp, tar, hooks).
fleet_cpu() {
	local h pid t=0 stat
	local -a f

	for ((h = 1; h <= $1; h++)); do
		pid=$(rf_fleet_sshd_pid "$h")
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		read -ra f <<<"${stat##*) }"
		# utime stime cutime cstime: fields 14-17, here 11-14 after ") ".
		t=$((t + f[11] + f[12] + f[13] + f[14]))
	done
	echo "$t"
}

# fleet_reaped N: no sshd of hosts 1..N has a child left (every session of
# the deploy has ended and been reaped).
fleet_reaped() {
	local h pid
	local -A listener=()

	for ((h = 1; h <= $1; h++)); do
		pid=$(rf_fleet_sshd_pid "$h")
		listener[$pid]=1
	done
	while read -r pid; do
		[[ -z ${listener[$pid]:-} ]] || return 1
	done < <(ps -e -o ppid=)
	return 0
}

# cpu_busy: jiffies the machine's CPUs spent not idle, since boot.
cpu_busy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

say "relflip: $("$RF_BIN" --version 2>&1 | head -n 1)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
# make_artifact: new random data each deploy, so that no host has a base
# to build a delta from: every deploy uploads the whole artifact.
make_artifact() {
	mkdir -p "$RF_TMP/art/src"
	head -c $((mib * 1024 * 1024)) /dev/urandom >"$RF_TMP/art/src/blob.bin"
	printf '<h1>bench</h1>\n' >"$RF_TMP/art/src/index.html"
	tar -C "$RF_TMP/art/src" --owner=0 --group=0 --numeric-owner -czf "$art" .
}
make_artifact
say "artifact: $(du -h "$art" | cut -f1) ($mib MiB of random data, gzip, new for each deploy)"

failed_sizes=()
largest=0
for n in $sizes; do
	if ! grow "$n" || ! bench "$n" "$parallel"; then
		failed_sizes+=("$n")
		say "size $n failed: stopping here"
		break
	fi
	largest=$n
done
if ((also_default && largest > 0 && ${#failed_sizes[@]} == 0)); then
	bench "$largest" 16 || failed_sizes+=("$largest@16")
fi

base=${med[1:$parallel]:-}
echo
echo "| servers | max_parallel | wall times (s) | median (s) | ratio to 1 server | relflip CPU (s) | simulated servers' CPU (s) | machine cores busy (of $(nproc)) | relflip peak RSS (MiB) | SSH connections per server per deploy (min-max) |"
echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
for row in "${rows[@]}"; do
	key=${row#*RATIO:}
	key=${key%% *}
	if [[ -n $base ]]; then
		ratio=$(awk -v m="${med[$key]}" -v b="$base" 'BEGIN { printf "%.2fx", m / b }')
	else
		ratio=n/a
	fi
	echo "${row/RATIO:$key/$ratio}"
done
echo
echo "Stages of the median run (s, from relflip's own stage lines; summed over batches):"
echo
echo "| servers | max_parallel | ${stage_list// / | } |"
echo "|---:|---:|$(for _ in $stage_list; do printf -- '---:|'; done)"
printf '%s\n' "${stage_rows[@]}"
if [[ -n $base && -n ${med[32:$parallel]:-} ]]; then
	awk -v a="${med[32:$parallel]}" -v b="$base" 'BEGIN {
		r = a / b
		printf "\n32 servers: %.2fx the 1-server time (target: at most 3x): %s\n", r, (r <= 3 ? "met" : "NOT met")
	}'
fi
if ((${#failed_sizes[@]} > 0)); then
	echo
	echo "failed: ${failed_sizes[*]} (see above)"
	exit 1
fi
