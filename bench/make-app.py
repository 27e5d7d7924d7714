#!/usr/bin/env python3
"""Write the bench's web app: a Flask app served by gunicorn, the size of a
small SaaS app (issue 11: 2,012 files, about 4.6 MB as tar.gz).

    make-app.py DIR [--files 2012] [--binary-kb 3860] [--seed 11]

The same arguments always write the same bytes (a seeded generator, no
clock), so every run of the bench deploys the same tree. What is in it:

    app.py            the Flask app; gunicorn serves app:app from current/
    migrate.py        the migrate step: records the revision in a sqlite db
                      under db/ (a shared directory on the server)
    requirements.txt, README.md, config.py
    shop/**.py        Python modules: classes, functions, docstrings
    templates/**.html Jinja templates
    static/css, static/js   stylesheets and scripts
    static/img, static/fonts   binary assets (random bytes behind a PNG or
                      WOFF2 signature: they do not compress, like real ones)
    locale/*.po       message catalogues

Text is built from a fixed vocabulary of identifiers and English words, so
it compresses about as well as real source does (to a third or so);
--binary-kb sets how much of the tree does not compress at all.

GET /health answers 200 "ok <revision>", the revision being the release's
REVISION file, read once at start-up from the working directory (gunicorn
--chdir APP/current resolves the link when it starts and on every HUP):
a health check that expects the new revision proves the restart worked.
"""

import argparse
import os
import random

APP_PY = '''"""benchapp: the web app of relflip's bench (see bench/make-app.py)."""

import os

from flask import Flask, render_template_string

# getcwd() resolves symlinks: this is releases/<id>, not current.
RELEASE_DIR = os.getcwd()


def _read(name, default):
    try:
        with open(os.path.join(RELEASE_DIR, name), encoding="utf-8") as f:
            return f.read().strip() or default
    except OSError:
        return default


REVISION = _read("REVISION", "unknown")
BUILD = _read("BUILD", "0")

app = Flask(__name__)


@app.get("/health")
def health():
    return "ok %s\\n" % REVISION, 200, {
        "Content-Type": "text/plain; charset=utf-8",
        "X-Revision": REVISION,
        "Cache-Control": "no-store",
    }


@app.get("/")
def index():
    return render_template_string(
        "<h1>benchapp</h1><p>revision {{ r }}, build {{ b }}</p>", r=REVISION, b=BUILD
    )
'''

MIGRATE_PY = '''"""The migrate step: one row per deploy in db/app.sqlite3 (db/ is shared)."""

import os
import sqlite3
import time

os.makedirs("db", exist_ok=True)
with open("REVISION", encoding="utf-8") as f:
    revision = f.read().strip()
db = sqlite3.connect(os.path.join("db", "app.sqlite3"))
db.execute("CREATE TABLE IF NOT EXISTS deploys (revision TEXT, at REAL)")
db.execute("INSERT INTO deploys VALUES (?, ?)", (revision, time.time()))
db.commit()
n = db.execute("SELECT count(*) FROM deploys").fetchone()[0]
db.close()
print("migrated %s (%d deploys recorded)" % (revision, n))
'''

WORDS = """account address admin alert amount api archive audit basket batch
billing bind body bucket cache cancel card cart catalog channel charge check
checkout client code column comment config connect context count country
coupon create currency customer data date debit default delete delivery
detail discount dispatch domain draft email entry error event export feature
fetch field file filter flag form format gateway group handle header history
image import index invoice item job key label language layout ledger limit
line link list load locale lock log lookup mail manager margin member message
meta method metric model module name note notice number offer order owner
page panel parse partner payment period permission plan policy price product
profile query queue quota rate record refund region render report request
reset resource result return review role route rule sale schedule schema
scope search section seller send session setting shipment shop signal size
slot source stage state status stock store stream subscription summary supplier
sync table tag task tax team template tenant theme ticket token total track
transfer type unit update upload user value vendor view voucher warehouse
webhook widget window workflow zone""".split()

PROSE = """the of and to a in is that for it as with be on not this by are or
from at an which have has but all can will one when each if more been there
would so what their other into than then them these some its only should may
new used also any such same where most must after before over between through
returns raises given value values list none true false default optional""".split()


SYLLABLES = """ka ro ve lin dor mi sa tel qu an ex po ri zen fa gol hu jas
ny ot pe ram si tu ub vi wo xa yel zo bra cri dra fle glo pri stu tri""".split()


def vocabulary(rng, n):
    """WORDS plus N made-up words: real code has many distinct names, and
    that is most of why it compresses to about a quarter, not a tenth."""
    made = set()
    while len(made) < n:
        made.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return WORDS + sorted(made)


def ident(rng, parts=2):
    return "_".join(rng.choice(WORDS) for _ in range(parts))


