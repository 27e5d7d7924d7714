#include <stdio.h>
#include <string.h>

#include "manifest.h"
#include "quote.h"
#include "steps.h"

/*
 * Files of at least this many bytes are copied from a delta's base with
 * cp --reflink=auto, the rest through tar (text: spliced into awk).
 */
#define DELTA_REFLINK_MIN "1048576"

static void
set_var(struct buf *cmd, const char *name, const char *value)
{
	buf_addf(cmd, "%s=", name);
	sh_quote(cmd, value);
	buf_addch(cmd, '\n');
}

/*
 * Shell that removes whatever has the name WORD (a quoted shell word), a
 * dangling link or a FIFO too, without opening it, and forks no rm when
 * nothing is there.
 */
static void
clear_name(struct buf *cmd, const char *word)
{
	buf_addf(cmd, "{ [ ! -e %s ] && [ ! -L %s ]; } || rm -rf %s", word,
		 word, word);
}

void
step_incoming_path(struct buf *path, const char *app, const char *id,
		   const char *sha256)
{
	buf_addf(path, "%s/.relflip/incoming/%s.%.12s.tar", app, id, sha256);
}

void
step_lock_script(struct buf *cmd, const char *app, const char *info_lines)
{
	set_var(cmd, "A", app);
	set_var(cmd, "INFO", info_lines);
	buf_adds(
	    cmd,
	    "R=$A/.relflip\n"
	    "{ [ -d \"$A/releases\" ] && [ -d \"$A/shared\" ] && "
	    "[ -d \"$R/releases\" ] && [ -d \"$R/incoming\" ]; } || "
	    "mkdir -p \"$A/releases\" \"$A/shared\" \"$R/releases\" "
	    "\"$R/incoming\" || exit 76\n"
	    /*
	     * The lock appears whole, its info inside, by one rename: a
	     * kill at any point leaves no lock without a holder. A rename
	     * onto a lock with info fails, so two runs cannot both win.
	     */
	    "if [ -e \"$R/lock\" ] || [ -L \"$R/lock\" ]; then echo locked=0\n"
	    "else\n"
	    "  N=$R/lock.$$\n"
	    "  [ ! -e \"$N\" ] || rm -rf \"$N\"\n"
	    /*
	     * One time for the lock's since and the probe's now: the Perl
	     * agent's, else date's.
	     */
	    "  { mkdir \"$N\" && RF_NOW=${RF_STEP_TIME:-$(date +%s)} && "
	    "{ printf '%s' \"$INFO\"; echo since=$RF_NOW; } > \"$N/info\"; } "
	    "|| "
	    "{ rm -rf \"$N\"; exit 76; }\n"
	    "  if mv -T \"$N\" \"$R/lock\" 2>/dev/null; then echo locked=1; "
	    "RF_WROTE=1\n"
	    "  else rm -rf \"$N\"; echo locked=0; fi\n"
	    "fi\n");
}

void
step_renew(struct buf *cmd, const char *app)
{
	struct buf p = BUF_INIT;

	/*
	 * The lock's time, and which process runs this step: unlock tells
	 * from it whether the holder is still at work, --force ends it.
	 */
	buf_addf(&p, "%s/.relflip/lock", app);
	buf_adds(cmd, "L=");
	sh_quote(cmd, buf_str(&p));
	buf_adds(cmd, "; [ -d \"$L\" ] && echo $$ > \"$L/job\" 2>/dev/null\n");
	buf_release(&p);
}

void
step_unlock_script(struct buf *cmd, const char *app, const char *token,
		   int force)
{
	set_var(cmd, "L", app);
	buf_adds(cmd, "L=$L/.relflip/lock\n");
	if (force) {
		/*
		 * End the holder's step first: its whole process group (the
		 * agent gave it one), TERM, then KILL what is left.
		 */
		buf_adds(cmd,
			 "j=$(cat \"$L/job\" 2>/dev/null)\n"
			 "if [ -n \"$j\" ] && kill -0 \"$j\" 2>/dev/null; then\n"
			 "  g=$(sed 's/.*) [A-Za-z] [0-9]* \\([0-9]*\\).*/\\1/' "
			 "\"/proc/$j/stat\" 2>/dev/null)\n"
			 "  kill -TERM -\"${g:-$j}\" \"$j\" 2>/dev/null\n"
			 "  n=0; while kill -0 \"$j\" 2>/dev/null && [ $n -lt 50 ]; "
			 "do sleep 0.1; n=$((n + 1)); done\n"
			 "  kill -KILL -\"${g:-$j}\" \"$j\" 2>/dev/null\n"
			 "fi\n"
			 "rm -rf \"$L\"\n");
		return;
	}
	set_var(cmd, "T", token);
	/* The shell's own read: a grep would cost a process. */
	buf_adds(cmd, "m=; [ ! -f \"$L/info\" ] || while IFS= read -r l || "
		      "[ -n \"$l\" ]; do [ \"$l\" = \"token=$T\" ] && "
		      "{ m=1; break; }; l=; done <\"$L/info\"\n"
		      "if [ -n \"$m\" ]; then rm -rf \"$L\"; fi\n");
}

