#!/usr/bin/env bash
# bench-upload.sh: the upload-size curve (issue 11, part 4): relflip's upload
# stage against `sftp put` for artifacts of 1, 4, 16 and 64 MiB, on loopback
# and through the WAN-shaped proxy. Part d. of `make bench`
# (scripts/bench.sh); runs alone too.
#
# Each artifact is a plain tar of one file of random data (incompressible).
# For each size and link, BENCH_CURVE_RUNS rounds of, in an order rotating
# each round: a relflip deploy to a fresh release id (its upload stage's
# duration_ms is the figure: the transfer alone, connecting and checking
# apart), an `sftp -b` put of the same file with OpenSSH's defaults (process
# wall time), and a no-op sftp session (`pwd`: what connecting costs, to
# take off the put). Medians, in MB/s (10^6 bytes a second). The sshd is the
# end-to-end harness's (internal-sftp); neither relflip nor sftp's put
# fsyncs.
#
# Knobs: BENCH_CURVE_RUNS (3, at least 3), BENCH_CURVE_MIB ("1 4 16 64"),
# BENCH_CURVE_WAN (1; 0: loopback only), BENCH_WAN_DELAY_MS (25),
# BENCH_WAN_MBIT (100), BENCH_OUT (the results section goes there as well as
# to stdout), BENCH_KEEP (1: keep the temporary directory).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RELFLIP=${RELFLIP:-$ROOT/relflip}
BENCH_NAME=bench-upload
RUNS=${BENCH_CURVE_RUNS:-3}
SIZES=${BENCH_CURVE_MIB:-1 4 16 64}
WAN=${BENCH_CURVE_WAN:-1}
OUT=${BENCH_OUT:-}
ORDER=(relflip sftp noop)

# shellcheck source=tests/e2e/lib/hosts.bash
source "$ROOT/tests/e2e/lib/hosts.bash"
# shellcheck source=tests/tools/netem-proxy.bash
source "$ROOT/tests/tools/netem-proxy.bash"
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

bench_checks BENCH_CURVE_RUNS
for mib in $SIZES; do
	[[ $mib =~ ^[1-9][0-9]*$ ]] || { echo "$BENCH_NAME: BENCH_CURVE_MIB: sizes in MiB, not '$mib'" >&2; exit 2; }
done

bench_tmp relflip-bench-upload
mkdir -p "$RF_TMP/runs" "$RF_TMP/art" "$RF_TMP/srv/sftp"
t_start=$(rf_now_ms)
LOAD_START=$(load_now)

say "d. the upload-size curve: sizes $SIZES MiB; an sshd with the harness's config (internal-sftp)"
bench_sshd_start sshd VERBOSE
rf_ssh_opts
LINKS=(lo)
WAN_SKIPPED=
if [[ $WAN != 1 ]]; then
	WAN_SKIPPED="BENCH_CURVE_WAN=$WAN"
elif bench_proxy_start "$BENCH_SSHD_PORT"; then
	LINKS+=(wan)
	note "netem-proxy on 127.0.0.1:$BENCH_PROXY_PORT (${WAN_DELAY_MS} ms each way, ${WAN_MBIT} Mbit/s)"
fi
[[ -z $WAN_SKIPPED ]] || note "the WAN rows are skipped: $WAN_SKIPPED"

ssh_port() { # LINK
	if [[ $1 == lo ]]; then echo "$BENCH_SSHD_PORT"; else echo "$BENCH_PROXY_PORT"; fi
}

# config LINK MIB RUN: a fresh app path for each run: with a live release
# of the same bytes there, the delta transfer would send nothing and the
# figure would not be an upload. No [health]: the curve is about the upload.
config() {
	rf_config --file "$RF_TMP/$1.ini" --path "$RF_TMP/srv/app-$1-$2-$3" --port "$(ssh_port "$1")" \
		--host bench "[deploy]
keep_releases = 1000"
}

run_relflip() { # LINK MIB RUN ART
	local base=$RF_TMP/runs/relflip-$1-$2-$3 rc=0

	config "$1" "$2" "$3"
	"$RELFLIP" -c "$RF_TMP/$1.ini" --json deploy "$4" --revision "c$2-$1-$3" \
		>"$base.json" 2>"$base.err" || rc=$?
	if ((rc != 0)); then
		tail -n 20 "$base.err" >&2
		die "relflip deploy of $2 MiB ($1) exited $rc (expected 0); see above"
	fi
	relflip_metrics "$base.json" >"$base.metrics" || die "no result in $base.json"
	record "$1-$2" relflip.upload "$3" "$(awk '$1 == "upload" { print $2 }' "$base.metrics")"
}

run_sftp() { # LINK MIB RUN ART
	local base=$RF_TMP/runs/sftp-$1-$2-$3

	printf 'put %s %s/sftp/put.tar\n' "$4" "$RF_TMP/srv" >"$base.batch"
	timed sftp -q "${RF_SSH_OPTS[@]}" -P "$(ssh_port "$1")" -b "$base.batch" root@127.0.0.1 \
		>"$base.out" 2>&1 </dev/null || die "sftp put of $2 MiB ($1) failed: $(tail -n 5 "$base.out")"
	record "$1-$2" sftp.put "$3" "$LAST_S"
	rm -f "$RF_TMP/srv/sftp/put.tar"
}

