#!/usr/bin/env python3
"""The sample app that relflip's end-to-end tests deploy and health-check.

    app.py --port P --root APP_PATH [--host 127.0.0.1] [--pidfile F]

Like gunicorn started from APP_PATH/current, it resolves `current` ONCE, at
start-up: the release it serves stays the same until it is restarted, so a
deploy that forgets to restart is caught by expect_revision.

    GET /health   status: the number in <release>/HEALTH_STATUS when that
                  file exists (read on every request, so a test can turn a
                  running release unhealthy), else 200.
                  body: "ok <revision>" (2xx) or "unhealthy <revision>",
                  where <revision> is <release>/REVISION read at start-up
                  ("none" when there was no release then).
    GET /         the same as /health.

Standard library only, threaded, and quick to start.
"""

import argparse
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


class App:
    def __init__(self, root):
        self.root = root
        current = os.path.join(root, "current")
        if os.path.isdir(current):
            self.release = os.path.realpath(current)
            self.revision = read_text(os.path.join(self.release, "REVISION")) or "unknown"
        else:
            self.release = None
            self.revision = "none"

    def health(self):
        status = 200
        if self.release is not None:
            text = read_text(os.path.join(self.release, "HEALTH_STATUS"))
            if text:
                try:
                    status = int(text.split()[0])
                except ValueError:
                    status = 500
                if not 100 <= status <= 599:
                    status = 500
        word = "ok" if 200 <= status < 300 else "unhealthy"
        return status, "%s %s\n" % (word, self.revision)


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        server_version = "relflip-test-app/1"
        protocol_version = "HTTP/1.0"

        def answer(self, with_body):
            if self.path.split("?", 1)[0] not in ("/", "/health"):
                status, body = 404, "not found\n"
            else:
                status, body = app.health()
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Revision", app.revision)
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_GET(self):
            self.answer(True)

        def do_HEAD(self):
            self.answer(False)

        def log_message(self, fmt, *args):
            sys.stderr.write("app[%d] %s %s\n" % (os.getpid(), self.address_string(), fmt % args))
            sys.stderr.flush()

    return Handler


def main():
    ap = argparse.ArgumentParser(description="relflip test app")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True, help="the app path (holds current)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    app = App(args.root)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((args.host, args.port), make_handler(app))
    if args.pidfile:
        tmp = "%s.%d.tmp" % (args.pidfile, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pidfile)
    sys.stderr.write("app[%d] serving %s on %s:%d (release %s)\n"
                     % (os.getpid(), app.revision, args.host, args.port, app.release))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