void
step_unpack_script(struct buf *cmd, const char *app, const char *id,
		   const char *sha256, const char *token,
		   const char *record_json)
{
	struct buf in = BUF_INIT;

	step_incoming_path(&in, app, id, sha256);
	set_var(cmd, "A", app);
	set_var(cmd, "ID", id);
	set_var(cmd, "SHA", sha256);
	set_var(cmd, "I", buf_str(&in));
	set_var(cmd, "T", token);
	buf_adds(cmd,
		 "R=$A/.relflip\n"
		 "D=$A/releases/.tmp-$ID-$T\n"
		 "W=$R/incoming/$ID.$T.want\n"
		 "G=$R/incoming/$ID.$T.got\n"
		 /* Never adopt a name relflip did not make, whatever it is. */
		 "if [ -e \"$A/releases/$ID\" ] || [ -L \"$A/releases/$ID\" ]; "
		 "then echo \"releases/$ID is already there\" >&2; exit 79; fi\n"
		 "{ [ ! -e \"$D\" ] || rm -rf \"$D\"; } && mkdir \"$D\" || "
		 "exit 79\n"
		 /* The manifest validation approved, on stdin. */
		 "cat > \"$W\" || { rm -rf \"$D\" \"$W\"; "
		 "echo \"cannot store the manifest under $R/incoming\" >&2; "
		 "exit 79; }\n"
		 /* Hash and unpack at once: both read the same cached file. */
		 "tar -x --no-same-owner --no-same-permissions -f \"$I\" "
		 "-C \"$D\" & X=$!\n"
		 "GOT=$(sha256sum < \"$I\"); GOT=${GOT%% *}\n"
		 "wait $X; X=$?\n"
		 "if [ \"$GOT\" != \"$SHA\" ]; then rm -rf \"$D\" \"$I\" \"$W\"; "
		 "echo \"checksum on the server: $GOT\" >&2; exit 77; fi\n"
		 "if [ $X -ne 0 ]; then rm -rf \"$D\" \"$W\"; exit 78; fi\n"
		 /* What tar made must be exactly what validation approved. */
		 "{ cd \"$D\" && ");
	manifest_listing_script(cmd, "\"$G.l\"", "\"$G.s\"", NULL);
	buf_adds(
	    cmd,
	    "; } > \"$G\" || { rm -rf \"$D\" \"$W\" \"$G\" \"$G.l\" "
	    "\"$G.s\"; echo \"cannot list the unpacked tree\" >&2; "
	    "exit 78; }\n"
	    "if ! cmp -s \"$W\" \"$G\"; then\n"
	    "  diff \"$W\" \"$G\" 2>/dev/null | grep '^[<>]' | head -n 4 | "
	    "sed 's/^</approved:/; s/^>/unpacked:/' >&2\n"
	    "  rm -rf \"$D\" \"$W\" \"$G\" \"$G.l\" \"$G.s\"; exit 80\n"
	    "fi\n"
	    /*
	     * The snapshot first: a manifest kept here never sits beside
	     * an older listing's snapshot.
	     */
	    "mv -f \"$G.s\" \"$R/releases/$ID.stat\" && "
	    "mv -f \"$W\" \"$R/releases/$ID.manifest\" || "
	    "{ rm -rf \"$D\" \"$W\" \"$G\" \"$G.l\" \"$G.s\"; exit 79; }\n");
	/* Its record before its name: no releases/<id> without one. */
	step_write_record(cmd, app, id, record_json);
	buf_adds(cmd,
		 "mv -T \"$D\" \"$A/releases/$ID\" || "
		 "{ rm -rf \"$D\" \"$G\" \"$G.l\"; "
		 "exit 79; }\n"
		 "rm -f \"$I\" \"$G\" \"$G.l\"\n");
	buf_release(&in);
}

