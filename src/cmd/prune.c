/*
 * relflip prune [--keep N] [--adopt]: options, then src/prune.c.
 */
#include "cmd.h"
#include "out.h"
#include "prune.h"

enum { OPT_KEEP = 256, OPT_ADOPT, OPT_DRY_RUN };

static const struct option prune_options[] = {
	{ "keep", required_argument, NULL, OPT_KEEP },
	{ "adopt", no_argument, NULL, OPT_ADOPT },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

static int
prune_option(void *opts, int c, const char *arg, struct rf_error *err)
{
	struct prune_opts *o = opts;
	const char *why;
	long keep;

	switch (c) {
	case OPT_KEEP:
		if (conf_parse_int(arg, 1, 1000, &keep, &why) != 0)
			return cmd_usage_fail(err, "--keep '%s' %s (1-1000)",
					      arg, why);
		o->keep = (int)keep;
		break;
	case OPT_ADOPT:
		o->adopt = 1;
		break;
	case OPT_DRY_RUN:
		o->dry_run = 1;
		break;
	}
	return 0;
}

static int
prune_exec(struct cmd_ctx *ctx, void *opts)
{
	const struct prune_opts *o = opts;
	struct selection sel = cmd_selection(ctx);
	struct out_field fl[3] = {
		OF_STR("command", "prune"),
		OF_INT("keep", o->keep ? o->keep : ctx->conf->keep_releases),
		OF_INT("hosts", ctx->nhosts),
	};

	out_event("start", NULL, NULL, fl, 3);
	return prune_run(&sel, o, &ctx->outcome, &ctx->err);
}

const struct cmd_entry cmd_prune_entry = {
	.name = "prune",
	.usage = "[--keep N] [--adopt] [--dry-run]",
	.summary = "remove old releases, keeping the live one and the "
		   "rollback target",
	.help = "Keeps, per host, `keep` releases (the live one and the newest "
		"good\n"
		"ones) and keep_failed failed or bad ones; never removes "
		"current, the\n"
		"rollback target, a staged release (a deploy in progress) or "
		"anything\n"
		"relflip did not make. Also clears uploads and temporary "
		"directories\n"
		"left by interrupted deploys.\n"
		"\n"
		"Options:\n"
		"  --keep N    releases to keep, 1-1000 (default: [deploy] "
		"keep_releases)\n"
		"  --adopt     treat releases without a record (a Capistrano "
		"layout)\n"
		"              as good ones, ordered by their DEPLOYED_AT or "
		"REVISION\n"
		"              file times\n"
		"  --dry-run   print what would be removed, change nothing\n"
		"  -h, --help  this help\n",
	.flags = CMD_CONFIG | CMD_RESULT,
	.options = prune_options,
	.opts_size = sizeof(struct prune_opts),
	.option = prune_option,
	.args = cmd_no_args,
	.exec = prune_exec,
};
