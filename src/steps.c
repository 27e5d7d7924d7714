#include <stdio.h>
#include <string.h>

#include "quote.h"
#include "steps.h"

static void
set_var(struct buf *cmd, const char *name, const char *value)
{
	buf_addf(cmd, "%s=", name);
	sh_quote(cmd, value);
	buf_addch(cmd, '\n');
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
	buf_adds(cmd,
		 "R=$A/.relflip\n"
		 "mkdir -p \"$A/releases\" \"$A/shared\" \"$R/releases\" "
		 "\"$R/incoming\" || exit 76\n"
		 "if mkdir \"$R/lock\" 2>/dev/null; then\n"
		 "  { printf '%s' \"$INFO\"; echo since=$(date +%s); } "
		 "> \"$R/lock/info\" && echo locked=1 || "
		 "{ rm -rf \"$R/lock\"; exit 76; }\n"
		 "else echo locked=0; fi\n");
}

void
step_renew(struct buf *cmd, const char *app)
{
	buf_adds(cmd, "touch ");
	{
		struct buf p = BUF_INIT;

		buf_addf(&p, "%s/.relflip/lock/info", app);
		sh_quote(cmd, buf_str(&p));
		buf_release(&p);
	}
	buf_adds(cmd, " 2>/dev/null\n");
}

void
step_unlock_script(struct buf *cmd, const char *app, const char *token,
		   int force)
{
	set_var(cmd, "L", app);
	buf_adds(cmd, "L=$L/.relflip/lock\n");
	if (force) {
		buf_adds(cmd, "rm -rf \"$L\"\n");
		return;
	}
	set_var(cmd, "T", token);
	buf_adds(cmd, "if grep -qx \"token=$T\" \"$L/info\" 2>/dev/null; "
		      "then rm -rf \"$L\"; fi\n");
}

void
step_unpack_script(struct buf *cmd, const char *app, const char *id,
		   const char *sha256, const char *token)
{
	struct buf in = BUF_INIT;

	step_incoming_path(&in, app, id, sha256);
	set_var(cmd, "A", app);
	set_var(cmd, "ID", id);
	set_var(cmd, "SHA", sha256);
	set_var(cmd, "I", buf_str(&in));
	set_var(cmd, "T", token);
	buf_adds(cmd,
		 "D=$A/releases/.tmp-$ID-$T\n"
		 "rm -rf \"$D\" && mkdir \"$D\" || exit 79\n"
		 /* Hash and unpack at once: both read the same cached file. */
		 "sha256sum < \"$I\" > \"$I.sum\" & S=$!\n"
		 "tar -x --no-same-owner --no-same-permissions -f \"$I\" "
		 "-C \"$D\"; X=$?\n"
		 "wait $S; read -r GOT REST < \"$I.sum\"; rm -f \"$I.sum\"\n"
		 "if [ \"$GOT\" != \"$SHA\" ]; then rm -rf \"$D\" \"$I\"; "
		 "echo \"checksum on the server: $GOT\" >&2; exit 77; fi\n"
		 "if [ $X -ne 0 ]; then rm -rf \"$D\"; exit 78; fi\n"
		 "mv -T \"$D\" \"$A/releases/$ID\" || { rm -rf \"$D\"; exit 79; }\n"
		 "rm -f \"$I\"\n");
	buf_release(&in);
}

void
step_link_script(struct buf *cmd, const struct conf *conf, const char *id,
		 const char *record_json)
{
	size_t i;

	set_var(cmd, "A", conf->app_path);
	set_var(cmd, "ID", id);
	buf_adds(cmd, "P=$A/releases/$ID\nset -e\n");
	for (i = 0; i < conf->shared_dirs.n; i++) {
		set_var(cmd, "S", conf->shared_dirs.v[i]);
		buf_adds(cmd, "mkdir -p \"$A/shared/$S\" \"$(dirname \"$P/$S\")\"; "
			      "rm -rf \"$P/$S\"; ln -s \"$A/shared/$S\" \"$P/$S\"\n");
	}
	for (i = 0; i < conf->shared_files.n; i++) {
		set_var(cmd, "S", conf->shared_files.v[i]);
		buf_adds(cmd,
			 "mkdir -p \"$(dirname \"$A/shared/$S\")\" "
			 "\"$(dirname \"$P/$S\")\"; "
			 "[ -e \"$A/shared/$S\" ] || : > \"$A/shared/$S\"; "
			 "rm -rf \"$P/$S\"; ln -s \"$A/shared/$S\" \"$P/$S\"\n");
	}
	buf_adds(cmd, "printf '%s\\n' \"$ID\" > \"$P/REVISION\"\n"
		      "date -u +%Y-%m-%dT%H:%M:%SZ > \"$P/DEPLOYED_AT\"\n");
	step_write_record(cmd, conf->app_path, id, record_json);
}

void
step_hook_script(struct buf *cmd, const char *dir, const struct step_env *env,
		 const char *hook)
{
	buf_adds(cmd, "cd ");
	sh_quote(cmd, dir);
	buf_adds(cmd, " && exec env RELFLIP_RELEASE_PATH=");
	sh_quote(cmd, dir);
	buf_adds(cmd, " RELFLIP_REVISION=");
	sh_quote(cmd, env->release);
	buf_adds(cmd, " RELFLIP_APP_PATH=");
	sh_quote(cmd, env->app);
	buf_adds(cmd, " RELFLIP_HOST=");
	sh_quote(cmd, env->host);
	buf_adds(cmd, " RELFLIP_PREVIOUS_REVISION=");
	sh_quote(cmd, env->previous ? env->previous : "");
	buf_adds(cmd, " sh -c ");
	sh_quote(cmd, hook);
	buf_addch(cmd, '\n');
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
step_write_record(struct buf *cmd, const char *app, const char *id,
		  const char *record_json)
{
	struct buf path = BUF_INIT;

	buf_addf(&path, "%s/.relflip/releases/%s.json", app, id);
	buf_adds(cmd, "printf '%s\\n' ");
	sh_quote(cmd, record_json);
	buf_adds(cmd, " > ");
	sh_quote(cmd, buf_str(&path));
	buf_adds(cmd, ".tmp && mv -f ");
	sh_quote(cmd, buf_str(&path));
	buf_adds(cmd, ".tmp ");
	sh_quote(cmd, buf_str(&path));
	buf_addch(cmd, '\n');
	buf_release(&path);
}

void
step_append_log(struct buf *cmd, const char *app, const char *line)
{
	struct buf path = BUF_INIT;

	buf_addf(&path, "%s/.relflip/log.jsonl", app);
	buf_adds(cmd, "printf '%s\\n' ");
	sh_quote(cmd, line);
	buf_adds(cmd, " >> ");
	sh_quote(cmd, buf_str(&path));
	buf_addch(cmd, '\n');
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
step_list_release(struct buf *list, const char *id)
{
	buf_addf(list, "releases/%s\n.relflip/releases/%s.json\n", id, id);
}
