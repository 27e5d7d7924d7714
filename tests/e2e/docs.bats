#!/usr/bin/env bats
# The documentation and the CI integration agree with the binary: the man
# pages render cleanly, --help lists every command, the example workflows
# and action.yml parse and call only commands and options that exist, and
# the bash completion works. Fast: no sshd, no network, no root.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	RELFLIP=$ROOT/relflip
	COMMANDS="deploy rollback prune releases check unlock status log exec lock setup pack"
	CI_FILES=(action.yml examples/github/deploy.yml examples/github/release.yml examples/gitlab/.gitlab-ci.yml)
	if [[ ! -x $RELFLIP ]]; then
		echo "$RELFLIP is not built: run make first" >&2
		return 1
	fi
}

need() {
	local tool=$1 pkg=$2

	command -v "$tool" >/dev/null 2>&1 ||
		skip "$tool is not installed (Debian package $pkg)"
}

need_yaml() {
	python3 -c 'import yaml' 2>/dev/null ||
		skip "python3 cannot import yaml (Debian package python3-yaml)"
}

# man --warnings on a page at 80 columns: nothing on stderr, exit 0.
man_renders_cleanly() {
	local page=$1 err

	err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) ||
		{ echo "man -l $page failed: $err"; return 1; }
	[[ -z $err ]] || { echo "man --warnings, $page:"; echo "$err"; return 1; }
	err=$(MANWIDTH=80 man --warnings=all -l "$page" 2>&1 >/dev/null) ||
		{ echo "man -l $page failed: $err"; return 1; }
	[[ -z $err ]] || { echo "man --warnings=all, $page:"; echo "$err"; return 1; }
	err=$(groff -man -ww -z "$page" 2>&1) ||
		{ echo "groff $page failed: $err"; return 1; }
	[[ -z $err ]] || { echo "groff -man -ww -z, $page:"; echo "$err"; return 1; }
}

# The options a --help text lists: "-x", "--long" at the start of its lines.
help_options() {
	sed -n 's/^ \{1,\}\(-[A-Za-z]\)\{0,1\}\(, \)\{0,1\}\(--[a-z][a-z-]*\)\{0,1\}.*/\1 \3/p' |
		tr ' ' '\n' | grep -E '^-' | sort -u
}

# A man page's text with roff's escapes for '-' and fonts removed.
roff_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$1"
}

@test "relflip(1) renders with no warnings (man at 80 columns, groff -ww)" {
	need man man-db
	need groff groff-base
	man_renders_cleanly "$ROOT/docs/relflip.1"
}

@test "relflip.ini(5) renders with no warnings (man at 80 columns, groff -ww)" {
	need man man-db
	need groff groff-base
	man_renders_cleanly "$ROOT/docs/relflip.ini.5"
}

@test "relflip --help lists every command, and each has its own --help" {
	local cmd help

	run "$RELFLIP" --help
	[ "$status" -eq 0 ]
	help=$output
	for cmd in $COMMANDS; do
		grep -Eq "^  $cmd +[a-z]" <<<"$help" ||
			{ echo "relflip --help does not list $cmd"; return 1; }
		run "$RELFLIP" "$cmd" --help
		[ "$status" -eq 0 ] || { echo "relflip $cmd --help exited $status"; return 1; }
		[[ $output == *"relflip [global options] $cmd"* ]] ||
			{ echo "relflip $cmd --help: no usage line"; return 1; }
	done
}

@test "relflip(1) documents every command and every option --help shows" {
	local text cmd opt missing=""

	text=$(roff_text "$ROOT/docs/relflip.1")
	for opt in $("$RELFLIP" --help | help_options); do
		grep -Fq -- "$opt" <<<"$text" || missing+=" global:$opt"
	done
	for cmd in $COMMANDS; do
		grep -Eq "^\.SS \"?$cmd( |\"|$)" <<<"$text" || missing+=" section:$cmd"
		for opt in $("$RELFLIP" "$cmd" --help | help_options); do
			grep -Fq -- "$opt" <<<"$text" || missing+=" $cmd:$opt"
		done
	done
	[[ -z $missing ]] || { echo "missing from docs/relflip.1:$missing"; return 1; }
}

@test "relflip.ini(5) documents every section and key of config/example.ini" {
	local text section key missing=""

	text=$(roff_text "$ROOT/docs/relflip.ini.5")
	while read -r section; do
		grep -Fq ".SH \"$section" <<<"$text" || missing+=" $section"
	done < <(sed -n 's/^\[\([a-z]*\).*/[\1/p' "$ROOT/config/example.ini" | sort -u)
	while read -r key; do
		grep -Eq "^\.B $key\$" <<<"$text" || missing+=" $key"
	done < <(sed -n 's/^;\{0,1\}\([a-z_]*\) = .*/\1/p' "$ROOT/config/example.ini" | sort -u)
	[[ -z $missing ]] || { echo "missing from docs/relflip.ini.5:$missing"; return 1; }
}

