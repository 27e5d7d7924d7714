#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "layout.h"
#include "quote.h"
#include "release.h"
#include "xmalloc.h"

/*
 * Probe without changing anything. Writability is tried for real (a
 * directory made and removed at once) because `test -w` is always true for
 * root, even on a read-only filesystem or under /proc.
 */
void
layout_probe_script(struct buf *cmd, const char *app_path, int flags,
		    const struct probe_asks *asks)
{
	size_t i;

	buf_adds(cmd, "A=");
	sh_quote(cmd, app_path);
	buf_adds(
	    cmd,
	    "; echo now=${RF_NOW:-${RF_STEP_TIME:-$(date +%s)}}\n"
	    /* The lock script made its lock: no need to try again. */
	    "try_write() { [ -n \"${RF_WROTE:-}\" ] && { echo writable=1; "
	    "return; }; d=$(mktemp -d \"$1/.relflip-probe.XXXXXX\" "
	    "2>/dev/null) && rmdir \"$d\" && echo writable=1 || "
	    "echo writable=0; }\n"
	    "if [ -e \"$A\" ] || [ -L \"$A\" ]; then\n"
	    "  echo app=1\n"
	    "  if [ -d \"$A\" ]; then echo dir=1; try_write \"$A\"; "
	    "else echo dir=0; echo writable=0; fi\n"
	    "else\n"
	    "  echo app=0; p=$A\n"
	    "  while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do "
	    "p=$(dirname \"$p\"); done\n"
	    "  echo ancestor=$p\n"
	    "  if [ -d \"$p\" ]; then try_write \"$p\"; "
	    "else echo writable=0; fi\n"
	    "fi\n"
	    "c=$A/current; CT=\n"
	    "if [ -L \"$c\" ]; then CT=$(readlink \"$c\"); "
	    "echo target=$CT; "
	    "if [ -d \"$c/\" ]; then echo current=link; "
	    "else echo current=dangling; fi\n"
	    "elif [ -d \"$c\" ]; then echo current=dir\n"
	    "elif [ -e \"$c\" ]; then echo current=other\n"
	    "else echo current=none; fi\n"
	    "if [ -d \"$A/releases\" ]; then n=0; for d in \"$A\"/releases/* "
	    "\"$A\"/releases/.[!.]* \"$A\"/releases/..?*; do "
	    "{ [ -e \"$d\" ] || [ -L \"$d\" ]; } && n=$((n + 1)); done; "
	    "echo releases=$n; fi\n"
	    "L=$A/.relflip/lock\n"
	    /* The lock script's own lock: nothing to read about it. */
	    "if [ -n \"${RF_WROTE:-}\" ]; then echo lock=1\n"
	    /* A lock in any shape is held: a file, a link, no info. */
	    "elif [ -e \"$L\" ] || [ -L \"$L\" ]; then echo lock=1; "
	    "if [ -L \"$L\" ] || [ ! -d \"$L\" ]; then echo lock_odd=file; "
	    "elif [ ! -f \"$L/info\" ]; then echo lock_odd=noinfo; fi; "
	    /* Each step renews it by writing its pid in job. */
	    "set -- $(stat -c %Y \"$L/job\" \"$L/info\" \"$L\" "
	    "2>/dev/null); echo lock_renewed=$1; "
	    "[ -d \"$L\" ] && sed -n 's/^\\([a-z_]*\\)=/lock_\\1=/p' "
	    "\"$L/info\" 2>/dev/null; "
	    "j=; read -r j < \"$L/job\" 2>/dev/null; [ -n \"$j\" ] && "
	    "kill -0 \"$j\" 2>/dev/null && echo lock_busy=$j; fi\n");
	if (flags & LAYOUT_TOOLS)
		buf_adds(
		    cmd,
		    "for t in sh tar sha256sum mv ln readlink find stat "
		    "timeout mktemp head awk sort cmp gzip base64; do "
		    "command -v $t >/dev/null 2>&1 || echo missing=$t; done\n"
		    "mv --help 2>&1 | grep -q -e --no-target-directory || "
		    "echo missing=mv-T\n"
		    "if " AGENT_PERL_TEST "; then echo agent=perl; "
		    "else echo agent=sh; fi\n");
	if (flags & LAYOUT_RECORDS)
		buf_adds(cmd,
			 "for d in \"$A\"/releases/* \"$A\"/releases/.tmp-*; do "
			 "[ -e \"$d\" ] || [ -L \"$d\" ] || continue; "
			 "n=${d##*/}; "
			 "if [ -L \"$d\" ] || [ ! -d \"$d\" ]; then "
			 "echo rother=$n; continue; fi; echo rdir=$n; "
			 "[ -f \"$A/.relflip/releases/$n.manifest\" ] && "
			 "echo verified=$n; "
			 "[ -f \"$A/.relflip/releases/$n.json\" ] || "
			 "echo utime=$n $(stat -c %Y \"$d/DEPLOYED_AT\" "
			 "2>/dev/null || stat -c %Y \"$d/REVISION\" 2>/dev/null "
			 "|| stat -c %Y \"$d\"); done\n"
			 /* One sed for every record (a fork each took 1 s for 1,000). */
			 "set -- \"$A\"/.relflip/releases/*.json; "
			 "[ -f \"$1\" ] && sed -s -n "
			 "'1h;1!H;${x;s/\\n//g;s/^/record=/;p}' \"$@\"\n"
			 "for f in \"$A\"/.relflip/incoming/*; do "
			 "[ -f \"$f\" ] && echo incoming=${f##*/}; done\n"
			 "for f in \"$A\"/.relflip/trash/*; do "
			 "[ -e \"$f\" ] && echo trash=${f##*/}; done\n");
	if ((flags & LAYOUT_RECORDS) && asks != NULL && asks->free_space)
		buf_adds(cmd, "d=$A; while [ ! -d \"$d\" ]; do d=${d%/*}; "
			      "d=${d:-/}; done; set -- $(stat -f -c '%a %S' \"$d\"); "
			      "echo free_kb=$(($1 * $2 / 1024))\n");
	if (asks != NULL && asks->incoming != NULL) {
		/* Most deploys have no upload to resume: no stat(1) then. */
		buf_adds(cmd, "IS=");
		sh_quote(cmd, asks->incoming);
		buf_adds(cmd, "; if [ -e \"$IS\" ] || [ -L \"$IS\" ]; then "
			      "echo incoming_size=$(stat -c %s \"$IS\" "
			      "2>/dev/null || echo -1); "
			      "else echo incoming_size=-1; fi\n");
	}
	if (asks != NULL && asks->base_manifest)
		buf_adds(cmd,
			 "[ -n \"$CT\" ] && b=${CT##*/} && "
			 "m=$A/.relflip/releases/$b.manifest && [ -f \"$m\" ] && "
			 "[ -d \"$A/releases/$b\" ] && { echo base_id=$b; "
			 "awk -F '\t' 'NF == 5 { print $1 \"\\t\" $2 \"\\t\" $3 "
			 "\"\\t\" substr($4, 1, 16) \"\\t\" $5 }' \"$m\" | "
			 "gzip -c | base64 | sed 's/^/bm=/'; }\n");
	for (i = 0; asks != NULL && asks->shared_files != NULL &&
		    i < asks->shared_files->n;
	     i++) {
		buf_adds(cmd, "S=");
		sh_quote(cmd, asks->shared_files->v[i]);
		buf_adds(cmd, "; [ -e \"$A/shared/$S\" ] || "
			      "echo \"missing_shared=$S\"\n");
	}
	buf_adds(cmd, "exit 0\n");
}

