#!/usr/bin/env python3
"""Write the artifact seeds of corpus/artifact/: small tarballs, good and
hostile, like those tests/unit/test-artifact.c builds, in every compression
artifact_validate reads. Run it again after changing a case:

    python3 tests/fuzz/seed-artifacts.py tests/fuzz/corpus/artifact

It needs gzip, xz and zstd (scripts/install-deps.sh installs them)."""
import io
import os
import subprocess
import sys
import tarfile

MTIME = 1735689600


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=None, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mtime = MTIME
    ti.linkname = link
    if kind == tarfile.DIRTYPE:
        ti.mode = 0o755 if mode is None else mode
    elif kind == tarfile.SYMTYPE:
        ti.mode = 0o777
    else:
        ti.mode = 0o644 if mode is None else mode
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
    return ti, data


def tar(entries, fmt=tarfile.GNU_FORMAT):
    """A tar with the entries, cut after its two end blocks (tarfile pads
    it to 10 KiB otherwise, which only slows the fuzzer down)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
        end = t.offset
    return out.getvalue()[: end + 1024]


# Small windows: the decoder allocates what the header asks for, and a
# 64 MiB xz dictionary (xz -9) costs a quarter of a second an input.
LEVEL = {"gzip": ["-9"], "bzip2": ["-9"], "zstd": ["-1"],
         "xz": ["--lzma2=preset=6,dict=64KiB"]}


def compress(tool, raw):
    return subprocess.run([tool, "-c"] + LEVEL[tool], input=raw,
                          check=True, stdout=subprocess.PIPE).stdout


GOOD = [
    entry("./", tarfile.DIRTYPE),
    entry("./app/", tarfile.DIRTYPE),
    entry("./app/index.html", data=b"<h1>hello</h1>\n"),
    entry("./bin/", tarfile.DIRTYPE),
    entry("./bin/run", data=b"#!/bin/sh\nexec true\n", mode=0o755),
    entry("./lib", tarfile.SYMTYPE, link="app"),
    entry("./app/up", tarfile.SYMTYPE, link="../bin/run"),
    entry("./app/copy", tarfile.LNKTYPE, link="./app/index.html"),
    entry("./REVISION", data=b"0123456789abcdef\n"),
    entry("./sticky/", tarfile.DIRTYPE, mode=0o1777),
]

HOSTILE = {
    "absolute": [entry("/etc/cron.d/x", data=b"* * * * * root id\n")],
    "dotdot": [entry("a/../../x", data=b"x")],
    "dotdot-dir": [entry("..", tarfile.DIRTYPE)],
    "empty-path": [entry("", data=b"x")],
    "symlink-abs": [entry("passwd", tarfile.SYMTYPE, link="/etc/passwd")],
    "symlink-up": [entry("a/", tarfile.DIRTYPE),
                   entry("a/l", tarfile.SYMTYPE, link="../../x")],
    "symlink-empty": [entry("l", tarfile.SYMTYPE, link="")],
    "symlink-then-file": [entry("l", tarfile.SYMTYPE, link="d"),
                          entry("l/x", data=b"through the link")],
    "file-then-below": [entry("f", data=b"x"), entry("f/y", data=b"y")],
    "hardlink-abs": [entry("h", tarfile.LNKTYPE, link="/etc/shadow")],
    "hardlink-later": [entry("h", tarfile.LNKTYPE, link="f"),
                       entry("f", data=b"x")],
    "hardlink-dir": [entry("d/", tarfile.DIRTYPE),
                     entry("h", tarfile.LNKTYPE, link="d")],
    "chardev": [entry("dev/null", tarfile.CHRTYPE)],
    "blockdev": [entry("sda", tarfile.BLKTYPE)],
    "fifo": [entry("pipe", tarfile.FIFOTYPE)],
    "setuid": [entry("su", data=b"x", mode=0o4755)],
    "setgid": [entry("shared", tarfile.DIRTYPE, mode=0o2775)],
    "duplicate": [entry("d/", tarfile.DIRTYPE),
                  entry("./d//", tarfile.DIRTYPE)],
    "root-file": [entry("./", data=b"x")],
    "too-many": [entry("f%03d" % i) for i in range(70)],
    "too-big": [entry("zeros", data=bytes(1100 * 1024))],
    "long-name": [entry("d/" * 200 + "f", data=b"x")],
}


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    seeds = {}
    good = tar(GOOD)
    seeds["good.tar"] = good
    seeds["good-pax.tar"] = tar(GOOD, tarfile.PAX_FORMAT)
    seeds["good-ustar.tar"] = tar(GOOD[:5], tarfile.USTAR_FORMAT)
    seeds["good.tar.gz"] = compress("gzip", good)
    seeds["good.tar.xz"] = compress("xz", good)
    seeds["good.tar.zst"] = compress("zstd", good)
    seeds["good-trailing.tar.gz"] = compress("gzip", good) + b"trailing"
    seeds["nested.tar.gz.gz"] = compress("gzip", compress("gzip", good))
    seeds["bzip2.tar.bz2"] = compress("bzip2", good)
    seeds["truncated.tar.gz"] = compress("gzip", good)[:200]
    seeds["truncated.tar"] = good[:700]
    seeds["no-entries.tar"] = bytes(1024)
    seeds["not-tar.txt"] = b"this is not a tarball\n"
    for name, entries in sorted(HOSTILE.items()):
        raw = tar(entries, tarfile.PAX_FORMAT if name == "long-name"
                  else tarfile.GNU_FORMAT)
        if name in ("too-big", "too-many"):
            seeds[name + ".tar.gz"] = compress("gzip", raw)
        else:
            seeds[name + ".tar"] = raw
    seeds["dotdot.tar.zst"] = compress("zstd", tar(HOSTILE["dotdot"]))
    seeds["symlink-abs.tar.xz"] = compress("xz", tar(HOSTILE["symlink-abs"]))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