@test "README has the two commands, the install lines and every exit code of --help" {
	local readme=$ROOT/README.md code codes

	grep -Fq 'make demo' "$readme"
	grep -Fq 'make check' "$readme"
	grep -Eq '^    make install +# as root' "$readme"
	grep -Fq 'make PREFIX=/usr DESTDIR=' "$readme"
	grep -Eq '^    make deb ' "$readme"
	codes=$("$RELFLIP" --help | sed -n '/^Exit codes:/,$p' | grep -oE '(^|[ ,:])[0-9]+ ' | tr -dc '0-9\n ')
	[[ -n $codes ]]
	for code in $codes; do
		grep -Eq "^\| $code \|" "$readme" || { echo "README: no exit code $code"; return 1; }
	done
}

@test "the documents the README links to exist" {
	local link

	while read -r link; do
		[[ -e $ROOT/$link ]] || { echo "README links to missing $link"; return 1; }
	done < <(grep -oE '\]\(([a-z][^)#]*)\)' "$ROOT/README.md" | sed 's/^](\(.*\))$/\1/')
	for link in getting-started.md troubleshooting.md security.md capistrano.md; do
		[[ -s $ROOT/docs/$link ]] || { echo "docs/$link is missing"; return 1; }
	done
}

@test "action.yml and the example workflows parse as YAML" {
	need_yaml
	run python3 - "$ROOT" "${CI_FILES[@]}" <<'PY'
import sys, yaml
root = sys.argv[1]
for name in sys.argv[2:]:
    with open(f"{root}/{name}") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), f"{name}: not a mapping"
    if name == "action.yml":
        assert doc["runs"]["using"] == "composite", name
        assert set(doc["inputs"]) >= {"config", "artifact", "command", "args"}, name
        assert doc["inputs"]["command"]["default"] == "deploy", name
    elif "github" in name:
        assert "jobs" in doc and (True in doc or "on" in doc), name
    else:
        assert "stages" in doc, name
    print(f"ok {name}")
PY
	echo "$output"
	[ "$status" -eq 0 ]
}

# The invocation checker: finds every relflip call in the given YAML files
# (run: steps, GitLab scripts, and steps using the relflip action, whose
# command/args/artifact are put together as action.yml does) and checks each
# against the binary: the command's --help succeeds, options before the
# command appear in `relflip --help`, options after it in `relflip COMMAND
# --help`. Prints one line per call; exits 1 on the first file with a bad one.
check_invocations() {
	python3 - "$ROOT" "$RELFLIP" "$@" <<'PY'
import os, re, shlex, subprocess, sys, yaml

root, relflip, files = sys.argv[1], sys.argv[2], sys.argv[3:]
GLOBAL_WITH_VALUE = {"-c", "--config", "-H", "--host", "-R", "--role"}
helps = {}

def help_text(cmd):
    """The options part of `relflip --help` or `relflip CMD --help`."""
    if cmd not in helps:
        argv = [relflip, "--help"] if cmd is None else [relflip, cmd, "--help"]
        p = subprocess.run(argv, capture_output=True, text=True)
        text = p.stdout if p.returncode == 0 else None
        if text is not None and cmd is None:
            # Global options only: not the commands' summaries.
            text = text.split("Global options:", 1)[-1].split("Exit codes:", 1)[0]
        elif text is not None:
            # The command's own options: not the reminder of the global ones.
            text = text.split("Global options (before the command)", 1)[0]
        helps[cmd] = text
    return helps[cmd]

def has_option(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None

def gh_expr(m):
    # ${{ a && format('--to {0}', b) || '' }} -> its string literals
    lits = re.findall(r"'([^']*)'", m.group(1))
    return " ".join(l.replace("{0}", "X") for l in lits) or "EXPR"

def normalize(text):
    text = re.sub(r"\$\{\{(.*?)\}\}", gh_expr, text)
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\+([^}]*)\}", r"\1", text)
    text = re.sub(r"\$\([^()]*\)", "SUBST", text)
    return text

KEYWORDS = {"then", "do", "else", "if", "while", "until", "!", "time", "exec"}

def segments(line):
    """Split a shell line into simple commands at ; & | ( ) outside quotes."""
    segs, cur, quote, i = [], "", None, 0
    while i < len(line):
        c = line[i]
        if quote:
            cur += c
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(line):
                cur += line[i + 1]
                i += 1
        elif c in "'\"":
            quote = c
            cur += c
        elif c == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 1
        elif c == "#" and (not cur or cur[-1].isspace()):
            break
        elif c == "&" and (cur[-1:] in ("<", ">") or line[i + 1:i + 2] == ">"):
            cur += c  # 2>&1, >&2, &>FILE: a redirection, not a separator
        elif c in ";&|()":
            segs.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    segs.append(cur)
    return segs

