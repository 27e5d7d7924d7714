/*
 * relflip unlock [--force]: remove a deploy lock left by a dead run. Without
 * --force only this runner's own lock or a stale one (past lock_ttl) goes.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "fleet.h"
#include "out.h"
#include "quote.h"
#include "steps.h"

static const char unlock_options[] =
    "Removes the deploy lock when this runner (user@host) holds it or it\n"
    "is stale (not renewed for lock_ttl); prints who held it and since\n"
    "when. Every unlock is written to the log.\n"
    "\n"
    "Options:\n"
    "  --force     remove the lock whoever holds it\n"
    "  -h, --help  this help\n";

static int
unlock_one(struct fleet *f, struct fleet_host *fh, void *arg)
{
	const int *force = arg;
	const struct lock_info *l = &fh->st.lock;
	long long age = fh->st.server_now - (l->renewed ? l->renewed
							 : l->since);
	struct buf me = BUF_INIT, cmd = BUF_INIT, line = BUF_INIT;
	struct buf extra = BUF_INIT, errtext = BUF_INIT;
	char since[32] = "?";
	const char *why;
	int status, rc = -1;

	if (!l->held) {
		snprintf(fh->detail, sizeof(fh->detail), "no lock");
		return 0;
	}
	if (l->since)
		record_time(since, sizeof(since), l->since);
	buf_addf(&me, "%s@%s", f->actor, f->runner);
	if (strcmp(l->user, buf_str(&me)) == 0)
		why = "yours";
	else if ((double)age > f->conf->lock_ttl)
		why = "stale";
	else if (*force)
		why = "forced";
	else {
		rf_error_set(&fh->err, RF_EXIT_LOCKED, "unlock",
			     "the lock on %s is held by %s (pid %s) for %s %s "
			     "since %s, renewed %llds ago: not yours and not "
			     "stale (lock_ttl %.0f s)",
			     fh->host->name, l->user[0] ? l->user : "someone",
			     l->pid[0] ? l->pid : "?", l->command,
			     l->revision, since, age, f->conf->lock_ttl);
		rf_error_hint(&fh->err, "if that run is really dead: relflip "
			      "-H %s unlock --force",
			      fh->host->name);
		goto out;
	}
	step_unlock_script(&cmd, f->conf->app_path, NULL, 1);
	buf_adds(&extra, "\"holder\": ");
	json_quote(&extra, l->user);
	buf_adds(&extra, ", \"holder_since\": ");
	json_quote(&extra, since);
	buf_adds(&extra, ", \"why\": ");
	json_quote(&extra, why);
	fleet_log_line(f, fh, l->revision, NULL, "ok", 0, buf_str(&extra),
		       &line);
	step_append_log(&cmd, f->conf->app_path, buf_str(&line));
	status = fleet_run(fh, f->conf->app_path, buf_str(&cmd), NULL,
			   &errtext, &fh->err);
	if (status != 0) {
		if (status > 0)
			rf_error_set(&fh->err, RF_EXIT_INTERNAL, "unlock",
				     "removing the lock on %s failed: %s",
				     fh->host->name, buf_str(&errtext));
		goto out;
	}
	snprintf(fh->detail, sizeof(fh->detail),
		 "removed (%s) the lock of %.40s, %.16s %.20s, since %s", why,
		 l->user[0] ? l->user : "someone", l->command, l->revision,
		 since);
	rc = 0;
out:
	buf_release(&me);
	buf_release(&cmd);
	buf_release(&line);
	buf_release(&extra);
	buf_release(&errtext);
	return rc;
}

static int
cmd_unlock_exec(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fleet f;
	struct rf_error err = RF_ERROR_INIT;
	int c, force = 0, code = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'h':
			return cmd_usage(&cmd_unlock_entry, unlock_options, 0);
		default:
			return cmd_usage_error(&cmd_unlock_entry,
					       "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(&cmd_unlock_entry,
				       "unexpected argument '%s'",
				       argv[optind]);
	if (cmd_load_config(ctx, &err) != 0) {
		out_error(&err);
		return err.code;
	}
	fleet_init(&f, ctx->conf, ctx->hosts, ctx->nhosts, "unlock", NULL);
	{
		struct out_field fl[3] = {
			OF_STR("command", "unlock"),
			OF_BOOL("force", force),
			OF_INT("hosts", ctx->nhosts),
		};
		out_event("start", NULL, NULL, fl, 3);
	}
	if (fleet_connect(&f, &err) != 0 || fleet_probe(&f, &err) != 0 ||
	    (fleet_activate_all(&f),
	     fleet_step(&f, "unlock", unlock_one, &force, &err)) != 0) {
		code = err.code;
		out_error(&err);
	}
	out_result(code == 0 ? "ok" : "failed", code, NULL, NULL, 0);
	fleet_release(&f);
	return code;
}

const struct cmd_entry cmd_unlock_entry = {
	.name = "unlock",
	.usage = "[--force]",
	.summary = "remove this deployer's stale lock (--force: anyone's)",
	.flags = 0,
	.exec = cmd_unlock_exec,
};