run_noop() { # LINK MIB RUN
	local base=$RF_TMP/runs/noop-$1-$2-$3

	echo pwd >"$base.batch"
	timed sftp -q "${RF_SSH_OPTS[@]}" -P "$(ssh_port "$1")" -b "$base.batch" root@127.0.0.1 \
		>"$base.out" 2>&1 </dev/null || die "the no-op sftp session failed: $(tail -n 5 "$base.out")"
	record "$1-$2" sftp.noop "$3" "$LAST_S"
}

for mib in $SIZES; do
	art=$RF_TMP/art/artifact-$mib.tar
	mkdir -p "$RF_TMP/art/src"
	head -c "${mib}M" /dev/urandom >"$RF_TMP/art/src/payload.bin"
	tar -cf "$art" -C "$RF_TMP/art/src" payload.bin
	rm -rf "$RF_TMP/art/src"
	for link in "${LINKS[@]}"; do
		for ((i = 1; i <= RUNS; i++)); do
			for ((k = 0; k < ${#ORDER[@]}; k++)); do
				sync
				"run_${ORDER[(i + k) % ${#ORDER[@]}]}" "$link" "$mib" "$i" "$art"
			done
		done
		note "$mib MiB, $link: relflip upload $(awk -F'\t' -v c="$link-$mib" '$1 == c && $2 == "relflip.upload" { printf "%s ", $4 }' "$DATA")s;" \
			"sftp put $(awk -F'\t' -v c="$link-$mib" '$1 == c && $2 == "sftp.put" { printf "%s ", $4 }' "$DATA")s; load $(load_now)"
		# Free the disk: the releases are not needed any more.
		rm -rf "$RF_TMP/srv/app-$link-$mib"-*
	done
	echo "$mib $(stat -c %s "$art")" >>"$RF_TMP/sizes"
	rm -f "$art"
done

t_total=$((($(rf_now_ms) - t_start) / 1000))
LOAD_END=$(load_now)
say "results"
report() {
	R_WAN_SKIPPED=$WAN_SKIPPED R_WAN="${WAN_DELAY_MS} ms each way, ${WAN_MBIT} Mbit/s" R_SIZES="$RF_TMP/sizes" \
		"$RF_PYTHON" - "$DATA" <<'PY'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, metric, run, value = line.rstrip("\n").split("\t")
    rows.setdefault((case, metric), []).append(float(value))
sizes = [line.split() for line in open(os.environ["R_SIZES"])]

def med(case, metric):
    return statistics.median(rows[(case, metric)])

def rate(nbytes, secs):
    return "%.1f MB/s" % (nbytes / 1e6 / secs) if secs > 0 else "-"

n = len(rows[("lo-" + sizes[0][0], "relflip.upload")])
print("d. upload-size curve (issue 11, part 4): relflip's upload stage vs sftp put (OpenSSH defaults)")
print("   a plain tar of one random file; median of %d runs each, relflip, sftp put and a no-op sftp session" % n)
print("   alternating; MB/s = 10^6 bytes a second of the tar's size. loopback, and WAN: netem-proxy, %s." % os.environ["R_WAN"])
if os.environ["R_WAN_SKIPPED"]:
    print("   WAN rows skipped: " + os.environ["R_WAN_SKIPPED"])
print()
print("   %-7s %-4s | %-24s | %-24s | %-24s | %s" % ("size", "link", "relflip upload stage", "sftp put (process wall)",
                                                    "sftp put - no-op session", "relflip / sftp net"))
for link in ("lo", "wan"):
    for mib, nbytes in sizes:
        c = "%s-%s" % (link, mib)
        if (c, "relflip.upload") not in rows:
            continue
        nbytes = int(nbytes)
        up, put, noop = med(c, "relflip.upload"), med(c, "sftp.put"), med(c, "sftp.noop")
        net = put - noop
        print("   %-7s %-4s | %7.3f s %14s | %7.3f s %14s | %7.3f s %14s | %s" % (
            mib + " MiB", link, up, rate(nbytes, up), put, rate(nbytes, put), net, rate(nbytes, net),
            "%.2fx the time" % (up / net) if net > 0 else "-"))
print()
print("   per-run figures, seconds, in run order:")
for link in ("lo", "wan"):
    for mib, _ in sizes:
        c = "%s-%s" % (link, mib)
        for m in ("relflip.upload", "sftp.put", "sftp.noop"):
            if (c, m) in rows:
                print("   %-4s %-6s %-15s %s" % (link, mib, m, " ".join("%.3f" % x for x in rows[(c, m)])))
PY
	cat <<EOF
   whole part d: ${t_total} s; 1-minute load average ${LOAD_START} at its start, ${LOAD_END} at its end

Exact commands (SSH is the sshd's port, or the proxy's for WAN; \$T the bench's temporary directory):
  artifact:   head -c NM /dev/urandom >payload.bin; tar -cf artifact-N.tar payload.bin
  relflip:    ./relflip -c \$T/LINK.ini --json deploy artifact-N.tar --revision cN-LINK-RUN
              (app path \$T/srv/app-LINK-N-RUN, fresh each run; no [health]; [deploy] keep_releases = 1000;
              the figure is the upload stage event's duration_ms)
  sftp put:   sftp -q ${RF_SSH_OPTS[*]//$RF_TMP/\$T} -P SSH -b BATCH root@127.0.0.1
                BATCH: put artifact-N.tar \$T/srv/sftp/put.tar
  no-op:      the same sftp, BATCH: pwd
  WAN:        build/tools/netem-proxy --listen 127.0.0.1:0 --to 127.0.0.1:SSHD --delay-ms $WAN_DELAY_MS --rate-mbit $WAN_MBIT
EOF
}
if [[ -n $OUT ]]; then
	report | tee "$OUT"
else
	report
fi