void
step_pull_script(struct buf *cmd, const struct step_pull *p)
{
	struct buf in = BUF_INIT;

	step_incoming_path(&in, p->app, p->id, p->sha256);
	set_var(cmd, "I", buf_str(&in));
	set_var(cmd, "U", p->url);
	set_var(cmd, "SHA", p->sha256);
	buf_addf(cmd, "N=%llu\nLIM=%.3f\nH=\n", (unsigned long long)p->size,
		 p->limit > 0 ? p->limit : 1.0);
	if (p->header)
		buf_adds(cmd, "IFS= read -r H\n");
	buf_adds(cmd,
		 "E=$(mktemp \"${TMPDIR:-/tmp}/relflip-pull.XXXXXX\") || "
		 "exit 76\n"
		 "trap 'rm -f \"$E\"' EXIT\n"
		 "F=0; [ ! -f \"$I\" ] || F=$(($(wc -c < \"$I\")))\n"
		 /* Longer than the artifact: not a part of it. */
		 "if [ \"$F\" -gt \"$N\" ]; then rm -f \"$I\"; F=0; fi\n"
		 /*
		  * --foreground keeps the download in the step's process
		  * group, which the agent ends when relflip goes away.
		  */
		 "TO=; timeout --foreground 5 true 2>/dev/null && "
		 "TO=\"timeout --foreground -k 5 $LIM\"\n"
		 /*
		  * curl reads the URL and the header from a config on its
		  * stdin: neither is ever in a process's arguments. It sends
		  * an Authorization header to no other host than the URL's
		  * when redirected; wget would, so a header needs curl.
		  */
		 "if command -v curl >/dev/null 2>&1; then\n"
		 "  T=curl\n"
		 "  esc() { printf '%s\\n' \"$1\" | "
		 "sed 's/[\\\\\"]/\\\\&/g'; }\n"
		 "  get() { { printf 'url = \"%s\"\\n' \"$(esc \"$U\")\"\n"
		 "    echo 'header = \"Accept: application/octet-stream\"'\n"
		 "    [ -z \"$H\" ] || printf 'header = \"%s\"\\n' "
		 "\"$(esc \"$H\")\"\n"
		 "    } | LC_ALL=C $TO curl -fsSL --retry 3 "
		 "--connect-timeout 30 $1 "
		 "-o \"$I\" -w '%{http_code}' -K - 2>\"$E\"; }\n"
		 "elif [ -z \"$H\" ] && command -v wget >/dev/null 2>&1; then\n"
		 "  T=wget\n"
		 "  get() { printf '%s\\n' \"$U\" | "
		 "LC_ALL=C $TO wget -nv -c --tries=4 "
		 "--connect-timeout=30 "
		 "--header='Accept: application/octet-stream' -O \"$I\" -i - "
		 "2>\"$E\"; }\n"
		 "else\n"
		 "  echo 'no curl or wget' >&2; exit 84\n"
		 "fi\n"
		 "if [ \"$F\" -lt \"$N\" ]; then\n"
		 "  S=$(get '-C -'); X=$?\n"
		 /* A server that ignores ranges: start again from 0. */
		 "  if [ $T = curl ] && [ $X -eq 33 ]; then rm -f \"$I\"; "
		 "S=$(get ''); X=$?; fi\n"
		 "  if [ $X -ne 0 ]; then\n"
		 "    [ -s \"$I\" ] || rm -f \"$I\"\n"
		 /* Never a URL's query (a signature) or user part. */
		 "    sed -e 's/[?#][^[:space:]]*//g' "
		 "-e 's#//[^/@[:space:]]*@#//#g' \"$E\" | grep . | "
		 "tail -n 2 >&2\n"
		 "    [ $T = curl ] || "
		 "S=$(sed -n 's/.*ERROR \\([0-9]*\\).*/\\1/p' "
		 "\"$E\" | tail -n 1)\n"
		 "    case $T.$X in\n"
		 "    *.124|*.137) exit 87 ;;\n"
		 "    curl.22|wget.8) echo \"http=$S\"; exit 85 ;;\n"
		 "    curl.5|curl.6|curl.7|curl.28|wget.4) exit 86 ;;\n"
		 "    esac\n"
		 "    exit 88\n"
		 "  fi\n"
		 "fi\n"
		 "G=$(sha256sum < \"$I\") || exit 88; G=${G%% *}\n"
		 "if [ \"$G\" != \"$SHA\" ]; then rm -f \"$I\"; "
		 "echo \"sha256=$G\"; "
		 "exit 77; fi\n"
		 "echo \"from=$F\"\n");
	buf_release(&in);
}

