/*
 * relflip unlock [--force]: options, then unlock_run() in src/lock.c.
 */
#include "cmd.h"
#include "lock.h"
#include "out.h"

struct unlock_opts {
	int force;
};

enum { OPT_FORCE = 256 };

static const struct option unlock_options[] = {
	{ "force", no_argument, NULL, OPT_FORCE },
	{ NULL, 0, NULL, 0 },
};

static int
unlock_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct unlock_opts *o = opts;

	(void)c;
	(void)arg;
	(void)err;
	o->force = 1;
	return 0;
}

static int
unlock_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct unlock_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[3] = {
		OF_STR("command", "unlock"),
		OF_BOOL("force", o->force),
		OF_INT("hosts", ctx->nhosts),
	};

	out_event("start", NULL, NULL, fl, 3);
	return unlock_run(&sel, o->force, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_unlock_entry = {
	.name = "unlock",
	.usage = "[--force]",
	.summary = "remove this deployer's stale lock (--force: anyone's)",
	.help = "Removes the deploy lock when this runner (user@host) holds it, "
		"it is\n"
		"stale (not renewed for lock_ttl), or it is a freeze (relflip "
		"lock), which\n"
		"anyone may lift; prints who held it and since when. Every "
		"unlock is\n"
		"written to the log.\n"
		"\n"
		"Options:\n"
		"  --force     remove the lock whoever holds it\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = unlock_options,
	.opts_size = sizeof(struct unlock_opts),
	.option = unlock_option,
	.args = cmd_no_args,
	.exec = unlock_exec,
};
