"""Runs the Python snippets of relflip's e2e helpers for one test (rf_py in
hosts.bash): one interpreter a test instead of one a check, since starting
Python costs more than most checks.

A request on stdin is NUL-terminated fields: their count N, the working
directory, the text for the snippet's stdin, the snippet, then its N - 3
arguments. The answer on stdout is a line "EXIT OUT_BYTES ERR_BYTES" and
then the snippet's stdout and stderr, as `python3 -c SNIPPET ARGS` would
have given them.
"""

import io
import os
import sys
import traceback


def fields(stream):
    buf = b""
    while True:
        while b"\0" not in buf:
            chunk = stream.read1(65536)
            if not chunk:
                return
            buf += chunk
        field, buf = buf.split(b"\0", 1)
        yield field.decode("utf-8", "surrogateescape")


def run(cwd, text, script, args):
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
    sys.argv = ["-c"] + args
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(text), out, err
    code = 0
    try:
        os.chdir(cwd)
        exec(compile(script, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            err.write("%s\n" % (e.code,))
            code = 1
    except BaseException:
        traceback.print_exc(file=err)
        code = 1
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def main():
    stream = fields(sys.stdin.buffer)
    reply = sys.stdout.buffer
    for count in stream:
        try:
            got = [next(stream) for _ in range(int(count))]
        except StopIteration:
            return
        code, out, err = run(got[0], got[1], got[2], got[3:])
        o = out.encode("utf-8", "surrogateescape")
        e = err.encode("utf-8", "surrogateescape")
        reply.write(b"%d %d %d\n" % (code, len(o), len(e)) + o + e)
        reply.flush()


if __name__ == "__main__":
    main()
