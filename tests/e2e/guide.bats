#!/usr/bin/env bats
# docs/getting-started.md works as written: its marked blocks (a line
# `<!-- guide-test: NAME -->` before each) are taken from the guide and run
# against the test sshd, on examples/flask-app as it is in the repository.
# Only what names the reader's server changes: the host (203.0.113.10,
# example.com), its port (sshd's, and the app's 8000), the login user
# (deploy: the test sshd lets root in), the key and host key, and the app
# path (/var/www/app). Everything else, the config and the commands, runs
# as the reader would copy it.
#
#   server      `server$` lines: the app path's shared/ and its .env
#   ini         relflip.ini
#   no-systemd  the [service] section for a host without systemd (this one)
#   laptop      `laptop$` lines: known_hosts, check, pack, deploy, releases

load lib/sshd
load lib/deploy

setup_file() {
	rf_file_setup
	rf_file_sshd_start
}

setup() {
	rf_tmp_setup
	rf_sshd_use
	GUIDE=$RF_ROOT/docs/getting-started.md
	EXAMPLE=$RF_ROOT/examples/flask-app
	APP_PORT=$(rf_free_port)
	if ! /usr/bin/python3 -c 'import flask' 2>/dev/null || ! command -v gunicorn >/dev/null; then
		skip "the guide's server needs python3-flask and gunicorn (scripts/install-deps.sh)"
	fi
	command -v git >/dev/null || skip "the guide packs a git work tree: needs git"
}

teardown() {
	# The app the guide's restart line started, by its pidfile.
	if [[ -n ${RF_APP:-} && -f $RF_APP/shared/tmp/pids/gunicorn-$APP_PORT.pid ]]; then
		"$EXAMPLE/serve" stop "$RF_APP" "$APP_PORT" >/dev/null 2>&1 || true
	fi
	rf_teardown
}

teardown_file() {
	rf_file_teardown
}

# guide_block NAME: the block after `<!-- guide-test: NAME -->` in the
# guide, fenced or indented, as the reader sees it (indent removed).
guide_block() {
	rf_py '
import re, sys
text = open(sys.argv[1], encoding="utf-8").read().split("\n")
marker = "<!-- guide-test: %s -->" % sys.argv[2]
at = [i for i, l in enumerate(text) if l.strip() == marker]
if len(at) != 1:
    sys.exit("%d markers %r in the guide" % (len(at), marker))
i = at[0] + 1
while i < len(text) and not text[i].strip():
    i += 1
out = []
if text[i].startswith("```"):
    i += 1
    while not text[i].startswith("```"):
        out.append(text[i])
        i += 1
else:
    while i < len(text) and (text[i].startswith("    ") or not text[i].strip()):
        out.append(text[i][4:])
        i += 1
print("\n".join(out).strip("\n"))
' "$GUIDE" "$1"
}

# localize: the guide's text on stdin, with the reader's server replaced
# by the test's: host, ports, user, key, host key, app path.
localize() {
	local hostkey

	hostkey=$(cut -d' ' -f1,2 "$RF_HOST_KEY")
	sed -e "s|'203\.0\.113\.10 ssh-ed25519 AAAA\.\.\.'|'[127.0.0.1]:$RF_PORT $hostkey'|" \
		-e "s|203\.0\.113\.10|127.0.0.1|g" \
		-e "s|http://example\.com/|http://127.0.0.1:$APP_PORT/|g" \
		-e "s|/var/www/app|$RF_APP|g" \
		-e "s|\b8000\b|$APP_PORT|g" \
		-e "s|^user = deploy$|user = root|" \
		-e "s|^\[ssh\]$|[ssh]\nport = $RF_PORT|" \
		-e "s|-o deploy|-o root|g; s|-g deploy|-g root|g" \
		-e "s|cat relflip_ci|cat '$RF_KEY'|"
}

# commands PREFIX: the lines of stdin that start with PREFIX ("server$ "),
# without it.
commands() {
	sed -n "s/^$1 //p"
}

