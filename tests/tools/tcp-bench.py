#!/usr/bin/env python3
"""Time TCP transfers and round trips through a proxy, for netem-proxy's test.

  tcp-bench.py serve READY_FILE            a target: echo server on a free port
  tcp-bench.py rtt HOST PORT N             N one-byte round trips: prints ms each
  tcp-bench.py up|down HOST PORT BYTES     a transfer: prints seconds and Mbit/s

The server echoes one byte per round trip ("r" mode), swallows an upload
("u" mode, then answers with the count) or sends BYTES ("d" mode). The
first line a client sends selects the mode. Bounded: the server exits
after 120 s.
"""
import os
import socket
import sys
import threading
import time


def serve(ready):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.settimeout(1)
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.replace(tmp, ready)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def readline(c):
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(1)
        if not b:
            break
        line += b
    return line.decode().split()


def handle(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        words = readline(c)
        if not words:
            return
        if words[0] == "r":
            while True:
                b = c.recv(1)
                if not b:
                    return
                c.sendall(b)
        elif words[0] == "u":
            want, got = int(words[1]), 0
            while got < want:
                b = c.recv(1 << 16)
                if not b:
                    break
                got += len(b)
            c.sendall(b"%d\n" % got)
        elif words[0] == "d":
            left = int(words[1])
            block = b"x" * (1 << 16)
            while left > 0:
                n = c.send(block[: min(left, len(block))])
                left -= n
            c.shutdown(socket.SHUT_WR)
            c.recv(1)
    except OSError:
        pass
    finally:
        c.close()


def connect(host, port):
    c = socket.create_connection((host, int(port)), timeout=30)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2])
        return
    host, port, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = connect(host, port)
    if mode == "rtt":
        c.sendall(b"r\n")
        for _ in range(n):
            t = time.monotonic()
            c.sendall(b".")
            if c.recv(1) != b".":
                sys.exit("rtt: connection closed")
            print("%.1f" % ((time.monotonic() - t) * 1000))
    elif mode == "up":
        t = time.monotonic()
        c.sendall(b"u %d\n" % n)
        block = b"y" * (1 << 16)
        left = n
        while left > 0:
            left -= c.send(block[: min(left, len(block))])
        got = int(c.makefile().readline())
        dt = time.monotonic() - t
        if got != n:
            sys.exit("up: the server got %d of %d bytes" % (got, n))
        print("%.3f %.1f" % (dt, n * 8 / dt / 1e6))
    elif mode == "down":
        t = time.monotonic()
        c.sendall(b"d %d\n" % n)
        got = 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            got += len(b)
        dt = time.monotonic() - t
        if got != n:
            sys.exit("down: got %d of %d bytes" % (got, n))
        print("%.3f %.1f" % (dt, n * 8 / dt / 1e6))
    c.close()


main()