def camel(rng, parts=2):
    return "".join(rng.choice(WORDS).capitalize() for _ in range(parts))


def sentence(rng, n=None):
    n = n or rng.randint(6, 14)
    words = [rng.choice(PROSE if rng.random() < 0.6 else WORDS) for _ in range(n)]
    return (" ".join(words)).capitalize() + "."


def py_module(rng, size):
    out = ['"""%s"""' % sentence(rng), "", "import logging", "from dataclasses import dataclass", ""]
    out.append("log = logging.getLogger(__name__)")
    out.append("")
    while sum(len(x) + 1 for x in out) < size:
        if rng.random() < 0.4:
            cls = camel(rng)
            out.append("")
            out.append("@dataclass")
            out.append("class %s:" % cls)
            out.append('    """%s"""' % sentence(rng))
            out.append("")
            for _ in range(rng.randint(2, 6)):
                out.append("    %s: %s = %s" % (ident(rng), rng.choice(["int", "str", "float", "bool"]),
                                                rng.choice(["0", "''", "0.0", "False", "None"])))
            out.append("")
            for _ in range(rng.randint(1, 3)):
                out.append("    def %s(self, %s):" % (ident(rng), ident(rng, 1)))
                out.append('        """%s"""' % sentence(rng))
                out.append("        if self.%s is None:" % ident(rng))
                out.append('            raise ValueError("%s")' % sentence(rng, 5))
                out.append("        return self.%s" % ident(rng))
                out.append("")
        else:
            name = ident(rng, rng.randint(2, 3))
            args = ", ".join(ident(rng, 1) for _ in range(rng.randint(1, 3)))
            out.append("")
            out.append("def %s(%s):" % (name, args))
            out.append('    """%s' % sentence(rng))
            out.append("")
            out.append("    %s" % sentence(rng))
            out.append('    """')
            for _ in range(rng.randint(2, 7)):
                a, b = ident(rng), ident(rng)
                pick = rng.random()
                if pick < 0.3:
                    out.append("    %s = %s.get(%r, %d)" % (a, b, rng.choice(WORDS), rng.randint(0, 999)))
                elif pick < 0.6:
                    out.append("    for %s in %s:" % (rng.choice(WORDS), b))
                    out.append("        log.debug(%r, %s)" % (sentence(rng, 4) + " %s", rng.choice(WORDS)))
                else:
                    out.append("    if not %s:" % a)
                    out.append("        return None")
            out.append("    return %s" % ident(rng))
            out.append("")
    return "\n".join(out) + "\n"


def html_template(rng, size):
    out = ['{% extends "base.html" %}', "{% block title %}" + camel(rng) + "{% endblock %}",
           "{% block content %}"]
    while sum(len(x) + 1 for x in out) < size:
        cls = rng.choice(WORDS)
        out.append('<section class="%s %s-%s">' % (cls, cls, rng.choice(WORDS)))
        out.append("  <h2>{{ _('%s') }}</h2>" % sentence(rng, 3))
        out.append("  <p>%s</p>" % sentence(rng))
        out.append("  {%% for %s in %s %%}" % (rng.choice(WORDS), ident(rng)))
        out.append('    <a href="{{ url_for(\'%s\', id=%s.id) }}">{{ %s.%s }}</a>'
                   % (ident(rng), cls, cls, rng.choice(WORDS)))
        out.append("  {% endfor %}")
        out.append("</section>")
    out.append("{% endblock %}")
    return "\n".join(out) + "\n"


def css_sheet(rng, size):
    out = []
    while sum(len(x) + 1 for x in out) < size:
        out.append(".%s-%s, .%s > .%s {" % (rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS),
                                            rng.choice(WORDS)))
        for _ in range(rng.randint(2, 6)):
            prop = rng.choice(["margin", "padding", "color", "background", "border", "font-size",
                               "line-height", "display", "width", "height", "gap"])
            val = rng.choice(["%dpx" % rng.randint(0, 48), "#%06x" % rng.randrange(1 << 24), "auto",
                              "flex", "grid", "1.%d" % rng.randint(1, 9), "%d%%" % rng.randint(1, 100)])
            out.append("  %s: %s;" % (prop, val))
        out.append("}")
    return "\n".join(out) + "\n"