void
layout_state_release(struct layout_state *st)
{
	record_set_release(&st->records);
	strlist_free(&st->missing_shared);
	buf_release(&st->base_manifest);
	strlist_free(&st->foreign);
	strlist_free(&st->tmpdirs);
	strlist_free(&st->incoming);
	strlist_free(&st->trash);
}

static void
copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

const char *
layout_target_id(const char *target, char *id, size_t idlen)
{
	const char *p = target;

	/*
	 * Accept "releases/<id>", "./releases/<id>", "APP/releases/<id>": the
	 * last "releases/", since the app path may hold one too.
	 */
	const char *r = NULL, *q = p;
	size_t n;

	id[0] = '\0';
	while ((q = strstr(q, "releases/")) != NULL) {
		if (q == p || q[-1] == '/')
			r = q;
		q++;
	}
	if (r == NULL)
		return NULL;
	p = r + strlen("releases/");
	n = strlen(p);
	/* A trailing slash is harmless. */
	if (n > 0 && p[n - 1] == '/')
		n--;
	/* What is cut or no id names no release: id is "" then. */
	if (n >= idlen)
		return NULL;
	memcpy(id, p, n);
	id[n] = '\0';
	if (!release_id_valid(id)) {
		id[0] = '\0';
		return NULL;
	}
	return id;
}

