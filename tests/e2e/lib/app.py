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

HTTP/1.0, one thread a connection. Quick to start, because the tests start
it hundreds of times: sockets and threads only (no http.server, argparse or
site; app-ctl runs it with python3 -S), and those from the C modules
_socket and _thread: socket.py and threading.py import enum, selectors and
collections, which took two thirds of the app's 34 ms of CPU to start.
"""

import _socket
import _thread
import os
import sys

REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}


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


def log(text):
    sys.stderr.write("app[%d] %s\n" % (os.getpid(), text))
    sys.stderr.flush()


def answer(app, conn, peer):
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\n", 1)[0].decode("latin-1").strip()
    words = line.split()
    if len(words) < 2:
        return
    method, path = words[0], words[1]
    if method not in ("GET", "HEAD"):
        status, body = 501, "unsupported method\n"
    elif path.split("?", 1)[0] not in ("/", "/health"):
        status, body = 404, "not found\n"
    else:
        status, body = app.health()
    payload = body.encode()
    head = ("HTTP/1.0 %d %s\r\nServer: relflip-test-app/1\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
            "X-Revision: %s\r\n\r\n"
            % (status, REASONS.get(status, "Status"), len(payload), app.revision))
    conn.sendall(head.encode() + (payload if method != "HEAD" else b""))
    log('%s "%s" %d -' % (peer, line, status))


def serve_one(app, conn, peer):
    try:
        answer(app, conn, peer)
    except OSError:
        pass
    finally:
        conn.close()


def parse_args(argv):
    opts = {"--host": "127.0.0.1", "--pidfile": None, "--port": None, "--root": None}
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            sys.exit("usage: app.py --port P --root APP_PATH [--host H] [--pidfile F]")
        opts[argv[i]] = argv[i + 1]
        i += 2
    if opts["--port"] is None or opts["--root"] is None or not opts["--port"].isdigit():
        sys.exit("usage: app.py --port P --root APP_PATH [--host H] [--pidfile F]")
    return opts


def main():
    opts = parse_args(sys.argv[1:])
    host, port = opts["--host"], int(opts["--port"])
    app = App(opts["--root"])
    server = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    server.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(64)
    if opts["--pidfile"]:
        tmp = "%s.%d.tmp" % (opts["--pidfile"], os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, opts["--pidfile"])
    log("serving %s on %s:%d (release %s)" % (app.revision, host, port, app.release))
    try:
        while True:
            fd, addr = server._accept()
            conn = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
            _thread.start_new_thread(serve_one, (app, conn, addr[0]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
