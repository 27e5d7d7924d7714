"""A tiny Flask app for relflip's demo: what a release looks like.

Served by gunicorn from the release directory (see ./serve, which runs
`gunicorn --chdir APP_PATH/current app:app`). At import time it reads
REVISION from its working directory, which is the release directory that
`current` pointed at when the server started: a restart is what makes a new
release serve, exactly as with a real gunicorn behind systemd.

    GET /health  200 "ok <revision>", or 503 "broken <revision>" while a file
                 named BROKEN exists in the release directory (checked on
                 every request, so a release can ship broken on purpose)
    GET /        a line of text naming the revision
"""

import os

from flask import Flask

# getcwd() resolves symlinks: this is releases/<id>, not current.
RELEASE_DIR = os.getcwd()


def _read_revision():
    try:
        with open(os.path.join(RELEASE_DIR, "REVISION"), encoding="utf-8") as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


REVISION = _read_revision()

app = Flask(__name__)


def _text(body, status=200):
    return body + "\n", status, {
        "Content-Type": "text/plain; charset=utf-8",
        "X-Revision": REVISION,
        "Cache-Control": "no-store",
    }


@app.get("/health")
def health():
    if os.path.exists(os.path.join(RELEASE_DIR, "BROKEN")):
        return _text("broken %s" % REVISION, 503)
    return _text("ok %s" % REVISION)


@app.get("/")
def index():
    return _text("hello from flask-app, revision %s" % REVISION)
