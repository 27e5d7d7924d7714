#!/usr/bin/env python3
"""What a deploy must leave on a server whatever happened to it.

    invariants.py APP LIVE_BEFORE

Checks APP's layout after a fault and prints one line per broken invariant
(nothing when all hold); exit 1 when any is broken:

  current   APP/current is a symlink to a directory directly under
            APP/releases (it may be absent only when LIVE_BEFORE is "-",
            that is when nothing was live before)
  records   every APP/.relflip/releases/*.json is one JSON object whose id
            is its file name
  live      exactly one record has status "live", and it is the release
            current points at (none when there is no current)
  log       every line of APP/.relflip/log.jsonl is a JSON object
"""
import json
import os
import sys


def main():
    app, before = sys.argv[1], sys.argv[2]
    bad = []
    cur = os.path.join(app, "current")
    live_id = None
    if os.path.islink(cur):
        target = os.readlink(cur)
        real = os.path.realpath(cur)
        releases = os.path.realpath(os.path.join(app, "releases"))
        if not os.path.isdir(real) or os.path.dirname(real) != releases:
            bad.append("current: -> %s does not resolve to a directory under releases/" % target)
        else:
            live_id = os.path.basename(real)
    elif os.path.exists(cur):
        bad.append("current: exists but is not a symlink")
    elif before != "-":
        bad.append("current: missing, though %s was live before" % before)

    rdir = os.path.join(app, ".relflip", "releases")
    live = []
    for name in sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []:
        if not name.endswith(".json"):
            continue
        path = os.path.join(rdir, name)
        try:
            with open(path) as f:
                text = f.read()
            rec = json.loads(text)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as e:
            bad.append("records: %s does not parse (%s): %r" % (name, e, text[:120]))
            continue
        if rec.get("id") != name[:-5]:
            bad.append("records: %s has id %r" % (name, rec.get("id")))
        if rec.get("status") == "live":
            live.append(name[:-5])
    if live_id is None and live:
        bad.append("live: no current, but records say live: %s" % " ".join(live))
    elif live_id is not None and live != [live_id]:
        bad.append("live: current -> %s, records say live: %s"
                   % (live_id, " ".join(live) or "none"))

    log = os.path.join(app, ".relflip", "log.jsonl")
    if os.path.exists(log):
        with open(log, "rb") as f:
            for n, raw in enumerate(f.read().split(b"\n"), 1):
                if not raw:
                    continue
                try:
                    if not isinstance(json.loads(raw), dict):
                        raise ValueError("not an object")
                except ValueError as e:
                    bad.append("log: line %d does not parse (%s): %r" % (n, e, raw[:120]))
    for line in bad:
        print(line)
    sys.exit(1 if bad else 0)


main()