def js_script(rng, size):
    out = ['"use strict";', "import { %s } from './%s.js';" % (camel(rng), rng.choice(WORDS)), ""]
    while sum(len(x) + 1 for x in out) < size:
        fn = camel(rng)
        fn = fn[0].lower() + fn[1:]
        out.append("/** %s */" % sentence(rng))
        out.append("export function %s(%s) {" % (fn, ", ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))))
        for _ in range(rng.randint(2, 6)):
            if rng.random() < 0.5:
                out.append("  const %s = %s.%s(%r);" % (fn + str(rng.randint(0, 9)), rng.choice(WORDS),
                                                       rng.choice(WORDS), rng.choice(WORDS)))
            else:
                out.append("  if (!%s) { throw new Error(%r); }" % (rng.choice(WORDS), sentence(rng, 4)))
        out.append("  return %s;" % rng.choice(WORDS))
        out.append("}")
        out.append("")
    return "\n".join(out) + "\n"


def po_catalog(rng, size):
    out = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    while sum(len(x) + 1 for x in out) < size:
        out.append("#: templates/%s.html:%d" % (rng.choice(WORDS), rng.randint(1, 200)))
        out.append('msgid "%s"' % sentence(rng, 4))
        out.append('msgstr "%s"' % sentence(rng, 5))
        out.append("")
    return "\n".join(out) + "\n"


def binary_asset(rng, size, kind):
    head = b"\x89PNG\r\n\x1a\n" if kind == "png" else b"wOF2\x00\x01\x00\x00"
    return head + rng.randbytes(max(0, size - len(head)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--files", type=int, default=2012)
    p.add_argument("--binary-kb", type=int, default=3860)
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()
    rng = random.Random(a.seed)
    global WORDS
    dirs = WORDS[:60]
    WORDS = vocabulary(rng, 4000)
    root = a.dir
    written = []

    def put(rel, data):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(path, "wb") as f:
            f.write(data)
        written.append(rel)

    put("app.py", APP_PY)
    put("migrate.py", MIGRATE_PY)
    put("requirements.txt", "Flask==2.2.2\ngunicorn==20.1.0\n")
    put("README.md", "# benchapp\n\nThe web app of relflip's bench; generated by bench/make-app.py.\n")
    put("config.py", "SECRET_KEY_FILE = '.env'\nDATABASE = 'db/app.sqlite3'\n")
    put("BUILD", "0\n")
    put("templates/base.html", "<!doctype html>\n<title>{% block title %}{% endblock %}</title>\n"
        "{% block content %}{% endblock %}\n")
    put("shop/__init__.py", '"""The shop package."""\n')
    packages = sorted({"shop/" + "/".join(rng.choice(dirs) for _ in range(rng.randint(1, 2)))
                       for _ in range(40)})
    inits = sorted({"/".join(pkg.split("/")[:i]) for pkg in packages
                    for i in range(2, pkg.count("/") + 2)})
    rest = a.files - len(written) - len(inits)
    if rest < 100:
        raise SystemExit("make-app.py: --files must be at least %d" % (a.files - rest + 100))
    for pkg in inits:
        put(pkg + "/__init__.py", '"""%s"""\n' % sentence(rng))
    # Shares of the remaining files, as a small SaaS app's tree might be.
    kinds = [("py", 0.31), ("html", 0.16), ("css", 0.09), ("js", 0.21), ("po", 0.04),
             ("font", 0.006)]
    counts = {k: int(rest * share) for k, share in kinds}
    counts["png"] = rest - sum(counts.values())
    nbin = counts["png"] + counts["font"]
    # Binary sizes: random around the mean, scaled to sum to --binary-kb.
    weights = [rng.uniform(0.2, 1.8) for _ in range(nbin)]
    scale = a.binary_kb * 1024 / sum(weights)
    bsizes = [max(64, int(w * scale)) for w in weights]
    for n in range(counts["py"]):
        pkg = packages[n % len(packages)]
        put("%s/%s_%d.py" % (pkg, ident(rng), n), py_module(rng, rng.randint(300, 1500)))
    for n in range(counts["html"]):
        put("templates/%s/%s_%d.html" % (rng.choice(dirs), rng.choice(WORDS), n),
            html_template(rng, rng.randint(300, 1400)))
    for n in range(counts["css"]):
        put("static/css/%s_%d.css" % (ident(rng), n), css_sheet(rng, rng.randint(200, 1200)))
    for n in range(counts["js"]):
        put("static/js/%s/%s_%d.js" % (rng.choice(dirs), rng.choice(WORDS), n),
            js_script(rng, rng.randint(300, 1500)))
    for n in range(counts["po"]):
        put("locale/%s_%d.po" % (rng.choice(WORDS), n), po_catalog(rng, rng.randint(400, 1500)))
    b = iter(bsizes)
    for n in range(counts["font"]):
        put("static/fonts/%s_%d.woff2" % (rng.choice(WORDS), n), binary_asset(rng, next(b), "font"))
    for n in range(counts["png"]):
        put("static/img/%s/%s_%d.png" % (rng.choice(dirs), rng.choice(WORDS), n),
            binary_asset(rng, next(b), "png"))
    print("%d files" % len(written))


if __name__ == "__main__":
    main()
