#!/usr/bin/env bash
# Figures for relflip's on-call commands, on one loopback host (a throwaway
# sshd from tests/e2e/lib/hosts.bash; needs root, like the e2e tests):
#
#   (a) rollback: from relflip's start to `current` switched, read from the
#       --json events (the `start` event's time to the `switch` stage's end
#       event's time), median of RUNS (default 10). Each run is a real
#       switch: it alternates `rollback --to` between two good releases.
#       No [health] and no services, so that it measures relflip.
#   (b) prune: 1,000 releases made on the server directly (a directory with
#       a small file each, and a record in the format of a real deploy's,
#       status good, created/activated one second apart), current -> the
#       newest; then `relflip prune --keep 5`, wall time and the time from
#       its --json events, median of PRUNE_RUNS (default 3), the releases
#       made afresh before each run. When that fails, the same with
#       PRUNE_FALLBACK (default 150) releases, for scale; exit 1.
#
#   scripts/bench-ops.sh            (RF_BIN=path/to/relflip to pick a binary)
#
# Prints the figures and the commands that made them.
set -euo pipefail

cd "$(dirname "$0")/.."
RF_BIN=${RF_BIN:-$PWD/relflip}
RUNS=${RUNS:-10}
PRUNE_RUNS=${PRUNE_RUNS:-3}
NRELEASES=${NRELEASES:-1000}

if [[ ! -x $RF_BIN ]]; then
	echo "bench-ops: $RF_BIN is not built (make)" >&2
	exit 2
fi

RF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/relflip-bench-ops.XXXXXX")
export RF_TMP RF_BIN
# shellcheck source=tests/e2e/lib/hosts.bash
source tests/e2e/lib/hosts.bash
trap 'rf_cleanup; rm -rf "$RF_TMP"' EXIT

mkdir -p "$RF_TMP/srv"
RF_APP=$RF_TMP/srv/app
RF_KNOWN_HOSTS=$RF_TMP/known_hosts
: >"$RF_KNOWN_HOSTS"
export RF_APP RF_KNOWN_HOSTS

# median: the median of the numbers on stdin, one a line.
median() {
	"$RF_PYTHON" -c '
import statistics, sys
v = [float(l) for l in sys.stdin if l.strip()]
print("%.1f" % statistics.median(v))'
}

# minmax: "min-max" of the numbers on stdin.
minmax() {
	"$RF_PYTHON" -c '
import sys
v = [float(l) for l in sys.stdin if l.strip()]
print("%.1f-%.1f" % (min(v), max(v)))'
}

# ms_between EVENTS_FILE: milliseconds from the start event to the switch
# stage's end event.
ms_to_switch() {
	"$RF_PYTHON" -c '
import json, sys
from datetime import datetime
def t(e):
    return datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
start = next(e for e in ev if e["event"] == "start")
sw = next(e for e in ev if e["event"] == "stage" and e.get("stage") == "switch"
          and e.get("phase") == "end")
res = ev[-1]
if res.get("event") != "result" or res.get("exit_code") != 0:
    sys.exit("rollback failed: %r" % res)
print("%.0f" % ((t(sw) - t(start)).total_seconds() * 1000))' "$1"
}

# pack ID: a small release tarball for ID; prints its path.
pack() {
	local src=$RF_TMP/src/$1

	mkdir -p "$src"
	printf '<h1>%s</h1>\n' "$1" >"$src/index.html"
	"$RF_BIN" pack "$src" -o "$RF_TMP/$1.tar.gz" --revision "$1" >/dev/null 2>&1
	printf '%s\n' "$RF_TMP/$1.tar.gz"
}

echo "relflip: $("$RF_BIN" --version 2>&1 | head -n 1)"
echo "host: $(uname -sr), $(nproc) CPUs; one sshd on 127.0.0.1"
rf_sshd_start sshd
rf_config --path "$RF_APP"

# ---------------------------------------------------------------------------
# (a) rollback: start to current switched
# ---------------------------------------------------------------------------

for id in r1 r2; do
	"$RF_BIN" -c "$RF_CONFIG" -q deploy "$(pack "$id")" --revision "$id" >/dev/null 2>&1
done
: >"$RF_TMP/switch.ms"
: >"$RF_TMP/rollback-wall.ms"
target=r1
for ((i = 1; i <= RUNS; i++)); do
	t0=${EPOCHREALTIME/./}
	"$RF_BIN" -c "$RF_CONFIG" --json rollback --to "$target" >"$RF_TMP/rollback.json" 2>"$RF_TMP/rollback.err" || {
		echo "bench-ops: rollback failed (exit $?):" >&2
		cat "$RF_TMP/rollback.err" >&2
		exit 1
	}
	t1=${EPOCHREALTIME/./}
	ms_to_switch "$RF_TMP/rollback.json" >>"$RF_TMP/switch.ms"
	echo $(((t1 - t0) / 1000)) >>"$RF_TMP/rollback-wall.ms"
	[[ $(readlink "$RF_APP/current") == "releases/$target" ]] || {
		echo "bench-ops: current is not releases/$target after run $i" >&2
		exit 1
	}
	if [[ $target == r1 ]]; then target=r2; else target=r1; fi
done