/*
 * The hashes of a delta's tree, run in it. A file copied from the base
 * is the base's file as its own listing hashed it when the base's
 * snapshot still holds for it now, after the copy: the same inode and
 * ctime, which any write, chmod, rename over or new link would have
 * changed. Its digest then comes from the new manifest, and only the
 * files that came in the delta are hashed: a copy costs no second
 * reading of every file. Otherwise, or with no snapshot (a release made
 * before relflip kept them), every file is hashed, and those lines,
 * coming later, win over any taken from the manifest. Either way the
 * listing checks every entry's type, mode, size and target.
 */
static const char delta_hashes[] =
    "if [ -f \"$BS\" ] && find \"$BD\" -type f -printf "
    "'" MANIFEST_SNAPSHOT_FORMAT "' | LC_ALL=C awk -F '\\t' "
    "-v S=\"$BS\" -v W=\"$P.want\" -v FR=\"$P.fresh\" '\n"
    "\tfunction path(l) { sub(/^[^\t]*\t[^\t]*\t/, \"\", l); return l }\n"
    "\tBEGIN { printf \"\" > FR }\n"
    "\tFILENAME == S { s[path($0)] = $1 \" \" $2; next }\n"
    "\tFILENAME == \"-\" { c[path($0)] = $1 \" \" $2; next }\n"
    "\tFILENAME == W { if ($1 == \"f\" && NF == 5) {\n"
    "\t\tif (!($5 in k)) { print \"./\" $5 > FR; next }\n"
    "\t\tif (!(($5 in s) && ($5 in c) && s[$5] == c[$5])) bad = 1\n"
    "\t\tprint $4 \"  ./\" $5 }\n"
    "\t\tnext }\n"
    "\t{ k[$0] = 1 }\n"
    "\tEND { exit bad }\n"
    "\t' \"$BS\" - \"$P.small\" \"$P.large\" \"$P.want\"; then\n"
    "\t\txargs -r -d '\\n' sha256sum -- <\"$P.fresh\"\n"
    "\telse\n"
    "\t\t" MANIFEST_HASH_ALL "\n"
    "\tfi";