void
layout_parse(const char *text, struct layout_state *st)
{
	const char *line = text;

	memset(st, 0, sizeof(*st));
	st->nreleases = -1;
	st->free_bytes = -1;
	st->incoming_size = -1;
	while (line != NULL && *line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *kv, *v;

		kv = xstrndup(line, n);
		line = nl ? nl + 1 : NULL;
		v = strchr(kv, '=');
		if (v == NULL) {
			free(kv);
			continue;
		}
		*v++ = '\0';
		if (strcmp(kv, "now") == 0)
			st->server_now = strtoll(v, NULL, 10);
		else if (strcmp(kv, "app") == 0)
			st->app_exists = v[0] == '1';
		else if (strcmp(kv, "dir") == 0)
			st->app_is_dir = v[0] == '1';
		else if (strcmp(kv, "writable") == 0)
			st->writable = v[0] == '1';
		else if (strcmp(kv, "ancestor") == 0)
			copy(st->ancestor, sizeof(st->ancestor), v);
		else if (strcmp(kv, "target") == 0)
			copy(st->current_target, sizeof(st->current_target),
			     v);
		else if (strcmp(kv, "current") == 0) {
			if (strcmp(v, "link") == 0)
				st->current = CURRENT_LINK;
			else if (strcmp(v, "dangling") == 0)
				st->current = CURRENT_DANGLING;
			else if (strcmp(v, "dir") == 0)
				st->current = CURRENT_DIR;
			else if (strcmp(v, "other") == 0)
				st->current = CURRENT_OTHER;
			else
				st->current = CURRENT_NONE;
		} else if (strcmp(kv, "releases") == 0)
			st->nreleases = strtol(v, NULL, 10);
		else if (strcmp(kv, "lock") == 0)
			st->lock.held = 1;
		else if (strcmp(kv, "lock_odd") == 0)
			st->lock.odd = strcmp(v, "file") == 0
					   ? "is not a directory relflip made"
					   : "holds no holder info";
		else if (strcmp(kv, "lock_busy") == 0)
			st->lock.busy_pid = strtol(v, NULL, 10);
		else if (strcmp(kv, "free_kb") == 0)
			st->free_bytes = strtoll(v, NULL, 10) * 1024;
		else if (strcmp(kv, "incoming_size") == 0)
			st->incoming_size = strtoll(v, NULL, 10);
		else if (strcmp(kv, "base_id") == 0)
			copy(st->base_id, sizeof(st->base_id), v);
		else if (strcmp(kv, "bm") == 0)
			buf_adds(&st->base_manifest, v);
		else if (strcmp(kv, "missing_shared") == 0)
			strlist_add(&st->missing_shared, v);
		else if (strcmp(kv, "rother") == 0)
			strlist_add(&st->foreign, v);
		else if (strcmp(kv, "lock_renewed") == 0)
			st->lock.renewed = strtoll(v, NULL, 10);
		else if (strcmp(kv, "lock_since") == 0)
			st->lock.since = strtoll(v, NULL, 10);
		else if (strcmp(kv, "lock_user") == 0)
			copy(st->lock.user, sizeof(st->lock.user), v);
		else if (strcmp(kv, "lock_runner") == 0)
			copy(st->lock.runner, sizeof(st->lock.runner), v);
		else if (strcmp(kv, "lock_pid") == 0)
			copy(st->lock.pid, sizeof(st->lock.pid), v);
		else if (strcmp(kv, "lock_run_url") == 0)
			copy(st->lock.run_url, sizeof(st->lock.run_url), v);
		else if (strcmp(kv, "lock_revision") == 0)
			copy(st->lock.revision, sizeof(st->lock.revision), v);
		else if (strcmp(kv, "lock_command") == 0)
			copy(st->lock.command, sizeof(st->lock.command), v);
		else if (strcmp(kv, "lock_message") == 0)
			copy(st->lock.message, sizeof(st->lock.message), v);
		else if (strcmp(kv, "record") == 0) {
			struct release_record rec;

			if (record_parse(v, &rec) == 0) {
				int has_dir = 0, verified = 0;
				struct release_record *r =
				    record_find(&st->records, rec.id);

				if (r != NULL) {
					has_dir = r->has_dir;
					verified = r->verified;
				}
				r = record_add(&st->records, rec.id);
				*r = rec;
				r->has_dir = has_dir;
				r->verified = verified;
			}
		} else if (strcmp(kv, "verified") == 0) {
			if (release_id_valid(v))
				record_add(&st->records, v)->verified = 1;
		} else if (strcmp(kv, "rdir") == 0) {
			if (strncmp(v, ".tmp-", 5) == 0)
				strlist_add(&st->tmpdirs, v);
			else if (release_id_valid(v))
				record_add(&st->records, v)->has_dir = 1;
			else
				strlist_add(&st->foreign, v);
		} else if (strcmp(kv, "utime") == 0) {
			/* A release without a record: when it was deployed. */
			char *sp = strrchr(v, ' ');
			struct release_record *r;

			if (sp != NULL) {
				*sp = '\0';
				if (release_id_valid(v)) {
					r = record_add(&st->records, v);
					if (!r->has_record)
						r->created = record_secs_to_ms(
						    strtoll(sp + 1, NULL, 10));
				}
			}
		} else if (strcmp(kv, "incoming") == 0) {
			strlist_add(&st->incoming, v);
		} else if (strcmp(kv, "trash") == 0) {
			strlist_add(&st->trash, v);
		} else if (strcmp(kv, "agent") == 0) {
			snprintf(st->agent, sizeof(st->agent), "%s", v);
		} else if (strcmp(kv, "missing") == 0) {
			size_t len = strlen(st->missing_tools);

			snprintf(st->missing_tools + len,
				 sizeof(st->missing_tools) - len, "%s%s",
				 len ? " " : "",
				 strcmp(v, "mv-T") == 0 ? "mv -T" : v);
		}
		free(kv);
	}
	if (st->current == CURRENT_LINK || st->current == CURRENT_DANGLING)
		layout_target_id(st->current_target, st->current_id,
				 sizeof(st->current_id));
	if (st->lock.held && st->lock.since == 0)
		st->lock.since = st->lock.renewed;
}

int
layout_probe(struct remote *r, const char *app_path, int flags,
	     const struct probe_asks *asks, struct layout_state *st,
	     struct rf_error *err)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT, errtext = BUF_INIT;
	int rc;

	memset(st, 0, sizeof(*st));
	out.max = 64 << 20;
	layout_probe_script(&cmd, app_path, flags, asks);
	rc = remote_run(r, buf_str(&cmd), NULL, &out, &errtext, err);
	if (rc == 0)
		layout_parse(buf_str(&out), st);
	else if (rc > 0) {
		buf_one_line(&errtext);
		rc = rf_error_set(err, RF_EXIT_INTERNAL, "preflight",
				  "probing %s failed (exit %d): %s", app_path,
				  rc, buf_str(&errtext));
	}
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errtext);
	return rc == 0 ? 0 : -1;
}