REDIRECT = re.compile(r"^[0-9]*(>>?|<|&>)(&[0-9-])?")

def without_redirections(words):
    """The words less >FILE, 2>&1, < FILE and the like."""
    kept, skip = [], False
    for w in words:
        m = REDIRECT.match(w)
        if skip:
            skip = False
        elif m:
            skip = m.end() == len(w) and not m.group(2)  # the file is the next word
        else:
            kept.append(w)
    return kept

def calls_in_script(script):
    script = re.sub(r"\\\n\s*", " ", script)
    for line in script.splitlines():
        for seg in segments(normalize(line)):
            try:
                words = shlex.split(seg)
            except ValueError as e:
                words = seg.split()
                if words and os.path.basename(words[0].strip("\"'")) == "relflip":
                    yield seg.strip(), f"cannot split: {e}"
                continue
            while words and (words[0] in KEYWORDS or
                             re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0])):
                words = words[1:]
            words = without_redirections(words)
            if words and os.path.basename(words[0]) == "relflip":
                yield seg.strip(), words[1:]

def action_call(step):
    w = step.get("with") or {}
    cmd = str(w.get("command", "deploy"))
    words = ["-c", str(w.get("config", "relflip.ini")), cmd]
    if cmd == "deploy":
        words.append(str(w.get("artifact", "")) or "MISSING-ARTIFACT")
    words += shlex.split(normalize(str(w.get("args", ""))))
    return "uses: " + step["uses"] + " " + " ".join(words), words

def calls_in_doc(name, doc):
    if name.endswith("action.yml"):
        for step in doc["runs"]["steps"]:
            yield from calls_in_script(step.get("run", ""))
        return
    if "jobs" in doc:
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                if "run" in step:
                    yield from calls_in_script(step["run"])
                uses = step.get("uses", "")
                if re.search(r"(^|/)relflip@", uses) or uses in (".", "./"):
                    yield action_call(step)
        return
    for job in doc.values():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            lines = job.get(key) or []
            for line in [lines] if isinstance(lines, str) else lines:
                yield from calls_in_script(str(line))

def check(words):
    """Problems with one call, as a list of strings."""
    if isinstance(words, str):
        return [words]
    problems, i, cmd, configs = [], 0, None, []
    glob = help_text(None)
    while i < len(words):
        w = words[i]
        if w.startswith("-") and w != "-":
            opt = w.split("=", 1)[0]
            if re.match(r"^-[cHR].+", opt):
                opt = opt[:2]
            if not has_option(glob, opt):
                problems.append(f"global option {opt} is not in relflip --help")
            if opt in GLOBAL_WITH_VALUE and "=" not in w and len(w) == len(opt):
                if opt in ("-c", "--config") and i + 1 < len(words):
                    configs.append(words[i + 1])
                i += 1
            i += 1
            continue
        cmd = w
        break
    if cmd is None:
        # relflip --version (a build's self-check) needs no command.
        if words and all(w in ("-V", "--version", "-h", "--help") for w in words):
            return problems
        return problems + ["no command"]
    rest = words[i + 1:]
    if cmd.startswith("$"):
        return problems  # a variable: action.yml checks it against its list
    text = help_text(cmd)
    if text is None:
        return problems + [f"relflip {cmd} --help fails: no such command"]
    for cfg in configs if cmd != "pack" else []:
        # A literal config file must exist here (config/staging.ini, ...).
        if "$" not in cfg and "EXPR" not in cfg and not os.path.exists(os.path.join(root, cfg)):
            problems.append(f"config file {cfg} does not exist")
    for w in rest:
        if w.startswith("-") and w not in ("-", "--"):
            opt = w.split("=", 1)[0]
            if re.match(r"^-[A-Za-z].+", opt):
                opt = opt[:2]
            if not has_option(text, opt):
                problems.append(f"{opt} is not an option of relflip {cmd}")
    return problems

bad = 0
for name in files:
    path = name if os.path.isabs(name) else os.path.join(root, name)
    with open(path) as f:
        doc = yaml.safe_load(f)
    calls = list(calls_in_doc(name, doc))
    cmds = set()
    for text, words in calls:
        problems = check(words)
        if not isinstance(words, str):
            for i, w in enumerate(words):
                if not w.startswith("-") and (i == 0 or words[i - 1] not in GLOBAL_WITH_VALUE):
                    cmds.add(w)
                    break
        print(("BAD " if problems else "ok  ") + f"{name}: {text}")
        for p in problems:
            print(f"      {p}")
        bad += bool(problems)
    print(f"{name}: {len(calls)} calls; commands: {' '.join(sorted(cmds))}")
    if not calls:
        print(f"{name}: no relflip call found")
        bad += 1