void
step_unpack_delta_script(struct buf *cmd, const char *app, const char *id,
			 const char *base, const char *token, const char *edits,
			 size_t edits_len, const char *manifest_sha256,
			 const char *record_json)
{
	set_var(cmd, "A", app);
	set_var(cmd, "ID", id);
	set_var(cmd, "B", base);
	set_var(cmd, "T", token);
	set_var(cmd, "MS", manifest_sha256);
	buf_adds(
	    cmd,
	    "R=$A/.relflip\n"
	    "D=$A/releases/.tmp-$ID-$T\n"
	    "P=$R/incoming/$ID.$T\n"
	    "BD=$A/releases/$B\n"
	    "BM=$R/releases/$B.manifest\n"
	    "BS=$R/releases/$B.stat\n"
	    "clean() { rm -rf \"$D\" \"$P.want\" \"$P.got\" \"$P.list\" "
	    "\"$P.dirs\" \"$P.large\" \"$P.small\" \"$P.cerr\" \"$P.xerr\" "
	    "\"$P.stat\" \"$P.fresh\"; }\n"
	    "if [ -e \"$A/releases/$ID\" ] || [ -L \"$A/releases/$ID\" ]; "
	    "then echo \"releases/$ID is already there\" >&2; exit 79; fi\n"
	    /* Nothing below reads through a link the base could hold. */
	    "if [ ! -f \"$BM\" ] || [ -L \"$BD\" ] || [ ! -d \"$BD\" ]; "
	    "then echo \"base release $B is gone\" >&2; exit 83; fi\n"
	    /*
	     * One awk, reading the edits (here, ended by a "." line) and
	     * then the base's manifest: the new manifest is the base's with
	     * the edits (-PATH drops an entry, +LINE adds one), merged in
	     * path order (both are sorted, bytewise: no sort needed), and
	     * checked against its digest below. On the way it lists the
	     * directories to make and what stays as it is, to copy: small
	     * files through one tar pipe, large ones with cp. "+" and "!"
	     * entries come in the delta. Paths compare as strings, never as
	     * numbers.
	     */
	    "LC_ALL=C awk -F '\\t' -v W=\"$P.want\" -v DL=\"$P.dirs\" "
	    "-v S=\"$P.small\" -v L=\"$P.large\" '\n"
	    "function put(line, t, sz, p) {\n"
	    "  print line > W; e++\n"
	    "  if (t == \"d\") print p > DL\n"
	    "  else if ((t == \"f\" || t == \"l\") && !(p in skip))\n"
	    "    print p > (t == \"f\" && sz >= " DELTA_REFLINK_MIN
	    " ? L : S)\n"
	    "}\n"
	    "function adds(upto, f) {\n"
	    "  while (k < n && (upto == \"\" || (ap[k + 1] \"\") < upto)) {\n"
	    "    k++; split(add[k], f, \"\\t\"); put(add[k], f[1], f[3], "
	    "f[5])\n"
	    "  }\n"
	    "}\n"
	    "BEGIN { print \"" MANIFEST_HEADER "\" > W; printf \"\" > DL; "
	    "printf \"\" > S; printf \"\" > L }\n"
	    "!m { c = substr($0, 1, 1); x = substr($0, 2)\n"
	    "  if ($0 == \".\") m = 1\n"
	    "  else if (c == \"-\") drop[x] = 1\n"
	    "  else if (c == \"+\") { add[++n] = x; split(x, f, \"\\t\"); "
	    "ap[n] = f[5]; skip[f[5]] = 1 }\n"
	    "  else if (c == \"!\") skip[x] = 1\n"
	    "  next }\n"
	    "/^#/ { next }\n"
	    "{ adds($5 \"\"); if (!($5 in drop)) put($0, $1, $3, $5) }\n"
	    "END { adds(\"\"); print \"# entries \" e > W }\n"
	    "' - \"$BM\" <<'RF_EDITS_END' || { clean; exit 79; }\n");
	buf_add(cmd, edits, edits_len);
	buf_adds(
	    cmd,
	    ".\n"
	    "RF_EDITS_END\n"
	    "GOT=$(sha256sum < \"$P.want\"); GOT=${GOT%% *}\n"
	    "if [ \"$GOT\" != \"$MS\" ]; then clean; "
	    "echo \"the base's manifest does not lead to this release's\" >&2; "
	    "exit 83; fi\n"
	    "{ [ ! -e \"$D\" ] || rm -rf \"$D\"; } && mkdir \"$D\" || "
	    "{ clean; exit 79; }\n"
	    /*
	     * Its directories, then what stays as it is, copied: the
	     * small files through one tar pipe (a file costs cp half as
	     * many system calls again; the pipe's two ends already keep
	     * two cores busy, and a second pipe only made both wait on
	     * the same directories: 66-86 ms against 48-61 ms for the
	     * bench app on journaled ext4), the large ones with cp
	     * --reflink=auto, which shares their blocks where the file
	     * system can. Never a hard link. Names hold no control
	     * characters: a line each.
	     */
	    "( cd \"$D\" && xargs -r -d '\\n' mkdir -p -- ) < \"$P.dirs\" || "
	    "{ clean; exit 83; }\n"
	    "{ { tar -C \"$BD\" -cf - --no-recursion --verbatim-files-from "
	    "-T \"$P.small\" 2>\"$P.cerr\" || "
	    "echo \"cannot read the base's files\" >>\"$P.cerr\"; } | "
	    "tar -C \"$D\" -xpf - --no-same-owner 2>\"$P.xerr\" && "
	    "[ ! -s \"$P.cerr\" ] && { [ ! -s \"$P.large\" ] || "
	    "( cd \"$BD\" && xargs -r -d '\\n' "
	    "cp -P --preserve=mode --reflink=auto --parents -t \"$D\" -- "
	    "<\"$P.large\" ) 2>>\"$P.xerr\"; }; } || { "
	    "sed -n 1,3p \"$P.cerr\" \"$P.xerr\" >&2; clean; exit 83; }\n"
	    /* The delta is this step's stdin. */
	    "tar -xz --no-same-owner --no-same-permissions -f - "
	    "-C \"$D\" || { clean; exit 78; }\n"
	    /* The whole tree must be the new manifest, as a full upload. */
	    "{ cd \"$D\" && ");
	manifest_listing_script(cmd, "\"$P.list\"", "\"$P.stat\"",
				delta_hashes);
	buf_adds(cmd, "; } > \"$P.got\" || { clean; exit 78; }\n"
		      "if ! cmp -s \"$P.want\" \"$P.got\"; then\n"
		      /*
		       * One line naming the paths (a manifest entry's fifth
		       * field): it becomes a warning before the full upload.
		       */
		      "  echo \"not as the manifest says: $(diff \"$P.want\" "
		      "\"$P.got\" 2>/dev/null | grep '^[<>]' | cut -f5 | "
		      "awk '!s[$0]++' | head -n 3 | paste -sd ' ')\" >&2\n"
		      "  clean; exit 83\n"
		      "fi\n"
		      "mv -f \"$P.stat\" \"$R/releases/$ID.stat\" && "
		      "mv -f \"$P.want\" \"$R/releases/$ID.manifest\" || "
		      "{ clean; exit 79; }\n");
	step_write_record(cmd, app, id, record_json);
	buf_adds(cmd,
		 "mv -T \"$D\" \"$A/releases/$ID\" || { clean; exit 79; }\n"
		 "rm -f \"$P.got\" \"$P.list\" \"$P.dirs\" \"$P.large\" "
		 "\"$P.small\" \"$P.cerr\" \"$P.xerr\" \"$P.fresh\"\n");
}