@test "the guide's blocks are marked, and say what the test relies on" {
	local ini

	ini=$(guide_block ini)
	[[ $ini == *"[hooks]"* && $ini == *"migrate = "* ]] || rf_fail "the ini block:" "$ini"
	# The migrate line names a program the example has.
	[[ $ini == *"./venv/bin/python migrate.py"* && -f $EXAMPLE/migrate.py ]] ||
		rf_fail "the guide's migrate line does not run the example's migrate.py"
	[[ $(guide_block laptop | commands 'laptop\$') == *"relflip deploy app.tgz"* ]]
	[[ $(guide_block server | commands 'server\$') == *"shared/.env"* ]]
	[[ $(guide_block no-systemd) == *"./serve restart"* && -x $EXAMPLE/serve ]]
	grep -Fq '[203.0.113.10]:2222' "$GUIDE" || rf_fail "the guide does not show the [address]:port form"
	grep -Fq 'Store three secrets' "$GUIDE" || rf_fail "the guide miscounts its secrets"
}

@test "getting-started.md, run as written against examples/flask-app: check, pack, deploy, releases" {
	local repo=$RF_TMP/repo bin=$RF_TMP/bin rev ini service

	# The reader's PATH has relflip on it.
	mkdir -p "$bin"
	ln -s "$RF_BIN" "$bin/relflip"

	# The server: shared/ and its .env, as section 1 makes them.
	guide_block server | commands 'server\$' | localize >"$RF_TMP/server.sh"
	bash -e "$RF_TMP/server.sh" || rf_fail "the guide's server lines failed:" "$(cat "$RF_TMP/server.sh")"
	[[ -f $RF_APP/shared/.env && -d $RF_APP/shared/uploads ]]

	# The app's repository, with the guide's relflip.ini committed.
	cp -R "$EXAMPLE" "$repo"
	ini=$(guide_block ini | localize)
	service=$(guide_block no-systemd | localize)
	rf_py --stdin "$ini" '
import re, sys
ini, service = sys.stdin.read(), sys.argv[1]
new, n = re.subn(r"\[service \"web\"\]\n(?:[^\[\n][^\n]*\n?)*", service + "\n\n", ini)
if n != 1:
    sys.exit("no [service \"web\"] section in the ini block")
open(sys.argv[2], "w").write(new.rstrip("\n") + "\n")
' "$service" "$repo/relflip.ini"
	(
		cd "$repo" && git init -q && git add . &&
			git -c user.email=guide@example.com -c user.name=guide commit -qm app
	) || rf_fail "git init of the example failed"
	rev=$(git -C "$repo" rev-parse --short HEAD)

	# Section 4, laptop$ lines, in the repository.
	guide_block laptop | commands 'laptop\$' | localize >"$RF_TMP/laptop.sh"
	(
		cd "$repo" && PATH=$bin:$PATH bash -e "$RF_TMP/laptop.sh"
	) >"$RF_TMP/laptop.out" 2>&1 || rf_fail "the guide's laptop lines failed:" \
		"$(cat "$RF_TMP/laptop.sh")" "--- output:" "$(cat "$RF_TMP/laptop.out")"
	output=$(cat "$RF_TMP/laptop.out")

	# The release is live, migrated, and the app serves it.
	rf_assert_current "$rev"
	rf_assert_record "$rev" live
	rf_assert_stdout_has "ready: 1 of 1 host pass" "migrate: postgresql database, no migrations to apply" \
		"deployed $rev to 1 host" "  * $rev "
	[[ $(rf_app_body "$APP_PORT") == "ok $rev" ]] || rf_fail "the app says: $(rf_app_body "$APP_PORT")"
	# What shipped: what git tracks, not the known_hosts file or the tarball.
	[[ ! -e $RF_APP/releases/$rev/known_hosts && ! -e $RF_APP/releases/$rev/app.tgz ]] ||
		rf_fail "pack shipped untracked files:" "$(ls -a "$RF_APP/releases/$rev")"
	[[ -x $RF_APP/releases/$rev/serve && -f $RF_APP/releases/$rev/migrate.py ]]
}