sys.exit(1 if bad else 0)
PY
}

@test "every relflip call in action.yml and the example workflows uses real commands and options" {
	need_yaml
	run check_invocations "${CI_FILES[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	# The checker saw what the files are for: the action's two calls of the
	# command it is given (besides its build's relflip --version).
	grep -Eq '^action.yml: [0-9]+ calls; commands: \$RELFLIP_ACTION_COMMAND deploy$' <<<"$output"
	for f in examples/github/deploy.yml examples/gitlab/.gitlab-ci.yml; do
		line=$(grep -E "^$f: [0-9]+ calls" <<<"$output")
		for cmd in pack deploy rollback prune; do
			[[ $line == *" $cmd"* ]] || { echo "$f: no relflip $cmd"; return 1; }
		done
	done
}

@test "the call checker itself rejects bad commands, misplaced and unknown options, and takes global options after the command" {
	need_yaml
	cat >"$BATS_TEST_TMPDIR/bad.yml" <<'EOF'
stages: [deploy]
wrong:
  script:
    - ./relflip pr
    - relflip rollback --too 3f2c1ab
    - relflip --dry-run prune
EOF
	cat >"$BATS_TEST_TMPDIR/good.yml" <<'EOF'
stages: [deploy]
right:
  script:
    - relflip -c config/production.ini --json deploy app.tgz --revision "$(git rev-parse --short HEAD)"
    - cd /srv && relflip -H web1 rollback ${TO:+--to "$TO"}
    - relflip pack . -o app.tgz --exclude tests/ | tee pack.log
    - relflip deploy app.tgz --json -c config/production.ini
    - relflip --version >/dev/null 2>&1 || relflip -q releases > releases.txt 2>&1
EOF
	run check_invocations "$BATS_TEST_TMPDIR/bad.yml"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(grep -c '^BAD ' <<<"$output")" -eq 3 ]
	run check_invocations "$BATS_TEST_TMPDIR/good.yml"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q '6 calls' <<<"$output"
}

@test "the bash completion passes bash -n and knows every command and option" {
	local file=$ROOT/contrib/relflip.bash-completion cmd opt missing=""

	bash -n "$file"
	for cmd in $COMMANDS; do
		grep -Eq "(^|[\" ])$cmd([\" ]|$)" "$file" || missing+=" $cmd"
		for opt in $("$RELFLIP" "$cmd" --help | help_options); do
			grep -Fq -- "$opt" "$file" || missing+=" $cmd:$opt"
		done
	done
	for opt in $("$RELFLIP" --help | help_options); do
		grep -Fq -- "$opt" "$file" || missing+=" global:$opt"
	done
	[[ -z $missing ]] || { echo "missing from the completion:$missing"; return 1; }
}

# complete WORD...: what the completion offers for the words (the last one
# is being completed), run in $BATS_TEST_TMPDIR/work.
complete_words() {
	# shellcheck disable=SC2016
	bash -c '
		cd "$1" && shift
		source "$RF_COMPLETION"
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_relflip
		printf "%s\n" "${COMPREPLY[@]}" | sort
	' complete "$BATS_TEST_TMPDIR/work" "$@"
}

@test "completing -H offers the hosts of the config: -c, else \$RELFLIP_CONFIG, else ./relflip.ini" {
	export RF_COMPLETION=$ROOT/contrib/relflip.bash-completion
	mkdir -p "$BATS_TEST_TMPDIR/work"
	cat >"$BATS_TEST_TMPDIR/work/relflip.ini" <<'EOF'
[app]
path = /var/www/app

[host "web1"]
address = 203.0.113.10
roles = web primary

[host "web2"]
address = 203.0.113.11
roles = web worker
EOF
	cat >"$BATS_TEST_TMPDIR/work/other.ini" <<'EOF'
[host "db1"]
address = 203.0.113.20
roles = db
EOF
	run complete_words relflip -H ""
	[ "$status" -eq 0 ]
	[ "$output" = $'web1\nweb2' ]
	run complete_words relflip --host w
	[ "$output" = $'web1\nweb2' ]
	run complete_words relflip -c other.ini -H ""
	[ "$output" = "db1" ]
	RELFLIP_CONFIG=other.ini run complete_words relflip -H ""
	[ "$output" = "db1" ]
	run complete_words relflip -R ""
	[ "$output" = $'primary\nweb\nworker' ]
	run complete_words relflip -H web1 r
	[ "$output" = $'releases\nrollback' ]
	run complete_words relflip -H web1 rollback --
	[ "$output" = $'--dry-run\n--help\n--to' ]
}