void
step_link_script(struct buf *cmd, const struct conf *conf, const char *id,
		 const char *record_json)
{
	size_t i;

	set_var(cmd, "A", conf->app_path);
	set_var(cmd, "ID", id);
	buf_adds(cmd,
		 "P=$A/releases/$ID\n"
		 /*
		  * A shared path is replaced by a link; none of its parents
		  * inside the release may be a link, or the rm and ln below
		  * would reach through it.
		  */
		 "parents() { p=$P; r=$1; while [ \"${r#*/}\" != \"$r\" ]; do "
		 "p=$p/${r%%/*}; r=${r#*/}; if [ -L \"$p\" ]; then "
		 "echo \"shared path $1: ${p#$A/} is a symbolic link in the "
		 "release\" >&2; exit 81; fi; done; }\n"
		 /* Every process costs: no dirname, no rm of nothing. */
		 "share() { parents \"$1\"; d=$P/$1; d=${d%/*}; "
		 "{ [ -d \"$d\" ] || mkdir -p \"$d\"; } && { ");
	clear_name(cmd, "\"$P/$1\"");
	buf_adds(cmd, "; } && ln -s \"$A/shared/$1\" \"$P/$1\" || exit 81; }\n");
	for (i = 0; i < conf->shared_dirs.n; i++) {
		set_var(cmd, "S", conf->shared_dirs.v[i]);
		buf_adds(cmd, "[ -d \"$A/shared/$S\" ] || mkdir -p \"$A/shared/$S\" || "
			      "exit 81; share \"$S\"\n");
	}
	for (i = 0; i < conf->shared_files.n; i++) {
		set_var(cmd, "S", conf->shared_files.v[i]);
		buf_adds(cmd, "[ -e \"$A/shared/$S\" ] || { echo \"shared/$S is "
			      "missing\" >&2; exit 82; }; share \"$S\"\n");
	}
	/*
	 * REVISION and DEPLOYED_AT are never written through what has those
	 * names: noclobber opens them O_EXCL. A REVISION that already says
	 * the id, as `relflip pack --revision` writes it, is left as it is
	 * (read by the shell itself: exactly one line). Where the names are
	 * free, the files are written where they belong; where something has
	 * one (a release linked again, a planted link), they are written to
	 * new files, after whatever had their names is removed, and renamed
	 * over the old ones, so the app never sees them missing. Every
	 * process costs: a private directory did the same for two more.
	 */
	buf_adds(cmd, "NS=\"REVISION DEPLOYED_AT\"\n"
		      "if [ -f \"$P/REVISION\" ] && [ ! -L \"$P/REVISION\" ] && "
		      "{ IFS= read -r x && ! IFS= read -r y; } < \"$P/REVISION\" "
		      "&& [ \"$x\" = \"$ID\" ]; then NS=DEPLOYED_AT; fi\n"
		      "W=$P/\nfor N in $NS; do "
		      "if [ -e \"$P/$N\" ] || [ -L \"$P/$N\" ]; then "
		      "W=$P/.relflip-$$.; fi; done\n"
		      "if [ \"$W\" != \"$P/\" ]; then for N in REVISION "
		      "DEPLOYED_AT; do ");
	clear_name(cmd, "\"$W$N\"");
	buf_adds(cmd, "; done; fi\n"
		      "put() { [ \"$W\" = \"$P/\" ] || mv -fT \"$W$1\" \"$P/$1\"; }\n"
		      "set -C\n"
		      "{ [ \"$NS\" = DEPLOYED_AT ] || "
		      "printf '%s\\n' \"$ID\" > \"${W}REVISION\"; } && "
		      "date -u +%Y-%m-%dT%H:%M:%SZ > \"${W}DEPLOYED_AT\"; X=$?\n"
		      "set +C\n"
		      "[ $X -eq 0 ] && { [ \"$NS\" = DEPLOYED_AT ] || "
		      "put REVISION; } && put DEPLOYED_AT || "
		      "{ for N in $NS; do rm -rf \"$W$N\"; done; "
		      "echo \"cannot write REVISION in releases/$ID\" >&2; "
		      "exit 81; }\n");
	step_write_record(cmd, conf->app_path, id, record_json);
}