echo
echo "(a) rollback, start to current switched (from --json events), $RUNS runs"
echo "    command: relflip -c CFG --json rollback --to r1|r2   (alternating; no [health], no services)"
echo "    median $(median <"$RF_TMP/switch.ms") ms (range $(minmax <"$RF_TMP/switch.ms") ms);" \
	"whole command, wall: median $(median <"$RF_TMP/rollback-wall.ms") ms"

# ---------------------------------------------------------------------------
# (b) prune of 1,000 releases
# ---------------------------------------------------------------------------

BIG=$RF_TMP/srv/big
TEMPLATE=$RF_APP/.relflip/releases/r1.json
BIG_CONFIG=$RF_TMP/big.ini
keep=$RF_CONFIG
rf_config --path "$BIG" --file "$BIG_CONFIG"
RF_CONFIG=$keep

# make_releases N: N releases under $BIG, records in the format of
# $TEMPLATE (a real deploy's), good, one second apart; the newest live.
make_releases() {
	rm -rf "$BIG"
	"$RF_PYTHON" - "$BIG" "$TEMPLATE" "$1" <<'EOF'
import json, os, sys, time
app, template, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(template) as f:
    tmpl = json.loads(f.read())
for d in ("releases", "shared", ".relflip/releases", ".relflip/incoming"):
    os.makedirs(os.path.join(app, d), exist_ok=True)
base = int(time.time()) - n - 60
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
for i in range(1, n + 1):
    rid = "r%05d" % i
    d = os.path.join(app, "releases", rid)
    os.mkdir(d)
    for name, text in (("index.html", "<h1>%s</h1>\n" % rid), ("REVISION", rid + "\n"),
                       ("DEPLOYED_AT", iso(base + i) + "\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    rec = dict(tmpl)
    rec.update(id=rid, status="live" if i == n else "good", created=iso(base + i),
               activated=iso(base + i), deactivated=None if i == n else iso(base + i + 1),
               reason="")
    with open(os.path.join(app, ".relflip/releases", rid + ".json"), "w") as f:
        f.write(json.dumps(rec) + "\n")
os.symlink("releases/r%05d" % n, os.path.join(app, "current.tmp"))
os.replace(os.path.join(app, "current.tmp"), os.path.join(app, "current"))
EOF
}

# bench_prune N: PRUNE_RUNS runs of `prune --keep 5` over N fresh releases;
# prints the figures, or how it failed (and returns 1).
bench_prune() {
	local n=$1 i t0 t1 rc left detail

	: >"$RF_TMP/prune-wall.ms"
	: >"$RF_TMP/prune-events.ms"
	: >"$RF_TMP/prune-stage.ms"
	echo
	echo "(b) prune of $n releases down to 5, $PRUNE_RUNS runs (releases made afresh each time)"
	echo "    command: relflip -c CFG --json prune --keep 5"
	for ((i = 1; i <= PRUNE_RUNS; i++)); do
		make_releases "$n"
		rc=0
		t0=${EPOCHREALTIME/./}
		"$RF_BIN" -c "$BIG_CONFIG" --json prune --keep 5 >"$RF_TMP/prune.json" 2>"$RF_TMP/prune.err" || rc=$?
		t1=${EPOCHREALTIME/./}
		if ((rc != 0)); then
			echo "    FAILED: exit $rc after $(((t1 - t0) / 1000)) ms;" \
				"$(find "$BIG/releases" -mindepth 1 -maxdepth 1 | wc -l) releases left; relflip said:"
			sed 's/^/      /' "$RF_TMP/prune.err"
			return 1
		fi
		echo $(((t1 - t0) / 1000)) >>"$RF_TMP/prune-wall.ms"
		"$RF_PYTHON" - "$RF_TMP/prune.json" "$RF_TMP/prune-events.ms" "$RF_TMP/prune-stage.ms" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
res = ev[-1]
if res.get("event") != "result" or res.get("exit_code") != 0:
    sys.exit("prune failed: %r" % res)
stage = [e for e in ev if e["event"] == "stage" and e.get("stage") == "prune" and e.get("phase") == "end"]
open(sys.argv[2], "a").write("%d\n" % res["duration_ms"])
open(sys.argv[3], "a").write("%d\n" % sum(e["duration_ms"] for e in stage))
EOF
		left=$(find "$BIG/releases" -mindepth 1 -maxdepth 1 | wc -l)
		if ((left != 5)); then
			echo "    WRONG: $left releases left after prune --keep 5, expected 5"
			return 1
		fi
	done
	detail=$(sed -n 's/.*"stage": "prune", "phase": "end".*"detail": "\([^"]*\)".*/\1/p' "$RF_TMP/prune.json")
	echo "    wall: median $(median <"$RF_TMP/prune-wall.ms") ms (range $(minmax <"$RF_TMP/prune-wall.ms") ms);" \
		"start to result (events): median $(median <"$RF_TMP/prune-events.ms") ms;" \
		"prune stage alone: median $(median <"$RF_TMP/prune-stage.ms") ms"
	echo "    relflip said: $detail"
}

status=0
if ! bench_prune "$NRELEASES"; then
	status=1
	# For scale, when it fails: the same with fewer releases.
	bench_prune "${PRUNE_FALLBACK:-150}" || true
fi
exit "$status"
