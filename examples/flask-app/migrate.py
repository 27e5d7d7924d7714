"""The example's database migration: a stand-in that has nothing to migrate.

    ./venv/bin/python migrate.py

relflip's guide runs it as the migrate hook, after loading shared/.env:

    migrate = set -a && . ./.env && set +a && ./venv/bin/python migrate.py

It checks what a real migration needs from the environment (DATABASE_URL,
which hooks only have when they load .env themselves: they do not run under
systemd's EnvironmentFile) and exits 0 with nothing to do. An app with
Flask-Migrate would run `./venv/bin/flask --app app db upgrade` instead.
"""

import os
import sys


def main():
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print("migrate: DATABASE_URL is not set: load shared/.env first "
              "(set -a && . ./.env && set +a)", file=sys.stderr)
        return 1
    scheme = url.split(":", 1)[0]
    print("migrate: %s database, no migrations to apply" % scheme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