void
step_command_script(struct buf *cmd, const char *cwd, const char *release_path,
		    const struct step_env *env, const char *command)
{
	/* export, not env(1): the command's environment for a process less. */
	buf_adds(cmd, "cd ");
	sh_quote(cmd, cwd);
	buf_adds(cmd, " && export RELFLIP_RELEASE_PATH=");
	sh_quote(cmd, release_path);
	buf_adds(cmd, " RELFLIP_REVISION=");
	sh_quote(cmd, env->release);
	buf_adds(cmd, " RELFLIP_APP_PATH=");
	sh_quote(cmd, env->app);
	buf_adds(cmd, " RELFLIP_HOST=");
	sh_quote(cmd, env->host);
	buf_adds(cmd, " RELFLIP_PREVIOUS_REVISION=");
	sh_quote(cmd, env->previous ? env->previous : "");
	buf_adds(cmd, " && exec sh -c ");
	sh_quote(cmd, command);
	buf_addch(cmd, '\n');
}

void
step_hook_script(struct buf *cmd, const char *dir, const struct step_env *env,
		 const char *hook)
{
	step_command_script(cmd, dir, dir, env, hook);
}

void
step_hook_repro(struct buf *out, const char *dir, const struct step_env *env,
		const char *hook)
{
	buf_adds(out, "cd ");
	sh_quote(out, dir);
	/* $PWD is the directory as named, current/ included. */
	buf_adds(out, " && RELFLIP_RELEASE_PATH=$PWD RELFLIP_REVISION=");
	sh_quote(out, env->release);
	buf_adds(out, " RELFLIP_APP_PATH=");
	sh_quote(out, env->app);
	buf_adds(out, " RELFLIP_HOST=");
	sh_quote(out, env->host);
	if (env->previous != NULL && env->previous[0] != '\0') {
		buf_adds(out, " RELFLIP_PREVIOUS_REVISION=");
		sh_quote(out, env->previous);
	}
	buf_adds(out, " sh -c ");
	sh_quote(out, hook);
}

void
step_switch_script(struct buf *cmd, const char *app, const char *id)
{
	buf_adds(cmd, "cd ");
	sh_quote(cmd, app);
	if (id == NULL) {
		buf_adds(cmd, " && { [ ! -L current ] || rm -f current; }\n");
		return;
	}
	buf_adds(cmd, " && ln -sfn ");
	{
		struct buf t = BUF_INIT;

		buf_addf(&t, "releases/%s", id);
		sh_quote(cmd, buf_str(&t));
		buf_release(&t);
	}
	buf_adds(cmd, " .current.relflip-tmp && "
		      "mv -T .current.relflip-tmp current && readlink current\n");
}

void
step_record_stage(struct buf *cmd, const char *app, const char *id,
		  const char *record_json, const char *var)
{
	struct buf tmp = BUF_INIT;

	/*
	 * A new file, never one planted there: what has the name (left by a
	 * killed step whose pid came round again) is removed, and noclobber
	 * opens the name O_EXCL. mktemp did the same for a process more.
	 */
	buf_addf(&tmp, "%s/.relflip/releases/.%s.relflip-", app, id);
	buf_addf(cmd, "%s=", var);
	sh_quote(cmd, buf_str(&tmp));
	buf_addf(cmd, "$$-%s\n", var);
	buf_reset(&tmp);
	buf_addf(&tmp, "\"$%s\"", var);
	clear_name(cmd, buf_str(&tmp));
	buf_adds(cmd, "\nset -C\nprintf '%s\\n' ");
	sh_quote(cmd, record_json);
	/*
	 * dash's printf says "I/O error" for every failed write: a full disk
	 * is named from the free blocks instead.
	 */
	buf_addf(cmd,
		 " > \"$%s\"; X=$?\nset +C\n"
		 "[ $X -eq 0 ] || { rm -f \"$%s\"; echo 'cannot write the "
		 "record of %s' >&2; [ \"$(stat -f -c %%a \"${%s%%/*}\" "
		 "2>/dev/null)\" != 0 ] || echo 'No space left on the "
		 "device' >&2; exit 74; }\n",
		 var, var, id, var);
	buf_release(&tmp);
}

