#!/usr/bin/env python3
"""A webhook receiver for relflip's end-to-end tests ([notify] url).

    webhook.py --port P --log FILE [--status N] [--hang]

Records every request it gets as one JSON line in FILE: method, path,
Content-Type and the body as text, written (and flushed) as soon as the
body is in. Then it answers N (default 200) with "ok", or, with --hang,
never answers: a webhook that has gone slow. It runs until it is killed.
"""

import http.server
import json
import sys
import threading


def main():
    args = sys.argv[1:]
    port, log, status, hang = None, None, 200, False
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--log":
            log = args.pop(0)
        elif a == "--status":
            status = int(args.pop(0))
        elif a == "--hang":
            hang = True
        else:
            sys.exit("webhook.py: unknown argument %r" % a)
    if port is None or log is None:
        sys.exit("usage: webhook.py --port P --log FILE [--status N] [--hang]")
    lock = threading.Lock()
    forever = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def record(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            line = json.dumps({
                "method": self.command,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            })
            with lock, open(log, "a") as f:
                f.write(line + "\n")
                f.flush()
            if hang:
                forever.wait()
            self.send_response(status)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        do_POST = record
        do_GET = record

        def log_message(self, fmt, *a):
            sys.stderr.write("webhook: " + (fmt % a) + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