/* APP/.relflip/releases/ID.json, shell-quoted, onto cmd. */
static void
record_path(struct buf *cmd, const char *app, const char *id)
{
	struct buf path = BUF_INIT;

	buf_addf(&path, "%s/.relflip/releases/%s.json", app, id);
	sh_quote(cmd, buf_str(&path));
	buf_release(&path);
}

void
step_record_commit(struct buf *cmd, const char *app, const char *id,
		   const char *var)
{
	buf_addf(cmd, "mv -fT \"$%s\" ", var);
	record_path(cmd, app, id);
	buf_addf(cmd,
		 " || { rm -f \"$%s\"; echo 'cannot write the record "
		 "of %s' >&2; exit 74; }\n",
		 var, id);
}

void
step_write_record(struct buf *cmd, const char *app, const char *id,
		  const char *record_json)
{
	/*
	 * A record that already says this (the link step's, right after the
	 * unpack wrote it) is left as it is: read with the shell's read, a
	 * process less than the rename. Else renamed over the record: on any
	 * failure nothing is left.
	 */
	buf_adds(cmd, "RJ=");
	record_path(cmd, app, id);
	buf_adds(cmd, "\nRC=; [ -L \"$RJ\" ] || { IFS= read -r RC < \"$RJ\"; } "
		      "2>/dev/null\nif [ \"$RC\" != ");
	sh_quote(cmd, record_json);
	buf_adds(cmd, " ]; then\n");
	step_record_stage(cmd, app, id, record_json, "F");
	step_record_commit(cmd, app, id, "F");
	buf_adds(cmd, "fi\n");
}

void
step_append_log(struct buf *cmd, const char *app, const char *line)
{
	struct buf path = BUF_INIT;

	buf_addf(&path, "%s/.relflip/log.jsonl", app);
	buf_adds(cmd, "F=");
	sh_quote(cmd, buf_str(&path));
	/* Appending cannot replace the name: never through a link. */
	buf_adds(cmd, "\nif [ -L \"$F\" ]; then echo \"$F is a symbolic link: "
		      "not written\" >&2; exit 74; fi\n"
		      "printf '%s\\n' ");
	sh_quote(cmd, line);
	buf_adds(cmd, " >> \"$F\" || { echo \"cannot append to $F\" >&2; "
		      "exit 74; }\n");
	buf_release(&path);
}

void
step_remove_listed(struct buf *cmd, const char *app, int measure)
{
	buf_adds(cmd, "L=$(cat)\ncd ");
	sh_quote(cmd, app);
	buf_adds(cmd, " || exit 1\n");
	if (measure)
		buf_adds(cmd, "[ -z \"$L\" ] || printf '%s\\n' \"$L\" | xargs -r -d '\\n' du -skc -- "
			      "2>/dev/null | tail -n 1\n");
	buf_adds(cmd, "[ -z \"$L\" ] || printf '%s\\n' \"$L\" | xargs -r -d '\\n' rm -rf --\n");
}

void
step_discard_listed(struct buf *cmd, const char *app, const char *token)
{
	buf_adds(cmd, "cd ");
	sh_quote(cmd, app);
	buf_adds(cmd, " || exit 1\nTR=.relflip/trash/");
	sh_quote(cmd, token);
	/*
	 * The names, read by the shell itself (a name a line), go into
	 * trash/ with one mv (instant renames; --backup keeps two of the
	 * same name apart), then one rm of them all, detached, in a session
	 * of its own: the deploy does not wait for it, and ending the step
	 * does not end it. What an rm cut short leaves in trash/ goes with
	 * the next prune.
	 */
	buf_adds(cmd,
		 "\nset --; while IFS= read -r p; do set -- \"$@\" \"$p\"; "
		 "done\n"
		 "if [ $# -gt 0 ]; then mkdir -p \"$TR\" || exit 1\n"
		 "mv --backup=numbered -t \"$TR\" -- \"$@\" 2>/dev/null\n"
		 "( setsid rm -rf \"$TR\" </dev/null >/dev/null 2>&1 & )\n"
		 "fi\n");
}

void
step_list_release(struct buf *list, const char *id)
{
	buf_addf(list,
		 "releases/%s\n.relflip/releases/%s.json\n"
		 ".relflip/releases/%s.manifest\n"
		 ".relflip/releases/%s.stat\n",
		 id, id, id, id);
}
